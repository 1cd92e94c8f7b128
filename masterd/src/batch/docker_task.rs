//! The Docker part of a job run's task (Chronos's `container: {type: DOCKER, image, network,
//! volumes, parameters, forcePullImage}`), as the agent's Docker containerizer takes it.

use super::job::{Container, ContainerNetwork, ContainerType, JobDefinition};
use gantry_proto::{DockerNetwork, DockerParameter, DockerSpec, DockerVolume, NamedVolume};

/// The image a job's runs take in the native containerizer (a container that is not DOCKER, as
/// Chronos's `container.type: MESOS`); `None` otherwise.
pub fn native_image(def: &JobDefinition) -> Option<String> {
    let c: &Container = def.container.as_ref()?;
    (c.kind != ContainerType::Docker && !c.image.is_empty()).then(|| c.image.clone())
}

/// The Docker spec of `def`'s runs; `None` unless the job runs in the Docker containerizer.
pub fn docker_spec(def: &JobDefinition) -> Option<DockerSpec> {
    let c: &Container = def.container.as_ref()?;
    if c.kind != ContainerType::Docker {
        return None;
    }
    let network = match c.network {
        ContainerNetwork::Host => DockerNetwork::Host,
        ContainerNetwork::Bridge => DockerNetwork::Bridge,
        ContainerNetwork::User => DockerNetwork::User {
            name: c.network_name.clone().unwrap_or_default(),
        },
    };
    Some(DockerSpec {
        image: c.image.clone(),
        force_pull_image: c.force_pull_image,
        privileged: false,
        parameters: c
            .parameters
            .iter()
            .map(|p| DockerParameter {
                key: p.key.clone(),
                value: p.value.clone(),
            })
            .collect(),
        network,
        port_mappings: Vec::new(),
        volumes: c
            .volumes
            .iter()
            .map(|v| DockerVolume {
                container_path: v.container_path.clone(),
                host_path: v.host_path.clone(),
                mode: v.mode.map_or("RW", |m| m.as_str()).to_string(),
                named: v.external.as_ref().map(|e| {
                    let mut driver = None;
                    let mut options = std::collections::BTreeMap::new();
                    for kv in &e.options {
                        let short = kv.key.rsplit_once('/').map_or(kv.key.as_str(), |(_, s)| s);
                        if short == "driver" {
                            driver = Some(kv.value.clone());
                        } else {
                            options.insert(short.to_string(), kv.value.clone());
                        }
                    }
                    NamedVolume {
                        name: e.name.clone(),
                        driver,
                        options,
                    }
                }),
            })
            .collect(),
    })
}
