//! The Chronos REST API (spec §1.2) under `/v1/scheduler/` and its 2.x alias `/scheduler/`, plus
//! `/leader`. Each handler turns the request into one batch action and renders Chronos's shapes.

pub mod error;
pub mod graph;
pub mod jobs;
pub mod render;

use crate::cluster::Core;
use axum::routing::{get, post, put};
use axum::Router;
use std::sync::Arc;

/// The Chronos routes under one prefix.
fn scheduler() -> Router<Arc<Core>> {
    Router::new()
        .route("/jobs", get(jobs::list).delete(jobs::delete_all))
        .route("/jobs/search", get(jobs::search))
        .route("/jobs/summary", get(jobs::summary))
        .route(
            "/job/{name}",
            get(jobs::get).put(jobs::run).delete(jobs::delete),
        )
        .route("/job/success/{name}", put(jobs::mark_success))
        .route("/job/stat/{name}", get(graph::job_stat))
        .route("/job/{name}/task/{task}/progress", post(jobs::progress))
        .route("/iso8601", post(jobs::iso8601).put(jobs::iso8601))
        .route("/dependency", post(jobs::dependency).put(jobs::dependency))
        .route("/task/kill/{name}", axum::routing::delete(jobs::kill))
        .route("/graph/dot", get(graph::dot))
        .route("/graph/csv", get(graph::csv))
        .route("/stats/{percentile}", get(graph::stats))
        .route("/leader", get(graph::leader))
        // Gantry: a job's run history.
        .route("/job/{name}/runs", get(jobs::runs))
}

/// Every Chronos route. Answers carry `Access-Control-Allow-Origin: *`, as Chronos's `CorsFilter`
/// adds to every response.
pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .nest("/v1/scheduler", scheduler())
        .nest("/scheduler", scheduler())
        .route("/leader", get(graph::leader))
        .layer(axum::middleware::map_response(cors))
}

async fn cors(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut().insert(
        axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        axum::http::HeaderValue::from_static("*"),
    );
    resp
}
