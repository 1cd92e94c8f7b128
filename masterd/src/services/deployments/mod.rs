//! Deployments as Marathon plans them (spec §2.8): a plan of steps of actions per app, kept in the
//! store with its progress, advanced by the services controller until every step is done.

pub mod config;
pub mod plan;
pub mod progress;
pub mod replace;
pub mod rolling;

pub use plan::{Action, ActionKind, DeploymentPlan};
