//! Starting a master: open the store, rebuild state from it, then serve the APIs and run the
//! service controller and the agent health checker.

use crate::api::guard::Security;
use crate::auth::{self, principals, Authenticator};
use crate::cluster::{AgentEntry, Core, CoreError};
use crate::config::MasterConfig;
use crate::events::bus::Numbered;
use crate::join_tokens::{JoinTokenError, JoinTokens, TOKEN_FILE_POLL};
use crate::listener::{MasterListener, Peer};
use crate::services::app_definition::AppDefinition;
use crate::state::MasterState;
use crate::store::records::AgentLifecycle;
use crate::store::{AsyncStore, SqliteStore, StoreError, Write};
use gantry_daemon::tls_files::TlsFileError;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;

/// A failure to start the master.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("stored app '{id}' cannot be read: {source}")]
    CorruptApp {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Batch(#[from] crate::batch::state::LoadError),
    #[error(transparent)]
    Principals(#[from] crate::auth::PrincipalsError),
    #[error("the admin token in {path}: {source}")]
    AdminToken {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    JoinToken(#[from] JoinTokenError),
    #[error(transparent)]
    Tls(#[from] TlsFileError),
    #[error(transparent)]
    Dns(#[from] crate::dns::DnsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running master.
pub struct MasterHandle {
    pub core: Arc<Core>,
    /// Where the API listens.
    pub addr: SocketAddr,
    /// Where the DNS server listens (UDP and TCP), when it is on.
    pub dns_addr: Option<SocketAddr>,
}

/// Who may use the APIs: the principals file and `--http-credentials`; with neither, a bootstrap
/// admin token in the state dir. Nobody needs credentials when authentication is off.
pub(crate) fn authenticator(cfg: &MasterConfig) -> Result<Authenticator, MasterError> {
    if !cfg.auth.enabled {
        tracing::warn!("API authentication is off (gantry dev): anyone who reaches the port may change anything");
        return Ok(Authenticator::off());
    }
    let mut all = Vec::new();
    if let Some(f) = &cfg.auth.principals_file {
        all.extend(principals::read_file(f)?);
    }
    if let Some(c) = &cfg.auth.http_credentials {
        all.push(principals::from_credentials(c)?);
    }
    if all.is_empty() {
        let admin =
            auth::bootstrap_admin(&cfg.state_dir).map_err(|source| MasterError::AdminToken {
                path: cfg.state_dir.join("admin-token"),
                source,
            })?;
        all.push(admin);
    }
    principals::check(&all).map_err(|why| {
        MasterError::Principals(crate::auth::PrincipalsError::Invalid {
            path: cfg.auth.principals_file.clone().unwrap_or_default(),
            why,
        })
    })?;
    tracing::info!(principals = all.len(), "API authentication on");
    Ok(Authenticator::with(all))
}

/// Rebuilds the in-memory state from the store. Agents known there must re-register.
async fn load(store: &AsyncStore, job_history: usize) -> Result<Loaded, MasterError> {
    let snap = store.load().await?;
    let events = snap
        .events
        .into_iter()
        .map(|e| Numbered {
            id: e.id,
            event_type: e.event_type,
            body: e.body,
        })
        .collect();
    let mut state = MasterState::default();
    for (id, json) in snap.apps {
        let app: AppDefinition =
            serde_json::from_value(json).map_err(|source| MasterError::CorruptApp {
                id: id.clone(),
                source,
            })?;
        state.services.apps.insert(id, app);
    }
    for (id, version, json) in snap.app_versions {
        match serde_json::from_value::<AppDefinition>(json) {
            Ok(app) => {
                state
                    .services
                    .versions
                    .entry(id)
                    .or_default()
                    .insert(version, app);
            }
            Err(e) => {
                tracing::warn!(app = %id, %version, error = %e, "ignoring an unreadable stored app version")
            }
        }
    }
    for (id, json) in snap.groups {
        let group = serde_json::from_value(json).map_err(|source| MasterError::CorruptApp {
            id: format!("group {id}"),
            source,
        })?;
        state.services.groups.insert(id, group);
    }
    for (id, json) in snap.deployments {
        let plan = serde_json::from_value(json).map_err(|source| MasterError::CorruptApp {
            id: format!("deployment {id}"),
            source,
        })?;
        state.services.deployments.insert(id, plan);
    }
    let st = &mut state.cluster;
    for t in snap.tasks {
        if t.state.is_terminal() {
            // An end its owner had not recorded yet (see `TaskOwner::keeps_end`).
            st.ended.push(t);
        } else {
            st.put_task(t);
        }
    }
    for a in snap.agents {
        let recovering = a.lifecycle == AgentLifecycle::Active;
        st.agents
            .insert(a.id.clone(), AgentEntry::new(a, None, recovering));
    }
    state.batch =
        crate::batch::state::BatchState::load(snap.jobs, snap.runs, &snap.meta, job_history)?;
    state.frameworks = crate::frameworks::FrameworkState::load(&snap.meta);
    let mut master_id = None;
    let mut subscriptions = Vec::new();
    for (k, v) in snap.meta {
        if k == "master_id" {
            master_id = Some(v);
        } else if let Some(url) = k.strip_prefix(crate::events::callbacks::META_PREFIX) {
            subscriptions.push(url.to_owned());
        } else if k.starts_with("last_failure:") {
            match serde_json::from_str(&v) {
                Ok(rec) => st.push_completed(rec),
                Err(e) => {
                    tracing::warn!(key = %k, error = %e, "ignoring an unreadable stored failure")
                }
            }
        }
    }
    Ok(Loaded {
        state,
        master_id,
        events,
        subscriptions,
    })
}

/// What the store gave back at start-up.
struct Loaded {
    state: MasterState,
    master_id: Option<String>,
    /// The event stream's kept history.
    events: Vec<Numbered>,
    /// The `/v2/eventSubscriptions` callback URLs.
    subscriptions: Vec<String>,
}

/// Starts a master on the current runtime and returns once it listens.
pub async fn start(cfg: MasterConfig) -> Result<MasterHandle, MasterError> {
    let sqlite = SqliteStore::open(&cfg.state_dir)?;
    let store = AsyncStore::new(Arc::new(sqlite));
    let mut cfg = cfg;
    let bound = bind(&cfg).await?;
    cfg.listen = bound.addr;
    let agent_certs = cfg.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some());
    let led = lead(cfg, store).await?;
    serve(bound.listener, led.router);
    tracing::info!(
        addr = %bound.addr,
        tls = bound.tls,
        agent_client_certs = agent_certs,
        join_tokens = led.core.tokens.len(),
        "master listening"
    );
    Ok(MasterHandle {
        core: led.core,
        addr: bound.addr,
        dns_addr: led.dns_addr,
    })
}

/// The API's listening socket, bound (and TLS set up) but not served yet.
pub struct Bound {
    pub listener: MasterListener,
    /// Where it listens (the port chosen, for `--listen` port 0).
    pub addr: SocketAddr,
    /// HTTPS and WSS.
    pub tls: bool,
}

/// Binds `cfg.listen`.
pub async fn bind(cfg: &MasterConfig) -> Result<Bound, MasterError> {
    let tls = cfg
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()?;
    let listen_err = |source| MasterError::Listen {
        addr: cfg.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(listen_err)?;
    let addr = listener.local_addr().map_err(listen_err)?;
    let tls_on = tls.is_some();
    let listener =
        MasterListener::new(listener, tls, cfg.limits.max_connections).map_err(listen_err)?;
    Ok(Bound {
        listener,
        addr,
        tls: tls_on,
    })
}

/// Serves `app` on `listener` until the process ends.
pub fn serve(listener: MasterListener, app: axum::Router) {
    tokio::spawn(async move {
        let svc = app.into_make_service_with_connect_info::<Peer>();
        if let Err(e) = axum::serve(listener, svc).await {
            tracing::error!(error = %e, "API server stopped");
        }
    });
}

/// A leading master's parts: its state and the router of its APIs.
pub struct Led {
    pub core: Arc<Core>,
    /// Every API, to be served.
    pub router: axum::Router,
    /// Where the DNS server listens, when it is on.
    pub dns_addr: Option<SocketAddr>,
}

/// What makes a master the leader, on the one master and on an HA master that won the election
/// alike: loads `store`, rebuilds the state from it (deployments, job schedules, framework timers
/// resume from what is stored), and starts the controllers, the DNS server and the agent health
/// checker. `cfg.listen` must be the bound address. Agents re-register by themselves.
pub async fn lead(cfg: MasterConfig, store: AsyncStore) -> Result<Led, MasterError> {
    let Loaded {
        state,
        master_id,
        events,
        subscriptions,
    } = load(&store, cfg.job_history).await?;
    let master_id = match master_id {
        Some(id) => id,
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            store
                .apply(vec![Write::PutMeta {
                    key: "master_id".into(),
                    value: id.clone(),
                }])
                .await?;
            id
        }
    };
    tracing::info!(
        apps = state.services.apps.len(),
        tasks = state.cluster.tasks().len(),
        agents = state.cluster.agents.len(),
        events = events.len(),
        "state recovered from the store"
    );
    let tokens = Arc::new(JoinTokens::from_config(&cfg)?);
    tokens.watch(TOKEN_FILE_POLL);
    let auth = authenticator(&cfg)?;
    let security = Arc::new(Security::new(auth, cfg.limits, store.clone()));
    let core = Core::new(cfg, tokens, master_id, store, state, events);

    for url in &subscriptions {
        core.callbacks.add(url);
    }
    let fan_out = core.clone();
    tokio::spawn(async move {
        crate::events::callbacks::run(fan_out.events(), &fan_out.callbacks).await;
    });
    let router = crate::api::router(core.clone(), security);
    let dns_addr = crate::dns::start(core.clone()).await?;
    tokio::spawn(crate::services::controller::run(core.clone()));
    tokio::spawn(crate::services::readiness::run(core.clone()));
    tokio::spawn(crate::batch::controller::run(core.clone()));
    crate::frameworks::start(core.clone()).await;
    let checker = core.clone();
    tokio::spawn(async move {
        let every = (checker.cfg.heartbeat_interval / 2).max(std::time::Duration::from_millis(50));
        let mut last = Instant::now();
        loop {
            tokio::time::sleep(every).await;
            // A master that was not running (stopped, swapped out, suspended VM) heard no
            // heartbeats through no fault of the agents: start their clocks again.
            let gap = last.elapsed();
            last = Instant::now();
            if gap > every * 4 {
                checker.forgive_stall(gap).await;
            }
            if let Err(e) = checker.check_agents().await {
                tracing::error!(error = %e, "agent health check failed");
            }
        }
    });
    Ok(Led {
        core,
        router,
        dns_addr,
    })
}
