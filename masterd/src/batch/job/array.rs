//! Gantry's `array` extension: Slurm `--array` syntax (`0-15%4`, `1,3,5,7`, `1-7:2`) parsed into
//! the sorted, distinct task indices of one run and an optional limit on tasks running at once.

/// The most tasks one run of an array job may fan out into.
pub const MAX_ARRAY_TASKS: usize = 100_000;
/// The largest index an array may use (Slurm's largest `MaxArraySize` is 4000001).
pub const MAX_ARRAY_INDEX: u32 = 4_000_000;

/// A parsed `array` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobArray {
    /// The text as given (rendered back verbatim).
    pub text: String,
    /// Task indices, ascending, each once.
    pub indices: Vec<u32>,
    /// `%N`: at most N tasks of one run at a time (`None` = no limit).
    pub max_running: Option<u32>,
}

impl JobArray {
    /// Parse Slurm's syntax: comma-separated items `N`, `A-B` or `A-B:S`, then an optional `%N`.
    /// Overlapping items are merged (Slurm also runs each index once).
    pub fn parse(text: &str) -> Result<JobArray, String> {
        let (list, throttle) = match text.split_once('%') {
            Some((l, t)) => (l, Some(t)),
            None => (text, None),
        };
        let max_running = match throttle {
            None => None,
            Some(t) => match t.parse::<u32>() {
                Ok(0) | Err(_) => {
                    return Err(format!(
                        "'%{t}' must be a positive number of tasks allowed to run at once"
                    ))
                }
                Ok(n) => Some(n),
            },
        };
        if list.is_empty() {
            return Err("give indices such as '0-15', '1,3,5' or '1-7:2'".to_string());
        }
        let mut indices: Vec<u32> = Vec::new();
        for item in list.split(',') {
            let (range, step) = match item.split_once(':') {
                Some((r, s)) => (r, Some(s)),
                None => (item, None),
            };
            let (lo, hi) = match range.split_once('-') {
                Some((a, b)) => (index(a, item)?, index(b, item)?),
                None => {
                    let n = index(range, item)?;
                    (n, n)
                }
            };
            if lo > hi {
                return Err(format!("range '{item}' ends before it starts"));
            }
            let step = match step {
                None => 1,
                Some(s) => match s.parse::<u32>() {
                    Ok(0) | Err(_) => {
                        return Err(format!("step in '{item}' must be a positive number"))
                    }
                    Ok(n) => n,
                },
            };
            let count = (hi - lo) / step + 1;
            if indices.len().saturating_add(count as usize) > MAX_ARRAY_TASKS {
                return Err(format!(
                    "'{text}' has more than {MAX_ARRAY_TASKS} tasks; split the work into \
                     several jobs"
                ));
            }
            indices.extend((0..count).map(|k| lo + k * step));
        }
        indices.sort_unstable();
        indices.dedup();
        Ok(JobArray {
            text: text.to_string(),
            indices,
            max_running,
        })
    }

    /// Number of tasks in one run.
    pub fn size(&self) -> usize {
        self.indices.len()
    }
    pub fn min(&self) -> u32 {
        self.indices.first().copied().unwrap_or(0)
    }
    pub fn max(&self) -> u32 {
        self.indices.last().copied().unwrap_or(0)
    }
}

fn index(s: &str, item: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{item}' is not an index, a range A-B or A-B:step"));
    }
    match s.parse::<u32>() {
        Ok(n) if n <= MAX_ARRAY_INDEX => Ok(n),
        _ => Err(format!(
            "index '{s}' is above the largest, {MAX_ARRAY_INDEX}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_forms_parse() {
        let a = JobArray::parse("0-15%4").unwrap();
        assert_eq!(a.indices, (0..16).collect::<Vec<_>>());
        assert_eq!(a.max_running, Some(4));
        assert_eq!(JobArray::parse("1,3,5,7").unwrap().indices, [1, 3, 5, 7]);
        assert_eq!(JobArray::parse("1-7:2").unwrap().indices, [1, 3, 5, 7]);
        let m = JobArray::parse("5,0-2,2").unwrap();
        assert_eq!(
            (m.indices.clone(), m.min(), m.max(), m.size()),
            (vec![0, 1, 2, 5], 0, 5, 4)
        );
        assert_eq!(JobArray::parse("7").unwrap().indices, [7]);
    }

    #[test]
    fn bad_forms_are_refused() {
        for bad in [
            "",
            "%4",
            "0-15%0",
            "0-15%x",
            "3-1",
            "1-7:0",
            "a",
            "1,,2",
            "-1",
            "1-",
            "0-99999999",
            "0-200000",
            "1 ,2",
        ] {
            assert!(JobArray::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(JobArray::parse("0-99999").is_ok());
        assert!(JobArray::parse("0-100000").is_err());
    }
}
