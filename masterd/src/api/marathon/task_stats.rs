//! `taskStats` on an AppInfo (`embed=apps.taskStats`, spec §3.1): the app's live tasks counted
//! in four sets (started after the last scaling, running the latest configuration, running an
//! outdated one, all), each with its counts and the life time of its running tasks. A set with
//! no task is left out, as Marathon does. Emitted as `taskStats`, the name up to Marathon 1.8 and
//! the one marathon-python 0.13.0 reads (1.9 renamed it `tasksStats` by accident).

use crate::services::app_definition::AppDefinition;
use crate::services::health::{is_healthy, is_unhealthy};
use crate::store::records::{TaskOwner, TaskRecord};
use gantry_proto::TaskState;
use serde::Serialize;

/// The four sets.
#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    started_after_last_scaling: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    with_latest_config: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    with_outdated_config: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_summary: Option<Stats>,
}

/// One set: `{"stats": {"counts": {...}, "lifeTime": {...}}}`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Stats {
    stats: Inner,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Inner {
    counts: Counts,
    #[serde(skip_serializing_if = "Option::is_none")]
    life_time: Option<LifeTime>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
struct Counts {
    staged: usize,
    running: usize,
    healthy: usize,
    unhealthy: usize,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct LifeTime {
    average_seconds: f64,
    median_seconds: f64,
}

/// The version a task runs (empty for tasks that are not an app's).
fn version(t: &TaskRecord) -> &str {
    match &t.owner {
        TaskOwner::App { version, .. } => version,
        TaskOwner::JobRun { .. } | TaskOwner::Framework { .. } => "",
    }
}

fn stats(tasks: &[&TaskRecord], now: f64) -> Option<Stats> {
    if tasks.is_empty() {
        return None;
    }
    let mut counts = Counts::default();
    let mut lives: Vec<f64> = Vec::new();
    for t in tasks {
        match t.state {
            TaskState::TaskStaging | TaskState::TaskStarting => counts.staged += 1,
            TaskState::TaskRunning => {
                counts.running += 1;
                if let Some(started) = t.started_at {
                    lives.push((now - started).max(0.0));
                }
            }
            _ => {}
        }
        counts.healthy += usize::from(is_healthy(t));
        counts.unhealthy += usize::from(is_unhealthy(t));
    }
    let life_time = (!lives.is_empty()).then(|| {
        lives.sort_by(f64::total_cmp);
        let n = lives.len();
        let median = if n % 2 == 1 {
            lives[n / 2]
        } else {
            (lives[n / 2 - 1] + lives[n / 2]) / 2.0
        };
        LifeTime {
            average_seconds: lives.iter().sum::<f64>() / n as f64,
            median_seconds: median,
        }
    });
    Some(Stats {
        stats: Inner { counts, life_time },
    })
}

/// The stats of `app`'s live `tasks` at `now` (seconds since the epoch).
pub fn of(app: &AppDefinition, tasks: &[&TaskRecord], now: f64) -> TaskStats {
    let scaled = app.version_info.last_scaling_at.as_str();
    let config = app.version_info.last_config_change_at.as_str();
    // Versions are ISO timestamps, so they compare as strings.
    let after_scaling: Vec<&TaskRecord> = tasks
        .iter()
        .copied()
        .filter(|t| version(t) >= scaled && !scaled.is_empty())
        .collect();
    let (latest, outdated): (Vec<&TaskRecord>, Vec<&TaskRecord>) =
        tasks.iter().copied().partition(|t| version(t) >= config);
    TaskStats {
        started_after_last_scaling: stats(&after_scaling, now),
        with_latest_config: stats(&latest, now),
        with_outdated_config: stats(&outdated, now),
        total_summary: stats(tasks, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_proto::TaskInfo;
    use serde_json::json;

    fn task(version: &str, state: TaskState, started: Option<f64>) -> TaskRecord {
        TaskRecord {
            info: TaskInfo::default(),
            owner: TaskOwner::App {
                id: "/a".into(),
                version: version.into(),
            },
            state,
            status: None,
            last_seq: 0,
            staged_at: 0.0,
            started_at: started,
            unreachable_since: None,
            expunged: false,
            kill_requested: false,
            health: Vec::new(),
        }
    }

    #[test]
    fn tasks_fall_into_marathons_sets_and_empty_sets_are_left_out() {
        let mut app =
            AppDefinition::from_json(&json!({"id": "/a", "cmd": "x"}), "/").expect("valid");
        app.version_info.last_config_change_at = "2026-01-02T00:00:00.000Z".into();
        app.version_info.last_scaling_at = "2026-01-03T00:00:00.000Z".into();
        let old = task(
            "2026-01-01T00:00:00.000Z",
            TaskState::TaskRunning,
            Some(90.0),
        );
        let new = task(
            "2026-01-02T00:00:00.000Z",
            TaskState::TaskRunning,
            Some(70.0),
        );
        let staged = task("2026-01-02T00:00:00.000Z", TaskState::TaskStaging, None);
        let v = serde_json::to_value(of(&app, &[&old, &new, &staged], 100.0)).expect("json");
        assert!(v.get("startedAfterLastScaling").is_none(), "{v}");
        assert_eq!(
            v["withLatestConfig"]["stats"]["counts"],
            json!({"staged": 1, "running": 1, "healthy": 0, "unhealthy": 0})
        );
        assert_eq!(v["withOutdatedConfig"]["stats"]["counts"]["running"], 1);
        assert_eq!(
            v["totalSummary"]["stats"]["lifeTime"],
            json!({"averageSeconds": 20.0, "medianSeconds": 20.0})
        );
        assert_eq!(
            serde_json::to_value(of(&app, &[], 0.0)).expect("json"),
            json!({})
        );
    }
}
