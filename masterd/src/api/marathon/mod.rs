//! The Marathon v2 REST API: apps, tasks, queue, ping.

pub mod apps;
pub mod error;
pub mod gpu_usage;
pub mod query;
pub mod render;
pub mod tasks;

use crate::cluster::Core;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The Marathon routes.
pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/v2/apps", get(apps::list).post(apps::create))
        .route("/v2/apps/{*id}", get(apps::get).delete(apps::delete))
        .route("/v2/tasks", get(tasks::list))
        .route("/v2/queue", get(tasks::queue))
        .route("/ping", get(tasks::ping))
}
