//! gantry-masterd as a library: the master's parts, so that `gantry dev` and tests can embed it.

pub mod alloc;
pub mod api;
pub mod auth;
pub mod batch;
pub mod cluster;
pub mod config;
pub mod dns;
pub mod events;
pub mod frameworks;
pub mod ha;
pub mod join_tokens;
pub mod listener;
pub mod master;
pub mod metrics;
pub mod services;
pub mod state;
pub mod store;
pub mod tls;
pub mod ui;
