//! Marathon's event stream (`GET /v2/events`, spec §1.6): the typed events, serialised with
//! Marathon's field names plus `eventType` and `timestamp`, and the bus that numbers, keeps and
//! fans them out (see [`bus`]). Only types the marathon-python client knows (spec §4.2) exist
//! here: an unknown type ends that client's stream. The master publishes them through
//! `Core::publish`; `api::marathon::events` serves them.

pub mod bus;
pub mod callbacks;
pub mod emit;

use crate::store::{AsyncStore, StoredEvent, Write};
use bus::{EventBus, Numbered, HISTORY};
use serde::Serialize;

/// Publishes events: numbered by the bus, stored behind every batch queued before them, and
/// sent to readers (and kept for replay) only once durable. Shared by the core and the cluster
/// state, whose task changes make events (see [`emit`]).
pub struct Publisher {
    bus: EventBus,
    store: AsyncStore,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("last_id", &self.bus.last_id())
            .finish()
    }
}

impl Publisher {
    /// A publisher over `store`, continuing after the `restored` history; a live reader may
    /// fall `outstanding` events behind.
    pub fn new(store: AsyncStore, outstanding: usize, restored: Vec<Numbered>) -> Self {
        Self {
            bus: EventBus::new(HISTORY, outstanding, restored),
            store,
        }
    }

    /// The bus readers subscribe to.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Publishes one event. Never blocks: safe under the master's lock. Call it after the
    /// change it reports was handed to the store, so the event is durable after the change.
    pub fn publish(&self, event: MarathonEvent) {
        let body = event.to_json(&timestamp()).to_string();
        self.bus
            .publish_with(event.event_type(), body, |ev, deliver| {
                let write = Write::Event(Box::new(StoredEvent {
                    id: ev.id,
                    event_type: ev.event_type.clone(),
                    body: ev.body.clone(),
                }));
                // Nothing waits on it: a store that cannot take it halts the master (see
                // `AsyncStore::queue`).
                drop(self.store.queue(vec![write], Some(deliver)));
            });
    }
}

/// Now as Marathon writes event timestamps: ISO 8601 in UTC with milliseconds.
pub fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// One Marathon event (the `eventType` tag and `timestamp` are added by [`MarathonEvent::to_json`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "eventType", rename_all = "snake_case")]
pub enum MarathonEvent {
    #[serde(rename_all = "camelCase")]
    ApiPostEvent {
        client_ip: String,
        uri: String,
        app_definition: serde_json::Value,
    },
    #[serde(rename_all = "camelCase")]
    StatusUpdateEvent {
        slave_id: String,
        task_id: String,
        task_status: String,
        message: String,
        app_id: String,
        host: String,
        ip_addresses: Vec<serde_json::Value>,
        ports: Vec<u16>,
        version: String,
    },
    #[serde(rename_all = "camelCase")]
    InstanceHealthChangedEvent {
        instance_id: String,
        run_spec_id: String,
        run_spec_version: String,
        healthy: Option<bool>,
    },
    #[serde(rename_all = "camelCase")]
    HealthStatusChangedEvent {
        app_id: String,
        instance_id: String,
        version: String,
        alive: bool,
    },
    #[serde(rename_all = "camelCase")]
    UnhealthyInstanceKillEvent {
        app_id: String,
        task_id: String,
        instance_id: String,
        version: String,
        reason: String,
        host: String,
        slave_id: String,
    },
    #[serde(rename_all = "camelCase")]
    AppTerminatedEvent {
        app_id: String,
    },
    #[serde(rename_all = "camelCase")]
    DeploymentInfo {
        plan: serde_json::Value,
        current_step: serde_json::Value,
    },
    #[serde(rename_all = "camelCase")]
    DeploymentStepSuccess {
        plan: serde_json::Value,
        current_step: serde_json::Value,
    },
    DeploymentSuccess {
        id: String,
        plan: serde_json::Value,
    },
    DeploymentFailed {
        id: String,
        plan: serde_json::Value,
        reason: String,
    },
    #[serde(rename_all = "camelCase")]
    SubscribeEvent {
        client_ip: String,
        callback_url: String,
    },
    #[serde(rename_all = "camelCase")]
    UnsubscribeEvent {
        client_ip: String,
        callback_url: String,
    },
    #[serde(rename_all = "camelCase")]
    EventStreamAttached {
        remote_address: String,
    },
    #[serde(rename_all = "camelCase")]
    EventStreamDetached {
        remote_address: String,
        /// Gantry's addition: why the server ended the stream (a slow reader).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl MarathonEvent {
    /// The event's `eventType`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ApiPostEvent { .. } => "api_post_event",
            Self::StatusUpdateEvent { .. } => "status_update_event",
            Self::InstanceHealthChangedEvent { .. } => "instance_health_changed_event",
            Self::HealthStatusChangedEvent { .. } => "health_status_changed_event",
            Self::UnhealthyInstanceKillEvent { .. } => "unhealthy_instance_kill_event",
            Self::AppTerminatedEvent { .. } => "app_terminated_event",
            Self::DeploymentInfo { .. } => "deployment_info",
            Self::DeploymentStepSuccess { .. } => "deployment_step_success",
            Self::DeploymentSuccess { .. } => "deployment_success",
            Self::DeploymentFailed { .. } => "deployment_failed",
            Self::SubscribeEvent { .. } => "subscribe_event",
            Self::UnsubscribeEvent { .. } => "unsubscribe_event",
            Self::EventStreamAttached { .. } => "event_stream_attached",
            Self::EventStreamDetached { .. } => "event_stream_detached",
        }
    }

    /// The event's JSON: its fields, `eventType` and `timestamp` (ISO 8601, ending in `Z`).
    pub fn to_json(&self, timestamp: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("timestamp".into(), timestamp.into());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_marathon_names() {
        let e = MarathonEvent::AppTerminatedEvent {
            app_id: "/web".into(),
        };
        let v = e.to_json("2026-01-01T00:00:00.000Z");
        assert_eq!(v["eventType"], "app_terminated_event");
        assert_eq!(v["appId"], "/web");
        assert_eq!(v["timestamp"], "2026-01-01T00:00:00.000Z");
    }

    #[test]
    fn the_event_type_is_the_serialised_tag() {
        let all = [
            MarathonEvent::DeploymentSuccess {
                id: "d".into(),
                plan: serde_json::json!({}),
            },
            MarathonEvent::EventStreamDetached {
                remote_address: "127.0.0.1".into(),
                reason: None,
            },
            MarathonEvent::HealthStatusChangedEvent {
                app_id: "/a".into(),
                instance_id: "a.instance-1".into(),
                version: "v".into(),
                alive: true,
            },
        ];
        for e in all {
            assert_eq!(e.to_json("t")["eventType"], e.event_type());
        }
    }
}
