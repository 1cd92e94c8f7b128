//! Marathon's timestamps (ISO-8601 UTC with milliseconds and `Z`), the AppInfo as a JSON value, and
//! the pieces of AppInfo and queue items that say why instances wait. The typed views that the
//! API serialises are in [`super::views`].

use super::views::{last_failure, Embeds, Renderer};
use crate::services::app_definition::AppDefinition;
use crate::state::MasterState;
use serde_json::{json, Map, Value};

/// Seconds since the epoch as Marathon writes timestamps (`2015-09-25T15:13:48.343Z`).
pub fn iso(secs: f64) -> String {
    chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// An AppInfo as a JSON value, for the pages and answers that edit or pick from one (the API's
/// hot paths serialise [`super::views::AppInfoView`] directly).
pub fn app_info(st: &MasterState, app: &AppDefinition, full: bool) -> Value {
    let embeds = Embeds {
        tasks: full,
        ..Embeds::default()
    };
    serde_json::to_value(Renderer::new(st, embeds).app(app))
        .unwrap_or_else(|_| Value::Object(Map::new()))
}

/// Instances of `app` that are missing: its instance count less its tasks that are not being
/// killed.
pub fn missing_instances(st: &MasterState, app: &AppDefinition) -> usize {
    let have = st
        .cluster
        .app_tasks(&app.id)
        .filter(|t| !t.kill_requested && !t.expunged)
        .count();
    (app.instances as usize).saturating_sub(have)
}

/// Why instances of `app` are not running, as a Gantry extension of the AppInfo (`waiting`, only
/// with `embed=app.waiting` / `embed=apps.waiting`, since strict clients reject unknown keys):
/// the placement reason (what no agent offers), the launch delay after failures and the last
/// failure's message. `None` when nothing waits.
pub fn waiting(st: &MasterState, app: &AppDefinition, now: f64) -> Option<Value> {
    let delay = st
        .services
        .launch_delays
        .get(&app.id)
        .filter(|d| d.until > now);
    let w = st.services.waiting.get(&app.id);
    if delay.is_none() && w.is_none() {
        return None;
    }
    let mut out = Map::new();
    out.insert(
        "count".into(),
        json!(w.map_or_else(|| missing_instances(st, app), |w| w.count)),
    );
    if let Some(w) = w {
        out.insert("reason".into(), json!(w.reason));
        out.insert("since".into(), json!(iso(w.since)));
    }
    if let Some(d) = delay {
        out.insert(
            "delay".into(),
            json!({"timeLeftSeconds": (d.until - now).ceil() as i64}),
        );
    }
    if let Some(f) = last_failure(st, &app.id) {
        out.insert("lastFailureMessage".into(), json!(f.message));
    }
    Some(Value::Object(out))
}

/// True when the query's `embed` asks for `readinessCheckResults` (`apps.readiness`,
/// `app.readiness`, `group.apps.readiness` or plain `readiness`).
pub fn embeds_readiness<'a>(mut embeds: impl Iterator<Item = &'a str>) -> bool {
    embeds.any(|e| e == "readiness" || e.ends_with(".readiness"))
}

/// Adds `readinessCheckResults` to an AppInfo: the results of the app's new tasks while a
/// deployment changes it, `[]` otherwise.
pub fn add_readiness(st: &MasterState, app: &AppDefinition, info: &mut Value) {
    let results = crate::services::readiness::results_of(&st.services, &st.cluster, &app.id);
    if let Some(obj) = info.as_object_mut() {
        obj.insert(
            "readinessCheckResults".into(),
            serde_json::to_value(results).unwrap_or_else(|_| json!([])),
        );
    }
}

/// True when the query's `embed` asks for the `waiting` extension.
pub fn embeds_waiting<'a>(mut embeds: impl Iterator<Item = &'a str>) -> bool {
    embeds.any(|e| e == "app.waiting" || e == "apps.waiting")
}

#[cfg(test)]
mod tests {
    use super::iso;

    #[test]
    fn timestamps_end_in_z_with_millis() {
        assert_eq!(iso(1443194028.343), "2015-09-25T15:13:48.343Z");
        assert_eq!(iso(0.0), "1970-01-01T00:00:00.000Z");
    }
}
