//! What Gantry's daemons (gantry-masterd, gantry-agentd, and both inside `gantry dev`) share:
//! the configuration error type, reading a TOML config file, logging set-up, reading TLS PEM
//! files, and writing secrets to owner-only files.

pub mod config;
pub mod logging;
pub mod private_file;
pub mod tls_files;

pub use config::{read_toml, ConfigError};
