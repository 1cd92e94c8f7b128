//! A standby's forwarding of one request to the leader, as Marathon's `LeaderProxyFilter` and
//! Chronos's `RedirectFilter` do: the method, path, query, body and end-to-end headers
//! (`Authorization` included: the leader authenticates) go to the leader; its status, headers and
//! body come back, the body streamed as it arrives. Hop-by-hop headers are dropped both ways. The
//! request carries [`PROXIED_BY`] so that a master which is not the leader either never forwards it
//! again (no loops between two masters that each think the other leads).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use std::time::Duration;

/// The mark a standby puts on every request it forwards (value: its `host:port`).
pub const PROXIED_BY: &str = "x-gantry-proxied-by";

/// How long the leader may take to connect (Marathon's `leader_proxy_connection_timeout_ms`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the leader may take to start its answer (status and headers). The body then streams
/// for as long as it lasts, with no total timeout.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the proxy's HTTP client cannot be built: {0}")]
    Client(String),
    #[error("the CA certificate for the leader is not PEM: {0}")]
    Ca(String),
    #[error("request body too large: at most {0} bytes")]
    TooLarge(usize),
    #[error("the request body could not be read: {0}")]
    Body(String),
    #[error("'{0}' is not a URL the leader can be reached at")]
    Url(String),
    #[error("the leader at {leader} cannot be reached: {why}")]
    Unreachable { leader: String, why: String },
    #[error("the leader at {leader} did not start answering within {secs} s")]
    Slow { leader: String, secs: u64 },
}

/// The client a standby forwards with: connect timeout [`CONNECT_TIMEOUT`], no total timeout
/// (answers stream), no redirects followed (the leader's 3xx go back to the client as they are),
/// no proxy from the environment, and besides the public roots, the PEM CA `ca_pem` when the
/// masters' certificates are signed by a private one.
pub fn client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client, ProxyError> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true);
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ProxyError::Ca(e.to_string()))?;
        if certs.is_empty() {
            return Err(ProxyError::Ca("no certificate in it".into()));
        }
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| ProxyError::Client(e.to_string()))
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded either way, plus the ones the client
/// library sets itself for the new connection (`Host`, `Content-Length`).
fn hop_by_hop(name: &HeaderName, named_by_connection: &[String]) -> bool {
    const HOP: [&str; 11] = [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        // The body was read already; the leader need not be asked to wait for it.
        "expect",
    ];
    let n = name.as_str();
    HOP.contains(&n) || n == "content-length" || named_by_connection.iter().any(|c| c == n)
}

/// The header names a `Connection` header lists (they are hop-by-hop too).
fn connection_names(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The end-to-end headers of `headers`.
pub fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named = connection_names(headers);
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !hop_by_hop(name, &named) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// What a forwarded request says about where it came from.
pub struct Hop<'a> {
    /// This master's `host:port` (the loop mark and the `Via` entry).
    pub me: &'a str,
    /// The client's address, when the listener told it (`X-Forwarded-For`).
    pub client: Option<std::net::IpAddr>,
}

/// Forwards `req` to `leader_base` (`http(s)://host:port`) and streams the answer back. The
/// request body is read first, up to `max_body` bytes (the leader's own limit); the answer's
/// body is not buffered.
pub async fn forward(
    client: &reqwest::Client,
    leader_base: &str,
    req: Request<Body>,
    max_body: usize,
    hop: Hop<'_>,
    answer_timeout: Duration,
) -> Result<Response, ProxyError> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(ProxyError::TooLarge(max_body));
    }
    let body = read_body(body, max_body).await?;
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let url = format!("{leader_base}{target}");
    let url = reqwest::Url::parse(&url).map_err(|_| ProxyError::Url(url.clone()))?;
    let mut headers = end_to_end(&parts.headers);
    let via = format!("1.1 {}", hop.me);
    headers.append(header::VIA, value(&via));
    headers.insert(HeaderName::from_static(PROXIED_BY), value(hop.me));
    if let Some(ip) = hop.client {
        let xff = HeaderName::from_static("x-forwarded-for");
        let chain = match parts.headers.get(&xff).and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip.to_string(),
        };
        headers.insert(xff, value(&chain));
    }
    // reqwest 0.12 and axum 0.8 share the `http` 1 crate: one Method, one HeaderMap.
    let mut rb = client.request(parts.method.clone(), url).headers(headers);
    if !body.is_empty() || parts.method == Method::POST || parts.method == Method::PUT {
        rb = rb.body(body);
    }
    let unreachable = |e: reqwest::Error| ProxyError::Unreachable {
        leader: leader_base.to_owned(),
        why: describe(&e),
    };
    let resp = match tokio::time::timeout(answer_timeout, rb.send()).await {
        Ok(r) => r.map_err(unreachable)?,
        Err(_) => {
            return Err(ProxyError::Slow {
                leader: leader_base.to_owned(),
                secs: answer_timeout.as_secs(),
            })
        }
    };
    Ok(stream_back(resp, &via))
}

/// The request body, refused once it passes `max` bytes.
async fn read_body(body: Body, max: usize) -> Result<axum::body::Bytes, ProxyError> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ProxyError::Body(e.to_string()))?;
        if out.len() + chunk.len() > max {
            return Err(ProxyError::TooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.into())
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The error and its causes, one line (reqwest's own `Display` stops at "error sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_connect() {
        "connection failed".to_owned()
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

/// The leader's answer as ours: its status, end-to-end headers (`Content-Length` kept, so a
/// sized answer stays sized) and body, streamed; `Via` gets our entry.
fn stream_back(resp: reqwest::Response, via: &str) -> Response {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = end_to_end(resp.headers());
    if let Some(len) = resp.headers().get(header::CONTENT_LENGTH) {
        headers.insert(header::CONTENT_LENGTH, len.clone());
    }
    headers.append(header::VIA, value(via));
    let stream = futures_util::stream::unfold(Some(resp), |r| async move {
        let mut r = r?;
        match r.chunk().await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(r))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut out = Response::new(Body::from_stream(stream));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_and_the_rest_kept() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value("Basic eDp5"));
        h.insert(header::CONNECTION, value("keep-alive, X-Secret-Hop"));
        h.insert(header::TRANSFER_ENCODING, value("chunked"));
        h.insert(header::HOST, value("standby:5050"));
        h.insert(header::CONTENT_LENGTH, value("12"));
        h.insert("x-secret-hop", value("1"));
        h.insert("keep-alive", value("timeout=5"));
        h.append(header::ACCEPT, value("application/json"));
        h.append(header::ACCEPT, value("text/plain"));
        let out = end_to_end(&h);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["authorization", "accept"]);
        assert_eq!(out.get_all(header::ACCEPT).iter().count(), 2);
    }

    #[test]
    fn a_ca_that_is_not_pem_is_refused_and_none_builds() {
        assert!(client(None).is_ok());
        assert!(matches!(client(Some(b"junk")), Err(ProxyError::Ca(_))));
    }
}
