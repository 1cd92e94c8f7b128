//! The master's batch controller (Chronos-compatible jobs): the job definition, and the
//! controller, store and routes built on it.

pub mod job;
