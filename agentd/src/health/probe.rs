//! One probe of one health check: an HTTP(S) GET, a TCP connect or a command, bounded by the
//! check's timeout, and its verdict as Marathon judges it (HTTP 200-399 healthy, 1xx ignored
//! with `ignoreHttp1xx`, exit 0 healthy).

use super::tls::insecure_connector;
use gantry_proto::{HealthCheckSpec, HealthProtocol};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Healthy,
    /// Failed, with the cause Marathon shows as `lastFailureCause`.
    Unhealthy(String),
    /// A 1xx answer to a check with `ignoreHttp1xx`: the result stays as it was.
    Unchanged,
}

/// How a COMMAND check runs its command.
#[derive(Clone, Debug)]
pub enum CommandRunner {
    /// In the task's sandbox with its environment, as the agent's user (the `process`
    /// containerizer, whose tasks run as the agent too).
    Sandbox,
    /// Inside the container of the task whose init is `pid` (its mount, UTS, IPC, network and
    /// PID namespaces, through `nsenter`), as the task's user `uid`:`gid`.
    Container { pid: i32, uid: u32, gid: u32 },
}

/// Where a task's checks probe and run.
#[derive(Clone, Debug)]
pub struct ProbeContext {
    /// The address HTTP, HTTPS and TCP checks dial: the agent's loopback, next to the task.
    pub host: IpAddr,
    pub sandbox: PathBuf,
    pub env: BTreeMap<String, String>,
    pub runner: CommandRunner,
}

impl ProbeContext {
    /// A context for probing on loopback from `sandbox` with `env`.
    pub fn loopback(
        sandbox: PathBuf,
        env: BTreeMap<String, String>,
        runner: CommandRunner,
    ) -> Self {
        ProbeContext {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            sandbox,
            env,
            runner,
        }
    }
}

/// The timeout of a check: its `timeoutSeconds`, at least 1 ms, at most a day.
fn timeout_of(spec: &HealthCheckSpec) -> Duration {
    Duration::try_from_secs_f64(spec.timeout_secs.clamp(0.001, 86_400.0))
        .unwrap_or(Duration::from_secs(20))
}

/// Runs one probe of `spec`.
pub async fn probe(spec: &HealthCheckSpec, ctx: &ProbeContext) -> Verdict {
    let timeout = timeout_of(spec);
    let what = match spec.protocol {
        HealthProtocol::Command => "command",
        HealthProtocol::Tcp => "TCP connection",
        HealthProtocol::Http | HealthProtocol::Https => "HTTP request",
    };
    let run = async {
        match spec.protocol {
            HealthProtocol::Command => command(spec, ctx).await,
            HealthProtocol::Tcp => match port_addr(spec, ctx) {
                Ok(addr) => match TcpStream::connect(addr).await {
                    Ok(_) => Verdict::Healthy,
                    Err(e) => Verdict::Unhealthy(format!("TCP connection to {addr} failed: {e}")),
                },
                Err(v) => v,
            },
            HealthProtocol::Http | HealthProtocol::Https => http(spec, ctx).await,
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(v) => v,
        Err(_) => Verdict::Unhealthy(format!(
            "{what} timed out after {} s",
            timeout.as_secs_f64()
        )),
    }
}

fn port_addr(spec: &HealthCheckSpec, ctx: &ProbeContext) -> Result<SocketAddr, Verdict> {
    match spec.port {
        Some(p) => Ok(SocketAddr::new(ctx.host, p)),
        None => Err(Verdict::Unhealthy(
            "the check has no port (the task has no port at its portIndex)".into(),
        )),
    }
}

async fn http(spec: &HealthCheckSpec, ctx: &ProbeContext) -> Verdict {
    let addr = match port_addr(spec, ctx) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let tcp = match TcpStream::connect(addr).await {
        Ok(t) => t,
        Err(e) => return Verdict::Unhealthy(format!("connection to {addr} failed: {e}")),
    };
    let status = if spec.protocol == HealthProtocol::Https {
        let name = tokio_rustls::rustls::pki_types::ServerName::from(addr.ip());
        match insecure_connector().connect(name, tcp).await {
            Ok(tls) => status_of(tls, addr, &spec.path).await,
            Err(e) => Err(format!("TLS handshake with {addr} failed: {e}")),
        }
    } else {
        status_of(tcp, addr, &spec.path).await
    };
    match status {
        Ok(code) => verdict_of(code, spec.ignore_http1xx),
        Err(cause) => Verdict::Unhealthy(cause),
    }
}

/// Marathon's verdict on an HTTP status.
pub fn verdict_of(code: u16, ignore_http1xx: bool) -> Verdict {
    match code {
        100..=199 if ignore_http1xx => Verdict::Unchanged,
        200..=399 => Verdict::Healthy,
        _ => Verdict::Unhealthy(format!("HTTP status {code}")),
    }
}

/// Sends `GET path` and reads the status code of the answer's first line.
async fn status_of<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    addr: SocketAddr,
    path: &str,
) -> Result<u16, String> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: gantry-health-check\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("sending the request to {addr} failed: {e}"))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 4096 {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the answer from {addr} failed: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ if line.is_empty() => Err(format!("{addr} closed the connection without an answer")),
        _ => Err(format!("{addr} answered no HTTP status line: {line:.80}")),
    }
}

async fn command(spec: &HealthCheckSpec, ctx: &ProbeContext) -> Verdict {
    let Some(cmd) = spec.command.as_deref() else {
        return Verdict::Unhealthy("the COMMAND check has no command".into());
    };
    let mut c = match &ctx.runner {
        CommandRunner::Sandbox => {
            let mut c = tokio::process::Command::new("/bin/sh");
            c.current_dir(&ctx.sandbox);
            c
        }
        CommandRunner::Container { pid, uid, gid } => {
            let mut c = tokio::process::Command::new("nsenter");
            c.arg(format!("--target={pid}"))
                .args(["--mount", "--uts", "--ipc", "--net", "--pid"])
                .arg(format!("--setuid={uid}"))
                .arg(format!("--setgid={gid}"))
                .arg(format!("--wd={}", ctx.sandbox.display()))
                .arg("--")
                .arg("/bin/sh");
            c
        }
    };
    c.arg("-c")
        .arg(cmd)
        .env_clear()
        .envs(&ctx.env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    match c.status().await {
        Ok(s) if s.success() => Verdict::Healthy,
        Ok(s) => Verdict::Unhealthy(match s.code() {
            Some(code) => format!("command exited with code {code}"),
            None => format!("command ended by {s}"),
        }),
        Err(e) => Verdict::Unhealthy(format!("cannot run the command: {e}")),
    }
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
