//! Agent configuration: flags, `GANTRY_*` environment variables and an optional TOML file, in that
//! order of precedence; then resource detection for whatever was not given.

use crate::containerizer::docker::settings::resolve_docker;
use crate::containerizer::docker::DockerConfig;
use crate::containerizer::native::users::UserPolicy;
use crate::http_auth::HttpCredentials;
use crate::link::tls::LinkTlsFiles;
use crate::link::token::TokenSource;
use crate::recovery::gc::GcPolicy;
use gantry_daemon::masters::Masters;
use gantry_proto::{AgentInfo, PortRanges, Resources};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use gantry_daemon::ConfigError;

/// The agent's settings as given on the command line, by environment or in the file.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentArgs {
    /// Where the masters are: a URL (http://127.0.0.1:5050), a comma-separated list of them
    /// (the first that accepts the agent, following a standby's redirect to the leader), or
    /// zk://host:2181[,host:2181]/path (the leader ZooKeeper names, followed on failover).
    #[arg(long, env = "GANTRY_MASTER")]
    pub master: Option<String>,
    /// Address of the agent's own HTTP endpoint (/state).
    #[arg(long, env = "GANTRY_AGENT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Work directory: checkpoints and task sandboxes.
    #[arg(long, env = "GANTRY_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// The cluster join token (the master's --token).
    #[arg(long, env = "GANTRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the join token (its first line that is not blank or a # comment), read
    /// again at every (re)connection so the token can be rotated without a restart. Instead of
    /// --token.
    #[arg(long, env = "GANTRY_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// HTTP Basic credentials (`USER:PASSWORD`, Mesos's --http_credentials) accepted by the
    /// agent's own endpoint besides its join token(s) as `Authorization: Bearer`.
    #[arg(long, env = "GANTRY_AGENT_HTTP_CREDENTIALS", hide_env_values = true)]
    pub http_credentials: Option<String>,
    /// CA certificates (PEM) the master's certificate must be signed by, for an https:// master
    /// (default: the public webpki roots).
    #[arg(long, env = "GANTRY_MASTER_CA_FILE")]
    pub master_ca_file: Option<PathBuf>,
    /// The agent's client certificate chain (PEM), for a master with --tls-client-ca-file; needs
    /// --tls-key-file.
    #[arg(long, env = "GANTRY_AGENT_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert-file.
    #[arg(long, env = "GANTRY_AGENT_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// Host name tasks are reachable at (default: this machine's host name).
    #[arg(long, env = "GANTRY_HOSTNAME")]
    pub hostname: Option<String>,
    /// Resources to offer, Mesos syntax: `cpus:4;mem:8192;disk:10000;ports:[31000-32000]`.
    /// Anything not given is detected.
    #[arg(long, env = "GANTRY_RESOURCES")]
    pub resources: Option<String>,
    /// Attributes for placement constraints: `rack:r1;zone:a`.
    #[arg(long, env = "GANTRY_ATTRIBUTES")]
    pub attributes: Option<String>,
    /// Longest wait between reconnection attempts, seconds.
    #[arg(long, env = "GANTRY_MAX_BACKOFF_SECS")]
    pub max_backoff_secs: Option<f64>,
    /// How tasks run: `native` (namespaces + cgroups) or `process` (plain processes). Default:
    /// native when running as root on a host with usable cgroups, else process.
    #[arg(long, env = "GANTRY_CONTAINERIZER")]
    pub containerizer: Option<String>,
    /// Back ends, Mesos style: `native,docker` (or `process,docker`, or `docker` next to the
    /// default one). With `docker`, tasks with `container.type: DOCKER` run in the host's Docker
    /// daemon and the agent offers the `docker` containerizer.
    #[arg(long, env = "GANTRY_CONTAINERIZERS")]
    pub containerizers: Option<String>,
    /// The Docker daemon's socket (default /var/run/docker.sock).
    #[arg(long, env = "GANTRY_DOCKER_SOCKET")]
    pub docker_socket: Option<PathBuf>,
    /// Let Docker tasks run `privileged` (refused otherwise).
    #[arg(long, env = "GANTRY_DOCKER_ALLOW_PRIVILEGED", num_args = 0..=1, default_missing_value = "true")]
    pub docker_allow_privileged: Option<bool>,
    /// The `docker run` parameters Docker tasks may give, comma-separated (default: label, env,
    /// hostname, workdir, user, add-host, dns, dns-search, shm-size, ulimit, init, entrypoint).
    #[arg(long, env = "GANTRY_DOCKER_PARAMETERS")]
    pub docker_parameters: Option<String>,
    /// Absolute paths under which Docker tasks' `hostPath` volumes must lie, comma-separated
    /// (default: anywhere).
    #[arg(long, env = "GANTRY_DOCKER_HOST_PATHS")]
    pub docker_host_paths: Option<String>,
    /// Users tasks may run as (comma-separated; `*` for any existing user). Native only.
    #[arg(long, env = "GANTRY_ALLOWED_USERS")]
    pub allowed_users: Option<String>,
    /// The user tasks run as when they ask for none or for one not allowed (default `nobody`).
    #[arg(long, env = "GANTRY_DEFAULT_USER")]
    pub default_user: Option<String>,
    /// Allow tasks to run as root (never otherwise).
    #[arg(long, env = "GANTRY_ALLOW_ROOT_TASKS", num_args = 0..=1, default_missing_value = "true")]
    pub allow_root_tasks: Option<bool>,
    /// `pids.max` of every native container (default 4096).
    #[arg(long, env = "GANTRY_CONTAINER_PIDS_MAX")]
    pub container_pids_max: Option<u64>,
    /// The fetcher's cache directory (default `<work_dir>/fetch-cache`).
    #[arg(long, env = "GANTRY_FETCHER_CACHE_DIR")]
    pub fetcher_cache_dir: Option<PathBuf>,
    /// The fetcher cache's size bound in MiB (default 2048); least recently used entries go first.
    #[arg(long, env = "GANTRY_FETCHER_CACHE_SIZE_MIB")]
    pub fetcher_cache_size_mib: Option<u64>,
    /// Extra CA certificates (a PEM file) the fetcher trusts for `https://` URIs, besides the
    /// bundled webpki roots: for servers with a private CA.
    #[arg(long, env = "GANTRY_FETCHER_CA_FILE")]
    pub fetcher_ca_file: Option<PathBuf>,
    /// Read the GPUs from this JSON fixture instead of NVML (machines without GPUs, tests).
    #[arg(long, env = "GANTRY_GPU_FIXTURE")]
    pub gpu_fixture: Option<PathBuf>,
    /// With `--gpu-fixture`: read the GPUs' utilisation, memory, power, temperature and XIDs from
    /// this JSON file (re-read at every sample) instead of having none.
    #[arg(long, env = "GANTRY_GPU_METRICS_FIXTURE")]
    pub gpu_metrics_fixture: Option<PathBuf>,
    /// How often the GPUs are read for the per-task GPU metrics, seconds (default 5).
    #[arg(long, env = "GANTRY_GPU_METRICS_INTERVAL_SECS")]
    pub gpu_metrics_interval_secs: Option<f64>,
    /// How long an ended task's sandbox is kept, seconds (Mesos `--gc_delay`; default one week).
    #[arg(long, env = "GANTRY_GC_DELAY_SECS")]
    pub gc_delay_secs: Option<f64>,
    /// Fraction of the work dir's disk to keep free (Mesos `--gc_disk_headroom`; default 0.1):
    /// the GC delay shrinks as the disk fills.
    #[arg(long, env = "GANTRY_GC_DISK_HEADROOM")]
    pub gc_disk_headroom: Option<f64>,
    /// The most ended sandboxes kept; older ones beyond this are removed (default 100).
    #[arg(long, env = "GANTRY_GC_MAX_SANDBOXES")]
    pub gc_max_sandboxes: Option<usize>,
    /// How often ended sandboxes are collected, seconds (Mesos `--disk_watch_interval`; default 60).
    #[arg(long, env = "GANTRY_DISK_WATCH_INTERVAL_SECS")]
    pub disk_watch_interval_secs: Option<f64>,
    /// A registry that stands in for Docker Hub: `docker.io` images (`nginx:1.11`) are pulled
    /// from it (`host:port`, e.g. a site mirror), as dockerd's `--registry-mirror`.
    #[arg(long, env = "GANTRY_REGISTRY_MIRROR")]
    pub registry_mirror: Option<String>,
    /// Registries (`host:port,...`) reached over plain HTTP; every other one over HTTPS only.
    #[arg(long, env = "GANTRY_INSECURE_REGISTRIES")]
    pub insecure_registries: Option<String>,
    /// A Docker `config.json` whose `auths` give registry credentials (basic auth, and the
    /// credentials of a bearer-token exchange).
    #[arg(long, env = "GANTRY_DOCKER_CONFIG")]
    pub docker_config: Option<PathBuf>,
    /// The image layer store's size bound in bytes (default 10 GiB); unused layers go, least
    /// recently used first.
    #[arg(long, env = "GANTRY_IMAGE_STORE_MAX_BYTES")]
    pub image_store_max_bytes: Option<u64>,
}

impl AgentArgs {
    /// Fills what `self` lacks from `file`.
    pub fn or(self, file: AgentArgs) -> AgentArgs {
        AgentArgs {
            master: self.master.or(file.master),
            listen: self.listen.or(file.listen),
            work_dir: self.work_dir.or(file.work_dir),
            token: self.token.or(file.token),
            token_file: self.token_file.or(file.token_file),
            http_credentials: self.http_credentials.or(file.http_credentials),
            master_ca_file: self.master_ca_file.or(file.master_ca_file),
            tls_cert_file: self.tls_cert_file.or(file.tls_cert_file),
            tls_key_file: self.tls_key_file.or(file.tls_key_file),
            hostname: self.hostname.or(file.hostname),
            resources: self.resources.or(file.resources),
            attributes: self.attributes.or(file.attributes),
            max_backoff_secs: self.max_backoff_secs.or(file.max_backoff_secs),
            containerizer: self.containerizer.or(file.containerizer),
            containerizers: self.containerizers.or(file.containerizers),
            docker_socket: self.docker_socket.or(file.docker_socket),
            docker_allow_privileged: self
                .docker_allow_privileged
                .or(file.docker_allow_privileged),
            docker_parameters: self.docker_parameters.or(file.docker_parameters),
            docker_host_paths: self.docker_host_paths.or(file.docker_host_paths),
            allowed_users: self.allowed_users.or(file.allowed_users),
            default_user: self.default_user.or(file.default_user),
            allow_root_tasks: self.allow_root_tasks.or(file.allow_root_tasks),
            container_pids_max: self.container_pids_max.or(file.container_pids_max),
            fetcher_cache_dir: self.fetcher_cache_dir.or(file.fetcher_cache_dir),
            fetcher_cache_size_mib: self.fetcher_cache_size_mib.or(file.fetcher_cache_size_mib),
            fetcher_ca_file: self.fetcher_ca_file.or(file.fetcher_ca_file),
            gpu_fixture: self.gpu_fixture.or(file.gpu_fixture),
            gpu_metrics_fixture: self.gpu_metrics_fixture.or(file.gpu_metrics_fixture),
            gpu_metrics_interval_secs: self
                .gpu_metrics_interval_secs
                .or(file.gpu_metrics_interval_secs),
            gc_delay_secs: self.gc_delay_secs.or(file.gc_delay_secs),
            gc_disk_headroom: self.gc_disk_headroom.or(file.gc_disk_headroom),
            gc_max_sandboxes: self.gc_max_sandboxes.or(file.gc_max_sandboxes),
            disk_watch_interval_secs: self
                .disk_watch_interval_secs
                .or(file.disk_watch_interval_secs),
            registry_mirror: self.registry_mirror.or(file.registry_mirror),
            insecure_registries: self.insecure_registries.or(file.insecure_registries),
            docker_config: self.docker_config.or(file.docker_config),
            image_store_max_bytes: self.image_store_max_bytes.or(file.image_store_max_bytes),
        }
    }

    /// Reads a TOML config file with the same keys as the flags (`work_dir = "/var/lib/gantry"`).
    pub fn from_file(path: &Path) -> Result<AgentArgs, ConfigError> {
        gantry_daemon::read_toml(path)
    }

    /// The final configuration, with defaults and detected resources.
    pub fn resolve(self) -> Result<AgentConfig, ConfigError> {
        let master = self.master.ok_or(ConfigError::Invalid {
            key: "master",
            why: "the master's URL is required (--master or GANTRY_MASTER)".into(),
        })?;
        let masters = Masters::parse(&master).map_err(|e| ConfigError::Invalid {
            key: "master",
            why: e.to_string(),
        })?;
        let master = match &masters {
            Masters::Zk(zk) => zk.to_string(),
            Masters::Urls(urls) => urls.join(","),
        };
        let token = match (self.token, self.token_file) {
            (Some(t), None) => TokenSource::Value(t),
            (None, Some(path)) => TokenSource::File(path),
            (None, None) => {
                return Err(ConfigError::Invalid {
                    key: "token",
                    why: "the cluster join token is required (--token or --token-file)".into(),
                })
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    key: "token_file",
                    why: "give the join token with --token or --token-file, not both".into(),
                })
            }
        };
        let http_credentials = self
            .http_credentials
            .as_deref()
            .map(HttpCredentials::parse)
            .transpose()
            .map_err(|why| ConfigError::Invalid {
                key: "http_credentials",
                why,
            })?;
        let link_tls = resolve_link_tls(
            &masters,
            self.master_ca_file,
            self.tls_cert_file,
            self.tls_key_file,
        )?;
        let work_dir = self
            .work_dir
            .unwrap_or_else(|| PathBuf::from("/var/lib/gantry/agent"));
        let resources = resolve_resources(self.resources.as_deref(), &work_dir)?;
        let gpus_explicit =
            parse_pairs(self.resources.as_deref().unwrap_or(""), "resources")?.contains_key("gpus");
        let attributes = parse_pairs(self.attributes.as_deref().unwrap_or(""), "attributes")?;
        let mut containerizer = match self.containerizer.as_deref() {
            None => None,
            Some("native") => Some(ContainerizerKind::Native),
            Some("process") => Some(ContainerizerKind::Process),
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "containerizer",
                    why: format!("'{other}' is not a containerizer (native, process)"),
                })
            }
        };
        let docker = resolve_docker(
            self.containerizers.as_deref(),
            &mut containerizer,
            self.docker_socket,
            self.docker_allow_privileged,
            self.docker_parameters.as_deref(),
            self.docker_host_paths.as_deref(),
        )?;
        let users = UserPolicy {
            allowed: self
                .allowed_users
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(String::from)
                .collect(),
            default_user: self.default_user.unwrap_or_else(|| "nobody".into()),
            allow_root: self.allow_root_tasks.unwrap_or(false),
        };
        let gc = resolve_gc(
            self.gc_delay_secs,
            self.gc_disk_headroom,
            self.gc_max_sandboxes,
        )?;
        let disk_watch_interval = positive_secs(
            self.disk_watch_interval_secs.unwrap_or(60.0),
            "disk_watch_interval_secs",
        )?;
        if self.gpu_metrics_fixture.is_some() && self.gpu_fixture.is_none() {
            return Err(ConfigError::Invalid {
                key: "gpu_metrics_fixture",
                why: "a GPU metrics fixture needs --gpu-fixture (NVML's GPUs are read from NVML)"
                    .into(),
            });
        }
        let gpu_metrics_interval = positive_secs(
            self.gpu_metrics_interval_secs.unwrap_or(5.0),
            "gpu_metrics_interval_secs",
        )?;
        let fetcher_cache_dir = self
            .fetcher_cache_dir
            .unwrap_or_else(|| work_dir.join("fetch-cache"));
        let work_dir_images = work_dir.join("images");
        Ok(AgentConfig {
            master,
            masters,
            token,
            http_credentials,
            http_auth: true,
            link_tls,
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5051))),
            work_dir,
            hostname: self.hostname.unwrap_or_else(local_hostname),
            resources,
            attributes,
            max_backoff: Duration::from_secs_f64(self.max_backoff_secs.unwrap_or(10.0).max(0.1)),
            containerizer,
            docker,
            users,
            container_pids_max: self.container_pids_max.unwrap_or(4096),
            fetcher_cache_dir,
            fetcher_cache_bytes: self.fetcher_cache_size_mib.unwrap_or(2048) << 20,
            fetcher_ca_file: self.fetcher_ca_file,
            gpu_fixture: self.gpu_fixture,
            gpu_metrics_fixture: self.gpu_metrics_fixture,
            gpu_metrics_interval,
            gpus_explicit,
            gc,
            disk_watch_interval,
            images: crate::containerizer::native::image::ImageSettings {
                store_dir: work_dir_images,
                max_bytes: self.image_store_max_bytes.unwrap_or(10 << 30),
                mirror: self.registry_mirror.filter(|m| !m.is_empty()),
                insecure: self
                    .insecure_registries
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                docker_config: self.docker_config,
            },
        })
    }
}

/// The resolved agent configuration.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// `--master` as it may be shown (a `zk://` URL without its credentials).
    pub master: String,
    /// Where the masters are.
    pub masters: Masters,
    pub token: TokenSource,
    /// Basic credentials the agent's HTTP endpoint accepts besides the join token(s).
    pub http_credentials: Option<HttpCredentials>,
    /// Whether the agent's HTTP endpoint authenticates: always for gantry-agentd; `gantry dev`
    /// (one user on loopback) turns it off.
    pub http_auth: bool,
    /// TLS files for the link, used when `master` is `https://` (or `wss://`).
    pub link_tls: LinkTlsFiles,
    pub listen: SocketAddr,
    pub work_dir: PathBuf,
    pub hostname: String,
    pub resources: Resources,
    pub attributes: BTreeMap<String, String>,
    pub max_backoff: Duration,
    /// `None`: pick at start (native when root with usable cgroups).
    pub containerizer: Option<ContainerizerKind>,
    /// The Docker containerizer next to it (`--containerizers ...,docker`).
    pub docker: Option<DockerConfig>,
    pub users: UserPolicy,
    pub container_pids_max: u64,
    pub fetcher_cache_dir: PathBuf,
    pub fetcher_cache_bytes: u64,
    /// Extra CAs (PEM) trusted by the fetcher for `https://`.
    pub fetcher_ca_file: Option<PathBuf>,
    /// The GPU fixture to read instead of NVML.
    pub gpu_fixture: Option<PathBuf>,
    /// The GPU metrics fixture read instead of NVML (only with `gpu_fixture`).
    pub gpu_metrics_fixture: Option<PathBuf>,
    /// How often the GPUs are read for the per-task GPU metrics.
    pub gpu_metrics_interval: Duration,
    /// `--resources` named `gpus`: offer that many, whatever the inventory finds healthy.
    pub gpus_explicit: bool,
    /// When ended sandboxes are removed.
    pub gc: GcPolicy,
    /// How often ended sandboxes are collected.
    pub disk_watch_interval: Duration,
    /// Images in the native containerizer: the layer store, registries, credentials.
    pub images: crate::containerizer::native::image::ImageSettings,
}

/// Whether `master` is reached over TLS.
pub fn is_tls_url(master: &str) -> bool {
    master.starts_with("https://") || master.starts_with("wss://")
}

/// Whether the link may need TLS: some URL of the list is `https://`, or ZooKeeper names the
/// leader (whose `MasterInfo` says its scheme).
pub fn may_use_tls(masters: &Masters) -> bool {
    match masters {
        Masters::Urls(urls) => urls.iter().any(|u| is_tls_url(u)),
        Masters::Zk(_) => true,
    }
}

/// The link's TLS files; they only make sense with an `https://` master, and the certificate and
/// key come together.
fn resolve_link_tls(
    masters: &Masters,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<LinkTlsFiles, ConfigError> {
    let client_identity = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::Invalid {
                key: "tls_key_file",
                why: "--tls-cert-file needs --tls-key-file".into(),
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError::Invalid {
                key: "tls_cert_file",
                why: "--tls-key-file needs --tls-cert-file".into(),
            })
        }
    };
    let files = LinkTlsFiles {
        master_ca_file: ca,
        client_identity,
    };
    if let (false, Masters::Urls(urls)) = (files == LinkTlsFiles::default(), masters) {
        if !may_use_tls(masters) {
            return Err(ConfigError::Invalid {
                key: "master",
                why: format!(
                    "TLS files are given but the master URL {} is not https://; the link \
                     would not use them",
                    urls.join(",")
                ),
            });
        }
    }
    Ok(files)
}

/// A duration in seconds that must be a positive number.
fn positive_secs(v: f64, key: &'static str) -> Result<Duration, ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(ConfigError::Invalid {
            key,
            why: format!("must be a positive number of seconds, got {v}"),
        })
    }
}

/// The sandbox GC settings, with Mesos's defaults.
fn resolve_gc(
    delay: Option<f64>,
    headroom: Option<f64>,
    max_count: Option<usize>,
) -> Result<GcPolicy, ConfigError> {
    let d = GcPolicy::default();
    let delay = match delay {
        None => d.delay,
        Some(v) if v.is_finite() && v >= 0.0 => Duration::from_secs_f64(v),
        Some(v) => {
            return Err(ConfigError::Invalid {
                key: "gc_delay_secs",
                why: format!("must be a number of seconds of at least 0, got {v}"),
            })
        }
    };
    let disk_headroom = headroom.unwrap_or(d.disk_headroom);
    if !(0.0..=1.0).contains(&disk_headroom) {
        return Err(ConfigError::Invalid {
            key: "gc_disk_headroom",
            why: format!("must be between 0 and 1, got {disk_headroom}"),
        });
    }
    Ok(GcPolicy {
        delay,
        disk_headroom,
        max_count: max_count.unwrap_or(d.max_count),
    })
}

/// The containerizer back ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerizerKind {
    Native,
    Process,
}

impl AgentConfig {
    /// What the agent registers with, before hardware discovery (see `inventory`).
    pub fn info(&self, port: u16) -> AgentInfo {
        AgentInfo {
            hostname: self.hostname.clone(),
            port,
            resources: self.resources.clone(),
            attributes: self.attributes.clone(),
            numa_domains: Vec::new(),
            gpus: Vec::new(),
            topology_warnings: Vec::new(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..AgentInfo::default()
        }
    }
}

fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn parse_pairs(s: &str, key: &'static str) -> Result<BTreeMap<String, String>, ConfigError> {
    s.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| ConfigError::Invalid {
                    key,
                    why: format!("'{p}' is not name:value"),
                })
        })
        .collect()
}

/// Parses Mesos `--resources` syntax and detects anything missing: cpus from the CPU count, mem as
/// total memory less 1 GiB (or half, on small machines), disk from the work dir's file system, ports
/// 31000-32000 (the Mesos defaults).
pub fn resolve_resources(spec: Option<&str>, work_dir: &Path) -> Result<Resources, ConfigError> {
    let given = parse_pairs(spec.unwrap_or(""), "resources")?;
    let scalar = |name: &'static str, detect: &dyn Fn() -> f64| -> Result<f64, ConfigError> {
        match given.get(name) {
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| *x >= 0.0 && x.is_finite())
                .ok_or_else(|| ConfigError::Invalid {
                    key: "resources",
                    why: format!("{name}: '{v}' is not a non-negative number"),
                }),
            None => Ok(detect()),
        }
    };
    for k in given.keys() {
        if !["cpus", "mem", "disk", "gpus", "ports"].contains(&k.as_str()) {
            return Err(ConfigError::Invalid {
                key: "resources",
                why: format!("unknown resource '{k}' (known: cpus, mem, disk, gpus, ports)"),
            });
        }
    }
    let ports = match given.get("ports") {
        Some(p) => p.parse::<PortRanges>().map_err(|e| ConfigError::Invalid {
            key: "resources",
            why: e.to_string(),
        })?,
        None => PortRanges::new([(31000, 32000)]),
    };
    Ok(Resources {
        cpus: scalar("cpus", &|| {
            std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
        })?,
        mem: scalar("mem", &detect_mem_mib)?,
        disk: scalar("disk", &|| detect_disk_mib(work_dir))?,
        gpus: scalar("gpus", &|| 0.0)? as u32,
        ports,
    })
}

fn detect_mem_mib() -> f64 {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(1024.0 * 1024.0);
    let total = total_kib / 1024.0;
    (total - (1024.0f64).min(total / 2.0)).floor()
}

fn detect_disk_mib(work_dir: &Path) -> f64 {
    let probe = work_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    nix::sys::statvfs::statvfs(probe)
        .map(|s| (s.blocks_available() as f64 * s.fragment_size() as f64 / 1048576.0).floor())
        .unwrap_or(10240.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse_and_detect() {
        let r = resolve_resources(
            Some("cpus:2;mem:1024;ports:[31000-31009]"),
            Path::new("/tmp"),
        )
        .unwrap();
        assert_eq!(r.cpus, 2.0);
        assert_eq!(r.mem, 1024.0);
        assert!(r.disk > 0.0);
        assert_eq!(r.ports.len(), 10);
        let d = resolve_resources(None, Path::new("/tmp")).unwrap();
        assert!(d.cpus >= 1.0 && d.mem > 0.0);
        assert_eq!(d.ports.to_string(), "[31000-32000]");
        let e = resolve_resources(Some("cpus:-1"), Path::new("/tmp")).unwrap_err();
        assert!(e.to_string().contains("cpus"), "{e}");
        assert!(resolve_resources(Some("bogus:1"), Path::new("/tmp")).is_err());
    }

    #[test]
    fn flags_win_over_the_file() {
        let flags = AgentArgs {
            master: Some("http://a".into()),
            ..Default::default()
        };
        let file: AgentArgs =
            toml::from_str("master = \"http://b\"\ntoken = \"t\"\nwork_dir = \"/x\"").unwrap();
        let merged = flags.or(file);
        assert_eq!(merged.master.as_deref(), Some("http://a"));
        let fixture: AgentArgs = toml::from_str("gpu_fixture = \"/f.json\"").unwrap();
        assert_eq!(
            AgentArgs::default().or(fixture).gpu_fixture,
            Some(PathBuf::from("/f.json"))
        );
        assert_eq!(merged.token.as_deref(), Some("t"));
        assert!(toml::from_str::<AgentArgs>("bogus = 1").is_err());
    }

    #[test]
    fn http_credentials_are_user_and_password_and_auth_is_on() {
        let args = |c: Option<&str>| AgentArgs {
            master: Some("http://m".into()),
            token: Some("t".into()),
            work_dir: Some("/tmp".into()),
            resources: Some("cpus:1;mem:64;disk:64".into()),
            http_credentials: c.map(String::from),
            ..Default::default()
        };
        let none = args(None).resolve().unwrap();
        assert!(none.http_auth && none.http_credentials.is_none());
        let c = args(Some("ops:s3cret")).resolve().unwrap();
        assert!(c.http_auth);
        assert_eq!(
            c.http_credentials,
            Some(HttpCredentials {
                user: "ops".into(),
                password: "s3cret".into()
            })
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let e = args(Some("ops")).resolve().unwrap_err().to_string();
        assert!(e.starts_with("http_credentials"), "{e}");
        let file: AgentArgs = toml::from_str("http_credentials = \"a:b\"").unwrap();
        assert_eq!(
            AgentArgs::default().or(file).http_credentials.as_deref(),
            Some("a:b")
        );
    }

    #[test]
    fn an_explicit_gpu_count_is_noticed() {
        let args = |r: &str| AgentArgs {
            master: Some("http://m".into()),
            token: Some("t".into()),
            work_dir: Some("/tmp".into()),
            resources: Some(r.into()),
            ..Default::default()
        };
        assert!(args("cpus:1;gpus:0").resolve().unwrap().gpus_explicit);
        assert!(!args("cpus:1").resolve().unwrap().gpus_explicit);
    }

    #[test]
    fn gpu_metrics_fixtures_go_with_gpu_fixtures_and_intervals_are_positive() {
        let args = || AgentArgs {
            master: Some("http://m".into()),
            token: Some("t".into()),
            work_dir: Some("/tmp".into()),
            resources: Some("cpus:1".into()),
            ..Default::default()
        };
        assert_eq!(
            args().resolve().unwrap().gpu_metrics_interval,
            Duration::from_secs(5)
        );
        let alone = AgentArgs {
            gpu_metrics_fixture: Some("/m.json".into()),
            ..args()
        };
        let e = alone.resolve().unwrap_err();
        assert!(e.to_string().contains("--gpu-fixture"), "{e}");
        let both = AgentArgs {
            gpu_fixture: Some("/g.json".into()),
            gpu_metrics_fixture: Some("/m.json".into()),
            gpu_metrics_interval_secs: Some(0.25),
            ..args()
        }
        .resolve()
        .unwrap();
        assert_eq!(both.gpu_metrics_fixture, Some(PathBuf::from("/m.json")));
        assert_eq!(both.gpu_metrics_interval, Duration::from_millis(250));
        let zero = AgentArgs {
            gpu_metrics_interval_secs: Some(0.0),
            ..args()
        };
        assert!(zero.resolve().is_err());
    }

    #[test]
    fn token_files_and_tls_files_come_in_valid_combinations() {
        let base = || AgentArgs {
            master: Some("https://m:5050".into()),
            work_dir: Some("/tmp".into()),
            resources: Some("cpus:1;mem:64;disk:64".into()),
            ..Default::default()
        };
        let e = base().resolve().unwrap_err().to_string();
        assert!(e.starts_with("token") && e.contains("--token-file"), "{e}");
        let both = AgentArgs {
            token: Some("t".into()),
            token_file: Some("/t".into()),
            ..base()
        };
        let e = both.resolve().unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        let file: AgentArgs = toml::from_str(
            "token_file = \"/t\"\nmaster_ca_file = \"/ca.pem\"\ntls_cert_file = \"/c.pem\"\n\
             tls_key_file = \"/k.pem\"",
        )
        .unwrap();
        let c = base().or(file).resolve().unwrap();
        assert!(matches!(&c.token, TokenSource::File(p) if p == Path::new("/t")));
        assert_eq!(c.link_tls.master_ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(
            c.link_tls.client_identity,
            Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem")))
        );
        let plain = AgentArgs {
            master: Some("http://m:5050".into()),
            token: Some("t".into()),
            master_ca_file: Some("/ca.pem".into()),
            ..base()
        };
        let e = plain.resolve().unwrap_err().to_string();
        assert!(e.starts_with("master") && e.contains("not https"), "{e}");
        let half = AgentArgs {
            token: Some("t".into()),
            tls_key_file: Some("/k.pem".into()),
            ..base()
        };
        let e = half.resolve().unwrap_err().to_string();
        assert!(e.starts_with("tls_cert_file"), "{e}");
    }

    #[test]
    fn master_is_a_url_a_list_or_zookeeper_and_tls_files_fit_any_https_one() {
        let with = |master: &str| AgentArgs {
            master: Some(master.into()),
            token: Some("t".into()),
            master_ca_file: Some("/ca.pem".into()),
            work_dir: Some("/tmp".into()),
            resources: Some("cpus:1;mem:64;disk:64".into()),
            ..Default::default()
        };
        let list = with("http://a:5050,https://b:5050").resolve().unwrap();
        assert_eq!(
            list.masters,
            Masters::Urls(vec!["http://a:5050".into(), "https://b:5050".into()])
        );
        assert!(may_use_tls(&list.masters));
        let zk = with("zk://u:secret@z1:2181,z2:2181/gantry")
            .resolve()
            .unwrap();
        assert!(matches!(&zk.masters, Masters::Zk(z) if z.path == "/gantry"));
        assert_eq!(zk.master, "zk://z1:2181,z2:2181/gantry");
        let e = with("http://a:5050,http://b:5050")
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not https"), "{e}");
        let e = with("m1:5050").resolve().unwrap_err().to_string();
        assert!(e.starts_with("master") && e.contains("zk://"), "{e}");
    }
}
