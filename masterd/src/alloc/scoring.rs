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
    let raw = 20.0 - (exp10_unit(cpu) + exp10_unit(mem));
    raw.clamp(0.0, 18.0) / 18.0
}

/// `10^x` for `x` in `[0, 1]` (the free fractions of [`bin_pack`]), without `powf`:
/// `2^(x log2 10)` split into a power of two and `2^f`, `f` in `[0, 1)`, the latter a degree-8
/// Taylor polynomial around `f = 1/2` (Horner with plain multiply-adds: `mul_add` is a libm call
/// on targets without FMA). Relative error below `1e-9` (property-tested against `powf`), so the
/// bin-packing score stays within `1e-9` of Nomad's and agents whose scores differ by more keep
/// their order. Outside `[0, 1]` the argument is clamped; NaN gives NaN.
#[inline]
pub(crate) fn exp10_unit(x: f64) -> f64 {
    const POW2: [f64; 4] = [1.0, 2.0, 4.0, 8.0];
    // 2^(1/2) * ln(2)^k / k! for k = 0..=8: the series of 2^(1/2 + t) in t = f - 1/2.
    const C: [f64; 9] = [
        std::f64::consts::SQRT_2,
        std::f64::consts::SQRT_2 * std::f64::consts::LN_2,
        std::f64::consts::SQRT_2 * 0.240_226_506_959_100_7,
        std::f64::consts::SQRT_2 * 0.055_504_108_664_821_58,
        std::f64::consts::SQRT_2 * 0.009_618_129_107_628_477,
        std::f64::consts::SQRT_2 * 0.001_333_355_814_642_844_3,
        std::f64::consts::SQRT_2 * 0.000_154_035_303_933_816_1,
        std::f64::consts::SQRT_2 * 0.000_015_252_733_804_059_84,
        std::f64::consts::SQRT_2 * 0.000_001_321_548_679_014_431,
    ];
    if x.is_nan() {
        return x;
    }
    let y = x.clamp(0.0, 1.0) * std::f64::consts::LOG2_10;
    let n = (y as usize).min(3);
    let t = y - n as f64 - 0.5;
    let p = C[8];
    let p = p * t + C[7];
    let p = p * t + C[6];
    let p = p * t + C[5];
    let p = p * t + C[4];
    let p = p * t + C[3];
    let p = p * t + C[2];
    let p = p * t + C[1];
    let p = p * t + C[0];
    p * POW2[n]
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
    use proptest::prelude::*;

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
            profile: None,
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
    fn exp10_is_close_at_the_ends_and_clamps() {
        assert!((exp10_unit(0.0) - 1.0).abs() < 1e-9);
        assert!((exp10_unit(1.0) - 10.0).abs() < 1e-9);
        assert!((exp10_unit(0.5) - 10f64.sqrt()).abs() < 1e-9);
        assert!(exp10_unit(f64::NAN).is_nan());
        assert_eq!(exp10_unit(-1.0), exp10_unit(0.0));
        assert_eq!(exp10_unit(2.0), exp10_unit(1.0));
    }

    proptest! {
        #[test]
        fn exp10_matches_powf_within_1e_9_relative(x in 0.0f64..=1.0) {
            let exact = 10f64.powf(x);
            let rel = (exp10_unit(x) - exact).abs() / exact;
            prop_assert!(rel < 1e-9, "x {x}: {} vs {exact} ({rel:e})", exp10_unit(x));
        }

        #[test]
        fn exp10_keeps_the_order_of_arguments_apart_by_more_than_1e_8(
            a in 0.0f64..=1.0,
            b in 0.0f64..=1.0,
        ) {
            prop_assume!((a - b).abs() > 1e-8);
            prop_assert_eq!(a < b, exp10_unit(a) < exp10_unit(b));
        }

        #[test]
        fn bin_pack_stays_within_1e_9_of_nomads_formula(
            total in (1.0f64..128.0, 1.0f64..1e6),
            used in (0.0f64..1.0, 0.0f64..1.0),
            ask in (0.0f64..1.2, 0.0f64..1.2),
        ) {
            let a = agent(total, (total.0 * used.0, total.1 * used.1));
            let s = shape(total.0 * ask.0, total.1 * ask.1);
            let frac = |free: f64, t: f64| (free / t).clamp(0.0, 1.0);
            let cpu = frac(a.cpus - s.cpus, a.total_cpus);
            let mem = frac(a.mem - s.mem, a.total_mem);
            let nomad = (20.0 - (10f64.powf(cpu) + 10f64.powf(mem))).clamp(0.0, 18.0) / 18.0;
            prop_assert!((bin_pack(&a, &s) - nomad).abs() < 1e-9);
        }
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
