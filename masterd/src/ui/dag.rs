//! The job dependency DAG drawn as SVG: each job a box in the column of its longest path from a
//! root (so every edge points right), coloured by its last run (success, failure, fresh) and
//! outlined while it runs; edges are curves from parent to child.

use maud::{html, Markup};
use std::collections::{BTreeMap, HashMap};

/// One job in the drawing.
pub struct Node {
    pub name: String,
    pub parents: Vec<String>,
    /// `success`, `failure` or `fresh`.
    pub last: String,
    pub running: bool,
}

const W: f64 = 150.0;
const H: f64 = 34.0;
const GAP_X: f64 = 60.0;
const GAP_Y: f64 = 16.0;

/// Each node's column: 0 for roots, else one more than its deepest parent. Parents that are not
/// in `nodes` are ignored; a cycle (which the API refuses) cannot loop: depth is capped at n.
pub fn columns(nodes: &[Node]) -> HashMap<&str, usize> {
    let known: HashMap<&str, &Node> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut col: HashMap<&str, usize> = nodes.iter().map(|n| (n.name.as_str(), 0)).collect();
    for _ in 0..nodes.len() {
        let mut changed = false;
        for n in nodes {
            let want = n
                .parents
                .iter()
                .filter(|p| known.contains_key(p.as_str()))
                .map(|p| col[p.as_str()] + 1)
                .max()
                .unwrap_or(0)
                .min(nodes.len());
            if col[n.name.as_str()] != want {
                col.insert(n.name.as_str(), want);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    col
}

/// The SVG of the jobs that have parents or children (lone jobs are left out); `None` when no
/// job has a dependency.
pub fn svg(nodes: &[Node]) -> Option<Markup> {
    let has_child: std::collections::HashSet<&str> = nodes
        .iter()
        .flat_map(|n| n.parents.iter().map(String::as_str))
        .collect();
    let linked: Vec<&Node> = nodes
        .iter()
        .filter(|n| !n.parents.is_empty() || has_child.contains(n.name.as_str()))
        .collect();
    if linked.is_empty() {
        return None;
    }
    let owned: Vec<Node> = linked
        .iter()
        .map(|n| Node {
            name: n.name.clone(),
            parents: n.parents.clone(),
            last: n.last.clone(),
            running: n.running,
        })
        .collect();
    let col = columns(&owned);
    let mut by_col: BTreeMap<usize, Vec<&Node>> = BTreeMap::new();
    for n in &owned {
        by_col.entry(col[n.name.as_str()]).or_default().push(n);
    }
    let mut pos: HashMap<&str, (f64, f64)> = HashMap::new();
    for (c, ns) in &by_col {
        for (i, n) in ns.iter().enumerate() {
            let x = 10.0 + *c as f64 * (W + GAP_X);
            let y = 10.0 + i as f64 * (H + GAP_Y);
            pos.insert(n.name.as_str(), (x, y));
        }
    }
    let width = 20.0 + by_col.len() as f64 * (W + GAP_X) - GAP_X;
    let rows = by_col.values().map(Vec::len).max().unwrap_or(1);
    let height = 20.0 + rows as f64 * (H + GAP_Y) - GAP_Y;
    Some(html! {
        svg.dag xmlns="http://www.w3.org/2000/svg" width=(width) height=(height) viewBox=(format!("0 0 {width} {height}")) role="img" aria-label="Job dependency graph" {
            defs { marker #arrow viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" { path d="M 0 0 L 10 5 L 0 10 z" fill="#98a2b3" {} } }
            @for n in &owned {
                @for p in n.parents.iter().filter_map(|p| pos.get(p.as_str())) {
                    @let (x1, y1) = (p.0 + W, p.1 + H / 2.0);
                    @let (x2, y2) = (pos[n.name.as_str()].0, pos[n.name.as_str()].1 + H / 2.0);
                    path.edge marker-end="url(#arrow)" d=(format!("M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}", x1 + GAP_X / 2.0, x2 - GAP_X / 2.0)) {}
                }
            }
            @for n in &owned {
                @let (x, y) = pos[n.name.as_str()];
                a href=(format!("/ui/jobs/{}", super::layout::enc(&n.name))) {
                    g class=(format!("node {}{}", n.last, if n.running { " running" } else { "" })) data-job=(n.name) {
                        rect x=(x) y=(y) width=(W) height=(H) rx="6" {}
                        text x=(x + W / 2.0) y=(y + H / 2.0 + 4.0) text-anchor="middle" {
                            (if n.name.len() > 20 { format!("{}…", &n.name[..n.name.char_indices().nth(19).map_or(n.name.len(), |(i, _)| i)]) } else { n.name.clone() })
                        }
                        title { (n.name) ": " (n.last) @if n.running { ", running" } }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(name: &str, parents: &[&str]) -> Node {
        Node {
            name: name.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            last: "fresh".into(),
            running: false,
        }
    }

    #[test]
    fn columns_follow_the_longest_path_and_survive_a_cycle() {
        let nodes = [
            n("a", &[]),
            n("b", &["a"]),
            n("c", &["a", "b"]),
            n("x", &["ghost"]),
        ];
        let c = columns(&nodes);
        assert_eq!((c["a"], c["b"], c["c"], c["x"]), (0, 1, 2, 0));
        let cyc = [n("p", &["q"]), n("q", &["p"])];
        let c = columns(&cyc);
        assert!(c["p"] <= 2 && c["q"] <= 2);
    }

    #[test]
    fn only_linked_jobs_are_drawn_with_one_path_per_edge() {
        assert!(svg(&[n("lone", &[])]).is_none());
        let s = svg(&[
            n("a", &[]),
            n("b", &["a"]),
            n("c", &["a", "b"]),
            n("lone", &[]),
        ])
        .expect("drawn")
        .into_string();
        assert_eq!(s.matches("class=\"edge\"").count(), 3, "{s}");
        assert_eq!(s.matches("<rect").count(), 3, "{s}");
        assert!(!s.contains("lone"), "{s}");
    }
}
