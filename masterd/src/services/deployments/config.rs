//! Which configuration a task runs: an app's versions compared without what a scale changes
//! (`instances`, `version`, `versionInfo.lastScalingAt`), so that a scale keeps its tasks and a
//! config change or restart (a new `lastConfigChangeAt`) replaces them.

use crate::services::app_definition::AppDefinition;
use crate::services::state::ServiceState;
use crate::store::records::{TaskOwner, TaskRecord};
use serde_json::Value;
use std::collections::HashMap;

/// The app's JSON without the fields a scale-only change touches.
pub fn fingerprint(app: &AppDefinition) -> Value {
    let mut v = serde_json::to_value(app).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("instances");
        obj.remove("version");
        if let Some(vi) = obj.get_mut("versionInfo").and_then(Value::as_object_mut) {
            vi.remove("lastScalingAt");
        }
    }
    v
}

/// Do `a` and `b` run the same configuration (a change between them is scale-only)?
pub fn same_config(a: &AppDefinition, b: &AppDefinition) -> bool {
    fingerprint(a) == fingerprint(b)
}

/// Tells, per task version, whether it runs `app`'s current configuration. Built once per app and
/// run; a version no longer stored counts as old.
pub struct CurrentConfig<'a> {
    svc: &'a ServiceState,
    app: &'a AppDefinition,
    current: Value,
    seen: HashMap<String, bool>,
}

impl<'a> CurrentConfig<'a> {
    pub fn new(svc: &'a ServiceState, app: &'a AppDefinition) -> Self {
        CurrentConfig {
            svc,
            app,
            current: fingerprint(app),
            seen: HashMap::new(),
        }
    }

    /// Does `t` run the app's current configuration?
    pub fn runs_current(&mut self, t: &TaskRecord) -> bool {
        let TaskOwner::App { version, .. } = &t.owner else {
            return false;
        };
        if *version == self.app.version {
            return true;
        }
        if let Some(known) = self.seen.get(version) {
            return *known;
        }
        let same = self
            .svc
            .version(&self.app.id, version)
            .is_some_and(|v| fingerprint(v) == self.current);
        self.seen.insert(version.clone(), same);
        same
    }
}

/// A version timestamp for a change of an app now: the current time, or one millisecond after the
/// app's version when that is not older (two changes in one millisecond get distinct versions).
pub fn fresh_version(previous: Option<&str>, now: f64) -> String {
    let iso = crate::api::marathon::render::iso;
    let candidate = iso(now);
    match previous {
        Some(prev) if candidate.as_str() <= prev => chrono::DateTime::parse_from_rfc3339(prev)
            .map(|t| iso(t.timestamp_millis() as f64 / 1000.0 + 0.001))
            .unwrap_or(candidate),
        _ => candidate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_always_grow() {
        assert_eq!(fresh_version(None, 1.5), "1970-01-01T00:00:01.500Z");
        assert_eq!(
            fresh_version(Some("1970-01-01T00:00:01.500Z"), 1.5),
            "1970-01-01T00:00:01.501Z"
        );
        assert_eq!(
            fresh_version(Some("1970-01-01T00:00:09.000Z"), 1.5),
            "1970-01-01T00:00:09.001Z"
        );
        assert_eq!(
            fresh_version(Some("1970-01-01T00:00:01.000Z"), 1.5),
            "1970-01-01T00:00:01.500Z"
        );
    }

    #[test]
    fn a_scale_keeps_the_configuration_and_a_restart_does_not() {
        let mut a = AppDefinition::with_defaults("/a");
        a.stamp_config_change("2026-01-01T00:00:00.000Z");
        let mut scaled = a.clone();
        scaled.instances = 7;
        scaled.stamp_scaling("2026-01-01T00:00:01.000Z");
        assert!(same_config(&a, &scaled));
        let mut restarted = a.clone();
        restarted.stamp_config_change("2026-01-01T00:00:02.000Z");
        assert!(!same_config(&a, &restarted));
        let mut changed = a.clone();
        changed.cmd = Some("sleep 2".into());
        assert!(!same_config(&a, &changed));
    }
}
