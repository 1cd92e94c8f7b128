//! Docker image references (`nginx:1.11`, `127.0.0.1:5000/team/app@sha256:...`): parsed and
//! normalised as Docker does (a short name is on `docker.io`, a one-part name under `library/`,
//! no tag means `latest`), so the master can refuse a bad name at submit and the agent knows which
//! registry to ask.

use std::fmt;

/// The registry of short names.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed, normalised reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// `docker.io`, `127.0.0.1:5000`, `registry.example.com`.
    pub registry: String,
    /// `library/nginx`, `team/app`.
    pub repository: String,
    /// `1.11`; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

/// Why a reference is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{reference}' is not a Docker image reference: {why}")]
pub struct ImageRefError {
    pub reference: String,
    pub why: String,
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// One path component: `[a-z0-9]+` joined by `.`, `_`, `__` or `-`s.
fn component_ok(c: &str) -> bool {
    let b: Vec<char> = c.chars().collect();
    if b.is_empty() || !lower_alnum(b[0]) || !lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !lower_alnum(b[i]) {
            i += 1;
        }
        let sep: String = b[start..i].iter().collect();
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

fn domain_ok(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    host_ok && port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok())
}

fn tag_ok(t: &str) -> bool {
    let mut cs = t.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && t.len() <= 128
        && cs.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn digest_ok(d: &str) -> bool {
    match d.split_once(':') {
        Some(("sha256", hex)) => {
            hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        }
        _ => false,
    }
}

impl ImageRef {
    /// Parses `reference` the way `docker pull` reads it.
    pub fn parse(reference: &str) -> Result<ImageRef, ImageRefError> {
        let bad = |why: &str| ImageRefError {
            reference: reference.to_string(),
            why: why.to_string(),
        };
        if reference.is_empty() {
            return Err(bad("it is empty"));
        }
        if reference.len() > 255 + 128 + 72 {
            return Err(bad("it is too long"));
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => {
                if !digest_ok(d) {
                    return Err(bad("a digest is sha256: and 64 lowercase hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (reference, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !tag_ok(t) {
                    return Err(bad(
                        "a tag is up to 128 of [A-Za-z0-9_.-], not starting with . or -",
                    ));
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        let mut parts: Vec<&str> = name.split('/').collect();
        let first = parts[0];
        let registry = if parts.len() > 1
            && (first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()))
        {
            if !domain_ok(first) {
                return Err(bad("the registry is not a host name or host:port"));
            }
            parts.remove(0);
            first.to_string()
        } else {
            DOCKER_HUB.to_string()
        };
        if parts.iter().any(|c| !component_ok(c)) {
            return Err(bad(
                "a repository name is lowercase letters and digits, separated by '/', '.', '_', '__' or '-'",
            ));
        }
        let mut repository = parts.join("/");
        if registry == DOCKER_HUB && parts.len() == 1 {
            repository = format!("library/{repository}");
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `tag` or `digest`, as a registry's manifest URL takes it.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_normalised_as_docker_does() {
        let r = ImageRef::parse("nginx:1.11").expect("ok");
        assert_eq!(r.to_string(), "docker.io/library/nginx:1.11");
        let r = ImageRef::parse("dcoslabs/httpi").expect("ok");
        assert_eq!(r.to_string(), "docker.io/dcoslabs/httpi:latest");
        let r = ImageRef::parse("127.0.0.1:5000/team/app:v2").expect("ok");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("127.0.0.1:5000", "team/app", "v2")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("localhost/x@{d}")).expect("ok");
        assert_eq!((r.registry.as_str(), r.tag.clone()), ("localhost", None));
        assert_eq!(r.reference(), d);
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "Nginx",
            "ngin x",
            "nginx:",
            "nginx:-x",
            "a//b",
            "x@sha256:12",
            "host:port/x",
            "nginx$",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
