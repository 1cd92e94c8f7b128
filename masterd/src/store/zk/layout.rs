//! Where the ZooKeeper store keeps what: znode paths relative to the store's root, the escaping
//! that makes any id a valid znode name, buckets, and the audit log's pages.
//!
//! ```text
//! <root>/version                      "1": the layout's version (migrations)
//! <root>/epoch                        the leader's epoch: its znode version fences every write
//! <root>/blobs/<uuid>-<n>             chunks of values too big for the batch's one multi
//! <root>/state/<coll>/<bucket>/<key>  one record per znode (coll: apps, app_versions, ...)
//! <root>/state/events/<id>            one event per znode (20 digits)
//! <root>/state/audit/<page>           AUDIT_PAGE audit entries per znode (20 digits)
//! ```

/// The collections of records kept one per znode, under `state/<coll>/<bucket>/`.
pub const COLLECTIONS: &[&str] = &[
    "apps",
    "app_versions",
    "deployments",
    "groups",
    "tasks",
    "agents",
    "jobs",
    "runs",
    "meta",
];

/// Every collection is split over this many bucket znodes (by a hash of the key), so that one
/// listing of children stays far below ZooKeeper's packet limit with many thousands of tasks.
pub const BUCKETS: u32 = 16;

/// Audit entries per page znode.
pub const AUDIT_PAGE: u64 = 64;

/// The layout version this build writes and reads.
pub const LAYOUT_VERSION: u64 = 1;

/// Escapes `key` into a valid znode name: ASCII letters, digits, `-` and `_` stay; every other
/// byte becomes `%XX` (so `/`, `.`, `@` and `%` never appear raw); the empty key is `%`.
pub fn escape(key: &str) -> String {
    if key.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The key [`escape`] made `name` from; `None` for a name it cannot have made.
pub fn unescape(name: &str) -> Option<String> {
    if name == "%" {
        return Some(String::new());
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = name.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The bucket of a key: FNV-1a, as two hex digits.
pub fn bucket(key: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{:02x}", h % BUCKETS)
}

/// Every bucket's name.
pub fn buckets() -> impl Iterator<Item = String> {
    (0..BUCKETS).map(|b| format!("{b:02x}"))
}

/// A number as a znode name that sorts as the number does.
pub fn number(n: u64) -> String {
    format!("{n:020}")
}

/// The path (relative to `state/`) of a record in one of [`COLLECTIONS`] under `key`.
pub fn record(coll: &str, key: &str) -> String {
    format!("{coll}/{}/{}", bucket(key), escape(key))
}

/// The path of one version of an app: in the app's bucket, so that the versions of one app share
/// a prefix ([`app_versions_prefix`]).
pub fn app_version(app: &str, version: &str) -> String {
    format!("{}{}", app_versions_prefix(app), escape(version))
}

/// The prefix every version of `app` has (`@` is always escaped inside ids).
pub fn app_versions_prefix(app: &str) -> String {
    format!("app_versions/{}/{}@", bucket(app), escape(app))
}

/// The path of a job run.
pub fn run(id: u64) -> String {
    let n = number(id);
    format!("runs/{}/{n}", bucket(&n))
}

/// The path of an event.
pub fn event(id: u64) -> String {
    format!("events/{}", number(id))
}

/// The page an audit entry's `seq` lands in, and that page's path.
pub fn audit_page(seq: u64) -> u64 {
    seq / AUDIT_PAGE
}

pub fn audit_page_path(page: u64) -> String {
    format!("audit/{}", number(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_key_escapes_to_a_valid_name_and_back() {
        for key in [
            "",
            ".",
            "..",
            "/a/b",
            "a@b",
            "100%",
            "é ü",
            "zookeeper",
            "t.1-2_3",
        ] {
            let name = escape(key);
            assert!(!name.is_empty() && name != "." && name != "..");
            assert!(!name.contains('/') && !name.contains('@'));
            assert_eq!(unescape(&name).as_deref(), Some(key), "{key:?} -> {name}");
        }
        assert_eq!(unescape("%zz"), None);
        assert!(app_version("/a", "v").starts_with(&app_versions_prefix("/a")));
        assert!(!app_version("/a@x", "v").starts_with(&app_versions_prefix("/a")));
        assert!(number(9) < number(10));
    }
}
