//! Bounds on what one app may ask for, and text that cannot reach a process: Gantry refuses what
//! Marathon took and then choked on (`instances: 99999999` grew the master until it stopped
//! answering; `cpus: 1e308` was stored). Each failure names its field, for 422 `Object is not valid`.

use super::json_reader::index;
use super::model::AppDefinition;

/// The most instances one app may have. Larger services are split into several apps.
pub const MAX_INSTANCES: u32 = 100_000;
/// The most cpus one instance may ask for (no machine has more logical CPUs).
pub const MAX_CPUS: f64 = 10_000.0;
/// The most memory one instance may ask for, MiB (1 PiB).
pub const MAX_MEM_MIB: f64 = 1_073_741_824.0;
/// The most disk one instance may ask for, MiB (1 EiB).
pub const MAX_DISK_MIB: f64 = 1_099_511_627_776.0;
/// The most GPUs one instance may ask for (the most one agent reports).
pub const MAX_GPUS: u32 = crate::alloc::MAX_GPUS_PER_AGENT as u32;
/// The ids the API reads as sub-resources after an app or group id (`/v2/apps/a/tasks`,
/// `/v2/queue/a/delay`): an id segment with one of these names could be stored but never shown
/// or deleted.
pub const RESERVED_ID_SEGMENTS: [&str; 4] = ["tasks", "versions", "restart", "delay"];

/// Every bound `app` breaks, as `(path, message)`.
pub(super) fn limit_rules(app: &AppDefinition, v: &mut Vec<(String, String)>) {
    for seg in app
        .id
        .split('/')
        .filter(|s| RESERVED_ID_SEGMENTS.contains(s))
    {
        v.push((
            "/id".into(),
            format!(
                "'{seg}' is reserved: the API reads /{seg} after an id as a sub-resource, so \
                 choose another name for this segment"
            ),
        ));
    }
    if app.instances > MAX_INSTANCES {
        v.push((
            "/instances".into(),
            format!("must be at most {MAX_INSTANCES}; split a larger service into several apps"),
        ));
    }
    for (path, value, max) in [
        ("/cpus", app.cpus, MAX_CPUS),
        ("/mem", app.mem, MAX_MEM_MIB),
        ("/disk", app.disk, MAX_DISK_MIB),
    ] {
        if !value.is_finite() || value > max {
            v.push((path.into(), format!("must be at most {max}")));
        }
    }
    if app.gpus > MAX_GPUS {
        v.push(("/gpus".into(), format!("must be at most {MAX_GPUS}")));
    }
    for (k, val) in &app.env {
        let path = format!("/env/{k}");
        if k.is_empty() {
            v.push(("/env".into(), "an environment variable needs a name".into()));
        } else if k.contains('=') || k.contains('\0') {
            v.push((
                path.clone(),
                "a variable name may not contain '=' or NUL".into(),
            ));
        }
        if val.contains('\0') {
            v.push((path, "a value may not contain NUL".into()));
        }
    }
    let mut no_nul = |path: String, s: &str| {
        if s.contains('\0') {
            v.push((
                path,
                "may not contain NUL (it cannot be passed to a process)".into(),
            ));
        }
    };
    if let Some(cmd) = &app.cmd {
        no_nul("/cmd".into(), cmd);
    }
    for (i, a) in app.args.iter().flatten().enumerate() {
        no_nul(index("/args", i), a);
    }
    if let Some(u) = &app.user {
        no_nul("/user".into(), u);
    }
    for (i, f) in app.fetch.iter().enumerate() {
        no_nul(format!("{}/uri", index("/fetch", i)), &f.uri);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(app: &AppDefinition) -> Vec<(String, String)> {
        let mut v = Vec::new();
        limit_rules(app, &mut v);
        v
    }

    fn paths(app: &AppDefinition) -> Vec<String> {
        errors(app).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn a_plain_app_passes() {
        let mut a = AppDefinition::with_defaults("/web/tasks-api");
        a.cmd = Some("sleep 1".into());
        a.env.insert("A".into(), "b=c".into());
        assert!(errors(&a).is_empty(), "{:?}", errors(&a));
    }

    #[test]
    fn reserved_segments_are_refused_by_name() {
        for id in [
            "/a/tasks/x",
            "/tasks",
            "/a/versions",
            "/x/restart",
            "/q/delay",
        ] {
            let a = AppDefinition::with_defaults(id);
            let e = errors(&a);
            assert_eq!(e.len(), 1, "{id}: {e:?}");
            assert_eq!(e[0].0, "/id");
        }
    }

    #[test]
    fn huge_amounts_and_bad_text_name_their_fields() {
        let mut a = AppDefinition::with_defaults("/a");
        a.instances = 99_999_999;
        a.cpus = 1e308;
        a.mem = f64::INFINITY;
        a.disk = 1e300;
        a.gpus = 1000;
        a.cmd = Some("sleep\0 1".into());
        a.args = Some(vec!["ok".into(), "b\0d".into()]);
        a.env.insert(String::new(), "x".into());
        a.env.insert("A=B".into(), "y".into());
        a.env.insert("V".into(), "n\0l".into());
        let p = paths(&a);
        for want in [
            "/instances",
            "/cpus",
            "/mem",
            "/disk",
            "/gpus",
            "/cmd",
            "/args(1)",
            "/env",
            "/env/A=B",
            "/env/V",
        ] {
            assert!(p.iter().any(|x| x == want), "{want} missing from {p:?}");
        }
        a.instances = MAX_INSTANCES;
        a.cpus = MAX_CPUS;
        let p = paths(&a);
        assert!(
            !p.iter().any(|x| x == "/instances" || x == "/cpus"),
            "{p:?}"
        );
    }
}
