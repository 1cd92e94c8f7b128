//! The controller's side of a rolling replace: which old tasks of an app to kill now and how many
//! new ones to launch, from the app's live tasks and [`next_move`].

use super::config::CurrentConfig;
use super::rolling::{is_ready, next_move, Census};
use crate::services::app_definition::AppDefinition;
use crate::services::readiness::passed;
use crate::services::state::ServiceState;
use crate::store::records::TaskRecord;
use gantry_proto::TaskId;

/// The tasks to kill (old ones: not ready first, then the oldest ready) and the number of new
/// instances to launch, for `app` whose counting tasks are `active`.
pub fn kills_and_launches(
    svc: &ServiceState,
    app: &AppDefinition,
    active: &[&TaskRecord],
) -> (Vec<TaskId>, usize) {
    let mut config = CurrentConfig::new(svc, app);
    let mut old_ready: Vec<&TaskRecord> = Vec::new();
    let mut old_unready: Vec<&TaskRecord> = Vec::new();
    let mut c = Census::default();
    for t in active {
        let current = config.runs_current(t);
        match (current, is_ready(t) && passed(svc, app, t, current)) {
            (true, true) => c.new_ready += 1,
            (true, false) => c.new_unready += 1,
            (false, true) => old_ready.push(t),
            (false, false) => old_unready.push(t),
        }
    }
    c.old_ready = old_ready.len();
    c.old_unready = old_unready.len();
    let m = next_move(app.instances, app.upgrade_strategy, app.is_resident(), c);
    old_ready.sort_by(|a, b| a.staged_at.total_cmp(&b.staged_at));
    let kills = old_unready
        .iter()
        .take(m.kill_old_unready)
        .chain(old_ready.iter().take(m.kill_old_ready))
        .map(|t| t.info.task_id.clone())
        .collect();
    (kills, m.launch)
}
