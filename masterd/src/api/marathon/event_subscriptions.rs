//! `/v2/eventSubscriptions` (spec §1.7): Marathon's legacy HTTP callbacks, which marathon-lb's
//! callback mode registers. `POST ?callbackUrl=U` subscribes and `DELETE ?callbackUrl=U`
//! unsubscribes. Both are stored before the answer, and both answer with the
//! `subscribe_event` / `unsubscribe_event` they publish. `GET` answers `{"callbackUrls": [...]}`.

use super::error::MarathonError;
use super::events::Origin;
use super::query::Query;
use crate::cluster::Core;
use crate::events::callbacks::{valid_url, META_PREFIX};
use crate::events::MarathonEvent;
use crate::store::Write;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

fn callback_url(q: &super::query::Pairs) -> Result<String, MarathonError> {
    let url = q.first("callbackUrl").unwrap_or_default();
    if !valid_url(url) {
        return Err(MarathonError::BadRequest(format!(
            "callbackUrl must be an http:// or https:// URL, not '{url}'"
        )));
    }
    Ok(url.to_owned())
}

/// `GET /v2/eventSubscriptions`.
pub async fn list(State(core): State<Arc<Core>>) -> Json<Value> {
    Json(json!({ "callbackUrls": core.callbacks.urls() }))
}

/// `POST /v2/eventSubscriptions?callbackUrl=U`.
pub async fn subscribe(
    State(core): State<Arc<Core>>,
    origin: Origin,
    Query(q): Query,
) -> Result<Json<Value>, MarathonError> {
    let url = callback_url(&q)?;
    let record = json!({ "clientIp": origin.client_ip }).to_string();
    core.store()
        .apply(vec![Write::PutMeta {
            key: format!("{META_PREFIX}{url}"),
            value: record,
        }])
        .await
        .map_err(|e| MarathonError::Internal(e.to_string()))?;
    core.callbacks.add(&url);
    let event = MarathonEvent::SubscribeEvent {
        client_ip: origin.client_ip,
        callback_url: url,
    };
    let body = event.to_json(&crate::events::timestamp());
    core.publish(event);
    Ok(Json(body))
}

/// `DELETE /v2/eventSubscriptions?callbackUrl=U`.
pub async fn unsubscribe(
    State(core): State<Arc<Core>>,
    origin: Origin,
    Query(q): Query,
) -> Result<Json<Value>, MarathonError> {
    let url = callback_url(&q)?;
    core.store()
        .apply(vec![Write::DeleteMeta(format!("{META_PREFIX}{url}"))])
        .await
        .map_err(|e| MarathonError::Internal(e.to_string()))?;
    core.callbacks.remove(&url);
    let event = MarathonEvent::UnsubscribeEvent {
        client_ip: origin.client_ip,
        callback_url: url,
    };
    let body = event.to_json(&crate::events::timestamp());
    core.publish(event);
    Ok(Json(body))
}
