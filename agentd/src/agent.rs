//! Starting an agent: open the work dir, re-adopt checkpointed tasks, discover the hardware (NUMA
//! domains, GPUs and their health), serve `/state`, dial the master.

use crate::config::AgentConfig;
use crate::containerizer::process::ProcessContainerizer;
use crate::containerizer::Containerizer;
use crate::http::{router, AgentHttp};
use crate::inventory::{self, InventoryError, HEALTH_POLL_INTERVAL};
use crate::link::{self, LinkConfig};
use crate::recovery::{RecoveryError, WorkDir};
use crate::tasks::TaskTable;
use std::net::SocketAddr;
use std::path::PathBuf;
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
    #[error(transparent)]
    Inventory(#[from] InventoryError),
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
    let wd = WorkDir::open(&cfg.work_dir)?;
    let shim = match shim_exe {
        Some(p) => p,
        None => std::env::current_exe().map_err(AgentError::SelfExe)?,
    };
    let containerizer: Arc<dyn Containerizer> = Arc::new(ProcessContainerizer::new(shim));
    let (outbox_tx, outbox_rx) = mpsc::unbounded_channel();
    let tasks = TaskTable::new(wd, containerizer, cfg.hostname.clone(), outbox_tx);
    tasks.recover();

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
    discovered.apply_to(&mut info, cfg.gpus_explicit);
    let (info_tx, info_rx) = watch::channel(info);
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
        master: cfg.master.clone(),
        started_at: gantry_proto::time::now_secs(),
        registered: reg_rx.clone(),
    };
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(http)).await {
            tracing::error!(error = %e, "agent HTTP server stopped");
        }
    });
    let link_cfg = LinkConfig {
        master: cfg.master.clone(),
        token: cfg.token.clone(),
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
