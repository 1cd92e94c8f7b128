//! GPU health at the agent: a thread polls the inventory's health events and, when a GPU turns
//! unhealthy, updates the agent's info (GPUs and `resources.gpus`), which the link sends to the
//! master as `UPDATE_GPUS` and `/state` shows.

use gantry_gpu::{GpuError, GpuInventory};
use gantry_proto::{AgentInfo, GpuInfo};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the agent collects health events.
pub const HEALTH_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Collects the health events that arrived (waiting at most `wait`) and, when any changed a GPU,
/// writes the inventory's GPUs into `info` (and the healthy count into `resources.gpus` unless
/// `gpus_explicit`). Returns whether `info` changed.
pub fn apply_health_events(
    inventory: &dyn GpuInventory,
    info: &watch::Sender<AgentInfo>,
    gpus_explicit: bool,
    wait: Duration,
) -> Result<bool, GpuError> {
    let events = inventory.poll_health(wait)?;
    if events.is_empty() {
        return Ok(false);
    }
    for e in &events {
        tracing::warn!(gpu = %e.gpu_uuid, event = ?e.kind, critical = e.is_critical(), "GPU health event");
    }
    let gpus: Vec<GpuInfo> = inventory.gpus()?.iter().map(GpuInfo::from).collect();
    Ok(info.send_if_modified(|i| {
        if i.gpus == gpus {
            return false;
        }
        i.gpus = gpus;
        if !gpus_explicit {
            i.resources.gpus = i.healthy_gpus();
        }
        true
    }))
}

/// Polls health every `interval` on its own thread (NVML waits block) until every receiver of
/// `info` is gone.
pub fn spawn_health_poller(
    inventory: Arc<dyn GpuInventory>,
    info: watch::Sender<AgentInfo>,
    gpus_explicit: bool,
    interval: Duration,
) {
    let spawned = std::thread::Builder::new()
        .name("gpu-health".into())
        .spawn(move || {
            while !info.is_closed() {
                let start = Instant::now();
                match apply_health_events(inventory.as_ref(), &info, gpus_explicit, interval) {
                    Ok(true) => tracing::warn!(
                        healthy = info.borrow().healthy_gpus(),
                        "GPU health changed; telling the master"
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "GPU health poll failed"),
                }
                std::thread::sleep(interval.saturating_sub(start.elapsed()));
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the GPU health thread; GPU health is not watched");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_gpu::{FixtureInventory, HealthEvent, HealthEventKind};
    use std::path::Path;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gpu/fixtures/dgx2-16gpu.json"
    );

    #[test]
    fn a_critical_xid_marks_the_gpu_unhealthy_and_lowers_the_offer() {
        let inv = FixtureInventory::from_file(Path::new(FIXTURE)).expect("fixture");
        let gpus: Vec<GpuInfo> = inv
            .gpus()
            .expect("gpus")
            .iter()
            .map(GpuInfo::from)
            .collect();
        let uuid = gpus[3].uuid.clone();
        let mut start = AgentInfo {
            gpus,
            ..AgentInfo::default()
        };
        start.resources.gpus = 16;
        let (tx, rx) = watch::channel(start);
        assert!(!apply_health_events(&inv, &tx, false, Duration::ZERO).expect("poll"));
        inv.inject_event(HealthEvent {
            gpu_uuid: uuid.clone(),
            kind: HealthEventKind::Xid { xid: 13 },
        });
        assert!(
            !apply_health_events(&inv, &tx, false, Duration::ZERO).expect("poll"),
            "an application XID changes nothing"
        );
        inv.inject_event(HealthEvent {
            gpu_uuid: uuid,
            kind: HealthEventKind::Xid { xid: 79 },
        });
        assert!(apply_health_events(&inv, &tx, false, Duration::ZERO).expect("poll"));
        let info = rx.borrow().clone();
        assert_eq!(info.resources.gpus, 15);
        assert!(!info.gpus[3].healthy);
        assert_eq!(
            info.gpus[3].unhealthy_reason.as_deref(),
            Some("critical XID 79")
        );
    }

    #[test]
    fn an_explicit_gpu_count_is_kept() {
        let inv = FixtureInventory::from_file(Path::new(FIXTURE)).expect("fixture");
        let gpus: Vec<GpuInfo> = inv
            .gpus()
            .expect("gpus")
            .iter()
            .map(GpuInfo::from)
            .collect();
        let uuid = gpus[0].uuid.clone();
        let mut start = AgentInfo {
            gpus,
            ..AgentInfo::default()
        };
        start.resources.gpus = 4;
        let (tx, rx) = watch::channel(start);
        inv.inject_event(HealthEvent {
            gpu_uuid: uuid,
            kind: HealthEventKind::DoubleBitEcc,
        });
        assert!(apply_health_events(&inv, &tx, true, Duration::ZERO).expect("poll"));
        assert_eq!(rx.borrow().resources.gpus, 4);
        assert!(!rx.borrow().gpus[0].healthy);
    }
}
