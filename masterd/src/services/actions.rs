//! The services controller's actions on apps, each one typed call from the API: create, delete,
//! kill an app's tasks. Each is stored before it returns; the controller does the rest.

use super::app_definition::AppDefinition;
use super::state::PortsExhausted;
use crate::cluster::Core;
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
    #[error(transparent)]
    PortsExhausted(#[from] PortsExhausted),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates an app. Stored before this returns.
pub async fn create_app(core: &Core, app: AppDefinition) -> Result<AppDefinition, ServiceError> {
    let mut guard = core.state().await;
    let svc = &mut guard.services;
    if svc.apps.contains_key(&app.id) {
        return Err(ServiceError::AppExists(app.id));
    }
    let mut app = app;
    svc.assign_service_ports(&mut app)?;
    let json = serde_json::to_value(&app).unwrap_or_default();
    core.store()
        .apply(vec![Write::PutApp {
            id: app.id.clone(),
            app: json,
        }])
        .await?;
    svc.apps.insert(app.id.clone(), app.clone());
    drop(guard);
    core.wake();
    Ok(app)
}

/// Deletes an app: it disappears at once; its tasks are killed by the controller.
pub async fn delete_app(core: &Core, id: &str) -> Result<(), ServiceError> {
    let mut guard = core.state().await;
    let svc = &mut guard.services;
    if !svc.apps.contains_key(id) {
        return Err(ServiceError::AppNotFound(id.to_owned()));
    }
    core.store()
        .apply(vec![Write::DeleteApp(id.to_owned())])
        .await?;
    svc.apps.remove(id);
    svc.waiting.remove(id);
    svc.launch_delays.remove(id);
    drop(guard);
    core.wake();
    Ok(())
}

/// Kills tasks of `app_id` (those in `only`, or all of them). With `scale`, the app's instance
/// count goes down by the number killed (a scaling change, stored first); without it the
/// controller replaces them. Returns the killed tasks as they were.
pub async fn kill_app_tasks(
    core: &Core,
    app_id: &str,
    only: Option<&[TaskId]>,
    scale: bool,
    version: &str,
) -> Result<Vec<TaskRecord>, ServiceError> {
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
    if scale && !victims.is_empty() {
        let mut a = app.clone();
        a.instances = a.instances.saturating_sub(victims.len() as u32);
        a.stamp_scaling(version);
        writes.push(Write::PutApp {
            id: a.id.clone(),
            app: serde_json::to_value(&a).unwrap_or_default(),
        });
        scaled = Some(a);
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
        svc.apps.insert(a.id.clone(), a);
    }
    for t in killed {
        let msg = MasterMessage::KillTask {
            task_id: t.info.task_id.clone(),
            grace_period_secs: Some(t.info.kill_grace_period_secs),
        };
        Core::send(st, &t.info.agent_id, msg);
        st.tasks.insert(t.info.task_id.clone(), t);
    }
    drop(guard);
    core.wake();
    Ok(victims)
}
