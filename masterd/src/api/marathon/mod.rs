//! The Marathon v2 REST API.

pub mod error;
