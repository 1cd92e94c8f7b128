//! The job dependency graph: jobs with typed parent edges (Chronos `parents` = afterok, Slurm's
//! afterany / afternotok), validated at submit time (unknown parents, self edges, named cycles).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// When a parent's completion satisfies the edge (Slurm's dependency types, spec §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyKind {
    /// The parent succeeded (Chronos `parents`; a `softError` parent's final failure counts too).
    #[default]
    AfterOk,
    /// The parent finished in any state.
    AfterAny,
    /// The parent failed (after its retries): failure handlers, Chronos #473.
    AfterNotOk,
}

impl fmt::Display for DependencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DependencyKind::AfterOk => "afterok",
            DependencyKind::AfterAny => "afterany",
            DependencyKind::AfterNotOk => "afternotok",
        })
    }
}

/// One parent edge of a job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dependency {
    /// The parent job's name (Chronos's `parents` entries, Gantry's `dependencies[].job`).
    #[serde(rename = "job")]
    pub parent: String,
    #[serde(rename = "type", default)]
    pub kind: DependencyKind,
}

/// How a job's edges combine: Slurm `,` (all must hold) or `?` (any may hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyMode {
    #[default]
    All,
    Any,
}

/// What the graph needs to know about a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    pub name: String,
    /// Empty for a scheduled (root) job.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    #[serde(default)]
    pub mode: DependencyMode,
    /// Chronos `softError`: this job's final failure satisfies its children's afterok edges.
    #[serde(default)]
    pub soft_error: bool,
    /// Slurm `singleton` / Chronos `concurrent: false`: never ready while a run of it is active.
    #[serde(default)]
    pub singleton: bool,
}

impl JobSpec {
    /// A job with no parents (scheduled, or run by hand).
    pub fn root(name: &str) -> JobSpec {
        JobSpec {
            name: name.to_string(),
            dependencies: Vec::new(),
            mode: DependencyMode::All,
            soft_error: false,
            singleton: false,
        }
    }

    /// A Chronos dependent job: every parent is an afterok edge.
    pub fn dependent(name: &str, parents: &[&str]) -> JobSpec {
        let mut job = JobSpec::root(name);
        job.dependencies = parents
            .iter()
            .map(|p| Dependency {
                parent: p.to_string(),
                kind: DependencyKind::AfterOk,
            })
            .collect();
        job
    }
}

/// Why a set of jobs is not a valid graph.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DagError {
    #[error("job '{name}' is defined twice")]
    DuplicateJob { name: String },
    #[error("job '{child}' depends on '{parent}', which does not exist")]
    UnknownParent { child: String, parent: String },
    #[error("job '{job}' depends on itself")]
    SelfDependency { job: String },
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The jobs on the cycle, first repeated at the end (`a -> b -> a`).
        cycle: Vec<String>,
    },
    #[error("job '{job}' cannot be removed: {} depend on it", children.join(", "))]
    Referenced { job: String, children: Vec<String> },
    #[error("job '{job}' does not exist")]
    NotFound { job: String },
}

#[derive(Debug, Clone)]
struct Node {
    spec: JobSpec,
    /// Parent indices with the edge kind, in the order written (duplicates removed).
    parents: Vec<(usize, DependencyKind)>,
    children: Vec<usize>,
}

/// A validated, acyclic job graph (edges parent → child), in submission order.
#[derive(Debug, Clone, Default)]
pub struct JobGraph {
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
}

impl JobGraph {
    /// Validate and build a graph from every job.
    pub fn new(jobs: impl IntoIterator<Item = JobSpec>) -> Result<JobGraph, DagError> {
        let mut nodes = Vec::new();
        let mut index = HashMap::new();
        for spec in jobs {
            if index.insert(spec.name.clone(), nodes.len()).is_some() {
                return Err(DagError::DuplicateJob { name: spec.name });
            }
            nodes.push(Node {
                spec,
                parents: Vec::new(),
                children: Vec::new(),
            });
        }
        for child in 0..nodes.len() {
            let mut parents: Vec<(usize, DependencyKind)> = Vec::new();
            for dep in &nodes[child].spec.dependencies {
                let name = &nodes[child].spec.name;
                if dep.parent == *name {
                    return Err(DagError::SelfDependency { job: name.clone() });
                }
                let parent = *index
                    .get(&dep.parent)
                    .ok_or_else(|| DagError::UnknownParent {
                        child: name.clone(),
                        parent: dep.parent.clone(),
                    })?;
                if !parents.contains(&(parent, dep.kind)) {
                    parents.push((parent, dep.kind));
                }
            }
            for &(parent, _) in &parents {
                if !nodes[parent].children.contains(&child) {
                    nodes[parent].children.push(child);
                }
            }
            nodes[child].parents = parents;
        }
        let graph = JobGraph { nodes, index };
        if let Some(cycle) = graph.find_cycle() {
            return Err(DagError::Cycle { cycle });
        }
        Ok(graph)
    }

    /// The graph with `job` added, or replacing the job of the same name (submit / update).
    pub fn with_job(&self, job: JobSpec) -> Result<JobGraph, DagError> {
        let mut specs: Vec<JobSpec> = self.nodes.iter().map(|n| n.spec.clone()).collect();
        match self.index.get(&job.name) {
            Some(&i) => specs[i] = job,
            None => specs.push(job),
        }
        JobGraph::new(specs)
    }

    /// The graph without `name`; refused while other jobs depend on it (Metronome's 409 rather
    /// than Chronos's rewriting of the children).
    pub fn without_job(&self, name: &str) -> Result<JobGraph, DagError> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| DagError::NotFound { job: name.into() })?;
        if !self.nodes[i].children.is_empty() {
            let children = self.nodes[i]
                .children
                .iter()
                .map(|&c| self.name(c).to_string());
            return Err(DagError::Referenced {
                job: name.into(),
                children: children.collect(),
            });
        }
        JobGraph::new(
            self.nodes
                .iter()
                .filter(|n| n.spec.name != name)
                .map(|n| n.spec.clone()),
        )
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
    pub fn job(&self, name: &str) -> Option<&JobSpec> {
        self.index.get(name).map(|&i| &self.nodes[i].spec)
    }
    /// Jobs in submission order.
    pub fn jobs(&self) -> impl Iterator<Item = &JobSpec> {
        self.nodes.iter().map(|n| &n.spec)
    }
    /// Edges `(parent, child)`, grouped by child in submission order.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str)> {
        self.nodes.iter().flat_map(move |n| {
            n.parents
                .iter()
                .map(move |&(p, _)| (self.name(p), n.spec.name.as_str()))
        })
    }
    /// Direct children of `name` (empty if unknown).
    pub fn children(&self, name: &str) -> impl Iterator<Item = &str> {
        let children = self
            .index
            .get(name)
            .map(|&i| self.nodes[i].children.as_slice());
        children.unwrap_or(&[]).iter().map(move |&c| self.name(c))
    }
    /// Parent edges of `name` as `(parent, kind)` (empty if unknown).
    pub fn parents(&self, name: &str) -> impl Iterator<Item = (&str, DependencyKind)> {
        let parents = self
            .index
            .get(name)
            .map(|&i| self.nodes[i].parents.as_slice());
        parents
            .unwrap_or(&[])
            .iter()
            .map(move |&(p, k)| (self.name(p), k))
    }

    fn name(&self, i: usize) -> &str {
        &self.nodes[i].spec.name
    }

    /// A cycle as job names (first repeated last), by iterative depth-first search.
    fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let mut mark = vec![Mark::New; self.nodes.len()];
        for root in 0..self.nodes.len() {
            if mark[root] != Mark::New {
                continue;
            }
            // Path of (node, next child position).
            let mut path: Vec<(usize, usize)> = vec![(root, 0)];
            mark[root] = Mark::OnPath;
            while let Some(&mut (node, ref mut pos)) = path.last_mut() {
                if let Some(&child) = self.nodes[node].children.get(*pos) {
                    *pos += 1;
                    match mark[child] {
                        Mark::New => {
                            mark[child] = Mark::OnPath;
                            path.push((child, 0));
                        }
                        Mark::OnPath => {
                            let from = path.iter().position(|&(n, _)| n == child).unwrap_or(0);
                            let mut cycle: Vec<String> = path[from..]
                                .iter()
                                .map(|&(n, _)| self.name(n).to_string())
                                .collect();
                            cycle.push(self.name(child).to_string());
                            return Some(cycle);
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node] = Mark::Done;
                    path.pop();
                }
            }
        }
        None
    }

    /// Jobs in an order where every parent comes before its children.
    pub fn topological_order(&self) -> Vec<&str> {
        let mut indegree: Vec<usize> = self.nodes.iter().map(|n| n.parents.len()).collect();
        let mut queue: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| indegree[i] == 0)
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut head = 0;
        while let Some(&i) = queue.get(head) {
            head += 1;
            order.push(self.name(i));
            for &c in &self.nodes[i].children {
                let parent_edges = self.nodes[c]
                    .parents
                    .iter()
                    .filter(|&&(p, _)| p == i)
                    .count();
                indegree[c] -= parent_edges;
                if indegree[c] == 0 {
                    queue.push(c);
                }
            }
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parent_self_edge_and_cycle_are_named() {
        let e = JobGraph::new([JobSpec::dependent("b", &["a"])]).unwrap_err();
        assert_eq!(
            e,
            DagError::UnknownParent {
                child: "b".into(),
                parent: "a".into()
            }
        );
        let e = JobGraph::new([JobSpec::dependent("a", &["a"])]).unwrap_err();
        assert_eq!(e, DagError::SelfDependency { job: "a".into() });
        let e = JobGraph::new([
            JobSpec::root("r"),
            JobSpec::dependent("a", &["r", "c"]),
            JobSpec::dependent("b", &["a"]),
            JobSpec::dependent("c", &["b"]),
        ])
        .unwrap_err();
        assert_eq!(e.to_string(), "dependency cycle: a -> b -> c -> a");
        let e = JobGraph::new([JobSpec::root("a"), JobSpec::root("a")]).unwrap_err();
        assert_eq!(e, DagError::DuplicateJob { name: "a".into() });
    }

    #[test]
    fn update_that_closes_a_cycle_is_refused_and_delete_of_a_parent_too() {
        let g = JobGraph::new([JobSpec::root("a"), JobSpec::dependent("b", &["a"])]).unwrap();
        let e = g.with_job(JobSpec::dependent("a", &["b"])).unwrap_err();
        assert!(
            matches!(e, DagError::Cycle { ref cycle } if cycle.len() == 3),
            "{e}"
        );
        let e = g.without_job("a").unwrap_err();
        assert_eq!(
            e,
            DagError::Referenced {
                job: "a".into(),
                children: vec!["b".into()]
            }
        );
        let g = g.without_job("b").unwrap().without_job("a").unwrap();
        assert!(g.is_empty());
    }

    #[test]
    fn edges_children_and_order() {
        let g = JobGraph::new([
            JobSpec::root("a"),
            JobSpec::dependent("c", &["a", "b", "a"]),
            JobSpec::root("b"),
        ])
        .unwrap();
        assert_eq!(g.edges().collect::<Vec<_>>(), [("a", "c"), ("b", "c")]);
        assert_eq!(g.children("a").collect::<Vec<_>>(), ["c"]);
        assert_eq!(g.topological_order(), ["a", "b", "c"]);
        let spec: JobSpec = serde_json::from_str(
            r#"{"name":"x","dependencies":[{"job":"a","type":"afternotok"}]}"#,
        )
        .unwrap();
        assert_eq!(spec.dependencies[0].kind, DependencyKind::AfterNotOk);
    }
}
