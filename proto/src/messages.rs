//! The master<->agent protocol: JSON messages over one WebSocket that the agent dials.
//! Every message is tagged by `type`; the agent states `PROTOCOL_VERSION` when it registers and the
//! master refuses versions outside `MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION`.
//!
//! Versions: 1 is the core protocol; 2 adds `UPDATE_GPUS` (agent to master). A version 1 agent
//! never sends it, so a version 2 master speaks to both. Health-check results ride in status
//! updates (`TaskStatus::health`, an optional field older peers ignore) and the checks in
//! `TaskInfo::health_checks`, so they need no new version.

use crate::agent::{AgentInfo, GpuInfo};
use crate::ids::{AgentId, TaskId};
use crate::task::{TaskInfo, TaskStatus};
use crate::usage::TaskUsage;
use serde::{Deserialize, Serialize};

/// The path on the master that agents dial.
pub const AGENT_CONNECT_PATH: &str = "/agent/v1/connect";

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 2;

/// The oldest agent protocol version this build's master accepts.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// A task the agent runs (or ran), reported at re-registration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub task: TaskInfo,
    /// The latest status the agent knows.
    pub status: TaskStatus,
}

/// A status update, kept on the agent's disk until the master acknowledges `(task_id, seq)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// Per-task sequence number, increasing; the master ignores one it has already applied.
    pub seq: u64,
    /// Unique id of this update (the Mesos `uuid`), for logs and the scheduler API.
    pub uuid: String,
    pub status: TaskStatus,
}

/// Agent to master.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentMessage {
    /// First message on every connection. `agent_id` is `None` on first registration.
    Register {
        protocol_version: u32,
        agent_id: Option<AgentId>,
        info: AgentInfo,
        /// Every task the agent knows that is not yet terminal-and-acknowledged.
        tasks: Vec<TaskReport>,
    },
    /// Liveness, sent every heartbeat interval, with the usage of the agent's running tasks.
    /// (`{"type":"HEARTBEAT"}` with no usage is what earlier agents send; it still parses.)
    Heartbeat {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        usage: Vec<TaskUsage>,
    },
    /// A task's status changed.
    StatusUpdate(StatusUpdate),
    /// (Version 2.) The agent's GPUs changed health: every GPU with its health, and how many GPUs
    /// it now offers (`resources.gpus`). The master stops placing on unhealthy GPUs.
    UpdateGpus { gpus: Vec<GpuInfo>, total_gpus: u32 },
}

/// Master to agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MasterMessage {
    /// Registration accepted.
    Registered {
        agent_id: AgentId,
        /// How often the agent must send a heartbeat.
        heartbeat_interval_ms: u64,
    },
    /// Launch a task.
    LaunchTask { task: Box<TaskInfo> },
    /// Kill a task: SIGTERM, then SIGKILL after `grace_period_secs`.
    KillTask {
        task_id: TaskId,
        grace_period_secs: Option<f64>,
    },
    /// The master applied the update `(task_id, seq)`; the agent may forget it.
    Acknowledge { task_id: TaskId, seq: u64 },
    /// The master will not talk to this agent (wrong version, removed); the agent should not retry
    /// before fixing what `reason` says.
    Shutdown { reason: String },
}

/// Why a frame that came over the link is not a message.
#[derive(Debug, thiserror::Error)]
#[error("not {kind} message: {source}")]
pub struct DecodeError {
    /// Which side's messages were expected (`an agent`, `a master`).
    pub kind: &'static str,
    #[source]
    pub source: serde_json::Error,
}

impl AgentMessage {
    /// Parses one text frame the master received. Garbage, truncated or oversized-number frames
    /// are an error, never a panic (serde_json also bounds nesting at 128 levels).
    pub fn decode(frame: &str) -> Result<Self, DecodeError> {
        serde_json::from_str(frame).map_err(|source| DecodeError {
            kind: "an agent",
            source,
        })
    }

    /// The text frame for this message. Floats must be finite: JSON has no NaN or infinity
    /// (serde_json writes `null`, which the other side refuses).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl MasterMessage {
    /// Parses one text frame the agent received; as [`AgentMessage::decode`].
    pub fn decode(frame: &str) -> Result<Self, DecodeError> {
        serde_json::from_str(frame).map_err(|source| DecodeError {
            kind: "a master",
            source,
        })
    }

    /// The text frame for this message; as [`AgentMessage::encode`].
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskState;

    #[test]
    fn messages_are_tagged_by_type() {
        let m = AgentMessage::Heartbeat { usage: Vec::new() };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"HEARTBEAT"}"#
        );
        let old: AgentMessage = serde_json::from_str(r#"{"type":"HEARTBEAT"}"#).unwrap();
        assert_eq!(old, m, "an earlier agent's heartbeat still parses");
        let with = AgentMessage::Heartbeat {
            usage: vec![crate::TaskUsage {
                task_id: "t".into(),
                timestamp: 1.0,
                usage: crate::Usage {
                    cpus_user_time_secs: 2.5,
                    ..Default::default()
                },
                gpu_usage: Vec::new(),
            }],
        };
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains(r#""cpus_user_time_secs":2.5"#), "{json}");
        assert_eq!(serde_json::from_str::<AgentMessage>(&json).unwrap(), with);
        let ack = MasterMessage::Acknowledge {
            task_id: "t1".into(),
            seq: 3,
        };
        let json = serde_json::to_string(&ack).unwrap();
        assert_eq!(json, r#"{"type":"ACKNOWLEDGE","task_id":"t1","seq":3}"#);
        // Timestamps survive the round trip exactly (serde_json's float_roundtrip): try many.
        for i in 0..2000u32 {
            let mut status = TaskStatus::new("t1".into(), None, TaskState::TaskRunning);
            status.timestamp = 1_795_567_156.0 + f64::from(i) * 0.000_123_457;
            let up = AgentMessage::StatusUpdate(StatusUpdate {
                seq: 1,
                uuid: "u".into(),
                status,
            });
            let back: AgentMessage =
                serde_json::from_str(&serde_json::to_string(&up).unwrap()).unwrap();
            assert_eq!(back, up);
        }
    }

    #[test]
    fn update_gpus_is_tagged_and_round_trips() {
        let m = AgentMessage::UpdateGpus {
            gpus: vec![GpuInfo {
                index: 3,
                healthy: false,
                unhealthy_reason: Some("critical XID 79".into()),
                ..GpuInfo::default()
            }],
            total_gpus: 15,
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], "UPDATE_GPUS");
        assert_eq!(v["total_gpus"], 15);
        assert_eq!(v["gpus"][0]["unhealthy_reason"], "critical XID 79");
        let back: AgentMessage = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
        const { assert!(MIN_PROTOCOL_VERSION <= PROTOCOL_VERSION) };
    }
}
