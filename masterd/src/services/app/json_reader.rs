//! Typed reading of a `serde_json::Value` that collects every error with its path and a Play-JSON
//! code (`error.expected.jsstring`, `error.min`, ...), the way Marathon's generated readers report
//! them. `null` counts as absent, as with Play's `readNullable`.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The wrong-type and schema-constraint errors found so far, as `(path, code)`.
#[derive(Debug, Default)]
pub(super) struct JsonReader {
    pub errors: Vec<(String, String)>,
}

/// The path of `key` inside the object at `path` (`""` is the root): `/container/docker`.
pub(super) fn child(path: &str, key: &str) -> String {
    format!("{path}/{key}")
}

/// The path of element `i` of the array at `path`: `/portDefinitions(0)`.
pub(super) fn index(path: &str, i: usize) -> String {
    format!("{path}({i})")
}

impl JsonReader {
    /// Records an error; the root path `""` is written `/`.
    pub fn error(&mut self, path: &str, code: &str) {
        let path = if path.is_empty() { "/" } else { path };
        self.errors.push((path.to_string(), code.to_string()));
    }

    /// The value at `key`, or `None` when it is absent or `null`.
    pub fn get<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        obj.get(key).filter(|v| !v.is_null())
    }

    /// Reads an optional field with `read`, which gets the field's value and path.
    pub fn field<T>(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
        read: impl FnOnce(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<T> {
        let v = Self::get(obj, key)?;
        read(self, v, &child(path, key))
    }

    /// Reads a required field: `error.path.missing` when absent.
    pub fn required<T>(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        key: &str,
        read: impl FnOnce(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<T> {
        if Self::get(obj, key).is_none() {
            self.error(&child(path, key), "error.path.missing");
            return None;
        }
        self.field(obj, path, key, read)
    }

    pub fn object<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Map<String, Value>> {
        let o = v.as_object();
        if o.is_none() {
            self.error(path, "error.expected.jsobject");
        }
        o
    }

    pub fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.error(path, "error.expected.jsstring");
                None
            }
        }
    }

    /// A string of at least one character (`error.minLength` otherwise).
    pub fn non_empty_string(&mut self, v: &Value, path: &str) -> Option<String> {
        let s = self.string(v, path)?;
        if s.is_empty() {
            self.error(path, "error.minLength");
            return None;
        }
        Some(s)
    }

    pub fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        let b = v.as_bool();
        if b.is_none() {
            self.error(path, "error.expected.jsboolean");
        }
        b
    }

    pub fn number(&mut self, v: &Value, path: &str) -> Option<f64> {
        let n = v.as_f64();
        if n.is_none() {
            self.error(path, "error.expected.jsnumber");
        }
        n
    }

    /// A number `>= min` (`error.min` otherwise).
    pub fn number_min(&mut self, v: &Value, path: &str, min: f64) -> Option<f64> {
        let n = self.number(v, path)?;
        if n < min {
            self.error(path, "error.min");
            return None;
        }
        Some(n)
    }

    /// A whole number in `0..=max` (`error.expected.int` for fractions, `error.min` for negatives,
    /// `error.max` above `max`).
    pub fn whole(&mut self, v: &Value, path: &str, max: u64) -> Option<u64> {
        let n = self.number(v, path)?;
        if n.fract() != 0.0 || !n.is_finite() {
            self.error(path, "error.expected.int");
            return None;
        }
        if n < 0.0 {
            self.error(path, "error.min");
            return None;
        }
        if n > max as f64 {
            self.error(path, "error.max");
            return None;
        }
        // Exact for integers below 2^53; larger ones were written as integers in the JSON.
        Some(v.as_u64().unwrap_or(n as u64))
    }

    pub fn u32(&mut self, v: &Value, path: &str) -> Option<u32> {
        self.whole(v, path, u64::from(u32::MAX))
            .and_then(|n| u32::try_from(n).ok())
    }

    pub fn u64(&mut self, v: &Value, path: &str) -> Option<u64> {
        self.whole(v, path, i64::MAX as u64)
    }

    /// A port number, `0..=65535`.
    pub fn port(&mut self, v: &Value, path: &str) -> Option<u32> {
        self.whole(v, path, 65535)
            .and_then(|n| u32::try_from(n).ok())
    }

    /// An array whose elements are read with `read`; every element is checked, and the array is
    /// returned only if they all were valid.
    pub fn array<T>(
        &mut self,
        v: &Value,
        path: &str,
        mut read: impl FnMut(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Some(items) = v.as_array() else {
            self.error(path, "error.expected.jsarray");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match read(self, item, &index(path, i)) {
                Some(t) => out.push(t),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    pub fn string_array(&mut self, v: &Value, path: &str) -> Option<Vec<String>> {
        self.array(v, path, Self::string)
    }

    /// An object of string values (`labels`), every value checked.
    pub fn string_map(&mut self, v: &Value, path: &str) -> Option<BTreeMap<String, String>> {
        let obj = self.object(v, path)?;
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (k, val) in obj {
            match self.string(val, &child(path, k)) {
                Some(s) => {
                    out.insert(k.clone(), s);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A string that must be one of `literals` (`error.unknown.enum.literal` otherwise).
    pub fn literal<T>(
        &mut self,
        v: &Value,
        path: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let s = self.string(v, path)?;
        let t = parse(&s);
        if t.is_none() {
            self.error(path, "error.unknown.enum.literal");
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_codes_with_paths() {
        let mut r = JsonReader::default();
        let v = json!({"a": "x", "n": -1, "f": 1.5, "arr": [1, "two", 3], "m": {"k": 1}});
        let obj = v.as_object().cloned().unwrap_or_default();
        assert_eq!(r.field(&obj, "", "a", JsonReader::u32), None);
        assert_eq!(r.field(&obj, "", "n", JsonReader::u32), None);
        assert_eq!(r.field(&obj, "", "f", JsonReader::u32), None);
        assert_eq!(r.field(&obj, "", "arr", JsonReader::string_array), None);
        assert_eq!(r.field(&obj, "", "m", JsonReader::string_map), None);
        assert_eq!(r.required(&obj, "", "id", JsonReader::string), None);
        let want: Vec<(String, String)> = [
            ("/a", "error.expected.jsnumber"),
            ("/n", "error.min"),
            ("/f", "error.expected.int"),
            ("/arr(0)", "error.expected.jsstring"),
            ("/arr(2)", "error.expected.jsstring"),
            ("/m/k", "error.expected.jsstring"),
            ("/id", "error.path.missing"),
        ]
        .iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect();
        assert_eq!(r.errors, want);
    }

    #[test]
    fn null_is_absent_and_whole_floats_are_ints() {
        let mut r = JsonReader::default();
        let v = json!({"a": null, "b": 3.0});
        let obj = v.as_object().cloned().unwrap_or_default();
        assert_eq!(r.field(&obj, "", "a", JsonReader::u32), None);
        assert_eq!(r.field(&obj, "", "b", JsonReader::u32), Some(3));
        assert!(r.errors.is_empty());
    }
}
