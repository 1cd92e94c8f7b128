//! Why an app's waiting instances are not placed, agent by agent, as Marathon's queue shows it
//! (`processedOffersSummary`, spec §3.7). Gantry has no offers for its own controllers. Each
//! connected agent stands for one: the agent is taken through Marathon's checks in Marathon's
//! order (role, constraints, then cpus, memory, disk, GPUs, ports), and stops at the first it
//! fails. Each reason counts the agents that reached its check (`processed`) and those it
//! turned away (`declined`). This is a pure function of the current state, so the counts are
//! those of "now", not an accumulation over past offers.

use super::app_definition::AppDefinition;
use super::controller::{constraint_agents, instances_per_agent};
use super::launch::instance_resources;
use super::placement_constraints::CompiledConstraints;
use super::requirements::{all_met, needs_of};
use crate::cluster::ClusterState;
use serde::Serialize;

/// One of Marathon's `NoOfferMatchReason`s, with its funnel counts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReasonCount {
    pub reason: &'static str,
    pub declined: usize,
    pub processed: usize,
}

/// The summary of one app against the connected agents.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferSummary {
    /// Agents considered (connected and taking tasks).
    pub processed: usize,
    /// Agents that could not take one more instance.
    pub unused: usize,
    /// Every reason, in Marathon's order.
    pub reasons: Vec<ReasonCount>,
    /// Each agent turned away: its id, hostname and the reason.
    pub declined: Vec<(String, String, &'static str)>,
}

const REASONS: [&str; 8] = [
    "UnfulfilledRole",
    "UnfulfilledConstraint",
    "InsufficientCpus",
    "InsufficientMemory",
    "InsufficientDisk",
    "InsufficientGpus",
    "InsufficientPorts",
    "DeclinedScarceResources",
];

/// Where `app`'s next instance could go: each connected agent through the checks.
pub fn summarize(st: &ClusterState, app: &AppDefinition) -> OfferSummary {
    let mut reasons: Vec<ReasonCount> = REASONS
        .iter()
        .map(|r| ReasonCount {
            reason: r,
            declined: 0,
            processed: 0,
        })
        .collect();
    let needs = needs_of(app);
    let constraints = CompiledConstraints::new(&app.constraint_list());
    let allowed = if constraints.is_empty() {
        None
    } else {
        let agents = constraint_agents(st, app);
        Some(
            constraints
                .agents_for_one_more(&agents, &instances_per_agent(st, &app.id))
                .unwrap_or_default(),
        )
    };
    let want = instance_resources(app);
    let ports = app.host_port_count() as u64;
    // Gantry's agents offer everything to the default role.
    let role_ok = app.accepted_resource_roles.is_empty()
        || app.accepted_resource_roles.iter().any(|r| r == "*");
    let mut used = st.used_by_agent();
    // An external framework's outstanding offers are not free either.
    for (agent, r) in st.held.values() {
        let u = used.entry(agent.clone()).or_default();
        *u = u.plus(r);
    }
    let mut processed = 0;
    let mut unused = 0;
    let mut declined = Vec::new();
    for a in st.agents.values().filter(|a| a.accepts_tasks()) {
        processed += 1;
        let free = a
            .record
            .info
            .resources
            .minus(&used.get(&a.record.id).cloned().unwrap_or_default());
        let checks = [
            role_ok,
            all_met(&needs, &a.record.info)
                && allowed.as_ref().is_none_or(|ok| ok.contains(&a.record.id)),
            want.cpus <= free.cpus + 1e-9,
            want.mem <= free.mem + 1e-9,
            want.disk <= free.disk + 1e-9,
            want.gpus <= free.gpus,
            ports <= free.ports.len(),
            true,
        ];
        for (r, ok) in reasons.iter_mut().zip(checks) {
            r.processed += 1;
            if !ok {
                r.declined += 1;
                unused += 1;
                declined.push((
                    a.record.id.0.clone(),
                    a.record.info.hostname.clone(),
                    r.reason,
                ));
                break;
            }
        }
    }
    OfferSummary {
        processed,
        unused,
        reasons,
        declined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{AgentEntry, Conn};
    use crate::store::records::{AgentLifecycle, AgentRecord};
    use gantry_proto::{AgentId, AgentInfo, PortRanges, Resources};

    fn agent(st: &mut ClusterState, id: &str, cpus: f64, attrs: &[(&str, &str)]) {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let record = AgentRecord {
            id: AgentId(id.into()),
            info: AgentInfo {
                hostname: id.into(),
                resources: Resources {
                    ports: PortRanges::new([(31000, 31001)]),
                    ..Resources::scalars(cpus, 1024.0, 100.0)
                },
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
            lifecycle: AgentLifecycle::Active,
            registered_at: 0.0,
            reregistered_at: None,
            unreachable_since: None,
        };
        st.agents.insert(
            AgentId(id.into()),
            AgentEntry::new(record, Some(Conn { id: 1, tx }), false),
        );
    }

    fn app(json: serde_json::Value) -> AppDefinition {
        AppDefinition::from_json(&json, "/").expect("valid")
    }

    #[test]
    fn each_agent_stops_at_the_first_check_it_fails_in_marathons_order() {
        let mut st = ClusterState::default();
        agent(&mut st, "a", 0.5, &[("rack", "r1")]);
        agent(&mut st, "b", 4.0, &[("rack", "r1")]);
        agent(&mut st, "c", 4.0, &[("rack", "r2")]);
        let want = app(
            serde_json::json!({"id": "/x", "cmd": "x", "cpus": 1, "mem": 64,
            "constraints": [["rack", "LIKE", "r1"]], "portDefinitions": [{"port": 0}, {"port": 0}, {"port": 0}]}),
        );
        let s = summarize(&st, &want);
        assert_eq!((s.processed, s.unused), (3, 3));
        let by: Vec<(&str, usize, usize)> = s
            .reasons
            .iter()
            .map(|r| (r.reason, r.processed, r.declined))
            .collect();
        assert_eq!(by[0], ("UnfulfilledRole", 3, 0));
        assert_eq!(by[1], ("UnfulfilledConstraint", 3, 1), "c is on r2");
        assert_eq!(by[2], ("InsufficientCpus", 2, 1), "a has half a CPU");
        assert_eq!(
            by[6],
            ("InsufficientPorts", 1, 1),
            "b has 2 ports, 3 wanted"
        );
        let roles = app(
            serde_json::json!({"id": "/y", "cmd": "x", "cpus": 0.1, "mem": 8,
            "acceptedResourceRoles": ["slave_public"]}),
        );
        assert_eq!(summarize(&st, &roles).reasons[0].declined, 3);
        let fits = app(serde_json::json!({"id": "/z", "cmd": "x", "cpus": 0.1, "mem": 8}));
        assert_eq!(summarize(&st, &fits).unused, 0);
    }
}
