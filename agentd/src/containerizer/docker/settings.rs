//! The Docker containerizer's agent settings: `--containerizers` (Mesos style, `native,docker`),
//! `--docker-socket`, `--docker-allow-privileged`, `--docker-parameters`, `--docker-host-paths`.

use super::{parameters, DockerConfig, DockerPolicy};
use crate::config::{ConfigError, ContainerizerKind};
use std::path::PathBuf;

/// `--containerizers` (`native,docker`): the default back end it names goes into `base` (which
/// `--containerizer` may also give, the same), and with `docker` the Docker settings.
pub fn resolve_docker(
    list: Option<&str>,
    base: &mut Option<ContainerizerKind>,
    socket: Option<PathBuf>,
    allow_privileged: Option<bool>,
    parameters: Option<&str>,
    host_paths: Option<&str>,
) -> Result<Option<DockerConfig>, ConfigError> {
    let invalid = |why: String| ConfigError::Invalid {
        key: "containerizers",
        why,
    };
    let mut docker = false;
    for name in list.unwrap_or("").split(',').map(str::trim) {
        let kind = match name {
            "" => continue,
            "docker" => {
                docker = true;
                continue;
            }
            "native" | "mesos" => ContainerizerKind::Native,
            "process" => ContainerizerKind::Process,
            other => {
                return Err(invalid(format!(
                    "'{other}' is not a containerizer (native, process, docker)"
                )))
            }
        };
        match base {
            Some(b) if *b != kind => {
                return Err(invalid(
                    "names a different default back end than --containerizer, or two".into(),
                ))
            }
            _ => *base = Some(kind),
        }
    }
    if !docker {
        return Ok(None);
    }
    let mut policy = DockerPolicy {
        allow_privileged: allow_privileged.unwrap_or(false),
        ..DockerPolicy::default()
    };
    if let Some(p) = parameters {
        policy.parameters = p
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if let Some(bad) = policy
            .parameters
            .iter()
            .find(|k| !parameters::SUPPORTED.contains(&k.as_str()))
        {
            return Err(ConfigError::Invalid {
                key: "docker_parameters",
                why: format!(
                    "'{bad}' is not a parameter the agent can apply ({})",
                    parameters::SUPPORTED.join(", ")
                ),
            });
        }
    }
    if let Some(list) = host_paths {
        let paths: Vec<PathBuf> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if let Some(bad) = paths.iter().find(|p| !p.is_absolute()) {
            return Err(ConfigError::Invalid {
                key: "docker_host_paths",
                why: format!("'{}' is not an absolute path", bad.display()),
            });
        }
        policy.host_paths = Some(paths);
    }
    Ok(Some(DockerConfig {
        socket: socket.unwrap_or_else(|| PathBuf::from("/var/run/docker.sock")),
        policy,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        list: &str,
        base: Option<ContainerizerKind>,
    ) -> Result<(Option<ContainerizerKind>, Option<DockerConfig>), ConfigError> {
        let mut b = base;
        let d = resolve_docker(Some(list), &mut b, None, None, None, None)?;
        Ok((b, d))
    }

    #[test]
    fn containerizers_lists_name_the_default_and_docker() {
        let (b, d) = resolve("native,docker", None).expect("valid");
        assert_eq!(b, Some(ContainerizerKind::Native));
        let d = d.expect("docker on");
        assert_eq!(d.socket, PathBuf::from("/var/run/docker.sock"));
        assert!(!d.policy.allow_privileged);
        let (b, d) = resolve("docker", None).expect("valid");
        assert_eq!(b, None);
        assert!(d.is_some());
        let (b, d) = resolve("process", Some(ContainerizerKind::Process)).expect("valid");
        assert_eq!(b, Some(ContainerizerKind::Process));
        assert!(d.is_none());
        assert!(resolve("native,process", None).is_err());
        assert!(resolve("process,docker", Some(ContainerizerKind::Native)).is_err());
        assert!(resolve("rkt", None).is_err());
    }

    #[test]
    fn docker_policies_are_checked() {
        let mut b = None;
        let d = resolve_docker(
            Some("docker"),
            &mut b,
            Some("/s.sock".into()),
            Some(true),
            Some("env, cap-add"),
            Some("/data,/logs"),
        )
        .expect("valid")
        .expect("docker on");
        assert!(d.policy.allow_privileged);
        assert_eq!(d.policy.parameters, ["env", "cap-add"]);
        assert_eq!(
            d.policy.host_paths,
            Some(vec![PathBuf::from("/data"), PathBuf::from("/logs")])
        );
        assert!(
            resolve_docker(Some("docker"), &mut b, None, None, Some("privileged"), None).is_err()
        );
        assert!(resolve_docker(Some("docker"), &mut b, None, None, None, Some("data")).is_err());
    }
}
