//! Agent lifecycle at the master: registration and re-registration (reconciling the agent's tasks
//! with the master's), heartbeats, and marking silent agents unreachable, then gone.

use super::state::{AgentEntry, ClusterState, Conn};
use super::{Core, CoreError};
use crate::store::records::{AgentLifecycle, AgentRecord, TaskRecord};
use crate::store::Write;
use gantry_proto::time::now_secs;
use gantry_proto::{
    AgentId, AgentInfo, GpuInfo, MasterMessage, Reason, TaskId, TaskReport, TaskState, TaskStatus,
    TaskUsage,
};
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

impl Core {
    /// Registers (or re-registers) an agent on a new connection, reconciling what it runs with
    /// what the master believes runs there. Sends `REGISTERED` and any kills on `tx`; returns the
    /// agent id and the connection id. Memory changes only after the store write succeeded.
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
        let st = &mut guard.cluster;
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
        let plan = reconcile_reports(st, &id, reports, now);
        let mut writes = vec![Write::PutAgent(Box::new(record.clone()))];
        writes.extend(
            plan.updated
                .iter()
                .map(|t| Write::PutTask(Box::new(t.clone()))),
        );
        writes.extend(plan.ended.iter().map(ClusterState::end_write));
        self.store().apply(writes).await?;

        // Stored: now change memory and talk to the agent.
        for t in plan.updated {
            st.put_task(t);
        }
        for t in plan.ended {
            tracing::warn!(agent = %id, task = %t.info.task_id, state = t.state.name(), "task ended while the agent was away");
            st.task_ended(t);
        }
        if rereg {
            st.counters.slave_reregistrations += 1;
        } else {
            st.counters.slave_registrations += 1;
        }
        let _ = tx.send(MasterMessage::Registered {
            agent_id: id.clone(),
            heartbeat_interval_ms: self.cfg.heartbeat_interval.as_millis() as u64,
        });
        for (task_id, grace) in plan.kills {
            tracing::info!(agent = %id, task = %task_id, "killing a task the master no longer wants there");
            let _ = tx.send(MasterMessage::KillTask {
                task_id,
                grace_period_secs: grace,
            });
        }
        st.agents.insert(
            id.clone(),
            AgentEntry::new(record, Some(Conn { id: conn_id, tx }), false),
        );
        tracing::info!(agent = %id, reregistered = rereg, "agent registered");
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
        let st = &mut guard.cluster;
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

    /// A heartbeat arrived on connection `conn_id`, with the usage of the agent's running tasks.
    pub async fn heartbeat(&self, agent: &AgentId, conn_id: u64, usage: Vec<TaskUsage>) {
        let mut guard = self.state().await;
        let st = &mut guard.cluster;
        let Some(a) = st.agents.get_mut(agent) else {
            return;
        };
        if a.conn.as_ref().is_none_or(|c| c.id != conn_id) {
            return;
        }
        a.last_seen = Instant::now();
        for u in usage {
            // Only for tasks the master placed on this agent.
            if st
                .tasks()
                .get(&u.task_id)
                .is_some_and(|t| &t.info.agent_id == agent)
            {
                st.usage.insert(u.task_id.clone(), u);
            }
        }
    }

    /// The master itself did not run for `gap`: heartbeats that arrived meanwhile were not
    /// counted, so every agent's silence starts again now.
    pub async fn forgive_stall(&self, gap: std::time::Duration) {
        tracing::warn!(
            gap_ms = gap.as_millis() as u64,
            "the master stalled; restarting agents' heartbeat clocks"
        );
        let mut st = self.state().await;
        for a in st.cluster.agents.values_mut() {
            a.last_seen = Instant::now();
        }
    }

    /// Connection `conn_id` closed. The agent stays registered until its heartbeats are missed.
    pub async fn disconnected(&self, agent: &AgentId, conn_id: u64) {
        let mut guard = self.state().await;
        let st = &mut guard.cluster;
        if let Some(a) = st.agents.get_mut(agent) {
            if a.conn.as_ref().is_some_and(|c| c.id == conn_id) {
                a.conn = None;
                tracing::info!(agent = %agent, "agent disconnected");
            }
        }
    }

    /// Marks agents that missed their heartbeats unreachable (tasks TASK_UNREACHABLE), and agents
    /// unreachable for too long gone (tasks TASK_GONE). Called periodically. Memory changes only
    /// after the store write succeeded.
    pub async fn check_agents(&self) -> Result<(), CoreError> {
        let now = now_secs();
        let mut guard = self.state().await;
        let st = &mut guard.cluster;
        let mut agents: Vec<AgentRecord> = Vec::new();
        let mut unreachable: Vec<TaskRecord> = Vec::new();
        let mut gone: Vec<TaskRecord> = Vec::new();
        for a in st.agents.values() {
            let id = &a.record.id;
            match a.record.lifecycle {
                AgentLifecycle::Active => {
                    let limit = if a.recovering {
                        self.cfg.agent_reregister_timeout
                    } else {
                        self.cfg.unreachable_after()
                    };
                    if a.last_seen.elapsed() < limit {
                        continue;
                    }
                    let mut r = a.record.clone();
                    r.lifecycle = AgentLifecycle::Unreachable;
                    r.unreachable_since = Some(now);
                    agents.push(r);
                    for t in st.tasks().values().filter(|t| &t.info.agent_id == id) {
                        let mut t = t.clone();
                        t.state = TaskState::TaskUnreachable;
                        t.unreachable_since = Some(now);
                        t.status = Some(
                            TaskStatus::new(t.info.task_id.clone(), Some(id.clone()), t.state)
                                .with_reason(Reason::ReasonAgentDisconnected)
                                .with_message("The agent missed its heartbeats"),
                        );
                        unreachable.push(t);
                    }
                }
                AgentLifecycle::Unreachable => {
                    let since = a.record.unreachable_since.unwrap_or(now);
                    if now - since < self.cfg.agent_gone_after.as_secs_f64() {
                        continue;
                    }
                    let mut r = a.record.clone();
                    r.lifecycle = AgentLifecycle::Gone;
                    agents.push(r);
                    for t in st.tasks().values().filter(|t| &t.info.agent_id == id) {
                        gone.push(TaskRecord {
                            state: TaskState::TaskGone,
                            ..t.clone()
                        });
                    }
                }
                AgentLifecycle::Gone => {}
            }
        }
        if agents.is_empty() {
            return Ok(());
        }
        let mut writes: Vec<Write> = agents
            .iter()
            .map(|a| Write::PutAgent(Box::new(a.clone())))
            .collect();
        writes.extend(
            unreachable
                .iter()
                .map(|t| Write::PutTask(Box::new(t.clone()))),
        );
        writes.extend(gone.iter().map(ClusterState::end_write));
        self.store().apply(writes).await?;

        for r in agents {
            if let Some(a) = st.agents.get_mut(&r.id) {
                match r.lifecycle {
                    AgentLifecycle::Unreachable => {
                        tracing::warn!(agent = %r.id, "agent unreachable: missed its heartbeats");
                        st.counters.slave_unreachable += 1;
                        a.conn = None; // closes the socket: the agent must re-register
                        a.recovering = false;
                    }
                    _ => tracing::warn!(agent = %r.id, "agent gone"),
                }
                a.record = r;
            }
        }
        for t in unreachable {
            st.put_task(t);
        }
        for t in gone {
            st.task_ended(t);
        }
        drop(guard);
        self.wake();
        Ok(())
    }
}

/// What re-registration changes: task records to store, tasks that ended, kills for the agent.
#[derive(Debug, Default)]
struct Reconciliation {
    updated: Vec<TaskRecord>,
    ended: Vec<TaskRecord>,
    kills: Vec<(TaskId, Option<f64>)>,
}

/// Compares the agent's task reports with the master's records for agent `id` (pure: computes on
/// copies).
fn reconcile_reports(
    st: &ClusterState,
    id: &AgentId,
    reports: Vec<TaskReport>,
    now: f64,
) -> Reconciliation {
    let mut plan = Reconciliation::default();
    let reported: HashMap<TaskId, TaskReport> = reports
        .into_iter()
        .map(|r| (r.task.task_id.clone(), r))
        .collect();
    for (tid, rep) in &reported {
        let alive = !rep.status.state.is_terminal();
        let rec = st.tasks().get(tid).filter(|r| &r.info.agent_id == id);
        match rec {
            // Unknown to the master, or placed on another agent: kill this copy here.
            None => {
                if alive {
                    plan.kills.push((tid.clone(), None));
                }
            }
            Some(rec) if !alive => {
                // It ended while the master did not hear of it: take the agent's word.
                let mut t = rec.clone();
                t.state = rep.status.state;
                t.status = Some(rep.status.clone());
                plan.ended.push(t);
            }
            // Tasks their owner no longer wants (an app deleted meanwhile) are killed by the
            // owner's controller on its next run.
            Some(rec) if rec.expunged || rec.kill_requested => {
                let mut t = rec.clone();
                t.kill_requested = true;
                plan.kills
                    .push((tid.clone(), Some(t.info.kill_grace_period_secs)));
                plan.updated.push(t);
            }
            Some(rec) => {
                let mut t = rec.clone();
                if t.state != rep.status.state {
                    t.state = rep.status.state;
                    t.status = Some(rep.status.clone());
                }
                if t.state == TaskState::TaskRunning && t.started_at.is_none() {
                    t.started_at = Some(now);
                }
                t.unreachable_since = None;
                plan.updated.push(t);
            }
        }
    }
    // Tasks the master placed there that the agent does not know: lost in transit, or gone.
    for t in st.tasks().values() {
        if &t.info.agent_id != id || reported.contains_key(&t.info.task_id) {
            continue;
        }
        let state = if t.state == TaskState::TaskStaging {
            TaskState::TaskDropped
        } else {
            TaskState::TaskGone
        };
        let mut t = t.clone();
        t.state = state;
        t.status = Some(
            TaskStatus::new(t.info.task_id.clone(), Some(id.clone()), state)
                .with_reason(Reason::ReasonReconciliation)
                .with_message("The agent re-registered without this task"),
        );
        plan.ended.push(t);
    }
    plan
}
