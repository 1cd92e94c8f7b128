//! Unit tests of placement constraints: each operator, missing attributes, the sequential filter
//! and GROUP_BY's spread.

use super::*;
use proptest::prelude::*;

fn agent(host: &str, attrs: &[(&str, &str)]) -> (AgentId, AgentInfo) {
    let info = AgentInfo {
        hostname: host.into(),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..AgentInfo::default()
    };
    (AgentId::from(host), info)
}

fn facts(agents: &[(AgentId, AgentInfo)]) -> Vec<AgentFacts<'_>> {
    agents
        .iter()
        .map(|(id, info)| AgentFacts { id, info })
        .collect()
}

fn cons(parts: &[&[&str]]) -> CompiledConstraints {
    let list: Vec<Constraint> = parts
        .iter()
        .map(|p| {
            let v: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            Constraint::from_parts(&v).expect("valid constraint")
        })
        .collect();
    CompiledConstraints::new(&list)
}

fn counts(c: &[(&str, usize)]) -> HashMap<AgentId, usize> {
    c.iter().map(|(a, n)| (AgentId::from(*a), *n)).collect()
}

fn names(set: &HashSet<AgentId>) -> Vec<String> {
    let mut v: Vec<String> = set.iter().map(|a| a.0.clone()).collect();
    v.sort();
    v
}

fn three() -> Vec<(AgentId, AgentInfo)> {
    vec![
        agent("a", &[("rack", "r1"), ("zone", "z1"), ("gpu", "1")]),
        agent("b", &[("rack", "r1"), ("zone", "z2")]),
        agent("c", &[("rack", "r2")]),
    ]
}

#[test]
fn unique_hostname_leaves_agents_without_an_instance() {
    let ag = three();
    let c = cons(&[&["hostname", "UNIQUE"]]);
    let ok = c
        .agents_for_one_more(&facts(&ag), &counts(&[("a", 1)]))
        .unwrap();
    assert_eq!(names(&ok), ["b", "c"]);
    let err = c
        .agents_for_one_more(&facts(&ag), &counts(&[("a", 1), ("b", 1), ("c", 1)]))
        .unwrap_err();
    assert_eq!(
        err,
        r#"constraint ["hostname","UNIQUE"] leaves no agent: 3 of 3 agents already run an instance"#
    );
}

#[test]
fn unique_attribute_counts_per_value() {
    let ag = three();
    let c = cons(&[&["rack", "UNIQUE"]]);
    let ok = c
        .agents_for_one_more(&facts(&ag), &counts(&[("a", 1)]))
        .unwrap();
    assert_eq!(names(&ok), ["c"], "b shares r1 with a");
}

#[test]
fn cluster_with_and_without_a_value() {
    let ag = three();
    let c = cons(&[&["rack", "CLUSTER", "r2"]]);
    assert_eq!(
        names(&c.agents_for_one_more(&facts(&ag), &counts(&[])).unwrap()),
        ["c"]
    );
    let free = cons(&[&["rack", "CLUSTER"]]);
    assert_eq!(
        names(&free.agents_for_one_more(&facts(&ag), &counts(&[])).unwrap()),
        ["a", "b", "c"],
        "the first one goes anywhere"
    );
    assert_eq!(
        names(
            &free
                .agents_for_one_more(&facts(&ag), &counts(&[("b", 1)]))
                .unwrap()
        ),
        ["a", "b"],
        "the rest follow it to r1"
    );
}

#[test]
fn group_by_allows_only_the_least_used_values() {
    let ag = three();
    let c = cons(&[&["rack", "GROUP_BY"]]);
    assert_eq!(
        names(
            &c.agents_for_one_more(&facts(&ag), &counts(&[("a", 1)]))
                .unwrap()
        ),
        ["c"]
    );
    assert_eq!(
        names(
            &c.agents_for_one_more(&facts(&ag), &counts(&[("a", 1), ("c", 1)]))
                .unwrap()
        ),
        ["a", "b", "c"]
    );
}

#[test]
fn group_by_with_a_count_waits_for_that_many_values() {
    let ag = three();
    let c = cons(&[&["rack", "GROUP_BY", "3"]]);
    let err = c
        .agents_for_one_more(&facts(&ag), &counts(&[]))
        .unwrap_err();
    assert!(err.contains("2 distinct values of 'rack'"), "{err}");
    let c2 = cons(&[&["rack", "GROUP_BY", "2"]]);
    assert!(c2.agents_for_one_more(&facts(&ag), &counts(&[])).is_ok());
}

#[test]
fn like_and_unlike_are_full_matches() {
    let ag = three();
    let like = cons(&[&["hostname", "LIKE", "a|b"]]);
    assert_eq!(
        names(&like.agents_for_one_more(&facts(&ag), &counts(&[])).unwrap()),
        ["a", "b"]
    );
    let partial = cons(&[&["rack", "LIKE", "r"]]);
    assert!(
        partial
            .agents_for_one_more(&facts(&ag), &counts(&[]))
            .is_err(),
        "'r' does not fully match 'r1'"
    );
    let unlike = cons(&[&["zone", "UNLIKE", "z1"]]);
    assert_eq!(
        names(
            &unlike
                .agents_for_one_more(&facts(&ag), &counts(&[]))
                .unwrap()
        ),
        ["b", "c"],
        "c lacks zone: only UNLIKE matches it"
    );
}

#[test]
fn max_per_caps_each_value() {
    let ag = three();
    let c = cons(&[&["rack", "MAX_PER", "2"]]);
    let ok = c
        .agents_for_one_more(&facts(&ag), &counts(&[("a", 1), ("b", 1)]))
        .unwrap();
    assert_eq!(names(&ok), ["c"]);
    let err = c
        .agents_for_one_more(&facts(&ag), &counts(&[("a", 2), ("c", 2)]))
        .unwrap_err();
    assert!(err.contains("MAX_PER"), "{err}");
}

#[test]
fn is_compares_text_and_scalars() {
    let ag = three();
    let c = cons(&[&["gpu", "IS", "1.0"]]);
    assert_eq!(
        names(&c.agents_for_one_more(&facts(&ag), &counts(&[])).unwrap()),
        ["a"]
    );
    let z = cons(&[&["@zone", "IS", "z2"]]);
    assert_eq!(
        names(&z.agents_for_one_more(&facts(&ag), &counts(&[])).unwrap()),
        ["b"]
    );
}

#[test]
fn a_missing_attribute_matches_only_unlike() {
    let ag = vec![agent("x", &[])];
    for p in [
        &["rack", "UNIQUE"][..],
        &["rack", "CLUSTER"],
        &["rack", "GROUP_BY"],
        &["rack", "LIKE", ".*"],
        &["rack", "MAX_PER", "5"],
        &["rack", "IS", "r1"],
    ] {
        let err = cons(&[p])
            .agents_for_one_more(&facts(&ag), &counts(&[]))
            .unwrap_err();
        assert!(err.contains("has the field 'rack'"), "{p:?}: {err}");
    }
    assert!(cons(&[&["rack", "UNLIKE", ".*"]])
        .agents_for_one_more(&facts(&ag), &counts(&[]))
        .is_ok());
}

#[test]
fn constraints_combine() {
    let ag = three();
    let c = cons(&[&["rack", "LIKE", "r1"], &["hostname", "UNIQUE"]]);
    let err = c
        .agents_for_one_more(&facts(&ag), &counts(&[("a", 1), ("b", 1)]))
        .unwrap_err();
    assert!(err.contains("together"), "{err}");
}

#[test]
fn sequential_filter_counts_accepted_placements() {
    let ag = three();
    let c = cons(&[&["hostname", "UNIQUE"]]);
    let (a, b) = (AgentId::from("a"), AgentId::from("b"));
    let got = c.filter_sequential(&facts(&ag), &counts(&[]), &[&a, &a, &b, &b]);
    assert_eq!(got, [true, false, true, false]);
    let gone = AgentId::from("gone");
    assert_eq!(
        c.filter_sequential(&facts(&ag), &counts(&[]), &[&gone]),
        [false]
    );
}

#[test]
fn sequential_filter_spreads_group_by() {
    let ag = three();
    let c = cons(&[&["rack", "GROUP_BY"]]);
    let (a, b, cc) = (AgentId::from("a"), AgentId::from("b"), AgentId::from("c"));
    let got = c.filter_sequential(&facts(&ag), &counts(&[]), &[&a, &b, &cc, &b]);
    assert_eq!(
        got,
        [true, false, true, true],
        "r1, (r1 again refused), r2, r1"
    );
}

fn greedy(c: &CompiledConstraints, f: &[AgentFacts<'_>], n: usize) -> HashMap<AgentId, usize> {
    let mut per: HashMap<AgentId, usize> = HashMap::new();
    for _ in 0..n {
        let Ok(ok) = c.agents_for_one_more(f, &per) else {
            break;
        };
        let mut ids: Vec<&AgentId> = ok.iter().collect();
        ids.sort();
        *per.entry(ids[0].clone()).or_default() += 1;
    }
    per
}

proptest! {
    /// Placing greedily on allowed agents never breaks MAX_PER, and GROUP_BY keeps the racks
    /// within one instance of each other.
    #[test]
    fn greedy_placement_keeps_constraints(racks in proptest::collection::vec(0u8..4, 1..8), n in 1usize..20) {
        let ag: Vec<(AgentId, AgentInfo)> = racks
            .iter()
            .enumerate()
            .map(|(i, r)| agent(&format!("h{i}"), &[("rack", &format!("r{r}"))]))
            .collect();
        let f = facts(&ag);
        let per = greedy(&cons(&[&["hostname", "MAX_PER", "3"]]), &f, n);
        prop_assert!(per.values().all(|n| *n <= 3));
        prop_assert_eq!(per.values().sum::<usize>(), n.min(3 * ag.len()));
        let per = greedy(&cons(&[&["rack", "GROUP_BY"]]), &f, n);
        prop_assert_eq!(per.values().sum::<usize>(), n);
        let mut by_rack: HashMap<String, usize> = HashMap::new();
        for (id, info) in &ag {
            *by_rack.entry(info.attributes["rack"].clone()).or_default() += per.get(id).copied().unwrap_or(0);
        }
        let max = by_rack.values().max().copied().unwrap_or(0);
        let min = by_rack.values().min().copied().unwrap_or(0);
        prop_assert!(max - min <= 1, "{:?}", by_rack);
    }
}
