//! `gantry dev`: a master and one local agent in one process, on embedded SQLite, with a generated
//! join token. State survives a restart of the command.

use anyhow::Context;
use gantry_agentd::config::AgentArgs;
use gantry_masterd::config::MasterArgs;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags of `gantry dev`.
#[derive(clap::Args)]
pub struct DevArgs {
    /// Address for the APIs (Marathon, Mesos) and the agents' link.
    #[arg(long, default_value = "127.0.0.1:5050")]
    listen: SocketAddr,
    /// State directory (master store and agent work dir). Default: /var/lib/gantry/dev as root
    /// (task users must be able to enter it), ~/.gantry/dev otherwise.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Resources the local agent offers (Mesos syntax); detected when not given.
    #[arg(long)]
    resources: Option<String>,
    #[command(flatten)]
    log: gantry_daemon::logging::LogArgs,
}

pub fn run(args: DevArgs) -> anyhow::Result<()> {
    gantry_daemon::logging::init(args.log.log_format);
    let dir = args.state_dir.unwrap_or_else(super::default_dev_dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut master_cfg = MasterArgs {
            listen: Some(args.listen),
            state_dir: Some(dir.join("master")),
            heartbeat_interval_secs: Some(1.0),
            ..MasterArgs::default()
        }
        .resolve()?;
        // A dev cluster on loopback for one user: no credentials to juggle.
        master_cfg.auth.enabled = false;
        let master = gantry_masterd::master::start(master_cfg)
            .await
            .context("starting the master")?;
        let mut agent_cfg = AgentArgs {
            master: Some(format!("http://{}", master.addr)),
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            work_dir: Some(dir.join("agent")),
            token: Some(master.core.tokens.primary()),
            hostname: Some("127.0.0.1".into()),
            resources: args.resources,
            max_backoff_secs: Some(1.0),
            ..AgentArgs::default()
        }
        .resolve()?;
        // The agent's own endpoint (/state, /files) is open too, on loopback only.
        agent_cfg.http_auth = false;
        let agent = gantry_agentd::agent::start(agent_cfg, None)
            .await
            .context("starting the local agent")?;
        println!("Gantry dev cluster");
        println!(
            "  API:         http://{} (Marathon /v2, Mesos /master/state)",
            master.addr
        );
        println!("  agent state: http://{}/state", agent.http_addr);
        println!("  state dir:   {}", dir.display());
        println!("Press Ctrl-C to stop (running tasks keep running and are re-adopted next time).");
        tokio::signal::ctrl_c().await?;
        Ok(())
    })
}
