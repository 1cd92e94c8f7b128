//! Live discovery of this machine, and `HWLOC_XMLFILE` steering discovery to a fixture. One test
//! in its own binary, because it changes the process environment.

mod common;

use common::fixture_dir;
use gantry_topology::{Topology, TopologySource};

#[test]
fn discover_sees_this_machine_then_the_file_named_by_hwloc_xmlfile() {
    std::env::remove_var("HWLOC_XMLFILE");
    let live = Topology::discover().expect("hwloc discovers this machine");
    assert_eq!(live.source, TopologySource::Live);
    assert!(!live.allowed_cpus.is_empty());
    assert!(
        !live.numa_nodes.is_empty(),
        "every Linux machine has at least one NUMA node"
    );
    assert!(live.numa_nodes.iter().all(|n| n.memory_bytes > 0));
    let online = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(live.allowed_cpus.len() >= online.min(live.complete_cpus.len()));

    let dgx2 = fixture_dir().join("nvidia-dgx2-16gpu.xml");
    std::env::set_var("HWLOC_XMLFILE", &dgx2);
    let fixture = Topology::discover().expect("discover through HWLOC_XMLFILE");
    std::env::remove_var("HWLOC_XMLFILE");
    assert_eq!(fixture.source, TopologySource::XmlFile(dgx2));
    assert_eq!(fixture.gpus.len(), 16);
}
