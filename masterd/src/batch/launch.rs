//! Queued runs onto agents: which may start now (their time has come, the job allows another run,
//! an array's throttle has room, an agent can run the job's container), where (the same allocator
//! as services, GPU/NUMA placement included; gangs whole, see `super::gang`), and the task each
//! becomes.

use super::constraints::Compiled;
use super::job::{run_command, task_id, ContainerType, JobDefinition};
use super::pass::Pass;
use super::run::{RunRecord, RunState};
use super::state::BatchState;
use crate::alloc::{self, TaskDemand};
use crate::cluster::ClusterState;
use crate::services::requirements::{all_met, unmet_reason, Need};
use crate::store::records::{TaskOwner, TaskRecord};
use gantry_gpu::NumaPolicy;
use gantry_proto::{AgentId, NumaPlacement, PortRanges, Resources, TaskId, TaskInfo, TaskState};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The most runs one pass launches; the rest go in the next pass, which follows at once.
pub const MAX_LAUNCHES_PER_PASS: usize = 2048;

/// The allocator group of a job's tasks (tasks of one group are spread over agents).
pub fn group(job: &str) -> String {
    format!("job:{job}")
}

/// What a job's run needs of an agent besides resources.
fn needs(def: &JobDefinition) -> Vec<Need> {
    match &def.container {
        Some(c) if c.kind == ContainerType::Docker => vec![Need::DockerContainerizer],
        Some(_) => vec![Need::DockerImages],
        None => Vec::new(),
    }
}

/// The resources one run asks for.
pub(super) fn resources(def: &JobDefinition) -> Resources {
    Resources {
        cpus: def.cpus,
        mem: def.mem,
        disk: def.disk,
        gpus: def.gpus.unwrap_or(0),
        ports: PortRanges::default(),
    }
}

pub(super) fn numa(def: &JobDefinition) -> NumaPolicy {
    def.numa_policy.unwrap_or(if def.gpus.unwrap_or(0) > 0 {
        NumaPolicy::Prefer
    } else {
        NumaPolicy::None
    })
}

/// The task of one run, placed on `agent` (whose hostname is `host`).
pub fn run_task(
    def: &JobDefinition,
    run: &RunRecord,
    agent: AgentId,
    host: &str,
    placement: Option<NumaPlacement>,
) -> TaskInfo {
    let (id, command) = run_command(
        def,
        run.due_ms,
        run.attempt,
        run.arguments.as_deref(),
        run.array_index.or(run.gang_rank),
        host,
    );
    let mut labels = BTreeMap::new();
    labels.insert("job_name".into(), def.name.clone());
    labels.insert("run_id".into(), run.id.to_string());
    labels.insert("framework_id".into(), "chronos".into());
    TaskInfo {
        task_id: TaskId(id),
        name: format!("ChronosTask:{}", def.name),
        agent_id: agent,
        command,
        resources: resources(def),
        ports: Vec::new(),
        kill_grace_period_secs: 3.0,
        labels,
        placement,
        container: gantry_proto::ContainerSpec {
            docker: super::docker_task::docker_spec(def),
            image: super::docker_task::native_image(def),
            ..Default::default()
        },
        health_checks: Vec::new(),
    }
}

/// Launches what can be launched of the queued runs. Returns true when the pass stopped at its
/// budget with runs still startable (the controller runs again at once).
pub fn launch_queued(
    b: &mut BatchState,
    st: &ClusterState,
    pass: &mut Pass,
    options: alloc::PlaceOptions,
    now: f64,
) -> bool {
    // Runs that may start, high-priority jobs first, then oldest first.
    let mut ready: Vec<u64> = b
        .active
        .values()
        .filter(|r| r.state == RunState::Queued && r.not_before <= now)
        .map(|r| r.id)
        .collect();
    ready.sort_by_key(|id| {
        let hp = b
            .active
            .get(id)
            .and_then(|r| b.jobs.get(&r.job))
            .is_some_and(|j| j.def.high_priority);
        (!hp, *id)
    });
    // Launched runs per job and per array run, counting this pass's launches.
    let mut running_jobs: HashMap<String, u64> = HashMap::new();
    let mut running_occ: HashMap<u64, u32> = HashMap::new();
    for r in b.active.values().filter(|r| r.state == RunState::Launched) {
        running_jobs.entry(r.job.clone()).or_insert(r.occurrence);
        *running_occ.entry(r.occurrence).or_default() += 1;
    }
    let agents: Vec<_> = st.agents.values().filter(|a| a.accepts_tasks()).collect();
    let mut demands: Vec<TaskDemand> = Vec::new();
    let mut by_task: HashMap<TaskId, u64> = HashMap::new();
    // Jobs that only some agents may run (constraints, container): those agents.
    let mut only_on: HashMap<String, HashSet<AgentId>> = HashMap::new();
    let mut discard: Vec<u64> = Vec::new();
    // Ready ranks of gang attempts, by (occurrence, attempt): (rank, run id).
    let mut gangs: BTreeMap<(u64, u32), Vec<(u32, u64)>> = BTreeMap::new();
    let mut more = false;
    for id in ready {
        let Some(r) = b.active.get(&id) else { continue };
        let Some(job) = b.jobs.get(&r.job) else {
            discard.push(id);
            continue;
        };
        let def = &job.def;
        if def.disabled {
            discard.push(id);
            continue;
        }
        let why = |b: &mut BatchState, reason: String| {
            if let Some(r) = b.active.get_mut(&id) {
                r.waiting = Some(reason);
            }
        };
        if let Some(&other) = running_jobs.get(&r.job) {
            if !def.concurrent && other != r.occurrence {
                let reason = "an earlier run of the job is still running (concurrent is false)";
                why(b, reason.into());
                continue;
            }
        }
        if let Some(max) = def.array.as_ref().and_then(|a| a.max_running) {
            if running_occ.get(&r.occurrence).copied().unwrap_or(0) >= max {
                why(b, format!("the array runs {max} tasks at a time (%{max})"));
                continue;
            }
        }
        let need = needs(def);
        if !need.is_empty() && !agents.iter().any(|a| all_met(&need, &a.record.info)) {
            let reason = unmet_reason(&need, agents.iter().map(|a| &a.record.info));
            why(b, reason);
            continue;
        }
        let constraints = Compiled::new(&def.constraints);
        if constraints.is_some() || !need.is_empty() {
            let eligible = only_on.entry(group(&r.job)).or_insert_with(|| {
                agents
                    .iter()
                    .filter(|a| all_met(&need, &a.record.info))
                    .filter(|a| {
                        constraints
                            .as_ref()
                            .is_none_or(|c| c.accept(&a.record.info))
                    })
                    .map(|a| a.record.id.clone())
                    .collect()
            });
            if eligible.is_empty() {
                let reason = "no agent matches the job's constraints".to_owned();
                why(b, reason);
                continue;
            }
        }
        if let Some(rank) = r.gang_rank {
            running_jobs.entry(r.job.clone()).or_insert(r.occurrence);
            gangs
                .entry((r.occurrence, r.attempt))
                .or_default()
                .push((rank, id));
            continue;
        }
        if demands.len() == MAX_LAUNCHES_PER_PASS {
            more = true;
            break;
        }
        let tid = TaskId(task_id(
            r.due_ms,
            r.attempt,
            &r.job,
            r.array_index,
            &r.arguments
                .clone()
                .unwrap_or_else(|| def.arguments.join(" ")),
        ));
        if st.tasks().contains_key(&tid) || by_task.contains_key(&tid) {
            // Two runs with one due time (manual runs in one millisecond): the next pass.
            continue;
        }
        running_jobs.entry(r.job.clone()).or_insert(r.occurrence);
        *running_occ.entry(r.occurrence).or_default() += 1;
        by_task.insert(tid.clone(), id);
        demands.push(TaskDemand {
            task_id: tid,
            group: group(&r.job),
            resources: resources(def),
            port_count: 0,
            numa: numa(def),
            gpu_profile: def.gpu_profile.as_deref().map(Into::into),
        });
    }
    for id in discard {
        if let Some(mut r) = b.active.remove(&id) {
            r.state = RunState::Discarded;
            r.ended_at = Some(now);
            r.message = Some("the job was disabled or deleted before the run started".into());
            let (job, occurrence) = (r.job.clone(), r.occurrence);
            super::pass::to_history(b, pass, r);
            let at = chrono::Utc::now();
            super::pass::close_if_done(b, pass, &job, occurrence, at, now);
        }
    }
    let ready_gangs = super::gang::ready(b, pass, gangs, now);
    if demands.is_empty() && ready_gangs.is_empty() {
        return more;
    }
    let snapshot = st.snapshot();
    let mut plan = if demands.is_empty() {
        alloc::Plan::default()
    } else {
        alloc::place_restricted(&snapshot, &demands, &only_on, options)
    };
    // Gangs are placed on the same snapshot and checked first, so tasks of ordinary jobs never
    // starve them; an ordinary task that lost its place to a gang waits for the next pass.
    let mut placed_gangs = super::gang::place(&snapshot, ready_gangs, &only_on, options);
    let conflicts = super::gang::check(&snapshot, &mut placed_gangs, &plan, &demands);
    plan.drop_conflicts(&conflicts);
    super::gang::launch(b, st, pass, placed_gangs, now);
    for p in &plan.placements {
        let Some(&id) = by_task.get(&p.task_id) else {
            continue;
        };
        let Some(r) = b.active.get(&id) else { continue };
        let Some(job) = b.jobs.get(&r.job) else {
            continue;
        };
        let Some(agent) = st.agents.get(&p.agent_id) else {
            continue;
        };
        if only_on
            .get(&group(&r.job))
            .is_some_and(|ok| !ok.contains(&p.agent_id))
        {
            continue; // placed where it may not run: the next pass tries again
        }
        let host = agent.record.info.hostname.clone();
        let info = run_task(&job.def, r, p.agent_id.clone(), &host, p.numa.clone());
        mark_launched(b, pass, id, info, host, now);
    }
    for u in &plan.unplaced {
        if let Some(r) = by_task.get(&u.task_id).and_then(|id| b.active.get_mut(id)) {
            r.waiting = Some(u.reason.clone());
        }
    }
    more
}

/// Stores run `id` as launched with task `info` on the agent named `host`, and queues the launch.
pub(super) fn mark_launched(
    b: &mut BatchState,
    pass: &mut Pass,
    id: u64,
    info: TaskInfo,
    host: String,
    now: f64,
) {
    let Some(r) = b.active.get_mut(&id) else {
        return;
    };
    let rec = TaskRecord {
        info,
        owner: TaskOwner::JobRun {
            job: r.job.clone(),
            run: id,
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
    r.state = RunState::Launched;
    r.task_id = Some(rec.info.task_id.0.clone());
    r.agent_id = Some(rec.info.agent_id.0.clone());
    r.host = Some(host);
    r.launched_at = Some(now);
    r.waiting = None;
    pass.put_run(r);
    pass.launches.push(rec);
}
