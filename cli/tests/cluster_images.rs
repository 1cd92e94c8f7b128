//! Whole-cluster tests of images in the native containerizer (`container.type: MESOS` with
//! `docker.image`), with no Docker daemon: a loopback registry (Debian's docker-registry) holding
//! busybox-static images pushed by the test itself.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::registry::{busybox_layer, Registry};
use support::{eventually, Cluster};

const AGENT: &str = "cpus:4;mem:4096;disk:2000;ports:[31000-31099]";
const LONG: Duration = Duration::from_secs(60);

fn image_config() -> Value {
    json!({
        "Env": ["IMAGE_VAR=from-image", "PATH=/bin"],
        "WorkingDir": "/srv",
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["exec httpd -f -p $PORT0 -h /www"],
    })
}

async fn image_cluster(reg: &Registry) -> Cluster {
    let mut c = Cluster::new();
    let token = c.token.clone();
    let host = reg.host();
    c.start_agent_with(
        0,
        AGENT,
        &token,
        &[
            "--containerizer",
            "native",
            "--insecure-registries",
            &host,
            "--registry-mirror",
            &host,
        ],
        &[],
    );
    c.wait_agents(1).await;
    c
}

fn app(c: &Cluster, id: &str, image: &str, cmd: Option<&str>) -> String {
    let mut v = json!({
        "id": id,
        "instances": 1,
        "cpus": 0.1,
        "mem": 64,
        "portDefinitions": [{"port": 0}],
        "container": {"type": "MESOS", "docker": {"image": image}},
        "env": c.marker_env(),
    });
    if let Some(cmd) = cmd {
        v["cmd"] = json!(cmd);
    }
    v.to_string()
}

async fn running(c: &Cluster, id: &str) -> Value {
    eventually(LONG, &format!("{id} running"), || async {
        let t = c.tasks(id).await;
        (t.len() == 1 && t[0]["state"] == "TASK_RUNNING").then(|| t[0].clone())
    })
    .await
}

async fn failure(c: &Cluster, id: &str) -> String {
    eventually(LONG, &format!("{id} to fail"), || async {
        let f = c.get(&format!("/v2/apps/{id}")).await["app"]["lastTaskFailure"].clone();
        f["message"].as_str().map(String::from)
    })
    .await
}

fn overlay_mounts(dir: &std::path::Path) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&dir.display().to_string()))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_run_natively_from_a_loopback_registry() {
    let reg = Registry::start();
    reg.wait_ready().await;
    let layer = reg
        .push(
            "library/nginx",
            "1.11",
            busybox_layer("the image's marker"),
            image_config(),
        )
        .await;
    let c = image_cluster(&reg).await;

    // A task with a cmd: a shell command inside the image's rootfs.
    let cmd = "cat /etc/image-marker > $MESOS_SANDBOX/out; \
               if test -e /usr/bin/cargo; then echo host-visible >> $MESOS_SANDBOX/out; fi; \
               echo \"$IMAGE_VAR $MESOS_SANDBOX $(pwd)\" >> $MESOS_SANDBOX/out; \
               touch $MESOS_SANDBOX/done; exec sleep 3600";
    let image = format!("{}/library/nginx:1.11", reg.host());
    let (code, body) = c
        .post("/v2/apps", &app(&c, "incmd", &image, Some(cmd)))
        .await;
    assert_eq!(code, 201, "{body}");
    let t = eventually(LONG, "incmd running", || async {
        let t = c.tasks("incmd").await;
        let q = c.get("/v2/queue").await;
        let f = c.get("/v2/apps/incmd").await["app"]["lastTaskFailure"].clone();
        if !f.is_null() {
            panic!("incmd failed: {f}\n{q}\n{}", c.log_tails(30));
        }
        (t.len() == 1 && t[0]["state"] == "TASK_RUNNING").then(|| t[0].clone())
    })
    .await;
    let id = t["id"].as_str().expect("id").to_string();
    let sandbox = c.sandbox(0, &id);
    eventually(LONG, "the task's output", || async {
        sandbox.join("done").exists().then_some(())
    })
    .await;
    let out = std::fs::read_to_string(sandbox.join("out")).expect("out");
    assert_eq!(
        out,
        "the image's markerfrom-image /mnt/mesos/sandbox /srv\n",
        "inside the image, not the host; Env, WorkingDir and MESOS_SANDBOX applied\n{}",
        c.log_tails(40)
    );
    assert_eq!(reg.blob_gets(&layer), 1, "the layer was pulled once");

    // No cmd: the image's Entrypoint+Cmd (busybox httpd on $PORT0); the seed's short name goes
    // to the mirror. The layer is not pulled again.
    let (code, body) = c
        .post("/v2/apps", &app(&c, "web", "nginx:1.11", None))
        .await;
    assert_eq!(code, 201, "{body}");
    let t = running(&c, "web").await;
    let port = t["ports"][0].as_u64().expect("port");
    let page = eventually(LONG, "httpd to answer", || async {
        let r = reqwest::get(format!("http://127.0.0.1:{port}/index.html"))
            .await
            .ok()?;
        r.text().await.ok()
    })
    .await;
    assert_eq!(page, "served from the image\n");
    assert_eq!(
        reg.blob_gets(&layer),
        1,
        "a second task pulls no layer again"
    );

    // Bad name: refused at submit.
    let (code, body) = c
        .post("/v2/apps", &app(&c, "bad", "Bad Image!", Some("true")))
        .await;
    assert_eq!(code, 422, "{body}");

    // A missing tag and an unreachable registry: TASK_FAILED with the reason.
    let (code, _) = c
        .post(
            "/v2/apps",
            &app(
                &c,
                "notag",
                &format!("{}/nginx:nope", reg.host()),
                Some("true"),
            ),
        )
        .await;
    assert_eq!(code, 201);
    let msg = failure(&c, "notag").await;
    assert!(msg.contains("cannot pull") && msg.contains("nope"), "{msg}");
    let (code, _) = c
        .post(
            "/v2/apps",
            &app(&c, "noreg", "127.0.0.1:1/x:1", Some("true")),
        )
        .await;
    assert_eq!(code, 201);
    let msg = failure(&c, "noreg").await;
    assert!(
        msg.contains("cannot pull") && msg.contains("127.0.0.1:1"),
        "{msg}"
    );

    // A corrupted layer: the launch fails naming the digest, and nothing is cached.
    let bad = reg
        .push(
            "team/corrupt",
            "1",
            busybox_layer("another marker"),
            image_config(),
        )
        .await;
    let f = reg.blob_file(&bad);
    let mut bytes = std::fs::read(&f).expect("blob");
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&f, bytes).expect("corrupt");
    let (code, _) = c
        .post(
            "/v2/apps",
            &app(
                &c,
                "corrupt",
                &format!("{}/team/corrupt:1", reg.host()),
                Some("true"),
            ),
        )
        .await;
    assert_eq!(code, 201);
    let msg = failure(&c, "corrupt").await;
    assert!(msg.contains(&bad), "the message names the digest: {msg}");
    let hex = bad.trim_start_matches("sha256:");
    let store = c.agent_dir(0).join("images/layers");
    assert!(
        !store.join(hex).exists(),
        "the corrupted layer is not cached"
    );

    // After the tasks end: no overlay mount, rootfs dir or cgroup left.
    for a in ["incmd", "web", "notag", "noreg", "corrupt"] {
        let _ = c
            .request(reqwest::Method::DELETE, &format!("/v2/apps/{a}"))
            .send()
            .await;
    }
    let rootfs = c.agent_dir(0).join("images/rootfs");
    eventually(LONG, "rootfs dirs and cgroups to go", || async {
        let left = std::fs::read_dir(&rootfs).map(|r| r.count()).unwrap_or(0);
        let cg = std::fs::read_dir("/sys/fs/cgroup/gantry")
            .map(|r| {
                r.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.starts_with("incmd") || n.starts_with("web")
                    })
                    .count()
            })
            .unwrap_or(0);
        (left == 0 && cg == 0).then_some(())
    })
    .await;
    assert_eq!(
        overlay_mounts(&c.agent_dir(0)),
        0,
        "no mount left under the work dir"
    );
}
