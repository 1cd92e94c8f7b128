//! The Marathon AppDefinition under its original module name: everything lives in
//! `services::app` and is re-exported here, so handlers can use either path.

pub use super::app::*;
