//! The container's stdout and stderr into the task sandbox's `stdout` and `stderr` files (as
//! native tasks have them, so the sandbox file API reads them): followed from the daemon until
//! the container ends; after an agent restart, from the files' last write on.

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use bollard::Docker;
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Follows container `id`'s output into `sandbox`'s files; `since` (seconds since the epoch) skips
/// what was written before. Ends with the container.
pub async fn follow(docker: Docker, id: String, sandbox: PathBuf, since: i32) {
    let (Ok(mut out), Ok(mut err)) = (
        append(&sandbox.join("stdout")).await,
        append(&sandbox.join("stderr")).await,
    ) else {
        tracing::warn!(container = %id, sandbox = %sandbox.display(), "cannot open the sandbox's log files");
        return;
    };
    let opts = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        since,
        ..LogsOptions::default()
    };
    let mut stream = docker.logs(&id, Some(opts));
    while let Some(item) = stream.next().await {
        let written = match item {
            Ok(LogOutput::StdErr { message }) => err.write_all(&message).await,
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                out.write_all(&message).await
            }
            Ok(LogOutput::StdIn { .. }) => Ok(()),
            Err(e) => {
                tracing::debug!(container = %id, error = %e, "the log stream ended");
                break;
            }
        };
        if let Err(e) = written {
            tracing::warn!(container = %id, error = %e, "cannot write the container's output");
            break;
        }
    }
    let _ = out.flush().await;
    let _ = err.flush().await;
}

async fn append(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

/// Where to resume after an agent restart: the later modification time of the sandbox's log
/// files, in whole seconds (a line written in that second may show twice; none is lost).
pub fn resume_since(sandbox: &Path) -> i32 {
    ["stdout", "stderr"]
        .iter()
        .filter_map(|f| std::fs::metadata(sandbox.join(f)).ok()?.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
        .max()
        .unwrap_or(0)
}
