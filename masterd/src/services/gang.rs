//! Gang apps (docs/gang.md, "Marathon apps"): an app with `gang: true` runs its `instances` as one
//! gang, placed whole with the allocator's `place_gangs` or not at all, with torchrun's rank
//! variables; a gang that is broken (an instance ended), out of date or of the wrong size is
//! killed whole and, once all of it has ended, placed again whole (after the app's backoff).

use super::app::AppDefinition;
use super::backoff::next_delay;
use super::controller::MAX_NEW_TASKS_PER_RUN;
use super::launch::{instance_resources, new_task_id, task_info};
use super::placement_constraints::CompiledConstraints;
use super::state::{LaunchDelay, ServiceState, Waiting};
use crate::alloc::{self, ClusterSnapshot, Conflict, GangDemand, GangOutcome, Plan, TaskDemand};
use crate::cluster::ClusterState;
use crate::store::records::{TaskOwner, TaskRecord};
use gantry_proto::{AgentId, PortRanges, TaskId, TaskState};
use std::collections::{HashMap, HashSet};

/// The default `gangTimeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// What the controller does with a gang app this run.
#[derive(Clone, Debug, PartialEq)]
pub enum GangStep {
    /// Nothing: the gang runs whole and current, or the app is suspended (`instances: 0`).
    Keep,
    /// The gang is broken, out of date or of the wrong size: kill these tasks (all it has left).
    Kill(Vec<TaskId>),
    /// Tasks of the previous gang are still ending: the new gang waits for them.
    Ending,
    /// No task left: place a whole new gang.
    Place,
}

/// Decides a gang app's step from its `tasks` (all of them), the ones that count as running
/// instances (`active`) and whether a task runs the app's current config (`current`).
pub fn step(
    app: &AppDefinition,
    tasks: &[&TaskRecord],
    active: &[&TaskRecord],
    mut current: impl FnMut(&TaskRecord) -> bool,
) -> GangStep {
    let want = app.instances as usize;
    if active.len() == want && active.iter().all(|t| current(t)) {
        return GangStep::Keep;
    }
    let live = |t: &&&TaskRecord| !t.state.is_terminal() && !t.expunged;
    let kill: Vec<TaskId> = tasks
        .iter()
        .filter(live)
        .filter(|t| !t.kill_requested)
        .map(|t| t.info.task_id.clone())
        .collect();
    if !kill.is_empty() {
        return GangStep::Kill(kill);
    }
    // Unreachable tasks cannot be waited for: they end when their agent comes back or are
    // expunged.
    let ending = tasks
        .iter()
        .filter(live)
        .any(|t| t.state != TaskState::TaskUnreachable);
    match (ending, want) {
        (true, _) => GangStep::Ending,
        (false, 0) => GangStep::Keep,
        (false, _) => GangStep::Place,
    }
}

/// The app's gang timeout in seconds (0: wait forever).
pub fn timeout_secs(app: &AppDefinition) -> u64 {
    app.gang_timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECS)
}

/// The demand of a new gang of `app`: `instances` ranks of one instance's resources; rank 0 asks
/// for one host port more than the app's, the gang's `MASTER_PORT`.
pub fn demand(app: &AppDefinition) -> GangDemand {
    GangDemand {
        ranks: (0..app.instances)
            .map(|rank| TaskDemand {
                task_id: new_task_id(&app.id),
                group: app.id.clone(),
                resources: instance_resources(app),
                port_count: app.host_port_count() + usize::from(rank == 0),
                numa: app.effective_numa_policy(),
                gpu_profile: app.gpu_profile.as_deref().map(Into::into),
            })
            .collect(),
    }
}

/// Has the gang of `app` waited (`waiting`) longer than its timeout? The clock starts when it
/// began waiting, or when its last launch delay ended if that is later.
pub fn timed_out(svc: &ServiceState, app: &AppDefinition, now: f64) -> Option<String> {
    let timeout = timeout_secs(app);
    let w = svc.waiting.get(&app.id)?;
    let start = svc
        .launch_delays
        .get(&app.id)
        .map_or(w.since, |d| w.since.max(d.until));
    (timeout > 0 && now - start >= timeout as f64).then(|| w.reason.clone())
}

/// Gives up on placing `app`'s gang for now: the app backs off as after a failure, and its
/// waiting reason says the gang could not be placed in time.
pub fn give_up(svc: &mut ServiceState, app: &AppDefinition, why: &str, now: f64) {
    let (base, factor, max) = (
        app.backoff_seconds as f64,
        app.backoff_factor,
        app.max_launch_delay_seconds as f64,
    );
    let d = next_delay(svc.launch_delays.get(&app.id), base, factor, max, now);
    tracing::warn!(app = %app.id, delay = d, "gang not placed in time: the app backs off");
    svc.launch_delays.insert(
        app.id.clone(),
        LaunchDelay {
            delay_secs: d,
            until: now + d,
        },
    );
    let since = svc.waiting.get(&app.id).map_or(now, |w| w.since);
    svc.waiting.insert(
        app.id.clone(),
        Waiting {
            since,
            reason: format!(
                "the gang could not be placed within gangTimeoutSeconds ({} s): {why}; \
                 trying again in {d} s (backoff)",
                timeout_secs(app)
            ),
            count: app.instances as usize,
        },
    );
}

/// One gang planned this run: its app and demand, and what placement made of it.
pub struct PlannedGang {
    pub app: String,
    pub demand: GangDemand,
    pub outcome: GangOutcome,
}

/// Places `gangs` (app, demand) whole on `snapshot`.
pub fn place(
    snapshot: &ClusterSnapshot,
    gangs: Vec<(String, GangDemand)>,
    only_on: &HashMap<String, HashSet<AgentId>>,
    options: alloc::PlaceOptions,
) -> Vec<PlannedGang> {
    if gangs.is_empty() {
        return Vec::new();
    }
    let demands: Vec<GangDemand> = gangs.iter().map(|g| g.1.clone()).collect();
    let outcomes = alloc::place_gangs(snapshot, &demands, only_on, rand::random(), options);
    gangs
        .into_iter()
        .zip(outcomes)
        .map(|((app, demand), outcome)| PlannedGang {
            app,
            demand,
            outcome,
        })
        .collect()
}

/// Replays the gangs' placements, then `plan`'s, onto `snapshot` (the state as it is now). A gang
/// with any rank that no longer fits waits whole; the conflicts of `plan` are returned.
pub fn check(
    snapshot: &ClusterSnapshot,
    gangs: &mut [PlannedGang],
    plan: &Plan,
    demands: &[TaskDemand],
) -> Vec<Conflict> {
    let mut all = Plan::default();
    let mut all_demands: Vec<TaskDemand> = Vec::new();
    let mut owner: Vec<(usize, usize)> = Vec::new();
    for (k, g) in gangs.iter().enumerate() {
        let placed = g.outcome.placements();
        all.placements.extend(placed.iter().cloned());
        owner.extend((0..placed.len()).map(|rank| (k, rank)));
        all_demands.extend(g.demand.ranks.iter().cloned());
    }
    let first_plain = all.placements.len();
    all.placements.extend(plan.placements.iter().cloned());
    all_demands.extend(demands.iter().cloned());
    let mut out = Vec::new();
    for mut c in alloc::check(snapshot, &all, &all_demands) {
        if c.index >= first_plain {
            c.index -= first_plain;
            out.push(c);
        } else if let Some(&(k, rank)) = owner.get(c.index) {
            let n = gangs[k].demand.ranks.len();
            gangs[k].outcome = GangOutcome::Waiting {
                fit: n - 1,
                reason: format!(
                    "gang of {n} needs {n} placements; rank {rank} lost its place on agent {}: {}",
                    c.agent_id, c.cause
                ),
            };
        }
    }
    out
}

/// The task records of a placed gang of `app` (rank order), with each rank's variables; `None`
/// when an agent chosen is gone.
pub fn records(
    st: &ClusterState,
    app: &AppDefinition,
    placements: &[alloc::Placement],
    now: f64,
) -> Option<Vec<TaskRecord>> {
    let hosts: Vec<String> = placements
        .iter()
        .map(|p| {
            st.agents
                .get(&p.agent_id)
                .map(|a| a.record.info.hostname.clone())
        })
        .collect::<Option<_>>()?;
    let agents: Vec<&AgentId> = placements.iter().map(|p| &p.agent_id).collect();
    let app_ports = app.host_port_count();
    let master_port = placements.first().and_then(|p| p.ports.last()).copied();
    let env = crate::batch::gang::rank_env(&agents, &hosts, master_port);
    let out = placements
        .iter()
        .zip(env)
        .map(|(p, vars)| {
            let own: Vec<u16> = p.ports.iter().take(app_ports).copied().collect();
            let mut info = task_info(
                app,
                p.task_id.clone(),
                p.agent_id.clone(),
                own,
                p.numa.clone(),
            );
            info.command.environment.extend(vars);
            // Rank 0 also holds the gang's MASTER_PORT.
            info.resources.ports = PortRanges::from_ports(&p.ports);
            TaskRecord {
                info,
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
            }
        })
        .collect();
    Some(out)
}

/// Gang apps met by one controller run: the gangs to place (app, demand) and, for the others,
/// what keeps them waiting.
#[derive(Default)]
pub struct GangRun {
    pub demands: Vec<(String, GangDemand)>,
    /// Apps whose waiting reason stays while they back off.
    pub kept: HashSet<String>,
    /// Apps whose gang waited past its timeout, with the last reason.
    pub timeouts: Vec<(String, String)>,
    /// Apps left for the next run (the run's budget is spent).
    pub deferred: Vec<String>,
}

/// A gang app that needs a new gang, and what stands in its way.
pub struct GangApp<'a> {
    pub app: &'a AppDefinition,
    pub delayed: bool,
    pub timed_out: Option<String>,
    pub allowed: Result<Option<HashSet<AgentId>>, String>,
}

impl GangRun {
    /// Plans a new gang for `g.app` unless it backs off, timed out, has no agent or exceeds the
    /// run's budget (a gang is never split over runs; one gang may exceed an untouched budget).
    pub fn add(
        &mut self,
        g: GangApp<'_>,
        budget: &mut usize,
        only_on: &mut HashMap<String, HashSet<AgentId>>,
        unmet: &mut Vec<(String, String, usize)>,
    ) {
        let id = &g.app.id;
        let want = g.app.instances as usize;
        if g.delayed {
            self.kept.insert(id.clone());
            return;
        }
        if let Some(why) = g.timed_out {
            self.kept.insert(id.clone());
            self.timeouts.push((id.clone(), why));
            return;
        }
        match g.allowed {
            Err(reason) => {
                unmet.push((id.clone(), reason, want));
                return;
            }
            Ok(Some(allowed)) => {
                only_on.insert(id.clone(), allowed);
            }
            Ok(None) => {}
        }
        if want > *budget && *budget < MAX_NEW_TASKS_PER_RUN {
            self.deferred.push(id.clone());
            return;
        }
        *budget = budget.saturating_sub(want);
        self.demands.push((id.clone(), demand(g.app)));
    }
}

/// A placed gang kept only if its placements, in rank order, keep the app's constraints; else
/// it waits whole with the reason.
pub fn gang_constraints(
    st: &ClusterState,
    app: &AppDefinition,
    placements: Vec<alloc::Placement>,
) -> GangOutcome {
    let constraints = CompiledConstraints::new(&app.constraint_list());
    if constraints.is_empty() {
        return GangOutcome::Placed(placements);
    }
    let agents = super::controller::constraint_agents(st, app);
    let targets: Vec<&AgentId> = placements.iter().map(|p| &p.agent_id).collect();
    let ok = constraints.filter_sequential(
        &agents,
        &super::controller::instances_per_agent(st, &app.id),
        &targets,
    );
    match ok.iter().position(|ok| !ok) {
        None => GangOutcome::Placed(placements),
        Some(rank) => {
            let n = placements.len();
            GangOutcome::Waiting {
                fit: rank,
                reason: format!(
                    "gang of {n} needs {n} placements; rank {rank} would break the app's \
                     constraints on agent {} (ranks are placed without them, then checked)",
                    placements[rank].agent_id
                ),
            }
        }
    }
}

#[cfg(test)]
#[path = "gang_tests.rs"]
mod tests;
