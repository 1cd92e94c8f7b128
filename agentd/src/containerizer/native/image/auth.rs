//! Registry credentials from a Docker `config.json` (`{"auths": {"host:port": {"auth":
//! base64("user:password")}}}`, or `username`/`password`): basic auth, which oci-client also
//! trades for a bearer token when the registry asks for one.

use oci_client::secrets::RegistryAuth;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize, Default)]
#[serde(default)]
struct DockerConfig {
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Decodes standard base64 (padding optional); `None` on a bad character.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.trim().bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The credentials `file` gives for `registry` (`docker.io` also matches Docker Hub's
/// `https://index.docker.io/v1/` key); anonymous when there are none.
pub fn auth_for(file: Option<&Path>, registry: &str) -> RegistryAuth {
    let Some(path) = file else {
        return RegistryAuth::Anonymous;
    };
    let cfg: DockerConfig = match std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(c) => c,
        None => {
            tracing::warn!(file = %path.display(), "cannot read the Docker config; pulling anonymously");
            return RegistryAuth::Anonymous;
        }
    };
    let key_matches = |k: &str| {
        let host = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        host == registry || (registry == "docker.io" && host == "index.docker.io")
    };
    let Some(e) = cfg
        .auths
        .iter()
        .find(|(k, _)| key_matches(k))
        .map(|(_, e)| e)
    else {
        return RegistryAuth::Anonymous;
    };
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return RegistryAuth::Basic(u.clone(), p.clone());
    }
    let pair = e
        .auth
        .as_deref()
        .and_then(base64_decode)
        .and_then(|b| String::from_utf8(b).ok());
    match pair.as_deref().and_then(|p| p.split_once(':')) {
        Some((u, p)) => RegistryAuth::Basic(u.to_string(), p.to_string()),
        None => RegistryAuth::Anonymous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_come_from_the_auths_entry() {
        let t = tempfile::tempdir().expect("tmp");
        let f = t.path().join("config.json");
        // "alice:s3cret"
        std::fs::write(
            &f,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"YWxpY2U6czNjcmV0"},"https://index.docker.io/v1/":{"username":"bob","password":"pw"}}}"#,
        )
        .expect("write");
        assert_eq!(
            auth_for(Some(&f), "127.0.0.1:5000"),
            RegistryAuth::Basic("alice".into(), "s3cret".into())
        );
        assert_eq!(
            auth_for(Some(&f), "docker.io"),
            RegistryAuth::Basic("bob".into(), "pw".into())
        );
        assert_eq!(auth_for(Some(&f), "other:1"), RegistryAuth::Anonymous);
        assert_eq!(auth_for(None, "x"), RegistryAuth::Anonymous);
    }
}
