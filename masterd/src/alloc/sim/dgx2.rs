//! DGX-2-shaped simulated agents and GPU/NUMA demands: two NUMA nodes of 24 cores x 2 PUs and
//! ~750 GiB each, 16 V100 (8 per node, 2 per PCIe switch, all NVSwitch-connected), partly used.

use super::super::rng::SplitMix64;
use super::super::{
    AgentSnapshot, ClusterSnapshot, NodeTopology, NumaPolicy, TaskDemand, TopologyUse,
};
use gantry_gpu::{Gpu, GpuHealth, MigMode};
use gantry_proto::{NumaDomain, PortRanges, Resources};
use gantry_topology::PciBusId;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Cores per NUMA node and PUs per core of the simulated DGX-2 (2 x Xeon Platinum 8168).
pub const DGX2_CORES_PER_NODE: u32 = 24;
/// GPUs per simulated DGX-2 (8 per NUMA node).
pub const DGX2_GPUS: u32 = 16;
/// Memory per NUMA node, MiB.
pub const DGX2_NODE_MEM: f64 = 768.0 * 1024.0;

/// The DGX-2 topology: node `n` holds cores `n*24..n*24+24`, core `c` PUs `c` and `c+48`;
/// GPU `i` is on node `i/8`, behind switch `i/2`, NVLinked to every other GPU.
pub fn dgx2_topology() -> NodeTopology {
    let gpus: Vec<Gpu> = (0..DGX2_GPUS)
        .map(|i| Gpu {
            index: i,
            minor: i,
            uuid: format!("GPU-sim-{i:02}"),
            name: "Tesla V100-SXM3-32GB-H".into(),
            memory_mib: 32768,
            pci_bus_id: PciBusId::from_parts(0, 0x34 + 8 * i as u8, 0, 0),
            numa_node: Some(i / 8),
            cpu_affinity: Vec::new(),
            nvlink_peers: (0..DGX2_GPUS).filter(|&p| p != i).collect(),
            pcie_switch: Some(PciBusId::from_parts(0, 0x30 + 8 * (i / 2) as u8, 0, 0)),
            mig_mode: MigMode::Unsupported,
            health: GpuHealth::Healthy,
            mig: None,
        })
        .collect();
    let pus_per_socket = 2 * DGX2_CORES_PER_NODE;
    let domains: Vec<NumaDomain> = (0..2u32)
        .map(|n| {
            let cores: Vec<Vec<u32>> = (n * DGX2_CORES_PER_NODE..(n + 1) * DGX2_CORES_PER_NODE)
                .map(|c| vec![c, c + pus_per_socket])
                .collect();
            let mut cpus: Vec<u32> = cores.iter().flatten().copied().collect();
            cpus.sort_unstable();
            NumaDomain {
                id: n,
                cpus,
                mem: DGX2_NODE_MEM,
                gpus: (n * 8..n * 8 + 8).collect(),
                cores,
            }
        })
        .collect();
    NodeTopology::new(gpus, &domains)
}

/// `agents` DGX-2 agents sharing one topology; each has 0-`max_busy` of its GPUs taken (with a
/// pinned core per taken GPU on that GPU's node) and 1 in `unhealthy_every` has an unhealthy GPU
/// (0: none). All reachable.
pub fn dgx2_cluster(
    agents: usize,
    max_busy: u32,
    unhealthy_every: usize,
    seed: u64,
) -> ClusterSnapshot {
    let shared = Arc::new(dgx2_topology());
    let mut sick = (*shared).clone();
    sick.gpus[5].health = GpuHealth::Unhealthy {
        reason: "critical XID 79".into(),
    };
    let sick = Arc::new(NodeTopology::new(sick.gpus.clone(), &domains_of(&shared)));
    let mut rng = SplitMix64::new(seed);
    let pus = 4 * DGX2_CORES_PER_NODE;
    let agents = (0..agents)
        .map(|i| {
            let topo = if unhealthy_every > 0 && i % unhealthy_every == 0 {
                sick.clone()
            } else {
                shared.clone()
            };
            let busy = rng.below(u64::from(max_busy) + 1) as u32;
            let taken: Vec<u32> = (0..busy).map(|k| (k * 5 + i as u32) % DGX2_GPUS).collect();
            let pinned: Vec<u32> = taken
                .iter()
                .map(|g| (g / 8) * DGX2_CORES_PER_NODE + g % 8)
                .collect();
            let healthy = topo.healthy_mask.count_ones();
            AgentSnapshot {
                id: format!("dgx-{i:05}").into(),
                reachable: true,
                total: Resources {
                    gpus: healthy,
                    ports: PortRanges::new([super::SIM_PORTS]),
                    ..Resources::scalars(f64::from(pus), 2.0 * DGX2_NODE_MEM, 1_000_000.0)
                },
                used: Resources {
                    gpus: busy,
                    ..Resources::scalars(f64::from(busy), 4096.0 * f64::from(busy), 0.0)
                },
                attributes: BTreeMap::new(),
                group_counts: HashMap::new(),
                topology: Some(TopologyUse {
                    mem_bound: taken.iter().map(|g| (g / 8, 4096.0)).collect(),
                    taken_gpus: taken,
                    pinned_cpus: pinned,
                    topology: topo,
                }),
            }
        })
        .collect();
    ClusterSnapshot { agents }
}

fn domains_of(t: &NodeTopology) -> Vec<NumaDomain> {
    t.domains
        .iter()
        .map(|d| NumaDomain {
            id: d.id,
            cpus: d.cores.iter().flatten().copied().collect(),
            mem: d.mem,
            gpus: Vec::new(),
            cores: d.cores.clone(),
        })
        .collect()
}

/// `tasks` GPU/NUMA demands in apps of `per_group`: 1, 2, 4 or 8 GPUs (1 app in 8 asks 8),
/// 2-6 cpus per GPU, 16 GiB per GPU, policy `require` for half the apps and `prefer` for the rest.
pub fn gpu_demands(tasks: usize, per_group: usize, seed: u64) -> Vec<TaskDemand> {
    const GPUS: [u32; 8] = [1, 1, 2, 2, 2, 4, 4, 8];
    let mut rng = SplitMix64::new(seed ^ 0x6E55_D6A2_0000_0001);
    let per_group = per_group.max(1);
    let mut out = Vec::with_capacity(tasks);
    let mut app = (String::new(), Resources::default(), NumaPolicy::None);
    for t in 0..tasks {
        if t % per_group == 0 {
            let g = t / per_group;
            let gpus = GPUS[rng.below(GPUS.len() as u64) as usize];
            let cpus = f64::from(gpus * (2 + rng.below(5) as u32));
            let policy = if rng.below(2) == 0 {
                NumaPolicy::Require
            } else {
                NumaPolicy::Prefer
            };
            app = (
                format!("/gpu-app-{g}"),
                Resources {
                    gpus,
                    ..Resources::scalars(cpus, 16_384.0 * f64::from(gpus), 1000.0)
                },
                policy,
            );
        }
        out.push(TaskDemand {
            task_id: format!("gpu-app-{}.instance-{t}", t / per_group).into(),
            group: app.0.clone(),
            resources: app.1.clone(),
            port_count: 0,
            numa: app.2,
            gpu_profile: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dgx2_shape_has_two_nodes_of_eight_gpus_and_48_pus() {
        let t = dgx2_topology();
        assert_eq!(t.gpus.len(), 16);
        assert_eq!(t.domains.len(), 2);
        for d in &t.domains {
            assert_eq!(d.gpu_mask.count_ones(), 8);
            assert_eq!(d.pus, 48);
            assert_eq!(d.cores.len(), 24);
        }
        assert_eq!(t.healthy_mask.count_ones(), 16);
        let c = dgx2_cluster(20, 4, 10, 1);
        assert_eq!(c.agents.len(), 20);
        let sick = c.agents.iter().filter(|a| a.total.gpus == 15).count();
        assert_eq!(sick, 2);
        let d = gpu_demands(100, 10, 3);
        assert!(d
            .iter()
            .all(|x| x.resources.gpus > 0 && x.numa != NumaPolicy::None));
    }
}
