//! Simulated clusters and demands for tests and benchmarks: heterogeneous agents (sizes, partial
//! use, ports in use, GPUs, some unreachable) and app-like batches, all fixed by a seed; and
//! DGX-2-shaped agents with GPU/NUMA demands ([`dgx2_cluster`], [`gpu_demands`]).

mod dgx2;

pub use dgx2::{
    dgx2_cluster, dgx2_topology, gpu_demands, DGX2_CORES_PER_NODE, DGX2_GPUS, DGX2_NODE_MEM,
};

use super::rng::SplitMix64;
use super::{AgentSnapshot, ClusterSnapshot, NumaPolicy, TaskDemand};
use gantry_proto::{PortRanges, Resources};
use std::collections::{BTreeMap, HashMap};

/// Machine types: (cpus, mem MiB, disk MiB, gpus).
const MACHINES: [(f64, f64, f64, u32); 4] = [
    (8.0, 32_768.0, 200_000.0, 0),
    (16.0, 65_536.0, 500_000.0, 0),
    (32.0, 131_072.0, 1_000_000.0, 0),
    (64.0, 524_288.0, 2_000_000.0, 8),
];

/// Host ports every simulated agent offers (Mesos's default range).
pub const SIM_PORTS: (u16, u16) = (31_000, 32_000);

/// A cluster of `agents` simulated agents: mixed machine types, each already 0-50% used with some
/// ports taken, and one in `unreachable_every` unreachable (0: all reachable).
pub fn cluster(agents: usize, unreachable_every: usize, seed: u64) -> ClusterSnapshot {
    let mut rng = SplitMix64::new(seed);
    let agents = (0..agents)
        .map(|i| {
            let (cpus, mem, disk, gpus) = MACHINES[rng.below(MACHINES.len() as u64) as usize];
            let busy = rng.unit() * 0.5;
            let first_free = SIM_PORTS.0 + rng.below(20) as u16;
            let used_ports = PortRanges::new([(SIM_PORTS.0, first_free)]);
            AgentSnapshot {
                id: format!("agent-{i:05}").into(),
                reachable: unreachable_every == 0 || i % unreachable_every != unreachable_every - 1,
                total: Resources {
                    gpus,
                    ports: PortRanges::new([SIM_PORTS]),
                    ..Resources::scalars(cpus, mem, disk)
                },
                used: Resources {
                    gpus: (f64::from(gpus) * busy) as u32,
                    ports: used_ports,
                    ..Resources::scalars(
                        (cpus * busy * 10.0).round() / 10.0,
                        (mem * busy).round(),
                        0.0,
                    )
                },
                attributes: BTreeMap::from([("rack".to_owned(), format!("r{}", i % 40))]),
                group_counts: HashMap::new(),
                topology: None,
            }
        })
        .collect();
    ClusterSnapshot { agents }
}

/// `tasks` demands in groups (apps) of `per_group` instances; each app has one size drawn from a
/// catalogue (0.1-4 cpus, 128 MiB-8 GiB, 0-2 ports, one app in 25 wants a GPU).
/// `per_group` 1 makes every task its own app (no spreading).
pub fn demands(tasks: usize, per_group: usize, seed: u64) -> Vec<TaskDemand> {
    const CPUS: [f64; 6] = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0];
    const MEM: [f64; 6] = [128.0, 256.0, 512.0, 1024.0, 4096.0, 8192.0];
    let mut rng = SplitMix64::new(seed ^ 0x5EED_DE3A_4D5F_0001);
    let per_group = per_group.max(1);
    let mut out = Vec::with_capacity(tasks);
    let mut app = (String::new(), Resources::default(), 0usize);
    for t in 0..tasks {
        if t % per_group == 0 {
            let g = t / per_group;
            let size = rng.below(CPUS.len() as u64) as usize;
            let gpus = u32::from(rng.below(25) == 0);
            app = (
                format!("/app-{g}"),
                Resources {
                    gpus,
                    ..Resources::scalars(CPUS[size], MEM[size], 100.0 * (1 + size) as f64)
                },
                rng.below(3) as usize,
            );
        }
        out.push(TaskDemand {
            task_id: format!("app-{}.instance-{t}", t / per_group).into(),
            group: app.0.clone(),
            resources: app.1.clone(),
            port_count: app.2,
            numa: if app.1.gpus > 0 {
                NumaPolicy::Prefer
            } else {
                NumaPolicy::None
            },
            gpu_profile: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_and_demands_are_fixed_by_the_seed_and_varied() {
        let a = cluster(50, 10, 3);
        let b = cluster(50, 10, 3);
        assert_eq!(
            a.agents.iter().map(|x| x.total.cpus).collect::<Vec<_>>(),
            b.agents.iter().map(|x| x.total.cpus).collect::<Vec<_>>()
        );
        assert_eq!(a.agents.iter().filter(|x| !x.reachable).count(), 5);
        let kinds: std::collections::BTreeSet<u64> =
            a.agents.iter().map(|x| x.total.cpus as u64).collect();
        assert!(kinds.len() > 1, "heterogeneous machines");
        let d = demands(10, 4, 1);
        assert_eq!(d.len(), 10);
        assert_eq!(d[0].group, d[3].group);
        assert_ne!(d[3].group, d[4].group);
        let ids: std::collections::HashSet<_> = d.iter().map(|x| x.task_id.clone()).collect();
        assert_eq!(ids.len(), 10, "task ids are unique");
    }
}
