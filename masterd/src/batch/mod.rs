//! The Chronos-style batch controller: jobs (ISO 8601 and cron schedules, dependency DAGs,
//! arrays), their runs and history. It drives the pure `jobs` crate and places runs through the
//! same allocator and agents as services. Every slot and launch is stored before a task starts,
//! so no run is missed or doubled across master restarts.

pub mod actions;
pub mod active;
pub mod constraints;
pub mod controller;
pub mod docker_task;
pub mod ends;
pub mod gang;
pub mod job;
pub mod launch;
pub mod pass;
pub mod run;
pub mod schedule;
pub mod state;
