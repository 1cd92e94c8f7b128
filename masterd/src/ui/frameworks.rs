//! The frameworks page (`/ui/frameworks`): who uses the cluster and how much of it. Each
//! external framework (`/api/v1/scheduler`) is listed with its roles, whether it is subscribed,
//! its tasks, what it holds in outstanding offers, and its dominant share (DRF's measure: the
//! largest of its shares of the cluster's cpus, memory and GPUs). The built-in Marathon and
//! Chronos controllers are listed beside them. A table per role sums the shares.

use super::layout::{cpus, mib, respond, Page, Section};
use crate::api::marathon::render::iso;
use crate::cluster::Core;
use crate::state::MasterState;
use crate::store::records::TaskOwner;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gantry_proto::Resources;
use maud::{html, Markup};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One user of the cluster, copied out of the state.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameworkRow {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// Subscribed now (the built-in ones always are).
    pub active: bool,
    pub registered_at: Option<f64>,
    pub tasks: usize,
    pub used: Resources,
    pub offered: Resources,
    /// The largest of its shares of cpus, memory and GPUs, 0 to 1.
    pub dominant_share: f64,
}

/// The largest share `used` is of `total`, over cpus, memory and GPUs.
fn dominant_share(used: &Resources, total: &Resources) -> f64 {
    let share = |u: f64, t: f64| if t > 0.0 { u / t } else { 0.0 };
    share(used.cpus, total.cpus)
        .max(share(used.mem, total.mem))
        .max(share(f64::from(used.gpus), f64::from(total.gpus)))
}

/// Every framework's row, the built-in ones first.
pub fn rows(st: &MasterState) -> Vec<FrameworkRow> {
    let total = st
        .cluster
        .agents
        .values()
        .filter(|a| a.accepts_tasks())
        .fold(Resources::default(), |acc, a| {
            acc.plus(&a.record.info.resources)
        });
    let mut used: BTreeMap<String, (usize, Resources)> = BTreeMap::new();
    for t in st.cluster.tasks().values() {
        let key = match &t.owner {
            TaskOwner::App { .. } => "marathon".to_owned(),
            TaskOwner::JobRun { .. } => "chronos".to_owned(),
            TaskOwner::Framework { id } => id.clone(),
        };
        let e = used.entry(key).or_default();
        e.0 += 1;
        e.1 = e.1.plus(&t.info.resources);
    }
    let mut offered: BTreeMap<&str, Resources> = BTreeMap::new();
    for o in st.frameworks.offers.values() {
        let e = offered.entry(o.framework.as_str()).or_default();
        *e = e.plus(&o.resources);
    }
    let row = |id: &str, name: &str, roles: Vec<String>, active: bool, at: Option<f64>| {
        let (tasks, used) = used.get(id).cloned().unwrap_or_default();
        FrameworkRow {
            id: id.to_owned(),
            name: name.to_owned(),
            roles,
            active,
            registered_at: at,
            tasks,
            dominant_share: dominant_share(&used, &total),
            offered: offered.get(id).cloned().unwrap_or_default(),
            used,
        }
    };
    let mut out = vec![
        row(
            "marathon",
            "Marathon (built in)",
            vec!["*".into()],
            true,
            None,
        ),
        row(
            "chronos",
            "Chronos (built in)",
            vec!["*".into()],
            true,
            None,
        ),
    ];
    for (id, fw) in &st.frameworks.frameworks {
        out.push(row(
            id,
            fw.record.name(),
            fw.record.roles(),
            fw.conn.is_some(),
            Some(fw.record.registered_at),
        ));
    }
    out
}

/// Each role's summed dominant share and task count (a framework in several roles counts in
/// each).
pub fn roles(rows: &[FrameworkRow]) -> BTreeMap<String, (usize, f64)> {
    let mut out: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for r in rows {
        for role in &r.roles {
            let e = out.entry(role.clone()).or_default();
            e.0 += r.tasks;
            e.1 += r.dominant_share;
        }
    }
    out
}

fn pct(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

fn markup(rows: &[FrameworkRow]) -> Markup {
    let roles = roles(rows);
    html! {
        h1 { "Frameworks" }
        p.meta { "Shares are of the connected agents' cpus, memory and GPUs; the dominant share is the largest (DRF)." }
        table.grid #frameworks {
            thead { tr {
                th { "Framework" } th { "Id" } th { "Roles" } th { "State" } th { "Tasks" }
                th { "CPUs" } th { "Memory" } th { "GPUs" } th { "Offered" } th { "Dominant share" }
                th { "Registered" }
            } }
            tbody {
                @for r in rows {
                    tr data-framework=(r.id) {
                        td { (r.name) }
                        td.mono { (r.id) }
                        td { (r.roles.join(", ")) }
                        td { span class=(if r.active { "pill running" } else { "pill failed" }) {
                            (if r.active { "subscribed" } else { "disconnected" }) } }
                        td { (r.tasks) }
                        td { (cpus(r.used.cpus)) }
                        td { (mib(r.used.mem)) }
                        td { (r.used.gpus) }
                        td { (cpus(r.offered.cpus)) " cpus, " (mib(r.offered.mem)) }
                        td.share { (pct(r.dominant_share)) }
                        td { (r.registered_at.map(iso).unwrap_or_default()) }
                    }
                }
            }
        }
        h2 { "Roles" }
        table.grid #roles {
            thead { tr { th { "Role" } th { "Tasks" } th { "Dominant shares, summed" } } }
            tbody {
                @for (role, (tasks, share)) in &roles {
                    tr { td { (role) } td { (tasks) } td { (pct(*share)) } }
                }
            }
        }
    }
}

/// `GET /ui/frameworks`.
pub async fn page(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    let rows = {
        let st = core.state().await;
        rows(&st)
    };
    let page = Page {
        title: "Frameworks".into(),
        section: Section::Frameworks,
        top: html! {},
        live: markup(&rows),
        fixed: html! {},
    };
    respond(&headers, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, roles: &[&str], tasks: usize, used: Resources) -> FrameworkRow {
        FrameworkRow {
            id: id.into(),
            name: id.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            active: true,
            registered_at: None,
            tasks,
            used,
            offered: Resources::default(),
            dominant_share: dominant_share(
                &Resources::default(),
                &Resources::scalars(1.0, 1.0, 0.0),
            ),
        }
    }

    #[test]
    fn the_dominant_share_is_the_largest_and_roles_sum_them() {
        let total = Resources {
            gpus: 8,
            ..Resources::scalars(64.0, 256_000.0, 0.0)
        };
        let gpu_heavy = Resources {
            gpus: 4,
            ..Resources::scalars(8.0, 32_000.0, 0.0)
        };
        assert!(
            (dominant_share(&gpu_heavy, &total) - 0.5).abs() < 1e-9,
            "GPUs dominate"
        );
        assert!((dominant_share(&Resources::scalars(16.0, 0.0, 0.0), &total) - 0.25).abs() < 1e-9);
        assert_eq!(dominant_share(&gpu_heavy, &Resources::default()), 0.0);
        let mut a = row("a", &["eng", "*"], 2, gpu_heavy.clone());
        a.dominant_share = 0.5;
        let mut b = row("b", &["eng"], 1, Resources::default());
        b.dominant_share = 0.25;
        let r = roles(&[a.clone(), b.clone()]);
        assert_eq!(r["eng"].0, 3);
        assert!((r["eng"].1 - 0.75).abs() < 1e-9);
        assert_eq!(r["*"].0, 2);
        let html = markup(&[a, b]).into_string();
        assert!(html.contains("50.0 %") && html.contains("75.0 %"), "{html}");
        assert!(html.contains(r#"data-framework="a""#), "{html}");
    }
}
