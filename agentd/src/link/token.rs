//! Where the agent's join token comes from: `--token`, or `--token-file`, which is read again at
//! every (re)connection so that the token can be rotated without restarting the agent.

use std::path::{Path, PathBuf};

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
            TokenSource::File(path) => read_file(path),
        }
    }
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
        assert!(!format!("{value:?}").contains("s3cret"));
    }
}
