//! Placement when some groups may use only some agents (a container back end, a network, a job's
//! constraints): each restricted group is planned on its own slice of the snapshot, the rest on
//! the whole of it. Slices can overlap, so callers `check` the plan against current state.

use super::{place_with, ClusterSnapshot, PlaceOptions, Plan, TaskDemand};
use gantry_proto::AgentId;
use std::collections::{HashMap, HashSet};

/// Places `demands`; those whose group is in `only_on` only on the agents listed for it.
pub fn place_restricted(
    snapshot: &ClusterSnapshot,
    demands: &[TaskDemand],
    only_on: &HashMap<String, HashSet<AgentId>>,
    options: PlaceOptions,
) -> Plan {
    if only_on.is_empty() {
        return place_with(snapshot, demands, rand::random(), options);
    }
    let (free, restricted): (Vec<TaskDemand>, Vec<TaskDemand>) = demands
        .iter()
        .cloned()
        .partition(|d| !only_on.contains_key(&d.group));
    let mut plan = place_with(snapshot, &free, rand::random(), options);
    for (group, agents) in only_on {
        let mine: Vec<TaskDemand> = restricted
            .iter()
            .filter(|d| &d.group == group)
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let slice = ClusterSnapshot {
            agents: snapshot
                .agents
                .iter()
                .filter(|a| agents.contains(&a.id))
                .cloned()
                .collect(),
        };
        let part = place_with(&slice, &mine, rand::random(), options);
        plan.placements.extend(part.placements);
        plan.unplaced.extend(part.unplaced);
    }
    plan
}
