//! Identifier newtypes for agents and tasks, serialized as plain strings (Mesos `{"value": ..}`
//! wrapping is applied only at the Mesos API surface).

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

string_id!(
    /// An agent's id, assigned by the master at first registration and kept in the agent's work dir.
    AgentId
);
string_id!(
    /// A task's id. For Marathon apps: `<safeAppId>.instance-<uuid>._app.<incarnation>`.
    TaskId
);

impl TaskId {
    /// A file-system-safe name for this id (ids from frameworks may hold any character): the
    /// name of the task's sandbox directory under the agent's `sandboxes/`, and of its metadata
    /// directory. Bytes other than `[A-Za-z0-9._-]` become `%XX`; a leading `.` gets a `_` before
    /// it, so that no name is `.`, `..` or hidden.
    pub fn dir_name(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for b in self.0.bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => out.push(b as char),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        if out.starts_with('.') {
            out.insert(0, '_');
        }
        out
    }
}
