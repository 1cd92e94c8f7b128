//! The Marathon-style service controller: app definitions and keeping each app at its instance count.

pub mod actions;
pub mod app;
pub mod app_definition;
pub mod backoff;
pub mod controller;
pub mod deployments;
pub mod docker_task;
pub mod gang;
pub mod group_update;
pub mod groups;
pub mod health;
pub mod launch;
pub mod offer_summary;
pub mod path_id;
pub mod placement_constraints;
pub mod readiness;
pub mod requirements;
pub mod state;
pub mod task_env;
pub mod updates;
