//! Query strings the Marathon way: repeated keys (`embed=a&embed=b`) and case-insensitive booleans
//! (`force=False`, as python-requests sends them).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;

/// All query pairs, in order.
pub struct Query(pub Pairs);

/// Decoded query pairs.
pub struct Pairs(Vec<(String, String)>);

impl Pairs {
    /// The first value of `key`.
    pub fn first(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (also `key[]`).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key || k.strip_suffix("[]") == Some(key))
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let pairs = parts.uri.query().map(url_decode_pairs).unwrap_or_default();
        Ok(Query(Pairs(pairs)))
    }
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 2;
            }
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Java's `Boolean.valueOf`: "true" in any case is true, anything else false; absent gives `default`.
pub fn flag(value: Option<&str>, default: bool) -> bool {
    value.map_or(default, |v| v.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_and_repeats() {
        assert!(flag(Some("True"), false));
        assert!(!flag(Some("False"), true));
        assert!(!flag(Some("yes"), true));
        assert!(flag(None, true));
        let p = Pairs(url_decode_pairs(
            "embed=app.tasks&embed=app.counts&status%5B%5D=running&id=a%2Fb",
        ));
        assert_eq!(
            p.all("embed").collect::<Vec<_>>(),
            ["app.tasks", "app.counts"]
        );
        assert_eq!(p.all("status").collect::<Vec<_>>(), ["running"]);
        assert_eq!(p.first("id"), Some("a/b"));
        assert_eq!(decode("100%"), "100%");
    }
}
