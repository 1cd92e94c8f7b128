//! Whole-cluster tests of `gantry lb` with Debian's `haproxy` on loopback: requests to a service
//! port are spread over the app's healthy instances; an instance failing its health check stops
//! getting traffic; a rolling upgrade of 4 instances under a steady request loop fails no
//! request; `HAPROXY_GROUP` separates two load balancers; virtual hosts route by Host header over
//! HTTP and HTTPS; with its master stopped (and one of its masters never answering) HAProxy keeps
//! serving. And `/v2/apps?embed=apps.tasks` holds every field marathon-lb reads (spec §4.4).

mod lb;
mod support;

use lb::{answers, client, get_id, http_app, wait_answers, wait_healthy, Lb};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{eventually, free_port, Cluster};

/// An agent offering CPUs, memory and 40 host ports from a free spot of loopback.
fn agent() -> String {
    let base = free_port().min(65_000);
    format!("cpus:4;mem:2048;disk:100;ports:[{base}-{}]", base + 40)
}

async fn cluster() -> Cluster {
    let mut c = Cluster::unstarted();
    c.tolerate_missed_heartbeats(40);
    c.start_master();
    c.start_agent(0, &agent());
    c.wait_agents(1).await;
    c
}

async fn deploy(c: &Cluster, app: &Value) {
    let (s, b) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(s, 201, "{b}");
}

async fn put(c: &Cluster, path: &str, body: &Value) -> (u16, Value) {
    let r = c
        .request(Method::PUT, path)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("PUT reaches the master");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn external() -> Value {
    json!({"HAPROXY_GROUP": "external"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_spread_over_the_healthy_instances() {
    let c = cluster().await;
    let port = free_port();
    deploy(&c, &http_app(&c, "/web", 3, port, external())).await;
    let lb = Lb::start(&c, "ext", &[c.url()], &[]);
    let ids = wait_healthy(&c, "web", 3).await;
    let http = client();
    wait_answers(&lb, &http, port, None, &ids).await;
    // Round robin: 30 requests reach each instance (and nothing else answers).
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..30 {
        let id = get_id(&http, port, None).await.expect("an answer");
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), ids, "{seen:?}");
    assert!(seen.values().all(|&n| n >= 5), "spread: {seen:?}");
    let cfg = lb.config();
    assert!(cfg.contains("option httpchk GET /ok"), "{cfg}");
    assert_eq!(lb.status()["rejectedConfigs"], 0, "{}", lb.debug());
    // It follows the master's /v2/events, not a poll.
    eventually(
        Duration::from_secs(20),
        "the lb on the event stream",
        || async { (lb.status()["eventDriven"] == true).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_failing_its_health_check_stops_getting_traffic() {
    let c = cluster().await;
    let port = free_port();
    deploy(&c, &http_app(&c, "/web", 2, port, external())).await;
    let lb = Lb::start(&c, "ext", &[c.url()], &[]);
    let ids = wait_healthy(&c, "web", 2).await;
    let http = client();
    wait_answers(&lb, &http, port, None, &ids).await;
    // The first task's page goes: its check fails (never killed: maxConsecutiveFailures 0).
    std::fs::remove_file(c.sandbox(0, &ids[0]).join("www/ok")).expect("remove the page");
    let rest = vec![ids[1].clone()];
    eventually(Duration::from_secs(30), "the check to fail", || async {
        let t = c.tasks("web").await;
        t.iter()
            .any(|t| t["id"] == ids[0].as_str() && t["healthCheckResults"][0]["alive"] == false)
            .then_some(())
    })
    .await;
    wait_answers(&lb, &http, port, None, &rest).await;
    assert_eq!(answers(&http, port, None, 20).await, rest);
    let failing = c.tasks("web").await;
    let port0 = failing
        .iter()
        .find(|t| t["id"] == ids[0].as_str())
        .and_then(|t| t["ports"][0].as_u64())
        .expect("the failing task's port");
    // HAProxy's own check may take it out first; the lb's config follows the master.
    let gone = format!("127.0.0.1:{port0}");
    eventually(
        Duration::from_secs(40),
        "the failing task out of the config",
        || async { (!lb.config().contains(&gone)).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_of_four_instances_fails_no_request() {
    let c = cluster().await;
    let port = free_port();
    let mut app = http_app(&c, "/roll", 4, port, external());
    deploy(&c, &app).await;
    let lb = Lb::start(&c, "ext", &[c.url()], &[]);
    let old = wait_healthy(&c, "roll", 4).await;
    let http = client();
    wait_answers(&lb, &http, port, None, &old).await;

    // A steady loop of requests, each on a new connection, for the whole upgrade.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(std::collections::BTreeSet::<String>::new()));
    let load = {
        let (stop, ok, failures, seen, http) = (
            stop.clone(),
            ok.clone(),
            failures.clone(),
            seen.clone(),
            http.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match get_id(&http, port, None).await {
                    Ok(id) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        seen.lock().expect("lock").insert(id);
                    }
                    Err(e) => failures.lock().expect("lock").push(e),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    app["env"]["VERSION"] = json!("2");
    let (s, b) = put(&c, "/v2/apps/roll", &app).await;
    assert_eq!(s, 200, "{b}");
    let new = eventually(
        Duration::from_secs(120),
        "4 new healthy tasks, the old gone",
        || async {
            let ids = lb::healthy_ids(&c, "roll").await;
            let all = c.tasks("roll").await;
            let done = c.get("/v2/apps/roll").await["app"]["deployments"]
                .as_array()
                .is_some_and(|d| d.is_empty());
            (done && all.len() == 4 && ids.len() == 4 && ids.iter().all(|i| !old.contains(i)))
                .then_some(ids)
        },
    )
    .await;
    wait_answers(&lb, &http, port, None, &new).await;
    // And a while after the last reload (old workers finishing).
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.expect("the request loop");
    let failures = failures.lock().expect("lock").clone();
    let served = ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the upgrade: {:?}\n{}",
        failures.len(),
        served + failures.len(),
        &failures[..failures.len().min(10)],
        lb.debug()
    );
    assert!(served > 20, "the loop ran: {served} requests");
    let seen = seen.lock().expect("lock").clone();
    assert!(
        old.iter().chain(&new).all(|i| seen.contains(i)) || seen.len() >= 6,
        "old and new instances both served: {seen:?}"
    );
    assert!(
        lb.status()["reloads"].as_u64().unwrap_or(0) >= 1,
        "{}",
        lb.debug()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_group_separates_two_load_balancers() {
    let c = cluster().await;
    let (pe, pi) = (free_port(), free_port());
    deploy(&c, &http_app(&c, "/public", 1, pe, external())).await;
    deploy(
        &c,
        &http_app(&c, "/private", 1, pi, json!({"HAPROXY_GROUP": "internal"})),
    )
    .await;
    let ext = Lb::start(&c, "ext", &[c.url()], &[]);
    let int = Lb::start(&c, "int", &[c.url()], &["--group", "internal"]);
    let public = wait_healthy(&c, "public", 1).await;
    let private = wait_healthy(&c, "private", 1).await;
    let http = client();
    wait_answers(&ext, &http, pe, None, &public).await;
    wait_answers(&int, &http, pi, None, &private).await;
    let (e, i) = (ext.config(), int.config());
    assert!(
        e.contains("backend public_") && !e.contains("private"),
        "{e}"
    );
    assert!(
        i.contains("backend private_") && !i.contains("public"),
        "{i}"
    );
    assert_eq!(ext.status()["services"], 1);
    assert_eq!(int.status()["services"], 1);
    // --dry-run prints what a load balancer of a group would serve, touching nothing.
    let out = c
        .cli()
        .args([
            "lb",
            "--dry-run",
            "--group",
            "internal",
            "--bind-address",
            "127.0.0.1",
        ])
        .output()
        .expect("gantry lb --dry-run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("frontend private_{pi}\n  bind 127.0.0.1:{pi}")),
        "{text}"
    );
    assert!(!text.contains("public"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosts_route_by_host_header_over_http_and_https() {
    let c = cluster().await;
    let certs = c.dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("cert dir");
    let cert = rcgen::generate_simple_self_signed(vec![
        "shop.example.test".to_string(),
        "blog.example.test".to_string(),
    ])
    .expect("a certificate");
    std::fs::write(
        certs.join("example.pem"),
        cert.cert.pem() + &cert.key_pair.serialize_pem(),
    )
    .expect("write the certificate");
    let shop = http_app(
        &c,
        "/shop",
        1,
        free_port(),
        json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.test",
               "HAPROXY_0_STICKY": "true", "HAPROXY_0_USE_HSTS": "true"}),
    );
    let blog = http_app(
        &c,
        "/blog",
        1,
        free_port(),
        json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "blog.example.test,www.blog.example.test",
               "HAPROXY_0_BALANCE": "leastconn", "HAPROXY_0_MODE": "http"}),
    );
    deploy(&c, &shop).await;
    deploy(&c, &blog).await;
    let certs_flag = certs.to_string_lossy().into_owned();
    let lb = Lb::start(&c, "ext", &[c.url()], &["--ssl-certs", &certs_flag]);
    let shop_id = wait_healthy(&c, "shop", 1).await;
    let blog_id = wait_healthy(&c, "blog", 1).await;
    let http = client();
    wait_answers(
        &lb,
        &http,
        lb.http_port,
        Some("shop.example.test"),
        &shop_id,
    )
    .await;
    wait_answers(
        &lb,
        &http,
        lb.http_port,
        Some("www.blog.example.test:8080"),
        &blog_id,
    )
    .await;
    assert_eq!(
        answers(&http, lb.http_port, Some("BLOG.example.test"), 4).await,
        blog_id
    );
    let unknown = get_id(&http, lb.http_port, Some("other.example.test")).await;
    assert!(
        unknown.as_ref().is_err_and(|e| e.contains("503")),
        "{unknown:?}"
    );

    // HTTPS: the certificate from --ssl-certs, the same routing.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], lb.https_port));
    let https = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("shop.example.test", addr)
        .resolve("blog.example.test", addr)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTPS client");
    for (host, want) in [("shop", &shop_id), ("blog", &blog_id)] {
        let url = format!("https://{host}.example.test:{}/id", lb.https_port);
        let r = https
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e:?}\n{}", lb.debug()));
        assert_eq!(r.status(), 200, "{url}");
        if host == "shop" {
            assert!(
                r.headers().contains_key("strict-transport-security"),
                "{:?}",
                r.headers()
            );
            assert!(
                r.headers()["set-cookie"]
                    .to_str()
                    .unwrap_or_default()
                    .starts_with("mesosphere_server_id="),
                "sticky: {:?}",
                r.headers()
            );
        }
        assert_eq!(r.text().await.unwrap_or_default().trim(), want[0], "{url}");
    }
    assert_eq!(lb.status()["rejectedConfigs"], 0, "{}", lb.debug());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_keeps_serving_while_no_master_answers() {
    let mut c = cluster().await;
    let port = free_port();
    deploy(&c, &http_app(&c, "/web", 2, port, external())).await;
    // The first master never answers: the lb follows the one that does.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let lb = Lb::start(&c, "ext", &[dead, c.url()], &[]);
    let ids = wait_healthy(&c, "web", 2).await;
    let http = client();
    wait_answers(&lb, &http, port, None, &ids).await;
    assert_eq!(lb.status()["master"], c.url().as_str(), "{}", lb.debug());

    c.kill_master();
    eventually(Duration::from_secs(20), "the lb to notice", || async {
        (lb.status()["masterAnswers"] == false).then_some(())
    })
    .await;
    // Every request is still answered by one of the app's tasks.
    for _ in 0..10 {
        let got = answers(&http, port, None, 4).await;
        assert!(
            got.iter().all(|id| ids.contains(id)),
            "{got:?}\n{}",
            lb.debug()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_answers(&lb, &http, port, None, &ids).await;
    assert!(!lb.haproxy_pids().is_empty());

    // The master is back: the lb follows it again (and a new instance is served).
    c.start_master();
    c.wait_agents(1).await;
    let (s, b) = put(&c, "/v2/apps/web", &json!({"instances": 3})).await;
    assert_eq!(s, 200, "{b}");
    let three = wait_healthy(&c, "web", 3).await;
    wait_answers(&lb, &http, port, None, &three).await;
    assert_eq!(lb.status()["masterAnswers"], true);
}

/// Every field marathon-lb reads from `GET /v2/apps?embed=apps.tasks` (spec §4.4), field by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_apps_embed_tasks_holds_every_field_marathon_lb_reads() {
    let c = cluster().await;
    let port = free_port();
    deploy(&c, &http_app(&c, "/web", 2, port, external())).await;
    let plain = json!({"id": "/plain", "cmd": "sleep 3600", "cpus": 0.05, "mem": 16,
                       "env": c.marker_env()});
    deploy(&c, &plain).await;
    wait_healthy(&c, "web", 2).await;
    c.wait_running("plain", 1).await;
    let v = c.get("/v2/apps?embed=apps.tasks").await;
    let apps = v["apps"].as_array().expect("apps");
    let web = apps.iter().find(|a| a["id"] == "/web").expect("/web");
    let plain = apps.iter().find(|a| a["id"] == "/plain").expect("/plain");
    // Per app: id, labels (indexed directly, so present even when empty), tasks, instances,
    // deployments, versionInfo.lastScalingAt, health checks with every default, ports, networks.
    assert_eq!(web["labels"]["HAPROXY_GROUP"], "external");
    assert!(
        plain["labels"].is_object(),
        "labels always present: {plain}"
    );
    assert_eq!(web["instances"], 2);
    assert!(web["deployments"].is_array() && plain["deployments"].is_array());
    assert!(web["versionInfo"]["lastScalingAt"].is_string(), "{web}");
    assert!(
        web["versionInfo"]["lastConfigChangeAt"].is_string(),
        "{web}"
    );
    let hc = &web["healthChecks"][0];
    assert_eq!(hc["protocol"], "HTTP");
    assert_eq!(hc["portIndex"], 0);
    assert_eq!(hc["path"], "/ok");
    for k in [
        "timeoutSeconds",
        "intervalSeconds",
        "gracePeriodSeconds",
        "maxConsecutiveFailures",
    ] {
        assert!(hc[k].is_u64(), "healthChecks[0].{k}: {hc}");
    }
    assert_eq!(web["portDefinitions"][0]["port"], port);
    assert!(
        plain["portDefinitions"][0]["port"]
            .as_u64()
            .is_some_and(|p| (10000..=20000).contains(&p)),
        "{plain}"
    );
    assert_eq!(web["networks"][0]["mode"], "host");
    // Per task: id, host, state, ports, ipAddresses[0].ipAddress, healthCheckResults[*].alive.
    let tasks = web["tasks"].as_array().expect("tasks embedded");
    assert_eq!(tasks.len(), 2);
    for t in tasks {
        assert!(
            t["id"].as_str().is_some_and(|i| i.starts_with("web.")),
            "{t}"
        );
        assert_eq!(t["host"], "127.0.0.1");
        assert_eq!(t["state"], "TASK_RUNNING");
        assert!(t["ports"][0].as_u64().is_some_and(|p| p > 0), "{t}");
        assert_eq!(t["ipAddresses"][0]["ipAddress"], "127.0.0.1");
        assert_eq!(t["healthCheckResults"][0]["alive"], true, "{t}");
        assert_eq!(t["appId"], "/web");
    }
    assert!(
        plain["tasks"][0]["healthCheckResults"].is_array(),
        "{plain}"
    );
    // marathon-lb's other reads: /v2/apps/{id} embeds tasks by default, /v2/tasks wraps a list.
    let one = c.get("/v2/apps/web").await;
    assert_eq!(
        one["app"]["tasks"].as_array().map(Vec::len),
        Some(2),
        "{one}"
    );
    let all = c.get("/v2/tasks").await;
    assert!(
        all["tasks"].as_array().is_some_and(|t| t.len() == 3),
        "{all}"
    );
}
