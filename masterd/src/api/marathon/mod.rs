//! The Marathon v2 REST API: apps (and their versions, updates, restarts), groups, tasks, deployments,
//! queue, the event stream, info, leader, ping.

pub mod apps;
pub mod deployments;
pub mod error;
pub mod event_subscriptions;
pub mod events;
pub mod gpu_usage;
pub mod groups;
pub mod info;
pub mod query;
pub mod render;
pub mod task_stats;
pub mod tasks;
pub mod updates;
pub mod versions;
pub mod views;

use crate::cluster::Core;
use axum::routing::{delete, get, post};
use axum::Router;
use std::sync::Arc;

/// The Marathon routes.
pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route(
            "/v2/apps",
            get(apps::list)
                .post(apps::create)
                .put(updates::put_all)
                .patch(updates::patch_all),
        )
        .route(
            "/v2/apps/{*id}",
            get(apps::get)
                .delete(apps::delete)
                .put(updates::put)
                .patch(updates::patch)
                .post(updates::restart),
        )
        .route(
            "/v2/groups",
            get(groups::get)
                .post(groups::create)
                .put(groups::update)
                .delete(groups::delete),
        )
        .route(
            "/v2/groups/{*id}",
            get(groups::get)
                .post(groups::create)
                .put(groups::update)
                .delete(groups::delete),
        )
        .route("/v2/tasks", get(tasks::list))
        .route("/v2/tasks/delete", post(tasks::delete_many))
        .route("/v2/deployments", get(deployments::list))
        .route("/v2/deployments/{id}", delete(deployments::cancel))
        .route("/v2/events", get(events::stream))
        .route(
            "/v2/eventSubscriptions",
            get(event_subscriptions::list)
                .post(event_subscriptions::subscribe)
                .delete(event_subscriptions::unsubscribe),
        )
        .route("/v2/queue", get(tasks::queue))
        .route("/v2/queue/{*app}", delete(tasks::reset_delay))
        .route("/v2/info", get(info::get_info))
        .route(
            "/v2/leader",
            get(info::get_leader).delete(info::delete_leader),
        )
        .route("/ping", get(tasks::ping))
}
