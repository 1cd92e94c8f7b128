//! Deployments in the UI: each deployment in progress with its steps (done, in progress, to come),
//! the apps it changes, and its two ways out: cancel with a rollback (`DELETE
//! /v2/deployments/{id}`) or stop where it is (`?force=true`). Shown under the services table
//! (all of them) and on an app's page (those that change the app).

use crate::services::deployments::plan::DeploymentPlan;
use crate::state::MasterState;
use maud::{html, Markup};

/// The deployments in progress, oldest first; only those changing `app` when given.
pub fn plans(st: &MasterState, app: Option<&str>) -> Vec<DeploymentPlan> {
    let mut plans: Vec<DeploymentPlan> = st
        .services
        .deployments
        .values()
        .filter(|p| app.is_none_or(|a| p.affects(a)))
        .cloned()
        .collect();
    plans.sort_by(|a, b| a.version.cmp(&b.version).then(a.id.cmp(&b.id)));
    plans
}

/// The deployments section; nothing at all when none is in progress.
pub fn deployments_markup(plans: &[DeploymentPlan]) -> Markup {
    html! {
        @if !plans.is_empty() {
            h2 { "Deployments" }
            table.grid #deployments {
                thead { tr { th { "Deployment" } th { "Apps" } th { "Progress" } th { "Steps" } th {} } }
                tbody {
                    @for p in plans {
                        tr data-deployment=(p.id) {
                            td.mono title=(p.id) { (short(&p.id)) br; small { (p.version) } }
                            td { @for a in p.affected_apps() {
                                a href=(format!("/ui/services{a}")) { (a) } " "
                            } }
                            td.progress { "step " ((p.current + 1).min(p.steps.len())) " of " (p.steps.len()) }
                            td { ol.steps { @for (i, step) in p.steps.iter().enumerate() {
                                li class=(step_class(i, p.current)) {
                                    @for (j, a) in step.iter().enumerate() {
                                        @if j > 0 { ", " }
                                        (format!("{:?}", a.action)) " " span.mono { (a.app) }
                                    }
                                }
                            } } }
                            td.actions {
                                button data-method="DELETE" data-url=(format!("/v2/deployments/{}", p.id))
                                  data-confirm="Cancel this deployment and roll its apps back?"
                                  data-done="Cancelled; rolling back" { "Roll back" }
                                " "
                                button.danger data-method="DELETE" data-url=(format!("/v2/deployments/{}?force=true", p.id))
                                  data-confirm="Stop this deployment where it is, without a rollback?"
                                  data-done="Stopped" { "Stop" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn step_class(i: usize, current: usize) -> &'static str {
    match i.cmp(&current) {
        std::cmp::Ordering::Less => "done",
        std::cmp::Ordering::Equal => "current",
        std::cmp::Ordering::Greater => "next",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::deployments::plan::ChangeKind;
    use std::collections::BTreeMap;

    #[test]
    fn steps_show_what_is_done_and_what_comes() {
        let mut p = DeploymentPlan::new(
            "0123456789abcdef".into(),
            "2026-12-02T00:00:00.000Z".into(),
            &[("/web".into(), ChangeKind::Create)],
            BTreeMap::new(),
            &BTreeMap::new(),
        );
        p.current = 1;
        let html = deployments_markup(&[p]).into_string();
        assert!(html.contains("step 2 of 2"), "{html}");
        assert!(html.contains(r#"class="done">StartApplication"#), "{html}");
        assert!(
            html.contains(r#"class="current">ScaleApplication"#),
            "{html}"
        );
        assert!(
            html.contains("/v2/deployments/0123456789abcdef?force=true"),
            "{html}"
        );
        assert!(html.contains(">01234567<"), "{html}");
        assert_eq!(deployments_markup(&[]).into_string(), "");
    }
}
