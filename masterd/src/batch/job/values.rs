//! Reading one JSON value the way Chronos's Jackson deserializer does (numbers and booleans also
//! accepted as strings, `null` = absent), but refusing what Jackson silently turned into 0 or
//! `false`. Every error names its field.

use serde_json::{Map, Value};

use super::model::{JobError, KeyValue};

/// The value of `key`, `None` when absent or `null`.
pub(super) fn get<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

/// A string; numbers and booleans are taken as their text (Jackson `asText`).
pub(super) fn string(v: &Value, field: &str) -> Result<String, JobError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(JobError::new(field, "must be a string")),
    }
}

/// A string without NUL (text that reaches a process or a file name).
pub(super) fn clean_string(v: &Value, field: &str) -> Result<String, JobError> {
    let s = string(v, field)?;
    if s.contains('\0') {
        return Err(JobError::new(field, "must not contain NUL characters"));
    }
    Ok(s)
}

pub(super) fn opt_string(o: &Map<String, Value>, key: &str) -> Result<Option<String>, JobError> {
    get(o, key).map(|v| clean_string(v, key)).transpose()
}

/// A boolean: `true`/`false`, or the strings `"true"`/`"false"`.
pub(super) fn boolean(v: &Value, field: &str) -> Result<bool, JobError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err(JobError::new(field, "must be true or false")),
    }
}

pub(super) fn opt_bool(o: &Map<String, Value>, key: &str) -> Result<Option<bool>, JobError> {
    get(o, key).map(|v| boolean(v, key)).transpose()
}

/// A finite number, also from a numeric string (the seed job `"cpus": "0.5"`).
pub(super) fn number(v: &Value, field: &str) -> Result<f64, JobError> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(JobError::new(field, "must be a number")),
    }
}

/// A whole number ≥ 0 (a number with no fraction, or such a string).
pub(super) fn unsigned(v: &Value, field: &str) -> Result<u64, JobError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    let x = number(v, field)?;
    if x < 0.0 {
        return Err(JobError::new(field, "must not be negative"));
    }
    if x.fract() != 0.0 || x > 9.0e15 {
        return Err(JobError::new(field, "must be a whole number"));
    }
    Ok(x as u64)
}

pub(super) fn opt_unsigned(o: &Map<String, Value>, key: &str) -> Result<Option<u64>, JobError> {
    get(o, key).map(|v| unsigned(v, key)).transpose()
}

/// A whole number ≥ 0 that fits 32 bits.
pub(super) fn unsigned32(v: &Value, field: &str) -> Result<u32, JobError> {
    let n = unsigned(v, field)?;
    u32::try_from(n).map_err(|_| JobError::new(field, format!("must be at most {}", u32::MAX)))
}

/// An array (`field` names it in errors).
pub(super) fn array<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>, JobError> {
    v.as_array()
        .ok_or_else(|| JobError::new(field, "must be an array"))
}

/// An object.
pub(super) fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, JobError> {
    v.as_object()
        .ok_or_else(|| JobError::new(field, "must be an object"))
}

/// An array of strings without NUL.
pub(super) fn strings(v: &Value, field: &str) -> Result<Vec<String>, JobError> {
    array(v, field)?
        .iter()
        .enumerate()
        .map(|(i, s)| clean_string(s, &format!("{field}[{i}]")))
        .collect()
}

/// An array of `{key, value}` objects.
pub(super) fn key_values(v: &Value, field: &str) -> Result<Vec<KeyValue>, JobError> {
    let mut out = Vec::new();
    for (i, item) in array(v, field)?.iter().enumerate() {
        let path = format!("{field}[{i}]");
        let o = object(item, &path)?;
        let key = match get(o, "key") {
            Some(k) => clean_string(k, &format!("{path}.key"))?,
            None => return Err(JobError::new(format!("{path}.key"), "is required")),
        };
        let value = match get(o, "value") {
            Some(v) => clean_string(v, &format!("{path}.value"))?,
            None => String::new(),
        };
        out.push(KeyValue { key, value });
    }
    Ok(out)
}

/// Chronos's name rule: the whole name matches `[\w.-]+` (Java `\w` = ASCII letters, digits, `_`).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}
