//! Where the agent's join token comes from: `--token`, or `--token-file`, which is read again at
//! every (re)connection so that the token can be rotated without restarting the agent. Also what
//! the agent's own HTTP endpoint accepts as a bearer token ([`TokenSource::accepted`]): the tokens
//! of the file now, and the one last read for the link (the one the agent connected with, which
//! the master's file proxy presents).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The join token, or the file it is in.
#[derive(Clone)]
pub enum TokenSource {
    Value(String),
    File(PathBuf),
}

pub use gantry_daemon::token_file::TokenFileError;

/// Never shows the token itself.
impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Value(_) => f.write_str("TokenSource::Value(<hidden>)"),
            TokenSource::File(p) => f.debug_tuple("TokenSource::File").field(p).finish(),
        }
    }
}

impl TokenSource {
    /// The token now: the value, or what the file holds at this moment.
    pub fn read(&self) -> Result<String, TokenFileError> {
        match self {
            TokenSource::Value(t) => Ok(t.clone()),
            TokenSource::File(path) => {
                let t = read_file(path)?;
                remember(path, &t);
                Ok(t)
            }
        }
    }

    /// The tokens a caller of the agent's HTTP endpoint may present: the value; or every token in
    /// the file now, plus the one [`TokenSource::read`] last returned for the link (the agent
    /// connected with it, and the master presents it until the agent connects again). An
    /// unreadable file leaves only the last one read.
    pub fn accepted(&self) -> Vec<String> {
        match self {
            TokenSource::Value(t) => vec![t.clone()],
            TokenSource::File(path) => {
                let mut all = gantry_daemon::token_file::read(path).unwrap_or_default();
                if let Some(last) = last_read(path) {
                    if !all.contains(&last) {
                        all.push(last);
                    }
                }
                all
            }
        }
    }
}

/// The token last read from each token file, by path: the token the link last connected with.
/// Process-wide so that every clone of a [`TokenSource`] (the link's, the HTTP endpoint's) sees
/// it; agents in one process with the same file read the same tokens anyway.
fn last_read_tokens() -> &'static Mutex<HashMap<PathBuf, String>> {
    static LAST: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    LAST.get_or_init(Default::default)
}

fn remember(path: &Path, token: &str) {
    if let Ok(mut m) = last_read_tokens().lock() {
        m.insert(path.to_owned(), token.to_owned());
    }
}

fn last_read(path: &Path) -> Option<String> {
    last_read_tokens().lock().ok()?.get(path).cloned()
}

/// The first token of the file (one per line; blank lines and `#` comments skipped).
fn read_file(path: &Path) -> Result<String, TokenFileError> {
    let first = gantry_daemon::token_file::read(path)?.into_iter().next();
    first.ok_or_else(|| TokenFileError::Empty {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_endpoint_accepts_the_file_and_the_token_connected_with() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let src = TokenSource::File(path.clone());
        assert!(src.accepted().is_empty());
        std::fs::write(&path, "old\n").unwrap();
        assert_eq!(src.read().unwrap(), "old");
        // Rotated: the file holds the new ones, the link still runs on the old one.
        std::fs::write(&path, "new\nnewer\n").unwrap();
        assert_eq!(src.accepted(), vec!["new", "newer", "old"]);
        // The link connected again with the new one: the old one is no longer accepted.
        assert_eq!(src.clone().read().unwrap(), "new");
        assert_eq!(src.accepted(), vec!["new", "newer"]);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(src.accepted(), vec!["new"]);
    }

    #[test]
    fn a_token_file_is_read_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let src = TokenSource::File(path.clone());
        let e = src.read().unwrap_err().to_string();
        assert!(
            e.starts_with("join token file") && e.contains("token"),
            "{e}"
        );
        std::fs::write(&path, "# rotated 2026-11-30\n  first  \nsecond\n").unwrap();
        assert_eq!(src.read().unwrap(), "first");
        std::fs::write(&path, "next\n").unwrap();
        assert_eq!(src.read().unwrap(), "next");
        std::fs::write(&path, "\n").unwrap();
        assert!(src
            .read()
            .unwrap_err()
            .to_string()
            .contains("holds no token"));
        let value = TokenSource::Value("s3cret".into());
        assert_eq!(value.read().unwrap(), "s3cret");
        assert_eq!(value.accepted(), vec!["s3cret".to_string()]);
        assert!(!format!("{value:?}").contains("s3cret"));
    }
}
