//! Device rules from GPU minors alone (what an agent's task placement carries), for hosts where
//! the NVIDIA driver may be absent: `nvidia-uvm` is allowed when `/proc/devices` lists it and
//! simply not mentioned otherwise, instead of being an error as in [`crate::gpu_device_rules`].

use crate::device_rules::{
    DeviceAccessRules, DeviceRule, NVIDIACTL_MINOR, NVIDIA_MAJOR, NVIDIA_MODESET_MINOR,
};
use std::collections::BTreeSet;

fn rwm(major: u32, minor: Option<u32>, path: String) -> DeviceRule {
    DeviceRule {
        major,
        minor,
        access: "rwm",
        path,
    }
}

/// Char majors by name from `/proc/devices` text.
pub fn proc_char_majors(proc_devices: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut in_char = false;
    for line in proc_devices.lines() {
        let line = line.trim();
        if line.ends_with(':') {
            in_char = line.eq_ignore_ascii_case("Character devices:");
            continue;
        }
        if let (true, Some((m, name))) = (in_char, line.split_once(char::is_whitespace)) {
            if let Ok(m) = m.parse() {
                out.push((m, name.trim().to_string()));
            }
        }
    }
    out
}

/// Deny major 195 and every `nvidia*` char major; allow the control devices and `minors`.
pub fn gpu_device_rules_for_minors(minors: &[u32], proc_devices: &str) -> DeviceAccessRules {
    let majors = proc_char_majors(proc_devices);
    let mut deny_majors: BTreeSet<u32> = majors
        .iter()
        .filter(|(_, n)| n.starts_with("nvidia"))
        .map(|(m, _)| *m)
        .collect();
    deny_majors.insert(NVIDIA_MAJOR);
    let deny = deny_majors
        .into_iter()
        .map(|m| rwm(m, None, format!("every device of major {m}")))
        .collect();
    let mut allow = vec![
        rwm(NVIDIA_MAJOR, Some(NVIDIACTL_MINOR), "/dev/nvidiactl".into()),
        rwm(
            NVIDIA_MAJOR,
            Some(NVIDIA_MODESET_MINOR),
            "/dev/nvidia-modeset".into(),
        ),
    ];
    if let Some((uvm, _)) = majors.iter().find(|(_, n)| n == "nvidia-uvm") {
        allow.push(rwm(*uvm, Some(0), "/dev/nvidia-uvm".into()));
        allow.push(rwm(*uvm, Some(1), "/dev/nvidia-uvm-tools".into()));
    }
    let set: BTreeSet<u32> = minors.iter().copied().collect();
    allow.extend(
        set.into_iter()
            .map(|m| rwm(NVIDIA_MAJOR, Some(m), format!("/dev/nvidia{m}"))),
    );
    DeviceAccessRules { deny, allow }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_without_a_driver_and_with_one() {
        let r = gpu_device_rules_for_minors(&[0, 0], "Character devices:\n  1 mem\n");
        let deny: Vec<String> = r.deny.iter().map(ToString::to_string).collect();
        let allow: Vec<String> = r.allow.iter().map(ToString::to_string).collect();
        assert_eq!(deny, vec!["c 195:* rwm"]);
        assert_eq!(allow, vec!["c 195:255 rwm", "c 195:254 rwm", "c 195:0 rwm"]);
        let r =
            gpu_device_rules_for_minors(&[3], "Character devices:\n195 nvidia\n510 nvidia-uvm\n");
        let deny: Vec<String> = r.deny.iter().map(ToString::to_string).collect();
        assert_eq!(deny, vec!["c 195:* rwm", "c 510:* rwm"]);
        assert!(r.allow.iter().any(|a| a.to_string() == "c 510:0 rwm"));
        assert!(r.allow.iter().any(|a| a.to_string() == "c 195:3 rwm"));
    }
}
