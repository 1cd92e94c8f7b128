//! The Docker part of an app's task (`container.type: DOCKER`): image and options, the network
//! and port mappings, and the volumes, as the agent's Docker containerizer takes them.

use super::app_definition::{AppDefinition, ContainerKind, NetworkMode};
use gantry_proto::{
    DockerNetwork, DockerParameter, DockerPortMapping, DockerSpec, DockerVolume, NamedVolume,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// The image `app`'s tasks run in with the native containerizer (`container.type: MESOS` with
/// `docker.image`); `None` otherwise.
pub fn native_image(app: &AppDefinition) -> Option<String> {
    let c = app.container.as_ref()?;
    if c.kind != ContainerKind::Mesos {
        return None;
    }
    c.image().filter(|i| !i.is_empty()).map(String::from)
}

/// The Docker spec of `app`'s tasks; `None` unless it runs in the Docker containerizer.
pub fn docker_spec(app: &AppDefinition) -> Option<DockerSpec> {
    let c = app.container.as_ref()?;
    if c.kind != ContainerKind::Docker {
        return None;
    }
    let d = c.docker.as_ref()?;
    let network = match app.networks.iter().find(|n| n.mode != NetworkMode::Host) {
        None => DockerNetwork::Host,
        Some(n) if n.mode == NetworkMode::ContainerBridge => DockerNetwork::Bridge,
        Some(n) => DockerNetwork::User {
            name: n.name.clone().unwrap_or_default(),
        },
    };
    Some(DockerSpec {
        image: d.image.clone(),
        force_pull_image: d.force_pull_image,
        privileged: d.privileged,
        parameters: d
            .parameters
            .iter()
            .map(|p| DockerParameter {
                key: p.key.clone(),
                value: p.value.clone(),
            })
            .collect(),
        network,
        port_mappings: app
            .port_mappings()
            .iter()
            .map(|m| DockerPortMapping {
                container_port: m.container_port,
                host_port: m.host_port.is_some(),
                protocol: m.protocol.clone(),
                name: m.name.clone(),
            })
            .collect(),
        volumes: c.volumes.iter().filter_map(volume).collect(),
    })
}

/// One of Marathon's volume shapes: `{containerPath, hostPath, mode}`, an external volume
/// `{containerPath, external: {name, provider, options: {"dvdi/driver": ...}}, mode}` (a named
/// Docker volume of that driver), or a local persistent volume (a directory in the sandbox).
fn volume(v: &Value) -> Option<DockerVolume> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let container_path = s("containerPath")?;
    let mode = s("mode").unwrap_or_else(|| "RW".into());
    if let Some(ext) = v.get("external") {
        let name = ext.get("name").and_then(Value::as_str)?.to_string();
        let (driver, options) = external_options(ext.get("options"));
        return Some(DockerVolume {
            container_path,
            host_path: None,
            mode,
            named: Some(NamedVolume {
                name,
                driver,
                options,
            }),
        });
    }
    if v.get("persistent").is_some() {
        // Mesos keeps a persistent volume in the sandbox at containerPath (relative).
        let rel = container_path.trim_start_matches('/').to_string();
        return Some(DockerVolume {
            container_path: format!("/mnt/mesos/sandbox/{rel}"),
            host_path: Some(rel),
            mode,
            named: None,
        });
    }
    Some(DockerVolume {
        container_path,
        host_path: s("hostPath"),
        mode,
        named: None,
    })
}

/// An external volume's options: the `<provider>/driver` entry names the Docker volume driver;
/// the others (prefix dropped) are the driver's options.
pub fn external_options(o: Option<&Value>) -> (Option<String>, BTreeMap<String, String>) {
    let mut driver = None;
    let mut options = BTreeMap::new();
    for (k, v) in o.and_then(Value::as_object).into_iter().flatten() {
        let Some(v) = v.as_str() else { continue };
        let short = k.rsplit_once('/').map_or(k.as_str(), |(_, s)| s);
        if short == "driver" {
            driver = Some(v.to_string());
        } else {
            options.insert(short.to_string(), v.to_string());
        }
    }
    (driver, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn external_volumes_become_named_volumes_of_their_driver() {
        let v = volume(&json!({
            "external": {"name": "mysql-rexray-volume", "provider": "dvti",
                         "options": {"dvti/driver": "rexray", "dvdi/size": "5"}},
            "containerPath": "/var/lib/mysql", "mode": "RW"
        }))
        .expect("a volume");
        let named = v.named.expect("named");
        assert_eq!(named.name, "mysql-rexray-volume");
        assert_eq!(named.driver.as_deref(), Some("rexray"));
        assert_eq!(named.options.get("size").map(String::as_str), Some("5"));
        assert_eq!(v.container_path, "/var/lib/mysql");
    }

    #[test]
    fn host_volumes_keep_path_and_mode() {
        let v = volume(&json!({"containerPath": "/var/log/", "hostPath": "/logs/", "mode": "RO"}))
            .expect("a volume");
        assert_eq!(v.host_path.as_deref(), Some("/logs/"));
        assert!(v.read_only());
    }
}
