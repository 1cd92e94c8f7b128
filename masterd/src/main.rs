//! gantry-masterd: the master daemon. Flags, then `GANTRY_*` variables, then the config file.
//! Tells systemd when it is ready (`Type=notify`) and stops on SIGTERM or SIGINT. With `--zk` it is
//! one of several masters (`gantry_masterd::ha`).

use anyhow::Context;
use clap::Parser;
use gantry_masterd::config::MasterArgs;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "gantry-masterd",
    version,
    about = "Gantry master: pools agents, places and tracks tasks"
)]
struct Cli {
    /// TOML config file with the same keys as the flags.
    #[arg(long, env = "GANTRY_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    log: gantry_daemon::logging::LogArgs,
    #[command(flatten)]
    args: MasterArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    gantry_daemon::logging::init(cli.log.log_format);
    let args = match &cli.config {
        Some(path) => cli.args.or(MasterArgs::from_file(path)?),
        None => cli.args,
    };
    let cfg = args.resolve()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let (addr, ha) = match cfg.ha.clone() {
            // One of several masters: listens now, leads when elected (docs/ha.md).
            Some(ha) => {
                let h = gantry_masterd::ha::life::start(cfg, ha).await?;
                (h.addr, Some(h))
            }
            None => (gantry_masterd::master::start(cfg).await?.addr, None),
        };
        gantry_daemon::service::notify_ready(&format!("serving on {addr}"));
        let signal = gantry_daemon::service::stop_signal()
            .await
            .context("waiting for a signal")?;
        gantry_daemon::service::notify_stopping();
        tracing::info!(signal, "master stopping");
        if let Some(h) = ha {
            // Another master takes over now, not after this one's ZooKeeper session times out.
            h.resign().await;
        }
        Ok(())
    })
}
