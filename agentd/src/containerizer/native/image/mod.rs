//! Docker/OCI images in the native containerizer (Mesos's "UCR" with the docker image provider):
//! pulled over the Registry HTTP API v2 (oci-client), every layer's digest verified, unpacked once
//! into a layer store shared by all tasks, and stacked as an overlayfs rootfs per task, which the
//! container's init pivots into (see `super::spec::MountStep` and `super::init`).

pub mod auth;
pub mod config;
pub mod pull;
pub mod rootfs;
pub mod store;
pub mod unpack;

use std::path::{Path, PathBuf};

/// The agent's image settings (`--registry-mirror`, `--insecure-registries`, `--docker-config`,
/// `--image-store-max-bytes`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageSettings {
    /// The layer store (`<work_dir>/images`).
    pub store_dir: PathBuf,
    pub max_bytes: u64,
    /// Stands in for `docker.io`.
    pub mirror: Option<String>,
    /// `host:port`s reached over plain HTTP.
    pub insecure: Vec<String>,
    pub docker_config: Option<PathBuf>,
}

/// Why an image could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Reference(#[from] gantry_proto::ImageRefError),
    #[error("cannot pull {image}: {why}")]
    Pull { image: String, why: String },
    #[error("bad image manifest: {0}")]
    Manifest(String),
    #[error("layer {digest} of {image}: {why}; the layer was not stored")]
    Layer {
        image: String,
        digest: String,
        why: String,
    },
    #[error("image store: {0}")]
    Store(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ImageError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A task's image, ready to mount: its layers (top first), its overlay dirs and its config.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    pub config: config::RuntimeConfig,
}
