//! The services controller's actions on tasks, each one typed call from the API: kill an app's
//! tasks (and scale it down by as many). Stored before it returns; the controller does the rest.
//! Changes of apps themselves go through deployments (`updates`).

use super::deployments::config::fresh_version;
use super::deployments::plan::ChangeKind;
use super::deployments::DeploymentPlan;
use super::state::PortsExhausted;
use super::updates::app_writes;
use crate::cluster::Core;
use crate::events::MarathonEvent;
use crate::store::records::TaskRecord;
use crate::store::{StoreError, Write};
use gantry_proto::{MasterMessage, TaskId};

/// An app action that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("An app with id [{0}] already exists.")]
    AppExists(String),
    #[error("App '{0}' does not exist")]
    AppNotFound(String),
    #[error("App '{id}' does not exist in version {version}")]
    VersionNotFound { id: String, version: String },
    #[error("DeploymentPlan {0} does not exist")]
    DeploymentNotFound(String),
    /// The apps are locked by these deployments (and `force` was not given).
    #[error("App is locked by one or more deployments: {}", .0.join(", "))]
    Locked(Vec<String>),
    #[error(transparent)]
    PortsExhausted(#[from] PortsExhausted),
    #[error(transparent)]
    Cycle(#[from] super::groups::Cycle),
    #[error("Group '{0}' does not exist")]
    GroupNotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Kills tasks of `app_id` (those in `only`, or all of them). With `scale`, the app's instance
/// count goes down by the number killed (a scaling change, stored first); without it the
/// controller replaces them. Returns the killed tasks as they were and, for a scale, the
/// deployment (id, version) that follows it; a scale of an app locked by a deployment is refused
/// unless `force`, which cancels that deployment.
pub async fn kill_app_tasks(
    core: &Core,
    app_id: &str,
    only: Option<&[TaskId]>,
    scale: bool,
    force: bool,
) -> Result<(Vec<TaskRecord>, Option<(String, String)>), ServiceError> {
    let mut guard = core.state().await;
    let crate::state::MasterState {
        cluster: st,
        services: svc,
        ..
    } = &mut *guard;
    let Some(app) = svc.apps.get(app_id) else {
        return Err(ServiceError::AppNotFound(app_id.to_owned()));
    };
    let victims: Vec<TaskRecord> = st
        .app_tasks(app_id)
        .filter(|t| only.is_none_or(|ids| ids.contains(&t.info.task_id)))
        .filter(|t| !t.kill_requested)
        .cloned()
        .collect();
    let mut writes = Vec::new();
    let mut scaled = None;
    let mut plan = None;
    let locks = if scale {
        svc.locking([app_id])
    } else {
        Vec::new()
    };
    if !locks.is_empty() && !force {
        return Err(ServiceError::Locked(locks));
    }
    if scale {
        let mut a = app.clone();
        a.instances = a.instances.saturating_sub(victims.len() as u32);
        let version = fresh_version(Some(&app.version), gantry_proto::time::now_secs());
        a.stamp_scaling(&version);
        writes.extend(app_writes(&a));
        let p = DeploymentPlan::new(
            uuid::Uuid::new_v4().to_string(),
            version,
            &[(a.id.clone(), ChangeKind::Scale)],
            [(a.id.clone(), Some(app.clone()))].into_iter().collect(),
            &std::collections::BTreeMap::new(),
        );
        writes.extend(locks.iter().cloned().map(Write::DeleteDeployment));
        writes.push(Write::PutDeployment {
            id: p.id.clone(),
            deployment: serde_json::to_value(&p).unwrap_or_default(),
        });
        scaled = Some(a);
        plan = Some(p);
    }
    let killed: Vec<TaskRecord> = victims
        .iter()
        .map(|t| TaskRecord {
            kill_requested: true,
            ..t.clone()
        })
        .collect();
    writes.extend(killed.iter().map(|t| Write::PutTask(Box::new(t.clone()))));
    core.store().apply(writes).await?;
    if let Some(a) = scaled {
        svc.versions
            .entry(a.id.clone())
            .or_default()
            .insert(a.version.clone(), a.clone());
        svc.apps.insert(a.id.clone(), a);
    }
    for id in &locks {
        if let Some(old) = svc.deployments.remove(id) {
            core.publish(super::updates::failed(
                &old,
                &svc.apps,
                "cancelled by a forced change",
            ));
        }
    }
    let deployment = plan.map(|p| {
        let out = (p.id.clone(), p.version.clone());
        core.publish(MarathonEvent::DeploymentInfo {
            plan: p.to_event(&svc.apps),
            current_step: p.current_step_event(),
        });
        svc.deployments.insert(p.id.clone(), p);
        out
    });
    for t in killed {
        let msg = MasterMessage::KillTask {
            task_id: t.info.task_id.clone(),
            grace_period_secs: Some(t.info.kill_grace_period_secs),
        };
        Core::send(st, &t.info.agent_id, msg);
        st.put_task(t);
    }
    drop(guard);
    core.wake();
    Ok((victims, deployment))
}
