//! The agent's one long-lived connection to the master: a WebSocket the agent dials (so agents
//! behind NAT work), over TLS for an `https://` master, authenticated by the cluster join token.
//! Registration, heartbeats and status updates go up (and `UPDATE_GPUS` when GPU health changes);
//! launches, kills and acknowledgements come down. Reconnects with backoff, to the leading
//! master: the one ZooKeeper names (`zk://`), or the first of a list that accepts the agent
//! (a standby's `307` is followed to the leader); see [`leader`].

mod backoff;
pub mod leader;
pub mod tls;
pub mod token;

use crate::tasks::TaskTable;
use backoff::Backoff;
use futures_util::{SinkExt, StreamExt};
use gantry_daemon::masters::Masters;
use gantry_proto::{AgentInfo, AgentMessage, MasterMessage, StatusUpdate, PROTOCOL_VERSION};
use leader::LeaderSource;
use std::sync::Arc;
use std::time::Duration;
use tls::LinkTls;
use token::{TokenFileError, TokenSource};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use gantry_proto::messages::AGENT_CONNECT_PATH as CONNECT_PATH;

/// Link settings.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// Where the masters are: base URLs (`http://host:5050`, `https://host:5050`, or `ws://`,
    /// `wss://`), or ZooKeeper.
    pub masters: Masters,
    /// The join token, or the file it is read from at each connection.
    pub token: TokenSource,
    /// For an `https://` master (with `zk://`: in case the leader is one).
    pub tls: Option<Arc<LinkTls>>,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
}

/// Whether the agent is registered with a master right now.
pub type Registered = watch::Receiver<bool>;

/// The WebSocket URL for a master base URL.
pub fn connect_url(master: &str) -> String {
    let base = master.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        format!("ws://{base}")
    };
    format!("{base}{CONNECT_PATH}")
}

/// Runs the link forever: find the leader, connect, register, serve, and on any failure (or a
/// change of leader) reconnect with backoff. `info` is what the agent registers with; when it
/// changes (GPU health), the master is told.
pub async fn run(
    cfg: LinkConfig,
    mut info: watch::Receiver<AgentInfo>,
    tasks: Arc<TaskTable>,
    mut outbox: mpsc::UnboundedReceiver<StatusUpdate>,
    registered: watch::Sender<bool>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), cfg.max_backoff);
    let mut leaders = LeaderSource::new(&cfg.masters);
    loop {
        let mut master = leaders.target().await;
        let mut hops = 0;
        let outcome = loop {
            let result = tokio::select! {
                r = session(&cfg, &master, &mut info, &tasks, &mut outbox, &registered, &mut backoff) => r,
                _ = leaders.changed_from(&master) => Err(SessionError::LeaderChanged),
            };
            match result {
                Err(SessionError::Redirect(to)) if hops < leader::MAX_REDIRECTS => {
                    tracing::info!(from = %master, to = %to, "a standby named the leading master");
                    master = to;
                    hops += 1;
                }
                other => break other,
            }
        };
        if *registered.borrow() {
            leaders.stay();
        }
        let quick = match outcome {
            Ok(()) => {
                tracing::warn!(%master, "master closed the connection");
                false
            }
            Err(SessionError::LeaderChanged) => true,
            // Retrying will not help until an operator changes something: say so loudly.
            Err(e) if e.needs_operator() => {
                tracing::error!(%master, error = %e, "cannot connect to the master");
                false
            }
            Err(e) => {
                tracing::warn!(%master, error = %e, "link to the master failed");
                false
            }
        };
        let _ = registered.send(false);
        if quick {
            backoff.reset();
            continue;
        }
        let wait = backoff.next_delay();
        tracing::info!(
            delay_ms = wait.as_millis() as u64,
            "reconnecting to the master"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = leaders.news() => {}
        }
    }
}

/// A failure of one connection.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    NotHttp(String),
    #[error(transparent)]
    TokenFile(#[from] TokenFileError),
    #[error("the master refused this agent's join token (401); check --token or --token-file")]
    Unauthorized,
    #[error(
        "the master requires a client certificate on the agent link (403): give --tls-cert-file \
         and --tls-key-file, signed by a CA in the master's --tls-client-ca-file"
    )]
    ClientCertRequired,
    #[error("the master shut this agent down: {0}")]
    Shutdown(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("redirected to the leading master at {0}")]
    Redirect(String),
    #[error("a redirect ({0}) does not name a master")]
    BadRedirect(String),
    #[error("the master knows no leader yet (503): {0}")]
    NoLeader(String),
    #[error("the leading master changed")]
    LeaderChanged,
}

impl SessionError {
    /// Failures that retrying alone cannot fix.
    fn needs_operator(&self) -> bool {
        matches!(
            self,
            SessionError::Tls(_)
                | SessionError::NotHttp(_)
                | SessionError::TokenFile(_)
                | SessionError::Unauthorized
                | SessionError::ClientCertRequired
        )
    }
}

/// What the link runs over: TCP, or TLS over TCP.
trait LinkIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> LinkIo for T {}

/// Dials the master (TCP, then TLS for `wss://`) and makes the WebSocket handshake.
async fn open(
    cfg: &LinkConfig,
    req: Request,
) -> Result<WebSocketStream<Box<dyn LinkIo>>, SessionError> {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    use tokio_tungstenite::tungstenite::Error as WsError;
    let uri = req.uri().clone();
    let secure = uri.scheme_str() == Some("wss");
    let host = uri
        .host()
        .ok_or_else(|| SessionError::Protocol(format!("no host in the master URL {uri}")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(SessionError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn LinkIo> = match (&cfg.tls, secure) {
        (Some(tls), true) => Box::new(tls.handshake(&host, tcp).await?),
        (None, true) => {
            return Err(SessionError::Protocol(
                "the master URL is https:// but the agent has no TLS set-up".into(),
            ))
        }
        (_, false) => Box::new(tcp),
    };
    match tokio_tungstenite::client_async(req, io).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) if resp.status() == 401 => Err(SessionError::Unauthorized),
        Err(WsError::Http(resp)) if resp.status() == 403 => Err(SessionError::ClientCertRequired),
        // A standby: 307 to the leader, or 503 while it knows none.
        Err(WsError::Http(resp)) if resp.status().is_redirection() => {
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            match leader::redirect_base(&uri.to_string(), &location) {
                Some(base) => Err(SessionError::Redirect(base)),
                None => Err(SessionError::BadRedirect(location)),
            }
        }
        Err(WsError::Http(resp)) if resp.status() == 503 => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .trim()
                        .chars()
                        .take(200)
                        .collect()
                })
                .unwrap_or_default();
            Err(SessionError::NoLeader(body))
        }
        // TLS 1.3: the master judges the client certificate after the agent's handshake ended,
        // so its refusal arrives as the first read.
        Err(WsError::Io(e)) => match (&cfg.tls, tls::rustls_error(&e)) {
            (Some(t), Some(tls_err)) => Err(SessionError::Tls(t.explain(&host, tls_err))),
            (Some(t), None) if t.has_client_cert() => Err(SessionError::Tls(format!(
                "the master closed the connection right after the TLS handshake ({e}); if it has \
                 --tls-client-ca-file, it may have refused this agent's client certificate"
            ))),
            _ => Err(WsError::Io(e).into()),
        },
        // A TLS master answers a plain HTTP request with a TLS alert, which is no HTTP.
        Err(e @ WsError::Protocol(ProtocolError::HttparseError(_))) if !secure => {
            Err(SessionError::NotHttp(format!(
                "the master did not answer in plain HTTP ({e}): if it has --tls-cert-file, \
                 --master must say https://"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

async fn session(
    cfg: &LinkConfig,
    master: &str,
    info: &mut watch::Receiver<AgentInfo>,
    tasks: &Arc<TaskTable>,
    outbox: &mut mpsc::UnboundedReceiver<StatusUpdate>,
    registered: &watch::Sender<bool>,
    backoff: &mut Backoff,
) -> Result<(), SessionError> {
    let mut req = connect_url(master).into_client_request()?;
    let token = cfg.token.read()?;
    let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| SessionError::Protocol("the join token holds invalid characters".into()))?;
    auth.set_sensitive(true);
    req.headers_mut().insert("authorization", auth);
    let ws = open(cfg, req).await?;
    let (mut tx, mut rx) = ws.split();

    // Updates queued while disconnected are all in the pending set sent below.
    while outbox.try_recv().is_ok() {}
    let register = AgentMessage::Register {
        protocol_version: PROTOCOL_VERSION,
        agent_id: tasks.agent_id(),
        info: info.borrow_and_update().clone(),
        tasks: tasks.reports(),
    };
    tx.send(encode(&register)).await?;

    let heartbeat = loop {
        match rx.next().await {
            Some(Ok(Message::Text(t))) => match MasterMessage::decode(&t) {
                Ok(MasterMessage::Registered {
                    agent_id,
                    heartbeat_interval_ms,
                }) => {
                    tracing::info!(agent = %agent_id, "registered with the master");
                    tasks.set_agent_id(agent_id);
                    break Duration::from_millis(heartbeat_interval_ms.max(10));
                }
                Ok(MasterMessage::Shutdown { reason }) => {
                    return Err(SessionError::Shutdown(reason))
                }
                Ok(other) => {
                    return Err(SessionError::Protocol(format!(
                        "expected REGISTERED, got {other:?}"
                    )))
                }
                Err(e) => return Err(SessionError::Protocol(e.to_string())),
            },
            Some(Ok(Message::Close(_))) | None => return Ok(()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    };
    let _ = registered.send(true);
    backoff.reset();

    for up in tasks.pending_updates() {
        tx.send(encode(&AgentMessage::StatusUpdate(up))).await?;
    }

    // The master sends nothing on its own, so each heartbeat also carries a WebSocket ping, which
    // the master's socket answers with a pong. Silence for this long means the master (or the path
    // to it) is dead even if TCP has not noticed: reconnect.
    let silence_limit = (heartbeat * 5).max(Duration::from_secs(2));
    let mut last_heard = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut info_open = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if last_heard.elapsed() > silence_limit {
                    return Err(SessionError::Protocol(format!(
                        "nothing heard from the master for {} ms",
                        last_heard.elapsed().as_millis()
                    )));
                }
                let usage = tasks.usage_report();
                tx.send(encode(&AgentMessage::Heartbeat { usage })).await?;
                tx.send(Message::Ping(Vec::new().into())).await?;
            }
            changed = info.changed(), if info_open => match changed {
                Ok(()) => {
                    let update = gpu_update(&info.borrow_and_update());
                    tx.send(encode(&update)).await?;
                }
                // No more health updates will come (no GPUs, or the poller ended).
                Err(_) => info_open = false,
            },
            up = outbox.recv() => match up {
                Some(up) => tx.send(encode(&AgentMessage::StatusUpdate(up))).await?,
                None => return Ok(()),
            },
            msg = rx.next() => {
                last_heard = tokio::time::Instant::now();
                match msg {
                    Some(Ok(Message::Text(t))) => match MasterMessage::decode(&t) {
                        Ok(m) => handle(tasks, m)?,
                        Err(e) => tracing::warn!(error = %e, "ignoring a message that does not parse"),
                    },
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                }
            }
        }
    }
}

fn handle(tasks: &Arc<TaskTable>, m: MasterMessage) -> Result<(), SessionError> {
    match m {
        MasterMessage::LaunchTask { task } => tasks.launch(*task),
        MasterMessage::KillTask {
            task_id,
            grace_period_secs,
        } => tasks.kill(&task_id, grace_period_secs),
        MasterMessage::Acknowledge { task_id, seq } => tasks.acknowledge(&task_id, seq),
        MasterMessage::Shutdown { reason } => return Err(SessionError::Shutdown(reason)),
        MasterMessage::Registered { .. } => {}
    }
    Ok(())
}

/// The `UPDATE_GPUS` message for the agent's current info.
fn gpu_update(info: &AgentInfo) -> AgentMessage {
    AgentMessage::UpdateGpus {
        gpus: info.gpus.clone(),
        total_gpus: info.resources.gpus,
    }
}

fn encode(m: &AgentMessage) -> Message {
    Message::text(m.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            connect_url("http://127.0.0.1:5050/"),
            "ws://127.0.0.1:5050/agent/v1/connect"
        );
        assert_eq!(
            connect_url("127.0.0.1:5050"),
            "ws://127.0.0.1:5050/agent/v1/connect"
        );
        assert_eq!(connect_url("https://m:1"), "wss://m:1/agent/v1/connect");
    }

    #[test]
    fn gpu_update_carries_every_gpu_and_the_offered_count() {
        let mut info = AgentInfo {
            gpus: vec![gantry_proto::GpuInfo {
                index: 0,
                healthy: false,
                ..Default::default()
            }],
            ..AgentInfo::default()
        };
        info.resources.gpus = 0;
        assert_eq!(
            gpu_update(&info),
            AgentMessage::UpdateGpus {
                gpus: info.gpus.clone(),
                total_gpus: 0
            }
        );
    }
}
