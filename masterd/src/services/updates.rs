//! Changing apps through deployments: create, update, restart, roll back and delete one app or
//! several, each change planned as a deployment (spec §2.8) that is stored, with the new versions,
//! before the call returns; at most one deployment per app (others are refused, or cancelled with
//! `force`); cancelling a deployment, with or without a rollback.

use super::actions::ServiceError;
use super::app_definition::AppDefinition;
use super::deployments::config::{fresh_version, same_config};
use super::deployments::plan::ChangeKind;
use super::deployments::DeploymentPlan;
use super::groups::{self, GroupRecord};
use crate::cluster::Core;
use crate::events::MarathonEvent;
use crate::store::Write;
use std::collections::BTreeMap;

/// What a change does to one app.
#[derive(Clone, Debug)]
pub enum Target {
    /// Create the app, or replace its definition (a scale when only `instances` differ).
    Put(AppDefinition),
    /// A rolling restart with the same definition (a new `lastConfigChangeAt`).
    Restart,
    /// Back to a stored definition (its `lastConfigChangeAt` kept, so the tasks that run it stay).
    Rollback(AppDefinition),
    Delete,
}

/// One app's change.
#[derive(Clone, Debug)]
pub struct Change {
    pub id: String,
    pub target: Target,
}

/// A deployment started: its id and version, the apps created by it, and every app as it is now.
#[derive(Clone, Debug)]
pub struct Deployed {
    /// For a dry run, the plan's steps as Marathon shows them; otherwise null.
    pub steps: serde_json::Value,
    pub id: String,
    pub version: String,
    pub created: Vec<String>,
    pub apps: Vec<AppDefinition>,
}

/// Each changing app's step level (see `groups::levels`), from the dependencies as they will be
/// once the change is made; a cycle among them refuses the change.
fn dependency_levels(
    svc: &super::state::ServiceState,
    puts: &[AppDefinition],
    deletes: &[String],
    groups: &GroupChanges,
    kinds: &[(String, ChangeKind)],
) -> Result<BTreeMap<String, usize>, ServiceError> {
    let changed: std::collections::HashSet<&str> = puts
        .iter()
        .map(|a| a.id.as_str())
        .chain(deletes.iter().map(String::as_str))
        .collect();
    let after: Vec<&AppDefinition> = svc
        .apps
        .values()
        .filter(|a| !changed.contains(a.id.as_str()))
        .chain(puts)
        .collect();
    let mut group_map = svc.groups.clone();
    for g in &groups.delete {
        group_map.remove(g);
    }
    for g in &groups.put {
        group_map.insert(g.id.clone(), g.clone());
    }
    let any = after.iter().any(|a| !a.dependencies.is_empty())
        || group_map.values().any(|g| !g.dependencies.is_empty());
    if !any {
        return Ok(BTreeMap::new());
    }
    let deps = groups::dependency_map(after, &group_map);
    groups::check_acyclic(&deps)?;
    let moving = kinds
        .iter()
        .filter(|(_, k)| *k != ChangeKind::Delete)
        .map(|(a, _)| a.clone())
        .collect();
    Ok(groups::levels(&moving, &deps))
}

/// `deployment_failed` for a deployment that will not finish.
pub fn failed(
    plan: &DeploymentPlan,
    apps: &BTreeMap<String, AppDefinition>,
    reason: &str,
) -> MarathonEvent {
    MarathonEvent::DeploymentFailed {
        id: plan.id.clone(),
        plan: plan.to_event(apps),
        reason: reason.to_owned(),
    }
}

/// Writes for one app version: the app and its entry in the version history.
pub fn app_writes(app: &AppDefinition) -> [Write; 2] {
    let json = serde_json::to_value(app).unwrap_or_default();
    [
        Write::PutApp {
            id: app.id.clone(),
            app: json.clone(),
        },
        Write::PutAppVersion {
            id: app.id.clone(),
            version: app.version.clone(),
            app: json,
        },
    ]
}

/// Plans and stores one deployment of `changes`. Apps locked by another deployment are refused
/// (`Locked`, naming it) unless `force`, which cancels those deployments without a rollback.
pub async fn deploy(
    core: &Core,
    changes: Vec<Change>,
    force: bool,
) -> Result<Deployed, ServiceError> {
    deploy_with(core, changes, GroupChanges::default(), force, false).await
}

/// Groups created, changed or deleted with a deployment (`/v2/groups`).
#[derive(Clone, Debug, Default)]
pub struct GroupChanges {
    pub put: Vec<GroupRecord>,
    pub delete: Vec<String>,
}

/// As [`deploy`], with group changes; with `dry_run`, only plans (nothing is stored or changed,
/// and the plan's steps are in [`Deployed::steps`]).
pub async fn deploy_with(
    core: &Core,
    changes: Vec<Change>,
    mut groups: GroupChanges,
    force: bool,
    dry_run: bool,
) -> Result<Deployed, ServiceError> {
    let now = gantry_proto::time::now_secs();
    let mut guard = core.state().await;
    let svc = &mut guard.services;
    let locks = svc.locking(changes.iter().map(|c| c.id.as_str()));
    if !locks.is_empty() && !force {
        return Err(ServiceError::Locked(locks));
    }
    let newest = changes
        .iter()
        .filter_map(|c| svc.apps.get(&c.id).map(|a| a.version.as_str()))
        .max();
    let version = fresh_version(newest, now);
    let mut writes: Vec<Write> = locks.iter().cloned().map(Write::DeleteDeployment).collect();
    let mut kinds = Vec::new();
    let mut original = BTreeMap::new();
    let mut puts: Vec<AppDefinition> = Vec::new();
    let mut deletes = Vec::new();
    for change in changes {
        let existing = svc.apps.get(&change.id).cloned();
        let (app, kind) = match (change.target, &existing) {
            (Target::Delete, None) | (Target::Restart, None) => {
                return Err(ServiceError::AppNotFound(change.id));
            }
            (Target::Delete, Some(_)) => {
                deletes.push(change.id.clone());
                (None, ChangeKind::Delete)
            }
            (Target::Restart, Some(old)) => {
                let mut app = old.clone();
                app.stamp_config_change(&version);
                (Some(app), ChangeKind::Restart)
            }
            (Target::Put(mut app), None) => {
                app.stamp_config_change(&version);
                (Some(app), ChangeKind::Create)
            }
            (Target::Put(mut app), Some(old)) => {
                app.version = old.version.clone();
                app.version_info = old.version_info.clone();
                let kind = if same_config(&app, old) {
                    app.stamp_scaling(&version);
                    ChangeKind::Scale
                } else {
                    app.stamp_config_change(&version);
                    ChangeKind::Restart
                };
                (Some(app), kind)
            }
            (Target::Rollback(mut app), old) => {
                app.stamp_scaling(&version);
                let kind = match old {
                    None => ChangeKind::Create,
                    Some(old) if same_config(&app, old) => ChangeKind::Scale,
                    Some(_) => ChangeKind::Restart,
                };
                (Some(app), kind)
            }
        };
        if let Some(mut app) = app {
            svc.assign_service_ports(&mut app)?;
            writes.extend(app_writes(&app));
            puts.push(app);
        }
        kinds.push((change.id.clone(), kind));
        original.insert(change.id, existing);
    }
    writes.extend(deletes.iter().cloned().map(Write::DeleteApp));
    for g in &mut groups.put {
        g.version = version.clone();
    }
    let levels = dependency_levels(svc, &puts, &deletes, &groups, &kinds)?;
    for g in &groups.put {
        writes.push(Write::PutGroup {
            id: g.id.clone(),
            group: serde_json::to_value(g).unwrap_or_default(),
        });
    }
    writes.extend(groups.delete.iter().cloned().map(Write::DeleteGroup));
    let created: Vec<String> = kinds
        .iter()
        .filter(|(_, k)| *k == ChangeKind::Create)
        .map(|(a, _)| a.clone())
        .collect();
    let plan = DeploymentPlan::new(
        uuid::Uuid::new_v4().to_string(),
        version.clone(),
        &kinds,
        original,
        &levels,
    );
    if dry_run {
        return Ok(Deployed {
            steps: plan.to_marathon()["steps"].clone(),
            id: plan.id,
            version,
            created,
            apps: puts,
        });
    }
    if !plan.steps.is_empty() {
        writes.push(Write::PutDeployment {
            id: plan.id.clone(),
            deployment: serde_json::to_value(&plan).unwrap_or_default(),
        });
    }
    core.store().apply(writes).await?;
    for id in &locks {
        tracing::info!(deployment = %id, "deployment cancelled by a forced change");
        if let Some(old) = svc.deployments.remove(id) {
            core.publish(failed(&old, &svc.apps, "cancelled by a forced change"));
        }
    }
    for id in &deletes {
        core.publish(MarathonEvent::AppTerminatedEvent { app_id: id.clone() });
        svc.apps.remove(id);
        svc.versions.remove(id);
        svc.waiting.remove(id);
        svc.launch_delays.remove(id);
    }
    for app in &puts {
        // A new version resets the launch delay (spec §2.8).
        svc.launch_delays.remove(&app.id);
        svc.versions
            .entry(app.id.clone())
            .or_default()
            .insert(app.version.clone(), app.clone());
        svc.apps.insert(app.id.clone(), app.clone());
    }
    for g in groups.delete {
        svc.groups.remove(&g);
    }
    for g in groups.put {
        svc.groups.insert(g.id.clone(), g);
    }
    let deployed = Deployed {
        steps: serde_json::Value::Null,
        id: plan.id.clone(),
        version,
        created,
        apps: puts,
    };
    if !plan.steps.is_empty() {
        tracing::info!(deployment = %plan.id, apps = ?plan.affected_apps(), "deployment started");
        core.publish(MarathonEvent::DeploymentInfo {
            plan: plan.to_event(&svc.apps),
            current_step: plan.current_step_event(),
        });
        svc.deployments.insert(plan.id.clone(), plan);
    }
    drop(guard);
    core.wake();
    Ok(deployed)
}

/// Cancels deployment `id`. With `force` it is dropped and nothing is undone (`None`); otherwise a
/// new deployment brings every app it changed back to what it was before.
pub async fn cancel(core: &Core, id: &str, force: bool) -> Result<Option<Deployed>, ServiceError> {
    let changes = {
        let mut guard = core.state().await;
        let svc = &mut guard.services;
        let Some(plan) = svc.deployments.get(id).cloned() else {
            return Err(ServiceError::DeploymentNotFound(id.to_owned()));
        };
        core.store()
            .apply(vec![Write::DeleteDeployment(id.to_owned())])
            .await?;
        svc.deployments.remove(id);
        let why = if force {
            "cancelled without a rollback"
        } else {
            "cancelled; rolled back"
        };
        core.publish(failed(&plan, &svc.apps, why));
        if force {
            tracing::info!(deployment = %id, "deployment cancelled without a rollback");
            return Ok(None);
        }
        tracing::info!(deployment = %id, "deployment cancelled; rolling back");
        let changes: Vec<Change> = plan
            .original
            .into_iter()
            .filter_map(|(app, before)| match before {
                Some(def) => Some(Change {
                    id: app,
                    target: Target::Rollback(def),
                }),
                None => svc.apps.contains_key(&app).then_some(Change {
                    id: app,
                    target: Target::Delete,
                }),
            })
            .collect();
        changes
    };
    // `force`: the cancelled deployment (and any other on these apps) gives way to the rollback.
    deploy(core, changes, true).await.map(Some)
}
