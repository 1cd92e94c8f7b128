//! Status updates from agents: applied once (by per-task sequence number), stored, then
//! acknowledged, so that delivery is at least once and handling idempotent.

use super::{Core, CoreError};
use crate::cluster::state::last_failure_key;
use crate::cluster::ClusterState;
use crate::store::Write;
use gantry_proto::time::now_secs;
use gantry_proto::{AgentId, MasterMessage, StatusUpdate, TaskState};

impl Core {
    /// Applies a status update that arrived on connection `conn_id` of `agent`, and acknowledges
    /// it once stored. Memory changes only after the store write succeeded; if it fails, the
    /// connection is dropped so that the agent resends the update after re-registering.
    pub async fn status_update(
        &self,
        agent: &AgentId,
        conn_id: u64,
        up: StatusUpdate,
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
            // acknowledged; the agent resends it after it re-registers.
            return Ok(());
        }
        let tid = up.status.task_id.clone();
        let ack = MasterMessage::Acknowledge {
            task_id: tid.clone(),
            seq: up.seq,
        };
        let alive = !up.status.state.is_terminal();
        let kill = MasterMessage::KillTask {
            task_id: tid.clone(),
            grace_period_secs: None,
        };
        let Some(old) = st.tasks.get(&tid) else {
            // Unknown (already ended and forgotten, or never ours): acknowledge so the agent stops
            // resending; a live unknown task is killed.
            if alive {
                Self::send(st, agent, kill);
            }
            Self::send(st, agent, ack);
            return Ok(());
        };
        if &old.info.agent_id != agent {
            // A copy on an agent the task was not placed on (e.g. one that lost its id): kill that
            // copy there; the placed one is untouched.
            tracing::warn!(task = %tid, agent = %agent, "status update from an agent the task is not on");
            if alive {
                Self::send(st, agent, kill);
            }
            Self::send(st, agent, ack);
            return Ok(());
        }
        if up.seq <= old.last_seq {
            st.counters.duplicate_status_updates += 1;
            Self::send(st, agent, ack);
            return Ok(());
        }
        let mut rec = old.clone();
        rec.last_seq = up.seq;
        rec.state = up.status.state;
        rec.unreachable_since = None;
        if rec.state == TaskState::TaskRunning && rec.started_at.is_none() {
            rec.started_at = Some(now);
        }
        rec.status = Some(up.status.clone());
        let terminal = up.status.state.is_terminal();
        let mut writes = vec![if terminal {
            ClusterState::end_write(&rec)
        } else {
            Write::PutTask(Box::new(rec.clone()))
        }];
        if rec.state == TaskState::TaskFailed {
            writes.push(Write::PutMeta {
                key: last_failure_key(&rec.owner),
                value: serde_json::to_string(&rec).unwrap_or_default(),
            });
        }
        if let Err(e) = self.store().apply(writes).await {
            if let Some(a) = st.agents.get_mut(agent) {
                a.conn = None; // the agent reconnects and resends
            }
            return Err(e.into());
        }
        tracing::info!(task = %tid, agent = %agent, state = rec.state.name(), "status update");
        st.counters.valid_status_updates += 1;
        if terminal {
            // Its owner's controller reads the end (a failed app instance delays the next launch;
            // a job run records its outcome).
            st.task_ended(rec);
        } else {
            st.tasks.insert(tid, rec);
        }
        Self::send(st, agent, ack);
        drop(guard);
        if terminal {
            self.wake();
        }
        Ok(())
    }
}
