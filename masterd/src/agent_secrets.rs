//! The join token each agent connected with, kept in memory only (never in the store, an API
//! answer, a log or the UI): the master presents it as `Authorization: Bearer` when it calls that
//! agent's own HTTP endpoint (the task files proxy, [`crate::api::files`]). The agent accepts the
//! token it connected with until it connects again, and every token in its token file, so a
//! rotation on either side does not break the proxy. An entry lives until the master stops or the
//! agent connects again; a master started afresh knows an agent's token once it reconnects.

use gantry_proto::AgentId;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Agent id to the join token of its latest connection.
#[derive(Default)]
pub struct AgentSecrets {
    tokens: Mutex<HashMap<AgentId, String>>,
}

/// Never shows a token.
impl std::fmt::Debug for AgentSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("AgentSecrets").field("agents", &n).finish()
    }
}

impl AgentSecrets {
    /// `agent` (re)connected with `token`.
    pub fn remember(&self, agent: &AgentId, token: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(agent.clone(), token.to_owned());
    }

    /// The token `agent` last connected with, if it connected since this master started.
    pub fn token_of(&self, agent: &AgentId) -> Option<String> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(agent)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_connection_wins_and_debug_hides_tokens() {
        let s = AgentSecrets::default();
        let a = AgentId("a1".into());
        assert_eq!(s.token_of(&a), None);
        s.remember(&a, "old-token");
        s.remember(&a, "new-token");
        assert_eq!(s.token_of(&a).as_deref(), Some("new-token"));
        assert_eq!(s.token_of(&AgentId("a2".into())), None);
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("token-") && shown.contains("agents: 1"),
            "{shown}"
        );
    }
}
