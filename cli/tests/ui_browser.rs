//! The web UI in a real browser (Debian's chromium through chromium-driver) against a real
//! cluster: a master and an agent on the DGX-2 fixtures. Every page loads with no script error
//! and no failed resource; an app created from the form reaches "1 of 1" live, without a reload,
//! is scaled and destroyed; a validation error shows next to its field; a job submitted from the
//! form runs now, shows SUCCESS and its output; the agent's page shows 16 GPUs on 2 NUMA nodes
//! with the task holding each; a master restart is announced and recovered from. Screenshots of
//! each page go to `$GANTRY_UI_SCREENSHOTS` (the README's are `docs/ui/`), else the test's dir.

#[path = "ui/browser.rs"]
mod browser;
mod support;

use browser::Browser;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use support::{Cluster, CREDENTIALS};

const AGENT: &str = "cpus:8;mem:16384;disk:2000;ports:[31000-31099]";
const WAIT: Duration = Duration::from_secs(40);

fn dgx2_cluster() -> Cluster {
    let mut c = Cluster::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let gpus = root.join("../gpu/fixtures/dgx2-16gpu.json");
    let xml = root.join("../../shared/fixtures/hwloc/nvidia-dgx2-16gpu.xml");
    assert!(
        xml.is_file(),
        "{} is missing: this test needs ../shared/fixtures beside the checkout",
        xml.display()
    );
    let token = c.token.clone();
    c.start_agent_with(
        0,
        AGENT,
        &token,
        &["--gpu-fixture", gpus.to_str().expect("utf-8")],
        &[("HWLOC_XMLFILE", xml.to_str().expect("utf-8"))],
    );
    c
}

fn shots_dir(c: &Cluster) -> PathBuf {
    std::env::var_os("GANTRY_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| c.dir.path().join("screenshots"))
}

/// Loads `path`, checks it has no errors and the heading `h1` reads, and saves a screenshot.
async fn visit(
    b: &Browser,
    c: &Cluster,
    path: &str,
    h1: &str,
    shot: Option<&str>,
) -> anyhow::Result<()> {
    b.goto(&format!("{}{path}", c.url())).await?;
    let heading = b.text("h1").await.unwrap_or_default();
    anyhow::ensure!(
        heading.contains(h1),
        "{path}: heading {heading:?}, wanted {h1:?}"
    );
    let errors = b.page_errors().await?;
    anyhow::ensure!(errors.is_empty(), "{path}: {errors:?}");
    if let Some(name) = shot {
        let size = b.screenshot(&shots_dir(c), name).await?;
        anyhow::ensure!(size > 10_000, "{path}: a {size}-byte screenshot is blank");
    }
    Ok(())
}

/// Marks the window so that a reload (which would clear the mark) can be told from a live update.
async fn mark(b: &Browser) -> anyhow::Result<()> {
    b.client
        .execute("window.__notReloaded = true;", vec![])
        .await?;
    Ok(())
}

async fn still_marked(b: &Browser) -> bool {
    b.client
        .execute("return window.__notReloaded === true;", vec![])
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_shows_and_drives_the_cluster_in_a_browser() -> anyhow::Result<()> {
    let mut c = dgx2_cluster();
    c.wait_agents(1).await;
    let b = Browser::start().await?;
    // Basic credentials once in the URL; the browser keeps them for the origin (the UI is behind
    // the same authentication as the APIs).
    let (user, pass) = CREDENTIALS.split_once(':').unwrap_or_default();
    b.goto(&format!("http://{user}:{pass}@127.0.0.1:{}/", c.port))
        .await?;

    // GPUs and NUMA: three 1-GPU tasks, then the agent's page shows who holds what.
    let (code, body) = c
        .post(
            "/v2/apps",
            &format!(
                r#"{{"id":"/gpu-holders","cmd":"{}","cpus":0.5,"mem":64,"gpus":1,"instances":3,"env":{}}}"#,
                c.sleeper_cmd(),
                c.marker_env()
            ),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let tasks = c.wait_running("/gpu-holders", 3).await;
    let state = c.get("/master/state").await;
    let agent_id = state["slaves"][0]["id"]
        .as_str()
        .expect("agent id")
        .to_owned();
    visit(&b, &c, "/", "Cluster", Some("cluster")).await?;
    assert!(b
        .text("#agents")
        .await
        .unwrap_or_default()
        .contains("3 / 16 held"));
    visit(
        &b,
        &c,
        &format!("/ui/agents/{agent_id}"),
        "Agent",
        Some("agent-gpus"),
    )
    .await?;
    assert_eq!(b.count(".numa[data-numa]:not([data-numa=none])").await, 2);
    assert_eq!(b.count(".gpu").await, 16);
    assert_eq!(b.count(".numa[data-numa='0'] .gpu").await, 8);
    let holders = b.text(".numa-row").await.unwrap_or_default();
    for t in &tasks {
        let id = t["id"].as_str().expect("task id");
        assert!(
            holders.contains(&format!("held by {id}")),
            "{id} not shown as a holder: {holders}"
        );
    }
    assert_eq!(b.count(".gpu.held").await, 3);

    // Services: a validation error in place, then an app from the form, live to "1 of 1".
    visit(&b, &c, "/ui/services", "Services", None).await?;
    b.click("#create-app summary").await?;
    b.fill("#app-form input[name=id]", "/ui-web").await?;
    b.fill("#app-form input[name=cmd]", &c.sleeper_cmd())
        .await?;
    // The harness finds (and cleans up) the test's task processes by this marker.
    b.fill(
        "#app-form textarea[name=json]",
        &format!(r#"{{"env":{}}}"#, c.marker_env()),
    )
    .await?;
    b.fill("#app-form input[name=cpus]", "-1").await?;
    b.click("#app-form button[type=submit]").await?;
    let err = b
        .eventually(WAIT, "the cpus error next to its field", || async {
            b.text(".err[data-for='/cpus']")
                .await
                .filter(|t| !t.is_empty())
        })
        .await?;
    assert_eq!(err, "too small (error.min)");
    assert!(c
        .try_get("/v2/apps/ui-web")
        .await
        .is_none_or(|v| v.get("app").is_none()));
    mark(&b).await?;
    b.fill("#app-form input[name=cpus]", "0.1").await?;
    b.fill("#app-form input[name=mem]", "32").await?;
    b.click("#app-form button[type=submit]").await?;
    b.eventually(WAIT, "/ui-web at 1 of 1 without a reload", || async {
        b.text("tr[data-app='/ui-web'] td.instances")
            .await
            .filter(|t| t.starts_with("1 of 1"))
    })
    .await?;
    assert!(
        still_marked(&b).await,
        "the page reloaded instead of updating live"
    );
    assert!(b
        .text(".err[data-for='/cpus']")
        .await
        .unwrap_or_default()
        .is_empty());
    b.screenshot(&shots_dir(&c), "services").await?;

    // The app's page: once its create deployment is over (the page lists it until then; a
    // scale while it runs would be refused with Marathon's 409), scale to 2, then destroy.
    visit(&b, &c, "/ui/services/ui-web", "/ui-web", None).await?;
    b.eventually(WAIT, "the create deployment off the app's page", || async {
        (b.count("tr[data-deployment]").await == 0).then_some(())
    })
    .await?;
    mark(&b).await?;
    b.fill("#scale-form input[name=instances]", "2").await?;
    b.click("#scale-form button[type=submit]").await?;
    b.eventually(WAIT, "2 of 2 on the app's page", || async {
        b.text("p.meta .instances").await.filter(|t| t == "2 of 2")
    })
    .await?;
    assert!(still_marked(&b).await);
    b.screenshot(&shots_dir(&c), "app").await?;
    b.click("#destroy-app").await?;
    b.client.accept_alert().await?;
    b.eventually(WAIT, "the services page without /ui-web", || async {
        let at = b.client.current_url().await.ok()?;
        (at.path() == "/ui/services"
            && b.count("tr[data-app='/ui-web']").await == 0
            && b.count("tr[data-app]").await == 1)
            .then_some(())
    })
    .await?;
    let v = c.get("/v2/apps").await;
    assert!(
        v["apps"]
            .as_array()
            .expect("apps")
            .iter()
            .all(|a| a["id"] != "/ui-web"),
        "{v}"
    );

    // A deployment that cannot finish (more CPUs than the agent has) is listed with its steps
    // until it is rolled back from the page, which takes the app it was creating away. The
    // destroy of /ui-web must be over first, or its one-step plan is the row read below (seen on
    // a loaded machine: "step 1 of 1").
    support::eventually(WAIT, "the destroy of /ui-web to end", || async {
        (c.get("/v2/deployments").await == json!([])).then_some(())
    })
    .await;
    let (status, _) = c
        .post(
            "/v2/apps",
            &json!({"id": "/ui-huge", "cmd": "sleep 1", "cpus": 64, "mem": 16, "env": c.marker_env()})
                .to_string(),
        )
        .await;
    assert_eq!(status, 201);
    visit(&b, &c, "/ui/services", "Services", None).await?;
    let progress = b
        .eventually(WAIT, "the deployment of /ui-huge listed", || async {
            b.text("#deployments td.progress").await
        })
        .await?;
    assert_eq!(progress, "step 2 of 2");
    assert_eq!(b.count("#deployments li.done").await, 1);
    b.click("#deployments button[data-method=DELETE]:not(.danger)")
        .await?;
    b.client.accept_alert().await?;
    b.eventually(
        WAIT,
        "no deployment and no /ui-huge after the rollback",
        || async {
            (b.count("tr[data-deployment]").await == 0
                && b.count("tr[data-app='/ui-huge']").await == 0)
                .then_some(())
        },
    )
    .await?;

    // Jobs: submit from the form, run now, see SUCCESS and the output.
    visit(&b, &c, "/ui/jobs", "Jobs", None).await?;
    b.click("#create-job summary").await?;
    b.fill("#job-form input[name=name]", "ui-hello").await?;
    b.fill("#job-form input[name=command]", "echo hello-from-the-ui")
        .await?;
    b.fill(
        "#job-form input[name=schedule]",
        "R1/2099-01-01T00:00:00Z/PT24H",
    )
    .await?;
    b.fill("#job-form input[name=owner]", "ui@example.org")
        .await?;
    b.click("#job-form button[type=submit]").await?;
    b.eventually(WAIT, "the job in the table", || async {
        b.text("tr[data-job='ui-hello']").await
    })
    .await?;
    b.click("tr[data-job='ui-hello'] button[data-method=PUT]")
        .await?;
    b.eventually(WAIT, "ui-hello to succeed", || async {
        b.text("tr[data-job='ui-hello'] [data-field=status]")
            .await
            .filter(|t| t == "success")
    })
    .await?;
    assert_eq!(b.text("[data-sum=success] b").await.as_deref(), Some("1"));
    b.screenshot(&shots_dir(&c), "jobs").await?;
    visit(&b, &c, "/ui/jobs/ui-hello", "ui-hello", Some("job")).await?;
    assert_eq!(
        b.text("#runs [data-field=exit]").await.as_deref(),
        Some("0")
    );
    b.click("#runs a[href^='/ui/tasks/']").await?;
    let out = b
        .eventually(WAIT, "the run's stdout", || async {
            b.text("section.log[data-path=stdout] pre")
                .await
                .filter(|t| t.contains("hello-from-the-ui"))
        })
        .await?;
    assert!(out.contains("hello-from-the-ui"));
    assert!(b.page_errors().await?.is_empty());
    b.screenshot(&shots_dir(&c), "task").await?;
    visit(&b, &c, "/ui/tasks", "Tasks", Some("tasks")).await?;
    visit(&b, &c, "/ui/frameworks", "Frameworks", Some("frameworks")).await?;
    anyhow::ensure!(
        b.count("tr[data-framework]").await >= 2,
        "the built-in Marathon and Chronos are listed"
    );

    // A master restart while the page is open: said, then recovered from.
    visit(&b, &c, "/ui/services", "Services", None).await?;
    c.kill_master();
    b.eventually(WAIT, "the lost-connection banner", || async {
        b.text("#conn")
            .await
            .filter(|t| t.contains("Lost the connection"))
    })
    .await?;
    c.start_master();
    b.eventually(WAIT, "the reconnected banner", || async {
        b.text("#conn").await.filter(|t| t.contains("Reconnected"))
    })
    .await?;
    let rows = b.count("tr[data-app]").await;
    assert_eq!(
        rows, 1,
        "after the restart the table still shows /gpu-holders"
    );

    let errors = b.page_errors().await?;
    assert!(errors.is_empty(), "{errors:?}");
    let json: Value = c.get("/v2/apps/gpu-holders").await;
    assert_eq!(json["app"]["instances"], 3);
    Ok(())
}
