//! What Gantry's daemons (gantry-masterd, gantry-agentd, and both inside `gantry dev`) share:
//! the configuration error type, reading a TOML config file, logging set-up, and reading TLS PEM
//! files.

pub mod config;
pub mod logging;
pub mod tls_files;

pub use config::{read_toml, ConfigError};
