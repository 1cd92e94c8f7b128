//! `container.docker.parameters` (`docker run --key=value`): the agent applies only the keys on
//! its allow-list (`--docker-parameters`) and refuses a task with any other, naming it.

use bollard::models::{ContainerCreateBody, HostConfig, ResourcesUlimits};
use gantry_proto::DockerParameter;

/// The keys allowed when the agent is given no list: none of them widens what the container may
/// do on the host.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "label",
    "env",
    "hostname",
    "workdir",
    "user",
    "add-host",
    "dns",
    "dns-search",
    "shm-size",
    "ulimit",
    "init",
    "entrypoint",
];

/// Every key this agent knows how to apply (the allow-list may only name these).
pub const SUPPORTED: &[&str] = &[
    "label",
    "env",
    "hostname",
    "workdir",
    "user",
    "add-host",
    "dns",
    "dns-search",
    "shm-size",
    "ulimit",
    "init",
    "entrypoint",
    "cap-add",
    "cap-drop",
    "volume-driver",
];

/// Applies `params` to the create request, each checked against `allowed`.
pub fn apply(
    params: &[DockerParameter],
    allowed: &[String],
    body: &mut ContainerCreateBody,
    host: &mut HostConfig,
) -> Result<(), String> {
    for p in params {
        let key = p.key.trim_start_matches('-');
        let key = match key {
            "e" => "env",
            "w" => "workdir",
            "u" => "user",
            "l" => "label",
            "h" => "hostname",
            k => k,
        };
        if !allowed.iter().any(|a| a == key) {
            return Err(format!(
                "docker parameter '{}' is not allowed on this agent (allowed: {})",
                p.key,
                allowed.join(", ")
            ));
        }
        let v = p.value.clone();
        match key {
            "label" => {
                let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
                body.labels
                    .get_or_insert_with(Default::default)
                    .insert(k.to_string(), val.to_string());
            }
            "env" => body.env.get_or_insert_with(Vec::new).push(v),
            "hostname" => body.hostname = Some(v),
            "workdir" => body.working_dir = Some(v),
            "user" => body.user = Some(v),
            "entrypoint" => body.entrypoint = Some(vec![v]),
            "add-host" => host.extra_hosts.get_or_insert_with(Vec::new).push(v),
            "dns" => host.dns.get_or_insert_with(Vec::new).push(v),
            "dns-search" => host.dns_search.get_or_insert_with(Vec::new).push(v),
            "cap-add" => host.cap_add.get_or_insert_with(Vec::new).push(v),
            "cap-drop" => host.cap_drop.get_or_insert_with(Vec::new).push(v),
            "volume-driver" => host.volume_driver = Some(v),
            "init" => host.init = Some(v.is_empty() || v == "true"),
            "shm-size" => host.shm_size = Some(bytes(&v).ok_or(format!("shm-size '{v}'"))?),
            "ulimit" => host
                .ulimits
                .get_or_insert_with(Vec::new)
                .push(ulimit(&v).ok_or(format!("ulimit '{v}' is not name=soft[:hard]"))?),
            other => return Err(format!("docker parameter '{other}' is not supported")),
        }
    }
    Ok(())
}

/// `64m`, `1g`, `512k`, `1024` as bytes.
pub fn bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last()? {
        'k' => (&s[..s.find('k')?], 1i64 << 10),
        'm' => (&s[..s.find('m')?], 1 << 20),
        'g' => (&s[..s.find('g')?], 1 << 30),
        _ => (s.trim_end_matches('b'), 1),
    };
    num.parse::<i64>().ok()?.checked_mul(mult)
}

fn ulimit(s: &str) -> Option<ResourcesUlimits> {
    let (name, limits) = s.split_once('=')?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    Some(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft.parse().ok()?),
        hard: Some(hard.parse().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(k: &str, v: &str) -> DockerParameter {
        DockerParameter {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn allowed_parameters_apply_and_others_are_refused() {
        let allowed: Vec<String> = DEFAULT_ALLOWED.iter().map(|s| s.to_string()).collect();
        let mut body = ContainerCreateBody::default();
        let mut host = HostConfig::default();
        apply(
            &[
                param("label", "team=a"),
                param("env", "X=1"),
                param("ulimit", "nofile=1024:2048"),
                param("shm-size", "64m"),
            ],
            &allowed,
            &mut body,
            &mut host,
        )
        .expect("allowed");
        assert_eq!(body.labels.as_ref().expect("labels")["team"], "a");
        assert_eq!(body.env.as_deref().expect("env"), ["X=1"]);
        assert_eq!(host.shm_size, Some(64 << 20));
        assert_eq!(host.ulimits.as_ref().expect("ulimits")[0].hard, Some(2048));
        let err = apply(
            &[param("cap-add", "SYS_ADMIN")],
            &allowed,
            &mut body,
            &mut host,
        )
        .expect_err("refused");
        assert!(err.contains("'cap-add' is not allowed"), "{err}");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes("1g"), Some(1 << 30));
        assert_eq!(bytes("512k"), Some(512 << 10));
        assert_eq!(bytes("100"), Some(100));
        assert_eq!(bytes("x"), None);
    }
}
