//! GPU health: which NVML events make a GPU unhealthy, and the tracker that remembers it.
//!
//! Critical XID errors and uncorrectable ECC errors mark a GPU unhealthy with a reason; the mark
//! stays until the agent restarts (a GPU that lost memory or fell off the bus needs an operator).
//! XIDs caused by applications (as the Kubernetes NVIDIA device plugin treats them) do not count.

use crate::model::{Gpu, GpuHealth};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// XIDs that an application causes (bad kernel, page fault, preemption); they say nothing about
/// the GPU itself: 13 graphics engine exception, 31 memory page fault, 43 GPU stopped processing,
/// 45 preemptive cleanup, 68 video decoder exception, 109 context switch timeout.
const APPLICATION_XIDS: [u64; 6] = [13, 31, 43, 45, 68, 109];

/// Whether an XID marks the GPU unhealthy.
pub fn is_critical_xid(xid: u64) -> bool {
    !APPLICATION_XIDS.contains(&xid)
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HealthEventKind {
    /// NVML `CriticalXidError` with this XID.
    Xid {
        /// The XID number.
        xid: u64,
    },
    /// NVML `DoubleBitEccError` event.
    DoubleBitEcc,
    /// The volatile uncorrected ECC counter is above zero.
    UncorrectedEcc {
        /// The counter's value.
        count: u64,
    },
    /// NVML reports the GPU as lost (fell off the bus).
    GpuLost,
}

/// A health event for one GPU, identified by UUID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthEvent {
    /// The GPU's UUID.
    pub gpu_uuid: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: HealthEventKind,
}

impl HealthEvent {
    /// Whether the event makes the GPU unhealthy.
    pub fn is_critical(&self) -> bool {
        match self.kind {
            HealthEventKind::Xid { xid } => is_critical_xid(xid),
            HealthEventKind::DoubleBitEcc
            | HealthEventKind::UncorrectedEcc { .. }
            | HealthEventKind::GpuLost => true,
        }
    }

    /// The reason shown to users when the event makes the GPU unhealthy.
    pub fn reason(&self) -> String {
        match self.kind {
            HealthEventKind::Xid { xid } => format!("critical XID {xid}"),
            HealthEventKind::DoubleBitEcc => "double-bit ECC error".into(),
            HealthEventKind::UncorrectedEcc { count } => {
                format!("{count} uncorrected ECC errors since the driver loaded")
            }
            HealthEventKind::GpuLost => "GPU lost (fell off the bus)".into(),
        }
    }
}

/// Health per GPU UUID; healthy unless a critical event was applied.
#[derive(Clone, Debug, Default)]
pub struct HealthTracker {
    unhealthy: BTreeMap<String, String>,
}

impl HealthTracker {
    /// Applies an event; returns true when it changed a GPU from healthy to unhealthy.
    /// Non-critical events and further events on an unhealthy GPU change nothing.
    pub fn apply(&mut self, event: &HealthEvent) -> bool {
        if !event.is_critical() || self.unhealthy.contains_key(&event.gpu_uuid) {
            return false;
        }
        self.unhealthy
            .insert(event.gpu_uuid.clone(), event.reason());
        true
    }

    /// The health of the GPU with this UUID.
    pub fn health_of(&self, uuid: &str) -> GpuHealth {
        match self.unhealthy.get(uuid) {
            Some(reason) => GpuHealth::Unhealthy {
                reason: reason.clone(),
            },
            None => GpuHealth::Healthy,
        }
    }

    /// Overlays the tracked health on GPUs; a GPU already unhealthy keeps its own reason.
    pub fn annotate(&self, gpus: &mut [Gpu]) {
        for gpu in gpus {
            if gpu.health.is_healthy() {
                gpu.health = self.health_of(&gpu.uuid);
            }
            // A MIG device fails with its parent (NVML reports XIDs on the parent GPU).
            if let (true, Some(m)) = (gpu.health.is_healthy(), &gpu.mig) {
                gpu.health = self.health_of(&m.parent_uuid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: HealthEventKind) -> HealthEvent {
        HealthEvent {
            gpu_uuid: "GPU-1".into(),
            kind,
        }
    }

    #[test]
    fn application_xids_are_not_critical_hardware_ones_are() {
        for xid in APPLICATION_XIDS {
            assert!(!is_critical_xid(xid), "XID {xid}");
        }
        for xid in [48, 63, 64, 74, 79, 92, 94, 95] {
            assert!(is_critical_xid(xid), "XID {xid}");
        }
    }

    #[test]
    fn critical_xid_marks_unhealthy_with_reason_and_sticks() {
        let mut t = HealthTracker::default();
        assert!(!t.apply(&ev(HealthEventKind::Xid { xid: 13 })));
        assert_eq!(t.health_of("GPU-1"), GpuHealth::Healthy);
        assert!(t.apply(&ev(HealthEventKind::Xid { xid: 79 })));
        assert!(
            !t.apply(&ev(HealthEventKind::DoubleBitEcc)),
            "already unhealthy"
        );
        assert_eq!(
            t.health_of("GPU-1"),
            GpuHealth::Unhealthy {
                reason: "critical XID 79".into()
            }
        );
        assert_eq!(t.health_of("GPU-2"), GpuHealth::Healthy);
    }

    #[test]
    fn ecc_errors_mark_unhealthy() {
        let mut t = HealthTracker::default();
        assert!(t.apply(&ev(HealthEventKind::UncorrectedEcc { count: 2 })));
        assert!(
            matches!(t.health_of("GPU-1"), GpuHealth::Unhealthy { reason } if reason.contains("2 uncorrected ECC"))
        );
    }

    #[test]
    fn events_serialize_with_a_kind_tag() {
        let json = serde_json::to_value(ev(HealthEventKind::Xid { xid: 79 })).ok();
        assert_eq!(
            json,
            Some(serde_json::json!({"gpu_uuid": "GPU-1", "kind": "xid", "xid": 79}))
        );
    }
}
