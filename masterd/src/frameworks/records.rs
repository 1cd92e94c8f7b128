//! What the master keeps about an external framework (stored under `framework:<id>` before any
//! answer names the id), and the Mesos v1 JSON shapes it reads and writes: resources, offers and
//! task statuses.

use gantry_proto::{AgentId, PortRanges, Resources, TaskState, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The meta key prefix under which framework registrations are stored.
pub const META_PREFIX: &str = "framework:";

/// Mesos's default `failover_timeout` is 0; pymesos sends 100 s unless told otherwise.
const DEFAULT_FAILOVER_SECS: f64 = 0.0;

/// A framework registration as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameworkRecord {
    pub id: String,
    /// The `framework_info` of its latest SUBSCRIBE, as sent (with `id` set).
    pub info: Value,
    /// When it first subscribed (seconds since the epoch).
    pub registered_at: f64,
}

impl FrameworkRecord {
    /// The store key of this record.
    pub fn key(&self) -> String {
        format!("{META_PREFIX}{}", self.id)
    }

    pub fn name(&self) -> &str {
        self.info["name"].as_str().unwrap_or("")
    }

    /// Declared capabilities (`GPU_RESOURCES`, `PARTITION_AWARE`, ...).
    pub fn has_capability(&self, cap: &str) -> bool {
        self.info["capabilities"]
            .as_array()
            .is_some_and(|caps| caps.iter().any(|c| c["type"] == cap))
    }

    /// Its roles: `roles` for MULTI_ROLE frameworks, else `role`, else `*`.
    pub fn roles(&self) -> Vec<String> {
        if self.has_capability("MULTI_ROLE") {
            if let Some(roles) = self.info["roles"].as_array() {
                return roles
                    .iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect();
            }
        }
        vec![self.info["role"].as_str().unwrap_or("*").to_owned()]
    }

    /// How long it may stay disconnected before it is removed with its tasks.
    pub fn failover_timeout(&self) -> f64 {
        self.info["failover_timeout"]
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(DEFAULT_FAILOVER_SECS)
    }
}

/// Puts what `/master/state` says of an external framework into `v` (the built-in frameworks'
/// shape, with its tasks already in).
pub fn state_json(v: &mut Value, fw: &super::Framework, all: &super::FrameworkState) {
    let info = &fw.record.info;
    let offers: Vec<&super::Offer> = all
        .offers
        .values()
        .filter(|o| o.framework == fw.record.id)
        .collect();
    let offered = offers
        .iter()
        .fold(Resources::default(), |a, o| a.plus(&o.resources));
    let caps: Vec<Value> = info["capabilities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("type").cloned())
        .collect();
    let roles = fw.record.roles();
    v["name"] = json!(fw.record.name());
    v["user"] = info["user"].clone();
    v["hostname"] = info.get("hostname").cloned().unwrap_or(json!(""));
    v["webui_url"] = info.get("webui_url").cloned().unwrap_or(json!(""));
    v["principal"] = info.get("principal").cloned().unwrap_or(Value::Null);
    v["role"] = json!(roles.first().cloned().unwrap_or_else(|| "*".into()));
    v["roles"] = json!(roles);
    v["failover_timeout"] = json!(fw.record.failover_timeout());
    v["checkpoint"] = json!(info["checkpoint"].as_bool().unwrap_or(false));
    v["capabilities"] = json!(caps);
    v["active"] = json!(fw.conn.is_some() && !fw.suppressed);
    v["connected"] = json!(fw.conn.is_some());
    v["recovered"] = json!(false);
    v["registered_time"] = json!(fw.record.registered_at);
    v["offered_resources"] = serde_json::to_value(&offered).unwrap_or(Value::Null);
    v["offers"] = json!(offers
        .iter()
        .map(|o| json!({
            "id": o.id,
            "framework_id": o.framework,
            "slave_id": o.agent.0,
            "resources": serde_json::to_value(&o.resources).unwrap_or(Value::Null),
        }))
        .collect::<Vec<_>>());
}

/// `{"value": s}`, Mesos's id wrapper.
pub fn id_json(s: &str) -> Value {
    json!({ "value": s })
}

/// The `value` of an id wrapper, when it is one.
pub fn id_of(v: &Value) -> Option<&str> {
    v.get("value").and_then(Value::as_str)
}

fn scalar(name: &str, value: f64, role: Option<&str>) -> Value {
    let mut r = json!({"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": "*"});
    if let Some(role) = role {
        r["allocation_info"] = json!({ "role": role });
    }
    r
}

/// Resources in Mesos's list form; GPUs only when `gpus` is allowed. `role` sets
/// `allocation_info` (offers to MULTI_ROLE frameworks).
pub fn resources_json(r: &Resources, gpus: bool, role: Option<&str>) -> Vec<Value> {
    let mut out = vec![scalar("cpus", r.cpus, role), scalar("mem", r.mem, role)];
    if r.disk > 0.0 {
        out.push(scalar("disk", r.disk, role));
    }
    if gpus && r.gpus > 0 {
        out.push(scalar("gpus", f64::from(r.gpus), role));
    }
    if !r.ports.is_empty() {
        let ranges: Vec<Value> = r
            .ports
            .ranges()
            .iter()
            .map(|(b, e)| json!({"begin": b, "end": e}))
            .collect();
        let mut p =
            json!({"name": "ports", "type": "RANGES", "ranges": {"range": ranges}, "role": "*"});
        if let Some(role) = role {
            p["allocation_info"] = json!({ "role": role });
        }
        out.push(p);
    }
    out
}

/// A resource list that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResourceError {
    #[error("resource '{0}' has no scalar value")]
    NotScalar(String),
    #[error("resource '{0}' must not be negative")]
    Negative(String),
    #[error("'ports' has an invalid range")]
    BadRange,
    #[error("unknown resource '{0}' (cpus, mem, disk, gpus and ports are offered)")]
    Unknown(String),
    #[error("'gpus' must be a whole number")]
    FractionalGpus,
}

/// Reads a Mesos resource list (as in `TaskInfo.resources`).
pub fn parse_resources(list: &[Value]) -> Result<Resources, ResourceError> {
    let mut out = Resources::default();
    for r in list {
        let name = r["name"].as_str().unwrap_or("").to_owned();
        if name == "ports" {
            let mut ranges = Vec::new();
            for range in r["ranges"]["range"].as_array().into_iter().flatten() {
                let b = range["begin"].as_u64().ok_or(ResourceError::BadRange)?;
                let e = range["end"].as_u64().ok_or(ResourceError::BadRange)?;
                let (Ok(b), Ok(e)) = (u16::try_from(b), u16::try_from(e)) else {
                    return Err(ResourceError::BadRange);
                };
                if b > e {
                    return Err(ResourceError::BadRange);
                }
                ranges.push((b, e));
            }
            out.ports = out.ports.union(&PortRanges::new(ranges));
            continue;
        }
        let v = r["scalar"]["value"]
            .as_f64()
            .ok_or_else(|| ResourceError::NotScalar(name.clone()))?;
        if v.is_nan() || v < 0.0 {
            return Err(ResourceError::Negative(name));
        }
        match name.as_str() {
            "cpus" => out.cpus += v,
            "mem" => out.mem += v,
            "disk" => out.disk += v,
            "gpus" => {
                if v.fract() != 0.0 {
                    return Err(ResourceError::FractionalGpus);
                }
                out.gpus += v as u32;
            }
            _ => return Err(ResourceError::Unknown(name)),
        }
    }
    Ok(out)
}

/// The state a framework sees: frameworks that are not PARTITION_AWARE get TASK_LOST for the
/// partition-aware states (Mesos does the same).
pub fn state_for(state: TaskState, partition_aware: bool) -> TaskState {
    use TaskState::*;
    if partition_aware {
        return state;
    }
    match state {
        TaskUnreachable | TaskGone | TaskDropped | TaskGoneByOperator | TaskUnknown => TaskLost,
        s => s,
    }
}

/// Was this status made by the master (agent lost, reconciliation) rather than reported by the
/// agent? Such updates carry no uuid and are not acknowledged.
pub fn from_master(status: &TaskStatus) -> bool {
    use gantry_proto::task::Reason::*;
    matches!(
        status.reason,
        Some(
            ReasonAgentRemoved
                | ReasonAgentRemovedByOperator
                | ReasonAgentDisconnected
                | ReasonAgentReregistered
                | ReasonAgentUnknown
                | ReasonInvalidOffers
                | ReasonResourcesUnknown
                | ReasonTaskInvalid
                | ReasonTaskUnknown
                | ReasonFrameworkRemoved
                | ReasonMasterDisconnected
                | ReasonReconciliation
        )
    )
}

/// A TaskStatus in Mesos's JSON form; `uuid` (base64) only on updates to acknowledge.
pub fn status_json(status: &TaskStatus, partition_aware: bool, uuid: Option<&str>) -> Value {
    let source = if from_master(status) {
        "SOURCE_MASTER"
    } else {
        "SOURCE_EXECUTOR"
    };
    let mut v = json!({
        "task_id": id_json(&status.task_id.0),
        "state": state_for(status.state, partition_aware).name(),
        "source": source,
        "timestamp": status.timestamp,
    });
    if let Some(a) = &status.agent_id {
        v["agent_id"] = id_json(&a.0);
    }
    if let Some(m) = &status.message {
        v["message"] = json!(m);
    }
    if let Some(r) = status.reason {
        v["reason"] = serde_json::to_value(r).unwrap_or(Value::Null);
    }
    if let Some(h) = status.healthy {
        v["healthy"] = json!(h);
    }
    if let Some(u) = uuid {
        v["uuid"] = json!(u);
    }
    v
}

/// A status the master makes up (no uuid): for unknown tasks, refused launches, reconciliation.
pub fn master_status(
    task: &str,
    agent: Option<&AgentId>,
    state: TaskState,
    reason: gantry_proto::task::Reason,
    message: &str,
) -> TaskStatus {
    let mut s = TaskStatus::new(task.into(), agent.cloned(), state);
    s.reason = Some(reason);
    s.message = Some(message.to_owned());
    s.timestamp = gantry_proto::time::now_secs();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_round_trip_through_mesos_json() {
        let r = Resources {
            ports: PortRanges::new([(31000, 31005)]),
            gpus: 2,
            ..Resources::scalars(1.5, 256.0, 100.0)
        };
        let with_gpus = resources_json(&r, true, None);
        assert_eq!(parse_resources(&with_gpus), Ok(r.clone()));
        let without = resources_json(&r, false, Some("eng"));
        assert!(without.iter().all(|x| x["name"] != "gpus"));
        assert_eq!(without[0]["allocation_info"]["role"], "eng");
        assert_eq!(parse_resources(&without).map(|x| x.gpus), Ok(0));
        let bad = [json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}})];
        assert!(matches!(
            parse_resources(&bad),
            Err(ResourceError::Negative(_))
        ));
        let odd = [json!({"name": "fpgas", "type": "SCALAR", "scalar": {"value": 1}})];
        assert!(matches!(
            parse_resources(&odd),
            Err(ResourceError::Unknown(_))
        ));
    }

    #[test]
    fn partition_states_become_lost_for_frameworks_that_are_not_aware() {
        assert_eq!(
            state_for(TaskState::TaskUnreachable, false),
            TaskState::TaskLost
        );
        assert_eq!(
            state_for(TaskState::TaskUnreachable, true),
            TaskState::TaskUnreachable
        );
        assert_eq!(
            state_for(TaskState::TaskFinished, false),
            TaskState::TaskFinished
        );
    }
}
