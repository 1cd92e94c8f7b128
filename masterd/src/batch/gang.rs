//! Gang jobs (docs/gang.md): the ranks of one attempt are launched together or not at all (the
//! allocator's `place_gangs`), wait with a reason, give up after `gangTimeoutSeconds`, get
//! torchrun's rank variables, and end together: one rank ending other than in success kills the
//! others, and the retry policy restarts the whole gang as the next attempt.

use super::job::task_id;
use super::launch::{group, mark_launched, numa, resources, run_task};
use super::pass::{close_if_done, to_history, Pass};
use super::run::{GangEnded, RunRecord, RunState};
use super::state::BatchState;
use crate::alloc::{self, ClusterSnapshot, Conflict, GangDemand, GangOutcome, Plan, TaskDemand};
use crate::cluster::ClusterState;
use crate::store::records::TaskRecord;
use chrono::{DateTime, Utc};
use gantry_jobs::RetryDecision;
use gantry_proto::{AgentId, PortRanges, TaskId};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A gang attempt whose ranks are all queued and due: its run ids in rank order and its demand.
pub struct ReadyGang {
    pub runs: Vec<u64>,
    pub demand: GangDemand,
}

/// Gang attempts that may be placed now, from the ready ranks of the pass (by occurrence and
/// attempt). Attempts that are incomplete or whose previous attempt still ends wait (with a
/// reason); attempts that waited longer than their job's `gangTimeoutSeconds` fail.
pub fn ready(
    b: &mut BatchState,
    pass: &mut Pass,
    gangs: BTreeMap<(u64, u32), Vec<(u32, u64)>>,
    now: f64,
) -> Vec<ReadyGang> {
    let mut out = Vec::new();
    for ((occurrence, attempt), mut ranks) in gangs {
        ranks.sort_unstable();
        let runs: Vec<u64> = ranks.iter().map(|&(_, id)| id).collect();
        let Some(first) = runs.first().and_then(|id| b.active.get(id)).cloned() else {
            continue;
        };
        let Some(def) = b.jobs.get(&first.job).map(|j| j.def.clone()) else {
            continue;
        };
        let Some(gang) = def.gang else { continue };
        let n = gang.size as usize;
        let reason = if ranks.len() != n || ranks.iter().enumerate().any(|(k, r)| r.0 as usize != k)
        {
            Some(format!(
                "gang of {n} needs all {n} ranks queued; {} are",
                ranks.len()
            ))
        } else if b.active.values().any(|r| {
            r.occurrence == occurrence && r.attempt < attempt && r.state == RunState::Launched
        }) {
            Some("the gang's previous attempt is still ending".to_owned())
        } else {
            None
        };
        let since = first.queued_at.max(first.not_before);
        let timeout = gang.timeout();
        if timeout > 0 && now - since >= timeout as f64 {
            let why = first.waiting.clone().or(reason).unwrap_or_default();
            give_up(b, pass, &runs, &first.job, occurrence, timeout, &why, now);
            continue;
        }
        if let Some(reason) = reason {
            set_waiting(b, &runs, &reason);
            continue;
        }
        let args = first
            .arguments
            .clone()
            .unwrap_or_else(|| def.arguments.join(" "));
        let demand = GangDemand {
            ranks: ranks
                .iter()
                .map(|&(rank, _)| TaskDemand {
                    task_id: TaskId(task_id(
                        first.due_ms,
                        attempt,
                        &first.job,
                        Some(rank),
                        &args,
                    )),
                    group: group(&first.job),
                    resources: resources(&def),
                    // Rank 0's port is the gang's MASTER_PORT.
                    port_count: usize::from(rank == 0),
                    numa: numa(&def),
                    gpu_profile: def.gpu_profile.as_deref().map(Into::into),
                })
                .collect(),
        };
        out.push(ReadyGang { runs, demand });
    }
    out
}

fn set_waiting(b: &mut BatchState, runs: &[u64], reason: &str) {
    for id in runs {
        if let Some(r) = b.active.get_mut(id) {
            r.waiting = Some(reason.to_owned());
        }
    }
}

/// Ends every rank of a gang attempt that waited past its timeout: the run fails, not retried.
#[allow(clippy::too_many_arguments)]
fn give_up(
    b: &mut BatchState,
    pass: &mut Pass,
    runs: &[u64],
    job: &str,
    occurrence: u64,
    timeout: u64,
    why: &str,
    now: f64,
) {
    tracing::warn!(
        job,
        run = occurrence,
        timeout,
        "gang not placed in time: the run fails"
    );
    for id in runs {
        if let Some(mut r) = b.active.remove(id) {
            r.state = RunState::Failed;
            r.ended_at = Some(now);
            r.message = Some(format!(
                "the gang could not be placed within gangTimeoutSeconds ({timeout} s): {why}"
            ));
            r.waiting = None;
            to_history(b, pass, r);
        }
    }
    close_if_done(b, pass, job, occurrence, Utc::now(), now);
}

/// Places the ready gangs on `snapshot` (each whole or not at all).
pub fn place(
    snapshot: &ClusterSnapshot,
    ready: Vec<ReadyGang>,
    only_on: &HashMap<String, HashSet<AgentId>>,
    options: alloc::PlaceOptions,
) -> Vec<(ReadyGang, GangOutcome)> {
    if ready.is_empty() {
        return Vec::new();
    }
    let demands: Vec<GangDemand> = ready.iter().map(|g| g.demand.clone()).collect();
    let outcomes = alloc::place_gangs(snapshot, &demands, only_on, rand::random(), options);
    ready.into_iter().zip(outcomes).collect()
}

/// Replays the gangs' placements, then `plan`'s, onto `snapshot`. A gang with any rank that does
/// not fit waits whole; the conflicts of `plan` are returned (indexes into `plan`).
pub fn check(
    snapshot: &ClusterSnapshot,
    gangs: &mut [(ReadyGang, GangOutcome)],
    plan: &Plan,
    demands: &[TaskDemand],
) -> Vec<Conflict> {
    let mut all = Plan::default();
    let mut all_demands: Vec<TaskDemand> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (k, (g, o)) in gangs.iter().enumerate() {
        all.placements.extend(o.placements().iter().cloned());
        owner.extend(std::iter::repeat_n(k, o.placements().len()));
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
        } else if let Some(&k) = owner.get(c.index) {
            let n = gangs[k].0.runs.len();
            gangs[k].1 = GangOutcome::Waiting {
                fit: n - 1,
                reason: format!(
                    "gang of {n} needs {n} placements; rank {} lost its place on agent {}: {}",
                    c.index - owner.iter().position(|&o| o == k).unwrap_or(0),
                    c.agent_id,
                    c.cause
                ),
            };
        }
    }
    out
}

/// Launches the placed gangs with their rank variables, and records why the others wait.
pub fn launch(
    b: &mut BatchState,
    st: &ClusterState,
    pass: &mut Pass,
    gangs: Vec<(ReadyGang, GangOutcome)>,
    now: f64,
) {
    for (g, outcome) in gangs {
        let placements = match outcome {
            GangOutcome::Waiting { reason, .. } => {
                set_waiting(b, &g.runs, &reason);
                continue;
            }
            GangOutcome::Placed(p) => p,
        };
        let hosts: Option<Vec<String>> = placements
            .iter()
            .map(|p| {
                st.agents
                    .get(&p.agent_id)
                    .map(|a| a.record.info.hostname.clone())
            })
            .collect();
        let Some(hosts) = hosts else {
            set_waiting(b, &g.runs, "an agent chosen for the gang is gone");
            continue;
        };
        let agents: Vec<&AgentId> = placements.iter().map(|p| &p.agent_id).collect();
        let master_port = placements[0].ports.first().copied();
        let env = rank_env(&agents, &hosts, master_port);
        let Some(job) = g
            .runs
            .first()
            .and_then(|id| b.active.get(id))
            .and_then(|r| b.jobs.get(&r.job))
            .map(|j| j.def.clone())
        else {
            continue;
        };
        tracing::info!(job = %job.name, ranks = placements.len(), "launching a gang");
        for ((id, p), (host, vars)) in g
            .runs
            .iter()
            .zip(&placements)
            .zip(hosts.into_iter().zip(env))
        {
            let Some(r) = b.active.get(id) else { continue };
            let mut info = run_task(&job, r, p.agent_id.clone(), &host, p.numa.clone());
            info.command.environment.extend(vars);
            if !p.ports.is_empty() {
                info.resources.ports = PortRanges::from_ports(&p.ports);
                info.ports = p.ports.clone();
            }
            mark_launched(b, pass, *id, info, host, now);
        }
    }
}

/// The variables of each rank (in rank order) of a gang placed on `agents` (host names `hosts`):
/// torchrun's `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `GROUP_RANK` (the agent's
/// position among the gang's agents, first use first), `MASTER_ADDR` and `MASTER_PORT` (rank 0's
/// host and port), and `GANTRY_GANG_HOSTS` (every rank's host, in rank order, comma-separated).
pub fn rank_env(
    agents: &[&AgentId],
    hosts: &[String],
    master_port: Option<u16>,
) -> Vec<BTreeMap<String, String>> {
    let world = agents.len();
    let mut order: Vec<&AgentId> = Vec::new();
    for a in agents {
        if !order.contains(a) {
            order.push(a);
        }
    }
    let all_hosts = hosts.join(",");
    let master = hosts.first().cloned().unwrap_or_default();
    (0..world)
        .map(|rank| {
            let here = agents[rank];
            let local_rank = agents[..rank].iter().filter(|a| **a == here).count();
            let local_world = agents.iter().filter(|a| **a == here).count();
            let group_rank = order.iter().position(|a| *a == here).unwrap_or(0);
            let mut env = BTreeMap::new();
            for (k, v) in [
                ("RANK", rank.to_string()),
                ("WORLD_SIZE", world.to_string()),
                ("LOCAL_RANK", local_rank.to_string()),
                ("LOCAL_WORLD_SIZE", local_world.to_string()),
                ("GROUP_RANK", group_rank.to_string()),
                ("MASTER_ADDR", master.clone()),
                ("GANTRY_GANG_HOSTS", all_hosts.clone()),
            ] {
                env.insert(k.to_owned(), v);
            }
            if let Some(port) = master_port {
                env.insert("MASTER_PORT".to_owned(), port.to_string());
            }
            env
        })
        .collect()
}

/// Ends one rank of a gang attempt (`decision` is the retry policy's for its own end). A rank that
/// ends other than in success ends its gang: the other ranks are marked and killed
/// ([`kill_ended`]), and a retry queues every rank again as the next attempt. A rank ended that
/// way ends as the rank that ended the gang did (unless it had succeeded), without a retry.
pub fn end_rank(
    b: &mut BatchState,
    pass: &mut Pass,
    mut r: RunRecord,
    decision: RetryDecision,
    now: f64,
    now_dt: DateTime<Utc>,
) {
    let own = match decision {
        RetryDecision::Succeeded => RunState::Succeeded,
        RetryDecision::Cancelled => RunState::Killed,
        RetryDecision::Retry { .. } | RetryDecision::GaveUp { .. } => RunState::Failed,
    };
    r.waiting = None;
    let (job, occurrence, attempt) = (r.job.clone(), r.occurrence, r.attempt);
    let rank = r.gang_rank.unwrap_or(0);
    if let Some(e) = r.gang_ended {
        r.state = if own == RunState::Succeeded {
            own
        } else {
            e.state
        };
        r.message = Some(format!(
            "ended with its gang: rank {} {}{}",
            e.rank,
            e.state.name(),
            r.message
                .as_ref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ));
    } else {
        r.state = own;
    }
    tracing::info!(job = %job, run = r.id, rank, attempt, state = r.state.name(), "gang rank ended");
    if r.gang_ended.is_none() && own != RunState::Succeeded {
        end_gang(b, pass, &r, own, now);
        if let RetryDecision::Retry { attempt: next, at } = decision {
            let size = b
                .jobs
                .get(&job)
                .and_then(|j| j.def.gang)
                .map_or(0, |g| g.size);
            for k in 0..size {
                let id = b.take_run_id();
                let mut q = RunRecord::queued(id, &job, r.trigger, r.due_ms, now);
                q.occurrence = occurrence;
                q.attempt = next;
                q.not_before = at.timestamp_millis() as f64 / 1000.0;
                q.arguments = r.arguments.clone();
                q.gang_rank = Some(k);
                pass.put_run(&q);
                b.active.insert(id, q);
            }
            pass.counters = true;
        }
    }
    to_history(b, pass, r);
    close_if_done(b, pass, &job, occurrence, now_dt, now);
}

/// Marks the other active ranks of `ended`'s attempt as ended by it; those not launched end now.
fn end_gang(b: &mut BatchState, pass: &mut Pass, ended: &RunRecord, state: RunState, now: f64) {
    let mark = GangEnded {
        rank: ended.gang_rank.unwrap_or(0),
        state,
    };
    let others: Vec<u64> = b
        .active
        .values()
        .filter(|o| o.occurrence == ended.occurrence && o.attempt == ended.attempt)
        .filter(|o| o.gang_rank.is_some() && o.id != ended.id && o.gang_ended.is_none())
        .map(|o| o.id)
        .collect();
    for id in others {
        let queued = b
            .active
            .get(&id)
            .is_some_and(|o| o.state == RunState::Queued);
        if queued {
            if let Some(mut o) = b.active.remove(&id) {
                o.state = state;
                o.ended_at = Some(now);
                o.message = Some(format!(
                    "ended with its gang: rank {} {}",
                    mark.rank,
                    state.name()
                ));
                to_history(b, pass, o);
            }
        } else if let Some(o) = b.active.get_mut(&id) {
            o.gang_ended = Some(mark);
            pass.put_run(o);
        }
    }
}

/// Kills the tasks of launched ranks whose gang has ended (once: the kill is stored as requested).
pub fn kill_ended(b: &BatchState, st: &ClusterState, pass: &mut Pass) {
    for r in b.active.values() {
        if r.state != RunState::Launched || r.gang_ended.is_none() {
            continue;
        }
        let task = r
            .task_id
            .as_ref()
            .and_then(|t| st.tasks().get(&TaskId(t.clone())))
            .filter(|t| !t.kill_requested);
        if let Some(t) = task {
            tracing::info!(job = %r.job, run = r.id, "killing a rank of an ended gang");
            pass.kills.push(TaskRecord {
                kill_requested: true,
                ..t.clone()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_get_consistent_torchrun_variables() {
        let (a, b) = (AgentId::from("a"), AgentId::from("b"));
        let agents = [&a, &b, &a, &b];
        let hosts: Vec<String> = ["ha", "hb", "ha", "hb"].map(String::from).to_vec();
        let env = rank_env(&agents, &hosts, Some(31005));
        let get = |r: usize, k: &str| env[r].get(k).cloned().unwrap_or_default();
        for r in 0..4 {
            assert_eq!(get(r, "RANK"), r.to_string());
            assert_eq!(get(r, "WORLD_SIZE"), "4");
            assert_eq!(get(r, "MASTER_ADDR"), "ha");
            assert_eq!(get(r, "MASTER_PORT"), "31005");
            assert_eq!(get(r, "GANTRY_GANG_HOSTS"), "ha,hb,ha,hb");
            assert_eq!(get(r, "LOCAL_WORLD_SIZE"), "2");
        }
        let locals: Vec<String> = (0..4).map(|r| get(r, "LOCAL_RANK")).collect();
        assert_eq!(locals, ["0", "0", "1", "1"]);
        let groups: Vec<String> = (0..4).map(|r| get(r, "GROUP_RANK")).collect();
        assert_eq!(groups, ["0", "1", "0", "1"]);
    }
}
