//! The fetcher (spec §6.2): each of a task's URIs (http, https, file:// or a local path) into its sandbox
//! before the task starts. Local paths are read as the task's user (`local`); nothing is ever written
//! through a link (`sandbox`); archives are extracted refusing entries that escape the sandbox
//! (`extract`); files made executable on request; an LRU cache of downloads keyed by URI.

pub mod cache;
pub mod download;
pub mod extract;
pub mod local;
pub mod sandbox;

use crate::containerizer::RunAs;
use cache::FetchCache;
use gantry_proto::FetchUri;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Why a fetch failed; the message goes into the task's TASK_FAILED status.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("Failed to fetch '{uri}': {why}")]
    Source { uri: String, why: String },
    #[error("Failed to fetch '{uri}': {source}")]
    Local {
        uri: String,
        #[source]
        source: local::LocalError,
    },
    #[error("Failed to fetch '{uri}': cannot place it in the sandbox: {source}")]
    Place {
        uri: String,
        #[source]
        source: sandbox::PathError,
    },
    #[error("Failed to extract '{archive}': {source}")]
    Extract {
        archive: String,
        #[source]
        source: extract::ExtractError,
    },
    #[error("Failed to fetch '{uri}': I/O error on {path}: {source}")]
    Io {
        uri: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a fetcher cannot be built (its extra CA file).
#[derive(Debug, thiserror::Error)]
pub enum FetcherSetupError {
    #[error("fetcher CA file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fetcher CA file {path}: not a PEM bundle of certificates: {why}")]
    Pem { path: PathBuf, why: String },
    #[error("fetcher CA file {path}: no certificate in it")]
    Empty { path: PathBuf },
    #[error("cannot build the fetcher's HTTP client: {0}")]
    Client(String),
}

/// Fetches URIs into sandboxes.
pub struct Fetcher {
    cache: FetchCache,
    client: reqwest::Client,
}

impl Fetcher {
    /// A fetcher whose cache lives in `cache_dir` (wiped now, as Mesos does) and holds at most
    /// `cache_bytes`.
    /// HTTPS trusts the bundled webpki (Mozilla) roots only.
    pub fn new(cache_dir: PathBuf, cache_bytes: u64) -> Self {
        Self {
            cache: FetchCache::new(cache_dir, cache_bytes),
            client: reqwest::Client::new(),
        }
    }

    /// As [`Fetcher::new`], and HTTPS also trusts every certificate of the PEM bundle at
    /// `ca_file` (private CAs), when one is given.
    pub fn with_ca_file(
        cache_dir: PathBuf,
        cache_bytes: u64,
        ca_file: Option<&Path>,
    ) -> Result<Self, FetcherSetupError> {
        let mut builder = reqwest::Client::builder();
        if let Some(path) = ca_file {
            for cert in read_ca_file(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| FetcherSetupError::Client(e.to_string()))?;
        Ok(Self {
            cache: FetchCache::new(cache_dir, cache_bytes),
            client,
        })
    }

    /// Fetches every URI, in order, into `sandbox`; local paths are read as `run_as`.
    pub async fn fetch_all(
        &self,
        uris: &[FetchUri],
        sandbox: &Path,
        run_as: &RunAs,
    ) -> Result<(), FetchError> {
        for u in uris {
            self.fetch(u, sandbox, run_as).await?;
        }
        Ok(())
    }

    async fn fetch(&self, u: &FetchUri, sandbox: &Path, run_as: &RunAs) -> Result<(), FetchError> {
        let name = dest_name(u)?;
        let (file, dest) =
            sandbox::create_file(sandbox, Path::new(&name), 0o600).map_err(|source| {
                FetchError::Place {
                    uri: u.uri.clone(),
                    source,
                }
            })?;
        let mode = if u.executable { 0o755 } else { 0o644 };
        let filled = self
            .fill(u, tokio::fs::File::from_std(file), &dest, mode, run_as)
            .await;
        if let Err(e) = filled {
            // Nothing half-fetched stays behind (and nothing of a file the user may not read).
            let _ = std::fs::remove_file(&dest);
            return Err(e);
        }
        if !u.executable && u.extract {
            if let Some(kind) = extract::ArchiveKind::of(&name) {
                self.extract(u, kind, &name, dest, sandbox).await?;
            }
        }
        Ok(())
    }

    /// Writes the content of `u` into `file` (at `dest`), then gives it `mode`.
    async fn fill(
        &self,
        u: &FetchUri,
        mut file: tokio::fs::File,
        dest: &Path,
        mode: u32,
        run_as: &RunAs,
    ) -> Result<(), FetchError> {
        let io = |source| FetchError::Io {
            uri: u.uri.clone(),
            path: dest.to_owned(),
            source,
        };
        match local::path_of(&u.uri) {
            // A local path is read as the task's user every time: a cached copy would let one
            // user's read serve another, so `cache` does not apply to it.
            Some(path) => {
                let read = match path {
                    Ok(path) => local::read_into(run_as, &path, &mut file).await,
                    Err(e) => Err(e),
                };
                read.map_err(|source| FetchError::Local {
                    uri: u.uri.clone(),
                    source,
                })?;
            }
            None => match u.cache.then(|| self.cache.get(&u.uri)).flatten() {
                Some(cached) => {
                    let mut src = tokio::fs::File::open(&cached).await.map_err(io)?;
                    tokio::io::copy(&mut src, &mut file).await.map_err(io)?;
                }
                None => {
                    download::fetch_to(&self.client, &u.uri, &mut file).await?;
                    file.flush().await.map_err(io)?;
                    if u.cache {
                        self.cache.put(&u.uri, dest);
                    }
                }
            },
        }
        file.flush().await.map_err(io)?;
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .await
            .map_err(io)
    }

    /// Extracts the fetched archive `dest` into `sandbox`, on the blocking pool.
    async fn extract(
        &self,
        u: &FetchUri,
        kind: extract::ArchiveKind,
        name: &str,
        dest: PathBuf,
        sandbox: &Path,
    ) -> Result<(), FetchError> {
        let into = sandbox.to_owned();
        let done = tokio::task::spawn_blocking(move || {
            let limits = extract::Limits::for_disk_of(&into);
            extract::extract(kind, &dest, &into, limits)
        })
        .await;
        match done {
            Ok(r) => r.map_err(|source| FetchError::Extract {
                archive: name.to_string(),
                source,
            }),
            Err(e) => Err(FetchError::Source {
                uri: u.uri.clone(),
                why: format!("the extraction stopped: {e}"),
            }),
        }
    }
}

/// The certificates of a PEM bundle (at least one).
fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, FetcherSetupError> {
    let pem = std::fs::read(path).map_err(|source| FetcherSetupError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| FetcherSetupError::Pem {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(FetcherSetupError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The file name in the sandbox: `dest_path`, or the URI's last path segment (no query).
fn dest_name(u: &FetchUri) -> Result<String, FetchError> {
    let bad = |why: &str| FetchError::Source {
        uri: u.uri.clone(),
        why: why.into(),
    };
    let name = match &u.dest_path {
        Some(d) => d.clone(),
        None => {
            let path = u.uri.split(['?', '#']).next().unwrap_or("");
            path.rsplit('/').next().unwrap_or("").to_string()
        }
    };
    let p = Path::new(&name);
    if name.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(bad(
            "its destination must be a plain relative path inside the sandbox",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str, dest: Option<&str>) -> FetchUri {
        FetchUri {
            uri: s.into(),
            extract: true,
            executable: false,
            cache: false,
            dest_path: dest.map(String::from),
        }
    }

    #[test]
    fn destination_names() {
        assert_eq!(
            dest_name(&uri("http://h/a/b.tar.gz?x=1", None)).expect("name"),
            "b.tar.gz"
        );
        assert_eq!(
            dest_name(&uri("/srv/x", Some("bin/x"))).expect("name"),
            "bin/x"
        );
        assert!(dest_name(&uri("http://h/", None)).is_err());
        assert!(dest_name(&uri("http://h/a", Some("../a"))).is_err());
        assert!(dest_name(&uri("http://h/a", Some("/etc/a"))).is_err());
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("cache");
        let missing = dir.path().join("missing.pem");
        let e = Fetcher::with_ca_file(cache.clone(), 1, Some(&missing))
            .err()
            .expect("a missing file is an error");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let e = Fetcher::with_ca_file(cache.clone(), 1, Some(&empty))
            .err()
            .expect("no certificate is an error");
        assert!(e.to_string().contains("empty.pem"), "{e}");
        assert!(Fetcher::with_ca_file(cache, 1, None).is_ok());
    }
}
