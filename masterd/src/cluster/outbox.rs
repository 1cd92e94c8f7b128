//! Messages to agents that must follow a store write (a launch after its task is stored, an
//! acknowledgement after the status it acknowledges): collected under the master's lock, each
//! with its agent's connection, and sent by the store's writer thread right after the write is
//! durable, in commit order, so the lock is never held across an fsync.

use super::ClusterState;
use crate::store::AfterCommit;
use gantry_proto::{AgentId, MasterMessage};
use tokio::sync::mpsc::UnboundedSender;

/// Messages waiting for a write.
#[derive(Default)]
pub struct Outbox(Vec<(UnboundedSender<MasterMessage>, MasterMessage)>);

impl Outbox {
    /// Adds a message to `agent` if it is connected now; false when it is not.
    pub fn push(&mut self, st: &ClusterState, agent: &AgentId, msg: MasterMessage) -> bool {
        match st.agents.get(agent).and_then(|a| a.conn.as_ref()) {
            Some(c) => {
                self.0.push((c.tx.clone(), msg));
                true
            }
            None => false,
        }
    }

    /// What the writer thread runs after the commit: sends every message (a connection closed
    /// meanwhile drops its own; the agent reconciles when it re-registers).
    pub fn after_commit(self) -> Option<AfterCommit> {
        if self.0.is_empty() {
            return None;
        }
        Some(Box::new(move || {
            for (tx, msg) in self.0 {
                let _ = tx.send(msg);
            }
        }))
    }
}
