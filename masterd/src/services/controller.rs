//! The service controller: keeps every app at its instance count. Each run scales up (placing new
//! instances with the allocator and re-checking the plan against current state), kills surplus and
//! orphaned tasks, and applies the unreachable strategy; an app that a deployment restarts is
//! replaced by the rolling arithmetic instead. Runs when woken and once a second.

use super::app::AppDefinition;
use super::app_definition::KillSelection;
use super::deployments::config::CurrentConfig;
use super::deployments::replace;
use super::gang::{self, gang_constraints, GangApp, GangRun, GangStep};
use super::launch::{instance_resources, new_task_id, task_info, unreachable_after};
use super::placement_constraints::{AgentFacts, CompiledConstraints};
use super::requirements::{self, all_met, unmet_reason};
use super::state::Waiting;
use crate::alloc::{self, GangOutcome, TaskDemand};
use crate::cluster::{ClusterState, Core, CoreError};
use crate::state::MasterState;
use crate::store::records::{TaskOwner, TaskRecord};
use crate::store::Write;
use gantry_proto::time::now_secs;
use gantry_proto::{AgentId, MasterMessage, TaskId, TaskState};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The most new tasks one controller run plans, across all apps. A run's work (and the time it
/// holds the state lock building demands) is bounded by this, not by the instance counts apps ask
/// for; an app scaled to 100,000 is placed over several runs that follow each other at once.
pub const MAX_NEW_TASKS_PER_RUN: usize = 2048;

/// Runs the controller until the process ends.
pub async fn run(core: Arc<Core>) {
    let mut changes = core.subscribe();
    loop {
        if let Err(e) = reconcile(&core).await {
            tracing::error!(error = %e, "service controller run failed");
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Does an unreachable task still count toward its app's instances? Marathon's
/// `unreachableStrategy` (default inactiveAfterSeconds 0): no, once it has been unreachable that long.
fn counts_as_active(t: &TaskRecord, inactive_after: Option<f64>, now: f64) -> bool {
    if t.kill_requested || t.expunged {
        return false;
    }
    match (t.state, t.unreachable_since, inactive_after) {
        (TaskState::TaskUnreachable, Some(since), Some(after)) => now - since < after,
        _ => true,
    }
}

/// The connected agents that meet the app's container and network needs: the agents its
/// constraints are evaluated over (GROUP_BY spreads over their values).
pub(super) fn constraint_agents<'a>(
    st: &'a ClusterState,
    app: &AppDefinition,
) -> Vec<AgentFacts<'a>> {
    let needs = requirements::needs_of(app);
    st.agents
        .values()
        .filter(|a| a.accepts_tasks() && all_met(&needs, &a.record.info))
        .map(|a| AgentFacts {
            id: &a.record.id,
            info: &a.record.info,
        })
        .collect()
}

/// The app's instances per agent that constraints count: non-terminal tasks not being killed.
pub(super) fn instances_per_agent(st: &ClusterState, app_id: &str) -> HashMap<AgentId, usize> {
    let mut out: HashMap<AgentId, usize> = HashMap::new();
    for t in st.app_tasks(app_id) {
        if !t.kill_requested && !t.expunged && !t.state.is_terminal() {
            *out.entry(t.info.agent_id.clone()).or_default() += 1;
        }
    }
    out
}

/// The agents an app may take one more instance on, when not all connected ones: those meeting
/// its container and network needs, then its constraints. `Err` says why no agent may.
fn where_allowed(
    st: &ClusterState,
    app: &AppDefinition,
) -> Result<Option<HashSet<AgentId>>, String> {
    let mut out = None;
    let needs = requirements::needs_of(app);
    if !needs.is_empty() {
        let eligible: HashSet<AgentId> = st
            .agents
            .values()
            .filter(|a| a.accepts_tasks() && all_met(&needs, &a.record.info))
            .map(|a| a.record.id.clone())
            .collect();
        if eligible.is_empty() {
            let connected = st.agents.values().filter(|a| a.accepts_tasks());
            return Err(unmet_reason(&needs, connected.map(|a| &a.record.info)));
        }
        out = Some(eligible);
    }
    // Constraints (spec §2.2): the agents that may take one more instance now. The plan's
    // placements are filtered again one by one once it is made.
    let constraints = CompiledConstraints::new(&app.constraint_list());
    if !constraints.is_empty() {
        let agents = constraint_agents(st, app);
        let per_agent = instances_per_agent(st, &app.id);
        out = Some(constraints.agents_for_one_more(&agents, &per_agent)?);
    }
    Ok(out)
}

/// One controller run.
pub async fn reconcile(core: &Arc<Core>) -> Result<(), CoreError> {
    let now = now_secs();
    let (snapshot, demands, gang_demands, apps_demanded, versions, only_on, more) = {
        let mut guard = core.state().await;
        let MasterState {
            cluster: st,
            services: svc,
            ..
        } = &mut *guard;
        let mut writes: Vec<Write> = Vec::new();
        let ended = st.take_ended(|o| matches!(o, TaskOwner::App { .. }));
        super::backoff::record_ends(svc, &ended, now);
        // Deployments move on once their step's tasks are ready (stored with this run's writes).
        let (moved, deployment_events) = super::deployments::progress::advance(svc, st);
        writes.extend(moved);

        // Expunge unreachable tasks whose app gave up on them.
        let expunge: Vec<TaskId> = st
            .tasks()
            .values()
            .filter(|t| t.state == TaskState::TaskUnreachable && !t.expunged)
            .filter(|t| {
                let after = t
                    .app_id()
                    .and_then(|a| svc.apps.get(a))
                    .and_then(unreachable_after);
                match (t.unreachable_since, after) {
                    (Some(since), Some((_, expunge))) => now - since >= expunge,
                    _ => false,
                }
            })
            .map(|t| t.info.task_id.clone())
            .collect();
        let mut changed: Vec<TaskRecord> = Vec::new();
        for tid in expunge {
            if let Some(t) = st.tasks().get(&tid) {
                changed.push(TaskRecord {
                    expunged: true,
                    ..t.clone()
                });
            }
        }

        // Orphans (app deleted) and surplus instances are killed.
        let mut to_kill: Vec<TaskId> = st
            .tasks()
            .values()
            .filter(|t| !t.kill_requested)
            .filter(|t| t.app_id().is_some_and(|a| !svc.apps.contains_key(a)))
            .map(|t| t.info.task_id.clone())
            .collect();
        let mut demands = Vec::new();
        let mut apps_demanded: HashMap<String, usize> = HashMap::new();
        // Apps whose container or networks no agent offers: (app, why, instances missing).
        let mut unmet: Vec<(String, String, usize)> = Vec::new();
        // Apps that only some agents can run, with those agents.
        let mut only_on: HashMap<String, HashSet<AgentId>> = HashMap::new();
        // New instances planned this run, and the apps left for the next run once it is spent.
        let mut budget = MAX_NEW_TASKS_PER_RUN;
        let mut deferred: Vec<String> = Vec::new();
        let mut gangs = GangRun::default();
        for app in svc.apps.values() {
            let inactive_after = unreachable_after(app).map(|(i, _)| i);
            let mut active: Vec<&TaskRecord> = st
                .app_tasks(&app.id)
                .filter(|t| counts_as_active(t, inactive_after, now))
                .filter(|t| !super::health::is_doomed(t))
                .collect();
            if svc.held(&app.id) {
                // Its deployment step comes after what it depends on (spec §2.6): as it is.
                continue;
            }
            if app.gang {
                let all: Vec<&TaskRecord> = st.app_tasks(&app.id).collect();
                let mut config = CurrentConfig::new(svc, app);
                match gang::step(app, &all, &active, |t| config.runs_current(t)) {
                    GangStep::Keep | GangStep::Ending => {}
                    GangStep::Kill(ids) => to_kill.extend(ids),
                    GangStep::Place => {
                        let gang = GangApp {
                            app,
                            delayed: svc
                                .launch_delays
                                .get(&app.id)
                                .is_some_and(|d| d.until > now),
                            timed_out: gang::timed_out(svc, app, now),
                            allowed: where_allowed(st, app),
                        };
                        gangs.add(gang, &mut budget, &mut only_on, &mut unmet);
                    }
                }
                continue;
            }
            let want = app.instances as usize;
            let mut missing = want.saturating_sub(active.len());
            if svc.restarting(&app.id) {
                // A rolling replace (spec §2.8) decides both what goes and what comes.
                let (kill, launch) = replace::kills_and_launches(svc, app, &active);
                to_kill.extend(kill);
                missing = launch;
            } else if active.len() > want {
                // Unreachable ones first, then by the app's killSelection (youngest by default).
                let oldest_first = app.kill_selection == KillSelection::OldestFirst;
                active.sort_by(|a, b| {
                    let ua = a.state == TaskState::TaskUnreachable;
                    let ub = b.state == TaskState::TaskUnreachable;
                    let age = b
                        .staged_at
                        .partial_cmp(&a.staged_at)
                        .unwrap_or(std::cmp::Ordering::Equal);
                    ub.cmp(&ua)
                        .then(if oldest_first { age.reverse() } else { age })
                });
                to_kill.extend(
                    active[..active.len() - want]
                        .iter()
                        .map(|t| t.info.task_id.clone()),
                );
            }
            if missing > 0 {
                let delayed = svc
                    .launch_delays
                    .get(&app.id)
                    .is_some_and(|d| d.until > now);
                if delayed {
                    continue;
                }
                match where_allowed(st, app) {
                    Ok(Some(allowed)) => {
                        only_on.insert(app.id.clone(), allowed);
                    }
                    Ok(None) => {}
                    Err(reason) => {
                        unmet.push((app.id.clone(), reason, missing));
                        continue;
                    }
                }
                // Bounded work per run, whatever an app asks for: the rest comes next run.
                let take = missing.min(budget);
                if take == 0 {
                    deferred.push(app.id.clone());
                    continue;
                }
                budget -= take;
                apps_demanded.insert(app.id.clone(), missing);
                for _ in 0..take {
                    demands.push(TaskDemand {
                        task_id: new_task_id(&app.id),
                        group: app.id.clone(),
                        resources: instance_resources(app),
                        port_count: app.host_port_count(),
                        numa: app.effective_numa_policy(),
                        gpu_profile: app.gpu_profile.as_deref().map(Into::into),
                    });
                }
            }
        }
        for (id, why) in std::mem::take(&mut gangs.timeouts) {
            if let Some(app) = svc.apps.get(&id).cloned() {
                gang::give_up(svc, &app, &why, now);
            }
        }
        apps_demanded.extend(
            gangs
                .demands
                .iter()
                .map(|(a, d)| (a.clone(), d.ranks.len())),
        );
        deferred.extend(gangs.deferred.iter().cloned());
        let health_kills = super::health::kills_due(st, svc);
        let mut events = deployment_events;
        events.extend(
            health_kills
                .iter()
                .filter_map(|tid| st.tasks().get(tid))
                .filter_map(|t| crate::events::emit::unhealthy_kill(t, &st.hostname(t))),
        );
        to_kill.extend(health_kills);
        let mut kills = Vec::new();
        for tid in to_kill {
            if let Some(t) = st.tasks().get(&tid) {
                let t = changed
                    .iter()
                    .position(|c| c.info.task_id == tid)
                    .map(|i| changed.swap_remove(i))
                    .unwrap_or_else(|| t.clone());
                kills.push(MasterMessage::KillTask {
                    task_id: tid.clone(),
                    grace_period_secs: Some(t.info.kill_grace_period_secs),
                });
                changed.push(TaskRecord {
                    kill_requested: true,
                    ..t
                });
            }
        }
        let satisfied: Vec<String> = svc
            .waiting
            .keys()
            .filter(|a| {
                !apps_demanded.contains_key(*a)
                    && !unmet.iter().any(|u| &u.0 == *a)
                    && !deferred.contains(a)
                    && !gangs.kept.contains(*a)
            })
            .cloned()
            .collect();
        for a in satisfied {
            svc.waiting.remove(&a);
        }
        for (app, reason, count) in unmet {
            let since = svc.waiting.get(&app).map_or(now, |w| w.since);
            svc.waiting.insert(
                app,
                Waiting {
                    since,
                    reason,
                    count,
                },
            );
        }
        writes.extend(changed.iter().map(|t| Write::PutTask(Box::new(t.clone()))));
        core.store().apply(writes).await?;
        for event in events {
            core.publish(event);
        }
        for t in changed {
            st.put_task(t);
        }
        for k in kills {
            if let MasterMessage::KillTask { task_id, .. } = &k {
                tracing::info!(task = %task_id, "killing a task its app no longer wants");
                if let Some(agent) = st.tasks().get(task_id).map(|t| t.info.agent_id.clone()) {
                    Core::send(st, &agent, k);
                }
            }
        }
        let versions: HashMap<String, String> = apps_demanded
            .keys()
            .filter_map(|a| Some((a.clone(), svc.apps.get(a)?.version.clone())))
            .collect();
        let more = !deferred.is_empty() || budget == 0;
        (
            st.snapshot(),
            demands,
            gangs.demands,
            apps_demanded,
            versions,
            only_on,
            more,
        )
    };
    if demands.is_empty() && gang_demands.is_empty() {
        return Ok(());
    }

    // Plan without the lock; re-check against the state as it is now before applying.
    let plan = alloc::place_restricted(&snapshot, &demands, &only_on, core.cfg.place_options);
    let mut gangs = gang::place(&snapshot, gang_demands, &only_on, core.cfg.place_options);
    let by_task: HashMap<&TaskId, &TaskDemand> = demands.iter().map(|d| (&d.task_id, d)).collect();
    let mut guard = core.state().await;
    let MasterState {
        cluster: st,
        services: svc,
        ..
    } = &mut *guard;
    let current = st.snapshot();
    let mut plan = plan;
    let conflicts = gang::check(&current, &mut gangs, &plan, &demands);
    for c in &conflicts {
        tracing::info!(conflict = %c, "placement no longer fits; retrying next run");
    }
    plan.drop_conflicts(&conflicts);
    // Accept each app's placements in order only while its constraints hold; the rest are
    // planned again on the next run, which follows at once.
    let mut refused: HashSet<TaskId> = HashSet::new();
    for app_id in apps_demanded.keys() {
        let Some(app) = svc.apps.get(app_id) else {
            continue;
        };
        let constraints = CompiledConstraints::new(&app.constraint_list());
        if constraints.is_empty() {
            continue;
        }
        let mine: Vec<&alloc::Placement> = plan
            .placements
            .iter()
            .filter(|p| by_task.get(&p.task_id).is_some_and(|d| &d.group == app_id))
            .collect();
        let agents = constraint_agents(st, app);
        let per_agent = instances_per_agent(st, app_id);
        let targets: Vec<&AgentId> = mine.iter().map(|p| &p.agent_id).collect();
        let accepted = constraints.filter_sequential(&agents, &per_agent, &targets);
        for (p, ok) in mine.iter().zip(accepted) {
            if !ok {
                refused.insert(p.task_id.clone());
            }
        }
    }
    let mut writes = Vec::new();
    let mut launches = Vec::new();
    let mut placed: HashMap<String, usize> = HashMap::new();
    for g in gangs {
        let Some(app) = svc.apps.get(&g.app) else {
            continue;
        };
        if versions.get(&g.app) != Some(&app.version) {
            continue; // replaced meanwhile: the next run decides again
        }
        let ranks = g.demand.ranks.len();
        let outcome = match g.outcome {
            GangOutcome::Placed(p) => gang_constraints(st, app, p),
            waiting => waiting,
        };
        let reason = match outcome {
            GangOutcome::Placed(p) => match gang::records(st, app, &p, now) {
                Some(recs) => {
                    tracing::info!(app = %app.id, ranks, "launching a gang");
                    placed.insert(app.id.clone(), ranks);
                    writes.extend(recs.iter().map(|r| Write::PutTask(Box::new(r.clone()))));
                    launches.extend(recs);
                    continue;
                }
                None => "an agent chosen for the gang is gone".to_owned(),
            },
            GangOutcome::Waiting { reason, .. } => reason,
        };
        let since = svc.waiting.get(&g.app).map_or(now, |w| w.since);
        svc.waiting.insert(
            g.app.clone(),
            Waiting {
                since,
                reason,
                count: ranks,
            },
        );
    }
    for p in &plan.placements {
        let Some(d) = by_task.get(&p.task_id) else {
            continue;
        };
        if refused.contains(&p.task_id) {
            continue; // would break a constraint given the ones placed before it
        }
        let Some(app) = svc.apps.get(&d.group) else {
            continue; // deleted meanwhile
        };
        if versions.get(&d.group) != Some(&app.version) {
            continue; // replaced meanwhile: the next run counts again
        }
        let info = task_info(
            app,
            p.task_id.clone(),
            p.agent_id.clone(),
            p.ports.clone(),
            p.numa.clone(),
        );
        let rec = TaskRecord {
            info: info.clone(),
            owner: TaskOwner::App {
                id: app.id.clone(),
                version: app.version.clone(),
            },
            state: TaskState::TaskStaging,
            status: None,
            last_seq: 0,
            staged_at: now,
            started_at: None,
            unreachable_since: None,
            expunged: false,
            kill_requested: false,
            health: Vec::new(),
        };
        *placed.entry(app.id.clone()).or_default() += 1;
        writes.push(Write::PutTask(Box::new(rec.clone())));
        launches.push(rec);
    }
    // Stored before anything is launched: a crash now leaves STAGING records the agents do not
    // know, which re-registration turns into TASK_DROPPED and replaces.
    core.store().apply(writes).await?;
    for rec in launches {
        let agent = rec.info.agent_id.clone();
        tracing::info!(task = %rec.info.task_id, agent = %agent, "launching");
        let msg = MasterMessage::LaunchTask {
            task: Box::new(rec.info.clone()),
        };
        st.put_task(rec);
        st.counters.tasks_launched += 1;
        Core::send(st, &agent, msg);
    }
    // The budget ran out and this run made progress: plan the rest at once rather than in a
    // second. Without progress (nothing fits) the next run waits for a change or the tick.
    if (more || !refused.is_empty()) && !placed.is_empty() {
        core.wake();
    }
    // Say why the rest waits.
    for u in &plan.unplaced {
        if let Some(d) = by_task.get(&u.task_id) {
            let missing = apps_demanded.get(&d.group).copied().unwrap_or(0);
            let left = missing.saturating_sub(placed.get(&d.group).copied().unwrap_or(0));
            let since = svc.waiting.get(&d.group).map_or(now, |w| w.since);
            svc.waiting.insert(
                d.group.clone(),
                Waiting {
                    since,
                    reason: u.reason.clone(),
                    count: left,
                },
            );
        }
    }
    for (app, n) in &apps_demanded {
        if placed.get(app).copied().unwrap_or(0) >= *n {
            svc.waiting.remove(app);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::counts_as_active;
    use crate::store::records::{TaskOwner, TaskRecord};
    use gantry_proto::{TaskInfo, TaskState};

    fn task(state: TaskState, unreachable_since: Option<f64>) -> TaskRecord {
        TaskRecord {
            info: TaskInfo::default(),
            owner: TaskOwner::App {
                id: "/a".into(),
                version: "v".into(),
            },
            state,
            status: None,
            last_seq: 0,
            staged_at: 0.0,
            started_at: None,
            unreachable_since,
            expunged: false,
            kill_requested: false,
            health: Vec::new(),
        }
    }

    #[test]
    fn unreachable_tasks_stop_counting_after_inactive_after() {
        let running = task(TaskState::TaskRunning, None);
        assert!(counts_as_active(&running, Some(0.0), 10.0));
        let unreachable = task(TaskState::TaskUnreachable, Some(5.0));
        assert!(
            !counts_as_active(&unreachable, Some(0.0), 5.0),
            "default 0: replaced at once"
        );
        assert!(
            counts_as_active(&unreachable, Some(300.0), 100.0),
            "within inactiveAfter"
        );
        assert!(!counts_as_active(&unreachable, Some(300.0), 306.0));
        assert!(
            counts_as_active(&unreachable, None, 1e9),
            "strategy disabled: never replaced"
        );
        let mut killed = task(TaskState::TaskRunning, None);
        killed.kill_requested = true;
        assert!(
            !counts_as_active(&killed, Some(0.0), 0.0),
            "a task being killed does not count"
        );
    }
}
