//! Errors raised while building a [`crate::Topology`] from hwloc.

use std::path::PathBuf;

/// Why a topology could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// hwloc could not be configured or failed to load the topology.
    #[error("hwloc failed to {step}: {detail}")]
    Hwloc {
        /// What we asked hwloc to do.
        step: &'static str,
        /// hwloc's own description of the failure.
        detail: String,
    },
    /// The XML file is missing or hwloc rejected it.
    #[error("cannot import hwloc XML topology {path}: {detail}")]
    Xml {
        /// The file that was given.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// hwloc returned a topology we cannot describe (an object without the data we need).
    #[error("unexpected hwloc topology: {0}")]
    Unexpected(String),
}
