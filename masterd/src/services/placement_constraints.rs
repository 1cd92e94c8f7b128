//! Applying an app's placement constraints (spec §2.2) to the agents: which agents may take one
//! more instance, and a sequential filter of a plan's placements. Pure: no I/O, no locks.

use super::app::{Constraint, ConstraintOperator};
use gantry_proto::{AgentId, AgentInfo};
use regex::Regex;
use std::collections::{BTreeMap, HashMap, HashSet};

/// An agent as constraints see it.
#[derive(Clone, Copy, Debug)]
pub struct AgentFacts<'a> {
    pub id: &'a AgentId,
    pub info: &'a AgentInfo,
}

/// An app's constraints, with their regular expressions compiled once.
#[derive(Debug)]
pub struct CompiledConstraints {
    list: Vec<(Constraint, Option<Regex>)>,
}

/// The value of `field` on an agent: `hostname`/`@hostname` is the agent's host name, `@region` and
/// `@zone` the `region`/`zone` attribute (or one spelled with the `@`), anything else an attribute.
/// `None` when the agent lacks it.
pub fn field_value<'a>(field: &str, info: &'a AgentInfo) -> Option<&'a str> {
    match field {
        "hostname" | "@hostname" => Some(info.hostname.as_str()),
        "@region" | "@zone" => info
            .attributes
            .get(field)
            .or_else(|| info.attributes.get(&field[1..]))
            .map(String::as_str),
        _ => info.attributes.get(field).map(String::as_str),
    }
}

/// Text equality, or numeric equality to 3 decimals when both sides are numbers (spec §2.2).
fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => (x * 1000.0).round_ties_even() == (y * 1000.0).round_ties_even(),
        _ => false,
    }
}

/// The constraint as the user wrote it, for messages: `["hostname","UNIQUE"]`.
fn literal(c: &Constraint) -> String {
    let op = ConstraintOperator::LITERALS
        .iter()
        .find(|l| ConstraintOperator::from_literal(l) == Some(c.operator))
        .copied()
        .unwrap_or("?");
    let mut parts = vec![c.field.as_str(), op];
    if let Some(v) = &c.value {
        parts.push(v);
    }
    serde_json::to_string(&parts).unwrap_or_default()
}

/// Instances per value of one field (`None`: agents lacking the field).
type ValueCounts<'a> = HashMap<Option<&'a str>, usize>;

impl CompiledConstraints {
    /// Compiles `constraints`. A regex that does not compile (the syntax check on input is light)
    /// makes its constraint match no agent.
    pub fn new(constraints: &[Constraint]) -> Self {
        let list = constraints
            .iter()
            .map(|c| {
                let re = match c.operator {
                    ConstraintOperator::Like | ConstraintOperator::Unlike => c
                        .value
                        .as_deref()
                        .and_then(|v| Regex::new(&format!("^(?:{v})$")).ok()),
                    _ => None,
                };
                (c.clone(), re)
            })
            .collect();
        CompiledConstraints { list }
    }

    /// Whether there is no constraint at all.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether one more instance on `agent` keeps constraint `i` satisfied, given the instances
    /// per value and the values of the eligible agents.
    fn allows(
        &self,
        i: usize,
        agent: &AgentFacts<'_>,
        counts: &ValueCounts<'_>,
        known: &[Option<&str>],
    ) -> bool {
        let (c, re) = &self.list[i];
        let value = field_value(&c.field, agent.info);
        let count = |v: Option<&str>| counts.get(&v).copied().unwrap_or(0);
        use ConstraintOperator::*;
        match (c.operator, value) {
            (Unlike, None) => true,
            (_, None) => false,
            (Unique, v) => count(v) == 0,
            (Cluster, Some(v)) => match &c.value {
                Some(want) => same_value(v, want),
                // The value of the existing instances (the most common one), else any.
                None => counts
                    .iter()
                    .filter(|(k, n)| k.is_some() && **n > 0)
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                    .is_none_or(|(k, _)| *k == Some(v)),
            },
            (GroupBy, Some(v)) => {
                let mut values: Vec<&str> = known.iter().flatten().copied().collect();
                values.sort_unstable();
                values.dedup();
                let wanted = c.value.as_deref().and_then(|n| n.parse::<usize>().ok());
                if wanted.is_some_and(|n| values.len() < n) {
                    return false; // Marathon waits until it knows that many values.
                }
                let min = values.iter().map(|x| count(Some(x))).min().unwrap_or(0);
                count(Some(v)) <= min
            }
            (Like, Some(v)) => re.as_ref().is_some_and(|r| r.is_match(v)),
            (Unlike, Some(v)) => re.as_ref().is_some_and(|r| !r.is_match(v)),
            (MaxPer, v) => {
                let max = c.value.as_deref().and_then(|n| n.parse::<usize>().ok());
                max.is_some_and(|m| count(v) < m)
            }
            (Is, Some(v)) => c.value.as_deref().is_some_and(|want| same_value(v, want)),
        }
    }

    /// Instances per value of constraint `i`'s field, from the instances per agent. Instances on
    /// agents not in `agents` (gone, say) count under no value.
    fn value_counts<'a>(
        &self,
        i: usize,
        agents: &[AgentFacts<'a>],
        per_agent: &HashMap<AgentId, usize>,
    ) -> ValueCounts<'a> {
        let field = &self.list[i].0.field;
        let by_id: HashMap<&AgentId, &AgentFacts<'a>> = agents.iter().map(|a| (a.id, a)).collect();
        let mut out = ValueCounts::new();
        for (id, n) in per_agent {
            let v = by_id.get(id).and_then(|a| field_value(field, a.info));
            *out.entry(v).or_default() += n;
        }
        out
    }

    /// The agents among `agents` on which ONE more instance keeps every constraint satisfied,
    /// given the app's instances per agent. `agents` are the connected agents otherwise eligible
    /// for the app; GROUP_BY spreads over their values. `Err` says why no agent is left.
    pub fn agents_for_one_more(
        &self,
        agents: &[AgentFacts<'_>],
        per_agent: &HashMap<AgentId, usize>,
    ) -> Result<HashSet<AgentId>, String> {
        let mut ok: Vec<bool> = vec![true; agents.len()];
        for i in 0..self.list.len() {
            let counts = self.value_counts(i, agents, per_agent);
            let field = &self.list[i].0.field;
            let known: Vec<Option<&str>> =
                agents.iter().map(|a| field_value(field, a.info)).collect();
            let allowed: Vec<bool> = agents
                .iter()
                .map(|a| self.allows(i, a, &counts, &known))
                .collect();
            if !allowed.iter().any(|b| *b) {
                return Err(self.no_agent_reason(i, agents, &counts, &known));
            }
            for (o, a) in ok.iter_mut().zip(allowed) {
                *o &= a;
            }
        }
        let set: HashSet<AgentId> = agents
            .iter()
            .zip(&ok)
            .filter(|(_, ok)| **ok)
            .map(|(a, _)| a.id.clone())
            .collect();
        if set.is_empty() {
            let all: Vec<String> = self.list.iter().map(|(c, _)| literal(c)).collect();
            return Err(format!(
                "constraints {} together leave no agent among {} eligible agents",
                all.join(", "),
                agents.len()
            ));
        }
        Ok(set)
    }

    /// Why constraint `i` alone leaves no agent.
    fn no_agent_reason(
        &self,
        i: usize,
        agents: &[AgentFacts<'_>],
        counts: &ValueCounts<'_>,
        known: &[Option<&str>],
    ) -> String {
        let (c, _) = &self.list[i];
        let n = agents.len();
        let with: Vec<&str> = known.iter().flatten().copied().collect();
        let lacking = n - with.len();
        let busy = |v: &&&str| counts.get(&Some(**v)).copied().unwrap_or(0) > 0;
        use ConstraintOperator::*;
        let why = match c.operator {
            _ if n == 0 => "no agent is connected and eligible".to_string(),
            _ if lacking == n => format!("none of {n} agents has the field '{}'", c.field),
            Unique => format!(
                "{} of {n} agents already run an instance",
                with.iter().filter(busy).count()
            ),
            MaxPer => format!(
                "every value of '{}' on the {n} agents already has {} instances",
                c.field,
                c.value.as_deref().unwrap_or("?")
            ),
            GroupBy => {
                let mut d = with.clone();
                d.sort_unstable();
                d.dedup();
                format!(
                    "{} distinct values of '{}' known among {n} agents, waiting for {}",
                    d.len(),
                    c.field,
                    c.value.as_deref().unwrap_or("?")
                )
            }
            Cluster if c.value.is_none() => format!(
                "no eligible agent has the value of '{}' the app's instances run on",
                c.field
            ),
            _ => format!("no value of '{}' on the {n} agents matches", c.field),
        };
        format!("constraint {} leaves no agent: {why}", literal(c))
    }

    /// Walks `placements` (task, agent) in order and accepts each one only if it keeps every
    /// constraint satisfied given `per_agent` plus the placements accepted before it. Returns
    /// whether each placement is accepted.
    pub fn filter_sequential(
        &self,
        agents: &[AgentFacts<'_>],
        per_agent: &HashMap<AgentId, usize>,
        placements: &[&AgentId],
    ) -> Vec<bool> {
        let mut counts = per_agent.clone();
        let by_id: BTreeMap<&AgentId, &AgentFacts<'_>> = agents.iter().map(|a| (a.id, a)).collect();
        placements
            .iter()
            .map(|id| {
                let Some(agent) = by_id.get(id) else {
                    return false;
                };
                let ok = (0..self.list.len()).all(|i| {
                    let c = self.value_counts(i, agents, &counts);
                    let field = &self.list[i].0.field;
                    let known: Vec<Option<&str>> =
                        agents.iter().map(|a| field_value(field, a.info)).collect();
                    self.allows(i, agent, &c, &known)
                });
                if ok {
                    *counts.entry((*id).clone()).or_default() += 1;
                }
                ok
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "placement_constraints_tests.rs"]
mod tests;
