//! `gantry task log`: a task's stdout or stderr through the master's files proxy
//! (`GET /gantry/v1/tasks/{id}/files/read`, docs/files.md), the last lines only with `--tail N`,
//! and with `--follow` read on from the last offset every half second until the master reports
//! the task terminal and everything it wrote was printed. [`print_task_log`] is shared with the
//! other commands that show a task's output.

use crate::client::Client;
use anyhow::{bail, Context};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// How often `--follow` asks for more.
const POLL: Duration = Duration::from_millis(500);

/// The largest window `--tail` reads back from the end to find its lines.
const MAX_TAIL_WINDOW: u64 = 16 << 20;

/// Which of the task's output files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The file's name in the sandbox.
    pub fn file(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What to print.
#[derive(Clone, Copy, Debug)]
pub struct LogOptions {
    pub stream: Stream,
    /// Keep reading until the task is terminal.
    pub follow: bool,
    /// Only the last this many lines (then, with `follow`, what comes after them).
    pub tail: Option<usize>,
}

/// Flags of `gantry task log`.
#[derive(clap::Args)]
pub struct LogArgs {
    /// The task id (as `gantry tasks list` shows it).
    task_id: String,
    /// The task's stderr instead of its stdout.
    #[arg(long)]
    stderr: bool,
    /// Keep printing what the task writes until it ends.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
}

impl LogArgs {
    pub fn options(&self) -> LogOptions {
        LogOptions {
            stream: if self.stderr {
                Stream::Stderr
            } else {
                Stream::Stdout
            },
            follow: self.follow,
            tail: self.tail,
        }
    }

    pub fn task_id(&self) -> &str {
        &self.task_id
    }
}

/// One answer of the read endpoint.
#[derive(Debug)]
struct Chunk {
    data: String,
    /// Where the next read starts.
    next: u64,
    /// The master's word on the task, as of this read.
    terminal: bool,
}

/// A read's outcome: bytes, or no such file yet (a task still starting has no stdout).
enum Outcome {
    Chunk(Chunk),
    /// `terminal` is `None` when the master does not know the task at all.
    Missing {
        terminal: Option<bool>,
        message: String,
    },
}

/// A path segment with everything but unreserved characters percent-encoded.
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn read(
    client: &Client,
    task_id: &str,
    file: &str,
    offset: i64,
    length: Option<u64>,
) -> anyhow::Result<Outcome> {
    let path = format!("/gantry/v1/tasks/{}/files/read", encode_segment(task_id));
    let mut query = vec![("path", file.to_string()), ("offset", offset.to_string())];
    if let Some(l) = length {
        query.push(("length", l.to_string()));
    }
    let resp = client.get_with_query(&path, &query).await?;
    let terminal = resp
        .headers()
        .get("x-gantry-task-terminal")
        .map(|v| v.as_bytes() == b"true");
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let message = body["message"].as_str().unwrap_or("not found").to_string();
        return Ok(Outcome::Missing { terminal, message });
    }
    let body = Client::body(resp).await?;
    let data = body["data"].as_str().unwrap_or_default().to_string();
    let at = body["offset"].as_u64().unwrap_or(0);
    // `next_offset` is Gantry's; a plain Mesos agent gives offset + bytes.
    let next = body["next_offset"]
        .as_u64()
        .unwrap_or(at + data.len() as u64);
    Ok(Outcome::Chunk(Chunk {
        data,
        next,
        terminal: terminal.unwrap_or(false),
    }))
}

/// The offset where the last `n` lines of `file` start, found reading back from `size` in
/// growing windows.
async fn tail_start(
    client: &Client,
    task_id: &str,
    file: &str,
    size: u64,
    n: usize,
) -> anyhow::Result<u64> {
    let mut window = 64 * 1024u64;
    loop {
        let start = size.saturating_sub(window);
        let chunk = match read(client, task_id, file, start as i64, Some(size - start)).await? {
            Outcome::Chunk(c) => c,
            Outcome::Missing { message, .. } => bail!("{message}"),
        };
        let text = chunk.data.strip_suffix('\n').unwrap_or(&chunk.data);
        // The byte offsets of the line breaks in the window (the text is what those bytes
        // decode to; a replaced invalid byte may shift it, which only moves the tail a little).
        let breaks: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
        if n == 0 {
            return Ok(size);
        }
        if breaks.len() >= n {
            return Ok(start + breaks[breaks.len() - n] as u64 + 1);
        }
        if start == 0 || window >= MAX_TAIL_WINDOW {
            return Ok(start);
        }
        window *= 4;
    }
}

/// Prints task `task_id`'s stdout or stderr to standard output; see [`write_task_log`].
pub async fn print_task_log(
    client: &Client,
    task_id: &str,
    opts: LogOptions,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write_task_log(client, task_id, opts, &mut out).await
}

/// Writes task `task_id`'s stdout or stderr to `out` as the master's files proxy gives it:
/// all of it (or its last `tail` lines), then with `follow` what the task writes next, until the
/// task is terminal and its file is read to the end.
pub async fn write_task_log<W: Write>(
    client: &Client,
    task_id: &str,
    opts: LogOptions,
    out: &mut W,
) -> anyhow::Result<()> {
    let file = opts.stream.file();
    // The size now: without --follow, reading stops there (a busy task never lets it end).
    let size = loop {
        match read(client, task_id, file, -1, None).await? {
            Outcome::Chunk(c) => break c.next,
            Outcome::Missing { terminal, message } => {
                // Wait for a starting task's file; not for a task that ended or is unknown.
                if !opts.follow || terminal != Some(false) {
                    bail!("{message}");
                }
                tokio::time::sleep(POLL).await;
            }
        }
    };
    let mut offset = match opts.tail {
        Some(n) => tail_start(client, task_id, file, size, n).await?,
        None => 0,
    };
    loop {
        let chunk = match read(client, task_id, file, offset as i64, None).await? {
            Outcome::Chunk(c) => c,
            Outcome::Missing { message, .. } => bail!("{message}"),
        };
        out.write_all(chunk.data.as_bytes())
            .and_then(|()| out.flush())
            .context("writing the log")?;
        let advanced = chunk.next > offset;
        offset = chunk.next;
        if advanced && (opts.follow || offset < size) {
            continue;
        }
        if !opts.follow || chunk.terminal {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_encoded_as_one_segment() {
        assert_eq!(
            encode_segment("web.instance-1._app.1"),
            "web.instance-1._app.1"
        );
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
