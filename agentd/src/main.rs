//! gantry-agentd: the agent daemon. Flags, then `GANTRY_*` variables, then the config file.
//! Tells systemd when it is ready (`Type=notify`) and stops on SIGTERM or SIGINT; the tasks keep
//! running (the unit's `KillMode=process`).

use anyhow::Context;
use clap::Parser;
use gantry_agentd::config::AgentArgs;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "gantry-agentd",
    version,
    about = "Gantry agent: runs tasks for the master"
)]
struct Cli {
    /// TOML config file with the same keys as the flags.
    #[arg(long, env = "GANTRY_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    log: gantry_daemon::logging::LogArgs,
    #[command(flatten)]
    args: AgentArgs,
}

fn main() -> anyhow::Result<()> {
    gantry_agentd::executor::run_if_requested();
    let cli = Cli::parse();
    gantry_daemon::logging::init(cli.log.log_format);
    let args = match &cli.config {
        Some(path) => cli.args.or(AgentArgs::from_file(path)?),
        None => cli.args,
    };
    let cfg = args.resolve()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let agent = gantry_agentd::agent::start(cfg, None).await?;
        gantry_daemon::service::notify_ready(&format!("serving on {}", agent.http_addr));
        let signal = gantry_daemon::service::stop_signal()
            .await
            .context("waiting for a signal")?;
        gantry_daemon::service::notify_stopping();
        tracing::info!(signal, "agent stopping; tasks keep running");
        Ok(())
    })
}
