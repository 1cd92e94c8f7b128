//! Advancing deployments: once per controller run, each plan's step in progress is checked against
//! the tasks, and a plan whose steps are all done is removed. Every change is stored, and
//! published as Marathon's deployment events once it is.

use super::config::CurrentConfig;
use super::plan::{ActionKind, DeploymentPlan};
use super::rolling::{is_ready, Census};
use crate::cluster::ClusterState;
use crate::events::MarathonEvent;
use crate::services::readiness::passed;
use crate::services::state::ServiceState;
use crate::store::records::TaskRecord;
use crate::store::Write;
use std::collections::HashMap;

/// The live tasks of every app, in one pass over the tasks.
pub fn tasks_by_app(st: &ClusterState) -> HashMap<&str, Vec<&TaskRecord>> {
    let mut out: HashMap<&str, Vec<&TaskRecord>> = HashMap::new();
    for t in st.tasks().values() {
        if let Some(app) = t.app_id() {
            out.entry(app).or_default().push(t);
        }
    }
    out
}

/// The census of an app's tasks that count (not being killed, not expunged).
pub fn census(svc: &ServiceState, app_id: &str, tasks: &[&TaskRecord]) -> Census {
    let mut c = Census::default();
    let Some(app) = svc.apps.get(app_id) else {
        return c;
    };
    let mut config = CurrentConfig::new(svc, app);
    for t in tasks.iter().filter(|t| !t.kill_requested && !t.expunged) {
        let current = config.runs_current(t);
        match (current, is_ready(t) && passed(svc, app, t, current)) {
            (true, true) => c.new_ready += 1,
            (true, false) => c.new_unready += 1,
            (false, true) => c.old_ready += 1,
            (false, false) => c.old_unready += 1,
        }
    }
    c
}

/// Is the action on `app` done?
fn action_done(
    svc: &ServiceState,
    kind: ActionKind,
    app_id: &str,
    tasks: &HashMap<&str, Vec<&TaskRecord>>,
) -> bool {
    let mine = tasks.get(app_id).map_or(&[][..], Vec::as_slice);
    match kind {
        ActionKind::StartApplication => true,
        // Every task gone, those being killed too.
        ActionKind::StopApplication => mine.is_empty(),
        ActionKind::ScaleApplication | ActionKind::RestartApplication => {
            let Some(app) = svc.apps.get(app_id) else {
                return true; // deleted meanwhile (a forced delete)
            };
            let c = census(svc, app_id, mine);
            let n = app.instances as usize;
            if kind == ActionKind::ScaleApplication {
                // A scale keeps whatever configurations run: `instances` of them, all ready.
                c.old_unready + c.new_unready == 0 && c.old_ready + c.new_ready == n
            } else {
                c.old_ready + c.old_unready == 0 && c.new_ready == n && c.new_unready == 0
            }
        }
    }
}

/// Moves every plan past its finished steps; returns the writes (stored by the caller before the
/// state is used) and the events to publish once they are (`deployment_step_success` per step
/// done, then `deployment_info` for the next step or `deployment_success`).
pub fn advance(svc: &mut ServiceState, st: &ClusterState) -> (Vec<Write>, Vec<MarathonEvent>) {
    if svc.deployments.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let tasks = tasks_by_app(st);
    let mut writes = Vec::new();
    let mut events = Vec::new();
    let mut moved: Vec<DeploymentPlan> = Vec::new();
    for plan in svc.deployments.values() {
        let mut p = plan.clone();
        while p.current < p.steps.len()
            && p.current_actions()
                .iter()
                .all(|a| action_done(svc, a.action, &a.app, &tasks))
        {
            p.current += 1;
        }
        if p.current != plan.current {
            moved.push(p);
        }
    }
    for p in moved {
        let before = svc.deployments.get(&p.id).map_or(p.current, |b| b.current);
        let plan = p.to_event(&svc.apps);
        for done in before..p.current {
            let step = p
                .steps
                .get(done)
                .map(|s| serde_json::json!({ "actions": s }));
            events.push(MarathonEvent::DeploymentStepSuccess {
                plan: plan.clone(),
                current_step: step.unwrap_or_default(),
            });
        }
        if p.current >= p.steps.len() {
            tracing::info!(deployment = %p.id, "deployment finished");
            writes.push(Write::DeleteDeployment(p.id.clone()));
            svc.deployments.remove(&p.id);
            events.push(MarathonEvent::DeploymentSuccess {
                id: p.id.clone(),
                plan,
            });
        } else {
            events.push(MarathonEvent::DeploymentInfo {
                plan,
                current_step: p.current_step_event(),
            });
            tracing::info!(deployment = %p.id, step = p.current + 1, "deployment step");
            writes.push(Write::PutDeployment {
                id: p.id.clone(),
                deployment: serde_json::to_value(&p).unwrap_or_default(),
            });
            svc.deployments.insert(p.id.clone(), p);
        }
    }
    (writes, events)
}
