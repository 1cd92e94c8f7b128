//! `PUT`/`PATCH /v2/apps/{id}` and `/v2/apps` (several apps), and `POST /v2/apps/{id}/restart`:
//! each becomes one deployment, answered with its deployment result (spec §1.1). PUT creates an
//! unknown app (201); with `partialUpdate` (default true) the body's top-level fields replace the
//! stored app's and the others are kept; PATCH merges the body into the stored app deeply.

use super::apps::{check_user, deployment_header, deployment_result, parse_path, AppPath};
use super::error::MarathonError;
use super::events::Origin;
use super::query::{flag, Query};
use crate::api::guard::Caller;
use crate::cluster::Core;
use crate::services::app_definition::{parse_body, AppDefinition};
use crate::services::path_id;
use crate::services::updates::{self, Change, Target};
use crate::state::MasterState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{Map, Value};
use std::sync::Arc;

/// How a body changes a stored app.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// The body is the whole definition (`partialUpdate=false`).
    Replace,
    /// Top-level fields of the body replace the stored ones (PUT's default).
    TopLevel,
    /// Objects merge recursively, `null` removes a field, anything else replaces (PATCH).
    Deep,
}

/// Deep merge in the manner of JSON Merge Patch (RFC 7396).
pub fn deep_merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    deep_merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// The change one body asks for, for app `id` (`None`: take the id from the body).
fn change_for(
    st: &MasterState,
    id: Option<String>,
    body: &Value,
    merge: Merge,
) -> Result<Change, MarathonError> {
    let Some(obj) = body.as_object() else {
        return Err(MarathonError::InvalidFields(vec![
            crate::services::app::FieldErrors {
                path: "/".into(),
                errors: vec!["error.expected.jsobject".into()],
            },
        ]));
    };
    let id = match id {
        Some(id) => id,
        None => match obj.get("id").and_then(Value::as_str) {
            Some(id) => path_id::normalize(id),
            None => {
                return Err(MarathonError::InvalidFields(vec![
                    crate::services::app::FieldErrors {
                        path: "/id".into(),
                        errors: vec!["error.path.missing".into()],
                    },
                ]))
            }
        },
    };
    let stored = st.services.apps.get(&id);
    // `{"version": ts}` (with `id` at most) rolls the app back to that stored version.
    if let Some(version) = obj.get("version").filter(|_| merge != Merge::Deep) {
        if obj.keys().any(|k| k != "id" && k != "version") {
            return Err(MarathonError::Unprocessable(
                "The 'version' field may only be combined with the 'id' field.".into(),
            ));
        }
        let version = version.as_str().unwrap_or_default();
        if stored.is_none() {
            return Err(MarathonError::NotFound(format!(
                "App '{id}' does not exist"
            )));
        }
        let def = st.services.version(&id, version).ok_or_else(|| {
            MarathonError::NotFound(format!("App '{id}' does not exist in version {version}"))
        })?;
        return Ok(Change {
            id,
            target: Target::Rollback(def.clone()),
        });
    }
    let mut merged = match (stored, merge) {
        (Some(app), Merge::TopLevel | Merge::Deep) => {
            let mut base = serde_json::to_value(app).unwrap_or_default();
            if let Some(b) = base.as_object_mut() {
                b.remove("version");
                b.remove("versionInfo");
            }
            base
        }
        (None, Merge::Deep) => {
            return Err(MarathonError::NotFound(format!(
                "App '{id}' does not exist"
            )));
        }
        _ => Value::Object(Map::new()),
    };
    match merge {
        Merge::Deep => deep_merge(&mut merged, body),
        _ => {
            if let (Some(m), Some(b)) = (merged.as_object_mut(), body.as_object()) {
                for (k, v) in b {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if let Some(m) = merged.as_object_mut() {
        // The path names the app; an `id` in the body does not move it.
        m.insert("id".into(), Value::String(id.clone()));
        m.remove("version");
    }
    let app = AppDefinition::from_json(&merged, "/")?;
    Ok(Change {
        id,
        target: Target::Put(app),
    })
}

/// Deploys `changes` and answers with the deployment result; a single app that did not exist is
/// answered 201 with its `Location`.
async fn answer(
    core: &Core,
    origin: &Origin,
    caller: &Caller,
    changes: Vec<Change>,
    force: bool,
    single: bool,
) -> Result<Response, MarathonError> {
    for c in &changes {
        if let Target::Put(app) | Target::Rollback(app) = &c.target {
            check_user(caller, app)?;
        }
    }
    let d = updates::deploy(core, changes, force).await?;
    origin.api_post(core, &d.apps);
    let mut resp = deployment_result(&d.id, &d.version);
    if single {
        if let Some(id) = d.created.first() {
            *resp.status_mut() = StatusCode::CREATED;
            if let Ok(v) = HeaderValue::from_str(&format!("/v2/apps{id}")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            deployment_header(&mut resp, &d.id);
        }
    }
    Ok(resp)
}

/// The caller the guard found (anonymous when authentication is off).
pub fn caller_of(caller: Option<Extension<Caller>>) -> Caller {
    caller.map(|Extension(c)| c).unwrap_or_default()
}

/// `PUT /v2/apps/{id}`.
pub async fn put(
    State(core): State<Arc<Core>>,
    origin: Origin,
    caller: Option<Extension<Caller>>,
    Path(rest): Path<String>,
    Query(q): Query,
    body: Bytes,
) -> Result<Response, MarathonError> {
    let AppPath::App(id) = parse_path(&rest) else {
        return Err(MarathonError::NotFound(format!(
            "App '{}' does not exist",
            path_id::normalize(&rest)
        )));
    };
    let merge = if flag(q.first("partialUpdate"), true) {
        Merge::TopLevel
    } else {
        Merge::Replace
    };
    let body = parse_body(&body)?;
    let change = change_for(&*core.state().await, Some(id), &body, merge)?;
    let force = flag(q.first("force"), false);
    answer(
        &core,
        &origin,
        &caller_of(caller),
        vec![change],
        force,
        true,
    )
    .await
}

/// `PATCH /v2/apps/{id}`: 404 for an unknown app.
pub async fn patch(
    State(core): State<Arc<Core>>,
    origin: Origin,
    caller: Option<Extension<Caller>>,
    Path(rest): Path<String>,
    Query(q): Query,
    body: Bytes,
) -> Result<Response, MarathonError> {
    let AppPath::App(id) = parse_path(&rest) else {
        return Err(MarathonError::NotFound(format!(
            "App '{}' does not exist",
            path_id::normalize(&rest)
        )));
    };
    let body = parse_body(&body)?;
    let change = change_for(&*core.state().await, Some(id), &body, Merge::Deep)?;
    let force = flag(q.first("force"), false);
    answer(
        &core,
        &origin,
        &caller_of(caller),
        vec![change],
        force,
        false,
    )
    .await
}

/// `PUT /v2/apps` and `PATCH /v2/apps`: a JSON array of apps, each with its `id`, in one
/// deployment.
async fn bulk(
    core: &Core,
    origin: &Origin,
    caller: Caller,
    q: &super::query::Pairs,
    body: &[u8],
    merge: Merge,
) -> Result<Response, MarathonError> {
    let body = parse_body(body)?;
    let Some(items) = body.as_array() else {
        return Err(MarathonError::InvalidFields(vec![
            crate::services::app::FieldErrors {
                path: "/".into(),
                errors: vec!["error.expected.jsarray".into()],
            },
        ]));
    };
    let changes = {
        let st = core.state().await;
        items
            .iter()
            .map(|item| change_for(&st, None, item, merge))
            .collect::<Result<Vec<_>, _>>()?
    };
    answer(
        core,
        origin,
        &caller,
        changes,
        flag(q.first("force"), false),
        false,
    )
    .await
}

/// `PUT /v2/apps`.
pub async fn put_all(
    State(core): State<Arc<Core>>,
    origin: Origin,
    caller: Option<Extension<Caller>>,
    Query(q): Query,
    body: Bytes,
) -> Result<Response, MarathonError> {
    let merge = if flag(q.first("partialUpdate"), true) {
        Merge::TopLevel
    } else {
        Merge::Replace
    };
    bulk(&core, &origin, caller_of(caller), &q, &body, merge).await
}

/// `PATCH /v2/apps`.
pub async fn patch_all(
    State(core): State<Arc<Core>>,
    origin: Origin,
    caller: Option<Extension<Caller>>,
    Query(q): Query,
    body: Bytes,
) -> Result<Response, MarathonError> {
    bulk(&core, &origin, caller_of(caller), &q, &body, Merge::Deep).await
}

/// `POST /v2/apps/{id}/restart`: a rolling restart with the same definition.
pub async fn restart(
    State(core): State<Arc<Core>>,
    Path(rest): Path<String>,
    Query(q): Query,
) -> Result<Response, MarathonError> {
    let AppPath::Restart(id) = parse_path(&rest) else {
        return Err(MarathonError::NotFound(format!(
            "App '{}' does not exist",
            path_id::normalize(&rest)
        )));
    };
    let change = Change {
        id,
        target: Target::Restart,
    };
    let d = updates::deploy(&core, vec![change], flag(q.first("force"), false)).await?;
    Ok(deployment_result(&d.id, &d.version).into_response())
}

#[cfg(test)]
mod tests {
    use super::deep_merge;
    use serde_json::json;

    #[test]
    fn patch_merges_deeply() {
        let mut base = json!({"cmd": "a", "env": {"A": "1", "B": "2"}, "upgradeStrategy":
            {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}, "labels": {"x": "y"}});
        deep_merge(
            &mut base,
            &json!({"env": {"B": "3", "C": "4"}, "upgradeStrategy": {"minimumHealthCapacity": 0.5},
                "labels": null}),
        );
        assert_eq!(
            base,
            json!({"cmd": "a", "env": {"A": "1", "B": "3", "C": "4"}, "upgradeStrategy":
                {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 1}})
        );
    }
}
