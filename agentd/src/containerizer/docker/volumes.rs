//! A Docker task's volumes: its sandbox at `/mnt/mesos/sandbox` (as Mesos mounts it), host paths
//! bind-mounted (created when missing, as `docker run -v` does; a relative one is a directory in
//! the sandbox), and named Docker volumes of a driver (how external volumes reach a volume plugin).

use bollard::models::{Mount, MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig};
use gantry_proto::DockerVolume;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the task's sandbox appears inside its container (`MESOS_SANDBOX`).
pub const SANDBOX_IN_CONTAINER: &str = "/mnt/mesos/sandbox";

/// The volume part of a container's create request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VolumePlan {
    /// `HostConfig.Binds` (`/host:/container:rw`).
    pub binds: Vec<String>,
    /// `HostConfig.Mounts` (named volumes).
    pub mounts: Vec<Mount>,
    /// Sandbox directories to create before the container starts.
    pub sandbox_dirs: Vec<std::path::PathBuf>,
}

/// Plans the volumes of a task whose sandbox is `sandbox`; absolute host paths must lie under one
/// of `allowed` (`None`: anywhere).
pub fn plan(
    volumes: &[DockerVolume],
    sandbox: &Path,
    allowed: Option<&[PathBuf]>,
) -> Result<VolumePlan, String> {
    let mut out = VolumePlan::default();
    out.binds
        .push(format!("{}:{SANDBOX_IN_CONTAINER}:rw", sandbox.display()));
    for v in volumes {
        let target = container_path(&v.container_path)?;
        let mode = match v.mode.to_ascii_uppercase().as_str() {
            "RW" | "" => "rw",
            "RO" => "ro",
            other => return Err(format!("volume mode '{other}' is not RW or RO")),
        };
        match (&v.named, &v.host_path) {
            (Some(n), _) => {
                if n.name.is_empty() || n.name.contains(['/', ':']) {
                    return Err(format!("'{}' is not a Docker volume name", n.name));
                }
                out.mounts.push(Mount {
                    target: Some(target),
                    source: Some(n.name.clone()),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(mode == "ro"),
                    volume_options: Some(MountVolumeOptions {
                        driver_config: Some(MountVolumeOptionsDriverConfig {
                            name: Some(n.driver.clone().unwrap_or_else(|| "local".into())),
                            options: Some(
                                n.options
                                    .iter()
                                    .map(|(k, v)| (k.clone(), v.clone()))
                                    .collect::<HashMap<_, _>>(),
                            ),
                        }),
                        ..MountVolumeOptions::default()
                    }),
                    ..Mount::default()
                });
            }
            (None, Some(h)) => {
                if h.contains(':') || h.split('/').any(|c| c == "..") {
                    return Err(format!("hostPath '{h}' may not hold ':' or '..'"));
                }
                let source = if h.starts_with('/') {
                    if let Some(list) =
                        allowed.filter(|l| !l.iter().any(|a| Path::new(h).starts_with(a)))
                    {
                        let names: Vec<String> =
                            list.iter().map(|a| a.display().to_string()).collect();
                        return Err(format!(
                            "hostPath '{h}' is not allowed on this agent (--docker-host-paths: {})",
                            names.join(", ")
                        ));
                    }
                    h.clone()
                } else {
                    let dir = sandbox.join(h);
                    out.sandbox_dirs.push(dir.clone());
                    dir.display().to_string()
                };
                out.binds.push(format!("{source}:{target}:{mode}"));
            }
            (None, None) => {
                return Err(format!(
                    "volume at '{}' has neither a hostPath nor an external name",
                    v.container_path
                ))
            }
        }
    }
    Ok(out)
}

/// An absolute container path, or a relative one under the sandbox mount (as Mesos does).
fn container_path(p: &str) -> Result<String, String> {
    if p.is_empty() || p.contains(':') || p.split('/').any(|c| c == "..") {
        return Err(format!("containerPath '{p}' is not a usable path"));
    }
    Ok(if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{SANDBOX_IN_CONTAINER}/{p}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_proto::NamedVolume;

    fn host(container: &str, host: &str, mode: &str) -> DockerVolume {
        DockerVolume {
            container_path: container.into(),
            host_path: Some(host.into()),
            mode: mode.into(),
            named: None,
        }
    }

    #[test]
    fn host_paths_bind_and_relative_ones_live_in_the_sandbox() {
        let p = plan(
            &[
                host("/var/log/", "/logs/", "RW"),
                host("data", "data", "RO"),
            ],
            Path::new("/sb"),
            None,
        )
        .expect("a plan");
        assert_eq!(
            p.binds,
            [
                "/sb:/mnt/mesos/sandbox:rw",
                "/logs/:/var/log/:rw",
                "/sb/data:/mnt/mesos/sandbox/data:ro"
            ]
        );
        assert_eq!(p.sandbox_dirs, [Path::new("/sb/data")]);
    }

    #[test]
    fn named_volumes_carry_their_driver() {
        let v = DockerVolume {
            container_path: "/var/lib/mysql".into(),
            host_path: None,
            mode: "RW".into(),
            named: Some(NamedVolume {
                name: "mysql".into(),
                driver: Some("rexray".into()),
                options: [("size".to_string(), "5".to_string())].into(),
            }),
        };
        let p = plan(&[v], Path::new("/sb"), None).expect("a plan");
        let m = &p.mounts[0];
        assert_eq!(m.source.as_deref(), Some("mysql"));
        let dc = m
            .volume_options
            .as_ref()
            .and_then(|o| o.driver_config.as_ref())
            .expect("driver");
        assert_eq!(dc.name.as_deref(), Some("rexray"));
    }

    #[test]
    fn bad_paths_and_modes_are_refused() {
        let sb = Path::new("/sb");
        assert!(plan(&[host("/x", "/a/../etc", "RW")], sb, None).is_err());
        assert!(plan(&[host("/x:/y", "/a", "RW")], sb, None).is_err());
        assert!(plan(&[host("/x", "/a", "WO")], sb, None).is_err());
    }

    #[test]
    fn host_paths_outside_the_allowed_ones_are_refused() {
        let sb = Path::new("/sb");
        let allowed = [PathBuf::from("/data"), PathBuf::from("/logs")];
        assert!(plan(&[host("/x", "/data/a", "RW")], sb, Some(&allowed)).is_ok());
        assert!(plan(&[host("/x", "rel", "RW")], sb, Some(&allowed)).is_ok());
        let err = plan(&[host("/x", "/database", "RW")], sb, Some(&allowed)).expect_err("refused");
        assert!(err.contains("'/database' is not allowed"), "{err}");
    }
}
