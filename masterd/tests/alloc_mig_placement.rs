//! MIG placement on agents built from the H100 mixed-MIG fixture (`gpu/fixtures/h100-mig-mixed.json`:
//! GPU 0 split 3g.40gb + 2g.20gb + 1g.10gb x2, GPU 1 split 7 x 1g.10gb, GPUs 2-3 whole): slices
//! of one GPU go to different tasks, never a slice twice, the profile asked for is the profile
//! given, a whole GPU is never given while a slice of it is held (nor a slice while its whole GPU
//! is), `check` refuses both, and a profile no agent has waits with a reason naming it.

use gantry_gpu::{FixtureInventory, Gpu, GpuInventory};
use gantry_masterd::alloc::{
    check, place, AgentSnapshot, ClusterSnapshot, ConflictCause, NodeTopology, NumaPolicy,
    Placement, Plan, TaskDemand, TopologyUse,
};
use gantry_proto::{NumaDomain, NumaPlacement, Resources};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../gpu/fixtures/h100-mig-mixed.json"
);

fn fixture_gpus() -> Vec<Gpu> {
    FixtureInventory::from_file(Path::new(FIXTURE))
        .and_then(|i| i.gpus())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Two NUMA nodes of 16 PUs and 512 GiB; GPUs 0-1 (and their slices) on node 0, 2-3 on node 1.
fn h100_topology() -> Arc<NodeTopology> {
    let gpus = fixture_gpus();
    let domains: Vec<NumaDomain> = (0..2u32)
        .map(|n| NumaDomain {
            id: n,
            cpus: (n * 16..n * 16 + 16).collect(),
            mem: 524_288.0,
            gpus: gpus
                .iter()
                .filter(|g| g.numa_node == Some(n))
                .map(|g| g.index)
                .collect(),
            cores: Vec::new(),
        })
        .collect();
    Arc::new(NodeTopology::new(gpus, &domains))
}

/// One H100 agent with the GPUs of NVML indexes `taken` held by tasks.
fn h100_agent(id: &str, taken: &[u32]) -> AgentSnapshot {
    let topology = h100_topology();
    let offered = topology.gpus.iter().filter(|g| !is_parent(g)).count() as u32;
    AgentSnapshot {
        id: id.into(),
        reachable: true,
        total: Resources {
            gpus: offered,
            ..Resources::scalars(32.0, 1_048_576.0, 1e6)
        },
        used: Resources {
            gpus: taken.len() as u32,
            ..Resources::default()
        },
        attributes: Default::default(),
        group_counts: HashMap::new(),
        topology: Some(TopologyUse {
            taken_gpus: taken.to_vec(),
            ..TopologyUse::idle(topology)
        }),
    }
}

fn is_parent(g: &Gpu) -> bool {
    !g.is_mig_device() && !g.is_whole()
}

fn task(id: &str, gpus: u32, profile: Option<&str>) -> TaskDemand {
    TaskDemand {
        task_id: id.into(),
        group: format!("/{id}"),
        resources: Resources {
            gpus,
            ..Resources::scalars(1.0, 1024.0, 0.0)
        },
        port_count: 0,
        numa: NumaPolicy::Prefer,
        gpu_profile: profile.map(Arc::from),
    }
}

fn numa_of(p: &Placement) -> &NumaPlacement {
    p.numa.as_ref().expect("a bound placement")
}

/// NVML index -> GPU, from the fixture.
fn by_index() -> BTreeMap<u32, Gpu> {
    fixture_gpus().into_iter().map(|g| (g.index, g)).collect()
}

fn one_agent(taken: &[u32]) -> ClusterSnapshot {
    ClusterSnapshot {
        agents: vec![h100_agent("h100", taken)],
    }
}

#[test]
fn slices_of_one_gpu_go_to_different_tasks_each_of_the_profile_asked() {
    let gpus = by_index();
    let demands: Vec<TaskDemand> = (0..10)
        .map(|i| task(&format!("small{i}"), 1, Some("1g.10gb")))
        .chain([
            task("mid", 1, Some("2g.20gb")),
            task("big", 1, Some("3g.40gb")),
        ])
        .collect();
    let plan = place(&one_agent(&[]), &demands, 7);
    // 2 + 7 slices of 1g.10gb exist: 9 small tasks, mid and big are placed; one small waits.
    assert_eq!(plan.placements.len(), 11, "{:?}", plan.unplaced);
    let mut given = BTreeSet::new();
    let mut parents_of_small = BTreeMap::<u32, usize>::new();
    for p in &plan.placements {
        let n = numa_of(p);
        assert_eq!(n.gpus.len(), 1);
        let a = &n.gpus[0];
        let g = &gpus[&a.index];
        assert!(given.insert(a.index), "slice {} given twice", a.index);
        assert_eq!(&*a.uuid, g.uuid.as_str());
        assert!(a.uuid.starts_with("MIG-"), "{}", a.uuid);
        let m = g.mig.as_ref().expect("a MIG device");
        assert_eq!(
            a.minor, gpus[&m.parent_index].minor,
            "opened through its parent"
        );
        assert_eq!(a.caps_minors, m.caps_minors);
        let asked = demands
            .iter()
            .find(|d| d.task_id == p.task_id)
            .and_then(|d| d.gpu_profile.clone());
        assert_eq!(asked.as_deref(), Some(m.profile.as_str()), "{}", p.task_id);
        if p.task_id.as_str().starts_with("small") {
            *parents_of_small.entry(m.parent_index).or_default() += 1;
        }
        assert_eq!(n.numa_node, g.numa_node);
    }
    assert_eq!(parents_of_small, BTreeMap::from([(0, 2), (1, 7)]));
    assert_eq!(plan.unplaced.len(), 1);
    let reason = &plan.unplaced[0].reason;
    assert!(
        reason.contains("too few free MIG devices of profile 1g.10gb"),
        "{reason}"
    );
}

#[test]
fn whole_gpu_tasks_never_get_a_mig_gpu_nor_a_slice() {
    let gpus = by_index();
    let demands = [
        task("w1", 1, None),
        task("w2", 1, None),
        task("w3", 1, None),
    ];
    let plan = place(&one_agent(&[]), &demands, 1);
    let whole: BTreeSet<u32> = plan
        .placements
        .iter()
        .flat_map(|p| numa_of(p).gpus.iter().map(|g| g.index))
        .collect();
    assert_eq!(whole, BTreeSet::from([2, 3]));
    assert!(whole.iter().all(|i| gpus[i].is_whole()));
    assert_eq!(
        plan.unplaced.len(),
        1,
        "GPUs 0 and 1 are only offered as slices"
    );
    assert!(numa_of(&plan.placements[0]).gpus[0].caps_minors.is_empty());
}

#[test]
fn a_held_whole_gpu_blocks_its_slices_and_a_held_slice_blocks_its_gpu() {
    // GPU 0 held whole (a task from before MIG was enabled on it): none of its slices is given;
    // the 3g.40gb exists only there.
    let plan = place(
        &one_agent(&[0]),
        &[
            task("big", 1, Some("3g.40gb")),
            task("small", 1, Some("1g.10gb")),
        ],
        3,
    );
    assert_eq!(plan.placements.len(), 1);
    let small = numa_of(&plan.placements[0]).gpus[0].index;
    assert_eq!(small / 1000, 2, "the 1g.10gb comes from GPU 1, not {small}");
    assert!(
        plan.unplaced[0].reason.contains("3g.40gb"),
        "{:?}",
        plan.unplaced
    );

    // `check` refuses a plan that gives a slice of a held GPU, or a GPU one of whose slices is held.
    let plan_with = |index: u32| {
        let t = h100_topology();
        let pos = t.gpus.iter().position(|g| g.index == index).expect("gpu");
        Plan {
            placements: vec![Placement {
                task_id: "late".into(),
                agent_id: "h100".into(),
                ports: vec![],
                numa: Some(NumaPlacement {
                    gpus: vec![t.assignments[pos].clone()],
                    ..NumaPlacement::default()
                }),
            }],
            unplaced: vec![],
        }
    };
    let demand = [task("late", 1, None)];
    let c = check(&one_agent(&[0]), &plan_with(1000), &demand);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].cause, ConflictCause::GpuTaken(1000));
    let c = check(&one_agent(&[1002]), &plan_with(0), &demand);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].cause, ConflictCause::GpuTaken(0));
    assert!(check(&one_agent(&[1002]), &plan_with(1003), &demand).is_empty());
}

#[test]
fn a_profile_no_agent_has_waits_with_a_reason_naming_it() {
    let plan = place(&one_agent(&[]), &[task("huge", 1, Some("7g.80gb"))], 1);
    assert!(plan.placements.is_empty());
    let reason = &plan.unplaced[0].reason;
    assert!(
        reason.contains("no MIG device of profile 7g.80gb (gpuProfile)"),
        "{reason}"
    );
    // Without any GPU agent the reason still names the profile.
    let empty = ClusterSnapshot {
        agents: vec![AgentSnapshot {
            topology: None,
            total: Resources::scalars(8.0, 8192.0, 0.0),
            ..h100_agent("cpu", &[])
        }],
    };
    let plan = place(&empty, &[task("huge", 1, Some("7g.80gb"))], 1);
    assert!(
        plan.unplaced[0].reason.contains("7g.80gb"),
        "{:?}",
        plan.unplaced
    );
    let plan = place(&one_agent(&[]), &[task("zero", 0, Some("1g.10gb"))], 1);
    assert!(
        plan.unplaced[0].reason.contains("needs gpus of at least 1"),
        "{:?}",
        plan.unplaced
    );
}

/// Indexes of every unit of the fixture (GPUs and MIG devices).
fn unit_indexes() -> Vec<u32> {
    fixture_gpus().iter().map(|g| g.index).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever is held and whatever is asked: no GPU or slice is given twice or while held, no
    /// slice with its parent (held or given), no whole GPU with one of its slices, every task
    /// gets exactly the profile it asked for (whole GPUs for none).
    #[test]
    fn mig_units_are_exclusive_and_profiles_exact(
        held in prop::collection::btree_set(prop::sample::select(unit_indexes()), 0..6),
        asks in prop::collection::vec((1u32..3, 0usize..5), 0..16),
        agents in 1usize..3,
        seed in any::<u64>(),
    ) {
        let gpus = by_index();
        let parent_of = |i: u32| gpus[&i].mig.as_ref().map(|m| m.parent_index);
        // What the master may hold: never a slice and its parent at once.
        let held: Vec<u32> = held
            .iter()
            .copied()
            .filter(|&i| parent_of(i).is_none_or(|p| !held.contains(&p)))
            .collect();
        let profiles = [None, Some("1g.10gb"), Some("2g.20gb"), Some("3g.40gb"), Some("4g.40gb")];
        let demands: Vec<TaskDemand> = asks
            .iter()
            .enumerate()
            .map(|(i, &(n, p))| task(&format!("t{i}"), n, profiles[p]))
            .collect();
        let cluster = ClusterSnapshot {
            agents: (0..agents).map(|a| h100_agent(&format!("a{a}"), &held)).collect(),
        };
        let plan = place(&cluster, &demands, seed);
        prop_assert_eq!(plan.placements.len() + plan.unplaced.len(), demands.len());
        let mut busy: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
        for a in &cluster.agents {
            busy.insert(a.id.to_string(), held.iter().copied().collect());
        }
        for p in &plan.placements {
            let d = demands.iter().find(|d| d.task_id == p.task_id).expect("demand");
            let given = &numa_of(p).gpus;
            prop_assert_eq!(given.len() as u32, d.resources.gpus);
            let b = busy.get_mut(p.agent_id.as_str()).expect("agent");
            for a in given {
                let g = &gpus[&a.index];
                prop_assert_eq!(g.mig_profile(), d.gpu_profile.as_deref(), "{}", p.task_id);
                prop_assert!(d.gpu_profile.is_some() || g.is_whole());
                prop_assert!(!b.contains(&a.index), "{} given twice or while held", a.index);
                if let Some(parent) = parent_of(a.index) {
                    prop_assert!(!b.contains(&parent), "slice {} of held GPU {parent}", a.index);
                }
                prop_assert!(
                    !b.iter().any(|&o| parent_of(o) == Some(a.index)),
                    "GPU {} given while a slice of it is held", a.index
                );
                b.insert(a.index);
            }
        }
        for u in &plan.unplaced {
            let d = demands.iter().find(|d| d.task_id == u.task_id).expect("demand");
            if let Some(p) = d.gpu_profile.as_deref() {
                prop_assert!(u.reason.contains(p), "{}: {}", p, u.reason);
            }
        }
    }
}
