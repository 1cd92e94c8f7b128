//! The join-token file format both daemons read: one token per line, trimmed; blank lines and
//! `#` comments skipped. The master accepts every token in its file, an agent presents the first.

use std::path::{Path, PathBuf};

/// A join token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("join token file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "join token file {path} holds no token (one token per line; blank lines and lines \
         starting with # are skipped)"
    )]
    Empty { path: PathBuf },
}

/// The tokens of the file at `path` (at least one), in order.
pub fn read(path: &Path) -> Result<Vec<String>, TokenFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let all: Vec<String> = tokens(&text).map(String::from).collect();
    if all.is_empty() {
        return Err(TokenFileError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(all)
}

/// The tokens in a token file's text, in order.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn blank_lines_and_comments_are_skipped() {
        let text = "\n# rotated 2026-12-01\n  new-token  \n\nold-token\n";
        assert_eq!(
            super::tokens(text).collect::<Vec<_>>(),
            ["new-token", "old-token"]
        );
        assert_eq!(super::tokens("# only a comment\n").count(), 0);
    }
}
