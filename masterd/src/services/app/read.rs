//! The type phase of parsing an app body: every field read from the JSON with its type and schema
//! constraints checked, all errors collected (422 `Invalid JSON`). Deprecated fields are kept as
//! given here; `normalize.rs` translates them.

use super::checks::{CommandCheck, HealthCheck, HealthCheckProtocol, ReadinessCheck};
use super::container::{ContainerKind, DockerContainer, DockerParameter, PortMapping};
use super::error::{AppError, FieldErrors};
use super::json_reader::{child, JsonReader};
use super::model::{FetchUri, Network, NetworkMode, PortDefinition};
use super::strategies::{KillSelection, UnreachableStrategy, UpgradeStrategy};
use crate::services::path_id;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The deprecated `container.docker.network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DockerNetwork {
    Host,
    Bridge,
    User,
    None,
}

/// `container.docker` as sent, deprecated fields included.
#[derive(Debug, Default)]
pub(super) struct DockerInput {
    pub docker: DockerContainer,
    pub network: Option<DockerNetwork>,
    pub port_mappings: Option<Vec<PortMapping>>,
}

/// `container` as sent.
#[derive(Debug, Default)]
pub(super) struct ContainerInput {
    pub kind: ContainerKind,
    pub docker: Option<DockerInput>,
    pub volumes: Vec<Value>,
    pub port_mappings: Option<Vec<PortMapping>>,
}

/// The deprecated `ipAddress`.
#[derive(Debug, Default)]
pub(super) struct IpAddressInput {
    pub network_name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub discovery_ports: Vec<PortMapping>,
}

/// An app body as sent: `None` for absent fields, deprecated forms untranslated.
#[derive(Debug, Default)]
pub(super) struct AppInput {
    pub id: Option<String>,
    pub cmd: Option<String>,
    pub args: Option<Vec<String>>,
    pub user: Option<String>,
    pub instances: Option<u32>,
    pub cpus: Option<f64>,
    pub mem: Option<f64>,
    pub disk: Option<f64>,
    pub gpus: Option<u32>,
    /// Gantry extension: `none`, `prefer` or `require`.
    pub numa_policy: Option<gantry_gpu::NumaPolicy>,
    /// Gantry extension: the MIG profile of the app's GPUs.
    pub gpu_profile: Option<String>,
    /// Gantry extension: the app's instances are one gang.
    pub gang: Option<bool>,
    /// Gantry extension: how long a gang waits for room (seconds, 0 = forever).
    pub gang_timeout_seconds: Option<u64>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub ports: Option<Vec<u32>>,
    pub port_definitions: Option<Vec<PortDefinition>>,
    pub require_ports: Option<bool>,
    pub networks: Option<Vec<Network>>,
    pub container: Option<ContainerInput>,
    pub ip_address: Option<IpAddressInput>,
    pub health_checks: Vec<HealthCheck>,
    pub readiness_checks: Vec<ReadinessCheck>,
    pub constraints: Vec<Vec<String>>,
    pub fetch: Vec<FetchUri>,
    pub uris: Vec<String>,
    pub dependencies: Vec<String>,
    pub accepted_resource_roles: Vec<String>,
    pub upgrade_strategy: Option<UpgradeStrategy>,
    pub unreachable_strategy: Option<UnreachableStrategy>,
    pub kill_selection: Option<KillSelection>,
    pub backoff_seconds: Option<u64>,
    pub backoff_factor: Option<f64>,
    pub max_launch_delay_seconds: Option<u64>,
    pub executor: Option<String>,
    pub role: Option<String>,
    pub residency: Option<Value>,
    pub task_kill_grace_period_seconds: Option<f64>,
    /// Paths where secrets were referenced (Gantry has no secret store).
    pub secret_paths: Vec<String>,
}

/// Parses the raw body into JSON: 400 `Please specify data in JSON format` when empty, 400
/// `Invalid JSON` with the parser's message when it is not JSON.
pub fn parse_body(body: &[u8]) -> Result<Value, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::EmptyBody(
            "The request body is empty: send the app definition as a JSON object".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| AppError::InvalidJson(e.to_string()))
}

/// Reads every field of an app body, or answers 422 `Invalid JSON` with all errors found.
pub(super) fn read_app(value: &Value) -> Result<AppInput, AppError> {
    let mut r = JsonReader::default();
    let input = match r.object(value, "") {
        Some(obj) => read_fields(&mut r, obj),
        None => AppInput::default(),
    };
    if r.errors.is_empty() {
        Ok(input)
    } else {
        Err(AppError::InvalidFields(FieldErrors::group(r.errors)))
    }
}

/// One constraint: strings, where a number is also taken and kept as its JSON text (`3` as
/// `"3"`): Marathon refused numbers (spec §7.8, marathon #3857), which surprised its users.
fn constraint(r: &mut JsonReader, v: &Value, path: &str) -> Option<Vec<String>> {
    r.array(v, path, |r, v, p| match v {
        Value::Number(n) => Some(n.to_string()),
        _ => r.string(v, p),
    })
}

fn id_string(r: &mut JsonReader, v: &Value, path: &str) -> Option<String> {
    let s = r.string(v, path)?;
    if !path_id::matches_pattern(&s) {
        r.error(path, "error.pattern");
        return None;
    }
    Some(s)
}

fn read_fields(r: &mut JsonReader, o: &Map<String, Value>) -> AppInput {
    let id = r.required(o, "", "id", id_string);
    let mut secret_paths = Vec::new();
    let mut env = BTreeMap::new();
    if let Some(v) = JsonReader::get(o, "env") {
        if let Some(obj) = r.object(v, "/env") {
            for (k, val) in obj {
                let path = child("/env", k);
                match val {
                    Value::String(s) => {
                        env.insert(k.clone(), s.clone());
                    }
                    Value::Object(sec) if sec.get("secret").is_some_and(Value::is_string) => {
                        secret_paths.push(path);
                    }
                    _ => r.error(&path, "error.expected.jsstring"),
                }
            }
        }
    }
    if let Some(obj) = r.field(o, "", "secrets", |r, v, p| r.object(v, p).cloned()) {
        if !obj.is_empty() {
            secret_paths.push("/secrets".into());
        }
    }
    // Accepted for compatibility but never stored nor emitted (marathon-python 0.13.0 rejects them).
    r.field(o, "", "check", |r, v, p| r.object(v, p).map(|_| ()));
    r.field(o, "", "tty", JsonReader::boolean);
    r.field(o, "", "executorResources", |r, v, p| {
        r.object(v, p).map(|_| ())
    });
    r.field(o, "", "resourceLimits", |r, v, p| {
        r.object(v, p).map(|_| ())
    });
    r.field(o, "", "version", JsonReader::string);

    let container = r.field(o, "", "container", |r, v, p| {
        read_container(r, v, p, &mut secret_paths)
    });
    AppInput {
        id,
        cmd: r.field(o, "", "cmd", JsonReader::non_empty_string),
        args: r.field(o, "", "args", JsonReader::string_array),
        user: r.field(o, "", "user", JsonReader::string),
        instances: r.field(o, "", "instances", JsonReader::u32),
        cpus: r.field(o, "", "cpus", |r, v, p| r.number_min(v, p, 0.001)),
        mem: r.field(o, "", "mem", |r, v, p| r.number_min(v, p, 0.0)),
        disk: r.field(o, "", "disk", |r, v, p| r.number_min(v, p, 0.0)),
        gpus: r.field(o, "", "gpus", JsonReader::u32),
        numa_policy: r.field(o, "", "numaPolicy", |r, v, p| {
            r.literal(v, p, super::model::numa_policy_from_literal)
        }),
        gpu_profile: r.field(o, "", "gpuProfile", JsonReader::string),
        gang: r.field(o, "", "gang", JsonReader::boolean),
        gang_timeout_seconds: r.field(o, "", "gangTimeoutSeconds", JsonReader::u64),
        env,
        labels: r
            .field(o, "", "labels", JsonReader::string_map)
            .unwrap_or_default(),
        ports: r.field(o, "", "ports", |r, v, p| r.array(v, p, JsonReader::port)),
        port_definitions: r.field(o, "", "portDefinitions", |r, v, p| {
            r.array(v, p, read_port_definition)
        }),
        require_ports: r.field(o, "", "requirePorts", JsonReader::boolean),
        networks: r.field(o, "", "networks", |r, v, p| r.array(v, p, read_network)),
        container,
        ip_address: r.field(o, "", "ipAddress", read_ip_address),
        health_checks: r
            .field(o, "", "healthChecks", |r, v, p| {
                r.array(v, p, read_health_check)
            })
            .unwrap_or_default(),
        readiness_checks: r
            .field(o, "", "readinessChecks", |r, v, p| {
                r.array(v, p, read_readiness_check)
            })
            .unwrap_or_default(),
        constraints: r
            .field(o, "", "constraints", |r, v, p| r.array(v, p, constraint))
            .unwrap_or_default(),
        fetch: r
            .field(o, "", "fetch", |r, v, p| r.array(v, p, read_fetch))
            .unwrap_or_default(),
        uris: r
            .field(o, "", "uris", JsonReader::string_array)
            .unwrap_or_default(),
        dependencies: r
            .field(o, "", "dependencies", |r, v, p| r.array(v, p, id_string))
            .unwrap_or_default(),
        accepted_resource_roles: r
            .field(o, "", "acceptedResourceRoles", JsonReader::string_array)
            .unwrap_or_default(),
        upgrade_strategy: r.field(o, "", "upgradeStrategy", read_upgrade_strategy),
        unreachable_strategy: r.field(o, "", "unreachableStrategy", read_unreachable),
        kill_selection: r.field(o, "", "killSelection", |r, v, p| {
            r.literal(v, p, KillSelection::from_literal)
        }),
        backoff_seconds: r.field(o, "", "backoffSeconds", JsonReader::u64),
        backoff_factor: r.field(o, "", "backoffFactor", |r, v, p| r.number_min(v, p, 1.0)),
        max_launch_delay_seconds: r.field(o, "", "maxLaunchDelaySeconds", JsonReader::u64),
        executor: r.field(o, "", "executor", read_executor),
        role: r.field(o, "", "role", JsonReader::string),
        residency: r.field(o, "", "residency", |r, v, p| {
            r.object(v, p).map(|m| Value::Object(m.clone()))
        }),
        task_kill_grace_period_seconds: r.field(o, "", "taskKillGracePeriodSeconds", |r, v, p| {
            r.number_min(v, p, 0.0)
        }),
        secret_paths,
    }
}

fn read_executor(r: &mut JsonReader, v: &Value, path: &str) -> Option<String> {
    let s = r.string(v, path)?;
    // Marathon's pattern: `//cmd`, a path without empty segments, or "".
    let ok =
        s.is_empty() || s == "//cmd" || s.trim_start_matches('/').split('/').all(|x| !x.is_empty());
    if !ok {
        r.error(path, "error.pattern");
        return None;
    }
    Some(s)
}

fn read_port_definition(r: &mut JsonReader, v: &Value, path: &str) -> Option<PortDefinition> {
    let o = r.object(v, path)?;
    let port = r.field(o, path, "port", JsonReader::port);
    let protocol = r.field(o, path, "protocol", JsonReader::string);
    let name = r.field(o, path, "name", JsonReader::string);
    let labels = r.field(o, path, "labels", JsonReader::string_map);
    Some(PortDefinition {
        port: port.unwrap_or(0),
        protocol: protocol.unwrap_or_else(|| "tcp".into()),
        name,
        labels: labels.unwrap_or_default(),
    })
}

fn read_port_mapping(r: &mut JsonReader, v: &Value, path: &str) -> Option<PortMapping> {
    let o = r.object(v, path)?;
    // `networkNames` is accepted but not kept: marathon-python 0.13.0 rejects it.
    r.field(o, path, "networkNames", JsonReader::string_array);
    Some(PortMapping {
        container_port: r
            .field(o, path, "containerPort", JsonReader::port)
            .unwrap_or(0),
        host_port: r.field(o, path, "hostPort", JsonReader::port),
        service_port: r
            .field(o, path, "servicePort", JsonReader::port)
            .unwrap_or(0),
        protocol: r
            .field(o, path, "protocol", JsonReader::string)
            .unwrap_or_else(|| "tcp".into()),
        name: r.field(o, path, "name", JsonReader::string),
        labels: r
            .field(o, path, "labels", JsonReader::string_map)
            .unwrap_or_default(),
    })
}

fn read_network(r: &mut JsonReader, v: &Value, path: &str) -> Option<Network> {
    let o = r.object(v, path)?;
    let mode = r.field(o, path, "mode", |r, v, p| {
        r.literal(v, p, NetworkMode::from_literal)
    });
    let name = r.field(o, path, "name", |r, v, p| {
        let s = r.string(v, p)?;
        let b = s.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ok = b.first().is_some_and(edge)
            && b.last().is_some_and(edge)
            && b.iter().all(|c| edge(c) || *c == b'-' || *c == b'_');
        if !ok {
            r.error(p, "error.pattern");
            return None;
        }
        Some(s)
    });
    Some(Network {
        mode: mode.unwrap_or_default(),
        name,
        labels: r
            .field(o, path, "labels", JsonReader::string_map)
            .unwrap_or_default(),
    })
}

fn read_container(
    r: &mut JsonReader,
    v: &Value,
    path: &str,
    secret_paths: &mut Vec<String>,
) -> Option<ContainerInput> {
    let o = r.object(v, path)?;
    // `linuxInfo` is accepted but not kept: marathon-python 0.13.0 rejects it.
    r.field(o, path, "linuxInfo", |r, v, p| r.object(v, p).map(|_| ()));
    let kind = r.field(o, path, "type", |r, v, p| {
        r.literal(v, p, |s| match s {
            "DOCKER" => Some(ContainerKind::Docker),
            "MESOS" => Some(ContainerKind::Mesos),
            _ => None,
        })
    });
    let docker = r.field(o, path, "docker", |r, v, p| {
        read_docker(r, v, p, secret_paths)
    });
    let volumes = r.field(o, path, "volumes", |r, v, p| {
        r.array(v, p, |r, v, p| read_volume(r, v, p, secret_paths))
    });
    let port_mappings = r.field(o, path, "portMappings", |r, v, p| {
        r.array(v, p, read_port_mapping)
    });
    Some(ContainerInput {
        kind: kind.unwrap_or_default(),
        docker,
        volumes: volumes.unwrap_or_default(),
        port_mappings,
    })
}

fn read_docker(
    r: &mut JsonReader,
    v: &Value,
    path: &str,
    secret_paths: &mut Vec<String>,
) -> Option<DockerInput> {
    let o = r.object(v, path)?;
    if r.field(o, path, "pullConfig", |r, v, p| r.object(v, p).map(|_| ()))
        .is_some()
    {
        secret_paths.push(child(path, "pullConfig"));
    }
    let network = r.field(o, path, "network", |r, v, p| {
        r.literal(v, p, |s| match s {
            "HOST" => Some(DockerNetwork::Host),
            "BRIDGE" => Some(DockerNetwork::Bridge),
            "USER" => Some(DockerNetwork::User),
            "NONE" => Some(DockerNetwork::None),
            _ => None,
        })
    });
    let parameters = r.field(o, path, "parameters", |r, v, p| {
        r.array(v, p, |r, v, p| {
            let po = r.object(v, p)?;
            let key = r.required(po, p, "key", JsonReader::string);
            let value = r.required(po, p, "value", JsonReader::string);
            Some(DockerParameter {
                key: key?,
                value: value?,
            })
        })
    });
    Some(DockerInput {
        docker: DockerContainer {
            image: r
                .required(o, path, "image", JsonReader::non_empty_string)
                .unwrap_or_default(),
            force_pull_image: r
                .field(o, path, "forcePullImage", JsonReader::boolean)
                .unwrap_or(false),
            privileged: r
                .field(o, path, "privileged", JsonReader::boolean)
                .unwrap_or(false),
            parameters: parameters.unwrap_or_default(),
            credential: r.field(o, path, "credential", |r, v, p| {
                r.object(v, p).map(|m| Value::Object(m.clone()))
            }),
        },
        network,
        port_mappings: r.field(o, path, "portMappings", |r, v, p| {
            r.array(v, p, read_port_mapping)
        }),
    })
}

const VOLUME_KEYS: [&str; 5] = [
    "containerPath",
    "hostPath",
    "mode",
    "persistent",
    "external",
];

/// A volume is echoed as given, with `mode` defaulted to `RW`; its common fields are type-checked.
fn read_volume(
    r: &mut JsonReader,
    v: &Value,
    path: &str,
    secret_paths: &mut Vec<String>,
) -> Option<Value> {
    let o = r.object(v, path)?;
    // Keep only the keys Marathon (and marathon-python 0.13.0) know; `secret` volumes are refused.
    let mut out: Map<String, Value> = o
        .iter()
        .filter(|(k, _)| VOLUME_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    r.required(o, path, "containerPath", JsonReader::non_empty_string);
    r.field(o, path, "hostPath", JsonReader::string);
    if let Some(mode) = r.field(o, path, "mode", |r, v, p| {
        r.literal(v, p, |s| matches!(s, "RO" | "RW").then(|| s.to_string()))
    }) {
        out.insert("mode".into(), Value::String(mode));
    } else {
        out.insert("mode".into(), Value::String("RW".into()));
    }
    if let Some(po) = r.field(o, path, "persistent", |r, v, p| r.object(v, p).cloned()) {
        let pp = child(path, "persistent");
        r.required(&po, &pp, "size", |r, v, p| r.number_min(v, p, 0.0));
        r.field(&po, &pp, "type", |r, v, p| {
            r.literal(v, p, |s| {
                matches!(s, "root" | "path" | "mount").then_some(())
            })
        });
    }
    if let Some(eo) = r.field(o, path, "external", |r, v, p| r.object(v, p).cloned()) {
        let ep = child(path, "external");
        r.required(&eo, &ep, "name", JsonReader::non_empty_string);
        r.field(&eo, &ep, "provider", JsonReader::string);
    }
    if r.field(o, path, "secret", JsonReader::string).is_some() {
        secret_paths.push(child(path, "secret"));
    }
    Some(Value::Object(out))
}

fn read_ip_address(r: &mut JsonReader, v: &Value, path: &str) -> Option<IpAddressInput> {
    let o = r.object(v, path)?;
    r.field(o, path, "groups", JsonReader::string_array);
    let discovery_ports = r
        .field(o, path, "discovery", |r, v, p| {
            let d = r.object(v, p)?;
            r.field(d, p, "ports", |r, v, p| {
                r.array(v, p, |r, v, p| {
                    let po = r.object(v, p)?;
                    let number = r.required(po, p, "number", JsonReader::port);
                    let name = r.required(po, p, "name", JsonReader::string);
                    let protocol = r.field(po, p, "protocol", JsonReader::string);
                    let labels = r.field(po, p, "labels", JsonReader::string_map);
                    Some(PortMapping {
                        container_port: number?,
                        host_port: None,
                        service_port: 0,
                        protocol: protocol.map(|s| s.to_lowercase()).unwrap_or("tcp".into()),
                        name: Some(name?),
                        labels: labels.unwrap_or_default(),
                    })
                })
            })
        })
        .unwrap_or_default();
    Some(IpAddressInput {
        network_name: r.field(o, path, "networkName", JsonReader::string),
        labels: r
            .field(o, path, "labels", JsonReader::string_map)
            .unwrap_or_default(),
        discovery_ports,
    })
}

fn read_health_check(r: &mut JsonReader, v: &Value, path: &str) -> Option<HealthCheck> {
    let o = r.object(v, path)?;
    let protocol = r.field(o, path, "protocol", |r, v, p| {
        r.literal(v, p, HealthCheckProtocol::from_literal)
    });
    let mut hc = HealthCheck::with_protocol(protocol.unwrap_or_default());
    hc.path = r.field(o, path, "path", JsonReader::string);
    hc.port_index = r.field(o, path, "portIndex", JsonReader::u32);
    hc.port = r.field(o, path, "port", JsonReader::port);
    hc.command = r.field(o, path, "command", |r, v, p| {
        let co = r.object(v, p)?;
        let value = r.required(co, p, "value", JsonReader::non_empty_string)?;
        Some(CommandCheck { value })
    });
    if let Some(x) = r.field(o, path, "gracePeriodSeconds", JsonReader::u64) {
        hc.grace_period_seconds = x;
    }
    if let Some(x) = r.field(o, path, "intervalSeconds", JsonReader::u64) {
        hc.interval_seconds = x;
    }
    if let Some(x) = r.field(o, path, "timeoutSeconds", JsonReader::u64) {
        hc.timeout_seconds = x;
    }
    if let Some(x) = r.field(o, path, "maxConsecutiveFailures", JsonReader::u32) {
        hc.max_consecutive_failures = x;
    }
    if let Some(x) = r.field(o, path, "delaySeconds", JsonReader::u64) {
        hc.delay_seconds = x;
    }
    hc.ignore_http1xx = r.field(o, path, "ignoreHttp1xx", JsonReader::boolean);
    hc.ip_protocol = r.field(o, path, "ipProtocol", |r, v, p| {
        r.literal(v, p, |s| {
            matches!(s, "IPv4" | "IPv6").then(|| s.to_string())
        })
    });
    hc.fill_protocol_defaults();
    Some(hc)
}

fn read_readiness_check(r: &mut JsonReader, v: &Value, path: &str) -> Option<ReadinessCheck> {
    use super::checks::*;
    let o = r.object(v, path)?;
    Some(ReadinessCheck {
        name: r
            .field(o, path, "name", JsonReader::string)
            .unwrap_or_else(default_readiness_name),
        protocol: r
            .field(o, path, "protocol", |r, v, p| {
                r.literal(v, p, |s| {
                    matches!(s, "HTTP" | "HTTPS").then(|| s.to_string())
                })
            })
            .unwrap_or_else(default_readiness_protocol),
        path: r
            .field(o, path, "path", JsonReader::string)
            .unwrap_or_else(default_readiness_path),
        port_name: r
            .field(o, path, "portName", JsonReader::string)
            .unwrap_or_else(default_readiness_port_name),
        interval_seconds: r
            .field(o, path, "intervalSeconds", JsonReader::u64)
            .unwrap_or_else(default_readiness_interval),
        timeout_seconds: r
            .field(o, path, "timeoutSeconds", JsonReader::u64)
            .unwrap_or_else(default_readiness_timeout),
        http_status_codes_for_ready: r
            .field(o, path, "httpStatusCodesForReady", |r, v, p| {
                r.array(v, p, JsonReader::u32)
            })
            .unwrap_or_else(default_ready_codes),
        preserve_last_response: r
            .field(o, path, "preserveLastResponse", JsonReader::boolean)
            .unwrap_or(false),
    })
}

fn read_fetch(r: &mut JsonReader, v: &Value, path: &str) -> Option<FetchUri> {
    let o = r.object(v, path)?;
    let uri = r.required(o, path, "uri", |r, v, p| {
        let s = r.non_empty_string(v, p)?;
        if s.len() > 1024 {
            r.error(p, "error.maxLength");
            return None;
        }
        Some(s)
    });
    let extract = r.field(o, path, "extract", JsonReader::boolean);
    let executable = r.field(o, path, "executable", JsonReader::boolean);
    let cache = r.field(o, path, "cache", JsonReader::boolean);
    let dest_path = r.field(o, path, "destPath", JsonReader::string);
    Some(FetchUri {
        uri: uri?,
        extract: extract.unwrap_or(true),
        executable: executable.unwrap_or(false),
        cache: cache.unwrap_or(false),
        dest_path,
    })
}

fn read_upgrade_strategy(r: &mut JsonReader, v: &Value, path: &str) -> Option<UpgradeStrategy> {
    let o = r.object(v, path)?;
    let d = UpgradeStrategy::default();
    Some(UpgradeStrategy {
        minimum_health_capacity: r
            .field(o, path, "minimumHealthCapacity", JsonReader::number)
            .unwrap_or(d.minimum_health_capacity),
        maximum_over_capacity: r
            .field(o, path, "maximumOverCapacity", JsonReader::number)
            .unwrap_or(d.maximum_over_capacity),
    })
}

fn read_unreachable(r: &mut JsonReader, v: &Value, path: &str) -> Option<UnreachableStrategy> {
    match v {
        Value::String(s) if s == "disabled" => Some(UnreachableStrategy::Disabled),
        Value::String(_) => {
            r.error(path, "error.unknown.enum.literal");
            None
        }
        _ => {
            let o = r.object(v, path)?;
            let inactive = r.field(o, path, "inactiveAfterSeconds", JsonReader::u64);
            let expunge = r.field(o, path, "expungeAfterSeconds", JsonReader::u64);
            Some(UnreachableStrategy::Enabled {
                inactive_after_seconds: inactive.unwrap_or(0),
                expunge_after_seconds: expunge.unwrap_or(0),
            })
        }
    }
}
