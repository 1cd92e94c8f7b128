//! Mesos-DNS's HTTP API on the master's port, in its JSON shapes (`http.go`):
//! `GET /v1/version`, `/v1/config`, `/v1/hosts/{host}` (`[{"host","ip"}]`) and
//! `/v1/services/{service}` (`[{"service","host","ip","port"}]`); an unknown name answers one
//! entry of empty strings, as Mesos-DNS does.

use super::records::fqdn;
use crate::cluster::Core;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

/// The Mesos-DNS version whose API this is.
pub const MESOS_DNS_VERSION: &str = "0.9.3";

/// The Mesos-DNS routes.
pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/v1/version", get(version))
        .route("/v1/config", get(config))
        .route("/v1/hosts/{host}", get(hosts))
        .route("/v1/services/{service}", get(services))
}

async fn version() -> Json<Value> {
    Json(json!({
        "Service": "Mesos-DNS",
        "URL": "https://github.com/mesosphere/mesos-dns",
        "Version": MESOS_DNS_VERSION,
        "GantryVersion": env!("CARGO_PKG_VERSION"),
    }))
}

async fn config(State(core): State<Arc<Core>>) -> Json<Value> {
    let d = &core.cfg.dns;
    let domain = d.domain.trim_matches('.').to_lowercase();
    let listen = d.listen;
    let leader = crate::api::mesos::advertised(&core).to_string();
    Json(json!({
        "Masters": [leader],
        "Zk": "",
        "RefreshSeconds": 0,
        "TTL": d.ttl,
        "Port": listen.map_or(53, |a| a.port()),
        "Domain": domain,
        "Resolvers": d.upstreams().iter().map(|r| r.ip().to_string()).collect::<Vec<_>>(),
        "Timeout": 2,
        "Listener": listen.map_or_else(|| "0.0.0.0".into(), |a| a.ip().to_string()),
        "HTTPListener": core.cfg.listen.ip().to_string(),
        "HTTPPort": core.cfg.listen.port(),
        "DNSOn": listen.is_some(),
        "HTTPOn": true,
        "ExternalOn": !d.upstreams().is_empty(),
        "RecurseOn": !d.upstreams().is_empty(),
        "SOAMname": format!("ns1.{domain}."),
        "SOARname": format!("root.ns1.{domain}."),
        "SOARefresh": 60,
        "SOARetry": 600,
        "SOAExpire": 86400,
        "SOAMinttl": d.ttl,
        "IPSources": ["netinfo", "mesos", "host"],
        "EnforceRFC952": d.labels == super::names::LabelSpec::Rfc952,
    }))
}

async fn hosts(State(core): State<Arc<Core>>, Path(host): Path<String>) -> Json<Value> {
    let records = super::current(&core).await;
    let name = fqdn(&host);
    let ips = records
        .get(&name)
        .map(|e| e.ips.clone())
        .unwrap_or_default();
    if ips.is_empty() {
        return Json(json!([{"host": "", "ip": ""}]));
    }
    Json(Value::Array(
        ips.iter()
            .map(|ip| json!({"host": name, "ip": ip.to_string()}))
            .collect(),
    ))
}

async fn services(State(core): State<Arc<Core>>, Path(service): Path<String>) -> Json<Value> {
    let records = super::current(&core).await;
    let name = fqdn(&service);
    let srv = records
        .get(&name)
        .map(|e| e.srv.clone())
        .unwrap_or_default();
    if srv.is_empty() {
        return Json(json!([{"service": "", "host": "", "ip": "", "port": ""}]));
    }
    Json(Value::Array(
        srv.iter()
            .map(|(host, port)| {
                let ip = records
                    .get(host)
                    .and_then(|e| e.ips.first())
                    .map(|ip| ip.to_string())
                    .unwrap_or_default();
                json!({"service": name, "host": host, "ip": ip, "port": port.to_string()})
            })
            .collect(),
    ))
}
