//! The cluster join tokens agents may present: the one `--token` gives (or one generated into
//! `<state-dir>/join-token`), or every line of `--token-file`, re-read every 2 s so that tokens
//! rotate without restarting anything. Tokens are compared in constant time and never logged.

use crate::config::MasterConfig;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// How often `--token-file` is read again.
pub const TOKEN_FILE_POLL: Duration = Duration::from_secs(2);

/// A join token file that cannot be used (the same errors as the agent's).
pub use gantry_daemon::token_file::TokenFileError as JoinTokenError;

/// The tokens the master accepts now.
pub struct JoinTokens {
    current: RwLock<Vec<String>>,
    /// `--token-file`, when the tokens come from one.
    file: Option<PathBuf>,
}

impl std::fmt::Debug for JoinTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinTokens")
            .field("count", &self.len())
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

fn read_file(path: &Path) -> Result<Vec<String>, JoinTokenError> {
    gantry_daemon::token_file::read(path)
}

impl JoinTokens {
    /// One token that never changes.
    pub fn fixed(token: String) -> Self {
        Self {
            current: RwLock::new(vec![token]),
            file: None,
        }
    }

    /// Every token in `path`, which must hold at least one.
    pub fn from_file(path: &Path) -> Result<Self, JoinTokenError> {
        Ok(Self {
            current: RwLock::new(read_file(path)?),
            file: Some(path.to_owned()),
        })
    }

    /// The configured tokens: `--token-file`, else `--token`, else the one in
    /// `<state_dir>/join-token`, else a new one written there (mode 0600).
    pub fn from_config(cfg: &MasterConfig) -> Result<Self, JoinTokenError> {
        if let Some(path) = &cfg.token_file {
            return Self::from_file(path);
        }
        if let Some(t) = &cfg.token {
            return Ok(Self::fixed(t.clone()));
        }
        let path = cfg.state_dir.join("join-token");
        if let Ok(t) = std::fs::read_to_string(&path) {
            if !t.trim().is_empty() {
                return Ok(Self::fixed(t.trim().to_owned()));
            }
        }
        let err = |source| JoinTokenError::Io {
            path: path.clone(),
            source,
        };
        let token = uuid::Uuid::new_v4().simple().to_string();
        std::fs::create_dir_all(&cfg.state_dir).map_err(err)?;
        gantry_daemon::private_file::write_private(&path, &token).map_err(err)?;
        tracing::info!(path = %path.display(), "generated a cluster join token");
        Ok(Self::fixed(token))
    }

    fn tokens(&self) -> std::sync::RwLockReadGuard<'_, Vec<String>> {
        self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `given` is one of the tokens. Every token is compared, in constant time each.
    pub fn accepts(&self, given: &str) -> bool {
        self.tokens()
            .iter()
            .fold(false, |ok, t| ok | crate::auth::same_secret(given, t))
    }

    /// The first token (what `gantry dev` gives its own agent).
    pub fn primary(&self) -> String {
        self.tokens().first().cloned().unwrap_or_default()
    }

    /// How many tokens are accepted now.
    pub fn len(&self) -> usize {
        self.tokens().len()
    }

    /// Never true: a token file must hold a token, and the last good set is kept otherwise.
    pub fn is_empty(&self) -> bool {
        self.tokens().is_empty()
    }

    /// Reads `--token-file` again. `Ok(true)` when the set changed. On an error (the file is gone,
    /// unreadable or empty) the tokens read before stay in force.
    pub fn reload(&self) -> Result<bool, JoinTokenError> {
        let Some(path) = &self.file else {
            return Ok(false);
        };
        let fresh = read_file(path)?;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if *current == fresh {
            return Ok(false);
        }
        *current = fresh;
        Ok(true)
    }

    /// With `--token-file`, re-reads it every `every` on the current runtime, logging each change
    /// (how many tokens, never which) and each new error.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        let Some(path) = self.file.clone() else {
            return;
        };
        let tokens = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last_error = None;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(tokens) = tokens.upgrade() else {
                    return;
                };
                match tokens.reload() {
                    Ok(changed) => {
                        if changed {
                            tracing::info!(
                                path = %path.display(),
                                tokens = tokens.len(),
                                "join tokens reloaded"
                            );
                        }
                        last_error = None;
                    }
                    Err(e) => {
                        let text = e.to_string();
                        if last_error.as_ref() != Some(&text) {
                            tracing::warn!(
                                error = %text,
                                tokens = tokens.len(),
                                "cannot reload the join tokens; keeping the ones read before"
                            );
                            last_error = Some(text);
                        }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(crate::auth::same_secret("s3cret", "s3cret"));
        assert!(!crate::auth::same_secret("s3cre", "s3cret"));
        assert!(!crate::auth::same_secret("s3creT", "s3cret"));
        assert!(!crate::auth::same_secret("", "s3cret"));
    }

    #[test]
    fn a_token_file_holds_one_token_a_line_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# cluster tokens\n  old-token  \n\n").unwrap();
        let tokens = JoinTokens::from_file(&path).unwrap();
        assert!(tokens.accepts("old-token"));
        assert!(!tokens.accepts("new-token") && !tokens.accepts("# cluster tokens"));
        assert!(!tokens.reload().unwrap(), "unchanged");
        std::fs::write(&path, "old-token\nnew-token\n").unwrap();
        assert!(tokens.reload().unwrap());
        assert!(tokens.accepts("old-token") && tokens.accepts("new-token"));
        std::fs::write(&path, "new-token\n").unwrap();
        assert!(tokens.reload().unwrap());
        assert!(!tokens.accepts("old-token") && tokens.accepts("new-token"));

        std::fs::write(&path, "\n# none\n").unwrap();
        let e = tokens.reload().unwrap_err().to_string();
        assert!(e.contains("holds no token") && e.contains("tokens"), "{e}");
        assert!(tokens.accepts("new-token"), "the last good set stays");
        std::fs::remove_file(&path).unwrap();
        assert!(tokens.reload().is_err());
        assert!(tokens.accepts("new-token"));
        assert_eq!(tokens.primary(), "new-token");

        let e = JoinTokens::from_file(&path).unwrap_err().to_string();
        assert!(
            e.starts_with("join token file") && e.contains("tokens"),
            "{e}"
        );
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("new-token"), "{debug}");
    }
}
