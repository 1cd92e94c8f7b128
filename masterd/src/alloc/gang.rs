//! Gang placement: the ranks of a gang (a multi-node job) are placed all together against one
//! snapshot, or none of them is. A gang that does not fit whole leaves the run's state as it found
//! it and gets a sentence saying how many of its ranks fit and why the next one did not.

use super::agent_state::AgentState;
use super::gpu_room::GpuRoom;
use super::placer::Placer;
use super::reasons::tally;
use super::shape::Shape;
use super::{ClusterSnapshot, PlaceOptions, Placement, TaskDemand};
use gantry_proto::AgentId;
use std::collections::{HashMap, HashSet};

/// One gang: its ranks in rank order (rank `i` is `ranks[i]`). Ranks of one gang share a group,
/// the group of `ranks[0]` (their job), which `only_on` restrictions are looked up by.
#[derive(Clone, Debug)]
pub struct GangDemand {
    pub ranks: Vec<TaskDemand>,
}

/// What became of one gang.
#[derive(Clone, Debug, PartialEq)]
pub enum GangOutcome {
    /// Every rank placed, in rank order.
    Placed(Vec<Placement>),
    /// Nothing placed: `fit` ranks would have fit, and `reason` says why the others did not.
    Waiting { fit: usize, reason: String },
}

impl GangOutcome {
    /// The placements of a placed gang (empty while it waits).
    pub fn placements(&self) -> &[Placement] {
        match self {
            GangOutcome::Placed(p) => p,
            GangOutcome::Waiting { .. } => &[],
        }
    }
}

/// Places `gangs` in order on `snapshot`, each whole or not at all; gangs whose group is in
/// `only_on` only on the agents listed for it. Deterministic for a given `seed`.
///
/// A gang placed takes its resources before the next gang is tried, so no agent is given more than
/// it has free across all the gangs placed; a gang that does not fit takes nothing. Ranks of one
/// gang may share an agent (its free resources permitting); the allocator's spreading of one group
/// applies to them as to an app's instances.
pub fn place_gangs(
    snapshot: &ClusterSnapshot,
    gangs: &[GangDemand],
    only_on: &HashMap<String, HashSet<AgentId>>,
    seed: u64,
    options: PlaceOptions,
) -> Vec<GangOutcome> {
    let mut out: Vec<Option<GangOutcome>> = vec![None; gangs.len()];
    // Gangs planned together on one view of the cluster: the unrestricted ones, then each
    // restricted group on its slice.
    let mut views: Vec<(Option<&String>, Vec<usize>)> = vec![(None, Vec::new())];
    for (k, g) in gangs.iter().enumerate() {
        let restricted = g
            .ranks
            .first()
            .and_then(|r| only_on.get_key_value(&r.group));
        match restricted {
            None => views[0].1.push(k),
            Some((group, _)) => match views.iter_mut().find(|(v, _)| *v == Some(group)) {
                Some(v) => v.1.push(k),
                None => views.push((Some(group), vec![k])),
            },
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for (group, members) in views {
        if members.is_empty() {
            continue;
        }
        let slice;
        let view = match group.and_then(|g| only_on.get(g)) {
            None => snapshot,
            Some(agents) => {
                slice = ClusterSnapshot {
                    agents: snapshot
                        .agents
                        .iter()
                        .filter(|a| agents.contains(&a.id))
                        .cloned()
                        .collect(),
                };
                &slice
            }
        };
        let mine: Vec<&GangDemand> = members.iter().map(|&k| &gangs[k]).collect();
        let results = place_view(view, &mine, seed, options, &mut seen);
        for (k, r) in members.into_iter().zip(results) {
            out[k] = Some(r);
        }
    }
    out.into_iter()
        .map(|o| {
            o.unwrap_or(GangOutcome::Waiting {
                fit: 0,
                reason: "the gang was not planned".into(),
            })
        })
        .collect()
}

/// An agent's state as it was before a gang touched it.
type Saved = (usize, AgentState, GpuRoom);

/// Places `gangs` on one view of the cluster with one placement run.
fn place_view<'g>(
    view: &ClusterSnapshot,
    gangs: &[&'g GangDemand],
    seed: u64,
    options: PlaceOptions,
    seen: &mut HashSet<&'g str>,
) -> Vec<GangOutcome> {
    let mut interned: HashMap<&str, u32> = HashMap::new();
    let mut desired: Vec<u32> = Vec::new();
    for d in gangs.iter().flat_map(|g| &g.ranks) {
        let next = desired.len() as u32;
        let g = *interned.entry(d.group.as_str()).or_insert(next);
        if g == next {
            desired.push(0);
        }
        desired[g as usize] += 1;
    }
    let mut placer = Placer::new(view, &interned, desired, seed);
    placer.rule = options.cpu_tasks_on_gpu_agents;
    gangs
        .iter()
        .map(|g| place_one_gang(&mut placer, &interned, g, seen))
        .collect()
}

/// Places every rank of `gang` or, when one does not fit, undoes the ranks placed.
fn place_one_gang<'g>(
    placer: &mut Placer<'_>,
    interned: &HashMap<&str, u32>,
    gang: &'g GangDemand,
    seen: &mut HashSet<&'g str>,
) -> GangOutcome {
    let n = gang.ranks.len();
    let waiting = |fit: usize, why: String| GangOutcome::Waiting {
        fit,
        reason: format!("gang of {n} needs {n} placements; only {fit} fit: {why}"),
    };
    if n == 0 {
        return GangOutcome::Waiting {
            fit: 0,
            reason: "the gang has no ranks".into(),
        };
    }
    let mut shapes = Vec::with_capacity(n);
    for d in &gang.ranks {
        if !seen.insert(d.task_id.as_str()) {
            return waiting(0, format!("task id {} appears twice", d.task_id));
        }
        if d.group != gang.ranks[0].group {
            return waiting(0, "the ranks of one gang must share a group".into());
        }
        match Shape::of(d) {
            Ok(s) => shapes.push(s),
            Err(why) => return waiting(0, why),
        }
    }
    let group = interned
        .get(gang.ranks[0].group.as_str())
        .copied()
        .unwrap_or(0);
    let failed_before = placer.failed.clone();
    let mut saved: Vec<Saved> = Vec::new();
    let mut chosen: Vec<Placement> = Vec::with_capacity(n);
    let mut first_refused: Option<Shape> = None;
    for (d, shape) in gang.ranks.iter().zip(&shapes) {
        let pick = if placer.failed.known_to_fail(shape) {
            None
        } else {
            let pick = placer.select(shape, group);
            if pick.is_none() {
                placer.failed.remember(*shape);
            }
            pick
        };
        let booked = pick.and_then(|i| {
            if !saved.iter().any(|(j, _, _)| *j == i) {
                saved.push((i, placer.states[i].clone(), placer.room[i]));
            }
            placer.book(i, shape, group)
        });
        match booked {
            Some((agent_id, ports, numa)) => chosen.push(Placement {
                task_id: d.task_id.clone(),
                agent_id: agent_id.clone(),
                ports,
                numa,
            }),
            None => {
                first_refused.get_or_insert(*shape);
            }
        }
    }
    let Some(shape) = first_refused else {
        return GangOutcome::Placed(chosen);
    };
    // The sentence describes the cluster with the ranks that fit on it, then they are undone.
    let why = tally(&placer.states, placer.unreachable, &shape, placer.rule).sentence(&shape);
    let fit = chosen.len();
    for (i, state, room) in saved {
        placer.states[i] = state;
        placer.room[i] = room;
    }
    placer.failed = failed_before;
    waiting(fit, why)
}

#[cfg(test)]
#[path = "gang_tests.rs"]
mod tests;
