//! `gantry lb`: a marathon-lb-style load balancer. Follows the masters' apps and tasks
//! ([`follow`]), turns them into services ([`model`], [`labels`]), renders an HAProxy config
//! ([`render`]) and reloads Debian's `haproxy` when it changes ([`haproxy`]). While no master
//! answers, HAProxy keeps serving the last good config.

mod follow;
mod haproxy;
mod labels;
mod model;
mod render;
mod sse;

use crate::client::Auth;
use anyhow::Context;
use serde_json::json;
use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Flags of `gantry lb` (the masters are the global `--master`, repeatable).
#[derive(clap::Args)]
pub struct LbArgs {
    /// Serve the apps whose `HAPROXY_GROUP` (or `HAPROXY_<n>_GROUP`) names this group; `*` serves
    /// every app, grouped or not.
    #[arg(long, env = "GANTRY_LB_GROUP", default_value = "external")]
    group: String,
    /// Where the live HAProxy config is written. Default: `<state-dir>/haproxy.cfg`.
    #[arg(long, env = "GANTRY_LB_HAPROXY_CONFIG")]
    haproxy_config: Option<PathBuf>,
    /// The HAProxy binary.
    #[arg(long, env = "GANTRY_LB_HAPROXY_BIN", default_value = "haproxy")]
    haproxy_bin: PathBuf,
    /// Pid file, master CLI and runtime API sockets, status.json. Default: /var/lib/gantry/lb as
    /// root, else ~/.gantry/lb.
    #[arg(long, env = "GANTRY_LB_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Certificates (PEM, key included) for the HTTPS virtual-host frontend: files, or
    /// directories of them; comma-separated or repeated. Without any, no HTTPS frontend.
    #[arg(long, env = "GANTRY_LB_SSL_CERTS", value_delimiter = ',')]
    ssl_certs: Vec<PathBuf>,
    /// Address every frontend binds (`*`: all).
    #[arg(long, env = "GANTRY_LB_BIND_ADDRESS", default_value = "*")]
    bind_address: String,
    /// Port of the shared HTTP virtual-host frontend; 0: none.
    #[arg(long, env = "GANTRY_LB_HTTP_PORT", default_value_t = 80)]
    http_port: u16,
    /// Port of the shared HTTPS virtual-host frontend (with --ssl-certs); 0: none.
    #[arg(long, env = "GANTRY_LB_HTTPS_PORT", default_value_t = 443)]
    https_port: u16,
    /// Route to every running task, also those whose health checks fail (marathon-lb without
    /// `--health-check`).
    #[arg(long)]
    route_unhealthy: bool,
    /// Seconds between fetches while the master's event stream is unavailable.
    #[arg(long, env = "GANTRY_LB_POLL_SECS", default_value_t = 1.0)]
    poll_secs: f64,
    /// Milliseconds from an event to the fetch it triggers.
    #[arg(long, default_value_t = 75)]
    debounce_ms: u64,
    /// Seconds between fetches while the event stream is up (a safety net for a missed event).
    #[arg(long, default_value_t = 5.0)]
    resync_secs: f64,
    /// Print the config for the masters' current apps and exit; HAProxy is not touched.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    log: gantry_daemon::logging::LogArgs,
}

/// Where `gantry lb` keeps its files by default.
fn default_state_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/gantry/lb");
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".gantry/lb")
}

/// Runs the load balancer until SIGINT or SIGTERM, then stops HAProxy.
pub fn run(
    args: LbArgs,
    masters: gantry_daemon::masters::Masters,
    auth: Auth,
    ca_file: Option<&Path>,
) -> anyhow::Result<()> {
    gantry_daemon::logging::init(args.log.log_format);
    for (flag, v) in [
        ("--poll-secs", args.poll_secs),
        ("--resync-secs", args.resync_secs),
    ] {
        anyhow::ensure!(
            v > 0.0 && v < 1e9,
            "{flag} must be a positive number of seconds"
        );
    }
    let http = crate::client::http_client(ca_file)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // A zk:// detector runs on this runtime.
        let masters = match masters {
            gantry_daemon::masters::Masters::Urls(urls) => follow::Masters::new(urls, http, auth),
            gantry_daemon::masters::Masters::Zk(zk) => follow::Masters::with_zk(zk, http, auth),
        };
        serve(args, masters).await
    })
}

/// The state of the last pass, written to `<state-dir>/status.json` for operators and tests.
#[derive(Default)]
struct Status {
    reloads: u64,
    rejected: u64,
    services: usize,
    servers: usize,
    master_answers: bool,
    last_error: Option<String>,
}

async fn serve(args: LbArgs, masters: follow::Masters) -> anyhow::Result<()> {
    let state_dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
    let config = args
        .haproxy_config
        .clone()
        .unwrap_or_else(|| state_dir.join("haproxy.cfg"));
    let frontends = render::Frontends {
        bind_address: args.bind_address.clone(),
        http_port: (args.http_port != 0).then_some(args.http_port),
        https_port: (args.https_port != 0).then_some(args.https_port),
        ssl_certs: args.ssl_certs.clone(),
        admin_socket: state_dir.join("haproxy.sock"),
    };
    let sel = model::Selection {
        group: &args.group,
        require_healthy: !args.route_unhealthy,
    };
    let timing = follow::Timing {
        poll: Duration::from_secs_f64(args.poll_secs),
        debounce: Duration::from_millis(args.debounce_ms),
        resync: Duration::from_secs_f64(args.resync_secs),
    };
    let mut resolver = Resolver::default();
    if args.dry_run {
        let apps = masters.fetch_apps().await.map_err(anyhow::Error::msg)?;
        let (services, warnings) = model::services(&apps, &sel, &mut |h| resolver.lookup(h));
        for w in warnings {
            eprintln!("warning: {w}");
        }
        print!("{}", render::render(&frontends, &services));
        return Ok(());
    }

    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating the state dir {}", state_dir.display()))?;
    let mut hap = haproxy::Haproxy::new(args.haproxy_bin.clone(), config.clone(), &state_dir);
    let version = hap.version().await?;
    tracing::info!(%version, config = %config.display(), group = %args.group, "gantry lb");
    // The text HAProxy runs; a restart keeps serving what the last run left.
    let mut live: Option<String> = None;
    if let Some(pid) = hap.adopt() {
        tracing::info!(pid, "adopted the haproxy an earlier run left serving");
        live = std::fs::read_to_string(&config).ok();
    } else if config.exists() && hap.check(&config).await.is_ok() {
        match hap.start_or_reload().await {
            Ok(_) => {
                tracing::info!("serving the last good config until a master answers");
                live = std::fs::read_to_string(&config).ok();
            }
            Err(e) => tracing::warn!(error = %e, "the last config does not start"),
        }
    }

    let follower = follow::Follower::start(masters, timing);
    let mut status = Status::default();
    let mut rejected: Option<String> = None;
    let mut warned: Vec<String> = Vec::new();
    let mut first = true;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let fetched = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            r = async { if first { follower.now().await } else { follower.next().await } } => r,
        };
        first = false;
        let apps = match fetched {
            Ok(apps) => apps,
            Err(e) => {
                if status.master_answers || status.last_error.is_none() {
                    tracing::warn!(error = %e, "no master answers; HAProxy keeps serving the last good config");
                }
                status.master_answers = false;
                status.last_error = Some(e);
                write_status(&state_dir, &status, &follower, hap.reloads);
                continue;
            }
        };
        if !status.master_answers {
            tracing::info!(master = %follower.master(), "following the master");
        }
        status.master_answers = true;
        let (services, warnings) = model::services(&apps, &sel, &mut |h| resolver.lookup(h));
        if warnings != warned {
            for w in &warnings {
                tracing::warn!("{w}");
            }
            warned = warnings;
        }
        let text = render::render(&frontends, &services);
        status.services = services.len();
        status.servers = services.iter().map(|s| s.servers.len()).sum();
        if live.as_deref() != Some(text.as_str()) && rejected.as_deref() != Some(text.as_str()) {
            match hap.apply(&text).await {
                Ok(how) => {
                    tracing::info!(
                        ?how,
                        services = status.services,
                        servers = status.servers,
                        "haproxy config applied"
                    );
                    live = Some(text);
                    rejected = None;
                    status.last_error = None;
                }
                Err(e) => {
                    tracing::error!(error = %e, "new config refused; HAProxy keeps the old one");
                    status.rejected += 1;
                    status.last_error = Some(format!("{e:#}"));
                    rejected = Some(text);
                }
            }
        }
        status.reloads = hap.reloads;
        write_status(&state_dir, &status, &follower, hap.reloads);
    }
    tracing::info!("stopping haproxy");
    hap.stop(false).await;
    Ok(())
}

fn write_status(dir: &Path, s: &Status, f: &follow::Follower, reloads: u64) {
    let v = json!({
        "reloads": reloads,
        "rejectedConfigs": s.rejected,
        "services": s.services,
        "servers": s.servers,
        "masterAnswers": s.master_answers,
        "master": f.master(),
        "eventDriven": f.event_driven(),
        "lastError": s.last_error,
    });
    let tmp = dir.join("status.json.tmp");
    if std::fs::write(&tmp, v.to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join("status.json"));
    }
}

/// Agent host names to IPv4 addresses (HAProxy is given addresses, as marathon-lb does), cached
/// for a minute.
#[derive(Default)]
struct Resolver {
    cache: HashMap<String, (Option<IpAddr>, std::time::Instant)>,
}

impl Resolver {
    fn lookup(&mut self, host: &str) -> Option<IpAddr> {
        if let Some((ip, at)) = self.cache.get(host) {
            if at.elapsed() < Duration::from_secs(60) {
                return *ip;
            }
        }
        let ip = (host, 0).to_socket_addrs().ok().and_then(|mut a| {
            let all: Vec<IpAddr> = a.by_ref().map(|s| s.ip()).collect();
            all.iter().find(|ip| ip.is_ipv4()).or(all.first()).copied()
        });
        self.cache
            .insert(host.to_string(), (ip, std::time::Instant::now()));
        ip
    }
}
