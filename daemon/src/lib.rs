//! What Gantry's daemons (gantry-masterd, gantry-agentd, and both inside `gantry dev`) share:
//! the configuration error type, reading a TOML config file, logging set-up, reading TLS PEM
//! files, writing secrets to owner-only files, and the join-token file format.

pub mod config;
pub mod logging;
pub mod private_file;
pub mod tls_files;
pub mod token_file;

pub use config::{read_toml, ConfigError};
