//! What an app needs of an agent besides resources: a back end that can run its container (the
//! Docker containerizer, or images in the native one) and the container networks it joins. An app
//! whose needs no agent meets is never launched; it waits, and the queue says what is missing.

use super::app_definition::{AppDefinition, ContainerKind, NetworkMode};
use gantry_proto::AgentInfo;
use std::fmt;

/// The CNI network Marathon's `container/bridge` mode joins on the native containerizer.
pub const MESOS_BRIDGE: &str = "mesos-bridge";

/// One thing an agent must offer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Need {
    /// `container.type: DOCKER`: the Docker containerizer.
    DockerContainerizer,
    /// `container.type: MESOS` with a `docker.image`: the native containerizer running images.
    DockerImages,
    /// A container network, by name (`networks: [{"mode": "container", "name": ...}]`, or the
    /// `mesos-bridge` of `container/bridge` outside Docker).
    Network(String),
}

impl Need {
    /// True when `agent` offers it.
    pub fn met_by(&self, agent: &AgentInfo) -> bool {
        match self {
            Need::DockerContainerizer => agent.containerizers.iter().any(|c| c == "docker"),
            Need::DockerImages => agent.image_providers.iter().any(|p| p == "docker"),
            Need::Network(n) => agent.networks.iter().any(|x| x == n),
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::DockerContainerizer => {
                f.write_str("the Docker containerizer (container.type DOCKER)")
            }
            Need::DockerImages => f.write_str(
                "Docker images in the native containerizer (container.type MESOS with docker.image)",
            ),
            Need::Network(n) => write!(f, "the container network '{n}'"),
        }
    }
}

/// Everything `app` needs of its agent, sorted, without repeats.
pub fn needs_of(app: &AppDefinition) -> Vec<Need> {
    let mut out = Vec::new();
    let kind = app.container.as_ref().map(|c| c.kind);
    match (kind, app.container.as_ref().and_then(|c| c.image())) {
        (Some(ContainerKind::Docker), _) => out.push(Need::DockerContainerizer),
        (Some(ContainerKind::Mesos), Some(_)) => out.push(Need::DockerImages),
        _ => {}
    }
    for n in &app.networks {
        match (n.mode, &n.name) {
            (NetworkMode::Container, Some(name)) => out.push(Need::Network(name.clone())),
            // Docker's own bridge comes with the Docker containerizer.
            (NetworkMode::ContainerBridge, _) if kind != Some(ContainerKind::Docker) => {
                out.push(Need::Network(MESOS_BRIDGE.to_string()))
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// True when `agent` meets every one of `needs`.
pub fn all_met(needs: &[Need], agent: &AgentInfo) -> bool {
    needs.iter().all(|n| n.met_by(agent))
}

/// Why an app with `needs` waits when none of `agents` meets them all: each need no agent meets,
/// and what the agents do offer.
pub fn unmet_reason<'a>(needs: &[Need], agents: impl Iterator<Item = &'a AgentInfo>) -> String {
    let agents: Vec<&AgentInfo> = agents.collect();
    let unmet: Vec<String> = needs
        .iter()
        .filter(|n| !agents.iter().any(|a| n.met_by(a)))
        .map(Need::to_string)
        .collect();
    let mut offered: Vec<&str> = agents
        .iter()
        .flat_map(|a| a.containerizers.iter().map(String::as_str))
        .collect();
    offered.sort_unstable();
    offered.dedup();
    let what = if unmet.is_empty() {
        // Each need is met somewhere, but never all on one agent.
        format!(
            "no agent offers all of: {}",
            needs
                .iter()
                .map(Need::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!("no agent offers {}", unmet.join(", "))
    };
    match (agents.is_empty(), offered.is_empty()) {
        (true, _) => format!("{what}: no agent is connected"),
        (false, true) => what,
        (false, false) => format!("{what}; agents here run: {}", offered.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::app_definition::{Container, DockerContainer, Network};

    fn app(kind: Option<ContainerKind>, image: Option<&str>, nets: Vec<Network>) -> AppDefinition {
        let mut a = AppDefinition::with_defaults("/a");
        a.container = kind.map(|kind| Container {
            kind,
            docker: image.map(|i| DockerContainer {
                image: i.into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        if !nets.is_empty() {
            a.networks = nets;
        }
        a
    }

    fn net(mode: NetworkMode, name: Option<&str>) -> Network {
        Network {
            mode,
            name: name.map(String::from),
            ..Default::default()
        }
    }

    fn agent(containerizers: &[&str], networks: &[&str]) -> AgentInfo {
        AgentInfo {
            containerizers: containerizers.iter().map(|s| s.to_string()).collect(),
            networks: networks.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn container_kinds_and_networks_become_needs() {
        assert!(needs_of(&app(None, None, vec![])).is_empty());
        assert!(needs_of(&app(Some(ContainerKind::Mesos), None, vec![])).is_empty());
        assert_eq!(
            needs_of(&app(Some(ContainerKind::Docker), Some("nginx"), vec![])),
            vec![Need::DockerContainerizer]
        );
        assert_eq!(
            needs_of(&app(Some(ContainerKind::Mesos), Some("nginx"), vec![])),
            vec![Need::DockerImages]
        );
        let calico = net(NetworkMode::Container, Some("calico"));
        assert_eq!(
            needs_of(&app(Some(ContainerKind::Docker), Some("x"), vec![calico])),
            vec![Need::DockerContainerizer, Need::Network("calico".into())]
        );
        let bridge = net(NetworkMode::ContainerBridge, None);
        assert!(
            !needs_of(&app(
                Some(ContainerKind::Docker),
                Some("x"),
                vec![bridge.clone()]
            ))
            .contains(&Need::Network(MESOS_BRIDGE.into())),
            "Docker brings its own bridge"
        );
        assert_eq!(
            needs_of(&app(None, None, vec![bridge])),
            vec![Need::Network(MESOS_BRIDGE.into())]
        );
    }

    #[test]
    fn the_reason_names_what_is_missing_and_what_is_offered() {
        let needs = vec![Need::DockerContainerizer, Need::Network("calico".into())];
        let a = agent(&["native"], &["calico"]);
        assert!(!all_met(&needs, &a));
        let r = unmet_reason(&needs, [&a].into_iter());
        assert_eq!(
            r,
            "no agent offers the Docker containerizer (container.type DOCKER); agents here run: native"
        );
        let d = agent(&["docker"], &[]);
        let r = unmet_reason(&needs, [&a, &d].into_iter());
        assert!(r.starts_with("no agent offers all of:"), "{r}");
        assert!(all_met(&needs, &agent(&["native", "docker"], &["calico"])));
        assert!(unmet_reason(&needs, std::iter::empty()).ends_with("no agent is connected"));
    }
}
