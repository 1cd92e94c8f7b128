//! HTTP surfaces of the master, one module per API.

pub mod marathon;
