//! Status updates from agents: applied once (by per-task sequence number), stored, then
//! acknowledged, so that delivery is at least once and handling idempotent.

use super::{Core, CoreError};
use crate::cluster::state::{last_failure_key, LaunchDelay};
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
        let st = &mut *guard;
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
            Write::DeleteTask(tid.0.clone())
        } else {
            Write::PutTask(Box::new(rec.clone()))
        }];
        if rec.state == TaskState::TaskFailed {
            writes.push(Write::PutMeta {
                key: last_failure_key(&rec.app_id),
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
            st.tasks.remove(&tid);
            let failed = matches!(rec.state, TaskState::TaskFailed | TaskState::TaskFinished)
                && !rec.kill_requested;
            if failed {
                if let Some(app) = st.apps.get(&rec.app_id) {
                    let (base, factor, max) = (
                        app.backoff_seconds as f64,
                        app.backoff_factor,
                        app.max_launch_delay_seconds as f64,
                    );
                    let d = next_delay(st.launch_delays.get(&rec.app_id), base, factor, max, now);
                    st.launch_delays.insert(
                        rec.app_id.clone(),
                        LaunchDelay {
                            delay_secs: d,
                            until: now + d,
                        },
                    );
                }
            }
            st.push_completed(rec);
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

/// The launch delay after a failure: `base` at first, then multiplied by `factor` up to `max`.
/// A failure after a quiet period (no failure for `max` seconds since the last delay ended) starts
/// again from `base`, as Marathon forgets old failures.
pub fn next_delay(prev: Option<&LaunchDelay>, base: f64, factor: f64, max: f64, now: f64) -> f64 {
    match prev {
        Some(p) if now - p.until < max => (p.delay_secs * factor).min(max),
        _ => base.min(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset_after_quiet() {
        let d1 = next_delay(None, 1.0, 2.0, 5.0, 100.0);
        assert_eq!(d1, 1.0);
        let p = LaunchDelay {
            delay_secs: d1,
            until: 101.0,
        };
        let d2 = next_delay(Some(&p), 1.0, 2.0, 5.0, 102.0);
        assert_eq!(d2, 2.0);
        let p = LaunchDelay {
            delay_secs: 4.0,
            until: 110.0,
        };
        assert_eq!(next_delay(Some(&p), 1.0, 2.0, 5.0, 111.0), 5.0, "capped");
        assert_eq!(
            next_delay(Some(&p), 1.0, 2.0, 5.0, 116.0),
            1.0,
            "quiet for max seconds: reset"
        );
    }
}
