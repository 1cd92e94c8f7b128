//! ACCEPT with LAUNCH: the offers are checked (the framework's, outstanding, on one agent), each
//! TaskInfo becomes a Gantry command task owned by the framework and checked against what the
//! offers hold, the tasks are stored and sent to the agent; what is left over is declined with
//! the call's filters. Refused tasks get TASK_ERROR, tasks on invalid offers TASK_LOST (TASK_DROPPED
//! for partition-aware frameworks), as Mesos answers.

use super::calls::{offer_ids, CallError};
use super::records::{id_of, master_status, parse_resources};
use super::{offers, updates};
use crate::alloc::{self, NumaPolicy, TaskDemand};
use crate::api::guard::Caller;
use crate::cluster::Core;
use crate::state::MasterState;
use crate::store::records::{TaskOwner, TaskRecord};
use crate::store::Write;
use gantry_proto::task::Reason;
use gantry_proto::{
    AgentId, CommandInfo, FetchUri, MasterMessage, Resources, TaskId, TaskInfo, TaskState,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The most host ports one task may ask for (each one is listed in `TaskInfo.ports`).
const MAX_PORTS: u64 = 1000;

/// A task id Gantry can use as a sandbox directory name (Mesos refuses the same ones).
fn check_task_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id == "." || id == ".." {
        return Err(format!("Task ID '{id}' is invalid"));
    }
    if id
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "Task ID '{id}' contains invalid characters ('/', '\\', whitespace or control characters)"
        ));
    }
    Ok(())
}

/// `CommandInfo` in Mesos's JSON form into Gantry's.
fn command(c: &Value) -> Result<CommandInfo, String> {
    let mut environment = BTreeMap::new();
    for v in c["environment"]["variables"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"].as_str().is_some_and(|t| t != "VALUE") {
            return Err("only VALUE environment variables are supported (no secrets)".into());
        }
        let name = v["name"]
            .as_str()
            .ok_or("an environment variable has no 'name'")?;
        environment.insert(
            name.to_owned(),
            v["value"].as_str().unwrap_or("").to_owned(),
        );
    }
    let mut uris = Vec::new();
    for u in c["uris"].as_array().into_iter().flatten() {
        let uri = u["value"].as_str().ok_or("a URI has no 'value'")?;
        uris.push(FetchUri {
            uri: uri.to_owned(),
            extract: u["extract"].as_bool().unwrap_or(true),
            executable: u["executable"].as_bool().unwrap_or(false),
            cache: u["cache"].as_bool().unwrap_or(false),
            dest_path: u["output_file"].as_str().map(str::to_owned),
        });
    }
    let shell = c["shell"].as_bool().unwrap_or(true);
    let value = c["value"].as_str().map(str::to_owned);
    if shell && value.is_none() {
        return Err("a shell command needs 'command.value'".into());
    }
    Ok(CommandInfo {
        value,
        arguments: c["arguments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        shell,
        environment,
        user: c["user"].as_str().map(str::to_owned),
        uris,
    })
}

/// A Mesos TaskInfo (JSON) into the Gantry task it becomes on `agent`, or why it cannot run.
pub fn task_info(t: &Value, agent: &AgentId) -> Result<TaskInfo, String> {
    let task_id = t.get("task_id").and_then(id_of).unwrap_or("");
    check_task_id(task_id)?;
    let name = t["name"].as_str().ok_or("Task has no 'name'")?;
    if t.get("agent_id").and_then(id_of) != Some(agent.0.as_str()) {
        return Err(format!(
            "Task uses invalid agent: it must name the offers' agent {agent}"
        ));
    }
    if t.get("executor").is_some() {
        return Err("custom executors are not supported yet: send a command task".into());
    }
    let container = &t["container"];
    if container.get("docker").is_some()
        || container["type"] == "DOCKER"
        || container["mesos"].get("image").is_some()
    {
        return Err("containers with an image are not supported for framework tasks yet".into());
    }
    let cmd = t
        .get("command")
        .filter(|c| c.is_object())
        .ok_or("Task has neither 'command' nor 'executor'")?;
    let resources = parse_resources(t["resources"].as_array().map_or(&[], Vec::as_slice))
        .map_err(|e| e.to_string())?;
    if resources.ports.len() > MAX_PORTS {
        return Err(format!("a task may use at most {MAX_PORTS} ports"));
    }
    let ports: Vec<u16> = resources
        .ports
        .ranges()
        .iter()
        .flat_map(|(b, e)| *b..=*e)
        .collect();
    let grace = t["kill_policy"]["grace_period"]["nanoseconds"]
        .as_f64()
        .map(|n| n / 1e9)
        .filter(|s| s.is_finite() && *s >= 0.0);
    let mut labels = BTreeMap::new();
    for l in t["labels"]["labels"].as_array().into_iter().flatten() {
        if let Some(k) = l["key"].as_str() {
            labels.insert(k.to_owned(), l["value"].as_str().unwrap_or("").to_owned());
        }
    }
    let mut info = TaskInfo {
        task_id: TaskId(task_id.to_owned()),
        name: name.to_owned(),
        agent_id: agent.clone(),
        command: command(cmd)?,
        resources,
        ports,
        labels,
        ..Default::default()
    };
    if let Some(g) = grace {
        info.kill_grace_period_secs = g;
    }
    Ok(info)
}

/// Chooses the GPUs (and the cores and memory node next to them) of the tasks that ask for GPUs,
/// on their agent, as the services controller does for apps: all of them in one plan, against the
/// cluster as it is with the accepted offers released. A task that cannot get them is dropped
/// from `launches` and `refuse` says why.
fn place_gpus(
    core: &Core,
    st: &mut MasterState,
    agent: &AgentId,
    launches: &mut Vec<TaskRecord>,
    mut refuse: impl FnMut(&mut MasterState, &str, &str),
) {
    let group = "framework-gpu-tasks".to_owned();
    let demands: Vec<TaskDemand> = launches
        .iter()
        .filter(|r| r.info.resources.gpus > 0)
        .map(|r| TaskDemand {
            task_id: r.info.task_id.clone(),
            group: group.clone(),
            resources: Resources {
                ports: Default::default(),
                ..r.info.resources.clone()
            },
            port_count: 0,
            numa: NumaPolicy::Prefer,
            gpu_profile: None,
        })
        .collect();
    if demands.is_empty() {
        return;
    }
    let only_on = HashMap::from([(group, HashSet::from([agent.clone()]))]);
    let plan = alloc::place_restricted(
        &st.cluster.snapshot(),
        &demands,
        &only_on,
        core.cfg.place_options,
    );
    let mut placed: HashMap<TaskId, Option<gantry_proto::NumaPlacement>> = plan
        .placements
        .into_iter()
        .filter(|p| &p.agent_id == agent)
        .map(|p| (p.task_id, p.numa))
        .collect();
    let mut kept = Vec::with_capacity(launches.len());
    for mut rec in launches.drain(..) {
        if rec.info.resources.gpus == 0 {
            kept.push(rec);
            continue;
        }
        match placed.remove(&rec.info.task_id) {
            Some(numa) => {
                rec.info.placement = numa;
                kept.push(rec);
            }
            None => {
                let why = plan
                    .unplaced
                    .iter()
                    .find(|u| u.task_id == rec.info.task_id)
                    .map_or("no GPUs free on the agent".to_owned(), |u| u.reason.clone());
                refuse(
                    st,
                    &rec.info.task_id.0,
                    &format!("GPUs cannot be placed: {why}"),
                );
            }
        }
    }
    *launches = kept;
}

/// Carries out an ACCEPT (see the module doc). Answers 202 whatever happens to the tasks: their
/// fate comes as UPDATEs.
pub async fn accept(
    core: &Core,
    caller: &Caller,
    st: &mut MasterState,
    fw_id: &str,
    accept: &Value,
) -> Result<(), CallError> {
    let ids = offer_ids(accept)?;
    let mut tasks: Vec<&Value> = Vec::new();
    let mut refused: Vec<(String, String)> = Vec::new();
    for op in accept["operations"].as_array().into_iter().flatten() {
        match op["type"].as_str() {
            Some("LAUNCH") => {
                tasks.extend(op["launch"]["task_infos"].as_array().into_iter().flatten())
            }
            Some("LAUNCH_GROUP") => {
                for t in op["launch_group"]["task_group"]["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let id = t.get("task_id").and_then(id_of).unwrap_or("").to_owned();
                    refused.push((id, "LAUNCH_GROUP is not supported yet".into()));
                }
            }
            other => {
                tracing::warn!(framework = fw_id, operation = ?other, "offer operation not supported; ignored")
            }
        }
    }
    // The offers: outstanding, this framework's, all on one agent.
    let mut invalid: Option<String> = None;
    let mut agent: Option<AgentId> = None;
    let mut seen = HashSet::new();
    for id in &ids {
        match st.frameworks.offers.get(id) {
            Some(o) if o.framework == fw_id && seen.insert(id.clone()) => {
                if agent.as_ref().is_some_and(|a| a != &o.agent) {
                    invalid = Some("Aggregated offers must belong to one single agent".into());
                }
                agent = Some(o.agent.clone());
            }
            _ => invalid = Some(format!("Offer {id} is no longer valid")),
        }
    }
    if ids.is_empty() {
        invalid = Some("No offers specified".into());
    }
    let mut pool = Resources::default();
    for id in &ids {
        if let Some(o) = offers::release(&mut st.frameworks, &mut st.cluster, id) {
            pool = pool.plus(&o.resources);
        }
    }
    let deliver = |st: &mut MasterState, task: &str, state, reason, why: &str| {
        let status = master_status(task, agent.as_ref(), state, reason, why);
        if let Some(fw) = st.frameworks.frameworks.get_mut(fw_id) {
            updates::deliver(fw, status);
        }
    };
    for (task, why) in &refused {
        deliver(
            st,
            task,
            TaskState::TaskError,
            Reason::ReasonTaskInvalid,
            why,
        );
    }
    let (Some(agent_id), None) = (agent.clone(), invalid.clone()) else {
        let why = invalid.unwrap_or_default();
        tracing::info!(framework = fw_id, why = %why, "ACCEPT of invalid offers");
        for t in tasks {
            let id = t.get("task_id").and_then(id_of).unwrap_or("");
            deliver(
                st,
                id,
                TaskState::TaskDropped,
                Reason::ReasonInvalidOffers,
                &why,
            );
        }
        return Ok(());
    };
    let now = gantry_proto::time::now_secs();
    let mut left = pool;
    let mut launches = Vec::new();
    let mut ids_here = HashSet::new();
    for t in tasks {
        let id = t.get("task_id").and_then(id_of).unwrap_or("").to_owned();
        let checked = task_info(t, &agent_id).and_then(|info| {
            if st.cluster.tasks().contains_key(&info.task_id) || !ids_here.insert(id.clone()) {
                return Err(format!("Task has duplicate ID: {id}"));
            }
            if let Some(user) = info
                .command
                .user
                .as_deref()
                .filter(|u| !caller.may_run_as(u))
            {
                return Err(format!(
                    "Not authorized to run tasks as user '{user}': principal '{}' may not",
                    caller.name()
                ));
            }
            if !info.resources.fits_in(&left) {
                return Err(format!(
                    "Task uses more resources ({}) than available ({})",
                    serde_json::to_string(&info.resources).unwrap_or_default(),
                    serde_json::to_string(&left).unwrap_or_default()
                ));
            }
            Ok(info)
        });
        match checked {
            Ok(info) => {
                left = left.minus(&info.resources);
                launches.push(TaskRecord {
                    info,
                    owner: TaskOwner::Framework {
                        id: fw_id.to_owned(),
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
                });
            }
            Err(why) => {
                tracing::info!(framework = fw_id, task = %id, why = %why, "framework task refused");
                deliver(
                    st,
                    &id,
                    TaskState::TaskError,
                    Reason::ReasonTaskInvalid,
                    &why,
                );
            }
        }
    }
    place_gpus(core, st, &agent_id, &mut launches, |st, id, why| {
        deliver(st, id, TaskState::TaskError, Reason::ReasonTaskInvalid, why)
    });
    // Stored before anything is launched, as the services controller does.
    let writes = launches
        .iter()
        .map(|r| Write::PutTask(Box::new(r.clone())))
        .collect();
    core.store()
        .apply(writes)
        .await
        .map_err(crate::cluster::CoreError::from)?;
    for rec in launches {
        tracing::info!(task = %rec.info.task_id, agent = %agent_id, framework = fw_id, "launching a framework's task");
        let msg = MasterMessage::LaunchTask {
            task: Box::new(rec.info.clone()),
        };
        st.cluster.put_task(rec);
        st.cluster.counters.tasks_launched += 1;
        crate::cluster::Core::send(&st.cluster, &agent_id, msg);
    }
    // What was not used is declined with the call's filters (Mesos's implicit decline).
    if left.cpus >= 0.01 || left.mem >= 1.0 {
        if let Some(fw) = st.frameworks.frameworks.get_mut(fw_id) {
            fw.filters.insert(
                agent_id,
                tokio::time::Instant::now() + super::calls::refuse_for(&accept["filters"]),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_command_task_converts_and_bad_ones_say_why() {
        let agent = AgentId("a1".into());
        let t = json!({
            "name": "hi", "task_id": {"value": "t1"}, "agent_id": {"value": "a1"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                          {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31001}]}}],
            "command": {"value": "echo hi", "environment": {"variables": [{"name": "K", "value": "V"}]}},
            "kill_policy": {"grace_period": {"nanoseconds": 2_000_000_000u64}},
        });
        let info = task_info(&t, &agent).expect("valid");
        assert_eq!(info.command.value.as_deref(), Some("echo hi"));
        assert!(info.command.shell);
        assert_eq!(info.command.environment["K"], "V");
        assert_eq!(info.ports, [31000, 31001]);
        assert_eq!(info.kill_grace_period_secs, 2.0);
        let mut other_agent = t.clone();
        other_agent["agent_id"] = json!({"value": "a2"});
        assert!(task_info(&other_agent, &agent).is_err());
        let mut slash = t.clone();
        slash["task_id"] = json!({"value": "../x"});
        assert!(task_info(&slash, &agent).is_err());
        let mut exec = t.clone();
        exec["executor"] = json!({"executor_id": {"value": "e"}});
        assert!(task_info(&exec, &agent).unwrap_err().contains("executor"));
    }
}
