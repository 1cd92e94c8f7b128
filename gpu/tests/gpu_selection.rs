//! GPU selection on one node: closest sets on the DGX-2 fixture and on a PCIe box, NUMA policies,
//! and property tests (never a taken or unhealthy GPU; `require` keeps to one node or says no).

use gantry_gpu::{
    select_gpus, FixtureInventory, Gpu, GpuHealth, GpuInventory, GpuSelection, MigMode, NumaPolicy,
};
use gantry_topology::PciBusId;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::path::Path;

fn dgx2() -> Vec<Gpu> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/dgx2-16gpu.json");
    FixtureInventory::from_file(Path::new(path))
        .and_then(|i| i.gpus())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A PCIe box without NVLink: 8 GPUs, 4 per node, pairs behind one switch.
fn pcie_box() -> Vec<Gpu> {
    (0..8u32)
        .map(|i| Gpu {
            index: i,
            minor: i,
            uuid: format!("GPU-{i}"),
            name: "pcie".into(),
            memory_mib: 16384,
            pci_bus_id: PciBusId::from_parts(0, 0x10 + u8::try_from(i).unwrap_or(0), 0, 0),
            numa_node: Some(i / 4),
            cpu_affinity: vec![],
            nvlink_peers: vec![],
            pcie_switch: PciBusId::parse(&format!("0000:{:02x}:00.0", 0x80 + i / 2)),
            mig_mode: MigMode::Disabled,
            health: GpuHealth::Healthy,
            mig: None,
        })
        .collect()
}

fn pick(gpus: &[Gpu], taken: &[u32], n: usize, p: NumaPolicy) -> Option<GpuSelection> {
    select_gpus(gpus, &taken.iter().copied().collect(), n, p)
}

#[test]
fn two_gpus_on_dgx2_share_a_switch_and_a_node() {
    let s = pick(&dgx2(), &[], 2, NumaPolicy::Require).expect("fits");
    assert_eq!(s.gpus, vec![0, 1]);
    assert_eq!(s.numa_node, Some(0));
    // GPU 0 taken: its switch partner is alone, the next whole pair is preferred.
    let s = pick(&dgx2(), &[0], 2, NumaPolicy::Require).expect("fits");
    assert_eq!(s.gpus, vec![2, 3]);
}

#[test]
fn require_fails_when_no_node_has_enough_and_prefer_spans_nodes() {
    let gpus = dgx2();
    let taken: Vec<u32> = (0..6).chain(8..14).collect(); // 2 free per node
    assert_eq!(pick(&gpus, &taken, 3, NumaPolicy::Require), None);
    let s = pick(&gpus, &taken, 3, NumaPolicy::Prefer).expect("spans nodes");
    assert_eq!(s.gpus.len(), 3);
    assert_eq!(s.numa_node, None);
    let s = pick(&gpus, &taken, 2, NumaPolicy::Prefer).expect("one node");
    assert_eq!(
        s,
        GpuSelection {
            gpus: vec![6, 7],
            numa_node: Some(0)
        }
    );
}

#[test]
fn prefer_picks_the_node_with_fewest_free_gpus_to_keep_blocks_whole() {
    let gpus = dgx2();
    let taken: Vec<u32> = (0..6).collect(); // node 0: 6,7 free; node 1: all 8 free
    let s = pick(&gpus, &taken, 2, NumaPolicy::Prefer).expect("fits");
    assert_eq!(s.gpus, vec![6, 7]);
}

#[test]
fn pcie_box_prefers_switch_pairs_then_same_node() {
    let gpus = pcie_box();
    assert_eq!(
        pick(&gpus, &[], 2, NumaPolicy::None).map(|s| s.gpus),
        Some(vec![0, 1])
    );
    // 1 and 2 taken: 0 and 3 are alone behind their switches; on node 0 only 0 and 3 are free.
    let s = pick(&gpus, &[1, 2], 2, NumaPolicy::Prefer).expect("fits");
    assert_eq!(
        s.gpus,
        vec![4, 5],
        "a whole switch pair on node 1 beats two strays on node 0"
    );
    let s = pick(&gpus, &[1, 2], 4, NumaPolicy::Prefer).expect("fits");
    assert_eq!(s.gpus, vec![4, 5, 6, 7]);
    let s = pick(&gpus, &[1, 2, 5], 4, NumaPolicy::Prefer).expect("spans");
    assert_eq!(s.gpus.len(), 4);
    assert_eq!(s.numa_node, None);
}

#[test]
fn nvlink_pairs_beat_switch_pairs() {
    let mut gpus = pcie_box();
    gpus[0].nvlink_peers = vec![2];
    gpus[2].nvlink_peers = vec![0];
    assert_eq!(
        pick(&gpus, &[], 2, NumaPolicy::None).map(|s| s.gpus),
        Some(vec![0, 2])
    );
}

#[test]
fn unhealthy_gpus_are_never_chosen_and_zero_gpus_is_an_empty_selection() {
    let mut gpus = dgx2();
    for g in gpus.iter_mut().take(7) {
        g.health = GpuHealth::Unhealthy {
            reason: "XID 79".into(),
        };
    }
    let s = pick(&gpus, &[], 2, NumaPolicy::Require).expect("node 1");
    assert_eq!(s.numa_node, Some(1));
    assert_eq!(
        pick(&gpus, &[], 0, NumaPolicy::Require).map(|s| s.gpus),
        Some(vec![])
    );
    assert_eq!(pick(&gpus, &[], 10, NumaPolicy::None), None);
}

fn policy() -> impl Strategy<Value = NumaPolicy> {
    prop_oneof![
        Just(NumaPolicy::None),
        Just(NumaPolicy::Prefer),
        Just(NumaPolicy::Require)
    ]
}

fn machine() -> impl Strategy<Value = Vec<Gpu>> {
    prop_oneof![Just(dgx2()), Just(pcie_box())]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_selects_taken_or_unhealthy_and_require_stays_on_one_node(
        mut gpus in machine(),
        taken in proptest::collection::btree_set(0u32..16, 0..16),
        sick in proptest::collection::btree_set(0u32..16, 0..6),
        count in 0usize..10,
        p in policy(),
    ) {
        for g in gpus.iter_mut().filter(|g| sick.contains(&g.index)) {
            g.health = GpuHealth::Unhealthy { reason: "test".into() };
        }
        let usable: Vec<&Gpu> = gpus
            .iter()
            .filter(|g| g.health.is_healthy() && !taken.contains(&g.index))
            .collect();
        let max_on_a_node = [0u32, 1]
            .iter()
            .map(|n| usable.iter().filter(|g| g.numa_node == Some(*n)).count())
            .max()
            .unwrap_or(0);
        match select_gpus(&gpus, &taken, count, p) {
            Some(sel) => {
                let set: BTreeSet<u32> = sel.gpus.iter().copied().collect();
                prop_assert_eq!(set.len(), count, "distinct and exactly count");
                for id in &sel.gpus {
                    prop_assert!(!taken.contains(id), "took taken GPU {}", id);
                    prop_assert!(!sick.contains(id), "took unhealthy GPU {}", id);
                }
                if p == NumaPolicy::Require && count > 0 {
                    let nodes: BTreeSet<Option<u32>> = gpus
                        .iter()
                        .filter(|g| set.contains(&g.index))
                        .map(|g| g.numa_node)
                        .collect();
                    prop_assert_eq!(nodes.len(), 1);
                    prop_assert_eq!(nodes.into_iter().next().flatten(), sel.numa_node);
                }
                if p == NumaPolicy::Prefer && count <= max_on_a_node && count > 0 {
                    prop_assert!(sel.numa_node.is_some(), "prefer must stay on one node when it can");
                }
            }
            None => {
                match p {
                    NumaPolicy::Require => prop_assert!(count > max_on_a_node),
                    _ => prop_assert!(count > usable.len()),
                }
            }
        }
    }
}
