//! Status updates from agents: applied once (by per-task sequence number), stored, then
//! acknowledged, so that delivery is at least once and handling idempotent. Updates that arrive
//! together on one connection are stored in one transaction (group commit): one fsync for a burst
//! of task starts and ends instead of one each.

use super::{Core, CoreError, Outbox};
use crate::cluster::state::last_failure_key;
use crate::cluster::ClusterState;
use crate::store::records::TaskRecord;
use crate::store::Write;
use gantry_proto::time::now_secs;
use gantry_proto::{AgentId, MasterMessage, StatusUpdate, TaskId, TaskState};
use std::collections::BTreeMap;

/// The most updates stored in one transaction.
pub const MAX_UPDATES_PER_COMMIT: usize = 256;

impl Core {
    /// Applies one status update; see [`Core::status_updates`].
    pub async fn status_update(
        &self,
        agent: &AgentId,
        conn_id: u64,
        up: StatusUpdate,
    ) -> Result<(), CoreError> {
        self.status_updates(agent, conn_id, vec![up]).await
    }

    /// Applies status updates that arrived, in this order, on connection `conn_id` of `agent`,
    /// and acknowledges them once stored, all in one store transaction. Memory changes at once and
    /// the acknowledgements follow the commit; a failed write stops the master (see
    /// `AsyncStore::queue`), and the agent resends the unacknowledged updates to the next one.
    pub async fn status_updates(
        &self,
        agent: &AgentId,
        conn_id: u64,
        ups: Vec<StatusUpdate>,
    ) -> Result<(), CoreError> {
        let now = now_secs();
        let mut guard = self.state().await;
        let st = &mut guard.cluster;
        let current = st
            .agents
            .get(agent)
            .and_then(|a| a.conn.as_ref())
            .is_some_and(|c| c.id == conn_id);
        if !current {
            // A connection the master already dropped (agent unreachable): not applied, not
            // acknowledged; the agent resends them after it re-registers.
            return Ok(());
        }
        let mut acks = Vec::with_capacity(ups.len());
        let mut kills = Vec::new();
        // The newest version of every task these updates changed, in the order first changed.
        let mut changed: BTreeMap<TaskId, TaskRecord> = BTreeMap::new();
        let mut order: Vec<TaskId> = Vec::new();
        let mut duplicates = 0;
        let mut valid = 0;
        let mut failed = Vec::new();
        let mut health_changed = false;
        for up in ups {
            let tid = up.status.task_id.clone();
            acks.push(MasterMessage::Acknowledge {
                task_id: tid.clone(),
                seq: up.seq,
            });
            let alive = !up.status.state.is_terminal();
            let old = changed
                .get(&tid)
                .or_else(|| st.tasks().get(&tid))
                .filter(|t| !t.state.is_terminal());
            let Some(old) = old else {
                // Unknown (already ended and forgotten, or never ours): acknowledged so the agent
                // stops resending; a live unknown task is killed.
                if alive {
                    kills.push(tid);
                }
                continue;
            };
            if &old.info.agent_id != agent {
                // A copy on an agent the task was not placed on (e.g. one that lost its id):
                // kill that copy there; the placed one is untouched.
                tracing::warn!(task = %tid, agent = %agent, "status update from an agent the task is not on");
                if alive {
                    kills.push(tid);
                }
                continue;
            }
            if up.seq <= old.last_seq {
                duplicates += 1;
                continue;
            }
            let mut rec = old.clone();
            rec.last_seq = up.seq;
            rec.state = up.status.state;
            rec.unreachable_since = None;
            if rec.state == TaskState::TaskRunning && rec.started_at.is_none() {
                rec.started_at = Some(now);
            }
            if !up.status.health.is_empty() {
                // The agent reports every check's result when one changes.
                rec.health = up.status.health.clone();
                health_changed = true;
            }
            rec.status = Some(up.status);
            if rec.state == TaskState::TaskFailed || rec.killed_unhealthy() {
                failed.push(rec.clone());
            }
            valid += 1;
            if !changed.contains_key(&tid) {
                order.push(tid.clone());
            }
            changed.insert(tid, rec);
        }
        let mut writes: Vec<Write> = order
            .iter()
            .filter_map(|tid| changed.get(tid))
            .map(|rec| {
                if rec.state.is_terminal() {
                    ClusterState::end_write(rec)
                } else {
                    Write::PutTask(Box::new(rec.clone()))
                }
            })
            .collect();
        writes.extend(failed.iter().map(|rec| Write::PutMeta {
            key: last_failure_key(&rec.owner),
            value: serde_json::to_string(rec).unwrap_or_default(),
        }));
        // Memory changes now; the kills and acknowledgements go out once the writes are durable
        // (the store's writer sends them right after the commit), and the lock is not held
        // across the fsync, so other agents' updates and the controllers share the commit.
        let mut out = Outbox::default();
        for task_id in kills {
            let kill = MasterMessage::KillTask {
                task_id,
                grace_period_secs: None,
            };
            out.push(st, agent, kill);
        }
        for ack in acks {
            out.push(st, agent, ack);
        }
        let durable = self.store().queue(writes, out.after_commit());
        st.counters.duplicate_status_updates += duplicates;
        st.counters.valid_status_updates += valid;
        let mut ended = false;
        for tid in order {
            let Some(rec) = changed.remove(&tid) else {
                continue;
            };
            tracing::info!(task = %tid, agent = %agent, state = rec.state.name(), "status update");
            if rec.state.is_terminal() {
                // Its owner's controller reads the end (a failed app instance delays the next
                // launch; a job run records its outcome).
                st.task_ended(rec);
                ended = true;
            } else {
                st.put_task(rec);
            }
        }
        drop(guard);
        // A health change may get a task replaced: the services controller looks at once.
        if ended || health_changed {
            self.wake();
        }
        durable.wait().await?;
        Ok(())
    }
}
