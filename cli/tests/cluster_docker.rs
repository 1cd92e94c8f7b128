//! Whole-cluster tests of the Docker containerizer against a private dockerd (Debian's docker.io)
//! with images built here from busybox-static: the seed's Docker apps and its Chronos dockerjob
//! verbatim, bridge and host networks, volumes, output in the sandbox, agent `kill -9` and
//! re-adoption, `docker kill` from outside, scale-down, and what an agent refuses.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use support::docker::{DockerDaemon, ONE_DAEMON, PAGE};
use support::{eventually, Cluster};

const AGENT: &str = "cpus:4;mem:4096;disk:2000;ports:[31000-31099]";
/// Generous: a loaded 2-core machine starts containers slowly.
const LONG: Duration = Duration::from_secs(90);

/// The seed's simple-nginx (mesos-basic-concepts.txt), verbatim.
const SIMPLE_NGINX: &str = r#"{
  "id": "simple-nginx",
  "instances": 1,
  "cpus": 0.25,
  "mem": 64,
  "container": {
    "type": "DOCKER",
    "docker": {
      "image": "nginx:1.11",
      "network": "BRIDGE",
      "portMappings": [
        {
          "containerPort": 80,
          "hostPort": 0
        }
      ]
    }
  }
}"#;

/// The seed's httpi (host networking, forcePullImage), verbatim.
const HTTPI: &str = r#"{
  "id": "httpi",
  "networks": [ { "mode": "host" } ],
  "portDefinitions": [
    { "port": 0, "name": "http" } ],
  "container": {
    "type": "DOCKER",
    "docker": {
      "image": "dcoslabs/httpi:latest",
      "forcePullImage": true
    }
  },
  "instances": 1,
  "cpus": 0.1,
  "mem": 32
}"#;

/// The seed's db (redis on the bridge), verbatim.
const DB: &str = r#"{
  "id": "db",
  "instances": 1,
  "cpus": 0.1,
  "mem": 128.0,
  "disk": 0.0,
  "container": {
    "type": "DOCKER",
    "docker": {
      "image": "redis:3.0.3",
      "network": "BRIDGE",
      "portMappings": [
        { "containerPort": 6379,
          "hostPort": 0, "protocol": "tcp" }
      ]
    }
  }
}"#;

/// The seed's calico-docker (a Docker user network), verbatim.
const CALICO_DOCKER: &str = r#"{
  "id": "/calico-docker",
  "instances": 1,
  "container": {
    "type": "DOCKER",
    "volumes": [],
    "docker": {
      "image": "mesosphere/id-server:2.1.0"
    },
    "portMappings": []
  },
  "cpus": 0.1,
  "mem": 128,
  "requirePorts": false,
  "networks": [
    {
      "mode": "container",
      "name": "calico"
    }
  ],
  "healthChecks": [],
  "fetch": [],
  "constraints": []
}"#;

/// The seed's Chronos dockerjob, verbatim.
const DOCKER_JOB: &str = r#"{
  "schedule": "R/2021-06-15T17:22:00Z/PT2M",
  "name": "dockerjob",
  "container": {
    "type": "DOCKER",
    "image": "ubuntu:latest",
    "network": "BRIDGE",
    "volumes": [
      {
        "containerPath": "/var/log/",
        "hostPath": "/logs/",
        "mode": "RW"
      }
    ]
  },
  "cpus": "0.5",
  "mem": "512",
  "command": "while sleep 10; do date =u %T; done"
}"#;

/// A cluster with one agent running Docker next to the process containerizer.
async fn docker_cluster(dk: &DockerDaemon, extra: &[&str]) -> Cluster {
    let mut c = Cluster::new();
    start_docker_agent(&mut c, dk, extra);
    c.wait_agents(1).await;
    c
}

fn start_docker_agent(c: &mut Cluster, dk: &DockerDaemon, extra: &[&str]) {
    let token = c.token.clone();
    let socket = dk.socket.display().to_string();
    let mut flags = vec![
        "--containerizers",
        "process,docker",
        "--docker-socket",
        &socket,
    ];
    flags.extend_from_slice(extra);
    c.start_agent_with(0, AGENT, &token, &flags, &[]);
}

/// `doc` with the test's marker added to its `env` (the only change to a seed document).
fn marked(c: &Cluster, doc: &str) -> String {
    let mut v: Value = serde_json::from_str(doc).expect("a JSON document");
    v["env"] = c.marker_env();
    v.to_string()
}

async fn http_get(port: u64) -> Option<String> {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    r.text().await.ok()
}

fn first_port(task: &Value) -> u64 {
    task["ports"][0].as_u64().expect("the task has a host port")
}

fn task_id(task: &Value) -> String {
    task["id"].as_str().expect("task id").to_string()
}

async fn wait_running_long(c: &Cluster, app: &str, n: usize) -> Vec<Value> {
    eventually(LONG, &format!("{n} running tasks of {app}"), || async {
        let t = c.tasks(app).await;
        (t.len() == n && t.iter().all(|t| t["state"] == "TASK_RUNNING")).then_some(t)
    })
    .await
}

async fn send(c: &Cluster, m: Method, path: &str, body: Option<&str>) -> (u16, String) {
    let mut r = c.request(m, path);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = r.send().await.expect("request reaches the master");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_docker_apps_run_verbatim_and_serve_on_their_host_ports() {
    let _one = ONE_DAEMON.lock().await;
    let dk = DockerDaemon::start();
    // A Docker user network named as the seed's: the agent reports it, calico-docker joins it.
    dk.must(&["network", "create", "calico"]);
    let c = docker_cluster(&dk, &[]).await;
    assert!(
        c.read_log("agent0.log")
            .contains("containerizer: docker next to process"),
        "the agent runs Docker next to its default back end"
    );
    for doc in [SIMPLE_NGINX, HTTPI, DB, CALICO_DOCKER] {
        let (s, body) = c.post("/v2/apps", &marked(&c, doc)).await;
        assert_eq!(s, 201, "{doc}: {body}");
    }
    // simple-nginx: BRIDGE, containerPort 80 on the host port the master gave.
    let nginx = wait_running_long(&c, "simple-nginx", 1).await;
    let port = first_port(&nginx[0]);
    let page = eventually(LONG, "simple-nginx to answer", || http_get(port)).await;
    assert_eq!(page, PAGE);
    assert_eq!(dk.containers_of(&task_id(&nginx[0])).len(), 1);
    // httpi: host network, PORT_HTTP; forcePullImage with no registry runs the local copy.
    let httpi = wait_running_long(&c, "httpi", 1).await;
    let port = first_port(&httpi[0]);
    let page = eventually(LONG, "httpi to answer on PORT_HTTP", || http_get(port)).await;
    assert_eq!(page, PAGE);
    // db: the mapped port echoes what it is sent.
    let db = wait_running_long(&c, "db", 1).await;
    let port = first_port(&db[0]);
    let echoed = eventually(LONG, "db to echo", || async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port as u16))
            .await
            .ok()?;
        s.write_all(b"PING\n").await.ok()?;
        let mut buf = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf)
    })
    .await;
    assert_eq!(&echoed, b"PING\n");
    // calico-docker: on the `calico` network, reached at its own address there.
    let calico = wait_running_long(&c, "calico-docker", 1).await;
    let id = dk.containers_of(&task_id(&calico[0]));
    assert_eq!(id.len(), 1);
    let ip = dk.must(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"calico\").IPAddress}}",
        &id[0],
    ]);
    let page = eventually(LONG, "calico-docker to answer on its own IP", || async {
        let r = reqwest::Client::new()
            .get(format!("http://{ip}:8080/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        r.text().await.ok()
    })
    .await;
    assert_eq!(page, PAGE);
    // Deleting the apps stops and removes their containers.
    for app in ["simple-nginx", "httpi", "db", "calico-docker"] {
        let (s, _) = send(&c, Method::DELETE, &format!("/v2/apps/{app}"), None).await;
        assert_eq!(s, 200, "delete {app}");
    }
    eventually(LONG, "every container removed", || async {
        dk.all_containers().is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_and_output_reach_the_host_and_the_sandbox() {
    let _one = ONE_DAEMON.lock().await;
    let dk = DockerDaemon::start();
    let c = docker_cluster(&dk, &[]).await;
    let host_dir = c.dir.path().join("vol");
    let app = json!({
        "id": "/writer", "cpus": 0.1, "mem": 32, "env": c.marker_env(),
        "cmd": "echo to-stdout; echo to-stderr >&2; echo hostdata > /data/out; \
                echo named > /named/out; cat /named/out > $MESOS_SANDBOX/named-copy; sleep 3600",
        "container": {"type": "DOCKER", "docker": {"image": "ubuntu:latest"},
            "volumes": [
                {"containerPath": "/data", "hostPath": host_dir.display().to_string(), "mode": "RW"},
                {"containerPath": "/named", "mode": "RW",
                 "external": {"name": "gantry-test-named", "provider": "dvdi",
                              "options": {"dvdi/driver": "local"}}}
            ]}
    });
    let (s, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(s, 201, "{body}");
    let t = wait_running_long(&c, "writer", 1).await;
    let sandbox = c.sandbox(0, &task_id(&t[0]));
    eventually(LONG, "the host volume written", || async {
        let s = std::fs::read_to_string(host_dir.join("out")).ok()?;
        (s == "hostdata\n").then_some(())
    })
    .await;
    eventually(LONG, "the output in the sandbox", || async {
        let out = std::fs::read_to_string(sandbox.join("stdout")).ok()?;
        let err = std::fs::read_to_string(sandbox.join("stderr")).ok()?;
        let copy = std::fs::read_to_string(sandbox.join("named-copy")).ok()?;
        (out.contains("to-stdout") && err.contains("to-stderr") && copy == "named\n").then_some(())
    })
    .await;
    assert!(
        dk.must(&["volume", "ls", "-q"])
            .contains("gantry-test-named"),
        "the named volume was made by its driver"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_kill_9_readopts_the_container_and_docker_kill_fails_the_task() {
    let _one = ONE_DAEMON.lock().await;
    let dk = DockerDaemon::start();
    let mut c = docker_cluster(&dk, &[]).await;
    let (s, body) = c.post("/v2/apps", &marked(&c, SIMPLE_NGINX)).await;
    assert_eq!(s, 201, "{body}");
    let before = wait_running_long(&c, "simple-nginx", 1).await;
    let id = task_id(&before[0]);
    let containers = dk.containers_of(&id);
    assert_eq!(containers.len(), 1);

    c.kill_agent(0);
    start_docker_agent(&mut c, &dk, &[]);
    c.wait_agents(1).await;
    c.wait_log("agent0.log", "re-adopted a running task", 1)
        .await;
    let after = wait_running_long(&c, "simple-nginx", 1).await;
    assert_eq!(task_id(&after[0]), id, "the same task, not a replacement");
    assert_eq!(dk.containers_of(&id), containers, "the same container");
    let port = first_port(&after[0]);
    assert_eq!(
        eventually(LONG, "it still serves", || http_get(port)).await,
        PAGE
    );

    // A kill from outside Gantry is the task's failure, with the container's exit code.
    dk.must(&["kill", &containers[0]]);
    let msg = c.wait_failure_of("simple-nginx", &id).await;
    assert!(
        msg.contains("status 137"),
        "the exit code is reported: {msg}"
    );

    // The same while the agent is down: its restart finds the container ended, with its code.
    let replacement = eventually(LONG, "a replacement task running", || async {
        let t = c.tasks("simple-nginx").await;
        t.into_iter()
            .find(|t| t["state"] == "TASK_RUNNING" && task_id(t) != id)
    })
    .await;
    let new_id = task_id(&replacement);
    let new_containers = dk.containers_of(&new_id);
    assert_eq!(new_containers.len(), 1);
    c.kill_agent(0);
    dk.must(&["kill", &new_containers[0]]);
    start_docker_agent(&mut c, &dk, &[]);
    let msg = c.wait_failure_of("simple-nginx", &new_id).await;
    assert!(
        msg.contains("status 137"),
        "the exit code survives the agent's absence: {msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_down_stops_containers_and_refusals_say_why() {
    let _one = ONE_DAEMON.lock().await;
    let dk = DockerDaemon::start();
    let c = docker_cluster(&dk, &[]).await;
    // Each container traps SIGTERM (what `docker stop` sends first) and records it in its sandbox.
    let app = json!({"id": "/many", "cpus": 0.1, "mem": 32, "instances": 2,
        "env": c.marker_env(), "taskKillGracePeriodSeconds": 20,
        "cmd": "trap 'echo term > $MESOS_SANDBOX/got-term; exit 0' TERM; \
                while true; do sleep 0.2; done",
        "container": {"type": "DOCKER", "docker": {"image": "ubuntu:latest",
            "parameters": [{"key": "label", "value": "team=gantry-test"}]}}});
    let (s, body) = c.post("/v2/apps", &app.to_string()).await;
    assert_eq!(s, 201, "{body}");
    let tasks = wait_running_long(&c, "many", 2).await;
    for t in &tasks {
        let ids = dk.containers_of(&task_id(t));
        assert_eq!(ids.len(), 1);
        let label = dk.must(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"team\"}}",
            &ids[0],
        ]);
        assert_eq!(
            label, "gantry-test",
            "an allowed parameter (label) is applied"
        );
    }
    eventually(LONG, "the deployment to finish", || async {
        let d = c.get("/v2/deployments").await;
        d.as_array().is_some_and(Vec::is_empty).then_some(())
    })
    .await;
    let (s, body) = send(
        &c,
        Method::PUT,
        "/v2/apps/many",
        Some(r#"{"instances": 0}"#),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    eventually(LONG, "both containers stopped and removed", || async {
        dk.all_containers().is_empty().then_some(())
    })
    .await;
    for t in &tasks {
        let sandbox = c.sandbox(0, &task_id(t));
        assert!(
            sandbox.join("got-term").exists(),
            "the task was stopped with SIGTERM within its grace period: {}",
            sandbox.display()
        );
    }

    // privileged without --docker-allow-privileged: TASK_FAILED naming it.
    let app = json!({"id": "/priv", "cpus": 0.1, "mem": 32, "env": c.marker_env(),
        "cmd": "sleep 3600", "container": {"type": "DOCKER",
            "docker": {"image": "ubuntu:latest", "privileged": true}}});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let failure = eventually(LONG, "the privileged task to fail", || async {
        let f = c.get("/v2/apps/priv").await["app"]["lastTaskFailure"].clone();
        f["message"].as_str().map(String::from)
    })
    .await;
    assert!(failure.contains("privileged"), "{failure}");
    // A docker parameter off the agent's allow-list: TASK_FAILED naming it.
    let app = json!({"id": "/capped", "cpus": 0.1, "mem": 32, "env": c.marker_env(),
        "cmd": "sleep 3600", "container": {"type": "DOCKER",
            "docker": {"image": "ubuntu:latest",
                       "parameters": [{"key": "cap-add", "value": "SYS_ADMIN"}]}}});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let failure = eventually(LONG, "the cap-add task to fail", || async {
        let f = c.get("/v2/apps/capped").await["app"]["lastTaskFailure"].clone();
        f["message"].as_str().map(String::from)
    })
    .await;
    assert!(
        failure.contains("docker parameter 'cap-add' is not allowed"),
        "{failure}"
    );
    // An image that is neither here nor pullable: TASK_FAILED saying so.
    let app = json!({"id": "/nosuch", "cpus": 0.1, "mem": 32, "env": c.marker_env(),
        "container": {"type": "DOCKER", "docker": {"image": "gantry-test/nosuch:1"}}});
    assert_eq!(c.post("/v2/apps", &app.to_string()).await.0, 201);
    let failure = eventually(LONG, "the unpullable task to fail", || async {
        let f = c.get("/v2/apps/nosuch").await["app"]["lastTaskFailure"].clone();
        f["message"].as_str().map(String::from)
    })
    .await;
    assert!(
        failure.contains("cannot pull the Docker image 'gantry-test/nosuch:1'"),
        "{failure}"
    );
    assert!(dk.all_containers().is_empty(), "nothing left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_dockerjob_runs_and_a_docker_job_runs_to_success() {
    let _one = ONE_DAEMON.lock().await;
    let dk = DockerDaemon::start();
    let c = docker_cluster(&dk, &[]).await;
    let logs_existed = std::path::Path::new("/logs").exists();
    let mut job: Value = serde_json::from_str(DOCKER_JOB).expect("the seed's job");
    job["environmentVariables"] = json!([{"name": "GANTRY_TEST_MARKER", "value": c.marker}]);
    let (s, body) = send(
        &c,
        Method::POST,
        "/v1/scheduler/iso8601",
        Some(&job.to_string()),
    )
    .await;
    assert_eq!(s, 204, "{body}");
    // Its start is in the past: a catch-up run now, in a container with /logs/ mounted.
    let container = eventually(LONG, "dockerjob's container", || async {
        let id = dk.must(&["ps", "-q", "--filter", "label=gantry.managed=true"]);
        (!id.is_empty()).then_some(id)
    })
    .await;
    let mounts = dk.must(&["inspect", "-f", "{{json .HostConfig.Binds}}", &container]);
    assert!(mounts.contains("/logs/:/var/log/:rw"), "{mounts}");

    // A job that finishes: its output lands in its host volume and the run succeeds.
    let out_dir = c.dir.path().join("joblogs");
    let done = json!({"name": "dockerjob-done", "schedule": "R1//PT1H",
        "environmentVariables": [{"name": "GANTRY_TEST_MARKER", "value": c.marker}],
        "container": {"type": "DOCKER", "image": "ubuntu:latest", "network": "BRIDGE",
            "volumes": [{"containerPath": "/var/log/", "hostPath": out_dir.display().to_string(),
                         "mode": "RW"}]},
        "cpus": 0.1, "mem": 64, "command": "date -u +%T > /var/log/ran && echo ok"});
    let (s, body) = send(
        &c,
        Method::POST,
        "/v1/scheduler/iso8601",
        Some(&done.to_string()),
    )
    .await;
    assert_eq!(s, 204, "{body}");
    eventually(LONG, "dockerjob-done to succeed", || async {
        let j = c.get("/v1/scheduler/job/dockerjob-done").await;
        (j["successCount"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    assert!(
        out_dir.join("ran").exists(),
        "the job wrote into its volume"
    );

    assert_eq!(
        send(&c, Method::DELETE, "/v1/scheduler/jobs", None).await.0,
        204
    );
    eventually(LONG, "the jobs' containers removed", || async {
        dk.all_containers().is_empty().then_some(())
    })
    .await;
    if !logs_existed {
        let _ = std::fs::remove_dir_all("/logs");
    }
}
