//! Status updates to frameworks: every new status of a framework's task becomes an UPDATE event
//! with a fresh uuid, sent one at a time per task and resent every [`RETRY`] until the framework
//! ACKNOWLEDGEs it (Mesos's status update manager, kept by the master here). Statuses the master
//! made up (agent lost, reconciliation) carry no uuid and are sent once.

use super::records::{from_master, status_json};
use super::{Framework, PendingUpdate};
use crate::cluster::Core;
use crate::store::records::TaskRecord;
use base64::Engine;
use gantry_proto::{TaskId, TaskStatus};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long an unacknowledged update waits before it is sent again (Mesos's minimum).
pub const RETRY: Duration = Duration::from_secs(10);

/// Turns the core's task changes into UPDATE events until the process ends.
pub async fn run(core: Arc<Core>, mut rx: mpsc::UnboundedReceiver<TaskRecord>) {
    while let Some(rec) = rx.recv().await {
        let (Some(fw_id), Some(status)) = (rec.owner.framework_id(), &rec.status) else {
            continue;
        };
        let mut guard = core.state().await;
        let Some(fw) = guard.frameworks.frameworks.get_mut(fw_id) else {
            continue; // removed meanwhile
        };
        // TASK_KILLING goes only to frameworks that asked for it (as Mesos does).
        if status.state == gantry_proto::TaskState::TaskKilling
            && !fw.record.has_capability("TASK_KILLING_STATE")
        {
            continue;
        }
        deliver(fw, status.clone());
    }
}

/// The UPDATE event of a status.
pub fn update_event(fw: &Framework, status: &TaskStatus, uuid: Option<&str>) -> Value {
    json!({"type": "UPDATE", "update": {"status": status_json(status, fw.partition_aware(), uuid)}})
}

/// Queues (and when nothing of that task is in flight, sends) a status for acknowledgement; a
/// master-made status is just sent.
pub fn deliver(fw: &mut Framework, status: TaskStatus) {
    if from_master(&status) {
        fw.send(update_event(fw, &status, None));
        return;
    }
    let uuid = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
    let event = update_event(fw, &status, Some(&uuid));
    let connected = fw.conn.is_some();
    let queue = fw.pending.entry(status.task_id.clone()).or_default();
    let first = queue.is_empty();
    queue.push_back(PendingUpdate {
        uuid,
        event: event.clone(),
        sent_at: None,
    });
    if first && connected && fw.send(event) {
        if let Some(head) = fw
            .pending
            .get_mut(&status.task_id)
            .and_then(|q| q.front_mut())
        {
            head.sent_at = Some(Instant::now());
        }
    }
}

/// An ACKNOWLEDGE: the task's update in flight is done if `uuid` is its; the next one goes out.
/// Returns false when nothing waited for that uuid (Mesos ignores such acknowledgements too).
pub fn acknowledge(fw: &mut Framework, task: &TaskId, uuid: &str) -> bool {
    let Some(queue) = fw.pending.get_mut(task) else {
        return false;
    };
    if queue.front().is_none_or(|h| h.uuid != uuid) {
        return false;
    }
    queue.pop_front();
    if queue.is_empty() {
        fw.pending.remove(task);
        return true;
    }
    send_head(fw, task);
    true
}

fn send_head(fw: &mut Framework, task: &TaskId) {
    let Some(event) = fw
        .pending
        .get(task)
        .and_then(|q| q.front())
        .map(|h| h.event.clone())
    else {
        return;
    };
    if fw.send(event) {
        if let Some(h) = fw.pending.get_mut(task).and_then(|q| q.front_mut()) {
            h.sent_at = Some(Instant::now());
        }
    }
}

/// Sends every task's first unacknowledged update that was never sent or waited [`RETRY`].
pub fn resend_due(fws: &mut super::FrameworkState, now: Instant) {
    for fw in fws.frameworks.values_mut() {
        if fw.conn.is_none() {
            continue;
        }
        let due: Vec<TaskId> = fw
            .pending
            .iter()
            .filter(|(_, q)| {
                q.front()
                    .is_some_and(|h| h.sent_at.is_none_or(|at| now.duration_since(at) >= RETRY))
            })
            .map(|(t, _)| t.clone())
            .collect();
        for t in due {
            send_head(fw, &t);
        }
    }
}

/// After a (re)subscription: every task's first unacknowledged update goes out again.
pub fn resend_all(fw: &mut Framework) {
    let tasks: Vec<TaskId> = fw.pending.keys().cloned().collect();
    for t in tasks {
        send_head(fw, &t);
    }
}
