//! gantry-agentd: the agent daemon. Flags, then `GANTRY_*` variables, then the config file.

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
        let _agent = gantry_agentd::agent::start(cfg, None).await?;
        tokio::signal::ctrl_c()
            .await
            .context("waiting for a signal")?;
        tracing::info!("agent stopping; tasks keep running");
        Ok(())
    })
}
