//! Placement constraints (spec §2.2): `[field, OPERATOR, value?]`, typed and checked.

/// A constraint operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConstraintOperator {
    Unique,
    Cluster,
    GroupBy,
    Like,
    Unlike,
    MaxPer,
    Is,
}

impl ConstraintOperator {
    /// Every literal, as Marathon spells it.
    pub const LITERALS: [&'static str; 7] = [
        "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS",
    ];

    /// Parses Marathon's literal (`UNIQUE`, `GROUP_BY`, ...).
    pub fn from_literal(s: &str) -> Option<Self> {
        use ConstraintOperator::*;
        Some(match s {
            "UNIQUE" => Unique,
            "CLUSTER" => Cluster,
            "GROUP_BY" => GroupBy,
            "LIKE" => Like,
            "UNLIKE" => Unlike,
            "MAX_PER" => MaxPer,
            "IS" => Is,
            _ => return None,
        })
    }
}

/// A placement constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    /// `hostname`, `@hostname`, `@region`, `@zone` or an agent attribute name.
    pub field: String,
    pub operator: ConstraintOperator,
    pub value: Option<String>,
}

impl Constraint {
    /// Checks and types `[field, OPERATOR, value?]`. The error says what to change.
    pub fn from_parts(parts: &[String]) -> Result<Constraint, String> {
        let (field, op, value) = match parts {
            [f, o] => (f, o, None),
            [f, o, v] => (f, o, Some(v.clone())),
            _ => {
                return Err("Each constraint must have either 2 or 3 fields: \
                     [field, OPERATOR] or [field, OPERATOR, value]"
                    .into())
            }
        };
        if field.is_empty() || op.is_empty() {
            return Err("Missing field and operator".into());
        }
        let Some(operator) = ConstraintOperator::from_literal(op) else {
            return Err(format!(
                "Unsupported constraint operator '{op}': use one of {}",
                ConstraintOperator::LITERALS.join(", ")
            ));
        };
        use ConstraintOperator::*;
        let is_count = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        match (operator, value.as_deref()) {
            (Unique, Some(_)) => {
                return Err("Value specified but not used: UNIQUE takes no value".into())
            }
            (GroupBy, Some(v)) if !is_count(v) => {
                return Err(format!(
                    "Value '{v}' is not a number: GROUP_BY takes an optional count such as \"3\""
                ))
            }
            (MaxPer, Some(v)) if !is_count(v) => {
                return Err(format!(
                    "Value '{v}' is not a number: MAX_PER takes a count such as \"2\""
                ))
            }
            (MaxPer, None) => return Err("MAX_PER needs a count such as \"2\"".into()),
            (Like | Unlike, None) => {
                return Err(format!(
                    "A regular expression value must be provided for {op}"
                ))
            }
            (Like | Unlike, Some(v)) => {
                if let Err(why) = check_regex_syntax(v) {
                    return Err(format!("'{v}' is not a valid regular expression: {why}"));
                }
            }
            (Is, None) => return Err("IS needs a value to compare with".into()),
            _ => {}
        }
        Ok(Constraint {
            field: field.clone(),
            operator,
            value,
        })
    }
}

/// A light syntax check of a regular expression: balanced groups and classes, no dangling escape,
/// no quantifier with nothing to repeat. (No regex engine is linked into the master yet.)
fn check_regex_syntax(re: &str) -> Result<(), &'static str> {
    let mut depth = 0usize;
    let mut in_class = false;
    let mut prev_atom = false;
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if chars.next().is_none() {
                    return Err("it ends with a lone backslash");
                }
                prev_atom = true;
            }
            ']' if in_class => {
                in_class = false;
                prev_atom = true;
            }
            _ if in_class => {}
            '[' => in_class = true,
            '(' => {
                depth += 1;
                prev_atom = false;
            }
            ')' => {
                depth = depth.checked_sub(1).ok_or("it has an unmatched ')'")?;
                prev_atom = true;
            }
            '*' | '+' | '?' | '{' if !prev_atom => {
                return Err("a quantifier has nothing to repeat")
            }
            '|' => prev_atom = false,
            _ => prev_atom = true,
        }
    }
    if in_class {
        return Err("it has an unclosed '['");
    }
    if depth > 0 {
        return Err("it has an unclosed '('");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_every_operator_in_its_shape() {
        for ok in [
            &["hostname", "UNIQUE"][..],
            &["rack", "CLUSTER"],
            &["rack", "CLUSTER", "r1"],
            &["rack", "GROUP_BY"],
            &["rack", "GROUP_BY", "3"],
            &["hostname", "LIKE", "node-[0-9]+"],
            &["hostname", "UNLIKE", "a|b"],
            &["hostname", "MAX_PER", "2"],
            &["@zone", "IS", "z1"],
        ] {
            assert!(Constraint::from_parts(&parts(ok)).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn refuses_bad_shapes() {
        for bad in [
            &["hostname"][..],
            &["hostname", "UNIQUE", "x"],
            &["hostname", "NEAR"],
            &["rack", "GROUP_BY", "three"],
            &["hostname", "MAX_PER"],
            &["hostname", "LIKE"],
            &["hostname", "LIKE", "(a"],
            &["hostname", "LIKE", "*a"],
            &["hostname", "IS"],
            &["", "UNIQUE"],
        ] {
            assert!(Constraint::from_parts(&parts(bad)).is_err(), "{bad:?}");
        }
    }
}
