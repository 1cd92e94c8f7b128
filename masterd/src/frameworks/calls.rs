//! `POST /api/v1/scheduler`: reads a Call (JSON), checks it as Mesos does (400 for a malformed
//! call, 403 for a framework that is not subscribed or a stream id that is not its stream's, 415
//! and 406 for media types) and carries it out. SUBSCRIBE answers with the event stream; the
//! other calls answer 202 once what they changed is stored.

use super::records::{id_json, id_of, master_status, FrameworkRecord};
use super::{offers, stream, updates, Framework, FrameworkState, Subscription};
use crate::api::guard::Caller;
use crate::api::surface::Surface;
use crate::cluster::{ClusterState, Core, CoreError};
use crate::state::MasterState;
use crate::store::records::TaskRecord;
use crate::store::Write;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use base64::Engine;
use gantry_proto::task::Reason;
use gantry_proto::{AgentId, MasterMessage, TaskId, TaskState, TaskStatus};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The header carrying a subscription's stream id.
pub const STREAM_ID: &str = "Mesos-Stream-Id";

/// `Filters.refuse_seconds` when unset or invalid, and its cap (`mesos.proto`, the master).
const DEFAULT_REFUSE_SECS: f64 = 5.0;
const MAX_REFUSE_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// A call refused, in Mesos's terms.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl IntoResponse for CallError {
    fn into_response(self) -> Response {
        let status = match &self {
            CallError::BadRequest(_) => StatusCode::BAD_REQUEST,
            CallError::Forbidden(_) => StatusCode::FORBIDDEN,
            CallError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            CallError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            CallError::Core(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Surface::Mesos.error(status, &self.to_string())
    }
}

fn bad(msg: impl Into<String>) -> CallError {
    CallError::BadRequest(msg.into())
}

/// The scheduler API's route.
pub fn router() -> Router<Arc<Core>> {
    Router::new().route("/api/v1/scheduler", post(scheduler))
}

/// The media type's essence (`application/json; charset=utf-8` -> `application/json`).
fn essence(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Checks the media types and parses the body into a Call (a JSON object with a `type`).
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<(Value, String), CallError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(essence);
    match ct.as_deref() {
        Some("application/json") => {}
        Some("application/x-protobuf") => {
            return Err(CallError::UnsupportedMedia(
                "Gantry reads scheduler calls as JSON only: send Content-Type: application/json"
                    .into(),
            ))
        }
        _ => {
            return Err(CallError::UnsupportedMedia(
                "Expecting 'Content-Type' of application/json or application/x-protobuf".into(),
            ))
        }
    }
    if let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        let ok = accept
            .split(',')
            .map(essence)
            .any(|t| t == "application/json" || t == "*/*" || t == "application/*" || t.is_empty());
        if !ok {
            return Err(CallError::NotAcceptable(
                "Expecting 'Accept' to allow application/json".into(),
            ));
        }
    }
    let call: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Failed to parse body into JSON: {e}")))?;
    if !call.is_object() {
        return Err(bad(
            "Failed to parse body into Call: expected a JSON object",
        ));
    }
    let kind = call["type"]
        .as_str()
        .ok_or_else(|| bad("Failed to validate scheduler::Call: Expecting 'type' to be present"))?
        .to_owned();
    Ok((call, kind))
}

async fn scheduler(
    State(core): State<Arc<Core>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = caller.map(|Extension(c)| c).unwrap_or_default();
    match handle(core, &caller, &headers, &body).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "scheduler call refused");
            e.into_response()
        }
    }
}

async fn handle(
    core: Arc<Core>,
    caller: &Caller,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, CallError> {
    let (call, kind) = parse(headers, body)?;
    let stream_id = headers.get(STREAM_ID).and_then(|v| v.to_str().ok());
    if kind == "SUBSCRIBE" {
        if stream_id.is_some() {
            return Err(bad(
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            ));
        }
        return subscribe(core, caller, &call).await;
    }
    let fw_id = call
        .get("framework_id")
        .and_then(id_of)
        .ok_or_else(|| {
            bad("Failed to validate scheduler::Call: Expecting 'framework_id' to be present")
        })?
        .to_owned();
    let mut guard = core.state().await;
    let st = &mut *guard;
    let Some(fw) = st.frameworks.frameworks.get(&fw_id) else {
        return Err(bad("Framework cannot be found"));
    };
    let Some(conn) = &fw.conn else {
        return Err(CallError::Forbidden("Framework is not subscribed".into()));
    };
    let Some(stream_id) = stream_id else {
        return Err(bad(
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
        ));
    };
    if stream_id != conn.stream_id {
        return Err(CallError::Forbidden(format!(
            "The stream ID '{stream_id}' included in this request didn't match the stream ID \
             currently associated with framework ID {fw_id}"
        )));
    }
    let payload = |field: &str| -> Result<&Value, CallError> {
        call.get(field)
            .filter(|v| v.is_object())
            .ok_or_else(|| bad(format!("Expecting '{field}' to be present")))
    };
    match kind.as_str() {
        "TEARDOWN" => {
            tracing::info!(framework = %fw_id, "framework teardown");
            let MasterState {
                cluster,
                frameworks,
                ..
            } = st;
            remove_framework(&core, cluster, frameworks, &fw_id).await?;
            drop(guard);
            core.wake();
        }
        "ACCEPT" => {
            let accept = payload("accept")?.clone();
            super::launch::accept(&core, caller, st, &fw_id, &accept).await?;
            drop(guard);
            core.wake();
        }
        "DECLINE" => {
            let decline = payload("decline")?;
            let ids = offer_ids(decline)?;
            decline_offers(st, &fw_id, &ids, &decline["filters"]);
            drop(guard);
            core.wake();
        }
        "REVIVE" => {
            if let Some(fw) = st.frameworks.frameworks.get_mut(&fw_id) {
                fw.suppressed = false;
                fw.filters.clear();
            }
        }
        "SUPPRESS" => {
            if let Some(fw) = st.frameworks.frameworks.get_mut(&fw_id) {
                fw.suppressed = true;
            }
        }
        "KILL" => {
            let kill = payload("kill")?;
            let task = kill
                .get("task_id")
                .and_then(id_of)
                .ok_or_else(|| bad("Expecting 'kill.task_id' to be present"))?;
            let grace = kill["kill_policy"]["grace_period"]["nanoseconds"]
                .as_f64()
                .map(|n| n / 1e9);
            kill_task(&core, st, &fw_id, task, grace).await?;
        }
        "ACKNOWLEDGE" => {
            let ack = payload("acknowledge")?;
            let task = ack
                .get("task_id")
                .and_then(id_of)
                .ok_or_else(|| bad("Expecting 'acknowledge.task_id' to be present"))?;
            if ack.get("agent_id").and_then(id_of).is_none() {
                return Err(bad("Expecting 'acknowledge.agent_id' to be present"));
            }
            let uuid = ack["uuid"]
                .as_str()
                .ok_or_else(|| bad("Expecting 'acknowledge.uuid' to be present"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(uuid)
                .ok()
                .filter(|b| b.len() == 16)
                .ok_or_else(|| {
                    bad(format!(
                        "Failed to parse UUID '{uuid}': not 16 bytes of base64"
                    ))
                })?;
            let _ = bytes;
            if let Some(fw) = st.frameworks.frameworks.get_mut(&fw_id) {
                if !updates::acknowledge(fw, &TaskId(task.to_owned()), uuid) {
                    tracing::debug!(framework = %fw_id, task, "acknowledgement of no pending update");
                }
            }
        }
        "RECONCILE" => {
            let tasks: Vec<(String, Option<String>)> = call["reconcile"]["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    let task = t.get("task_id").and_then(id_of).map(str::to_owned);
                    let agent = t.get("agent_id").and_then(id_of).map(str::to_owned);
                    task.map(|task| (task, agent))
                        .ok_or_else(|| bad("Expecting 'reconcile.tasks[].task_id' to be present"))
                })
                .collect::<Result<_, _>>()?;
            reconcile(st, &fw_id, &tasks);
        }
        "UPDATE_FRAMEWORK" => {
            let info = payload("update_framework")?["framework_info"].clone();
            if id_of(&info["id"]) != Some(fw_id.as_str()) {
                return Err(bad(
                    "'framework_info.id' must be the framework's id in UPDATE_FRAMEWORK",
                ));
            }
            let Some(fw) = st.frameworks.frameworks.get_mut(&fw_id) else {
                return Err(bad("Framework cannot be found"));
            };
            let rec = FrameworkRecord {
                info,
                ..fw.record.clone()
            };
            store_record(&core, &rec).await?;
            fw.record = rec;
            return Ok(StatusCode::OK.into_response());
        }
        "SHUTDOWN"
        | "MESSAGE"
        | "REQUEST"
        | "ACCEPT_INVERSE_OFFERS"
        | "DECLINE_INVERSE_OFFERS"
        | "ACKNOWLEDGE_OPERATION_STATUS"
        | "RECONCILE_OPERATIONS" => {
            // No custom executors, inverse offers or operations yet: nothing to do.
            tracing::debug!(framework = %fw_id, call = %kind, "scheduler call ignored");
        }
        other => {
            return Err(bad(format!(
                "Failed to parse body into Call: unknown call type '{other}'"
            )))
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `offer_ids` of an ACCEPT or DECLINE.
pub fn offer_ids(payload: &Value) -> Result<Vec<String>, CallError> {
    payload["offer_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            id_of(o)
                .map(str::to_owned)
                .ok_or_else(|| bad("Expecting 'offer_ids[].value' to be present"))
        })
        .collect()
}

/// `filters.refuse_seconds` as Mesos reads it: default 5 s, capped at a year, never under one
/// offer cycle.
pub fn refuse_for(filters: &Value) -> Duration {
    let secs = filters["refuse_seconds"]
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(DEFAULT_REFUSE_SECS)
        .min(MAX_REFUSE_SECS);
    Duration::from_secs_f64(secs).max(super::CYCLE)
}

/// Ends the framework's offers among `ids` and keeps the agents they were on from it for the
/// filter's time. Ids that are not its outstanding offers are ignored, as Mesos does.
pub fn decline_offers(st: &mut MasterState, fw_id: &str, ids: &[String], filters: &Value) {
    let until = Instant::now() + refuse_for(filters);
    for id in ids {
        if st
            .frameworks
            .offers
            .get(id)
            .is_none_or(|o| o.framework != fw_id)
        {
            continue;
        }
        if let Some(offer) = offers::release(&mut st.frameworks, &mut st.cluster, id) {
            if let Some(fw) = st.frameworks.frameworks.get_mut(fw_id) {
                fw.filters.insert(offer.agent, until);
            }
        }
    }
}

/// Stores a framework's registration.
async fn store_record(core: &Core, rec: &FrameworkRecord) -> Result<(), CoreError> {
    let value = serde_json::to_string(rec).unwrap_or_default();
    core.store()
        .apply(vec![Write::PutMeta {
            key: rec.key(),
            value,
        }])
        .await?;
    Ok(())
}

/// The `master_info` of SUBSCRIBED (and `/master/state`'s leader).
fn master_info(core: &Core) -> Value {
    let addr = crate::api::mesos::advertised(core);
    let ip = match addr.ip() {
        // Mesos's `ip` is the IPv4 address in network byte order read as a little-endian u32.
        std::net::IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
        std::net::IpAddr::V6(_) => 0,
    };
    let host = addr.ip().to_string();
    json!({
        "id": core.master_id,
        "ip": ip,
        "port": addr.port(),
        "hostname": host,
        "pid": format!("master@{addr}"),
        "version": crate::api::mesos::MESOS_VERSION,
        "address": {"ip": host, "hostname": host, "port": addr.port()},
    })
}

/// The roles of `rec` that the caller's principal may not use (none with authentication off).
fn forbidden_roles(caller: &Caller, rec: &FrameworkRecord) -> Vec<String> {
    let Some(p) = &caller.0 else {
        return Vec::new();
    };
    if p.may(crate::auth::Permission::Admin) || p.roles.iter().any(|r| r == "*") {
        return Vec::new();
    }
    rec.roles()
        .into_iter()
        .filter(|r| !p.roles.contains(r))
        .collect()
}

async fn subscribe(core: Arc<Core>, caller: &Caller, call: &Value) -> Result<Response, CallError> {
    let sub = call
        .get("subscribe")
        .filter(|v| v.is_object())
        .ok_or_else(|| bad("Expecting 'subscribe' to be present"))?;
    let mut info = sub
        .get("framework_info")
        .filter(|v| v.is_object())
        .cloned()
        .ok_or_else(|| bad("Expecting 'subscribe.framework_info' to be present"))?;
    for field in ["user", "name"] {
        if !info[field].is_string() {
            return Err(bad(format!(
                "Failed to parse body into Call: 'framework_info.{field}' is required"
            )));
        }
    }
    let given = info.get("id").and_then(id_of).map(str::to_owned);
    let top = call.get("framework_id").and_then(id_of).map(str::to_owned);
    if top.is_some() && top != given {
        return Err(bad(
            "'framework_id' differs from 'subscribe.framework_info.id'",
        ));
    }
    let roles_of = FrameworkRecord {
        id: String::new(),
        info: info.clone(),
        registered_at: 0.0,
    };
    let forbidden = forbidden_roles(caller, &roles_of);
    if !forbidden.is_empty() {
        // Mesos answers an unauthorized subscription with an ERROR event instead of SUBSCRIBED.
        let msg = format!(
            "Not authorized to use roles {forbidden:?}: principal '{}' may use {:?}",
            caller.name(),
            caller
                .0
                .as_ref()
                .map(|p| p.roles.clone())
                .unwrap_or_default()
        );
        tracing::info!(
            principal = caller.name(),
            "framework subscription refused: {msg}"
        );
        return Ok(stream::error_response(&msg));
    }
    let mut guard = core.state().await;
    let st = &mut *guard;
    let id =
        given.unwrap_or_else(|| format!("{}-{}", core.master_id, uuid::Uuid::new_v4().simple()));
    info["id"] = id_json(&id);
    let registered_at = st
        .frameworks
        .frameworks
        .get(&id)
        .map_or_else(gantry_proto::time::now_secs, |f| f.record.registered_at);
    let rec = FrameworkRecord {
        id: id.clone(),
        info,
        registered_at,
    };
    // Stored before the answer names the id: a master restart keeps it.
    store_record(&core, &rec).await?;
    let stream_id = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    let fw = st
        .frameworks
        .frameworks
        .entry(id.clone())
        .or_insert_with(|| Framework::disconnected(rec.clone()));
    if let Some(old) = fw.conn.take() {
        // Only one subscription per framework: the old stream is told and closed.
        let _ = old
            .tx
            .send(json!({"type": "ERROR", "error": {"message": "Framework failed over"}}));
    }
    fw.record = rec;
    fw.disconnected_since = None;
    let all_roles = fw.record.roles();
    let suppressed: Vec<&str> = sub["suppressed_roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    fw.suppressed =
        !suppressed.is_empty() && all_roles.iter().all(|r| suppressed.contains(&r.as_str()));
    let _ = tx.send(json!({
        "type": "SUBSCRIBED",
        "subscribed": {
            "framework_id": id_json(&id),
            "heartbeat_interval_seconds": super::HEARTBEAT_INTERVAL.as_secs_f64(),
            "master_info": master_info(&core),
        },
    }));
    fw.conn = Some(Subscription {
        stream_id: stream_id.clone(),
        tx,
    });
    updates::resend_all(fw);
    tracing::info!(framework = %id, name = fw.record.name(), "framework subscribed");
    drop(guard);
    Ok(stream::response(core, id, stream_id, rx))
}

/// Kills a framework's task (KILL): the agent is told and the kill is stored; an unknown task
/// gets TASK_LOST (TASK_UNKNOWN for partition-aware frameworks) from the master.
async fn kill_task(
    core: &Core,
    st: &mut MasterState,
    fw_id: &str,
    task: &str,
    grace: Option<f64>,
) -> Result<(), CallError> {
    let rec = st
        .cluster
        .tasks()
        .get(&TaskId(task.to_owned()))
        .filter(|t| t.owner.framework_id() == Some(fw_id))
        .cloned();
    let Some(rec) = rec else {
        let status = master_status(
            task,
            None,
            TaskState::TaskUnknown,
            Reason::ReasonReconciliation,
            "Attempted to kill an unknown task",
        );
        if let Some(fw) = st.frameworks.frameworks.get_mut(fw_id) {
            updates::deliver(fw, status);
        }
        return Ok(());
    };
    kill_records(core, &mut st.cluster, vec![rec], grace).await?;
    Ok(())
}

/// Stores the kill of each task and tells its agent.
async fn kill_records(
    core: &Core,
    cluster: &mut ClusterState,
    tasks: Vec<TaskRecord>,
    grace: Option<f64>,
) -> Result<(), CoreError> {
    let changed: Vec<TaskRecord> = tasks
        .into_iter()
        .map(|t| TaskRecord {
            kill_requested: true,
            ..t
        })
        .collect();
    let writes = changed
        .iter()
        .map(|t| Write::PutTask(Box::new(t.clone())))
        .collect();
    core.store().apply(writes).await?;
    for t in changed {
        let agent = t.info.agent_id.clone();
        let msg = MasterMessage::KillTask {
            task_id: t.info.task_id.clone(),
            grace_period_secs: Some(grace.unwrap_or(t.info.kill_grace_period_secs)),
        };
        tracing::info!(task = %t.info.task_id, "killing a framework's task");
        cluster.put_task(t);
        Core::send(cluster, &agent, msg);
    }
    Ok(())
}

/// Removes a framework (TEARDOWN, or its failover timeout passed): its tasks are killed, its
/// offers end, its registration is deleted and its stream closes.
pub async fn remove_framework(
    core: &Core,
    cluster: &mut ClusterState,
    fws: &mut FrameworkState,
    fw_id: &str,
) -> Result<(), CoreError> {
    let tasks: Vec<TaskRecord> = cluster
        .tasks()
        .values()
        .filter(|t| t.owner.framework_id() == Some(fw_id) && !t.kill_requested)
        .cloned()
        .collect();
    core.store()
        .apply(vec![Write::DeleteMeta(format!(
            "{}{fw_id}",
            super::records::META_PREFIX
        ))])
        .await?;
    kill_records(core, cluster, tasks, None).await?;
    offers::withdraw_framework(fws, cluster, fw_id);
    fws.frameworks.remove(fw_id);
    Ok(())
}

/// RECONCILE: the latest state of each task asked about (all the framework's tasks when none
/// are), sent as master-made updates (no uuid). Unknown tasks get TASK_LOST (partition-aware
/// frameworks: TASK_GONE when the agent named is registered, else TASK_UNKNOWN).
fn reconcile(st: &mut MasterState, fw_id: &str, asked: &[(String, Option<String>)]) {
    let latest = |t: &TaskRecord| {
        let mut s = t.status.clone().unwrap_or_else(|| {
            TaskStatus::new(
                t.info.task_id.clone(),
                Some(t.info.agent_id.clone()),
                t.state,
            )
        });
        s.state = t.state;
        s.agent_id = Some(t.info.agent_id.clone());
        s.reason = Some(Reason::ReasonReconciliation);
        s.message = Some("Reconciliation: Latest task state".into());
        s.timestamp = gantry_proto::time::now_secs();
        s
    };
    let mine = |t: &&TaskRecord| t.owner.framework_id() == Some(fw_id);
    let statuses: Vec<TaskStatus> = if asked.is_empty() {
        st.cluster
            .tasks()
            .values()
            .filter(mine)
            .map(latest)
            .collect()
    } else {
        let registered: HashMap<&AgentId, bool> = st
            .cluster
            .agents
            .iter()
            .map(|(id, a)| (id, a.accepts_tasks()))
            .collect();
        asked
            .iter()
            .map(
                |(task, agent)| match st.cluster.tasks().get(&TaskId(task.clone())).filter(mine) {
                    Some(t) => latest(t),
                    None => {
                        let agent = agent.as_ref().map(|a| AgentId(a.clone()));
                        let known = agent
                            .as_ref()
                            .is_some_and(|a| registered.get(a).copied().unwrap_or(false));
                        let state = if known {
                            TaskState::TaskGone
                        } else {
                            TaskState::TaskUnknown
                        };
                        master_status(
                            task,
                            agent.as_ref(),
                            state,
                            Reason::ReasonReconciliation,
                            "Reconciliation: Task is unknown",
                        )
                    }
                },
            )
            .collect()
    };
    if let Some(fw) = st.frameworks.frameworks.get_mut(fw_id) {
        for s in statuses {
            updates::deliver(fw, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn media_types_and_bodies_are_checked_as_mesos_does() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            parse(&h, b"{}"),
            Err(CallError::UnsupportedMedia(_))
        ));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(matches!(parse(&h, b"{"), Err(CallError::BadRequest(_))));
        assert!(matches!(parse(&h, b"{}"), Err(CallError::BadRequest(_))));
        let (_, kind) = parse(&h, br#"{"type":"TEARDOWN"}"#).expect("a call");
        assert_eq!(kind, "TEARDOWN");
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/x-protobuf"),
        );
        assert!(matches!(
            parse(&h, br#"{"type":"TEARDOWN"}"#),
            Err(CallError::NotAcceptable(_))
        ));
    }

    #[test]
    fn refuse_seconds_default_to_five_and_never_go_below_a_cycle() {
        assert_eq!(refuse_for(&Value::Null), Duration::from_secs(5));
        assert_eq!(
            refuse_for(&json!({"refuse_seconds": -3})),
            Duration::from_secs(5)
        );
        assert_eq!(
            refuse_for(&json!({"refuse_seconds": 0})),
            super::super::CYCLE
        );
        assert_eq!(
            refuse_for(&json!({"refuse_seconds": 1e12})),
            Duration::from_secs_f64(MAX_REFUSE_SECS)
        );
    }
}
