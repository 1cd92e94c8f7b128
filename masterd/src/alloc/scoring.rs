//! Scoring a feasible agent for a task, after Nomad: a best-fit bin-packing score over cpu and mem
//! utilisation after placement (and, for GPU tasks, GPU utilisation), averaged with a job
//! anti-affinity penalty for the task's group.

use super::agent_state::AgentState;
use super::shape::Shape;

/// Nomad's `ScoreFitBinPack`: 0 for an idle agent, 1 for one that the task fills exactly.
///
/// With `f` the free fraction of a resource after placement, the raw score is
/// `20 - (10^f_cpu + 10^f_mem)`, which runs from 0 (both idle) to 18 (both full).
pub(crate) fn bin_pack(agent: &AgentState, shape: &Shape) -> f64 {
    let free_frac = |free: f64, total: f64| {
        if total > 0.0 {
            (free / total).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let cpu = free_frac(agent.cpus - shape.cpus, agent.total_cpus);
    let mem = free_frac(agent.mem - shape.mem, agent.total_mem);
    let raw = 20.0 - (10f64.powf(cpu) + 10f64.powf(mem));
    raw.clamp(0.0, 18.0) / 18.0
}

/// Best fit on GPUs: the used fraction of the agent's GPUs after placement (1: the task takes
/// the last ones), so GPU tasks fill partly used GPU agents before breaking into idle ones.
pub(crate) fn gpu_pack(agent: &AgentState, shape: &Shape) -> f64 {
    let (free, total) = match &agent.topo {
        Some(t) if !t.count_only() => (t.free_gpus.count_ones(), t.shape.gpus.len() as u32),
        _ => (agent.gpus, agent.gpus.max(1)),
    };
    if total == 0 {
        return 0.0;
    }
    1.0 - f64::from(free.saturating_sub(shape.gpus)) / f64::from(total)
}

/// Nomad's job anti-affinity: with `collisions` tasks of the group already on the agent and
/// `desired` tasks of the group in all, `-(collisions + 1) / desired`; no penalty without collision.
pub(crate) fn anti_affinity(collisions: u32, desired: u32) -> Option<f64> {
    (collisions > 0).then(|| -f64::from(collisions + 1) / f64::from(desired.max(1)))
}

/// The agent's final score: the mean of the bin-packing score and, if any, the penalty (Nomad's
/// score normalisation). Higher is better; below zero means the group crowds this agent.
pub(crate) fn score(agent: &AgentState, shape: &Shape, collisions: u32, desired: u32) -> f64 {
    let mut fit = bin_pack(agent, shape);
    if shape.gpus > 0 {
        fit = (fit + gpu_pack(agent, shape)) / 2.0;
    }
    match anti_affinity(collisions, desired) {
        Some(penalty) => (fit + penalty) / 2.0,
        None => fit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::AgentSnapshot;
    use gantry_proto::Resources;

    fn agent(total: (f64, f64), used: (f64, f64)) -> AgentState {
        let snap = AgentSnapshot {
            id: "a".into(),
            reachable: true,
            total: Resources::scalars(total.0, total.1, 0.0),
            used: Resources::scalars(used.0, used.1, 0.0),
            attributes: Default::default(),
            group_counts: Default::default(),
            topology: None,
        };
        AgentState::new(&snap, &Default::default())
    }

    fn shape(cpus: f64, mem: f64) -> Shape {
        Shape {
            cpus,
            mem,
            disk: 0.0,
            gpus: 0,
            ports: 0,
            numa: gantry_gpu::NumaPolicy::None,
            pus: 0,
        }
    }

    #[test]
    fn bin_pack_runs_from_idle_to_full_and_prefers_the_fuller_agent() {
        let idle = agent((8.0, 8192.0), (0.0, 0.0));
        assert!(bin_pack(&idle, &shape(0.0, 0.0)).abs() < 1e-9);
        assert!((bin_pack(&idle, &shape(8.0, 8192.0)) - 1.0).abs() < 1e-9);
        let busy = agent((8.0, 8192.0), (6.0, 6000.0));
        let t = shape(1.0, 1024.0);
        assert!(bin_pack(&busy, &t) > bin_pack(&idle, &t));
        let no_mem = agent((8.0, 0.0), (0.0, 0.0));
        let s = bin_pack(&no_mem, &shape(1.0, 0.0));
        assert!((0.0..=1.0).contains(&s), "{s}");
    }

    #[test]
    fn anti_affinity_grows_with_collisions() {
        assert_eq!(anti_affinity(0, 4), None);
        assert_eq!(anti_affinity(1, 4), Some(-0.5));
        assert_eq!(anti_affinity(3, 4), Some(-1.0));
        assert_eq!(anti_affinity(1, 0), Some(-2.0), "desired 0 is read as 1");
    }

    #[test]
    fn a_collision_outweighs_a_better_fit_for_small_groups() {
        // Agent a already runs one of 4 instances and is fuller; b is emptier and has none.
        let a = agent((8.0, 8192.0), (1.0, 1024.0));
        let b = agent((8.0, 8192.0), (0.0, 0.0));
        let t = shape(1.0, 1024.0);
        assert!(bin_pack(&a, &t) > bin_pack(&b, &t));
        assert!(score(&a, &t, 1, 4) < score(&b, &t, 0, 4));
    }
}
