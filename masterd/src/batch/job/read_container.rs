//! Reading a job's `container`, `fetch` and `constraints` (spec §2.1): Chronos's shapes and
//! defaults, with unknown enum values refused instead of failing later with a 500.

use serde_json::{Map, Value};

use super::model::{
    ConstraintOperator, Container, ContainerNetwork, ContainerType, ExternalVolume, Fetch,
    JobConstraint, JobError, NetworkInfo, PortMapping, Volume, VolumeMode,
};
use super::values::{
    array, boolean, clean_string, get, key_values, object, opt_string, strings, unsigned32,
};

/// `container`; `None` when it has no `image` (Chronos ignores such a container entirely).
pub(super) fn read_container(v: &Value) -> Result<Option<Container>, JobError> {
    let o = object(v, "container")?;
    let Some(image) = opt_string(o, "image")?.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let f = |k: &str| format!("container.{k}");
    let kind = match get(o, "type") {
        None => ContainerType::Docker,
        Some(t) => match clean_string(t, &f("type"))?.to_ascii_uppercase().as_str() {
            "DOCKER" => ContainerType::Docker,
            "MESOS" => ContainerType::Mesos,
            _ => return Err(JobError::new(f("type"), "must be DOCKER or MESOS")),
        },
    };
    let network = match get(o, "network") {
        None => ContainerNetwork::Host,
        Some(n) => match clean_string(n, &f("network"))?
            .to_ascii_uppercase()
            .as_str()
        {
            "HOST" => ContainerNetwork::Host,
            "BRIDGE" => ContainerNetwork::Bridge,
            "USER" => ContainerNetwork::User,
            _ => return Err(JobError::new(f("network"), "must be HOST, BRIDGE or USER")),
        },
    };
    let network_name = get(o, "networkName")
        .map(|v| clean_string(v, &f("networkName")))
        .transpose()?;
    let mut network_infos = Vec::new();
    if let Some(list) = get(o, "networkInfos") {
        for (i, item) in array(list, &f("networkInfos"))?.iter().enumerate() {
            network_infos.push(network_info(item, &format!("container.networkInfos[{i}]"))?);
        }
    }
    let mut volumes = Vec::new();
    if let Some(list) = get(o, "volumes") {
        for (i, item) in array(list, &f("volumes"))?.iter().enumerate() {
            volumes.push(volume(item, &format!("container.volumes[{i}]"))?);
        }
    }
    let force_pull_image = get(o, "forcePullImage")
        .map(|v| boolean(v, &f("forcePullImage")))
        .transpose()?
        .unwrap_or(false);
    let parameters = match get(o, "parameters") {
        Some(p) => key_values(p, &f("parameters"))?,
        None => Vec::new(),
    };
    Ok(Some(Container {
        kind,
        image,
        network,
        network_name,
        network_infos,
        volumes,
        force_pull_image,
        parameters,
    }))
}

fn network_info(v: &Value, path: &str) -> Result<NetworkInfo, JobError> {
    let o = object(v, path)?;
    let f = |k: &str| format!("{path}.{k}");
    let name = get(o, "name")
        .map(|v| clean_string(v, &f("name")))
        .transpose()?;
    let protocol = match get(o, "protocol") {
        None => None,
        Some(p) => {
            let p = clean_string(p, &f("protocol"))?;
            match p.to_ascii_lowercase().as_str() {
                "ipv4" => Some("IPv4".to_string()),
                "ipv6" => Some("IPv6".to_string()),
                _ => return Err(JobError::new(f("protocol"), "must be IPv4 or IPv6")),
            }
        }
    };
    let labels = match get(o, "labels") {
        Some(l) => key_values(l, &f("labels"))?,
        None => Vec::new(),
    };
    let mut port_mappings = Vec::new();
    if let Some(list) = get(o, "portMappings") {
        for (i, item) in array(list, &f("portMappings"))?.iter().enumerate() {
            let p = format!("{path}.portMappings[{i}]");
            let m = object(item, &p)?;
            let port = |k: &str| -> Result<u32, JobError> {
                let field = format!("{p}.{k}");
                match get(m, k) {
                    None => Ok(0),
                    Some(v) => {
                        let n = unsigned32(v, &field)?;
                        if n > 65535 {
                            return Err(JobError::new(field, "must be a port number (0-65535)"));
                        }
                        Ok(n)
                    }
                }
            };
            port_mappings.push(PortMapping {
                host_port: port("hostPort")?,
                container_port: port("containerPort")?,
                protocol: get(m, "protocol")
                    .map(|v| clean_string(v, &format!("{p}.protocol")))
                    .transpose()?,
            });
        }
    }
    Ok(NetworkInfo {
        name,
        protocol,
        labels,
        port_mappings,
    })
}

fn volume(v: &Value, path: &str) -> Result<Volume, JobError> {
    let o = object(v, path)?;
    let f = |k: &str| format!("{path}.{k}");
    let host_path = get(o, "hostPath")
        .map(|v| clean_string(v, &f("hostPath")))
        .transpose()?;
    let container_path = match get(o, "containerPath") {
        Some(c) => clean_string(c, &f("containerPath"))?,
        None => return Err(JobError::new(f("containerPath"), "is required")),
    };
    let mode = match get(o, "mode") {
        None => None,
        Some(m) => match clean_string(m, &f("mode"))?.to_ascii_uppercase().as_str() {
            "RW" => Some(VolumeMode::Rw),
            "RO" => Some(VolumeMode::Ro),
            _ => return Err(JobError::new(f("mode"), "must be RW or RO")),
        },
    };
    let external = match get(o, "external") {
        None => None,
        Some(e) => {
            let p = f("external");
            let e = object(e, &p)?;
            let text = |k: &str| -> Result<String, JobError> {
                get(e, k)
                    .map(|v| clean_string(v, &format!("{p}.{k}")))
                    .transpose()
                    .map(Option::unwrap_or_default)
            };
            Some(ExternalVolume {
                name: text("name")?,
                provider: text("provider")?,
                options: match get(e, "options") {
                    Some(o) => key_values(o, &format!("{p}.options"))?,
                    None => Vec::new(),
                },
            })
        }
    };
    Ok(Volume {
        host_path,
        container_path,
        mode,
        external,
    })
}

/// `fetch`: `{uri, executable=false, cache=false, extract=true, output_file=""}` each.
pub(super) fn read_fetch(v: &Value) -> Result<Vec<Fetch>, JobError> {
    let mut out = Vec::new();
    for (i, item) in array(v, "fetch")?.iter().enumerate() {
        let path = format!("fetch[{i}]");
        let o: &Map<String, Value> = object(item, &path)?;
        let uri = match get(o, "uri") {
            Some(u) => clean_string(u, &format!("{path}.uri"))?,
            None => return Err(JobError::new(format!("{path}.uri"), "is required")),
        };
        if uri.is_empty() {
            return Err(JobError::new(format!("{path}.uri"), "must not be empty"));
        }
        let flag = |k: &str, default: bool| -> Result<bool, JobError> {
            Ok(get(o, k)
                .map(|v| boolean(v, &format!("{path}.{k}")))
                .transpose()?
                .unwrap_or(default))
        };
        let output_file = match opt_string(o, "output_file")? {
            Some(s) => s,
            None => opt_string(o, "outputFile")?.unwrap_or_default(),
        };
        out.push(Fetch {
            uri,
            executable: flag("executable", false)?,
            cache: flag("cache", false)?,
            extract: flag("extract", true)?,
            output_file,
        });
    }
    Ok(out)
}

/// `constraints`: `[attribute, EQUALS|LIKE|UNLIKE, value]` each. Chronos silently dropped unknown
/// operators; Gantry refuses them, since a dropped constraint places the job anywhere.
pub(super) fn read_constraints(v: &Value) -> Result<Vec<JobConstraint>, JobError> {
    let mut out = Vec::new();
    for (i, item) in array(v, "constraints")?.iter().enumerate() {
        let path = format!("constraints[{i}]");
        let parts = strings(item, &path)?;
        let [attribute, operator, value] = parts.as_slice() else {
            return Err(JobError::new(
                path,
                "must be [attribute, operator, value], e.g. [\"rack\", \"EQUALS\", \"rack-1\"]",
            ));
        };
        let operator = match operator.as_str() {
            "EQUALS" => ConstraintOperator::Equals,
            "LIKE" => ConstraintOperator::Like,
            "UNLIKE" => ConstraintOperator::Unlike,
            other => {
                return Err(JobError::new(
                    path,
                    format!("unknown operator '{other}': use EQUALS, LIKE or UNLIKE"),
                ))
            }
        };
        out.push(JobConstraint {
            attribute: attribute.clone(),
            operator,
            value: value.clone(),
        });
    }
    Ok(out)
}
