//! gantry-agentd as a library: the agent's parts, so that `gantry dev` and tests can embed it.

pub mod agent;
pub mod config;
pub mod containerizer;
pub mod executor;
pub mod fetcher;
pub mod files;
pub mod health;
pub mod http;
pub mod http_auth;
pub mod inventory;
pub mod link;
pub mod recovery;
pub mod tasks;
