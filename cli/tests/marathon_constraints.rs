//! Whole-cluster tests of app constraints (spec §2.2): UNIQUE on an attribute runs one instance
//! per value and says why the rest wait; GROUP_BY and MAX_PER spread instances over an attribute;
//! LIKE restricts an app to the matching agents. All agents share the host name 127.0.0.1 here,
//! so the multi-agent cases use a `host` attribute.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{eventually, Cluster};

/// A master and three agents: host a (rack r1), host b (rack r1), host c (rack r2).
async fn cluster() -> Cluster {
    let mut c = Cluster::unstarted();
    c.tolerate_missed_heartbeats(40);
    c.start_master();
    let token = c.token.clone();
    for (i, attrs) in ["host:a;rack:r1", "host:b;rack:r1", "host:c;rack:r2"]
        .iter()
        .enumerate()
    {
        let ports = format!(
            "cpus:2;mem:2048;disk:1000;ports:[{}-{}]",
            31000 + i * 200,
            31100 + i * 200
        );
        c.start_agent_with(i, &ports, &token, &["--attributes", attrs], &[]);
    }
    c.wait_agents(3).await;
    c
}

/// Agent id -> host attribute, from /master/slaves.
async fn hosts(c: &Cluster) -> BTreeMap<String, String> {
    let s = c.get("/master/slaves").await;
    let mut out = BTreeMap::new();
    for a in s["slaves"].as_array().cloned().unwrap_or_default() {
        let id = a["id"].as_str().unwrap_or("").to_string();
        let host = a["attributes"]["host"].as_str().unwrap_or("").to_string();
        out.insert(id, host);
    }
    out
}

/// Running instances per host attribute.
async fn per_host(c: &Cluster, app: &str, n: usize) -> BTreeMap<String, usize> {
    let tasks = c.wait_running(app, n).await;
    let hosts = hosts(c).await;
    let mut out = BTreeMap::new();
    for t in tasks {
        let agent = t["slaveId"].as_str().unwrap_or("");
        *out.entry(hosts.get(agent).cloned().unwrap_or_default())
            .or_default() += 1;
    }
    out
}

async fn create(c: &Cluster, id: &str, instances: u32, constraints: Value) {
    let app = json!({"id": id, "cmd": "sleep 3600", "cpus": 0.1, "mem": 16,
        "instances": instances, "constraints": constraints, "env": c.marker_env()});
    let (s, b) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(s, 201, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraints_place_spread_and_explain() {
    let c = cluster().await;

    // UNIQUE host, 4 instances on 3 hosts: 3 run, one waits with the reason.
    create(&c, "/uniq", 4, json!([["host", "UNIQUE"]])).await;
    c.wait_running("uniq", 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = per_host(&c, "uniq", 3).await;
    assert_eq!(
        got.values().copied().collect::<Vec<_>>(),
        [1, 1, 1],
        "{got:?}"
    );
    let reason = eventually(Duration::from_secs(10), "the waiting reason", || async {
        let q = c.get("/v2/apps/uniq?embed=app.waiting").await;
        let w = q["app"]["waiting"].clone();
        w["reason"].as_str().map(str::to_string)
    })
    .await;
    assert_eq!(
        reason,
        r#"constraint ["host","UNIQUE"] leaves no agent: 3 of 3 agents already run an instance"#
    );
    // The queue says the same, in Marathon's shape.
    let queue = c.get("/v2/queue").await;
    let item = queue["queue"]
        .as_array()
        .and_then(|q| q.iter().find(|i| i["app"]["id"] == "/uniq"))
        .cloned()
        .unwrap_or_else(|| panic!("/uniq is not queued: {queue}"));
    assert_eq!(item["count"], 1, "{item}");
    assert_eq!(
        item["processedOffersSummary"]["rejectSummaryLastOffers"][0]["reason"],
        reason.as_str(),
        "{item}"
    );
    // Real counts: 3 agents considered, all 3 turned away by the constraint.
    let summary = &item["processedOffersSummary"];
    assert_eq!(summary["processedOffersCount"], 3, "{item}");
    assert_eq!(summary["unusedOffersCount"], 3, "{item}");
    let by_constraint = summary["rejectSummaryLastOffers"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["reason"] == "UnfulfilledConstraint"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            by_constraint["processed"].clone(),
            by_constraint["declined"].clone()
        ),
        (json!(3), json!(3)),
        "{item}"
    );
    let embedded = c.get("/v2/queue?embed=lastUnusedOffers").await;
    let offers = embedded["queue"]
        .as_array()
        .and_then(|q| q.iter().find(|i| i["app"]["id"] == "/uniq"))
        .map(|i| i["lastUnusedOffers"].clone())
        .unwrap_or_default();
    assert_eq!(offers.as_array().map(Vec::len), Some(3), "{embedded}");
    assert_eq!(offers[0]["reason"], json!(["UnfulfilledConstraint"]));

    // GROUP_BY rack, 4 instances: 2 on r1 (hosts a, b), 2 on r2 (host c).
    create(&c, "/grouped", 4, json!([["rack", "GROUP_BY"]])).await;
    let got = per_host(&c, "grouped", 4).await;
    let r1 = got.get("a").copied().unwrap_or(0) + got.get("b").copied().unwrap_or(0);
    assert_eq!((r1, got.get("c").copied().unwrap_or(0)), (2, 2), "{got:?}");

    // MAX_PER host 2 and LIKE host a|b: 4 instances, 2 on a, 2 on b, none on c.
    create(
        &c,
        "/capped",
        4,
        // A number where Marathon wanted the string "2" (spec §7.8): taken.
        json!([["host", "MAX_PER", 2], ["host", "LIKE", "a|b"]]),
    )
    .await;
    let got = per_host(&c, "capped", 4).await;
    assert_eq!(got, BTreeMap::from([("a".into(), 2), ("b".into(), 2)]));
}
