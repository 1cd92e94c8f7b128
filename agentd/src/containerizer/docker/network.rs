//! A Docker task's network: the network mode (host, bridge, a user network, none) and its port
//! mappings, each mapping with a host port taking the next of the task's assigned `ports`.

use bollard::models::{PortBinding, PortMap};
use gantry_proto::{DockerNetwork, DockerSpec};

/// The network part of a container's create request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkPlan {
    /// `HostConfig.NetworkMode`.
    pub mode: String,
    /// `ExposedPorts` (`80/tcp`).
    pub exposed: Vec<String>,
    /// `HostConfig.PortBindings`.
    pub bindings: PortMap,
}

/// Plans the network of a task with `docker`'s settings and the host `ports` the master gave it.
pub fn plan(docker: &DockerSpec, ports: &[u16]) -> Result<NetworkPlan, String> {
    let mode = match &docker.network {
        DockerNetwork::Host => "host".to_string(),
        DockerNetwork::Bridge => "bridge".to_string(),
        DockerNetwork::None => "none".to_string(),
        DockerNetwork::User { name } if name.is_empty() => {
            return Err("a USER network needs a name".into())
        }
        DockerNetwork::User { name } => name.clone(),
    };
    let mut out = NetworkPlan {
        mode,
        ..NetworkPlan::default()
    };
    if matches!(docker.network, DockerNetwork::Host | DockerNetwork::None) {
        return Ok(out);
    }
    let wanted = docker.port_mappings.iter().filter(|m| m.host_port).count();
    if wanted > ports.len() {
        return Err(format!(
            "the task has {} host port(s) for {wanted} port mapping(s) with a hostPort",
            ports.len()
        ));
    }
    let mut next = ports.iter();
    for m in &docker.port_mappings {
        let host = if m.host_port { next.next() } else { None };
        let container_port = match (m.container_port, host) {
            (0, Some(h)) => u32::from(*h),
            (0, None) => continue,
            (p, _) if p > 65535 => return Err(format!("containerPort {p} is not a port")),
            (p, _) => p,
        };
        for proto in protocols(&m.protocol)? {
            let key = format!("{container_port}/{proto}");
            if !out.exposed.contains(&key) {
                out.exposed.push(key.clone());
            }
            if let Some(h) = host {
                out.bindings
                    .entry(key)
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_with(Vec::new)
                    .push(PortBinding {
                        host_ip: Some("0.0.0.0".into()),
                        host_port: Some(h.to_string()),
                    });
            }
        }
    }
    Ok(out)
}

/// `tcp`, `udp`, `udp,tcp` (Marathon's forms); empty is tcp.
fn protocols(p: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for part in p.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match part.to_ascii_lowercase().as_str() {
            "tcp" => out.push("tcp"),
            "udp" => out.push("udp"),
            other => return Err(format!("protocol '{other}' is not tcp or udp")),
        }
    }
    if out.is_empty() {
        out.push("tcp");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_proto::DockerPortMapping;

    fn mapping(container_port: u32, host_port: bool, protocol: &str) -> DockerPortMapping {
        DockerPortMapping {
            container_port,
            host_port,
            protocol: protocol.into(),
            name: None,
        }
    }

    #[test]
    fn bridge_maps_each_host_port_in_order() {
        let d = DockerSpec {
            network: DockerNetwork::Bridge,
            port_mappings: vec![
                mapping(80, true, "tcp"),
                mapping(9000, false, "tcp"),
                mapping(0, true, "udp,tcp"),
            ],
            ..DockerSpec::default()
        };
        let p = plan(&d, &[31001, 31002]).expect("a plan");
        assert_eq!(p.mode, "bridge");
        assert_eq!(p.exposed, ["80/tcp", "9000/tcp", "31002/udp", "31002/tcp"]);
        let host = |k: &str| p.bindings[k].as_ref().expect("bound")[0].host_port.clone();
        assert_eq!(host("80/tcp").as_deref(), Some("31001"));
        assert_eq!(host("31002/udp").as_deref(), Some("31002"));
        assert!(!p.bindings.contains_key("9000/tcp"));
    }

    #[test]
    fn too_few_ports_or_bad_protocols_are_refused() {
        let mut d = DockerSpec {
            network: DockerNetwork::Bridge,
            port_mappings: vec![mapping(80, true, "tcp")],
            ..DockerSpec::default()
        };
        assert!(plan(&d, &[]).unwrap_err().contains("0 host port"));
        d.port_mappings[0].protocol = "sctp".into();
        assert!(plan(&d, &[31000]).unwrap_err().contains("sctp"));
    }

    #[test]
    fn host_and_user_networks() {
        let host = plan(&DockerSpec::default(), &[31000]).expect("host");
        assert_eq!(host.mode, "host");
        assert!(host.bindings.is_empty());
        let user = DockerSpec {
            network: DockerNetwork::User {
                name: "calico".into(),
            },
            ..DockerSpec::default()
        };
        assert_eq!(plan(&user, &[]).expect("user").mode, "calico");
    }
}
