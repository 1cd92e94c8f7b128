//! The runs that are queued or launched, by id, with a count per run (occurrence) so that "has
//! this run any attempt left?" is answered at once, even for an array of 100,000 elements.

use super::run::RunRecord;
use std::collections::{btree_map, BTreeMap, HashMap};

/// Active run attempts.
#[derive(Clone, Debug, Default)]
pub struct ActiveRuns {
    by_id: BTreeMap<u64, RunRecord>,
    per_occurrence: HashMap<u64, usize>,
}

impl ActiveRuns {
    pub fn insert(&mut self, id: u64, run: RunRecord) {
        let occurrence = run.occurrence;
        if let Some(old) = self.by_id.insert(id, run) {
            self.forget(old.occurrence);
        }
        *self.per_occurrence.entry(occurrence).or_default() += 1;
    }

    pub fn remove(&mut self, id: &u64) -> Option<RunRecord> {
        let run = self.by_id.remove(id)?;
        self.forget(run.occurrence);
        Some(run)
    }

    fn forget(&mut self, occurrence: u64) {
        if let Some(n) = self.per_occurrence.get_mut(&occurrence) {
            *n -= 1;
            if *n == 0 {
                self.per_occurrence.remove(&occurrence);
            }
        }
    }

    /// Keeps the runs `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&u64, &RunRecord) -> bool) {
        let gone: Vec<u64> = self
            .by_id
            .iter()
            .filter(|(id, r)| !keep(id, r))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.remove(&id);
        }
    }

    /// True while some attempt of run `occurrence` is active.
    pub fn has_occurrence(&self, occurrence: u64) -> bool {
        self.per_occurrence.contains_key(&occurrence)
    }

    pub fn get(&self, id: &u64) -> Option<&RunRecord> {
        self.by_id.get(id)
    }

    /// A run to change in place (its occurrence must stay the same).
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut RunRecord> {
        self.by_id.get_mut(id)
    }

    pub fn keys(&self) -> btree_map::Keys<'_, u64, RunRecord> {
        self.by_id.keys()
    }

    pub fn values(&self) -> btree_map::Values<'_, u64, RunRecord> {
        self.by_id.values()
    }

    /// Runs to change in place (their occurrences must stay the same).
    pub fn values_mut(&mut self) -> btree_map::ValuesMut<'_, u64, RunRecord> {
        self.by_id.values_mut()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
