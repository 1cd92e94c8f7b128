//! Chronos's job constraints (spec §2.1): `[attribute, EQUALS|LIKE|UNLIKE, value]` over an agent's
//! attributes, with `hostname` taken from the agent. LIKE and UNLIKE match the whole value
//! against a regular expression, as Chronos's Java `matches` does. An agent that lacks the
//! attribute passes no EQUALS or LIKE and every UNLIKE.

use super::job::{ConstraintOperator, JobConstraint};
use gantry_proto::AgentInfo;
use regex::Regex;

/// Constraints compiled once for a pass.
pub struct Compiled(Vec<(String, Test)>);

enum Test {
    Equals(String),
    Like(Regex),
    Unlike(Regex),
    /// A pattern that does not compile (the reader checks the syntax; this is the engine's own
    /// refusal): nothing matches it.
    Never,
}

impl Compiled {
    /// Compiles `constraints`; `None` when there are none.
    pub fn new(constraints: &[JobConstraint]) -> Option<Compiled> {
        if constraints.is_empty() {
            return None;
        }
        let full = |v: &str| Regex::new(&format!("^(?:{v})$"));
        Some(Compiled(
            constraints
                .iter()
                .map(|c| {
                    let test = match c.operator {
                        ConstraintOperator::Equals => Test::Equals(c.value.clone()),
                        ConstraintOperator::Like => full(&c.value).map_or(Test::Never, Test::Like),
                        ConstraintOperator::Unlike => {
                            full(&c.value).map_or(Test::Never, Test::Unlike)
                        }
                    };
                    (c.attribute.clone(), test)
                })
                .collect(),
        ))
    }

    /// True when `agent` satisfies every constraint.
    pub fn accept(&self, agent: &AgentInfo) -> bool {
        self.0.iter().all(|(attr, test)| {
            let value = if attr == "hostname" {
                Some(agent.hostname.as_str())
            } else {
                agent.attributes.get(attr).map(String::as_str)
            };
            match (test, value) {
                (Test::Equals(v), Some(x)) => v == x,
                (Test::Like(re), Some(x)) => re.is_match(x),
                (Test::Unlike(re), Some(x)) => !re.is_match(x),
                (Test::Unlike(_), None) => true,
                _ => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(host: &str, rack: Option<&str>) -> AgentInfo {
        let mut a = AgentInfo {
            hostname: host.into(),
            ..AgentInfo::default()
        };
        if let Some(r) = rack {
            a.attributes.insert("rack".into(), r.into());
        }
        a
    }

    fn c(attribute: &str, operator: ConstraintOperator, value: &str) -> JobConstraint {
        JobConstraint {
            attribute: attribute.into(),
            operator,
            value: value.into(),
        }
    }

    #[test]
    fn equals_like_and_unlike_match_whole_values() {
        use ConstraintOperator::*;
        let rack1 = agent("gpu-01", Some("rack-1"));
        let rack12 = agent("gpu-02", Some("rack-12"));
        let none = agent("cpu-01", None);
        let eq = Compiled::new(&[c("rack", Equals, "rack-1")]).expect("some");
        assert!(eq.accept(&rack1) && !eq.accept(&rack12) && !eq.accept(&none));
        let like = Compiled::new(&[c("rack", Like, "rack-[0-9]")]).expect("some");
        assert!(like.accept(&rack1) && !like.accept(&rack12), "a full match");
        let unlike = Compiled::new(&[c("hostname", Unlike, "gpu-.*")]).expect("some");
        assert!(!unlike.accept(&rack1) && unlike.accept(&none));
        let missing = Compiled::new(&[c("zone", Unlike, "a")]).expect("some");
        assert!(
            missing.accept(&none),
            "UNLIKE passes an agent without the attribute"
        );
        assert!(Compiled::new(&[]).is_none());
    }
}
