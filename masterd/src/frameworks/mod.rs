//! External frameworks: the Mesos v1 scheduler HTTP API in its JSON form (`/api/v1/scheduler`).
//! Frameworks subscribe over a RecordIO stream, get offers of the agents' free resources (held
//! out of the pool until accepted, declined, rescinded or timed out), launch command tasks that
//! the core tracks under `TaskOwner::Framework`, and get their status updates until they
//! acknowledge them. Registrations are stored, so a framework re-subscribes after a master restart.

pub mod calls;
pub mod launch;
pub mod offers;
pub mod records;
pub mod stream;
pub mod updates;

use crate::cluster::Core;
use crate::store::records::TaskRecord;
use gantry_proto::{AgentId, Resources, TaskId};
use records::FrameworkRecord;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How often a subscribed framework gets a HEARTBEAT (Mesos's default).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// How often offers are made, timeouts checked and unacknowledged updates looked at (Mesos's
/// default allocation interval).
pub const CYCLE: Duration = Duration::from_secs(1);

/// An open SUBSCRIBE stream.
#[derive(Debug)]
pub struct Subscription {
    pub stream_id: String,
    pub tx: mpsc::UnboundedSender<serde_json::Value>,
}

/// A status update sent to a framework and not acknowledged yet.
#[derive(Clone, Debug)]
pub struct PendingUpdate {
    /// base64 of the 16 uuid bytes, as the framework sends it back.
    pub uuid: String,
    /// The UPDATE event.
    pub event: serde_json::Value,
    /// When it was last sent (None: waiting behind an earlier update of the same task).
    pub sent_at: Option<Instant>,
}

/// One framework as the master tracks it.
#[derive(Debug)]
pub struct Framework {
    pub record: FrameworkRecord,
    /// The stream while it is subscribed.
    pub conn: Option<Subscription>,
    /// Since when it has had no stream (its failover timeout runs from here).
    pub disconnected_since: Option<Instant>,
    /// SUPPRESSed: no offers until REVIVE.
    pub suppressed: bool,
    /// Agents it declined, and until when it gets no offers of them.
    pub filters: HashMap<AgentId, Instant>,
    /// Per task, updates in order; the first one is in flight until acknowledged.
    pub pending: BTreeMap<TaskId, VecDeque<PendingUpdate>>,
}

impl Framework {
    /// A framework not (yet) subscribed.
    pub fn disconnected(record: FrameworkRecord) -> Self {
        Framework {
            record,
            conn: None,
            disconnected_since: Some(Instant::now()),
            suppressed: false,
            filters: HashMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Sends an event on its stream, if it has one.
    pub fn send(&self, event: serde_json::Value) -> bool {
        self.conn.as_ref().is_some_and(|c| c.tx.send(event).is_ok())
    }

    pub fn partition_aware(&self) -> bool {
        self.record.has_capability("PARTITION_AWARE")
    }
}

/// An outstanding offer. Its resources sit in `ClusterState::held` under the offer id.
#[derive(Clone, Debug)]
pub struct Offer {
    pub id: String,
    pub framework: String,
    pub agent: AgentId,
    pub resources: Resources,
    pub made_at: Instant,
}

/// The frameworks module's part of the master's state.
#[derive(Debug, Default)]
pub struct FrameworkState {
    pub frameworks: BTreeMap<String, Framework>,
    pub offers: HashMap<String, Offer>,
    next_offer: u64,
}

impl FrameworkState {
    /// The registrations stored under `framework:<id>` meta keys; unreadable ones are skipped.
    pub fn load(meta: &[(String, String)]) -> Self {
        let mut out = FrameworkState::default();
        for (k, v) in meta {
            if !k.starts_with(records::META_PREFIX) {
                continue;
            }
            match serde_json::from_str::<FrameworkRecord>(v) {
                Ok(rec) => {
                    out.frameworks
                        .insert(rec.id.clone(), Framework::disconnected(rec));
                }
                Err(e) => tracing::warn!(key = %k, error = %e, "ignoring an unreadable framework"),
            }
        }
        out
    }

    /// A fresh offer id (unique within this master's run; the master id keeps runs apart).
    pub fn new_offer_id(&mut self, master_id: &str) -> String {
        self.next_offer += 1;
        format!("{master_id}-O{}", self.next_offer)
    }
}

/// Starts the frameworks module: status changes of framework tasks flow into UPDATE events, and
/// the offer cycle runs every [`CYCLE`].
pub async fn start(core: Arc<Core>) {
    let (tx, rx) = mpsc::unbounded_channel::<TaskRecord>();
    core.state().await.cluster.set_framework_updates(tx);
    tokio::spawn(updates::run(core.clone(), rx));
    tokio::spawn(offers::run(core));
}
