//! What a master that does not lead answers until the standby router (`ha/standby.rs`: proxying
//! to the leader, Mesos's redirects) is in: `/ping`, and 503 for everything else, naming the
//! leader when one is known. Same signature as the standby router, so that swapping it is one line.

use crate::api::surface::Surface;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use gantry_daemon::masters::MasterInfo;
use tokio::sync::watch;

/// The placeholder standby router.
pub fn router(leader: watch::Receiver<Option<MasterInfo>>, me: MasterInfo) -> axum::Router {
    axum::Router::new()
        .route("/ping", get(|| async { "pong" }))
        .fallback(move |req: Request| {
            let leader = leader.borrow().clone();
            let me = me.clone();
            async move { not_leading(&req, leader.as_ref(), &me) }
        })
}

fn not_leading(req: &Request, leader: Option<&MasterInfo>, me: &MasterInfo) -> Response {
    let msg = match leader {
        Some(l) if l.id != me.id => format!(
            "This master ({}) is a standby; the leader is {}",
            me.host_port(),
            l.base_url()
        ),
        _ => format!(
            "This master ({}) is not the leader and no leader is elected yet; retry shortly",
            me.host_port()
        ),
    };
    Surface::of(req.uri().path()).error(StatusCode::SERVICE_UNAVAILABLE, &msg)
}
