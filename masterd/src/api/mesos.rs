//! Mesos operator endpoints as Mesos-DNS and dashboards read them: `/master/state` (also
//! `/state.json`, `/master/state.json`), `/master/slaves`, `/metrics/snapshot`, `/version`, `/health`.
//! Agents also show their NUMA domains and GPUs (with health and reason); tasks their placement.

use crate::cluster::{ClusterState, Core};
use crate::store::records::{AgentLifecycle, TaskRecord};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use gantry_proto::{Resources, TaskState};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The Mesos API version Gantry implements. Numeric only: pymesos parses it as integers.
pub const MESOS_VERSION: &str = "1.11.0";

/// The Mesos operator routes.
pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/master/state", get(state))
        .route("/master/state.json", get(state))
        .route("/state.json", get(state))
        .route("/master/slaves", get(slaves))
        .route("/metrics/snapshot", get(metrics))
        .route("/version", get(version))
        .route("/health", get(|| async { "" }))
}

/// The address others reach this master at: the listen address, or when that is a wildcard
/// (`0.0.0.0`, `::`), the first address this host's name resolves to (Mesos-DNS derives
/// `leader.mesos` from it).
pub(crate) fn advertised(core: &Core) -> std::net::SocketAddr {
    advertised_addr(core.cfg.listen)
}

/// [`advertised`] for a listen address (before there is a `Core`: an HA master's `MasterInfo`).
pub(crate) fn advertised_addr(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), listen.port()))
        .ok()
        .and_then(|mut a| a.find(|a| a.is_ipv4()))
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], listen.port())))
}

fn master_pid(core: &Core) -> String {
    format!("master@{}", advertised(core))
}

/// Every agent that is not gone, in the `/master/state` shape.
fn agents_json(st: &ClusterState) -> Vec<Value> {
    let used = st.used_by_agent();
    st.agents
        .values()
        .filter(|a| a.record.lifecycle != AgentLifecycle::Gone)
        .map(|a| agent_json(st, &used, a))
        .collect()
}

async fn version() -> Json<Value> {
    Json(json!({
        "version": MESOS_VERSION,
        "gantry_version": env!("CARGO_PKG_VERSION"),
        "build_user": "",
        "build_date": "",
        "build_time": 0,
    }))
}

fn agent_json(
    st: &ClusterState,
    used: &std::collections::HashMap<gantry_proto::AgentId, Resources>,
    a: &crate::cluster::AgentEntry,
) -> Value {
    let r = &a.record;
    json!({
        "id": r.id,
        "hostname": r.info.hostname,
        "port": r.info.port,
        "pid": format!("slave(1)@{}:{}", r.info.hostname, r.info.port),
        "attributes": r.info.attributes,
        "registered_time": r.registered_at,
        "reregistered_time": r.reregistered_at,
        "resources": r.info.resources,
        "used_resources": used.get(&r.id).cloned().unwrap_or_default(),
        "offered_resources": Resources::default(),
        "reserved_resources": {},
        "unreserved_resources": r.info.resources,
        "active": r.lifecycle == AgentLifecycle::Active,
        "deactivated": false,
        "connected": a.conn.is_some(),
        "lifecycle": r.lifecycle,
        "version": r.info.version,
        "capabilities": [],
        "numa_domains": r.info.numa_domains,
        "gpus": r.info.gpus,
        "topology_warnings": r.info.topology_warnings,
        "tasks_running": st.tasks().values().filter(|t| t.info.agent_id == r.id).count(),
    })
}

fn task_json(st: &ClusterState, t: &TaskRecord) -> Value {
    let host = st
        .agents
        .get(&t.info.agent_id)
        .map(|a| a.record.info.hostname.clone())
        .unwrap_or_default();
    let ts = t.status.as_ref().map_or(t.staged_at, |s| s.timestamp);
    let mut v = json!({
        "id": t.info.task_id,
        "name": t.info.name,
        "framework_id": "marathon",
        "executor_id": "",
        "slave_id": t.info.agent_id,
        "state": t.state.name(),
        "resources": t.info.resources,
        "placement": t.info.placement,
        "role": "*",
        "labels": [],
        "statuses": [{
            "state": t.state.name(),
            "timestamp": ts,
            "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": host}]}]},
        }],
    });
    // Gantry: the latest usage the agent reported in its heartbeat (Mesos field names).
    if let (Some(u), Some(obj)) = (st.usage.get(&t.info.task_id), v.as_object_mut()) {
        obj.insert("statistics".into(), json!(u));
    }
    v
}

async fn state(State(core): State<Arc<Core>>) -> Json<Value> {
    let guard = core.state().await;
    let st = &guard.cluster;
    let pid = master_pid(&core);
    let agents = agents_json(st);
    let (unreachable, running): (Vec<&TaskRecord>, Vec<&TaskRecord>) = st
        .tasks()
        .values()
        .partition(|t| t.state == TaskState::TaskUnreachable);
    let count = |l: AgentLifecycle| {
        st.agents
            .values()
            .filter(|a| a.record.lifecycle == l)
            .count()
    };
    let host = advertised(&core).ip().to_string();
    // One framework per owner kind: Marathon's apps and Chronos's job runs.
    let framework = |name: &str| {
        let mine = |t: &&&TaskRecord| t.owner.framework() == name;
        let used = running
            .iter()
            .filter(mine)
            .fold(Resources::default(), |a, t| a.plus(&t.info.resources));
        json!({
            "id": name,
            "name": name,
            "pid": pid,
            "hostname": host,
            "webui_url": "",
            "user": "root",
            "role": "*",
            "roles": ["*"],
            "failover_timeout": 604800.0,
            "checkpoint": true,
            "capabilities": ["PARTITION_AWARE", "TASK_KILLING_STATE", "GPU_RESOURCES"],
            "active": true,
            "connected": true,
            "recovered": false,
            "registered_time": core.started_at,
            "used_resources": used,
            "offered_resources": Resources::default(),
            "tasks": running.iter().filter(mine).map(|t| task_json(st, t)).collect::<Vec<_>>(),
            "unreachable_tasks": unreachable.iter().filter(mine).map(|t| task_json(st, t)).collect::<Vec<_>>(),
            "completed_tasks": st.completed.iter().filter(|t| t.owner.framework() == name).map(|t| task_json(st, t)).collect::<Vec<_>>(),
            "offers": [],
            "executors": [],
            "labels": [],
        })
    };
    let mut frameworks = vec![framework("marathon"), framework("chronos")];
    // External frameworks (`/api/v1/scheduler`), each with its own tasks and offers.
    for fw in guard.frameworks.frameworks.values() {
        let mut v = framework(&fw.record.id);
        crate::frameworks::records::state_json(&mut v, fw, &guard.frameworks);
        frameworks.push(v);
    }
    let leader_info = json!({
        "id": core.master_id,
        "pid": pid,
        "port": core.cfg.listen.port(),
        "hostname": host,
        "address": {"ip": host, "port": core.cfg.listen.port(), "hostname": host},
    });
    Json(json!({
        "version": MESOS_VERSION,
        "gantry_version": env!("CARGO_PKG_VERSION"),
        "git_sha": "",
        "build_date": "",
        "build_time": 0,
        "build_user": "",
        "start_time": core.started_at,
        "elected_time": core.started_at,
        "id": core.master_id,
        "pid": pid,
        "hostname": host,
        "capabilities": [],
        "activated_slaves": count(AgentLifecycle::Active),
        "deactivated_slaves": 0,
        "unreachable_slaves": count(AgentLifecycle::Unreachable),
        "leader": pid,
        "leader_info": leader_info,
        "cluster": "",
        "log_dir": "",
        "flags": {"state_dir": core.cfg.state_dir.display().to_string()},
        "slaves": agents,
        "recovered_slaves": st.agents.values().filter(|a| a.recovering).map(|a| json!({"id": a.record.id})).collect::<Vec<_>>(),
        "frameworks": frameworks,
        "completed_frameworks": [],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    }))
}

async fn slaves(State(core): State<Arc<Core>>) -> Json<Value> {
    let guard = core.state().await;
    let st = &guard.cluster;
    Json(json!({ "slaves": agents_json(st), "recovered_slaves": [] }))
}

async fn metrics(State(core): State<Arc<Core>>) -> Json<Value> {
    let guard = core.state().await;
    let st = &guard.cluster;
    let mut m = Map::new();
    let mut put = |k: &str, v: f64| {
        m.insert(k.to_owned(), json!(v));
    };
    put("master/elected", 1.0);
    put(
        "master/uptime_secs",
        gantry_proto::time::now_secs() - core.started_at,
    );
    let active: Vec<_> = st
        .agents
        .values()
        .filter(|a| a.record.lifecycle == AgentLifecycle::Active)
        .collect();
    let total = active.iter().fold(Resources::default(), |acc, a| {
        acc.plus(&a.record.info.resources)
    });
    let used = st
        .tasks()
        .values()
        .fold(Resources::default(), |acc, t| acc.plus(&t.info.resources));
    for (name, t, u) in [
        ("cpus", total.cpus, used.cpus),
        ("mem", total.mem, used.mem),
        ("disk", total.disk, used.disk),
        ("gpus", f64::from(total.gpus), f64::from(used.gpus)),
    ] {
        put(&format!("master/{name}_total"), t);
        put(&format!("master/{name}_used"), u);
        put(
            &format!("master/{name}_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        );
    }
    let lc = |l: AgentLifecycle| {
        st.agents
            .values()
            .filter(|a| a.record.lifecycle == l)
            .count() as f64
    };
    put("master/slaves_active", lc(AgentLifecycle::Active));
    put("master/slaves_inactive", 0.0);
    put("master/slaves_unreachable", lc(AgentLifecycle::Unreachable));
    let connected = st.agents.values().filter(|a| a.conn.is_some()).count() as f64;
    put("master/slaves_connected", connected);
    put(
        "master/slaves_disconnected",
        st.agents.len() as f64 - connected,
    );
    // The built-in controllers count as one framework; external ones by their stream.
    let fws = &guard.frameworks;
    let connected_fws = fws.frameworks.values().filter(|f| f.conn.is_some()).count() as f64;
    put("master/frameworks_active", 1.0 + connected_fws);
    put("master/frameworks_connected", 1.0 + connected_fws);
    let counts = st.state_counts();
    for s in TaskState::ALL {
        let key = s.name().trim_start_matches("TASK_").to_lowercase();
        put(
            &format!("master/tasks_{key}"),
            counts.get(&s).copied().unwrap_or(0) as f64,
        );
    }
    let c = &st.counters;
    put("master/slave_registrations", c.slave_registrations as f64);
    put(
        "master/slave_reregistrations",
        c.slave_reregistrations as f64,
    );
    put(
        "master/slave_unreachable_completed",
        c.slave_unreachable as f64,
    );
    put("master/valid_status_updates", c.valid_status_updates as f64);
    put("master/invalid_status_updates", 0.0);
    put(
        "master/duplicate_status_updates",
        c.duplicate_status_updates as f64,
    );
    put("master/messages_launch_tasks", c.tasks_launched as f64);
    put("master/outstanding_offers", fws.offers.len() as f64);
    Json(Value::Object(m))
}
