//! Discovery tests on every hwloc fixture: DGX-2, 2-socket Xeon, 8-NUMA AMD (restricted), POWER8.

mod common;

use common::{fixture_dir, load};
use gantry_topology::{PciBusId, Topology, TopologyError, TopologySource};
use std::collections::BTreeSet;

fn pci(s: &str) -> PciBusId {
    PciBusId::parse(s).expect("valid PCI id in test")
}

#[test]
fn dgx2_has_two_numa_nodes_and_sixteen_gpus_eight_per_node() {
    let t = load("nvidia-dgx2-16gpu.xml");
    assert!(matches!(t.source, TopologySource::XmlFile(_)));
    assert_eq!(t.packages.len(), 2);
    let nodes: Vec<u32> = t.numa_nodes.iter().map(|n| n.os_index).collect();
    assert_eq!(nodes, vec![0, 1]);
    assert_eq!(t.numa_nodes[0].cpus, vec![0, 1]);
    assert_eq!(t.numa_nodes[1].cpus, vec![24, 25]);
    assert_eq!(t.numa_nodes[0].memory_bytes, 810_234_351_616);
    assert_eq!(
        t.numa_nodes[1].memory_mib(),
        811_737_923_584.0 / 1_048_576.0
    );
    assert_eq!(t.cores.len(), 4);

    assert_eq!(t.gpus.len(), 16);
    for node in [0, 1] {
        assert_eq!(
            t.gpus.iter().filter(|g| g.numa_node == Some(node)).count(),
            8
        );
    }
    // Every GPU carries its NVML OS device, with index, UUID and model, nvml0..nvml15.
    let nvml: Vec<u32> = t
        .gpus
        .iter()
        .filter_map(|g| g.nvml.as_ref().map(|n| n.index))
        .collect();
    assert_eq!(nvml, (0..16).collect::<Vec<_>>());
    let first = &t.gpus[0];
    assert_eq!(first.pci_bus_id, pci("0000:34:00.0"));
    assert_eq!(first.pci_id, "10de:1db8");
    assert_eq!(first.cpus, vec![0, 1]);
    let nv = first.nvml.as_ref().expect("nvml0");
    assert_eq!(
        nv.uuid.as_deref(),
        Some("GPU-d3977428-7a30-086b-2e20-5c1eeed647c6")
    );
    assert_eq!(nv.model.as_deref(), Some("Tesla V100-SXM3-32GB-H"));
    let last = t.gpu_by_pci(&pci("0000:e7:00.0")).expect("GPU at e7:00.0");
    assert_eq!(last.numa_node, Some(1));
    assert_eq!(last.cpus, vec![24, 25]);
    // The NVSwitches are PCI devices too, but not GPUs.
    assert!(t.gpu_by_pci(&pci("0000:61:00.0")).is_none());
}

#[test]
fn dgx2_gpus_come_in_pairs_behind_one_pcie_switch() {
    let t = load("nvidia-dgx2-16gpu.xml");
    let switches: BTreeSet<_> = t
        .gpus
        .iter()
        .filter_map(|g| g.pcie_switch.clone())
        .collect();
    assert_eq!(switches.len(), 8, "16 GPUs behind 8 leaf switches");
    for s in &switches {
        let behind = t
            .gpus
            .iter()
            .filter(|g| g.pcie_switch.as_ref() == Some(s))
            .count();
        assert_eq!(behind, 2, "switch {s}");
    }
    assert_eq!(t.gpus[0].pcie_switch, t.gpus[1].pcie_switch);
    assert_ne!(t.gpus[1].pcie_switch, t.gpus[2].pcie_switch);
}

#[test]
fn xeon_has_two_nodes_of_six_smt_cores_and_three_nvidia_gpus() {
    let t = load("xeon-2numa-3gpu-pci.xml");
    assert_eq!(t.numa_nodes.len(), 2);
    assert_eq!(t.allowed_cpus.len(), 24);
    assert_eq!(t.cores.len(), 12);
    assert!(t.cores.iter().all(|c| c.pus.len() == 2));
    assert_eq!(
        t.numa_nodes[0].cpus,
        vec![0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]
    );
    assert_eq!(t.cores[0].pus, vec![0, 12]);
    // The ATI VGA controller at 01:03.0 is not an NVIDIA GPU.
    let gpus: Vec<(String, Option<u32>)> = t
        .gpus
        .iter()
        .map(|g| (g.pci_bus_id.to_string(), g.numa_node))
        .collect();
    assert_eq!(
        gpus,
        vec![
            ("0000:06:00.0".to_string(), Some(0)),
            ("0000:14:00.0".to_string(), Some(1)),
            ("0000:11:00.0".to_string(), Some(1)),
        ]
    );
    assert!(t
        .gpus
        .iter()
        .all(|g| g.nvml.is_none() && g.pcie_switch.is_none()));
}

#[test]
fn amd_respects_the_restricted_cpusets() {
    let t = load("amd-8numa.xml");
    assert_eq!(t.complete_numa_nodes, (0..8).collect::<Vec<_>>());
    assert_eq!(t.allowed_numa_nodes, vec![1, 2, 3, 4, 5]);
    assert_eq!(t.complete_cpus, (0..16).collect::<Vec<_>>());
    assert_eq!(t.allowed_cpus, vec![0, 1, 2, 3, 5, 6, 12, 13, 14, 15]);
    let nodes: Vec<(u32, Vec<u32>)> = t
        .numa_nodes
        .iter()
        .map(|n| (n.os_index, n.cpus.clone()))
        .collect();
    assert_eq!(
        nodes,
        vec![
            (1, vec![2, 3]),
            (2, vec![5]),
            (3, vec![6]),
            (4, vec![]),
            (5, vec![])
        ]
    );
    assert!(t.numa_nodes.iter().all(|n| n.memory_bytes == 8 << 30));
    // PUs whose NUMA node is not allowed belong to no domain, and no core claims a node for them.
    assert_eq!(t.cpus_without_numa_node(), vec![0, 1, 12, 13, 14, 15]);
    assert!(t
        .cores
        .iter()
        .filter(|c| c.numa_node.is_none())
        .all(|c| c.pus[0] < 2 || c.pus[0] >= 12));
    // Never hands out disallowed PUs or nodes.
    let allowed: BTreeSet<u32> = t.allowed_cpus.iter().copied().collect();
    assert!(t
        .cores
        .iter()
        .flat_map(|c| &c.pus)
        .all(|p| allowed.contains(p)));
    assert!(t.numa_node(0).is_none());
    assert!(t.gpus.is_empty());
}

#[test]
fn power8_has_four_gpus_two_per_node_with_nvml_uuids() {
    let t = load("power8-4gpu-nvml.xml");
    assert_eq!(t.numa_nodes.len(), 2);
    assert_eq!(t.cores.len(), 8);
    assert_eq!(t.numa_nodes[1].cpus, vec![80, 81, 88, 89, 96, 97, 104, 105]);
    let gpus: Vec<(String, Option<u32>, Option<u32>)> = t
        .gpus
        .iter()
        .map(|g| {
            (
                g.pci_bus_id.to_string(),
                g.numa_node,
                g.nvml.as_ref().map(|n| n.index),
            )
        })
        .collect();
    assert_eq!(
        gpus,
        vec![
            ("0002:01:00.0".to_string(), Some(0), Some(0)),
            ("0003:01:00.0".to_string(), Some(0), Some(1)),
            ("000a:01:00.0".to_string(), Some(1), Some(2)),
            ("000b:01:00.0".to_string(), Some(1), Some(3)),
        ]
    );
    assert!(t.gpus.iter().all(|g| g
        .nvml
        .as_ref()
        .and_then(|n| n.uuid.as_deref())
        .is_some_and(|u| u.starts_with("GPU-"))));
}

#[test]
fn pick_cpus_on_fixture_nodes() {
    let xeon = load("xeon-2numa-3gpu-pci.xml");
    // Whole cores first: 4 CPUs on node 1 are cores (1,13) and (3,15).
    let got = xeon.pick_cpus(1, 4, &BTreeSet::new());
    assert_eq!(got, Ok(vec![1, 3, 13, 15]));
    let busy = BTreeSet::from([1, 13, 3]);
    // PU 15 is alone on a partly used core: it goes first, then whole core (5,17).
    assert_eq!(xeon.pick_cpus(1, 3, &busy), Ok(vec![5, 15, 17]));
    assert!(xeon.pick_cpus(0, 13, &BTreeSet::new()).is_err());
    let amd = load("amd-8numa.xml");
    assert!(
        amd.pick_cpus(0, 1, &BTreeSet::new()).is_err(),
        "node 0 is not allowed"
    );
    assert!(
        amd.pick_cpus(4, 1, &BTreeSet::new()).is_err(),
        "node 4 has memory only"
    );
    assert_eq!(amd.pick_cpus(1, 2, &BTreeSet::new()), Ok(vec![2, 3]));
}

#[test]
fn xml_string_import_matches_file_import() {
    let path = fixture_dir().join("power8-4gpu-nvml.xml");
    let xml = std::fs::read_to_string(&path).expect("read fixture");
    let from_str = Topology::from_xml_str(&xml).expect("import from string");
    let from_file = load("power8-4gpu-nvml.xml");
    assert_eq!(from_str.source, TopologySource::XmlString);
    assert_eq!(from_str.numa_nodes, from_file.numa_nodes);
    assert_eq!(from_str.gpus, from_file.gpus);
}

#[test]
fn missing_or_invalid_xml_is_a_clear_error() {
    let err = Topology::from_xml_file(std::path::Path::new("/nonexistent/topo.xml"));
    assert!(matches!(err, Err(TopologyError::Xml { .. })));
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("/nonexistent/topo.xml"), "{msg}");
    assert!(Topology::from_xml_str("<not-a-topology/>").is_err());
}
