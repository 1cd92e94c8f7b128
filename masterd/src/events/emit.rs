//! The events a change to an app's task makes (spec §1.6): `status_update_event` when its state
//! changes, `health_status_changed_event` and `instance_health_changed_event` when its health
//! (all its checks together) changes. Pure functions of the task before and after; tasks of
//! batch jobs make none (they are not Marathon's).

use super::MarathonEvent;
use crate::store::records::{TaskOwner, TaskRecord};
use gantry_proto::HealthResult;

/// The events of `old` (`None` for a new task) becoming `new` on an agent called `host`.
pub fn task_changed(old: Option<&TaskRecord>, new: &TaskRecord, host: &str) -> Vec<MarathonEvent> {
    let TaskOwner::App { id, version } = &new.owner else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if old.is_none_or(|o| o.state != new.state) {
        out.push(MarathonEvent::StatusUpdateEvent {
            slave_id: new.info.agent_id.0.clone(),
            task_id: new.info.task_id.0.clone(),
            task_status: new.state.name().to_owned(),
            message: new
                .status
                .as_ref()
                .and_then(|s| s.message.clone())
                .unwrap_or_default(),
            app_id: id.clone(),
            host: host.to_owned(),
            ip_addresses: ip_addresses(host),
            ports: new.info.ports.clone(),
            version: version.clone(),
        });
    }
    let (before, after) = (old.and_then(|o| healthy(&o.health)), healthy(&new.health));
    if before != after {
        let instance_id = crate::services::path_id::instance_of(&new.info.task_id.0);
        if let Some(alive) = after {
            out.push(MarathonEvent::HealthStatusChangedEvent {
                app_id: id.clone(),
                instance_id: instance_id.clone(),
                version: version.clone(),
                alive,
            });
        }
        out.push(MarathonEvent::InstanceHealthChangedEvent {
            instance_id,
            run_spec_id: id.clone(),
            run_spec_version: version.clone(),
            healthy: after,
        });
    }
    out
}

/// `unhealthy_instance_kill_event` for an app's task killed for failing its health checks.
pub fn unhealthy_kill(t: &TaskRecord, host: &str) -> Option<MarathonEvent> {
    let TaskOwner::App { id, version } = &t.owner else {
        return None;
    };
    Some(MarathonEvent::UnhealthyInstanceKillEvent {
        app_id: id.clone(),
        task_id: t.info.task_id.0.clone(),
        instance_id: crate::services::path_id::instance_of(&t.info.task_id.0),
        version: version.clone(),
        reason: t.health_kill_cause().unwrap_or_default().to_owned(),
        host: host.to_owned(),
        slave_id: t.info.agent_id.0.clone(),
    })
}

/// The health of a task's checks together: `None` before any has a result, else whether all
/// that have one are alive.
pub fn healthy(results: &[HealthResult]) -> Option<bool> {
    let counted: Vec<&HealthResult> = results.iter().filter(|r| !r.is_pending()).collect();
    if counted.is_empty() {
        None
    } else {
        Some(counted.iter().all(|r| r.alive))
    }
}

/// `ipAddresses` as Marathon writes them: the host's address when it is one.
pub fn ip_addresses(host: &str) -> Vec<serde_json::Value> {
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![serde_json::json!({
            "ipAddress": ip.to_string(),
            "protocol": if ip.is_ipv4() { "IPv4" } else { "IPv6" },
        })],
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_proto::{TaskInfo, TaskState};

    fn rec(state: TaskState, owner: TaskOwner) -> TaskRecord {
        TaskRecord {
            info: TaskInfo {
                task_id: "web.instance-1._app.1".into(),
                agent_id: "a1".into(),
                ports: vec![31000],
                ..TaskInfo::default()
            },
            owner,
            state,
            status: None,
            last_seq: 0,
            staged_at: 0.0,
            started_at: None,
            unreachable_since: None,
            expunged: false,
            kill_requested: false,
            health: Vec::new(),
        }
    }

    fn app() -> TaskOwner {
        TaskOwner::App {
            id: "/web".into(),
            version: "v1".into(),
        }
    }

    fn result(alive: bool) -> HealthResult {
        HealthResult {
            alive,
            consecutive_failures: u32::from(!alive),
            first_success: alive.then_some(1.0),
            last_success: alive.then_some(1.0),
            last_failure: (!alive).then_some(1.0),
            last_failure_cause: None,
        }
    }

    #[test]
    fn a_state_change_is_a_status_update_event() {
        let old = rec(TaskState::TaskStaging, app());
        let new = rec(TaskState::TaskRunning, app());
        let events = task_changed(Some(&old), &new, "127.0.0.1");
        assert_eq!(events.len(), 1);
        let v = events[0].to_json("t");
        assert_eq!(v["eventType"], "status_update_event");
        assert_eq!(v["taskStatus"], "TASK_RUNNING");
        assert_eq!(v["appId"], "/web");
        assert_eq!(v["slaveId"], "a1");
        assert_eq!(v["ports"], serde_json::json!([31000]));
        assert_eq!(v["ipAddresses"][0]["ipAddress"], "127.0.0.1");
        assert!(
            task_changed(Some(&new), &new, "h").is_empty(),
            "no change, no event"
        );
        let staged = task_changed(None, &old, "h");
        assert_eq!(
            staged[0].to_json("t")["taskStatus"],
            "TASK_STAGING",
            "a new task"
        );
    }

    #[test]
    fn health_turning_is_a_health_status_changed_event() {
        let old = rec(TaskState::TaskRunning, app());
        let mut new = old.clone();
        new.health = vec![result(true)];
        let events = task_changed(Some(&old), &new, "h");
        let types: Vec<_> = events.iter().map(|e| e.event_type()).collect();
        assert_eq!(
            types,
            [
                "health_status_changed_event",
                "instance_health_changed_event"
            ]
        );
        assert_eq!(events[0].to_json("t")["alive"], true);
        let mut sick = new.clone();
        sick.health = vec![result(true), result(false)];
        assert_eq!(
            task_changed(Some(&new), &sick, "h")[0].to_json("t")["alive"],
            false
        );
        assert!(task_changed(Some(&sick), &sick, "h").is_empty());
    }

    #[test]
    fn job_tasks_make_no_marathon_events() {
        let job = TaskOwner::JobRun {
            job: "j".into(),
            run: 1,
        };
        let old = rec(TaskState::TaskStaging, job.clone());
        assert!(task_changed(Some(&old), &rec(TaskState::TaskRunning, job), "h").is_empty());
    }
}
