//! The shipped DGX-2 GPU fixture against the DGX-2 hwloc fixture: 16 V100, 8 per NUMA node, the
//! same UUIDs, PCI ids and NUMA nodes; NUMA domains; mismatch reporting; injected health events.

use gantry_gpu::{
    check_numa_locality, numa_domains, open_inventory, FixtureInventory, GpuHealth, GpuInventory,
    HealthEvent, HealthEventKind, LocalityMismatch, MigMode,
};
use gantry_topology::Topology;
use std::path::{Path, PathBuf};
use std::time::Duration;

const GPU_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/dgx2-16gpu.json");

fn dgx2_topology() -> Topology {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/hwloc/nvidia-dgx2-16gpu.xml"
    ));
    assert!(
        path.is_file(),
        "hwloc fixture not found at {}: these tests need ../shared/fixtures/hwloc next to the workspace",
        path.display()
    );
    Topology::from_xml_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn inventory() -> FixtureInventory {
    FixtureInventory::from_file(Path::new(GPU_FIXTURE)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn fixture_lists_sixteen_v100_eight_per_node_all_nvlinked() {
    let gpus = inventory().gpus().expect("gpus");
    assert_eq!(gpus.len(), 16);
    for node in [0, 1] {
        assert_eq!(gpus.iter().filter(|g| g.numa_node == Some(node)).count(), 8);
    }
    for (i, g) in (0u32..).zip(&gpus) {
        assert_eq!(g.index, i);
        assert_eq!(g.minor, i);
        assert!(g.name.starts_with("Tesla V100-SXM3-32GB"), "{}", g.name);
        assert_eq!(g.memory_mib, 32768);
        assert_eq!(g.nvlink_peers.len(), 15, "NVSwitch connects every pair");
        assert!(!g.nvlink_peers.contains(&g.index));
        assert_eq!(g.mig_mode, MigMode::Unsupported);
        assert_eq!(g.health, GpuHealth::Healthy);
    }
    assert_eq!(gpus[15].pci_bus_id.as_str(), "0000:e7:00.0");
    assert_eq!(gpus[0].cpu_affinity, vec![0, 1]);
    assert_eq!(gpus[8].cpu_affinity, vec![24, 25]);
}

#[test]
fn fixture_agrees_with_hwloc_on_pci_ids_uuids_numa_and_switches() {
    let topo = dgx2_topology();
    let gpus = inventory().gpus().expect("gpus");
    assert_eq!(check_numa_locality(&gpus, &topo), vec![]);
    for g in &gpus {
        let loc = topo
            .gpu_by_pci(&g.pci_bus_id)
            .expect("hwloc knows every fixture GPU");
        assert_eq!(loc.nvml.as_ref().map(|n| n.index), Some(g.index));
        assert_eq!(loc.pcie_switch, g.pcie_switch);
        assert_eq!(loc.cpus, g.cpu_affinity);
    }
}

#[test]
fn numa_mismatches_are_reported_not_resolved() {
    let topo = dgx2_topology();
    let mut gpus = inventory().gpus().expect("gpus");
    gpus[3].numa_node = Some(1);
    gpus[9].uuid = "GPU-00000000-0000-0000-0000-000000000000".into();
    let removed = gpus.remove(15);
    let found = check_numa_locality(&gpus, &topo);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(matches!(
        &found[0],
        LocalityMismatch::NumaNode {
            index: 3,
            inventory: Some(1),
            hwloc: Some(0),
            ..
        }
    ));
    assert!(matches!(&found[1], LocalityMismatch::Uuid { .. }));
    assert_eq!(
        found[2],
        LocalityMismatch::MissingInInventory {
            pci_bus_id: removed.pci_bus_id
        }
    );
    assert_eq!(
        found[0].to_string(),
        "GPU 3 (0000:3b:00.0): NVML says NUMA node 1, hwloc says 0"
    );
    // The inventory itself is untouched: GPU 3 still claims node 1.
    assert_eq!(gpus[3].numa_node, Some(1));
    // A GPU hwloc does not know.
    let xeon = Topology::from_xml_file(&PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/hwloc/xeon-2numa-3gpu-pci.xml"
    )))
    .expect("xeon fixture");
    let all = check_numa_locality(&gpus[..1], &xeon);
    assert!(matches!(
        all[0],
        LocalityMismatch::MissingInHwloc { index: 0, .. }
    ));
    assert_eq!(
        all.len(),
        4,
        "1 unknown to hwloc + 3 unknown to the inventory"
    );
}

#[test]
fn numa_domains_carry_cpus_memory_and_gpus() {
    let topo = dgx2_topology();
    let gpus = inventory().gpus().expect("gpus");
    let domains = numa_domains(&topo, &gpus);
    assert_eq!(domains.len(), 2);
    assert_eq!(domains[0].id, 0);
    assert_eq!(domains[0].cpus, vec![0, 1]);
    assert_eq!(domains[0].gpus, (0..8).collect::<Vec<_>>());
    assert_eq!(domains[1].gpus, (8..16).collect::<Vec<_>>());
    assert_eq!(domains[0].mem, 810_234_351_616.0 / 1_048_576.0);
    let cpu_only = numa_domains(&topo, &[]);
    assert!(cpu_only.iter().all(|d| d.gpus.is_empty()));
}

#[test]
fn injected_critical_xid_marks_the_gpu_unhealthy_with_its_reason() {
    let inv = inventory();
    let uuid = inv.gpus().expect("gpus")[4].uuid.clone();
    inv.inject_event(HealthEvent {
        gpu_uuid: uuid.clone(),
        kind: HealthEventKind::Xid { xid: 31 },
    });
    inv.inject_event(HealthEvent {
        gpu_uuid: uuid.clone(),
        kind: HealthEventKind::Xid { xid: 79 },
    });
    let events = inv.poll_health(Duration::ZERO).expect("poll");
    assert_eq!(events.len(), 2);
    assert!(inv.poll_health(Duration::ZERO).expect("poll").is_empty());
    let gpus = inv.gpus().expect("gpus");
    assert_eq!(
        gpus[4].health,
        GpuHealth::Unhealthy {
            reason: "critical XID 79".into()
        }
    );
    assert_eq!(gpus.iter().filter(|g| g.health.is_healthy()).count(), 15);
}

#[test]
fn open_inventory_uses_the_fixture_and_never_fails_without_one() {
    let inv = open_inventory(Some(Path::new(GPU_FIXTURE))).expect("fixture inventory");
    assert!(inv.describe().contains("dgx2-16gpu.json"));
    assert_eq!(inv.gpus().expect("gpus").len(), 16);
    // Without a fixture: NVML, or (no driver here) an empty inventory that says why.
    let live = open_inventory(None).expect("never an error without a fixture");
    let gpus = live.gpus().expect("gpus");
    if live.describe().starts_with("no GPUs") {
        assert!(gpus.is_empty());
        assert!(live.describe().contains("NVML"), "{}", live.describe());
    } else {
        assert!(live.describe().starts_with("NVML"), "{}", live.describe());
    }
}

#[test]
fn invalid_fixtures_are_rejected_with_the_reason() {
    let text = std::fs::read_to_string(GPU_FIXTURE).expect("read fixture");
    let dup = text.replacen("\"minor\": 1,", "\"minor\": 0,", 1);
    let err =
        FixtureInventory::from_json(&dup, Path::new("dup.json")).expect_err("duplicate minor");
    assert!(err.to_string().contains("duplicate minor 0"), "{err}");
    let err = FixtureInventory::from_json("{\"gpus\": [{}]}", Path::new("bad.json"))
        .expect_err("missing fields");
    assert!(err.to_string().contains("bad.json"), "{err}");
}

#[test]
fn domains_with_cores_give_each_node_its_cores_and_eight_gpus() {
    let topo = dgx2_topology();
    let gpus = inventory().gpus().expect("gpus");
    let domains = gantry_gpu::numa_domains_with_cores(&topo, &gpus);
    assert_eq!(domains.len(), 2);
    for d in &domains {
        assert_eq!(d.gpus.len(), 8, "node {}", d.id);
        assert!(!d.cores.is_empty(), "node {} has cores", d.id);
        let pus: Vec<u32> = d.cores.iter().flatten().copied().collect();
        let mut sorted = pus.clone();
        sorted.sort_unstable();
        let mut cpus = d.cpus.clone();
        cpus.sort_unstable();
        assert_eq!(
            sorted, cpus,
            "node {}: the cores hold exactly its PUs",
            d.id
        );
    }
    let info: Vec<gantry_proto::GpuInfo> = gpus.iter().map(gantry_proto::GpuInfo::from).collect();
    assert!(info.iter().all(|g| g.healthy && g.numa_node.is_some()));
}
