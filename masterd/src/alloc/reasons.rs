//! Why a task found no place, as a sentence users understand (the Marathon queue's `lastOffers`
//! summary in words): agents rejected per resource, with the most that any of them had free, and
//! agents whose resources suffice but not on one NUMA node (`require`) or that keep their GPUs free.

use super::agent_state::AgentState;
use super::feasibility::{asked, fits_scalars, free, shortfalls, ResourceKind};
use super::numa_fit::topo_fits;
use super::shape::Shape;
use super::GpuAgentRule;
use gantry_gpu::NumaPolicy;

/// Agents counted by why they refused one shape.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    /// Agents registered (reachable or not).
    registered: usize,
    unreachable: usize,
    /// Per `ResourceKind::ALL`: agents short of it, and the most free among them.
    short: [(usize, f64); 5],
    /// Agents with enough of every resource whose topology refuses the shape (no NUMA node holds
    /// it for `require`, or no GPU inventory).
    topology: usize,
    /// Agents with GPUs that CPU-only tasks may not use (`GpuAgentRule::Never`).
    gpu_agents_kept: usize,
    /// Of `topology`, for a `gpuProfile` task: agents with no MIG device of the profile at all.
    profile_absent: usize,
}

/// Counts why each reachable agent in `states` refuses `shape`; `unreachable` agents are counted too.
pub(crate) fn tally(
    states: &[AgentState],
    unreachable: usize,
    shape: &Shape,
    rule: GpuAgentRule,
) -> Tally {
    let mut t = Tally {
        registered: states.len() + unreachable,
        unreachable,
        ..Tally::default()
    };
    for agent in states {
        if shape.gpus == 0 && agent.has_gpus && rule == GpuAgentRule::Never {
            t.gpu_agents_kept += 1;
            continue;
        }
        if fits_scalars(agent, shape) {
            if shape.binds() && !topo_fits(agent.topo.as_ref(), shape) {
                t.topology += 1;
                if let Some(p) = &shape.profile {
                    let has = agent
                        .topo
                        .as_ref()
                        .is_some_and(|x| x.shape.offer_mask(Some(p.as_str())) != 0);
                    t.profile_absent += usize::from(!has);
                }
            }
            continue;
        }
        let s = shortfalls(agent, shape);
        for (k, kind) in ResourceKind::ALL.into_iter().enumerate() {
            if s.has(kind) {
                let (n, most) = &mut t.short[k];
                *most = if *n == 0 {
                    free(agent, kind)
                } else {
                    most.max(free(agent, kind))
                };
                *n += 1;
            }
        }
    }
    t
}

impl Tally {
    /// The sentence for a task of `shape`, e.g. "no agent can run it: 2 agents have too few cpus
    /// (at most 0.5 free, 4 asked), 1 unreachable".
    pub(crate) fn sentence(&self, shape: &Shape) -> String {
        if self.registered == 0 {
            return "no agents are registered".to_owned();
        }
        let mut parts = Vec::new();
        for (k, kind) in ResourceKind::ALL.into_iter().enumerate() {
            let (n, most) = self.short[k];
            if n == 0 {
                continue;
            }
            let (what, unit) = match kind {
                ResourceKind::Cpus => ("too few cpus", ""),
                ResourceKind::Mem => ("too little mem", " MiB"),
                ResourceKind::Disk => ("too little disk", " MiB"),
                ResourceKind::Gpus => ("too few gpus", ""),
                ResourceKind::Ports => ("too few free ports", ""),
            };
            let (agents, verb, at_most) = if n == 1 {
                ("agent", "has", "")
            } else {
                ("agents", "have", "at most ")
            };
            parts.push(format!(
                "{n} {agents} {verb} {what} ({at_most}{}{unit} free, {}{unit} asked)",
                amount(most),
                amount(asked(shape, kind)),
            ));
        }
        if let (Some(p), true) = (&shape.profile, self.topology > 0) {
            let p = p.as_str();
            let absent = self.profile_absent;
            if absent > 0 {
                parts.push(format!(
                    "{absent} {} no MIG device of profile {p} (gpuProfile)",
                    if absent == 1 {
                        "agent has"
                    } else {
                        "agents have"
                    }
                ));
            }
            let busy = self.topology - absent;
            if busy > 0 {
                parts.push(format!(
                    "{busy} {} too few free MIG devices of profile {p}{} ({} asked)",
                    if busy == 1 {
                        "agent has"
                    } else {
                        "agents have"
                    },
                    if shape.numa == NumaPolicy::Require {
                        " on one NUMA node with the cpus and mem (numaPolicy require)"
                    } else {
                        ""
                    },
                    shape.gpus
                ));
            }
        } else if self.topology > 0 {
            let n = self.topology;
            let (agents, verb) = if n == 1 {
                ("agent", "has")
            } else {
                ("agents", "have")
            };
            parts.push(if shape.numa == NumaPolicy::Require {
                format!(
                    "{n} {agents} {verb} no NUMA node with {} free GPUs, {} free cpus and {} MiB \
                     free together (numaPolicy require)",
                    shape.gpus,
                    shape.pus,
                    amount(shape.mem)
                )
            } else {
                format!("{n} {agents} {verb} no GPU inventory to choose GPUs from")
            });
        }
        if self.gpu_agents_kept > 0 {
            parts.push(format!(
                "{} agents with GPUs are kept for GPU tasks",
                self.gpu_agents_kept
            ));
        }
        if self.unreachable > 0 {
            parts.push(format!("{} unreachable", self.unreachable));
        }
        if let Some(p) = &shape.profile {
            if !parts.iter().any(|x| x.contains(p.as_str())) {
                parts.push(format!("MIG devices of profile {} asked", p.as_str()));
            }
        }
        if parts.is_empty() {
            return "no agent can run it".to_owned();
        }
        format!("no agent can run it: {}", parts.join(", "))
    }
}

/// An amount as people write it: `4`, `0.5`, `1536`; never negative, at most 3 decimals.
pub(crate) fn amount(x: f64) -> String {
    let r = (x.max(0.0) * 1000.0).round() / 1000.0;
    format!("{r}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::AgentSnapshot;
    use gantry_proto::{PortRanges, Resources};

    fn state(cpus: f64, mem: f64, ports: usize) -> AgentState {
        let snap = AgentSnapshot {
            id: "a".into(),
            reachable: true,
            total: Resources {
                ports: if ports == 0 {
                    PortRanges::default()
                } else {
                    PortRanges::new([(31000, 31000 + ports as u16 - 1)])
                },
                ..Resources::scalars(cpus, mem, 100.0)
            },
            used: Resources::default(),
            attributes: Default::default(),
            group_counts: Default::default(),
            topology: None,
        };
        AgentState::new(&snap, &Default::default())
    }

    fn shape(cpus: f64, mem: f64, ports: usize) -> Shape {
        Shape {
            cpus,
            mem,
            disk: 0.0,
            gpus: 0,
            ports,
            numa: NumaPolicy::None,
            pus: cpus.ceil() as u32,
            profile: None,
        }
    }

    #[test]
    fn no_agents_registered() {
        assert_eq!(
            tally(&[], 0, &shape(1.0, 1.0, 0), GpuAgentRule::Avoid).sentence(&shape(1.0, 1.0, 0)),
            "no agents are registered"
        );
    }

    #[test]
    fn counts_agents_per_cause_with_the_most_free() {
        let states = [state(0.5, 4096.0, 4), state(0.25, 4096.0, 4)];
        let s = shape(4.0, 128.0, 0);
        assert_eq!(
            tally(&states, 1, &s, GpuAgentRule::Avoid).sentence(&s),
            "no agent can run it: 2 agents have too few cpus (at most 0.5 free, 4 asked), 1 unreachable"
        );
    }

    #[test]
    fn one_agent_short_of_several_things() {
        let states = [state(1.0, 512.0, 1)];
        let s = shape(2.0, 1024.0, 2);
        assert_eq!(
            tally(&states, 0, &s, GpuAgentRule::Avoid).sentence(&s),
            "no agent can run it: 1 agent has too few cpus (1 free, 2 asked), \
             1 agent has too little mem (512 MiB free, 1024 MiB asked), \
             1 agent has too few free ports (1 free, 2 asked)"
        );
    }

    #[test]
    fn all_unreachable() {
        let s = shape(1.0, 1.0, 0);
        assert_eq!(
            tally(&[], 3, &s, GpuAgentRule::Avoid).sentence(&s),
            "no agent can run it: 3 unreachable"
        );
    }

    #[test]
    fn amounts_read_naturally() {
        assert_eq!(amount(4.0), "4");
        assert_eq!(amount(0.5), "0.5");
        assert_eq!(amount(0.1 + 0.2), "0.3");
        assert_eq!(amount(-0.0004), "0");
        assert_eq!(amount(1536.0), "1536");
    }
}
