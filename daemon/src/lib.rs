//! What Gantry's daemons (gantry-masterd, gantry-agentd, and both inside `gantry dev`) share:
//! the configuration error type, reading a TOML config file, logging set-up, reading TLS PEM
//! files, writing secrets to owner-only files, the join-token file format, systemd readiness
//! and stop signals, where the masters are (`--master` URLs, `zk://`, Mesos's `MasterInfo`), and
//! which of them leads (the ZooKeeper detector).

pub mod config;
pub mod detector;
pub mod logging;
pub mod masters;
pub mod private_file;
pub mod service;
pub mod tls_files;
pub mod token_file;

pub use config::{read_toml, ConfigError};
