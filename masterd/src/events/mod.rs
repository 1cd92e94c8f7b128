//! Marathon's event stream (`GET /v2/events`, spec §1.6): the typed events, serialised with
//! Marathon's field names plus `eventType` and `timestamp`, and the bus that numbers, keeps and
//! fans them out (see [`bus`]). Only types the marathon-python client knows (spec §4.2) exist here.

pub mod bus;

use serde::Serialize;

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
        ports: Vec<u32>,
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
}
