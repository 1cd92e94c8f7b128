//! The shipped H100 MIG fixture (`fixtures/h100-mig-mixed.json`): 4 H100 80GB, GPU 0 split
//! 3g.40gb + 2g.20gb + 1g.10gb + 1g.10gb, GPU 1 split 7 x 1g.10gb, GPUs 2 and 3 MIG disabled;
//! every MIG device a GPU of its own with its parent's device node and its own caps nodes;
//! device rules, environment and the wire form of a slice; invalid MIG fixtures are refused.

use gantry_gpu::{
    formula_minor, gpu_device_rules_for, visible_devices_env, FixtureInventory, GpuInventory,
    HealthEvent, HealthEventKind, MigMode,
};
use gantry_proto::{GpuAssignment, GpuInfo};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/h100-mig-mixed.json");
const PROC_DEVICES: &str = "Character devices:\n195 nvidia\n235 nvidia-caps\n510 nvidia-uvm\n";

fn inventory() -> FixtureInventory {
    FixtureInventory::from_file(Path::new(FIXTURE)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn four_h100_of_which_two_are_split_into_eleven_mig_devices() {
    let gpus = inventory().gpus().expect("gpus");
    let whole: Vec<_> = gpus.iter().filter(|g| g.is_whole()).collect();
    let parents: Vec<_> = gpus
        .iter()
        .filter(|g| !g.is_mig_device() && g.mig_mode == MigMode::Enabled)
        .collect();
    assert_eq!(whole.iter().map(|g| g.index).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(parents.iter().map(|g| g.index).collect::<Vec<_>>(), [0, 1]);
    let mut profiles: BTreeMap<(u32, &str), usize> = BTreeMap::new();
    for g in gpus.iter().filter(|g| g.is_mig_device()) {
        let m = g.mig.as_ref().expect("slice");
        *profiles
            .entry((m.parent_index, m.profile.as_str()))
            .or_default() += 1;
        let parent = &gpus[m.parent_index as usize];
        assert_eq!(
            g.minor, parent.minor,
            "a slice is opened through its parent's node"
        );
        assert_eq!(g.numa_node, parent.numa_node);
        assert!(g.uuid.starts_with("MIG-"), "{}", g.uuid);
        assert_eq!(g.index / 1000, m.parent_index + 1, "{}", g.index);
        assert!(g.memory_mib < parent.memory_mib);
        assert_eq!(
            m.caps_minors,
            vec![
                formula_minor((parent.minor, m.gpu_instance, None)),
                formula_minor((parent.minor, m.gpu_instance, Some(m.compute_instance)))
            ]
        );
    }
    assert_eq!(
        profiles.into_iter().collect::<Vec<_>>(),
        vec![
            ((0, "1g.10gb"), 2),
            ((0, "2g.20gb"), 1),
            ((0, "3g.40gb"), 1),
            ((1, "1g.10gb"), 7)
        ]
    );
}

#[test]
fn a_slice_gets_its_parent_node_its_caps_and_its_uuid_in_both_variables() {
    let gpus = inventory().gpus().expect("gpus");
    let slice = gpus
        .iter()
        .find(|g| g.mig_profile() == Some("2g.20gb"))
        .expect("the 2g.20gb slice");
    let caps = slice
        .mig
        .as_ref()
        .map(|m| m.caps_minors.clone())
        .unwrap_or_default();
    assert_eq!(caps, vec![30, 31]);
    let rules = gpu_device_rules_for(&[slice.minor], &caps, PROC_DEVICES);
    let allow: Vec<String> = rules.allow.iter().map(ToString::to_string).collect();
    assert!(allow.contains(&"c 195:0 rwm".to_string()), "{allow:?}");
    assert!(allow.contains(&"c 235:30 rwm".to_string()), "{allow:?}");
    assert!(allow.contains(&"c 235:31 rwm".to_string()), "{allow:?}");
    assert_eq!(allow.iter().filter(|a| a.starts_with("c 235:")).count(), 2);
    assert!(rules.deny.iter().any(|d| d.to_string() == "c 235:* rwm"));
    let env: BTreeMap<String, String> = visible_devices_env(&[slice], true).into_iter().collect();
    assert_eq!(env["NVIDIA_VISIBLE_DEVICES"], slice.uuid);
    assert_eq!(env["CUDA_VISIBLE_DEVICES"], slice.uuid);

    // On the wire: the report keeps the slice, the assignment carries the caps minors.
    let info = GpuInfo::from(slice);
    assert_eq!(
        info.mig.as_ref().map(|m| m.profile.as_str()),
        Some("2g.20gb")
    );
    let back = gantry_gpu::Gpu::try_from(&info).expect("round trip");
    assert_eq!(back.mig, slice.mig);
    let a = GpuAssignment::from(slice);
    assert_eq!((a.minor, a.caps_minors.clone()), (0, vec![30, 31]));
    let json = serde_json::to_value(GpuAssignment::from(&gpus[2])).expect("json");
    assert!(
        json.get("caps_minors").is_none(),
        "omitted for a whole GPU: {json}"
    );
}

#[test]
fn a_fault_on_the_parent_makes_its_slices_unhealthy() {
    let inv = inventory();
    let parent = inv.gpus().expect("gpus")[1].uuid.clone();
    inv.inject_event(HealthEvent {
        gpu_uuid: parent,
        kind: HealthEventKind::Xid { xid: 79 },
    });
    inv.poll_health(Duration::ZERO).expect("poll");
    let gpus = inv.gpus().expect("gpus");
    for g in &gpus {
        let on_gpu1 = g.index == 1 || g.mig.as_ref().is_some_and(|m| m.parent_index == 1);
        assert_eq!(
            !g.health.is_healthy(),
            on_gpu1,
            "{} {:?}",
            g.index,
            g.health
        );
    }
}

#[test]
fn inconsistent_mig_fixtures_are_refused() {
    let text = std::fs::read_to_string(FIXTURE).expect("fixture");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = v.clone();
        f(&mut v);
        FixtureInventory::from_json(&v.to_string(), Path::new("<mutated>"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = mutate(&|v| v["gpus"][0]["mig_mode"] = "disabled".into());
    assert!(e.contains("not enabled"), "{e}");
    let e = mutate(&|v| v["gpus"][4]["mig"]["profile"] = "1x.10gb".into());
    assert!(e.contains("invalid profile"), "{e}");
    let e = mutate(&|v| v["gpus"][5]["mig"]["caps_minors"][0] = 21.into());
    assert!(e.contains("caps minor 21"), "{e}");
    let e = mutate(&|v| v["gpus"][4]["mig"]["parent_index"] = 9.into());
    assert!(e.contains("not listed"), "{e}");
    assert_eq!(mutate(&|_| {}), "", "the fixture itself is valid");
}
