//! The agent link's server side: agents dial `/agent/v1/connect` with `Authorization: Bearer
//! <token>`; the socket then carries registration, heartbeats and status updates up, and launches,
//! kills and acknowledgements down. A wrong token is refused (401) and logged; with
//! `--tls-client-ca-file`, so is an agent without a verified client certificate (403).

use crate::cluster::updates::MAX_UPDATES_PER_COMMIT;
use crate::cluster::Core;
use crate::listener::Peer;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{FutureExt, SinkExt, StreamExt};
use gantry_proto::{AgentMessage, MasterMessage, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// `GET /agent/v1/connect` (WebSocket upgrade).
pub async fn connect(
    State(core): State<Arc<Core>>,
    ConnectInfo(peer_info): ConnectInfo<Peer>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = peer_info.addr;
    let certs_required = core
        .cfg
        .tls
        .as_ref()
        .is_some_and(|t| t.client_ca_file.is_some());
    if certs_required && !peer_info.client_cert {
        tracing::warn!(
            %peer,
            "refused an agent connection: no client certificate (--tls-client-ca-file is set)"
        );
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({
                "message": "this master requires agents to present a client certificate"
            })),
        )
            .into_response();
    }
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !core.tokens.accepts(given) {
        tracing::warn!(%peer, "refused an agent connection: wrong or missing join token");
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"message": "invalid or missing cluster join token"})),
        )
            .into_response();
    }
    let token = given.to_owned();
    ws.on_upgrade(move |socket| serve(core, socket, peer, token))
}

/// `token`: the join token the agent connected with, remembered (in memory) once it registers.
async fn serve(core: Arc<Core>, socket: WebSocket, peer: SocketAddr, token: String) {
    let (mut sink, mut stream) = socket.split();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    let (agent_id, info, tasks) = match first {
        Ok(Some(Ok(Message::Text(t)))) => match AgentMessage::decode(&t) {
            Ok(AgentMessage::Register {
                protocol_version,
                agent_id,
                info,
                tasks,
            }) => {
                if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&protocol_version) {
                    let reason = format!(
                        "agent speaks protocol {protocol_version}, this master speaks \
                         {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}"
                    );
                    tracing::warn!(%peer, %reason, "refusing agent");
                    let _ = sink.send(text(&MasterMessage::Shutdown { reason })).await;
                    return;
                }
                (agent_id, info, tasks)
            }
            _ => {
                tracing::warn!(%peer, "agent connection did not start with REGISTER");
                return;
            }
        },
        _ => {
            tracing::warn!(%peer, "agent connection closed before registering");
            return;
        }
    };

    let (tx, mut rx) = mpsc::unbounded_channel::<MasterMessage>();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(text(&m)).await.is_err() {
                return;
            }
        }
        // The master dropped this connection (agent unreachable): close it so the agent re-registers.
        let _ = sink.send(Message::Close(None)).await;
    });
    let (id, conn) = match core.register_agent(agent_id, info, tasks, tx).await {
        Ok(ok) => ok,
        Err(e) => {
            tracing::error!(%peer, error = %e, "agent registration failed");
            writer.abort();
            return;
        }
    };
    core.agent_secrets.remember(&id, &token);
    drop(token);
    let span = tracing::info_span!("agent", agent = %id);
    async {
        // A message read while gathering a burst of status updates, handled next.
        let mut held: Option<AgentMessage> = None;
        loop {
            let msg = match held.take() {
                Some(m) => Ok(m),
                None => match stream.next().await {
                    None | Some(Ok(Message::Close(_))) | Some(Err(_)) => break,
                    Some(Ok(Message::Text(t))) => AgentMessage::decode(&t),
                    Some(Ok(_)) => continue,
                },
            };
            match msg {
                Ok(AgentMessage::Heartbeat { usage }) => core.heartbeat(&id, conn, usage).await,
                Ok(AgentMessage::StatusUpdate(up)) => {
                    // Every update already received goes into the same transaction.
                    let mut burst = vec![up];
                    while burst.len() < MAX_UPDATES_PER_COMMIT {
                        let Some(Some(Ok(Message::Text(t)))) = stream.next().now_or_never() else {
                            break;
                        };
                        match AgentMessage::decode(&t) {
                            Ok(AgentMessage::StatusUpdate(u)) => burst.push(u),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "ignoring a message that does not parse")
                            }
                        }
                    }
                    if let Err(e) = core.status_updates(&id, conn, burst).await {
                        // Not acknowledged: the agent resends them.
                        tracing::error!(error = %e, "could not store status updates");
                    }
                }
                Ok(AgentMessage::UpdateGpus { gpus, total_gpus }) => {
                    if let Err(e) = core.update_gpus(&id, gpus, total_gpus).await {
                        tracing::error!(error = %e, "could not store the agent's GPU health");
                    }
                }
                Ok(AgentMessage::Register { .. }) => {
                    tracing::warn!("ignoring a second REGISTER on one connection")
                }
                Err(e) => tracing::warn!(error = %e, "ignoring a message that does not parse"),
            }
        }
    }
    .instrument(span)
    .await;
    core.disconnected(&id, conn).await;
    writer.abort();
}

fn text(m: &MasterMessage) -> Message {
    Message::Text(m.encode().into())
}
