//! Logging for the daemons: `tracing` to stderr, filtered by `RUST_LOG` (default `info`). Colours
//! only when stderr is a terminal; `--log-format json` writes one JSON object a line for shippers.

use std::io::IsTerminal;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured when stderr is a terminal, plain otherwise.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields, spans).
    Json,
}

/// The logging flag every daemon takes.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LogArgs {
    /// Log line format: `text` (coloured only on a terminal) or `json`.
    #[arg(long, env = "GANTRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Installs the subscriber; call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}
