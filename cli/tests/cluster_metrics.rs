//! `GET /metrics` on a real gantry-masterd with a real agent and a running task: the answer is
//! Prometheus text (every line a comment or `name{labels} value`), it shows the agent and the
//! task, it needs credentials like every GET, and `/metrics/snapshot` keeps its Mesos names.

mod support;

use serde_json::json;
use std::collections::BTreeSet;
use support::Cluster;

const AGENT: &str = "cpus:1;mem:512;disk:1000;ports:[31000-31099]";

/// One sample: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses one sample line of the text format, or says why it is not one.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .ok_or("no value")?;
    let name = &line[..name_end];
    let first = name.chars().next().ok_or("empty name")?;
    if first.is_ascii_digit() {
        return Err("name starts with a digit".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let mut key = String::new();
        loop {
            let (i, ch) = chars.next().ok_or("unterminated labels")?;
            match ch {
                '}' if key.is_empty() => {
                    rest = &r[i + 1..];
                    break;
                }
                '=' => {
                    if chars.next().map(|c| c.1) != Some('"') {
                        return Err("label value not quoted".into());
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next().ok_or("unterminated label value")?.1 {
                            '\\' => match chars.next().ok_or("dangling escape")?.1 {
                                'n' => value.push('\n'),
                                c @ ('\\' | '"') => value.push(c),
                                c => return Err(format!("bad escape \\{c}")),
                            },
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Err(format!("bad label name {key:?}"));
                    }
                    labels.push((std::mem::take(&mut key), value));
                    match chars.peek().map(|c| c.1) {
                        Some(',') => {
                            chars.next();
                        }
                        Some('}') => {}
                        _ => return Err("expected , or }".into()),
                    }
                }
                c => key.push(c),
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let v = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|e| format!("value {v:?}: {e}"))?,
    };
    Ok((name.to_string(), labels, v))
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.2)
}

#[test]
fn the_sample_parser_refuses_what_prometheus_refuses() {
    assert!(parse_sample("a_b{x=\"1\",y=\"q\\\"\"} 2.5").is_ok());
    assert!(parse_sample("up 1").is_ok());
    assert!(parse_sample("up").is_err());
    assert!(parse_sample("1up 1").is_err());
    assert!(parse_sample("up{x=1} 1").is_err());
    assert!(parse_sample("up{x=\"1\"} one").is_err());
    assert!(parse_sample("up{x=\"1\" 1").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_and_show_the_agent_and_the_running_task() {
    let mut c = Cluster::new();
    c.start_agent(0, AGENT);
    c.wait_agents(1).await;
    let app = json!({"id": "/sleepy", "cmd": c.sleeper_cmd(), "env": c.marker_env(),
                     "instances": 1, "cpus": 0.25, "mem": 64});
    let (status, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(status, 201, "{body}");
    c.wait_running("sleepy", 1).await;

    let http = reqwest::Client::new();
    let anon = http
        .get(format!("{}/metrics", c.url()))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(anon.status().as_u16(), 401, "/metrics needs credentials");

    let r = c
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(r.status().as_u16(), 200);
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = r.text().await.expect("body");
    let mut samples = Vec::new();
    let mut typed = BTreeSet::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            let mut w = c.split(' ');
            let (kind, name) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            assert!(kind == "HELP" || kind == "TYPE", "comment {line:?}");
            if kind == "TYPE" {
                let t = w.next().unwrap_or("");
                assert!(["counter", "gauge", "histogram"].contains(&t), "{line:?}");
                assert!(typed.insert(name.to_string()), "TYPE twice for {name}");
            }
            continue;
        }
        let s = parse_sample(line).unwrap_or_else(|e| panic!("{line:?} is not a sample: {e}"));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| s.0.strip_suffix(suffix).filter(|f| typed.contains(*f)))
            .unwrap_or(&s.0)
            .to_string();
        assert!(typed.contains(&family), "{} has no TYPE before it", s.0);
        samples.push(s);
    }
    let agent_id = c.get("/master/slaves").await["slaves"][0]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!agent_id.is_empty());
    let expect = |name: &str, labels: &[(&str, &str)], want: f64| {
        let got = value(&samples, name, labels);
        assert_eq!(got, Some(want), "{name}{labels:?} in\n{text}");
    };
    expect("gantry_agents", &[("state", "active")], 1.0);
    expect("gantry_agents", &[("state", "unreachable")], 0.0);
    expect("gantry_agents_connected", &[], 1.0);
    expect("gantry_agent_registrations_total", &[], 1.0);
    expect("gantry_tasks", &[("state", "TASK_RUNNING")], 1.0);
    expect("gantry_tasks", &[("state", "TASK_STAGING")], 0.0);
    expect("gantry_apps", &[], 1.0);
    expect("gantry_app_instances_waiting", &[], 0.0);
    expect("gantry_resources_total", &[("resource", "cpus")], 1.0);
    expect("gantry_resources_used", &[("resource", "cpus")], 0.25);
    let gpu_labels = [("agent", agent_id.as_str()), ("health", "healthy")];
    let healthy = samples.iter().find(|(n, l, _)| {
        n == "gantry_gpus"
            && gpu_labels
                .iter()
                .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
    });
    assert_eq!(
        healthy.map(|s| s.2),
        Some(0.0),
        "the agent has no GPUs: {text}"
    );
    let at_least = |name: &str, labels: &[(&str, &str)], min: f64| {
        let got = value(&samples, name, labels).unwrap_or(-1.0);
        assert!(got >= min, "{name}{labels:?} = {got}, want >= {min}");
    };
    at_least("gantry_tasks_launched_total", &[], 1.0);
    at_least("gantry_status_updates_total", &[("kind", "valid")], 1.0);
    at_least("gantry_store_apply_seconds_count", &[], 1.0);
    at_least("gantry_http_responses_total", &[("code", "4xx")], 1.0);
    at_least("gantry_http_responses_total", &[("code", "2xx")], 1.0);
    let count = value(&samples, "gantry_store_apply_seconds_count", &[]);
    let inf = value(
        &samples,
        "gantry_store_apply_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(count, inf, "the +Inf bucket holds every observation");

    // The Mesos snapshot keeps exactly its names.
    let snap = c.get("/metrics/snapshot").await;
    let keys: BTreeSet<&str> = snap
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut want: BTreeSet<String> = [
        "master/elected",
        "master/uptime_secs",
        "master/slaves_active",
        "master/slaves_inactive",
        "master/slaves_unreachable",
        "master/slaves_connected",
        "master/slaves_disconnected",
        "master/frameworks_active",
        "master/frameworks_connected",
        "master/slave_registrations",
        "master/slave_reregistrations",
        "master/slave_unreachable_completed",
        "master/valid_status_updates",
        "master/invalid_status_updates",
        "master/duplicate_status_updates",
        "master/messages_launch_tasks",
        "master/outstanding_offers",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for r in ["cpus", "mem", "disk", "gpus"] {
        for k in ["total", "used", "percent"] {
            want.insert(format!("master/{r}_{k}"));
        }
    }
    for s in [
        "staging",
        "starting",
        "running",
        "killing",
        "finished",
        "failed",
        "killed",
        "error",
        "lost",
        "dropped",
        "unreachable",
        "gone",
        "gone_by_operator",
        "unknown",
    ] {
        want.insert(format!("master/tasks_{s}"));
    }
    let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
    assert_eq!(keys, want);
    assert_eq!(snap["master/tasks_running"], 1.0);
    assert_eq!(snap["master/slaves_active"], 1.0);
}
