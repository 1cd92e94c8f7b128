//! A standby master in front of a real leader (a `gantry-masterd` process with authentication on):
//! the standby's router (`gantry_masterd::ha::standby`) served in-process with the leader named
//! on its watch channel. Marathon's and Chronos's APIs are proxied (the leader authenticates and
//! answers; its status, headers and body come back), Mesos's endpoints, the agents' link and the
//! event stream are redirected, and with no leader, or a dead one, the answers are 503s in each
//! API's shape, never a hang or an empty 200.

mod support;

use gantry_daemon::masters::MasterInfo;
use gantry_masterd::ha::standby;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::Duration;
use support::certs::TestCa;
use support::{eventually, Cluster, CREDENTIALS};
use tokio::sync::watch;

/// A standby on a free loopback port, serving in this process.
struct Standby {
    url: String,
    leader: watch::Sender<Option<MasterInfo>>,
    server: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
}

impl Drop for Standby {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn info(id: &str, port: u16) -> MasterInfo {
    MasterInfo::new(id, "127.0.0.1", Ipv4Addr::LOCALHOST, port, "1.11.0", false)
}

async fn standby(leader: Option<MasterInfo>) -> Standby {
    standby_with(leader, None).await
}

/// A standby forwarding with `client` (`None`: the default one).
async fn standby_with(leader: Option<MasterInfo>, client: Option<reqwest::Client>) -> Standby {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the standby");
    let port = l.local_addr().expect("its address").port();
    let (tx, rx) = watch::channel(leader);
    let me = info("standby", port);
    let app = match client {
        Some(client) => standby::router_with_client(rx, me, client),
        None => standby::router(rx, me),
    };
    let server = tokio::spawn(async move {
        let svc = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(l, svc).await;
    });
    Standby {
        url: format!("http://127.0.0.1:{port}"),
        leader: tx,
        server,
        // No redirects followed (the test looks at them); a bound on every call, so a hang
        // fails the test instead of stalling it.
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a client"),
    }
}

impl Standby {
    fn request(&self, m: Method, path: &str) -> reqwest::RequestBuilder {
        let (user, pass) = CREDENTIALS.split_once(':').unwrap_or_default();
        self.http
            .request(m, format!("{}{path}", self.url))
            .basic_auth(user, Some(pass))
    }
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn json_of(r: reqwest::Response) -> Value {
    let text = r.text().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
}

async fn leader_up(c: &Cluster) {
    eventually(Duration::from_secs(30), "the leader answers", || async {
        c.request(Method::GET, "/ping")
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_proxies_the_apis_to_the_leader_and_redirects_mesos() {
    let mut c = Cluster::new();
    leader_up(&c).await;
    let s = standby(Some(info("leader", c.port))).await;

    // Marathon: an app created through the standby is created on the leader, answered as it
    // answers.
    let app = json!({"id": "/web", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 1});
    let r = s
        .request(Method::POST, "/v2/apps")
        .header("content-type", "application/json")
        .body(app.to_string())
        .send()
        .await
        .expect("the standby answers");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), "/v2/apps/web");
    assert_eq!(header(&r, "x-marathon-leader"), c.url());
    assert!(header(&r, "x-marathon-via").contains("127.0.0.1"));
    let deployment = header(&r, "marathon-deployment-id").to_owned();
    assert!(!deployment.is_empty());
    let created = json_of(r).await;
    assert_eq!(created["id"], "/web");
    assert_eq!(created["deployments"][0]["id"], deployment.as_str());
    let on_leader = c.get("/v2/apps/web").await;
    assert_eq!(on_leader["app"]["id"], "/web");

    // The list through the standby is the leader's (polled: a deployment may move meanwhile).
    eventually(Duration::from_secs(30), "the same /v2/apps", || async {
        let via = s.request(Method::GET, "/v2/apps").send().await.ok()?;
        let via_leader = header(&via, "x-marathon-leader") == c.url();
        let via: Value = via.json().await.ok()?;
        let direct = c.get("/v2/apps").await;
        (via_leader && via == direct && via["apps"][0]["id"] == "/web").then_some(())
    })
    .await;

    // Reported, not asserted: what the extra hop costs on this machine.
    let mut took = [Duration::ZERO; 2];
    for _ in 0..20 {
        for (i, base) in [&s.url, &c.url()].into_iter().enumerate() {
            let t = std::time::Instant::now();
            let r = s
                .http
                .get(format!("{base}/v2/apps"))
                .basic_auth("gantry", CREDENTIALS.split_once(':').map(|(_, p)| p))
                .send()
                .await
                .expect("answers");
            assert_eq!(r.status(), StatusCode::OK);
            let _ = r.bytes().await.expect("body");
            took[i] += t.elapsed();
        }
    }
    eprintln!(
        "GET /v2/apps, mean of 20: through the standby {:?}, direct {:?}",
        took[0] / 20,
        took[1] / 20
    );

    // A wrong credential: the leader's 401 comes back unchanged.
    let wrong = |base: &str| {
        s.http
            .get(format!("{base}/v2/apps"))
            .basic_auth("gantry", Some("wrong"))
            .send()
    };
    let via = wrong(&s.url).await.expect("the standby answers");
    let direct = wrong(&c.url()).await.expect("the leader answers");
    assert_eq!(via.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(via.status(), direct.status());
    assert_eq!(
        header(&via, "www-authenticate"),
        header(&direct, "www-authenticate")
    );
    assert_eq!(json_of(via).await, json_of(direct).await);

    // Chronos: a job posted through the standby is the leader's.
    let job = json!({"name": "nightly", "command": "true", "schedule": "R/2030-01-01T00:00:00Z/P1D",
                     "owner": "ops@example.com", "cpus": 0.1, "mem": 32});
    let r = s
        .request(Method::POST, "/scheduler/iso8601")
        .header("content-type", "application/json")
        .body(job.to_string())
        .send()
        .await
        .expect("the standby answers");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let jobs = json_of(
        s.request(Method::GET, "/v1/scheduler/jobs")
            .send()
            .await
            .expect("the standby answers"),
    )
    .await;
    assert!(
        jobs.as_array()
            .is_some_and(|j| j.iter().any(|j| j["name"] == "nightly")),
        "{jobs}"
    );
    assert_eq!(c.get("/v1/scheduler/job/nightly").await["name"], "nightly");

    // Redirects: the event stream (302, query kept), Mesos's endpoints and the agents' link
    // (307, path and query kept), /master/redirect (307 to the leader itself).
    let cases = [
        (
            Method::GET,
            "/v2/events?event_type=deployment_info",
            StatusCode::FOUND,
        ),
        (Method::GET, "/master/state", StatusCode::TEMPORARY_REDIRECT),
        (
            Method::GET,
            "/master/state.json?jsonp=cb",
            StatusCode::TEMPORARY_REDIRECT,
        ),
        (
            Method::POST,
            "/api/v1/scheduler",
            StatusCode::TEMPORARY_REDIRECT,
        ),
        (
            Method::GET,
            "/agent/v1/connect",
            StatusCode::TEMPORARY_REDIRECT,
        ),
        (Method::GET, "/ui/services", StatusCode::TEMPORARY_REDIRECT),
    ];
    for (m, path, status) in cases {
        let r = s
            .request(m, path)
            .send()
            .await
            .expect("the standby answers");
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(
            header(&r, "location"),
            format!("{}{path}", c.url()),
            "{path}"
        );
    }
    let r = s
        .request(Method::GET, "/master/redirect")
        .send()
        .await
        .expect("the standby answers");
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&r, "location"), c.url());
    // The Location leads to the leader's real endpoint.
    let state = c.get("/master/state").await;
    assert!(state["slaves"].is_array(), "{state}");

    // Who leads, answered by the standby itself.
    let hp = format!("127.0.0.1:{}", c.port);
    for path in ["/v2/leader", "/v1/scheduler/leader", "/leader"] {
        let r = s.request(Method::GET, path).send().await.expect("answers");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(json_of(r).await, json!({"leader": hp}), "{path}");
    }

    // A request another master already forwarded is not forwarded again.
    let r = s
        .request(Method::GET, "/v2/apps")
        .header("x-gantry-proxied-by", "127.0.0.1:1")
        .send()
        .await
        .expect("the standby answers");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(json_of(r).await["message"]
        .as_str()
        .is_some_and(|m| m.contains("loop")));

    // The leader dies while the channel still names it: a prompt 503, not a hang or a 200.
    c.kill_master();
    for path in ["/v2/apps", "/scheduler/jobs", "/gantry/v1/audit"] {
        let asked = std::time::Instant::now();
        let r = s
            .request(Method::GET, path)
            .send()
            .await
            .expect("the standby answers (within the client's timeout)");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        // Reported, not asserted: the machine's load decides it.
        eprintln!(
            "{path} with the leader dead: 503 after {:?}",
            asked.elapsed()
        );
        let v = json_of(r).await;
        assert!(
            v["message"].as_str().is_some_and(|m| m.contains(&hp)),
            "{path}: {v}"
        );
    }
    let r = s
        .request(Method::GET, "/ping")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.text().await.expect("body"), "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_leader_a_standby_answers_locally_or_503_in_each_apis_shape() {
    let s = standby(None).await;
    let get = |path: &str| s.request(Method::GET, path).send();
    let ping = get("/ping").await.expect("answers");
    assert_eq!(ping.status(), StatusCode::OK);
    assert_eq!(ping.text().await.expect("body"), "pong");
    let ping = s
        .request(Method::GET, "/ping")
        .header("accept", "application/json")
        .send()
        .await
        .expect("answers");
    assert_eq!(ping.text().await.expect("body"), "\"pong\"");
    assert_eq!(get("/health").await.expect("answers").status(), 200);
    let v = json_of(get("/version").await.expect("answers")).await;
    assert!(v["version"].is_string(), "{v}");
    let leader = get("/v2/leader").await.expect("answers");
    assert_eq!(leader.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json_of(leader).await,
        json!({"message": "There is no leader"})
    );

    let apps = get("/v2/apps").await.expect("answers");
    assert_eq!(apps.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v = json_of(apps).await;
    let m = v["message"].as_str().unwrap_or_default();
    assert!(m.contains("no leader is known yet"), "{v}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");

    let jobs = get("/scheduler/jobs").await.expect("answers");
    assert_eq!(jobs.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&jobs, "access-control-allow-origin"), "*");
    let v = json_of(jobs).await;
    assert_eq!(v["status"], "Service Unavailable");
    assert!(v["message"]
        .as_str()
        .is_some_and(|m| m.contains("no leader")));

    for path in ["/master/state", "/master/redirect", "/api/v1/scheduler"] {
        let r = get(path).await.expect("answers");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(
            header(&r, "content-type").starts_with("text/plain"),
            "{path}"
        );
        let t = r.text().await.expect("body");
        assert!(t.contains("no leader is known yet"), "{path}: {t}");
    }

    // The agents' link is Gantry's own: Marathon's shape, as the leader's guard shapes it.
    let r = get("/agent/v1/connect").await.expect("answers");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(json_of(r).await["message"].is_string());

    // A leader appears: the same standby now redirects to it.
    s.leader.send_replace(Some(info("leader", 5050)));
    let r = get("/master/state").await.expect("answers");
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&r, "location"), "http://127.0.0.1:5050/master/state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_reaches_an_https_leader_with_the_masters_ca() {
    let ca = TestCa::new("gantry-test-masters");
    let mut c = Cluster::unstarted();
    let (cert, key) = ca.server_cert(c.dir.path(), "master");
    c.add_master_flags(&[
        std::path::Path::new("--tls-cert-file"),
        &cert,
        std::path::Path::new("--tls-key-file"),
        &key,
    ]);
    c.use_https(&ca.pem());
    c.start_master();
    leader_up(&c).await;
    let mut leader = info("leader", c.port);
    leader.scheme = "https".into();

    // The default client does not trust a private CA: a 503 that says why, not a hang.
    let s = standby(Some(leader.clone())).await;
    let r = s
        .request(Method::GET, "/v2/apps")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    let client = gantry_masterd::ha::proxy::client(Some(ca.pem().as_bytes())).expect("a client");
    let s = standby_with(Some(leader), Some(client)).await;
    let r = s
        .request(Method::GET, "/v2/apps")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "x-marathon-leader"), c.url());
    assert!(c.url().starts_with("https://"));
    assert_eq!(json_of(r).await, json!({"apps": []}));
    let r = s
        .request(Method::GET, "/master/state")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&r, "location"), format!("{}/master/state", c.url()));
}
