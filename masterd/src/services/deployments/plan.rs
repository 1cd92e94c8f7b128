//! A deployment plan: its steps of actions (StartApplication, ScaleApplication,
//! RestartApplication, StopApplication), the step in progress, and the apps as they were before it
//! (what a rollback deploys), in the JSON the store keeps and `GET /v2/deployments` shows.

use crate::services::app_definition::AppDefinition;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What one action does to its app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionKind {
    StartApplication,
    ScaleApplication,
    RestartApplication,
    StopApplication,
}

/// One action of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub action: ActionKind,
    pub app: String,
}

/// A deployment: steps run in order, the actions of a step together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentPlan {
    pub id: String,
    /// The version the deployment brings the apps to (its creation timestamp).
    pub version: String,
    pub steps: Vec<Vec<Action>>,
    /// The index of the step in progress; `steps.len()` once all are done.
    pub current: usize,
    /// Each affected app as it was before (`None`: it did not exist), for a rollback.
    pub original: BTreeMap<String, Option<AppDefinition>>,
}

/// What a change does to one app, for planning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    /// Same configuration: only `instances` (or nothing) changed.
    Scale,
    /// Another configuration, or a restart.
    Restart,
    Delete,
}

impl DeploymentPlan {
    /// The plan of Marathon's `DeploymentPlan`: stops first, then starts (at 0 instances), then
    /// the scale and restart actions in dependency order: one step per `levels` value (an app's
    /// level is the longest chain of changed apps it depends on; absent: 0). Empty steps are
    /// dropped.
    pub fn new(
        id: String,
        version: String,
        changes: &[(String, ChangeKind)],
        original: BTreeMap<String, Option<AppDefinition>>,
        levels: &BTreeMap<String, usize>,
    ) -> Self {
        let of = |pick: &dyn Fn(&str, ChangeKind) -> Option<ActionKind>| -> Vec<Action> {
            changes
                .iter()
                .filter_map(|(app, k)| {
                    pick(app, *k).map(|action| Action {
                        action,
                        app: app.clone(),
                    })
                })
                .collect()
        };
        let level = |app: &str| levels.get(app).copied().unwrap_or(0);
        let stops = of(&|_, k| (k == ChangeKind::Delete).then_some(ActionKind::StopApplication));
        let starts = of(&|_, k| (k == ChangeKind::Create).then_some(ActionKind::StartApplication));
        let top = changes.iter().map(|(a, _)| level(a)).max().unwrap_or(0);
        let ordered = (0..=top).map(|l| {
            of(&|app, k| match k {
                _ if level(app) != l => None,
                ChangeKind::Create | ChangeKind::Scale => Some(ActionKind::ScaleApplication),
                ChangeKind::Restart => Some(ActionKind::RestartApplication),
                ChangeKind::Delete => None,
            })
        });
        let steps = [stops, starts]
            .into_iter()
            .chain(ordered)
            .filter(|s| !s.is_empty())
            .collect();
        DeploymentPlan {
            id,
            version,
            steps,
            current: 0,
            original,
        }
    }

    /// Does `app` wait for an earlier step (its scale or restart comes after the one in
    /// progress)? The controller leaves such an app as it is until its step comes.
    pub fn holds(&self, app: &str) -> bool {
        self.steps
            .iter()
            .enumerate()
            .skip(self.current + 1)
            .any(|(_, s)| {
                s.iter().any(|a| {
                    a.app == app
                        && matches!(
                            a.action,
                            ActionKind::ScaleApplication | ActionKind::RestartApplication
                        )
                })
            })
    }

    /// The apps the plan changes, sorted.
    pub fn affected_apps(&self) -> Vec<String> {
        let mut apps: Vec<String> = self.steps.iter().flatten().map(|a| a.app.clone()).collect();
        apps.sort();
        apps.dedup();
        apps
    }

    /// Does the plan change `app`?
    pub fn affects(&self, app: &str) -> bool {
        self.steps.iter().flatten().any(|a| a.app == app)
    }

    /// The actions of the step in progress (none once done).
    pub fn current_actions(&self) -> &[Action] {
        self.steps.get(self.current).map_or(&[], Vec::as_slice)
    }

    /// Is `app` being restarted (rolling replace) by the step in progress?
    pub fn restarting(&self, app: &str) -> bool {
        self.current_actions()
            .iter()
            .any(|a| a.app == app && a.action == ActionKind::RestartApplication)
    }

    /// The plan as events carry it (spec §1.6, §4.2): `id`, `steps`, `version`, and the
    /// pre-1.7 "heavy" `original` and `target` groups (the affected apps before, and as `now`
    /// has them), without which marathon-python 0.13.0 cannot read deployment events.
    pub fn to_event(&self, now: &BTreeMap<String, AppDefinition>) -> Value {
        let group = |apps: Vec<&AppDefinition>| {
            json!({
                "id": "/",
                "apps": apps,
                "groups": [],
                "dependencies": [],
                "version": self.version,
            })
        };
        let affected = self.affected_apps();
        let original = self.original.values().flatten().collect();
        let target = affected.iter().filter_map(|a| now.get(a)).collect();
        json!({
            "id": self.id,
            "version": self.version,
            "steps": self.steps.iter().map(|s| json!({ "actions": s })).collect::<Vec<_>>(),
            "original": group(original),
            "target": group(target),
        })
    }

    /// The step in progress as events carry it (`currentStep`).
    pub fn current_step_event(&self) -> Value {
        json!({ "actions": self.current_actions() })
    }

    /// The plan as `GET /v2/deployments` lists it (spec §3.5), without readiness results.
    pub fn to_marathon(&self) -> Value {
        self.to_marathon_with(&|_| json!([]))
    }

    /// The plan as `GET /v2/deployments` lists it (spec §3.5), each current action with
    /// `readiness(app)` as its `readinessCheckResults`. `currentStep` is 1-based.
    pub fn to_marathon_with(&self, readiness: &dyn Fn(&str) -> Value) -> Value {
        let steps: Vec<Value> = self.steps.iter().map(|s| json!({ "actions": s })).collect();
        let current: Vec<Value> = self
            .current_actions()
            .iter()
            .map(|a| {
                let results = match a.action {
                    ActionKind::StopApplication => json!([]),
                    _ => readiness(&a.app),
                };
                json!({"action": a.action, "app": a.app, "readinessCheckResults": results})
            })
            .collect();
        json!({
            "id": self.id,
            "version": self.version,
            "affectedApps": self.affected_apps(),
            "affectedPods": [],
            "steps": steps,
            "currentActions": current,
            "currentStep": (self.current + 1).min(self.steps.len()),
            "totalSteps": self.steps.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(changes: &[(&str, ChangeKind)]) -> DeploymentPlan {
        let changes: Vec<(String, ChangeKind)> =
            changes.iter().map(|(a, k)| (a.to_string(), *k)).collect();
        DeploymentPlan::new(
            "d".into(),
            "v".into(),
            &changes,
            BTreeMap::new(),
            &BTreeMap::new(),
        )
    }

    fn kinds(p: &DeploymentPlan) -> Vec<Vec<ActionKind>> {
        p.steps
            .iter()
            .map(|s| s.iter().map(|a| a.action).collect())
            .collect()
    }

    #[test]
    fn plans_have_marathons_steps() {
        use ActionKind::*;
        assert_eq!(
            kinds(&plan(&[("/a", ChangeKind::Create)])),
            [vec![StartApplication], vec![ScaleApplication]]
        );
        assert_eq!(
            kinds(&plan(&[("/a", ChangeKind::Scale)])),
            [vec![ScaleApplication]]
        );
        assert_eq!(
            kinds(&plan(&[("/a", ChangeKind::Restart)])),
            [vec![RestartApplication]]
        );
        assert_eq!(
            kinds(&plan(&[("/a", ChangeKind::Delete)])),
            [vec![StopApplication]]
        );
        let mixed = plan(&[
            ("/b", ChangeKind::Restart),
            ("/a", ChangeKind::Delete),
            ("/c", ChangeKind::Create),
        ]);
        assert_eq!(
            kinds(&mixed),
            [
                vec![StopApplication],
                vec![StartApplication],
                vec![RestartApplication, ScaleApplication]
            ]
        );
        assert_eq!(mixed.affected_apps(), ["/a", "/b", "/c"]);
        let shown = mixed.to_marathon();
        assert_eq!(shown["currentStep"], 1);
        assert_eq!(shown["totalSteps"], 3);
        assert_eq!(shown["currentActions"][0]["action"], "StopApplication");
        assert_eq!(
            shown["currentActions"][0]["readinessCheckResults"],
            json!([])
        );
    }

    #[test]
    fn dependencies_make_one_step_per_level_and_hold_the_later_apps() {
        use ActionKind::*;
        let changes: Vec<(String, ChangeKind)> = [
            ("/web", ChangeKind::Create),
            ("/db", ChangeKind::Create),
            ("/cache", ChangeKind::Restart),
        ]
        .into_iter()
        .map(|(a, k)| (a.to_string(), k))
        .collect();
        let levels: BTreeMap<String, usize> = [("/web".to_string(), 1), ("/db".to_string(), 0)]
            .into_iter()
            .collect();
        let mut p = DeploymentPlan::new("d".into(), "v".into(), &changes, BTreeMap::new(), &levels);
        assert_eq!(
            kinds(&p),
            [
                vec![StartApplication, StartApplication],
                vec![ScaleApplication, RestartApplication],
                vec![ScaleApplication]
            ]
        );
        assert_eq!(p.steps[2][0].app, "/web");
        assert!(p.holds("/web") && p.holds("/db") && !p.holds("/nope"));
        p.current = 1;
        assert!(p.holds("/web"), "/web waits for /db's step");
        assert!(!p.holds("/db") && !p.holds("/cache"));
        p.current = 2;
        assert!(!p.holds("/web"));
    }

    #[test]
    fn current_actions_carry_their_apps_readiness_results() {
        let p = plan(&[("/a", ChangeKind::Restart), ("/b", ChangeKind::Scale)]);
        let shown = p.to_marathon_with(&|app| json!([{ "taskId": format!("{app}.1") }]));
        assert_eq!(
            shown["currentActions"][0]["readinessCheckResults"],
            json!([{"taskId": "/a.1"}])
        );
        assert_eq!(
            shown["currentActions"][1]["readinessCheckResults"][0]["taskId"],
            "/b.1"
        );
        let stop = plan(&[("/a", ChangeKind::Delete)]);
        let shown = stop.to_marathon_with(&|_| json!([{ "taskId": "x" }]));
        assert_eq!(
            shown["currentActions"][0]["readinessCheckResults"],
            json!([]),
            "a stop has no new tasks"
        );
    }
}
