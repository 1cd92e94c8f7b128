//! Starting an agent: open the work dir, re-adopt checkpointed tasks, discover the hardware (NUMA
//! domains, GPUs and their health), serve `/state`, dial the master.

use crate::config::{may_use_tls, AgentConfig, ContainerizerKind};
use crate::containerizer::docker::DockerContainerizer;
use crate::containerizer::native::cgroup::{CgroupLayout, HostMode};
use crate::containerizer::native::spec::PRIVATE_TMP;
use crate::containerizer::native::{reach, NativeConfig, NativeContainerizer};
use crate::containerizer::process::ProcessContainerizer;
use crate::containerizer::routed::RoutedContainerizer;
use crate::containerizer::Containerizer;
use crate::fetcher::{Fetcher, FetcherSetupError};
use crate::http::{router, AgentHttp};
use crate::http_auth::AgentAuth;
use crate::inventory::{self, InventoryError, HEALTH_POLL_INTERVAL};
use crate::link::tls::LinkTls;
use crate::link::token::TokenFileError;
use crate::link::{self, LinkConfig};
use crate::recovery::gc::{self, GcPolicy};
use crate::recovery::{dir_name, RecoveryError, WorkDir};
use crate::tasks::TaskTable;
use gantry_daemon::tls_files::TlsFileError;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// A failure to start the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    WorkDir(#[from] RecoveryError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find the agent's own executable (for the executor shim): {0}")]
    SelfExe(std::io::Error),
    #[error("--containerizer native: {0}")]
    Native(String),
    #[error("--containerizers docker: {0}")]
    Docker(String),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Fetcher(#[from] FetcherSetupError),
    #[error("{0}")]
    Sandboxes(String),
    #[error(transparent)]
    TokenFile(#[from] TokenFileError),
    #[error(transparent)]
    Tls(#[from] TlsFileError),
}

/// Can the native containerizer run here? The cgroup layout, or why not.
fn native_usable() -> Result<CgroupLayout, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("the agent is not running as root".into());
    }
    let layout = CgroupLayout::detect()?;
    if layout.mode != HostMode::Unified && !layout.missing_v1().is_empty() {
        return Err(format!(
            "cgroup v1 controllers not mounted: {}",
            layout.missing_v1().join(", ")
        ));
    }
    Ok(layout)
}

/// `--containerizer`, or the default: native when root with usable cgroups, else process. Says
/// which, and why, in one log line.
fn choose_containerizer(
    cfg: &AgentConfig,
    shim: PathBuf,
    wd: &WorkDir,
) -> Result<Arc<dyn Containerizer>, AgentError> {
    let native = |layout: CgroupLayout| -> Result<Arc<dyn Containerizer>, AgentError> {
        check_sandboxes_reachable(cfg, wd)?;
        Ok(Arc::new(NativeContainerizer::new(NativeConfig {
            shim_exe: shim.clone(),
            layout,
            cgroup_parent: "gantry".into(),
            users: cfg.users.clone(),
            pids_max: Some(cfg.container_pids_max),
            images: Some(Arc::new(
                crate::containerizer::native::image::pull::Images::new(cfg.images.clone()),
            )),
        })))
    };
    match (cfg.containerizer, native_usable()) {
        (Some(ContainerizerKind::Process), _) => {
            tracing::info!(
                containerizer = "process",
                "containerizer: process (--containerizer process)"
            );
            Ok(Arc::new(ProcessContainerizer::new(shim)))
        }
        (Some(ContainerizerKind::Native), Err(why)) => Err(AgentError::Native(why)),
        (Some(ContainerizerKind::Native), Ok(layout)) => {
            tracing::info!(
                containerizer = "native",
                "containerizer: native (--containerizer native; {})",
                layout.describe()
            );
            native(layout)
        }
        (None, Ok(layout)) => {
            tracing::info!(
                containerizer = "native",
                "containerizer: native (default: running as root; {})",
                layout.describe()
            );
            native(layout)
        }
        (None, Err(why)) => {
            tracing::warn!(containerizer = "process", "containerizer: process, without isolation (default, because {why}; --containerizer native needs root and cgroups)");
            Ok(Arc::new(ProcessContainerizer::new(shim)))
        }
    }
}

/// Native tasks run as the agent's default user (or the one they ask for): that user must be able
/// to enter the sandboxes, or every task fails at its `chdir`. Checked at start for the default user.
fn check_sandboxes_reachable(cfg: &AgentConfig, wd: &WorkDir) -> Result<(), AgentError> {
    let (user, _) = cfg
        .users
        .resolve(None)
        .map_err(|e| AgentError::Native(e.to_string()))?;
    let sandboxes = wd.sandboxes_dir();
    reach::check_reachable(&sandboxes, &user, Path::new(PRIVATE_TMP))
        .map_err(|u| AgentError::Sandboxes(u.explain(&user, &sandboxes)))
}

/// Collects ended sandboxes at start and every `interval` (on the blocking pool: it walks the disk).
fn spawn_sandbox_gc(tasks: Arc<TaskTable>, policy: GcPolicy, interval: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let t = tasks.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let wd = t.work_dir();
                let active: HashSet<String> = t
                    .list()
                    .iter()
                    .map(|(info, _)| dir_name(&info.task_id))
                    .collect();
                gc::collect(&wd.sandboxes_dir(), &active, &policy)
            })
            .await;
        }
    });
}

/// A running agent.
pub struct AgentHandle {
    pub tasks: Arc<TaskTable>,
    /// The address `/state` is served on.
    pub http_addr: SocketAddr,
    /// True while registered with a master.
    pub registered: watch::Receiver<bool>,
}

/// Starts an agent on the current tokio runtime. `shim_exe` is the binary that holds the executor
/// shim (`None`: this process's own executable).
pub async fn start(cfg: AgentConfig, shim_exe: Option<PathBuf>) -> Result<AgentHandle, AgentError> {
    // The link's files are checked before anything starts (the token file is read again at every
    // connection).
    cfg.token.read()?;
    let tls = if may_use_tls(&cfg.masters) {
        Some(Arc::new(LinkTls::new(&cfg.link_tls)?))
    } else {
        None
    };
    let wd = WorkDir::open(&cfg.work_dir)?;
    let shim = match shim_exe {
        Some(p) => p,
        None => std::env::current_exe().map_err(AgentError::SelfExe)?,
    };
    let mut containerizer = choose_containerizer(&cfg, shim, &wd)?;
    let mut docker_networks = Vec::new();
    if let Some(docker) = &cfg.docker {
        let d = DockerContainerizer::connect(docker).map_err(AgentError::Docker)?;
        docker_networks = d.user_networks().map_err(AgentError::Docker)?;
        tracing::info!(socket = %docker.socket.display(), networks = ?docker_networks, "containerizer: docker next to {}", containerizer.name());
        containerizer = Arc::new(RoutedContainerizer::new(containerizer, Arc::new(d)));
    }
    let containerizer_names = containerizer.names();
    let (outbox_tx, outbox_rx) = mpsc::unbounded_channel();
    let tasks = TaskTable::new(wd, containerizer, cfg.hostname.clone(), outbox_tx);
    tasks.set_fetcher(Arc::new(Fetcher::with_ca_file(
        cfg.fetcher_cache_dir.clone(),
        cfg.fetcher_cache_bytes,
        cfg.fetcher_ca_file.as_deref(),
    )?));
    tasks.recover();
    spawn_sandbox_gc(tasks.clone(), cfg.gc, cfg.disk_watch_interval);

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let http_addr = listener.local_addr().map_err(|source| AgentError::Listen {
        addr: cfg.listen,
        source,
    })?;
    let (gpu_inventory, discovered) = inventory::discover(cfg.gpu_fixture.as_deref())?;
    let mut info = cfg.info(http_addr.port());
    info.containerizers = containerizer_names.iter().map(|n| n.to_string()).collect();
    info.networks.extend(docker_networks);
    // The native containerizer runs Docker/OCI images (Mesos's `--image_providers=docker`).
    if containerizer_names.contains(&"native") {
        info.image_providers = vec!["docker".into()];
    }
    discovered.apply_to(&mut info, cfg.gpus_explicit);
    let (info_tx, info_rx) = watch::channel(info);
    let gpu_metrics_source = if discovered.gpus.is_empty() {
        "no GPUs".to_string()
    } else {
        let source = gantry_gpu::open_metrics_source(
            cfg.gpu_fixture.as_deref(),
            cfg.gpu_metrics_fixture.as_deref(),
        )
        .map_err(InventoryError::Gpu)?;
        let m = inventory::spawn_gpu_sampler(source, &tasks, cfg.gpu_metrics_interval);
        m.source().to_string()
    };
    if !discovered.gpus.is_empty() {
        inventory::spawn_health_poller(
            gpu_inventory,
            info_tx,
            cfg.gpus_explicit,
            HEALTH_POLL_INTERVAL,
        );
    }
    let (reg_tx, reg_rx) = watch::channel(false);
    let http = AgentHttp {
        tasks: tasks.clone(),
        info: info_rx.clone(),
        gpu_source: discovered.gpu_source.clone(),
        gpu_metrics_source,
        master: cfg.master.clone(),
        started_at: gantry_proto::time::now_secs(),
        registered: reg_rx.clone(),
        auth: if cfg.http_auth {
            AgentAuth::new(cfg.token.clone(), cfg.http_credentials.clone())
        } else {
            tracing::warn!("the agent's HTTP endpoint does not authenticate (gantry dev)");
            AgentAuth::off()
        },
    };
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(http)).await {
            tracing::error!(error = %e, "agent HTTP server stopped");
        }
    });
    let link_cfg = LinkConfig {
        masters: cfg.masters.clone(),
        token: cfg.token.clone(),
        tls,
        max_backoff: cfg.max_backoff,
    };
    tokio::spawn(link::run(
        link_cfg,
        info_rx,
        tasks.clone(),
        outbox_rx,
        reg_tx,
    ));
    tracing::info!(%http_addr, master = %cfg.master, work_dir = %cfg.work_dir.display(), "agent started");
    Ok(AgentHandle {
        tasks,
        http_addr,
        registered: reg_rx,
    })
}
