//! Unit tests of the standby: which paths are local, redirected or proxied; what it answers with
//! no leader; and forwarding to an in-process stand-in for the leader (headers both ways, loops).

use super::*;
use std::net::Ipv4Addr;
use tower::ServiceExt;

fn master(id: &str, port: u16) -> MasterInfo {
    MasterInfo::new(id, "127.0.0.1", Ipv4Addr::LOCALHOST, port, "1.11.0", false)
}

async fn call(r: &Router, method: Method, uri: &str, headers: &[(&str, &str)]) -> Response {
    let mut b = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Body::empty()).expect("request");
    r.clone().oneshot(req).await.expect("infallible")
}

async fn text(r: Response) -> String {
    let b = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .expect("body");
    String::from_utf8_lossy(&b).into_owned()
}

fn location(r: &Response) -> &str {
    r.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[test]
fn paths_are_local_redirected_or_proxied() {
    use Action::*;
    let get = Method::GET;
    let post = Method::POST;
    let cases = [
        (&get, "/ping", Ping),
        (&get, "/health", Health),
        (&get, "/version", Version),
        (&get, "/metrics", Metrics),
        (&get, "/metrics/snapshot", MetricsSnapshot),
        (&get, "/v2/leader", MarathonLeader),
        (&Method::DELETE, "/v2/leader", Proxy),
        (&get, "/leader", ChronosLeader),
        (&get, "/v1/scheduler/leader", ChronosLeader),
        (&get, "/scheduler/leader", ChronosLeader),
        (&post, "/ping", NotAllowed),
        (&get, "/master/redirect", MasterRedirect),
        (&get, "/v2/events", EventsRedirect),
        (&post, "/v2/events", Proxy),
        (&get, "/master/state", Redirect),
        (&get, "/master/state.json", Redirect),
        (&get, "/master/frameworks", Redirect),
        (&get, "/master/slaves", Redirect),
        (&get, "/master/tasks", Redirect),
        (&get, "/state", Redirect),
        (&get, "/state.json", Redirect),
        (&post, "/api/v1/scheduler", Redirect),
        (&post, "/api/v1", Redirect),
        (&post, "/api/v1/operator", Redirect),
        (&get, "/agent/v1/connect", Redirect),
        (&get, "/", Redirect),
        (&get, "/ui", Redirect),
        (&get, "/ui/services/web", Redirect),
        (&get, "/v2/apps", Proxy),
        (&post, "/v2/apps", Proxy),
        (&get, "/v2/info", Proxy),
        (&get, "/v2/eventsx", Proxy),
        (&post, "/scheduler/iso8601", Proxy),
        (&get, "/v1/scheduler/jobs", Proxy),
        (&get, "/gantry/v1/audit", Proxy),
        (&get, "/v1/hosts/web.marathon.mesos", Proxy),
        // Segment-aware: these are not under /master, /state, /ui.
        (&get, "/masters", Proxy),
        (&get, "/statex", Proxy),
        (&get, "/uix", Proxy),
        (&get, "/api/v10", Proxy),
    ];
    for (m, p, want) in cases {
        assert_eq!(classify(m, p), want, "{m} {p}");
    }
}

#[tokio::test]
async fn without_a_leader_local_endpoints_answer_and_the_rest_is_503_in_each_shape() {
    let (_tx, rx) = watch::channel(None);
    let r = router(rx, master("me", 1));
    let ping = call(&r, Method::GET, "/ping", &[]).await;
    assert_eq!(ping.status(), StatusCode::OK);
    assert_eq!(text(ping).await, "pong");
    let ping = call(&r, Method::GET, "/ping", &[("accept", "application/json")]).await;
    assert_eq!(text(ping).await, "\"pong\"");
    let leader = call(&r, Method::GET, "/v2/leader", &[]).await;
    assert_eq!(leader.status(), StatusCode::NOT_FOUND);
    assert_eq!(text(leader).await, r#"{"message":"There is no leader"}"#);

    let apps = call(&r, Method::GET, "/v2/apps", &[]).await;
    assert_eq!(apps.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_str(&text(apps).await).expect("json");
    assert!(v["message"]
        .as_str()
        .is_some_and(|m| m.contains("no leader")));
    let jobs = call(&r, Method::GET, "/scheduler/jobs", &[]).await;
    assert_eq!(jobs.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        jobs.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.as_bytes()),
        Some(&b"*"[..])
    );
    let v: serde_json::Value = serde_json::from_str(&text(jobs).await).expect("json");
    assert_eq!(v["status"], "Service Unavailable");
    for p in [
        "/master/state",
        "/master/redirect",
        "/api/v1/scheduler",
        "/ui",
    ] {
        let m = call(&r, Method::GET, p, &[]).await;
        assert_eq!(m.status(), StatusCode::SERVICE_UNAVAILABLE, "{p}");
        assert!(text(m)
            .await
            .starts_with("Could not determine the current leader"));
    }
}

#[tokio::test]
async fn a_leader_that_is_this_master_is_no_leader_yet() {
    let me = master("me", 1);
    let (_tx, rx) = watch::channel(Some(me.clone()));
    let r = router(rx, me);
    let apps = call(&r, Method::GET, "/v2/apps", &[]).await;
    assert_eq!(apps.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(apps).await.contains("taking over"));
    let state = call(&r, Method::GET, "/master/state", &[]).await;
    assert_eq!(state.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn mesos_endpoints_redirect_to_the_leader_and_follow_the_channel() {
    let (tx, rx) = watch::channel(Some(master("l", 7001)));
    let r = router(rx, master("me", 1));
    let s = call(&r, Method::GET, "/master/state?jsonp=x", &[]).await;
    assert_eq!(s.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(location(&s), "http://127.0.0.1:7001/master/state?jsonp=x");
    let m = call(&r, Method::GET, "/master/redirect", &[]).await;
    assert_eq!(m.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(location(&m), "http://127.0.0.1:7001");
    let e = call(&r, Method::GET, "/v2/events?event_type=a&event_type=b", &[]).await;
    assert_eq!(e.status(), StatusCode::FOUND);
    assert_eq!(
        location(&e),
        "http://127.0.0.1:7001/v2/events?event_type=a&event_type=b"
    );
    let mut https = master("l2", 7002);
    https.scheme = "https".into();
    tx.send_replace(Some(https));
    let a = call(&r, Method::POST, "/api/v1/scheduler", &[]).await;
    assert_eq!(a.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(location(&a), "https://127.0.0.1:7002/api/v1/scheduler");
    let l = call(&r, Method::GET, "/v1/scheduler/leader", &[]).await;
    assert_eq!(text(l).await, r#"{"leader":"127.0.0.1:7002"}"#);
}

#[tokio::test]
async fn metrics_count_what_the_standby_did() {
    let (_tx, rx) = watch::channel(None);
    let r = router(rx, master("me", 1));
    let _ = call(&r, Method::GET, "/v2/apps", &[]).await;
    let m = call(&r, Method::GET, "/metrics", &[("accept", "text/plain")]).await;
    let t = text(m).await;
    assert!(t.contains("gantry_master_elected 0"), "{t}");
    assert!(t.contains("gantry_master_leader_known 0"), "{t}");
    assert!(
        t.contains("gantry_standby_requests_total{how=\"no_leader\"} 1"),
        "{t}"
    );
}

/// A stand-in leader: echoes what it received as JSON, with a header and status of its own.
async fn echo_leader() -> (u16, tokio::task::JoinHandle<()>) {
    async fn echo(req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let headers: serde_json::Map<String, serde_json::Value> = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    json!(String::from_utf8_lossy(v.as_bytes())),
                )
            })
            .collect();
        let mut r = (
            StatusCode::CREATED,
            Json(json!({
                "method": parts.method.as_str(),
                "uri": parts.uri.to_string(),
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            })),
        )
            .into_response();
        r.headers_mut()
            .insert("x-from-leader", HeaderValue::from_static("yes"));
        r.headers_mut()
            .insert("keep-alive", HeaderValue::from_static("timeout=5"));
        r
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let app = Router::new().fallback(echo);
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (port, h)
}

#[tokio::test]
async fn proxied_requests_carry_method_query_body_and_credentials_and_the_mark() {
    let (port, server) = echo_leader().await;
    let (_tx, rx) = watch::channel(Some(master("l", port)));
    let r = router(rx, master("me", 1));
    let req = axum::http::Request::builder()
        .method(Method::PUT)
        .uri("/v2/apps/web?force=true")
        .header("authorization", "Basic Z2FudHJ5OngK")
        .header("content-type", "application/json")
        .header("connection", "x-hop")
        .header("x-hop", "1")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-forwarded-for", "10.0.0.9")
        .extension(ConnectInfo(std::net::SocketAddr::from((
            [10, 1, 2, 3],
            4444,
        ))))
        .body(Body::from(r#"{"instances":2}"#))
        .expect("request");
    let resp = r.clone().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let h = resp.headers();
    assert_eq!(
        h.get("x-from-leader").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );
    assert!(h.get("keep-alive").is_none());
    let leader_url = format!("http://127.0.0.1:{port}");
    assert_eq!(
        h.get("x-marathon-leader").and_then(|v| v.to_str().ok()),
        Some(leader_url.as_str())
    );
    assert_eq!(
        h.get("x-marathon-via").and_then(|v| v.to_str().ok()),
        Some("1.1 127.0.0.1:1")
    );
    let v: serde_json::Value = serde_json::from_str(&text(resp).await).expect("json");
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["uri"], "/v2/apps/web?force=true");
    assert_eq!(v["body"], r#"{"instances":2}"#);
    let sent = &v["headers"];
    assert_eq!(sent["authorization"], "Basic Z2FudHJ5OngK");
    assert_eq!(sent["content-type"], "application/json");
    assert_eq!(sent[PROXIED_BY], "127.0.0.1:1");
    assert_eq!(sent["via"], "1.1 127.0.0.1:1");
    assert_eq!(sent["host"], format!("127.0.0.1:{port}"));
    assert_eq!(sent["x-forwarded-for"], "10.0.0.9, 10.1.2.3");
    assert!(sent.get("x-hop").is_none(), "{sent}");
    assert!(sent.get("proxy-authorization").is_none(), "{sent}");
    server.abort();
}

#[tokio::test]
async fn marked_requests_and_bodies_over_the_limit_are_refused() {
    let (port, server) = echo_leader().await;
    let (_tx, rx) = watch::channel(Some(master("l", port)));
    let r = router_with(
        rx,
        master("me", 1),
        Options {
            max_body_bytes: 8,
            ..Options::default()
        },
    );
    let looped = call(&r, Method::GET, "/v2/apps", &[(PROXIED_BY, "127.0.0.1:2")]).await;
    assert_eq!(looped.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(looped).await.contains("proxying loop"));
    let via = call(
        &r,
        Method::GET,
        "/v2/apps",
        &[("via", "1.0 lb, 1.1 127.0.0.1:1")],
    )
    .await;
    assert_eq!(via.status(), StatusCode::SERVICE_UNAVAILABLE);
    let big = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/scheduler/iso8601")
        .body(Body::from("0123456789"))
        .expect("request");
    let big = r.clone().oneshot(big).await.expect("infallible");
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: serde_json::Value = serde_json::from_str(&text(big).await).expect("json");
    assert_eq!(v["status"], "Payload Too Large");
    server.abort();
}

#[tokio::test]
async fn an_unreachable_leader_is_a_503_not_an_empty_200() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let (_tx, rx) = watch::channel(Some(master("l", port)));
    let r = router(rx, master("me", 1));
    let m = call(&r, Method::GET, "/v2/apps", &[]).await;
    assert_eq!(m.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_str(&text(m).await).expect("json");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot be reached")),
        "{v}"
    );
    let c = call(&r, Method::GET, "/v1/scheduler/jobs", &[]).await;
    assert_eq!(c.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_str(&text(c).await).expect("json");
    assert!(v["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Error proxying request to leader")));
}

#[tokio::test]
async fn the_leaders_answer_streams_through_before_it_ends() {
    // A leader whose answer sends one chunk and then never ends.
    async fn endless() -> Response {
        let first = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"data: first\n\n"))
        });
        let stream = futures_util::StreamExt::chain(first, futures_util::stream::pending());
        Response::new(Body::from_stream(stream))
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let _ = axum::serve(l, Router::new().fallback(endless)).await;
    });
    let (_tx, rx) = watch::channel(Some(master("l", port)));
    let r = router(rx, master("me", 1));
    let resp = call(&r, Method::GET, "/gantry/v1/stream", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    // A bound on the wait only so that a buffering proxy fails the test rather than hangs it.
    let first = tokio::time::timeout(
        Duration::from_secs(60),
        futures_util::StreamExt::next(&mut body),
    )
    .await
    .expect("the first chunk arrives while the answer is still open")
    .expect("a chunk")
    .expect("not an error");
    assert_eq!(&first[..], b"data: first\n\n");
    server.abort();
}

#[tokio::test]
async fn with_principals_local_answers_need_read_and_probes_stay_open() {
    use base64::Engine;
    let principals: Vec<crate::auth::Principal> = serde_json::from_value(json!([
        {"name": "ops", "password": "pw", "permissions": ["read"]}
    ]))
    .expect("principals");
    let (_tx, rx) = watch::channel(Some(master("l", 7001)));
    let r = router_with(
        rx,
        master("me", 1),
        Options {
            auth: Some(Arc::new(Authenticator::with(principals))),
            ..Options::default()
        },
    );
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ops:pw")
    );
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ops:nope")
    );
    assert_eq!(call(&r, Method::GET, "/ping", &[]).await.status(), 200);
    assert_eq!(call(&r, Method::GET, "/health", &[]).await.status(), 200);
    let anon = call(&r, Method::GET, "/v2/leader", &[]).await;
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert!(anon.headers().contains_key(header::WWW_AUTHENTICATE));
    let wrong = call(&r, Method::GET, "/metrics", &[("authorization", &bad)]).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let ok = call(&r, Method::GET, "/v2/leader", &[("authorization", &good)]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    // Redirects are the leader's to authenticate.
    let redirect = call(&r, Method::GET, "/master/state", &[]).await;
    assert_eq!(redirect.status(), StatusCode::TEMPORARY_REDIRECT);
}

#[tokio::test]
async fn a_leader_that_never_answers_is_a_503_once_the_answer_timeout_passes() {
    // Accepts connections and reads nothing: a stopped or wedged leader.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = l.accept().await {
            held.push(conn);
        }
    });
    let (_tx, rx) = watch::channel(Some(master("l", port)));
    let r = router_with(
        rx,
        master("me", 1),
        Options {
            answer_timeout: Duration::from_millis(200),
            ..Options::default()
        },
    );
    let m = call(&r, Method::GET, "/v2/apps", &[]).await;
    assert_eq!(m.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(m).await.contains("did not start answering"));
    server.abort();
}
