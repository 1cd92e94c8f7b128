//! One batch of [`Write`]s as the znode changes of one multi: what the store's in-memory index
//! says exists decides create, set or delete; every `Write` means exactly what it means for
//! SQLite (`DeleteApp` takes its versions, `DeleteJob` its runs, `Audit` gets the next `seq` and
//! trims to [`AUDIT_KEPT`], `Event` trims to [`EVENTS_KEPT`]).

use super::layout;
use crate::store::records::AuditRecord;
use crate::store::{StoreError, Write, AUDIT_KEPT, EVENTS_KEPT};
use std::collections::{BTreeMap, BTreeSet};

/// What the store knows of one record znode without reading it.
#[derive(Clone, Debug, Default)]
pub struct NodeMeta {
    /// The blob chunks its value lives in (empty when inline).
    pub blobs: Vec<String>,
    /// A run's job (for `DeleteJob`).
    pub job: Option<String>,
}

/// What exists under `state/`, as of the last committed multi (or the last scan).
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Record and event znodes, by path relative to `state/`.
    pub nodes: BTreeMap<String, NodeMeta>,
    /// The `seq` the next audit entry gets.
    pub audit_next: u64,
    /// The audit pages that exist.
    pub audit_pages: BTreeSet<u64>,
    /// The entries already in the page `audit_next` falls in.
    pub audit_tail: Vec<AuditRecord>,
}

impl Index {
    pub fn new() -> Self {
        Self {
            audit_next: 1,
            ..Self::default()
        }
    }

    /// Entries with a `seq` at or below this are trimmed (a partly trimmed page keeps them until
    /// the whole page goes; readers skip them).
    pub fn audit_cutoff(&self) -> u64 {
        (self.audit_next - 1).saturating_sub(AUDIT_KEPT)
    }
}

/// A record's new content.
#[derive(Clone, Debug)]
pub struct NewRecord {
    pub body: Vec<u8>,
    pub job: Option<String>,
}

/// A batch's effect: the final state of every znode it touches.
#[derive(Debug, Default)]
pub struct Plan {
    /// Records and events: `Some` written, `None` deleted.
    pub records: BTreeMap<String, Option<NewRecord>>,
    /// Audit pages written (their whole content).
    pub audit_put: BTreeMap<u64, Vec<AuditRecord>>,
    /// Audit pages deleted.
    pub audit_delete: BTreeSet<u64>,
    /// `audit_next` once the batch commits.
    pub audit_next: u64,
}

impl Plan {
    fn exists(&self, index: &Index, path: &str) -> bool {
        match self.records.get(path) {
            Some(r) => r.is_some(),
            None => index.nodes.contains_key(path),
        }
    }

    fn put(&mut self, path: String, body: Vec<u8>, job: Option<String>) {
        self.records.insert(path, Some(NewRecord { body, job }));
    }

    fn delete(&mut self, index: &Index, path: String) {
        // Deleting what is not there (or already deleted by this batch) does nothing.
        if self.exists(index, &path) {
            self.records.insert(path, None);
        }
    }

    /// Deletes every existing path in `[from, to]` (in the index or written by this batch) that
    /// `keep` does not spare.
    fn delete_range(
        &mut self,
        index: &Index,
        from: &str,
        to: &str,
        pick: impl Fn(&str, Option<&str>) -> bool,
    ) {
        let mut doomed: Vec<String> = index
            .nodes
            .range(from.to_owned()..=to.to_owned())
            .filter(|(p, m)| pick(p, m.job.as_deref()))
            .map(|(p, _)| p.clone())
            .collect();
        doomed.extend(
            self.records
                .range(from.to_owned()..=to.to_owned())
                .filter_map(|(p, r)| r.as_ref().map(|r| (p, r)))
                .filter(|(p, r)| pick(p, r.job.as_deref()))
                .map(|(p, _)| p.clone()),
        );
        for p in doomed {
            self.delete(index, p);
        }
    }

    fn audit_page(&self, index: &Index, page: u64) -> Vec<AuditRecord> {
        if let Some(entries) = self.audit_put.get(&page) {
            return entries.clone();
        }
        if page == layout::audit_page(index.audit_next) {
            return index.audit_tail.clone();
        }
        Vec::new()
    }

    /// Does audit page `page` exist before this batch (so it is set, not created)?
    pub fn audit_page_existed(index: &Index, page: u64) -> bool {
        index.audit_pages.contains(&page)
    }
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Our plain data types and serde_json values always serialize.
    serde_json::to_vec(v).unwrap_or_default()
}

/// Works out what `writes` do to the znodes, given what `index` says exists.
pub fn plan(index: &Index, writes: &[Write]) -> Result<Plan, StoreError> {
    let mut plan = Plan {
        audit_next: index.audit_next,
        ..Plan::default()
    };
    for w in writes {
        match w {
            Write::PutApp { id, app } => plan.put(layout::record("apps", id), json(app), None),
            Write::DeleteApp(id) => {
                plan.delete(index, layout::record("apps", id));
                let prefix = layout::app_versions_prefix(id);
                // `@` is escaped to `%40`, so the prefix's versions sort between these two.
                let to = format!("{prefix}\u{7f}");
                plan.delete_range(index, &prefix, &to, |p, _| p.starts_with(&prefix));
            }
            Write::PutAppVersion { id, version, app } => {
                plan.put(layout::app_version(id, version), json(app), None)
            }
            Write::PutDeployment { id, deployment } => {
                plan.put(layout::record("deployments", id), json(deployment), None)
            }
            Write::DeleteDeployment(id) => plan.delete(index, layout::record("deployments", id)),
            Write::PutGroup { id, group } => {
                plan.put(layout::record("groups", id), json(group), None)
            }
            Write::DeleteGroup(id) => plan.delete(index, layout::record("groups", id)),
            Write::PutTask(t) => plan.put(
                layout::record("tasks", t.info.task_id.as_str()),
                json(t),
                None,
            ),
            Write::DeleteTask(id) => plan.delete(index, layout::record("tasks", id)),
            Write::PutAgent(a) => plan.put(layout::record("agents", a.id.as_str()), json(a), None),
            Write::PutJob { name, job } => plan.put(layout::record("jobs", name), json(job), None),
            Write::DeleteJob(name) => {
                plan.delete(index, layout::record("jobs", name));
                plan.delete_range(index, "runs/", "runs/\u{7f}", |_, job| job == Some(name));
            }
            Write::PutRun { id, job, run } => plan.put(
                layout::run(*id),
                json(&serde_json::json!({ "job": job, "run": run })),
                Some(job.clone()),
            ),
            Write::DeleteRun(id) => plan.delete(index, layout::run(*id)),
            Write::PutMeta { key, value } => {
                plan.put(layout::record("meta", key), value.as_bytes().to_vec(), None)
            }
            Write::DeleteMeta(key) => plan.delete(index, layout::record("meta", key)),
            Write::Event(e) => {
                plan.put(
                    layout::event(e.id),
                    json(&serde_json::json!({ "type": e.event_type, "body": e.body })),
                    None,
                );
                if let Some(cutoff) = e.id.checked_sub(EVENTS_KEPT) {
                    plan.delete_range(index, &layout::event(0), &layout::event(cutoff), |_, _| {
                        true
                    });
                }
            }
            Write::Audit(a) => {
                let seq = plan.audit_next;
                plan.audit_next += 1;
                let page = layout::audit_page(seq);
                let mut entries = plan.audit_page(index, page);
                let mut a = (**a).clone();
                a.seq = seq;
                entries.push(a);
                plan.audit_put.insert(page, entries);
                plan.audit_delete.remove(&page);
                if let Some(cutoff) = seq.checked_sub(AUDIT_KEPT) {
                    // Pages whose every seq is at or below the cutoff go.
                    let whole = (cutoff + 1) / layout::AUDIT_PAGE;
                    let doomed: Vec<u64> = index
                        .audit_pages
                        .range(..whole)
                        .chain(plan.audit_put.range(..whole).map(|(p, _)| p))
                        .copied()
                        .collect();
                    for p in doomed {
                        plan.audit_put.remove(&p);
                        if index.audit_pages.contains(&p) {
                            plan.audit_delete.insert(p);
                        }
                    }
                }
            }
        }
    }
    Ok(plan)
}

/// The index once `plan` has committed (its records' blobs as `blobs` says).
pub fn commit(index: &mut Index, plan: &Plan, blobs: &BTreeMap<String, Vec<String>>) {
    for (path, r) in &plan.records {
        match r {
            Some(r) => {
                index.nodes.insert(
                    path.clone(),
                    NodeMeta {
                        blobs: blobs.get(path).cloned().unwrap_or_default(),
                        job: r.job.clone(),
                    },
                );
            }
            None => {
                index.nodes.remove(path);
            }
        }
    }
    for p in &plan.audit_delete {
        index.audit_pages.remove(p);
    }
    index.audit_pages.extend(plan.audit_put.keys().copied());
    let tail_page = layout::audit_page(plan.audit_next);
    index.audit_tail = plan.audit_put.get(&tail_page).cloned().unwrap_or_else(|| {
        if tail_page == layout::audit_page(index.audit_next) {
            std::mem::take(&mut index.audit_tail)
        } else {
            Vec::new()
        }
    });
    index.audit_next = plan.audit_next;
}

/// The blob chunks that `plan` leaves unreferenced once it commits (values overwritten or
/// deleted).
pub fn garbage(index: &Index, plan: &Plan) -> Vec<String> {
    plan.records
        .keys()
        .filter_map(|p| index.nodes.get(p))
        .flat_map(|m| m.blobs.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn committed(index: &mut Index, writes: &[Write]) -> Plan {
        let p = plan(index, writes).unwrap();
        commit(index, &p, &BTreeMap::new());
        p
    }

    #[test]
    fn a_key_written_then_deleted_in_one_batch_is_no_change() {
        let index = Index::new();
        let p = plan(
            &index,
            &[
                Write::PutMeta {
                    key: "k".into(),
                    value: "v".into(),
                },
                Write::DeleteMeta("k".into()),
                Write::DeleteMeta("never".into()),
            ],
        )
        .unwrap();
        // The deleted key is `None` only if it existed before; here neither did.
        assert!(p.records.values().all(|r| r.is_none()));
        assert!(p.records.keys().all(|k| !index.nodes.contains_key(k)));
    }

    #[test]
    fn delete_app_and_delete_job_take_their_versions_and_runs_even_from_the_same_batch() {
        let mut index = Index::new();
        let v = json!({});
        committed(
            &mut index,
            &[
                Write::PutAppVersion {
                    id: "/a".into(),
                    version: "1".into(),
                    app: v.clone(),
                },
                Write::PutAppVersion {
                    id: "/a@x".into(),
                    version: "1".into(),
                    app: v.clone(),
                },
                Write::PutRun {
                    id: 1,
                    job: "j".into(),
                    run: v.clone(),
                },
                Write::PutRun {
                    id: 2,
                    job: "other".into(),
                    run: v.clone(),
                },
            ],
        );
        committed(
            &mut index,
            &[
                Write::PutAppVersion {
                    id: "/a".into(),
                    version: "2".into(),
                    app: v.clone(),
                },
                Write::PutRun {
                    id: 3,
                    job: "j".into(),
                    run: v,
                },
                Write::DeleteApp("/a".into()),
                Write::DeleteJob("j".into()),
            ],
        );
        let left: Vec<&String> = index.nodes.keys().collect();
        assert_eq!(
            left,
            vec![&layout::app_version("/a@x", "1"), &layout::run(2)],
            "only the other app's version and the other job's run stay"
        );
    }

    #[test]
    fn audit_entries_get_increasing_seqs_and_fill_pages() {
        let mut index = Index::new();
        let entry = || {
            Write::Audit(Box::new(AuditRecord {
                seq: 0,
                at: 1.0,
                principal: "p".into(),
                method: "POST".into(),
                path: "/".into(),
                status: 200,
                remote: "r".into(),
            }))
        };
        let writes: Vec<Write> = (0..layout::AUDIT_PAGE + 5).map(|_| entry()).collect();
        let p = committed(&mut index, &writes);
        assert_eq!(p.audit_next, layout::AUDIT_PAGE + 6, "seqs start at 1");
        assert_eq!(index.audit_pages.len(), 2);
        assert_eq!(index.audit_tail.len(), 6);
        let p = committed(&mut index, &[entry()]);
        assert_eq!(
            p.audit_put.len(),
            1,
            "one more entry rewrites only the last page"
        );
        assert_eq!(
            p.audit_put[&1].last().map(|a| a.seq),
            Some(layout::AUDIT_PAGE + 6)
        );
    }
}
