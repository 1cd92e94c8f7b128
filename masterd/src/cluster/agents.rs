//! Agent lifecycle at the master: registration and re-registration (reconciling the agent's tasks
//! with the master's), heartbeats, and marking silent agents unreachable, then gone.

use super::state::{AgentEntry, Conn};
use super::{Core, CoreError};
use crate::store::records::{AgentLifecycle, AgentRecord, TaskRecord};
use crate::store::Write;
use gantry_proto::time::now_secs;
use gantry_proto::{
    AgentId, AgentInfo, GpuInfo, MasterMessage, Reason, TaskId, TaskReport, TaskState, TaskStatus,
};
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

impl Core {
    /// Registers (or re-registers) an agent on a new connection. Sends `REGISTERED` and any kills
    /// the reconciliation calls for on `tx`; returns the agent id and the connection id.
    pub async fn register_agent(
        &self,
        agent_id: Option<AgentId>,
        info: AgentInfo,
        reports: Vec<TaskReport>,
        tx: mpsc::UnboundedSender<MasterMessage>,
    ) -> Result<(AgentId, u64), CoreError> {
        let now = now_secs();
        let conn_id = self.new_conn_id();
        let mut guard = self.state().await;
        let st = &mut *guard;
        let id = agent_id.unwrap_or_else(|| {
            AgentId(format!(
                "{}-S{}",
                self.master_id,
                uuid::Uuid::new_v4().simple()
            ))
        });
        let known = st.agents.get(&id).map(|a| a.record.clone());
        let rereg = known.is_some();
        let record = AgentRecord {
            id: id.clone(),
            info,
            lifecycle: AgentLifecycle::Active,
            registered_at: known.as_ref().map_or(now, |k| k.registered_at),
            reregistered_at: rereg.then_some(now),
            unreachable_since: None,
        };
        let mut writes = vec![Write::PutAgent(Box::new(record.clone()))];
        let mut kills: Vec<TaskId> = Vec::new();

        // Reconcile: what the agent runs against what the master believes runs there.
        let reported: HashMap<TaskId, TaskReport> = reports
            .into_iter()
            .map(|r| (r.task.task_id.clone(), r))
            .collect();
        for (tid, rep) in &reported {
            let app_exists = |app: &str| st.apps.contains_key(app);
            match st.tasks.get(tid) {
                None => {
                    if !rep.status.state.is_terminal() {
                        tracing::warn!(agent = %id, task = %tid, "agent runs a task the master does not know; killing it");
                        kills.push(tid.clone());
                    }
                }
                Some(rec) if rec.info.agent_id != id => kills.push(tid.clone()),
                Some(rec) if rec.expunged || rec.kill_requested || !app_exists(&rec.app_id) => {
                    tracing::info!(agent = %id, task = %tid, "task came back but was replaced or is being killed; killing it");
                    kills.push(tid.clone());
                }
                Some(_) => {
                    if !rep.status.state.is_terminal() {
                        if let Some(rec) = st.tasks.get_mut(tid) {
                            if rec.state != rep.status.state {
                                rec.state = rep.status.state;
                                rec.status = Some(rep.status.clone());
                            }
                            if rec.state == TaskState::TaskRunning && rec.started_at.is_none() {
                                rec.started_at = Some(now);
                            }
                            rec.unreachable_since = None;
                            writes.push(Write::PutTask(Box::new(rec.clone())));
                        }
                    }
                }
            }
        }
        // Tasks the master placed there that the agent does not know: lost in transit or gone.
        let missing: Vec<TaskId> = st
            .tasks
            .values()
            .filter(|t| t.info.agent_id == id && !reported.contains_key(&t.info.task_id))
            .map(|t| t.info.task_id.clone())
            .collect();
        for tid in missing {
            if let Some(mut rec) = st.tasks.remove(&tid) {
                let state = if rec.state == TaskState::TaskStaging {
                    TaskState::TaskDropped
                } else {
                    TaskState::TaskGone
                };
                rec.state = state;
                rec.status = Some(
                    TaskStatus::new(tid.clone(), Some(id.clone()), state)
                        .with_reason(Reason::ReasonReconciliation)
                        .with_message("The agent re-registered without this task"),
                );
                tracing::warn!(agent = %id, task = %tid, state = state.name(), "agent does not know a task the master placed there");
                writes.push(Write::DeleteTask(tid.0.clone()));
                st.push_completed(rec);
            }
        }
        self.store().apply(writes).await?;

        if rereg {
            st.counters.slave_reregistrations += 1;
        } else {
            st.counters.slave_registrations += 1;
        }
        let _ = tx.send(MasterMessage::Registered {
            agent_id: id.clone(),
            heartbeat_interval_ms: self.cfg.heartbeat_interval.as_millis() as u64,
        });
        st.agents.insert(
            id.clone(),
            AgentEntry::new(record, Some(Conn { id: conn_id, tx }), false),
        );
        let mut kill_writes = Vec::new();
        for tid in kills {
            if st.tasks.contains_key(&tid) {
                kill_writes.extend(Self::kill_writes(st, &tid));
            } else {
                Self::send(
                    st,
                    &id,
                    MasterMessage::KillTask {
                        task_id: tid,
                        grace_period_secs: None,
                    },
                );
            }
        }
        self.store().apply(kill_writes).await?;
        tracing::info!(agent = %id, reregistered = rereg, tasks = reported.len(), "agent registered");
        drop(guard);
        self.wake();
        Ok((id, conn_id))
    }

    /// The agent's GPUs changed health (`UPDATE_GPUS`): store its new GPU list and offered count,
    /// and rebuild its topology so that placement stops using unhealthy GPUs. Tasks already on
    /// such a GPU keep running (their owners decide); nothing new is placed on it.
    pub async fn update_gpus(
        &self,
        agent: &AgentId,
        gpus: Vec<GpuInfo>,
        total_gpus: u32,
    ) -> Result<(), CoreError> {
        let mut guard = self.state().await;
        let st = &mut *guard;
        let Some(a) = st.agents.get_mut(agent) else {
            return Ok(());
        };
        for g in gpus.iter().filter(|g| !g.healthy) {
            let was_healthy = a
                .record
                .info
                .gpus
                .iter()
                .any(|o| o.uuid == g.uuid && o.healthy);
            if was_healthy {
                tracing::warn!(gpu = g.index, uuid = %g.uuid, reason = g.unhealthy_reason.as_deref().unwrap_or(""), "GPU unhealthy; no longer placing on it");
            }
        }
        a.record.info.gpus = gpus;
        a.record.info.resources.gpus = total_gpus;
        a.topology = crate::alloc::NodeTopology::from_info(&a.record.info);
        let write = Write::PutAgent(Box::new(a.record.clone()));
        self.store().apply(vec![write]).await?;
        drop(guard);
        self.wake();
        Ok(())
    }

    /// A heartbeat arrived on connection `conn_id`.
    pub async fn heartbeat(&self, agent: &AgentId, conn_id: u64) {
        let mut guard = self.state().await;
        let st = &mut *guard;
        if let Some(a) = st.agents.get_mut(agent) {
            if a.conn.as_ref().is_some_and(|c| c.id == conn_id) {
                a.last_seen = Instant::now();
            }
        }
    }

    /// Connection `conn_id` closed. The agent stays registered until its heartbeats are missed.
    pub async fn disconnected(&self, agent: &AgentId, conn_id: u64) {
        let mut guard = self.state().await;
        let st = &mut *guard;
        if let Some(a) = st.agents.get_mut(agent) {
            if a.conn.as_ref().is_some_and(|c| c.id == conn_id) {
                a.conn = None;
                tracing::info!(agent = %agent, "agent disconnected");
            }
        }
    }

    /// Marks agents that missed their heartbeats unreachable (tasks TASK_UNREACHABLE), and agents
    /// unreachable for too long gone (tasks TASK_GONE). Called periodically.
    pub async fn check_agents(&self) -> Result<(), CoreError> {
        let now = now_secs();
        let mut guard = self.state().await;
        let st = &mut *guard;
        let mut writes = Vec::new();
        let mut changed = false;
        let ids: Vec<AgentId> = st.agents.keys().cloned().collect();
        for id in ids {
            let Some(a) = st.agents.get_mut(&id) else {
                continue;
            };
            let silent = a.last_seen.elapsed();
            match a.record.lifecycle {
                AgentLifecycle::Active => {
                    let limit = if a.recovering {
                        self.cfg.agent_reregister_timeout
                    } else {
                        self.cfg.unreachable_after()
                    };
                    if silent < limit {
                        continue;
                    }
                    tracing::warn!(agent = %id, silent_ms = silent.as_millis() as u64, "agent unreachable");
                    a.record.lifecycle = AgentLifecycle::Unreachable;
                    a.record.unreachable_since = Some(now);
                    a.conn = None; // closes the socket: the agent must re-register
                    a.recovering = false;
                    writes.push(Write::PutAgent(Box::new(a.record.clone())));
                    st.counters.slave_unreachable += 1;
                    for t in st.tasks.values_mut().filter(|t| t.info.agent_id == id) {
                        t.state = TaskState::TaskUnreachable;
                        t.unreachable_since = Some(now);
                        t.status = Some(
                            TaskStatus::new(t.info.task_id.clone(), Some(id.clone()), t.state)
                                .with_reason(Reason::ReasonAgentDisconnected)
                                .with_message("The agent missed its heartbeats"),
                        );
                        writes.push(Write::PutTask(Box::new(t.clone())));
                    }
                    changed = true;
                }
                AgentLifecycle::Unreachable => {
                    let since = a.record.unreachable_since.unwrap_or(now);
                    if now - since < self.cfg.agent_gone_after.as_secs_f64() {
                        continue;
                    }
                    tracing::warn!(agent = %id, "agent gone");
                    a.record.lifecycle = AgentLifecycle::Gone;
                    writes.push(Write::PutAgent(Box::new(a.record.clone())));
                    let gone: Vec<TaskId> = st
                        .tasks
                        .values()
                        .filter(|t| t.info.agent_id == id)
                        .map(|t| t.info.task_id.clone())
                        .collect();
                    for tid in gone {
                        if let Some(t) = st.tasks.remove(&tid) {
                            writes.push(Write::DeleteTask(tid.0.clone()));
                            st.push_completed(TaskRecord {
                                state: TaskState::TaskGone,
                                ..t
                            });
                        }
                    }
                    changed = true;
                }
                AgentLifecycle::Gone => {}
            }
        }
        self.store().apply(writes).await?;
        drop(guard);
        if changed {
            self.wake();
        }
        Ok(())
    }
}
