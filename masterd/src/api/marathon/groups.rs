//! `/v2/groups` (spec §1.3, §3.6): the group tree built from the apps' ids and the groups
//! created on their own; create, update (a tree, `scaleBy`, a rollback to a `version`, `dryRun`)
//! and delete, each one deployment whose steps follow the dependencies.

use super::apps::{check_user, deployment_header, deployment_result};
use super::error::MarathonError;
use super::events::Origin;
use super::query::{flag, Pairs, Query};
use super::render::{add_readiness, app_info};
use super::updates::caller_of;
use crate::api::guard::Caller;
use crate::cluster::Core;
use crate::services::app_definition::parse_body;
use crate::services::group_update::{self, GroupSpec, GroupUpdate};
use crate::services::groups::all_group_ids;
use crate::services::path_id;
use crate::services::updates::{self, Change, Deployed, GroupChanges, Target};
use crate::state::MasterState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The version of a group with nothing in it.
const EMPTY_VERSION: &str = "1970-01-01T00:00:00.000Z";

/// What a group path names.
enum GroupPath {
    Group(String),
    Versions(String),
    Version(String, String),
}

fn parse_path(rest: &str) -> GroupPath {
    let rest = rest.trim_end_matches('/');
    if let Some((group, v)) = rest.rsplit_once("/versions/") {
        return GroupPath::Version(path_id::normalize(group), v.to_owned());
    }
    if let Some(group) = rest
        .strip_suffix("/versions")
        .or_else(|| (rest == "versions").then_some(""))
    {
        return GroupPath::Versions(path_id::normalize(group));
    }
    GroupPath::Group(path_id::normalize(rest))
}

fn not_found(id: &str) -> MarathonError {
    MarathonError::NotFound(format!("Group '{id}' does not exist"))
}

/// What `embed` asks for (spec §1.3); without any, groups and apps (and pods).
struct Embed {
    groups: bool,
    apps: bool,
    app_info: bool,
    full: bool,
    readiness: bool,
}

impl Embed {
    fn of(q: &Pairs) -> Embed {
        let asked: Vec<&str> = q.all("embed").collect();
        if asked.is_empty() {
            return Embed {
                groups: true,
                apps: true,
                app_info: false,
                full: false,
                readiness: false,
            };
        }
        let has = |e: &str| asked.contains(&e);
        let extras = [
            "tasks",
            "counts",
            "deployments",
            "lastTaskFailure",
            "readiness",
            "taskStats",
        ];
        let any_extra = extras.iter().any(|x| has(&format!("group.apps.{x}")));
        Embed {
            groups: has("group.groups"),
            apps: has("group.apps") || any_extra,
            app_info: any_extra,
            full: has("group.apps.tasks") || has("group.apps.lastTaskFailure"),
            readiness: has("group.apps.readiness"),
        }
    }
}

/// The group `id` as Marathon shows it.
fn render(st: &MasterState, id: &str, embed: &Embed) -> Value {
    let svc = &st.services;
    let groups = all_group_ids(&svc.apps, &svc.groups);
    let mut child_groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in groups.iter().filter(|g| g.as_str() != "/") {
        child_groups
            .entry(path_id::parent(g))
            .or_default()
            .push(g.clone());
    }
    let mut child_apps: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for a in svc.apps.keys() {
        child_apps.entry(path_id::parent(a)).or_default().push(a);
    }
    fn one(
        st: &MasterState,
        id: &str,
        embed: &Embed,
        child_groups: &BTreeMap<String, Vec<String>>,
        child_apps: &BTreeMap<String, Vec<&str>>,
    ) -> (Value, String) {
        let svc = &st.services;
        let mut version = svc
            .groups
            .get(id)
            .map(|g| g.version.clone())
            .unwrap_or_default();
        let apps: Vec<Value> = child_apps
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|a| svc.apps.get(*a))
            .map(|app| {
                if app.version > version {
                    version = app.version.clone();
                }
                if embed.app_info {
                    let mut info = app_info(st, app, embed.full);
                    if embed.readiness {
                        add_readiness(st, app, &mut info);
                    }
                    info
                } else {
                    serde_json::to_value(app).unwrap_or_default()
                }
            })
            .collect();
        let groups: Vec<Value> = child_groups
            .get(id)
            .into_iter()
            .flatten()
            .map(|g| {
                let (v, gv) = one(st, g, embed, child_groups, child_apps);
                if gv > version {
                    version = gv;
                }
                v
            })
            .collect();
        if version.is_empty() {
            version = EMPTY_VERSION.to_owned();
        }
        let deps = svc
            .groups
            .get(id)
            .map(|g| g.dependencies.clone())
            .unwrap_or_default();
        let v = json!({
            "id": id,
            "apps": if embed.apps { apps } else { Vec::new() },
            "groups": if embed.groups { groups } else { Vec::new() },
            "pods": [],
            "dependencies": deps,
            "version": version,
        });
        (v, version)
    }
    one(st, id, embed, &child_groups, &child_apps).0
}

/// `GET /v2/groups[/{id}]`, `/versions`, `/versions/{v}`.
pub async fn get(
    State(core): State<Arc<Core>>,
    path: Option<Path<String>>,
    Query(q): Query,
) -> Result<Json<Value>, MarathonError> {
    let st = core.state().await;
    let rest = path.map(|Path(r)| r).unwrap_or_default();
    match parse_path(&rest) {
        GroupPath::Group(id) => {
            if !group_update::exists(&st.services, &id) {
                return Err(not_found(&id));
            }
            Ok(Json(render(&st, &id, &Embed::of(&q))))
        }
        GroupPath::Versions(id) => {
            if !group_update::exists(&st.services, &id) {
                return Err(not_found(&id));
            }
            let mut v = group_update::versions(&st.services, &id);
            v.reverse();
            Ok(Json(json!(v)))
        }
        GroupPath::Version(id, v) => {
            if !group_update::versions(&st.services, &id).contains(&v) {
                return Err(MarathonError::NotFound(format!(
                    "Group '{id}' does not exist in version {v}"
                )));
            }
            // The group as it was: each app at its newest version then.
            let mut then = json!({"id": id, "apps": [], "groups": [], "pods": [],
                                  "dependencies": [], "version": v});
            let apps: Vec<Value> = group_update::apps_under(&st.services, &id)
                .filter_map(|a| {
                    st.services
                        .versions
                        .get(&a.id)?
                        .range(..=v.clone())
                        .next_back()
                })
                .map(|(_, def)| serde_json::to_value(def).unwrap_or_default())
                .collect();
            then["apps"] = json!(apps);
            Ok(Json(then))
        }
    }
}

/// The group a path names: `/` for `/v2/groups`.
fn group_of(path: Option<Path<String>>) -> String {
    path.map_or_else(|| "/".to_owned(), |Path(rest)| path_id::normalize(&rest))
}

/// `POST /v2/groups[/{id}]`.
pub async fn create(
    State(core): State<Arc<Core>>,
    origin: Origin,
    caller: Option<Extension<Caller>>,
    path: Option<Path<String>>,
    Query(q): Query,
    body: Bytes,
) -> Result<Response, MarathonError> {
    create_at(
        &core,
        &origin,
        caller_of(caller),
        &q,
        &group_of(path),
        &body,
    )
    .await
}

async fn create_at(
    core: &Core,
    origin: &Origin,
    caller: Caller,
    q: &Pairs,
    at: &str,
    body: &[u8],
) -> Result<Response, MarathonError> {
    let spec = group_update::parse_spec(&parse_body(body)?, at)?;
    if spec.id == "/" {
        return Err(MarathonError::Conflict(
            "Group / is already created. Use PUT to change this group.".into(),
        ));
    }
    let (changes, groups) = {
        let st = core.state().await;
        if st.services.apps.contains_key(&spec.id) {
            return Err(MarathonError::Conflict(format!(
                "An app with the path {} already exists.",
                spec.id
            )));
        }
        if group_update::exists(&st.services, &spec.id) {
            return Err(MarathonError::Conflict(format!(
                "Group {} is already created. Use PUT to change this group.",
                spec.id
            )));
        }
        group_update::changes_for(&st.services, &spec)
    };
    let d = run(core, origin, &caller, changes, groups, q, false).await?;
    let mut resp = (
        StatusCode::CREATED,
        Json(json!({"deploymentId": d.id, "version": d.version})),
    )
        .into_response();
    deployment_header(&mut resp, &d.id);
    Ok(resp)
}

/// `PUT /v2/groups[/{id}]`: creates the group if missing.
pub async fn update(
    State(core): State<Arc<Core>>,
    origin: Origin,
    caller: Option<Extension<Caller>>,
    path: Option<Path<String>>,
    Query(q): Query,
    body: Bytes,
) -> Result<Response, MarathonError> {
    update_at(
        &core,
        &origin,
        caller_of(caller),
        &q,
        &group_of(path),
        &body,
    )
    .await
}

async fn update_at(
    core: &Core,
    origin: &Origin,
    caller: Caller,
    q: &Pairs,
    at: &str,
    body: &[u8],
) -> Result<Response, MarathonError> {
    let update = group_update::parse_update(&parse_body(body)?, at)?;
    let (changes, groups) = {
        let st = core.state().await;
        let svc = &st.services;
        match &update {
            GroupUpdate::Spec(GroupSpec { id, .. }) if svc.apps.contains_key(id) => {
                return Err(MarathonError::Conflict(format!(
                    "An app with the path {id} already exists."
                )));
            }
            GroupUpdate::Spec(spec) => group_update::changes_for(svc, spec),
            GroupUpdate::ScaleBy(_) | GroupUpdate::Rollback(_)
                if !group_update::exists(svc, at) =>
            {
                return Err(not_found(at));
            }
            GroupUpdate::ScaleBy(f) => (
                group_update::scale_changes(svc, at, *f),
                GroupChanges::default(),
            ),
            GroupUpdate::Rollback(v) => {
                let changes = group_update::rollback_changes(svc, at, v).ok_or_else(|| {
                    MarathonError::NotFound(format!("Group '{at}' does not exist in version {v}"))
                })?;
                (changes, GroupChanges::default())
            }
        }
    };
    let dry_run = flag(q.first("dryRun"), false);
    let d = run(core, origin, &caller, changes, groups, q, dry_run).await?;
    if dry_run {
        return Ok(Json(json!({ "steps": d.steps })).into_response());
    }
    Ok(deployment_result(&d.id, &d.version))
}

/// `DELETE /v2/groups[/{id}]`: the group and everything under it (the root: everything).
pub async fn delete(
    State(core): State<Arc<Core>>,
    origin: Origin,
    caller: Option<Extension<Caller>>,
    path: Option<Path<String>>,
    Query(q): Query,
) -> Result<Response, MarathonError> {
    delete_at(&core, &origin, caller_of(caller), &q, &group_of(path)).await
}

async fn delete_at(
    core: &Core,
    origin: &Origin,
    caller: Caller,
    q: &Pairs,
    id: &str,
) -> Result<Response, MarathonError> {
    let (changes, groups) = {
        let st = core.state().await;
        if !group_update::exists(&st.services, id) {
            return Err(not_found(id));
        }
        group_update::delete_changes(&st.services, id)
    };
    let d = run(core, origin, &caller, changes, groups, q, false).await?;
    Ok(deployment_result(&d.id, &d.version))
}

/// One deployment of the changes (refused while the apps are locked, unless `force`).
async fn run(
    core: &Core,
    origin: &Origin,
    caller: &Caller,
    changes: Vec<Change>,
    groups: GroupChanges,
    q: &Pairs,
    dry_run: bool,
) -> Result<Deployed, MarathonError> {
    for c in &changes {
        if let Target::Put(app) | Target::Rollback(app) = &c.target {
            check_user(caller, app)?;
        }
    }
    let force = flag(q.first("force"), false);
    let d = updates::deploy_with(core, changes, groups, force, dry_run).await?;
    if !dry_run {
        origin.api_post(core, &d.apps);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_a_group_its_versions_or_one_version() {
        assert!(matches!(parse_path("prod/web"), GroupPath::Group(g) if g == "/prod/web"));
        assert!(matches!(parse_path("prod/versions"), GroupPath::Versions(g) if g == "/prod"));
        assert!(matches!(parse_path("versions"), GroupPath::Versions(g) if g == "/"));
        assert!(matches!(
            parse_path("prod/versions/2026-01-01T00:00:00.000Z"),
            GroupPath::Version(g, v) if g == "/prod" && v == "2026-01-01T00:00:00.000Z"
        ));
    }
}
