//! Tests of gang placement: all or nothing, nothing held by a gang that waits, no agent
//! overcommitted across gangs (checked by replaying every placement with `check`), the same seed
//! giving the same answer, GPUs never given twice, and `only_on` respected.

use super::*;
use crate::alloc::sim::{cluster, dgx2_cluster};
use crate::alloc::{check, AgentSnapshot, NumaPolicy, Plan};
use gantry_proto::{PortRanges, Resources};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn agent(id: &str, cpus: f64) -> AgentSnapshot {
    AgentSnapshot {
        id: id.into(),
        reachable: true,
        total: Resources {
            ports: PortRanges::new([(31000, 31009)]),
            ..Resources::scalars(cpus, 8192.0, 1000.0)
        },
        used: Resources::default(),
        attributes: BTreeMap::new(),
        group_counts: HashMap::new(),
        topology: None,
    }
}

fn gang(name: &str, ranks: usize, cpus: f64, gpus: u32) -> GangDemand {
    GangDemand {
        ranks: (0..ranks)
            .map(|r| TaskDemand {
                task_id: format!("{name}#r{r}").into(),
                group: format!("job:{name}"),
                resources: Resources {
                    gpus,
                    ..Resources::scalars(cpus, 256.0, 10.0)
                },
                port_count: usize::from(r == 0),
                gpu_profile: None,
                numa: if gpus > 0 {
                    NumaPolicy::Prefer
                } else {
                    NumaPolicy::None
                },
            })
            .collect(),
    }
}

fn none() -> HashMap<String, HashSet<AgentId>> {
    HashMap::new()
}

/// Every placement of every gang, as one plan, with the demands it needs for `check`.
fn as_plan(gangs: &[GangDemand], out: &[GangOutcome]) -> (Plan, Vec<TaskDemand>) {
    let placements = out.iter().flat_map(|o| o.placements().to_vec()).collect();
    let demands = gangs.iter().flat_map(|g| g.ranks.clone()).collect();
    (
        Plan {
            placements,
            unplaced: Vec::new(),
        },
        demands,
    )
}

#[test]
fn four_ranks_go_over_two_agents_and_rank_zero_gets_a_port() {
    let snap = ClusterSnapshot {
        agents: vec![agent("a", 4.0), agent("b", 4.0)],
    };
    let gangs = [gang("train", 4, 2.0, 0)];
    let out = place_gangs(&snap, &gangs, &none(), 7, PlaceOptions::default());
    let GangOutcome::Placed(p) = &out[0] else {
        panic!("the gang fits: {out:?}");
    };
    assert_eq!(p.len(), 4);
    let ids: Vec<&str> = p.iter().map(|x| x.task_id.as_str()).collect();
    assert_eq!(ids, ["train#r0", "train#r1", "train#r2", "train#r3"]);
    let on_a = p.iter().filter(|x| x.agent_id.as_str() == "a").count();
    assert_eq!(on_a, 2, "two ranks of 2 cpus on each 4-cpu agent: {p:?}");
    assert_eq!(p[0].ports, vec![31000]);
    assert!(p[1..].iter().all(|x| x.ports.is_empty()));
}

#[test]
fn a_gang_with_room_for_three_of_four_places_none_and_holds_nothing() {
    let snap = ClusterSnapshot {
        agents: vec![agent("a", 4.0), agent("b", 2.0)],
    };
    let gangs = [gang("big", 4, 2.0, 0), gang("small", 3, 2.0, 0)];
    let out = place_gangs(&snap, &gangs, &none(), 1, PlaceOptions::default());
    match &out[0] {
        GangOutcome::Waiting { fit, reason } => {
            assert_eq!(*fit, 3);
            assert!(
                reason.starts_with("gang of 4 needs 4 placements; only 3 fit: "),
                "{reason}"
            );
            assert!(reason.contains("cpus"), "says what is short: {reason}");
        }
        other => panic!("must wait: {other:?}"),
    }
    // The three places the first gang could have had are still free for the next one.
    assert_eq!(out[1].placements().len(), 3, "{:?}", out[1]);
}

#[test]
fn a_gang_that_fits_nowhere_says_so_and_an_empty_one_waits() {
    let snap = ClusterSnapshot {
        agents: vec![agent("a", 1.0)],
    };
    let out = place_gangs(
        &snap,
        &[gang("x", 2, 4.0, 0), GangDemand { ranks: vec![] }],
        &none(),
        1,
        PlaceOptions::default(),
    );
    assert!(
        matches!(&out[0], GangOutcome::Waiting { fit: 0, reason } if reason.contains("only 0 fit"))
    );
    assert!(matches!(&out[1], GangOutcome::Waiting { fit: 0, .. }));
}

#[test]
fn gangs_restricted_to_agents_stay_on_them() {
    let snap = ClusterSnapshot {
        agents: vec![agent("a", 8.0), agent("b", 8.0), agent("c", 8.0)],
    };
    let only: HashMap<String, HashSet<AgentId>> =
        [("job:pinned".to_string(), HashSet::from(["b".into()]))].into();
    let gangs = [gang("pinned", 3, 2.0, 0), gang("free", 2, 1.0, 0)];
    let out = place_gangs(&snap, &gangs, &only, 3, PlaceOptions::default());
    assert!(out[0]
        .placements()
        .iter()
        .all(|p| p.agent_id.as_str() == "b"));
    assert_eq!(out[0].placements().len(), 3);
    assert_eq!(out[1].placements().len(), 2);
    let too_big = [gang("pinned", 5, 2.0, 0)];
    let out = place_gangs(&snap, &too_big, &only, 3, PlaceOptions::default());
    assert!(
        matches!(&out[0], GangOutcome::Waiting { fit: 4, .. }),
        "{out:?}"
    );
}

#[test]
fn gpu_gangs_on_dgx2_agents_never_share_a_gpu() {
    let snap = dgx2_cluster(6, 8, 0, 5);
    let gangs: Vec<GangDemand> = (0..8).map(|k| gang(&format!("g{k}"), 4, 4.0, 4)).collect();
    let out = place_gangs(&snap, &gangs, &none(), 9, PlaceOptions::default());
    let (plan, demands) = as_plan(&gangs, &out);
    assert!(!plan.placements.is_empty(), "some gangs fit");
    assert_eq!(check(&snap, &plan, &demands), vec![], "no GPU given twice");
    for p in &plan.placements {
        assert_eq!(p.numa.as_ref().map(|n| n.gpus.len()), Some(4), "{p:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn all_or_nothing_never_overcommitted_and_deterministic(
        agents in 1usize..40,
        seed in any::<u64>(),
        sizes in prop::collection::vec((1usize..9, 1u32..16, 0u32..3), 1..12),
    ) {
        let snap = cluster(agents, 7, seed);
        let gangs: Vec<GangDemand> = sizes
            .iter()
            .enumerate()
            .map(|(k, &(n, cpus, gpus))| gang(&format!("g{k}"), n, f64::from(cpus) / 2.0, gpus))
            .collect();
        let out = place_gangs(&snap, &gangs, &none(), seed, PlaceOptions::default());
        prop_assert_eq!(out.len(), gangs.len());
        for (g, o) in gangs.iter().zip(&out) {
            match o {
                GangOutcome::Placed(p) => {
                    prop_assert_eq!(p.len(), g.ranks.len());
                    for (pl, d) in p.iter().zip(&g.ranks) {
                        prop_assert_eq!(&pl.task_id, &d.task_id);
                    }
                }
                GangOutcome::Waiting { fit, reason } => {
                    prop_assert!(*fit < g.ranks.len());
                    let head = format!("gang of {0} needs {0} placements; only {1} fit: ", g.ranks.len(), fit);
                    prop_assert!(reason.starts_with(&head), "{}", reason);
                }
            }
        }
        let (plan, demands) = as_plan(&gangs, &out);
        prop_assert_eq!(check(&snap, &plan, &demands), vec![]);
        let again = place_gangs(&snap, &gangs, &none(), seed, PlaceOptions::default());
        prop_assert_eq!(out, again);
    }
}
