//! Tests of the job definition: Chronos's examples, the rejections of spec §3.4, defaults, round
//! trips of every extension, and the command of a run.

use chrono::{DateTime, TimeZone, Utc};
use gantry_jobs::{CatchUp, DependencyKind, DependencyMode};
use serde_json::{json, Value};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 15, 12, 0, 30).unwrap()
}

fn ctx(endpoint: Endpoint, mode: Mode) -> ReadContext<'static> {
    ReadContext {
        endpoint,
        mode,
        now: now(),
        default_user: "nobody",
    }
}

fn create(body: &Value) -> Result<JobDefinition, JobError> {
    let endpoint = if body.get("parents").is_some() || body.get("dependencies").is_some() {
        Endpoint::Dependency
    } else {
        Endpoint::Iso8601
    };
    read_job(body, &ctx(endpoint, Mode::Create))
}

fn rejected(body: Value, field: &str) -> String {
    let e = create(&body).expect_err(&format!("accepted {body}"));
    assert_eq!(e.field, field, "{e}");
    assert!(e.to_string().starts_with(&format!("{field}: ")), "{e}");
    e.to_string()
}

/// The §2.2 example, compact, in Chronos's key order.
const EXAMPLE: &str = r#"{"name":"camus_kafka2hdfs","command":"/srv/data-infra/kafka/camus/kafka_hdfs_job.bash","shell":true,"executor":"","executorFlags":"","taskInfoData":"","retries":2,"owner":"bofh@your-company.com","ownerName":"","description":"","successCount":190,"errorCount":3,"lastSuccess":"2014-03-08T16:57:17.507Z","lastError":"2014-03-01T00:10:15.957Z","cpus":1.0,"disk":10240.0,"mem":1024.0,"disabled":false,"softError":false,"dataProcessingJobType":false,"errorsSinceLastSuccess":0,"fetch":[{"uri":"https://url-to-file","executable":false,"cache":false,"extract":false}],"uris":["https://url-to-file"],"environmentVariables":[{"name":"JVMOPTS","value":"-Xmx1000m"}],"arguments":[],"highPriority":false,"runAsUser":"root","concurrent":false,"maxCompletionTime":0,"constraints":[["rack","EQUALS","rack-1"]],"schedule":"R/2014-03-08T20:00:00.000Z/PT2H","scheduleTimeZone":""}"#;

#[test]
fn the_chronos_example_round_trips_with_key_order() {
    let body: Value = serde_json::from_str(EXAMPLE).unwrap();
    // A GET result carries both uris and fetch, which only an update accepts.
    let job = read_job(&body, &ctx(Endpoint::Iso8601, Mode::Update)).unwrap();
    let text = render_job(&job, RenderOptions::default());
    assert_eq!(text, EXAMPLE);
    let again: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(again, body);
    let e = create(&body).unwrap_err();
    assert_eq!(e.field, "uris");
}

#[test]
fn container_and_dependent_tail_render_in_place() {
    let body = json!({"name": "child", "command": "true", "parents": ["a", "b", "a"],
        "container": {"type": "docker", "image": "libmesos/ubuntu", "network": "BRIDGE",
            "volumes": [{"hostPath": "/logs/", "containerPath": "/var/log/", "mode": "rw"}]}});
    let job = create(&body).unwrap();
    let text = render_job(&job, RenderOptions::default());
    assert!(text.contains(r#""maxCompletionTime":0,"container":{"type":"DOCKER","image":"libmesos/ubuntu","network":"BRIDGE","networkInfos":[],"volumes":[{"hostPath":"/logs/","containerPath":"/var/log/","mode":"RW"}],"forcePullImage":false,"parameters":[]},"constraints":[],"parents":["a","b"]}"#), "{text}");
    assert!(!text.contains("schedule"), "{text}");
}

#[test]
fn defaults_are_chronos_3() {
    let job = create(&json!({"name": "j", "schedule": "R/2024-01-15T10:00:00Z/PT1H"})).unwrap();
    assert_eq!(job.command, "");
    assert!(job.shell && !job.disabled && !job.concurrent && !job.high_priority);
    assert_eq!(job.retries, 2);
    assert_eq!((job.cpus, job.mem, job.disk), (0.1, 128.0, 256.0));
    assert_eq!(job.run_as_user, "nobody");
    assert_eq!(job.max_completion_time, 0);
    assert!(job.container.is_none() && job.fetch.is_empty() && job.uris.is_empty());
    assert_eq!(
        job.trigger,
        Trigger::Iso8601 {
            schedule: "R/2024-01-15T10:00:00Z/PT1H".into(),
            time_zone: String::new()
        }
    );
    // 0 means "not given" in Chronos, and the default is stored.
    let zero = create(&json!({"name": "j", "cpus": 0, "mem": 0.0, "disk": "0"})).unwrap();
    assert_eq!((zero.cpus, zero.mem, zero.disk), (0.1, 128.0, 256.0));
    let text = render_job(&job, RenderOptions::default());
    for ext in [
        "gpus",
        "numaPolicy",
        "cron",
        "dependencies",
        "missedRuns",
        "array",
        "retryDelay",
        "gang",
    ] {
        assert!(!text.contains(ext), "{ext} rendered unset: {text}");
    }
    assert_eq!(job.missed_run_policy().catch_up, CatchUp::One);
    assert_eq!(job.retry_policy().retry_delay_seconds, 60);
    let fetch = create(&json!({"name": "f", "fetch": [{"uri": "http://x/a.tgz"}]})).unwrap();
    assert!(fetch.fetch[0].extract && !fetch.fetch[0].executable && !fetch.fetch[0].cache);
}

#[test]
fn no_schedule_runs_once_now() {
    let job = create(&json!({"name": "once", "command": "true"})).unwrap();
    assert_eq!(
        job.trigger,
        Trigger::Iso8601 {
            schedule: "R1/2024-01-15T12:00:30.000Z/PT24H".into(),
            time_zone: String::new()
        }
    );
}

#[test]
fn unparsable_schedules_are_400_naming_the_field() {
    for s in [
        "R/2008-03-01T13:00:00Z",
        "FOO",
        "r/2008-03-01T13:00:00Z/P1D",
        "R-1/2008-03-01T13:00:00Z/P1D",
        " R/2008-03-01T13:00:00Z/P1D",
        "R/2008-03-01T13:00:00Z/p1d",
        "R/2008-03-01T13:00:00Z/P1D ",
        "R/2008-03-01T13:00:00Z/PT",
        "R/2008-03-01T13:00:00Z/P1D2H",
        "R/2008-03-01T13:00:00Z/P1.5D",
        "R/20080301T130000Z/P1D",
        "R/2008-02-30T13:00:00Z/P1D",
        "R99999999999999999999/2008-03-01T13:00:00Z/P1D",
        // Gantry also refuses what Chronos ran forever (§3.4 rows 7 and 8).
        "R/2024-01-15T10:00:00Z/PT0S",
        "R/2024-01-15T10:00:00Z/P-1D",
    ] {
        let msg = rejected(json!({"name": "j", "schedule": s}), "schedule");
        assert!(
            msg.starts_with(&format!("schedule: Cannot parse schedule '{s}'")),
            "{msg}"
        );
    }
    // Zero periods are fine for a single run.
    assert!(create(&json!({"name": "j", "schedule": "R1//P"})).is_ok());
}

#[test]
fn starts_before_1970_are_refused_on_create_only() {
    let body = json!({"name": "old", "schedule": "R/1969-12-31T23:59:59Z/P1D"});
    let msg = rejected(body.clone(), "schedule");
    assert!(msg.contains("before 1970-01-01T00:00:01Z"), "{msg}");
    assert!(read_job(&body, &ctx(Endpoint::Iso8601, Mode::Update)).is_ok());
}

#[test]
fn zones_must_be_iana() {
    let s = "R/2014-10-10T18:32:00Z/PT60M";
    let msg = rejected(
        json!({"name": "j", "schedule": s, "scheduleTimeZone": "PST"}),
        "scheduleTimeZone",
    );
    assert!(msg.contains("America/Los_Angeles"), "{msg}");
    rejected(
        json!({"name": "j", "schedule": s, "scheduleTimeZone": "Foo/Bar"}),
        "scheduleTimeZone",
    );
    rejected(
        json!({"name": "j", "cron": "0 9 * * 1", "scheduleTimeZone": "BST"}),
        "scheduleTimeZone",
    );
    assert!(
        create(&json!({"name": "j", "schedule": s, "scheduleTimeZone": "Europe/Berlin"})).is_ok()
    );
}

#[test]
fn create_rules_and_field_checks() {
    rejected(json!({"name": "has space", "command": "x"}), "name");
    rejected(json!({"name": "a/b"}), "name");
    rejected(json!({"name": ""}), "name");
    rejected(json!({"command": "x"}), "name");
    // Update does not re-check the name (Chronos).
    assert!(read_job(
        &json!({"name": "has space"}),
        &ctx(Endpoint::Iso8601, Mode::Update)
    )
    .is_ok());
    rejected(
        json!({"name": "j", "uris": ["http://a"], "fetch": [{"uri": "http://b"}]}),
        "uris",
    );
    rejected(json!({"name": "j", "cron": "0 0 31 2 *"}), "cron");
    rejected(json!({"name": "j", "cron": "61 * * * *"}), "cron");
    rejected(
        json!({"name": "j", "cron": "* * * * *", "schedule": "R/2024-01-15T10:00:00Z/PT1H"}),
        "cron",
    );
    for (k, v) in [
        ("cpus", json!(-1)),
        ("cpus", json!("NaN")),
        ("cpus", json!(1e300)),
        ("mem", json!(-0.5)),
        ("mem", json!("lots")),
        ("disk", json!(1e30)),
        ("retries", json!(-1)),
        ("retries", json!(1.5)),
        ("gpus", json!(-1)),
        ("gpus", json!(100000)),
        ("numaPolicy", json!("strict")),
        ("gpuProfile", json!("1x.10gb")),
        ("gpuProfile", json!(7)),
        ("shell", json!("yes")),
        ("command", json!("echo \u{0}")),
        ("arguments", json!(["a\u{0}"])),
        ("array", json!("0-15%0")),
        ("retryBackoffFactor", json!(0.5)),
        ("lastSuccess", json!("yesterday")),
    ] {
        let mut body = json!({"name": "j"});
        body[k] = v;
        let msg = create(&body)
            .expect_err(&format!("accepted {body}"))
            .to_string();
        assert!(msg.starts_with(k), "{k}: {msg}");
    }
    for (name, field) in [
        ("", "environmentVariables[0].name"),
        ("A=B", "environmentVariables[0].name"),
        ("A\u{0}", "environmentVariables[0].name"),
    ] {
        rejected(
            json!({"name": "j", "environmentVariables": [{"name": name, "value": "v"}]}),
            field,
        );
    }
    rejected(
        json!({"name": "j", "constraints": [["rack", "CLUSTER", "x"]]}),
        "constraints[0]",
    );
    rejected(
        json!({"name": "j", "retryDelaySeconds": 100, "maxRetryDelaySeconds": 10}),
        "maxRetryDelaySeconds",
    );
    rejected(
        json!({"name": "j", "missedRuns": {"catchUp": "some"}}),
        "missedRuns.catchUp",
    );
}

#[test]
fn endpoints_decide_the_kind() {
    // Chronos answered 500 on empty parents; Gantry answers 400.
    rejected(json!({"name": "c", "parents": []}), "parents");
    let e = read_job(
        &json!({"name": "c", "schedule": "R/2024-01-15T10:00:00Z/PT1H"}),
        &ctx(Endpoint::Dependency, Mode::Create),
    )
    .unwrap_err();
    assert_eq!(e.field, "schedule");
    let e = read_job(
        &json!({"name": "c", "parents": ["a"]}),
        &ctx(Endpoint::Iso8601, Mode::Create),
    )
    .unwrap_err();
    assert_eq!(e.field, "parents");
    rejected(
        json!({"name": "c", "parents": ["a"], "schedule": "R/2024-01-15T10:00:00Z/PT1H"}),
        "schedule",
    );
    rejected(json!({"name": "c", "parents": ["bad name"]}), "parents[0]");
    rejected(
        json!({"name": "c", "parents": ["a"], "dependencies": [{"job": "a", "type": "afternotok"}]}),
        "dependencies[0]",
    );
    rejected(
        json!({"name": "c", "dependencies": [{"job": "a", "type": "after"}]}),
        "dependencies[0].type",
    );
    rejected(
        json!({"name": "c", "dependencyMode": "any", "schedule": "R/2024-01-15T10:00:00Z/PT1H"}),
        "dependencyMode",
    );
    let any = ctx(Endpoint::Any, Mode::Update);
    assert!(read_job(&json!({"name": "c", "parents": ["a"]}), &any)
        .unwrap()
        .is_dependent());
    assert!(!read_job(&json!({"name": "c"}), &any)
        .unwrap()
        .is_dependent());
}

#[test]
fn every_extension_round_trips() {
    let body = json!({"name": "train", "command": "python train.py",
        "dependencies": [{"job": "prep", "type": "afterany"}, {"job": "lint"}],
        "parents": ["fetch"], "dependencyMode": "any",
        "gpus": 2, "numaPolicy": "require", "gpuProfile": "1g.10gb",
        "missedRuns": {"catchUp": "all", "limit": 5, "startingDeadlineSeconds": 600},
        "retryDelaySeconds": 30, "retryBackoffFactor": 2.0, "maxRetryDelaySeconds": 600,
        "array": "0-15%4"});
    let job = create(&body).unwrap();
    let text = render_job(&job, RenderOptions::default());
    let out: Value = serde_json::from_str(&text).unwrap();
    for (k, v) in body.as_object().unwrap() {
        assert_eq!(&out[k], v, "{k} in {text}");
    }
    let again = read_job(&out, &ctx(Endpoint::Any, Mode::Update)).unwrap();
    assert_eq!(again, job);
    let spec = job.job_spec();
    assert_eq!(spec.mode, DependencyMode::Any);
    assert!(spec.singleton);
    let edges: Vec<_> = spec
        .dependencies
        .iter()
        .map(|d| (d.parent.as_str(), d.kind))
        .collect();
    assert_eq!(
        edges,
        [
            ("fetch", DependencyKind::AfterOk),
            ("prep", DependencyKind::AfterAny),
            ("lint", DependencyKind::AfterOk)
        ]
    );
    let m = job.missed_run_policy();
    assert_eq!(
        (m.catch_up, m.all_limit, m.starting_deadline_seconds),
        (CatchUp::All, 5, Some(600))
    );
    let r = job.retry_policy();
    assert_eq!(
        (
            r.retries,
            r.retry_delay_seconds,
            r.backoff_factor,
            r.max_retry_delay_seconds
        ),
        (2, 30, 2.0, Some(600))
    );
    let array = job.array.as_ref().unwrap();
    assert_eq!((array.size(), array.max_running), (16, Some(4)));

    let cron = json!({"name": "weekday", "cron": "0 16,19 * * 1-5",
        "scheduleTimeZone": "America/New_York"});
    let job = create(&cron).unwrap();
    let out: Value = serde_json::from_str(&render_job(&job, RenderOptions::default())).unwrap();
    assert_eq!(out["cron"], cron["cron"]);
    assert_eq!(out["scheduleTimeZone"], cron["scheduleTimeZone"]);
    assert!(out.get("schedule").is_none());
    assert!(job.schedule(now()).unwrap().is_ok());
}

#[test]
fn displayed_schedule_and_uri_mirroring() {
    let job = create(
        &json!({"name": "j", "schedule": "R5/2024-01-15T10:00:00Z/PT1H",
        "uris": ["http://h/a.tgz"]}),
    )
    .unwrap();
    let shown = RenderOptions {
        schedule: Some("R4/2024-01-15T13:00:00.000Z/PT1H"),
        mirror_uris: true,
    };
    let out: Value = serde_json::from_str(&render_job(&job, shown)).unwrap();
    assert_eq!(out["schedule"], "R4/2024-01-15T13:00:00.000Z/PT1H");
    assert_eq!(
        out["fetch"],
        json!([{"uri": "http://h/a.tgz", "executable": false, "cache": false, "extract": true}])
    );
    let plain: Value = serde_json::from_str(&render_job(&job, RenderOptions::default())).unwrap();
    assert_eq!(plain["fetch"], json!([]));
    let job = create(&json!({"name": "j", "fetch": [{"uri": "http://h/b", "output_file": "b2"}]}))
        .unwrap();
    let out: Value = serde_json::from_str(&render_job(&job, shown)).unwrap();
    assert_eq!(out["uris"], json!(["http://h/b"]));
    assert_eq!(out["fetch"][0]["output_file"], "b2");
    assert_eq!(
        chronos_time(Utc.with_ymd_and_hms(2014, 3, 8, 16, 57, 17).unwrap()),
        "2014-03-08T16:57:17.000Z"
    );
}

/// The Chronos job examples of /work/shared/seed/mesos-basic-concepts.txt, verbatim.
const SEED_SLEEP: &str = r#"{
  "schedule": "R/2021-06-15T22:57:59Z/PT24H",
  "name": "sleep-job",
  "description": "Sleep for 60 seconds and return.",
  "cpus": 0.5,
  "mem": 256,
  "disk": 500,
  "command": "sleep 60",
  "retries": 2
}"#;
const SEED_DOCKER: &str = r#"{
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

#[test]
fn seed_jobs_parse() {
    let sleep = create(&parse_body(SEED_SLEEP.as_bytes()).unwrap()).unwrap();
    assert_eq!((sleep.cpus, sleep.mem, sleep.disk), (0.5, 256.0, 500.0));
    assert_eq!(sleep.description, "Sleep for 60 seconds and return.");
    let docker = create(&parse_body(SEED_DOCKER.as_bytes()).unwrap()).unwrap();
    assert_eq!((docker.cpus, docker.mem, docker.disk), (0.5, 512.0, 256.0));
    let c = docker.container.as_ref().unwrap();
    assert_eq!(
        (c.image.as_str(), c.network),
        ("ubuntu:latest", ContainerNetwork::Bridge)
    );
    assert_eq!(c.volumes[0].mode, Some(VolumeMode::Rw));
    assert_eq!(docker.command, "while sleep 10; do date =u %T; done");
    assert!(parse_body(b"  ").is_err() && parse_body(b"{").is_err());
}

#[test]
fn run_command_follows_chronos() {
    let mut job = create(&json!({"name": "j", "command": "echo", "owner": "a@b",
        "arguments": ["x;y", "z"], "mem": 512,
        "environmentVariables": [{"name": "HOST", "value": "evil"}, {"name": "K", "value": "v"}]}))
    .unwrap();
    let (id, cmd) = run_command(&job, 1700000000000, 1, None, None, "agent-1");
    assert_eq!(id, "ct:1700000000000:1:j:xy z");
    assert_eq!(cmd.value.as_deref(), Some("echo xy z"));
    assert!(cmd.shell && cmd.arguments.is_empty());
    let env = &cmd.environment;
    assert_eq!(env["mesos_task_id"], id);
    assert_eq!(env["MESOS_TASK_ID"], id);
    assert_eq!(env["HOST"], "agent-1");
    assert_eq!(env["CHRONOS_JOB_OWNER"], "a@b");
    assert_eq!(env["CHRONOS_JOB_NAME"], "j");
    assert_eq!(env["CHRONOS_RESOURCE_MEM"], "512.0");
    assert_eq!(env["CHRONOS_RESOURCE_CPU"], "0.1");
    assert_eq!(env["CHRONOS_RESOURCE_DISK"], "256.0");
    assert_eq!(env["CHRONOS_JOB_RUN_TIME"], "1700000000000");
    assert_eq!(env["CHRONOS_JOB_RUN_ATTEMPT"], "1");
    assert_eq!(env["K"], "v");
    assert_eq!(cmd.user.as_deref(), Some("nobody"));
    let (id, cmd) = run_command(&job, 5, 0, Some("--day 3;rm"), None, "h");
    assert_eq!(id, "ct:5:0:j:--day 3rm");
    assert_eq!(cmd.value.as_deref(), Some("echo --day 3rm"));

    job.shell = false;
    let (_, cmd) = run_command(&job, 5, 0, None, None, "h");
    assert_eq!(cmd.value.as_deref(), Some("echo"));
    assert_eq!(cmd.arguments, ["echo", "x;y", "z"]);
    let (_, cmd) = run_command(&job, 5, 0, Some("a b"), None, "h");
    assert_eq!(cmd.arguments, ["echo", "a", "b"]);

    job.run_as_user = String::new();
    job.array = Some(JobArray::parse("2-10:2").unwrap());
    let (id, cmd) = run_command(&job, 5, 0, None, Some(4), "h");
    assert_eq!(id, "ct:5:0:j#4:xy z");
    assert_eq!(cmd.user, None);
    let env = &cmd.environment;
    for (k, v) in [
        ("GANTRY_ARRAY_INDEX", "4"),
        ("GANTRY_ARRAY_SIZE", "5"),
        ("SLURM_ARRAY_TASK_ID", "4"),
        ("SLURM_ARRAY_TASK_COUNT", "5"),
        ("SLURM_ARRAY_TASK_MIN", "2"),
        ("SLURM_ARRAY_TASK_MAX", "10"),
    ] {
        assert_eq!(env[k], v, "{k}");
    }
    let parsed = parse_task_id(&id).unwrap();
    assert_eq!(
        (
            parsed.due_ms,
            parsed.attempt,
            parsed.job.as_str(),
            parsed.array_index
        ),
        (5, 0, "j", Some(4))
    );
    assert_eq!(parsed.arguments, "xy z");
    let p = parse_task_id("ct:1:2:name:a:b").unwrap();
    assert_eq!(
        (p.job.as_str(), p.arguments.as_str(), p.array_index),
        ("name", "a:b", None)
    );
    assert!(parse_task_id("ct:x:0:j:").is_none() && parse_task_id("mesos-1").is_none());

    let fetched = create(&json!({"name": "u", "command": "https://h/run.sh"})).unwrap();
    let (_, cmd) = run_command(&fetched, 1, 0, None, None, "h");
    assert_eq!(cmd.value.as_deref(), Some("./run.sh"));
    assert!(cmd
        .uris
        .iter()
        .any(|u| u.uri == "https://h/run.sh" && u.executable));
}

#[test]
fn gang_fields_round_trip_and_are_checked() {
    let body = json!({"name": "ddp", "command": "torchrun train.py", "gpus": 8,
        "gang": true, "gangSize": 4, "gangTimeoutSeconds": 120});
    let job = create(&body).unwrap();
    assert_eq!(
        job.gang,
        Some(Gang {
            size: 4,
            timeout_seconds: Some(120)
        })
    );
    let text = render_job(&job, RenderOptions::default());
    let out: Value = serde_json::from_str(&text).unwrap();
    for k in ["gang", "gangSize", "gangTimeoutSeconds"] {
        assert_eq!(out[k], body[k], "{k} in {text}");
    }
    assert_eq!(
        read_job(&out, &ctx(Endpoint::Any, Mode::Update)).unwrap(),
        job
    );
    let plain = create(&json!({"name": "g", "gang": true, "gangSize": 2})).unwrap();
    assert_eq!(
        plain.gang.map(|g| g.timeout()),
        Some(DEFAULT_GANG_TIMEOUT_SECONDS)
    );
    let text = render_job(&plain, RenderOptions::default());
    assert!(!text.contains("gangTimeoutSeconds"), "{text}");
    let off = create(&json!({"name": "g", "gang": false})).unwrap();
    assert_eq!(off.gang, None);
    assert!(!render_job(&off, RenderOptions::default()).contains("gang"));
    for (body, field) in [
        (json!({"name": "g", "gang": true}), "gangSize"),
        (
            json!({"name": "g", "gang": true, "gangSize": 0}),
            "gangSize",
        ),
        (
            json!({"name": "g", "gang": true, "gangSize": MAX_GANG_SIZE + 1}),
            "gangSize",
        ),
        (json!({"name": "g", "gangSize": 4}), "gangSize"),
        (
            json!({"name": "g", "gangTimeoutSeconds": 4}),
            "gangTimeoutSeconds",
        ),
        (json!({"name": "g", "gang": "yes", "gangSize": 4}), "gang"),
        (
            json!({"name": "g", "gang": true, "gangSize": 2, "array": "0-3"}),
            "gang",
        ),
    ] {
        let msg = create(&body)
            .expect_err(&format!("accepted {body}"))
            .to_string();
        assert!(msg.starts_with(&format!("{field}:")), "{body}: {msg}");
    }
}

#[test]
fn a_gpu_profile_needs_gpus_and_names_a_mig_profile() {
    let e = rejected(
        json!({"name": "j", "command": "x", "gpuProfile": "1g.10gb"}),
        "gpuProfile",
    );
    assert!(e.contains("needs gpus of at least 1"), "{e}");
    let e = rejected(
        json!({"name": "j", "command": "x", "gpus": 1, "gpuProfile": "big"}),
        "gpuProfile",
    );
    assert!(e.contains("'big' is not a MIG profile"), "{e}");
    let job = create(&json!({"name": "j", "command": "x", "gpus": 1, "gpuProfile": "3g.40gb"}))
        .expect("valid");
    assert_eq!(job.gpu_profile.as_deref(), Some("3g.40gb"));
    let plain = create(&json!({"name": "k", "command": "x", "gpus": 1})).expect("valid");
    let text = render_job(&plain, RenderOptions::default());
    assert!(
        !text.contains("gpuProfile"),
        "emitted only when given: {text}"
    );
}
