//! The lifecycle knobs of an app that the master acts on: upgrade strategy, unreachable strategy,
//! kill selection and version info (spec §2.8).

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a rolling replace proceeds: both are fractions of `instances` in `0..=1`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    /// The share of instances that must stay healthy during an upgrade (default 1).
    #[serde(serialize_with = "super::json_output::whole_as_int")]
    pub minimum_health_capacity: f64,
    /// The share of instances that may run on top of `instances` during an upgrade (default 1).
    #[serde(serialize_with = "super::json_output::whole_as_int")]
    pub maximum_over_capacity: f64,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
        }
    }
}

impl UpgradeStrategy {
    /// The default for resident apps (apps with persistent volumes): {0.5, 0}.
    pub fn resident_default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: 0.5,
            maximum_over_capacity: 0.0,
        }
    }
}

/// What happens to instances on an unreachable agent. JSON: `"disabled"` or
/// `{"inactiveAfterSeconds":0,"expungeAfterSeconds":0}` (the default since Marathon 1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnreachableStrategy {
    /// Unreachable instances are never replaced nor expunged (the default for resident apps).
    Disabled,
    /// Replace after `inactive_after_seconds`; forget (and kill if it returns) after
    /// `expunge_after_seconds`.
    Enabled {
        inactive_after_seconds: u64,
        expunge_after_seconds: u64,
    },
}

impl Default for UnreachableStrategy {
    fn default() -> Self {
        UnreachableStrategy::Enabled {
            inactive_after_seconds: 0,
            expunge_after_seconds: 0,
        }
    }
}

impl Serialize for UnreachableStrategy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UnreachableStrategy::Disabled => s.serialize_str("disabled"),
            UnreachableStrategy::Enabled {
                inactive_after_seconds,
                expunge_after_seconds,
            } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("inactiveAfterSeconds", inactive_after_seconds)?;
                m.serialize_entry("expungeAfterSeconds", expunge_after_seconds)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for UnreachableStrategy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Enabled {
            #[serde(default)]
            inactive_after_seconds: u64,
            #[serde(default)]
            expunge_after_seconds: u64,
        }
        match Value::deserialize(d)? {
            Value::String(s) if s == "disabled" => Ok(UnreachableStrategy::Disabled),
            v @ Value::Object(_) => {
                let e: Enabled = serde_json::from_value(v).map_err(de::Error::custom)?;
                Ok(UnreachableStrategy::Enabled {
                    inactive_after_seconds: e.inactive_after_seconds,
                    expunge_after_seconds: e.expunge_after_seconds,
                })
            }
            other => Err(de::Error::custom(format!(
                "unreachableStrategy must be \"disabled\" or an object, not {other}"
            ))),
        }
    }
}

/// Which instances go first when scaling down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillSelection {
    /// Kill the most recently started instances first (the default).
    #[default]
    YoungestFirst,
    /// Kill the oldest instances first.
    OldestFirst,
}

impl KillSelection {
    /// Parses Marathon's literal (`YOUNGEST_FIRST`, `OLDEST_FIRST`).
    pub fn from_literal(s: &str) -> Option<Self> {
        match s {
            "YOUNGEST_FIRST" => Some(KillSelection::YoungestFirst),
            "OLDEST_FIRST" => Some(KillSelection::OldestFirst),
            _ => None,
        }
    }
}

/// When the app last changed: a scale-only change bumps `last_scaling_at`; a config change or a
/// restart bumps both. Timestamps are ISO-8601 UTC with milliseconds and `Z`; empty until stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    #[serde(default)]
    pub last_scaling_at: String,
    #[serde(default)]
    pub last_config_change_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unreachable_strategy_json_forms() {
        let d: UnreachableStrategy = serde_json::from_value(json!("disabled")).expect("disabled");
        assert_eq!(d, UnreachableStrategy::Disabled);
        assert_eq!(serde_json::to_value(d).ok(), Some(json!("disabled")));
        let e: UnreachableStrategy =
            serde_json::from_value(json!({"inactiveAfterSeconds":300,"expungeAfterSeconds":600}))
                .expect("object");
        assert_eq!(
            serde_json::to_value(e).ok(),
            Some(json!({"inactiveAfterSeconds":300,"expungeAfterSeconds":600}))
        );
        assert!(serde_json::from_value::<UnreachableStrategy>(json!("enabled")).is_err());
        assert_eq!(
            serde_json::to_value(UnreachableStrategy::default()).ok(),
            Some(json!({"inactiveAfterSeconds":0,"expungeAfterSeconds":0}))
        );
    }

    #[test]
    fn kill_selection_literals() {
        assert_eq!(
            serde_json::to_value(KillSelection::default()).ok(),
            Some(json!("YOUNGEST_FIRST"))
        );
        assert_eq!(
            KillSelection::from_literal("OLDEST_FIRST"),
            Some(KillSelection::OldestFirst)
        );
        assert_eq!(KillSelection::from_literal("oldest_first"), None);
    }
}
