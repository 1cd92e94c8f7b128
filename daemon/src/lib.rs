//! What Gantry's daemons (gantry-masterd, gantry-agentd, and both inside `gantry dev`) share:
//! the configuration error type, reading a TOML config file, and logging set-up.

pub mod config;
pub mod logging;

pub use config::{read_toml, ConfigError};
