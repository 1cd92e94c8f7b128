//! v1 `devices`: deny every NVIDIA device except the task's GPUs and the control devices. Because
//! a v1 allow-all cgroup cannot punch holes into a deny, the cgroup switches to deny-by-default and
//! allows every block device and every char major of `/proc/devices` except NVIDIA's, then the
//! allow rules from `gantry-gpu`: everything else stays as on the host.

use super::super::fs;
use super::super::{CgroupError, Limits};
use std::collections::BTreeSet;
use std::path::Path;

/// The lines written, in order: `(file, rule)`.
pub fn plan(limits: &Limits) -> Vec<(&'static str, String)> {
    let Some(rules) = &limits.devices else {
        return Vec::new();
    };
    let denied: BTreeSet<u32> = rules.deny.iter().map(|r| r.major).collect();
    let mut out = vec![
        ("devices.deny", "a".to_string()),
        ("devices.allow", "b *:* rwm".to_string()),
    ];
    let majors: BTreeSet<u32> = limits.host_char_majors.iter().copied().collect();
    for m in majors.difference(&denied) {
        out.push(("devices.allow", format!("c {m}:* rwm")));
    }
    for r in &rules.allow {
        out.push(("devices.allow", r.to_string()));
    }
    out
}

pub fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    for (file, rule) in plan(limits) {
        fs::write(dir, file, rule)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_gpu::{DeviceAccessRules, DeviceRule};

    #[test]
    fn deny_all_then_host_majors_except_nvidia_then_the_gpus() {
        let rule = |major, minor| DeviceRule {
            major,
            minor,
            access: "rwm",
            path: String::new(),
        };
        let limits = Limits {
            devices: Some(DeviceAccessRules {
                deny: vec![rule(195, None)],
                allow: vec![rule(195, Some(0))],
            }),
            host_char_majors: vec![1, 195, 136],
            ..Default::default()
        };
        let lines: Vec<String> = plan(&limits)
            .into_iter()
            .map(|(f, r)| format!("{f} {r}"))
            .collect();
        assert_eq!(
            lines,
            vec![
                "devices.deny a",
                "devices.allow b *:* rwm",
                "devices.allow c 1:* rwm",
                "devices.allow c 136:* rwm",
                "devices.allow c 195:0 rwm",
            ]
        );
        assert!(
            plan(&Limits::default()).is_empty(),
            "no rules: devices untouched"
        );
    }
}
