//! Generated requests thrown at a real gantry-masterd (issue 15): mutated app definitions, raw
//! garbage bodies, mutated group trees, every method on real and made-up paths of every API
//! (apps, groups, jobs, frameworks, Mesos, Gantry's own), odd Content-Types and credentials. After
//! every batch: no answer was 5xx, the apps the master lists are exactly those it answered 201
//! for (nothing stored on a 4xx, nothing acknowledged lost), and it still answers. Group calls
//! go to paths under `/fuzz-groups`, whose apps are left out of that count: a group call may
//! rightly change many apps at once. 5,000 requests a run by
//! default; `GANTRY_FUZZ_REQUESTS` and `GANTRY_FUZZ_SEED` (printed) change or replay a run.

mod support;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::{eventually, Cluster};

const PRINCIPALS: &str = r#"
[[principal]]
name = "fuzzer"
tokens = ["fuzzer-token-0001"]
permissions = ["admin"]
rate_limit = 1000000.0

[[principal]]
name = "reader"
tokens = ["reader-token-0001"]
permissions = ["read"]
rate_limit = 1000000.0
"#;

/// Valid apps to start mutating from (shapes of the seed and the spec's examples).
fn templates() -> Vec<Value> {
    vec![
        json!({"cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 1}),
        json!({"cmd": "python3 -m http.server $PORT0", "instances": 2, "cpus": 0.1, "mem": 64,
               "portDefinitions": [{"port": 0, "name": "http"}],
               "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0}]}),
        json!({"instances": 1, "cpus": 0.25, "mem": 64, "container": {"type": "DOCKER",
               "docker": {"image": "nginx:1.11", "network": "BRIDGE",
               "portMappings": [{"containerPort": 80, "hostPort": 0}]}}}),
        json!({"args": ["/bin/echo", "hi"], "env": {"A": "b"}, "labels": {"HAPROXY_GROUP": "ext"},
               "constraints": [["hostname", "UNIQUE"]], "fetch": [{"uri": "http://127.0.0.1:1/x.tgz"}],
               "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2}}),
        json!({"cmd": "sleep 1", "gpus": 1, "numaPolicy": "require", "cpus": 1, "mem": 128,
               "container": {"type": "MESOS"}}),
    ]
}

const KEYS: &[&str] = &[
    "id",
    "cmd",
    "args",
    "cpus",
    "mem",
    "disk",
    "gpus",
    "instances",
    "env",
    "labels",
    "ports",
    "portDefinitions",
    "container",
    "networks",
    "healthChecks",
    "constraints",
    "fetch",
    "uris",
    "user",
    "upgradeStrategy",
    "unreachableStrategy",
    "backoffFactor",
    "backoffSeconds",
    "maxLaunchDelaySeconds",
    "dependencies",
    "numaPolicy",
    "killSelection",
    "role",
    "secrets",
    "readinessChecks",
    "requirePorts",
    "taskKillGracePeriodSeconds",
    "version",
    "tty",
    "x-unknown",
];

fn random_string(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "a", "Z", "/", "//", "..", "tasks", "versions", "restart", "delay", "\u{0}", "é", "漢",
        "%2F", " ", "=", "-", "_", ".", "$PORT0", "'", "\"", "\\", "\n", "{", "}", "9",
    ];
    let n = match rng.random_range(0..10) {
        0 => rng.random_range(200..3000),
        _ => rng.random_range(0..8),
    };
    (0..n)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 3 { 8 } else { 11 }) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random_range(-3i64..5)),
        3 => [
            json!(1e308),
            json!(-1e308),
            json!(1e-308),
            json!(4294967296u64),
            json!(9007199254740993u64),
            json!(-0.0),
            json!(0.5),
            json!(65536),
        ][rng.random_range(0..8)]
        .clone(),
        4 => json!(i64::MIN + rng.random_range(0..3)),
        5..=7 => json!(random_string(rng)),
        8 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.random_range(0..4) {
                let k = if rng.random_bool(0.6) {
                    KEYS[rng.random_range(0..KEYS.len())].to_string()
                } else {
                    random_string(rng)
                };
                m.insert(k, random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// One generated request.
struct Generated {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
    auth: Option<&'static str>,
    /// A POST of an app to /v2/apps: its 201 must leave the app stored, anything else nothing.
    creates: bool,
}

fn generate(rng: &mut StdRng, n: usize) -> Generated {
    let auth = match rng.random_range(0..20) {
        0 => None,
        1 => Some("Bearer not-a-token"),
        2 => Some("Bearer reader-token-0001"),
        3 => Some("Basic Zm9vOmJhcg=="),
        _ => Some("Bearer fuzzer-token-0001"),
    };
    let content_type = match rng.random_range(0..12) {
        0 => None,
        1 => Some("text/plain"),
        2 => Some("application/json; charset=utf-8"),
        3 => Some("application/x-protobuf"),
        _ => Some("application/json"),
    };
    if rng.random_range(0..10) == 0 {
        // A mutated group tree, created or changed under /fuzz-groups.
        let t = templates();
        let mut apps = Vec::new();
        for i in 0..rng.random_range(0..3) {
            let mut app = t[rng.random_range(0..t.len())].clone();
            app["id"] = json!(format!("a{i}"));
            apps.push(app);
        }
        let mut group = json!({"apps": apps, "groups": [{"id": "inner", "apps": []}],
                               "dependencies": ["inner"]});
        for _ in 0..rng.random_range(0..3) {
            let k = [
                "apps",
                "groups",
                "dependencies",
                "id",
                "scaleBy",
                "version",
                "pods",
            ][rng.random_range(0..7)];
            group[k] = random_value(rng, 0);
        }
        return Generated {
            method: [Method::POST, Method::PUT][rng.random_range(0..2)].clone(),
            path: format!("/v2/groups/fuzz-groups/g{}", rng.random_range(0..4)),
            content_type,
            body: Some(serde_json::to_vec(&group).unwrap_or_default()),
            auth,
            creates: false,
        };
    }
    if rng.random_range(0..10) < 6 {
        // A mutated app definition.
        let t = templates();
        let mut app = t[rng.random_range(0..t.len())].clone();
        app["id"] = json!(format!("/fz-{n}"));
        for _ in 0..rng.random_range(0..4) {
            let k = KEYS[rng.random_range(0..KEYS.len())];
            if let Some(o) = app.as_object_mut() {
                if rng.random_bool(0.2) {
                    o.remove(k);
                } else {
                    o.insert(k.to_string(), random_value(rng, 0));
                }
            }
        }
        let mut body = serde_json::to_vec(&app).unwrap_or_default();
        if rng.random_range(0..15) == 0 {
            let cut = rng.random_range(0..body.len().max(1));
            body.truncate(cut);
        }
        return Generated {
            method: Method::POST,
            path: ["/v2/apps", "/v2/apps?force=true", "/v2/apps/"][rng.random_range(0..3)].into(),
            content_type,
            body: Some(body),
            auth,
            creates: true,
        };
    }
    const METHODS: [Method; 7] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ];
    const PATHS: &[&str] = &[
        "/v2/apps",
        "/v2/apps/del-target-1",
        "/v2/apps//del-target-2",
        "/v2/apps/del-target-3/tasks",
        "/v2/apps/del-target-4/tasks/t1",
        "/v2/apps/del-target-5/versions",
        "/v2/apps/x/restart",
        "/v2/tasks",
        "/v2/tasks/delete",
        "/v2/queue",
        "/v2/queue/x/delay",
        "/v2/groups/fuzz-groups",
        "/v2/groups/fuzz-groups/g1",
        "/v2/groups/fuzz-groups/g1/versions",
        "/v2/groups/fuzz-groups?dryRun=true",
        "/v2/groups?embed=group.apps.tasks&embed=group.groups",
        "/v2/deployments",
        "/v2/deployments/d",
        "/v2/info",
        "/v2/leader",
        "/v2/events",
        "/ping",
        "/metrics",
        "/master/state",
        "/state.json",
        "/master/slaves",
        "/metrics/snapshot",
        "/version",
        "/health",
        "/scheduler/jobs",
        "/scheduler/iso8601",
        "/scheduler/dependency",
        "/v1/scheduler/job/j",
        "/v1/scheduler/graph/dot",
        "/api/v1/scheduler",
        "/api/v1/executor",
        "/gantry/v1/audit",
        "/gantry/v1/audit?since=x",
        "/agent/v1/connect",
        "/",
        "/%ff%fe",
        "/v2/apps?embed=apps.tasks&embed=apps.waiting",
    ];
    let mut path = PATHS[rng.random_range(0..PATHS.len())].to_string();
    if rng.random_range(0..5) == 0 {
        let junk: String = random_string(rng)
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect();
        path.push_str(&format!("/{junk}"));
    }
    let body = match rng.random_range(0..6) {
        0 => None,
        1 => Some(
            (0..rng.random_range(0..600))
                .map(|_| rng.random::<u8>())
                .collect(),
        ),
        2 => Some(format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes()),
        3 => Some(b"1e999999".to_vec()),
        _ => Some(serde_json::to_vec(&random_value(rng, 0)).unwrap_or_default()),
    };
    Generated {
        method: METHODS[rng.random_range(0..METHODS.len())].clone(),
        path,
        content_type,
        body,
        auth,
        creates: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_never_5xx_never_store_a_refusal_and_keep_the_master_alive() {
    let total: usize = std::env::var("GANTRY_FUZZ_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let seed: u64 = std::env::var("GANTRY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("fuzz: seed {seed} (GANTRY_FUZZ_SEED={seed} replays this run)");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("principals.toml");
    std::fs::write(&file, PRINCIPALS).expect("principals");
    let c = Cluster::with_master_flags(&["--principals-file", file.to_str().expect("utf-8")]);
    eventually(Duration::from_secs(20), "the master to answer", || async {
        c.try_get("/version").await.map(|_| ())
    })
    .await;

    let http = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut server_errors: Vec<String> = Vec::new();
    let mut wrongly_stored = 0usize;
    let started = Instant::now();
    let mut n = 0usize;
    while n < total {
        let mut acknowledged: BTreeSet<String> = BTreeSet::new();
        for _ in 0..500.min(total - n) {
            let g = generate(&mut rng, n);
            n += 1;
            let url = format!("{}{}", c.url(), g.path);
            let mut rb = http.request(g.method.clone(), &url);
            if let Some(a) = g.auth {
                rb = rb.header("authorization", a);
            }
            if let Some(ct) = g.content_type {
                rb = rb.header("content-type", ct);
            }
            if let Some(b) = g.body.clone() {
                rb = rb.body(b);
            }
            let r = rb
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("request {n} ({} {}) got no answer: {e}", g.method, g.path)
                });
            let status = r.status().as_u16();
            *statuses.entry(status).or_default() += 1;
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status >= 500 && server_errors.len() < 10 {
                server_errors.push(format!("{status} for {} {}: {body}", g.method, g.path));
            } else if status >= 500 {
                server_errors.push(String::new());
            }
            if g.creates && status == 201 {
                if let Some(id) = body["id"].as_str() {
                    acknowledged.insert(id.to_string());
                }
            }
        }
        // Alive, and exactly the acknowledged apps are stored.
        let apps = c.get("/v2/apps").await;
        let stored: BTreeSet<String> = apps["apps"]
            .as_array()
            .unwrap_or_else(|| panic!("the master answers after {n} requests: {apps}"))
            .iter()
            .filter_map(|a| a["id"].as_str().map(String::from))
            .filter(|id| !id.starts_with("/fuzz-groups/"))
            .collect();
        wrongly_stored += stored.symmetric_difference(&acknowledged).count();
        assert_eq!(
            stored, acknowledged,
            "stored apps differ from the 201s (seed {seed}, after {n} requests)"
        );
        for id in stored {
            let r = c
                .request(Method::DELETE, &format!("/v2/apps{id}"))
                .send()
                .await
                .expect("DELETE");
            assert_eq!(r.status().as_u16(), 200, "cleanup of {id}");
        }
        let r = c
            .request(Method::DELETE, "/v2/groups/fuzz-groups?force=true")
            .send()
            .await
            .expect("DELETE");
        assert!(
            [200, 404].contains(&r.status().as_u16()),
            "cleanup of /fuzz-groups: {}",
            r.status()
        );
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz: {n} requests in {secs:.1} s ({:.0}/s), {} answers >= 500, {wrongly_stored} wrongly stored; statuses {statuses:?}",
        n as f64 / secs,
        server_errors.len()
    );
    assert!(
        server_errors.is_empty(),
        "answers >= 500 (seed {seed}): {:?}",
        server_errors
            .iter()
            .filter(|e| !e.is_empty())
            .collect::<Vec<_>>()
    );
}
