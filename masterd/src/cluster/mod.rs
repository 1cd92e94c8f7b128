//! The master's core: agents, resources and tasks (each tagged with its owner) behind the master's
//! one lock, and the typed actions the agent link calls. It knows no controller's definitions:
//! controllers keep their own state beside the core's (see `crate::state`) and are woken when
//! something changed. Every action writes to the store before it answers or sends.

pub mod agents;
pub mod outbox;
pub mod state;
pub mod updates;

use crate::agent_secrets::AgentSecrets;
use crate::config::MasterConfig;
use crate::events::bus::{EventBus, Numbered};
use crate::events::callbacks::Callbacks;
use crate::events::{MarathonEvent, Publisher};
use crate::join_tokens::JoinTokens;
use crate::state::MasterState;
use crate::store::{AsyncStore, StoreError};
use gantry_proto::{AgentId, MasterMessage};
pub use outbox::Outbox;
pub use state::{AgentEntry, ClusterState, Conn};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Mutex, MutexGuard};

/// An action that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The master core, shared by the API handlers, the agent link and the background loops.
pub struct Core {
    pub cfg: MasterConfig,
    /// The tokens agents may present.
    pub tokens: Arc<JoinTokens>,
    /// This master's id (stable across restarts; kept in the store).
    pub master_id: String,
    pub started_at: f64,
    store: AsyncStore,
    state: Mutex<MasterState>,
    /// Counts changes controllers should look at (a task ended, an agent came or went, a
    /// definition changed); each controller waits on its own receiver.
    changes: watch::Sender<u64>,
    next_conn: AtomicU64,
    /// Marathon's event stream (`/v2/events`): numbered, stored, fanned out.
    events: Arc<Publisher>,
    /// The `/v2/eventSubscriptions` callback URLs and their senders.
    pub callbacks: Callbacks,
    /// The join token each agent connected with (memory only), for calls to its HTTP endpoint.
    pub agent_secrets: AgentSecrets,
}

impl Core {
    /// A core over loaded state.
    pub fn new(
        cfg: MasterConfig,
        tokens: Arc<JoinTokens>,
        master_id: String,
        store: AsyncStore,
        state: MasterState,
        events: Vec<Numbered>,
    ) -> Arc<Self> {
        let events = Arc::new(Publisher::new(
            store.clone(),
            cfg.event_stream_max_outstanding,
            events,
        ));
        let mut state = state;
        state.cluster.set_publisher(events.clone());
        Arc::new(Self {
            cfg,
            tokens,
            master_id,
            started_at: gantry_proto::time::now_secs(),
            store,
            state: Mutex::new(state),
            changes: watch::Sender::new(0),
            next_conn: AtomicU64::new(1),
            events,
            callbacks: Callbacks::default(),
            agent_secrets: AgentSecrets::default(),
        })
    }

    /// The event stream's bus (readers subscribe here).
    pub fn events(&self) -> &EventBus {
        self.events.bus()
    }

    /// Publishes an event (see [`Publisher::publish`]). Safe to call under the state lock.
    pub fn publish(&self, event: MarathonEvent) {
        self.events.publish(event);
    }

    /// Locks the master's state: the core's part and every controller's, under one lock.
    pub async fn state(&self) -> MutexGuard<'_, MasterState> {
        self.state.lock().await
    }

    /// Tells every controller that something changed, so that each runs soon.
    pub fn wake(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later `wake` (one per controller loop).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The store, for controllers' writes (always before memory changes or anything is sent).
    pub fn store(&self) -> &AsyncStore {
        &self.store
    }

    pub(crate) fn new_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a message to an agent if it is connected; false when it is not.
    pub fn send(st: &ClusterState, agent: &AgentId, msg: MasterMessage) -> bool {
        st.agents
            .get(agent)
            .and_then(|a| a.conn.as_ref())
            .is_some_and(|c| c.tx.send(msg).is_ok())
    }
}
