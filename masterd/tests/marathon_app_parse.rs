//! Accepted app definitions: the seed apps verbatim, defaults, translation of deprecated fields,
//! the returned JSON (spec §3.1, §4.2) and parse -> serialize -> parse round trips.

use gantry_masterd::services::app_definition::{
    AppDefinition, ContainerKind, KillSelection, NetworkMode, UnreachableStrategy,
};
use serde_json::{json, Value};

/// The four apps of `shared/seed/mesos-basic-concepts.txt`, verbatim.
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

const CALICO: &str = r#"{
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

/// Keys marathon-python 0.13.0 refuses on an app (spec §4.2), plus the never-emitted deprecated ones.
const FORBIDDEN_APP_KEYS: [&str; 8] = [
    "tty",
    "check",
    "executorResources",
    "resourceLimits",
    "tasksStats",
    "ports",
    "uris",
    "ipAddress",
];

fn parse(body: &str) -> AppDefinition {
    AppDefinition::parse(body.as_bytes()).unwrap_or_else(|e| panic!("{body}\n-> {e}"))
}

fn out(app: &AppDefinition) -> Value {
    serde_json::to_value(app).expect("an app serializes")
}

fn assert_clean_output(v: &Value) {
    let obj = v.as_object().expect("app JSON is an object");
    for k in FORBIDDEN_APP_KEYS {
        assert!(!obj.contains_key(k), "emitted {k}: {v}");
    }
    for k in [
        "id",
        "backoffFactor",
        "backoffSeconds",
        "cpus",
        "mem",
        "disk",
        "gpus",
        "executor",
        "instances",
        "labels",
        "maxLaunchDelaySeconds",
        "networks",
        "requirePorts",
        "upgradeStrategy",
        "version",
        "versionInfo",
        "killSelection",
        "unreachableStrategy",
        "role",
    ] {
        assert!(obj.contains_key(k), "missing {k}: {v}");
    }
    if let Some(c) = obj.get("container") {
        assert!(c.get("linuxInfo").is_none(), "{c}");
        for m in c["portMappings"].as_array().into_iter().flatten() {
            assert!(m.get("networkNames").is_none(), "{m}");
        }
        for vol in c["volumes"].as_array().into_iter().flatten() {
            assert!(vol.get("secret").is_none(), "{vol}");
        }
    }
}

fn round_trip(app: &AppDefinition) {
    let json = out(app);
    assert_clean_output(&json);
    let again = AppDefinition::from_json(&json, "/").unwrap_or_else(|e| panic!("{json}\n-> {e}"));
    assert_eq!(&again, app, "parse(serialize(app)) differs");
    let stored: AppDefinition = serde_json::from_value(json.clone()).expect("stored form loads");
    assert_eq!(&stored, app, "serde round trip differs");
}

#[test]
fn simple_nginx_is_accepted_and_translated_to_bridge_networking() {
    let app = parse(SIMPLE_NGINX);
    assert_eq!(app.id, "/simple-nginx");
    assert_eq!(app.networks[0].mode, NetworkMode::ContainerBridge);
    assert_eq!(app.host_port_count(), 1);
    let v = out(&app);
    assert_eq!(v["networks"], json!([{"mode":"container/bridge"}]));
    assert!(v.get("portDefinitions").is_none(), "{v}");
    assert_eq!(
        v["container"],
        json!({"type":"DOCKER",
               "docker":{"image":"nginx:1.11","forcePullImage":false,"privileged":false,"parameters":[]},
               "volumes":[],
               "portMappings":[{"containerPort":80,"hostPort":0,"servicePort":0,"protocol":"tcp","labels":{}}]})
    );
    round_trip(&app);
}

#[test]
fn httpi_is_accepted_with_its_named_port() {
    let app = parse(HTTPI);
    assert_eq!(app.id, "/httpi");
    assert!(app.is_host_networking());
    assert_eq!(app.host_port_count(), 1);
    let v = out(&app);
    assert_eq!(
        v["portDefinitions"],
        json!([{"port":0,"protocol":"tcp","name":"http"}])
    );
    assert_eq!(v["container"]["docker"]["forcePullImage"], json!(true));
    assert!(v["container"].get("portMappings").is_none(), "{v}");
    round_trip(&app);
}

#[test]
fn db_is_accepted() {
    let app = parse(DB);
    assert_eq!(app.id, "/db");
    assert_eq!(app.mem, 128.0);
    let v = out(&app);
    assert_eq!(v["mem"], json!(128));
    assert_eq!(
        v["container"]["portMappings"][0]["containerPort"],
        json!(6379)
    );
    round_trip(&app);
}

#[test]
fn calico_is_accepted_with_no_port_mappings() {
    let app = parse(CALICO);
    assert_eq!(app.id, "/calico-docker");
    assert_eq!(app.networks[0].name.as_deref(), Some("calico"));
    assert_eq!(app.host_port_count(), 0);
    let v = out(&app);
    assert_eq!(v["networks"], json!([{"mode":"container","name":"calico"}]));
    assert_eq!(v["container"]["portMappings"], json!([]));
    for k in ["healthChecks", "fetch", "constraints"] {
        assert!(v.get(k).is_none(), "empty {k} emitted: {v}");
    }
    round_trip(&app);
}

#[test]
fn a_minimal_app_gets_every_marathon_default() {
    let app = parse(r#"{"id":"test-app","cmd":"sleep 1000"}"#);
    let mut v = out(&app);
    v["version"] = json!("");
    assert_eq!(
        v,
        json!({
            "id": "/test-app", "cmd": "sleep 1000", "instances": 1, "cpus": 1, "mem": 128,
            "disk": 0, "gpus": 0, "executor": "", "backoffSeconds": 1, "backoffFactor": 1.15,
            "maxLaunchDelaySeconds": 300, "labels": {}, "networks": [{"mode": "host"}],
            "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "default"}],
            "requirePorts": false,
            "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
            "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
            "killSelection": "YOUNGEST_FIRST", "role": "*", "version": "",
            "versionInfo": {"lastScalingAt": "", "lastConfigChangeAt": ""}
        })
    );
    assert_eq!(app.kill_selection, KillSelection::YoungestFirst);
    round_trip(&app);
}

#[test]
fn older_stored_json_still_loads_with_defaults() {
    let stored = json!({"id":"/old","cmd":"x","instances":2,"cpus":0.5,"mem":64.0,"disk":0.0,
        "gpus":0,"env":{},"labels":{},"portDefinitions":[{"port":10000,"protocol":"tcp"}],
        "version":"2024-01-01T00:00:00.000Z"});
    let app: AppDefinition = serde_json::from_value(stored).expect("old form loads");
    assert_eq!(app.backoff_factor, 1.15);
    assert_eq!(app.max_launch_delay_seconds, 300);
    assert_eq!(app.role, "*");
    assert!(app.is_host_networking());
    assert_eq!(app.unreachable_strategy, UnreachableStrategy::default());
}

#[test]
fn deprecated_uris_become_fetch_with_extract_by_extension() {
    let app = parse(
        r#"{"id":"a","cmd":"x","uris":["http://h/app.tar.gz","http://h/run.sh","http://h/b.zip"]}"#,
    );
    assert_eq!(
        out(&app)["fetch"],
        json!([
            {"uri":"http://h/app.tar.gz","extract":true,"executable":false,"cache":false},
            {"uri":"http://h/run.sh","extract":false,"executable":false,"cache":false},
            {"uri":"http://h/b.zip","extract":true,"executable":false,"cache":false}
        ])
    );
    round_trip(&app);
}

#[test]
fn deprecated_ports_become_port_definitions() {
    let app = parse(r#"{"id":"a","cmd":"x","ports":[0,8080]}"#);
    assert_eq!(
        out(&app)["portDefinitions"],
        json!([{"port":0,"protocol":"tcp"},{"port":8080,"protocol":"tcp"}])
    );
    assert_eq!(app.host_port_count(), 2);
    let none = parse(r#"{"id":"a","cmd":"x","portDefinitions":[]}"#);
    assert_eq!(none.host_port_count(), 0);
    assert_eq!(out(&none)["portDefinitions"], json!([]));
    round_trip(&app);
}

#[test]
fn deprecated_docker_network_and_ip_address_become_networks() {
    let host = parse(r#"{"id":"a","container":{"docker":{"image":"i","network":"HOST"}}}"#);
    assert!(host.is_host_networking());
    assert_eq!(host.port_definitions.len(), 1);
    let user = parse(
        r#"{"id":"a","cmd":"x","container":{"type":"MESOS","docker":{"image":"i","network":"USER"}},
            "ipAddress":{"networkName":"dev","discovery":{"ports":[{"number":80,"name":"http","protocol":"tcp"}]}}}"#,
    );
    let v = out(&user);
    assert_eq!(v["networks"], json!([{"mode":"container","name":"dev"}]));
    assert_eq!(
        v["container"]["portMappings"],
        json!([{"containerPort":80,"servicePort":0,"protocol":"tcp","name":"http","labels":{}}])
    );
    assert_eq!(user.host_port_count(), 0);
    let ip_only = parse(r#"{"id":"a","cmd":"x","ipAddress":{"networkName":"dev"}}"#);
    assert_eq!(ip_only.networks[0].mode, NetworkMode::Container);
    assert_eq!(
        out(&ip_only)["container"]["portMappings"],
        json!([{"containerPort":0,"servicePort":0,"protocol":"tcp","name":"default","labels":{}}])
    );
    round_trip(&user);
    round_trip(&ip_only);
}

#[test]
fn bridge_without_mappings_gets_the_default_mapping() {
    let app = parse(r#"{"id":"a","cmd":"x","networks":[{"mode":"container/bridge"}]}"#);
    assert_eq!(
        app.container.as_ref().map(|c| c.kind),
        Some(ContainerKind::Mesos)
    );
    assert_eq!(
        out(&app)["container"]["portMappings"],
        json!([{"containerPort":0,"hostPort":0,"servicePort":0,"protocol":"tcp","name":"default","labels":{}}])
    );
    assert_eq!(app.host_port_count(), 1);
    round_trip(&app);
}

#[test]
fn health_checks_get_every_default() {
    let app = parse(
        r#"{"id":"a","cmd":"x","healthChecks":[{"protocol":"HTTP"},{"protocol":"TCP","portIndex":0,"gracePeriodSeconds":5},
            {"protocol":"COMMAND","command":{"value":"true"}}]}"#,
    );
    assert_eq!(
        out(&app)["healthChecks"],
        json!([
            {"protocol":"HTTP","path":"/","portIndex":0,"gracePeriodSeconds":300,"intervalSeconds":60,
             "timeoutSeconds":20,"maxConsecutiveFailures":3,"delaySeconds":15,"ignoreHttp1xx":false},
            {"protocol":"TCP","portIndex":0,"gracePeriodSeconds":5,"intervalSeconds":60,
             "timeoutSeconds":20,"maxConsecutiveFailures":3,"delaySeconds":15},
            {"protocol":"COMMAND","command":{"value":"true"},"gracePeriodSeconds":300,"intervalSeconds":60,
             "timeoutSeconds":20,"maxConsecutiveFailures":3,"delaySeconds":15}
        ])
    );
    round_trip(&app);
}

#[test]
fn the_marathon_python_complex_app_is_accepted() {
    // marathon-python itest: DOCKER + BRIDGE portMappings, parameters, host volume, uris, health check.
    let app = parse(
        r#"{"id":"test-complex-app","cmd":"sleep 3600","mem":16,"cpus":0.1,"instances":1,
            "backoffFactor":1.5,"uris":["file:///etc/hosts"],
            "container":{"type":"DOCKER","docker":{"image":"localhost/fake_docker_url","network":"BRIDGE",
              "portMappings":[{"containerPort":8888,"hostPort":0,"name":"myport"}],
              "parameters":[{"key":"add-host","value":"google-public-dns-a.google.com:8.8.8.8"}]},
              "volumes":[{"hostPath":"/etc/stuff","containerPath":"/etc/stuff","mode":"RO","future":1}]},
            "healthChecks":[{"protocol":"HTTP","path":"/","portIndex":0,"gracePeriodSeconds":3,
              "intervalSeconds":10,"timeoutSeconds":10,"maxConsecutiveFailures":3}]}"#,
    );
    let v = out(&app);
    assert_eq!(v["backoffFactor"], json!(1.5));
    assert_eq!(
        v["container"]["volumes"][0],
        json!({"hostPath":"/etc/stuff","containerPath":"/etc/stuff","mode":"RO"})
    );
    assert_eq!(v["fetch"][0]["extract"], json!(false));
    round_trip(&app);
}

#[test]
fn everything_else_round_trips() {
    let app = parse(
        r#"{"id":"/prod/web","args":["serve","--port","$PORT0"],"user":"nobody","instances":3,
            "cpus":0.5,"mem":256.5,"disk":10,"env":{"A":"1"},"labels":{"HAPROXY_GROUP":"external"},
            "constraints":[["hostname","UNIQUE"],["rack","GROUP_BY","3"]],
            "dependencies":["../db","/cache"],"acceptedResourceRoles":["*","slave_public"],
            "upgradeStrategy":{"minimumHealthCapacity":0.5,"maximumOverCapacity":0.2},
            "unreachableStrategy":"disabled","killSelection":"OLDEST_FIRST","backoffSeconds":2,
            "maxLaunchDelaySeconds":60,"taskKillGracePeriodSeconds":30,"requirePorts":true,
            "portDefinitions":[{"port":10001,"name":"http","labels":{"VIP":"x"}},{"port":10002,"protocol":"udp"}],
            "readinessChecks":[{"portName":"http"}],"executor":"//cmd","role":"web",
            "fetch":[{"uri":"https://h/x","cache":true,"destPath":"bin/x","executable":true}],
            "tty":true,"check":{"http":{"portIndex":0}},"resourceLimits":{"cpus":"unlimited"},
            "secrets":{},"someFutureField":{"x":1}}"#,
    );
    assert_eq!(
        app.dependencies,
        vec!["/db".to_string(), "/cache".to_string()]
    );
    assert_eq!(app.unreachable_strategy, UnreachableStrategy::Disabled);
    assert_eq!(app.constraint_list().len(), 2);
    let v = out(&app);
    assert_eq!(v["unreachableStrategy"], json!("disabled"));
    assert_eq!(v["taskKillGracePeriodSeconds"], json!(30));
    assert_eq!(
        v["readinessChecks"],
        json!([{"name":"readinessCheck","protocol":"HTTP","path":"/","portName":"http",
                "intervalSeconds":30,"timeoutSeconds":10,"httpStatusCodesForReady":[200],
                "preserveLastResponse":false}])
    );
    round_trip(&app);
}

#[test]
fn resident_apps_get_resident_defaults() {
    let app = parse(
        r#"{"id":"pv","cmd":"x","container":{"type":"MESOS","volumes":[
            {"containerPath":"data","mode":"RW","persistent":{"type":"root","size":10}}]}}"#,
    );
    assert!(app.is_resident());
    assert_eq!(app.unreachable_strategy, UnreachableStrategy::Disabled);
    assert_eq!(app.upgrade_strategy.maximum_over_capacity, 0.0);
    assert_eq!(app.upgrade_strategy.minimum_health_capacity, 0.5);
    round_trip(&app);
}

#[test]
fn stamps_set_version_and_version_info() {
    let mut app = parse(r#"{"id":"a","cmd":"x"}"#);
    app.stamp_config_change("2026-01-01T00:00:00.000Z");
    app.stamp_scaling("2026-01-02T00:00:00.000Z");
    let v = out(&app);
    assert_eq!(v["version"], json!("2026-01-02T00:00:00.000Z"));
    assert_eq!(
        v["versionInfo"],
        json!({"lastScalingAt":"2026-01-02T00:00:00.000Z","lastConfigChangeAt":"2026-01-01T00:00:00.000Z"})
    );
    let stored: AppDefinition = serde_json::from_value(v).expect("loads");
    assert_eq!(stored, app);
}

#[test]
fn group_relative_ids_resolve_against_the_group() {
    let v = json!({"id":"web","cmd":"x","dependencies":["db"]});
    let app = AppDefinition::from_json(&v, "/prod").expect("valid");
    assert_eq!(app.id, "/prod/web");
    assert_eq!(app.dependencies, vec!["/prod/db".to_string()]);
    let dbl = parse(r#"{"id":"//a//b","cmd":"x"}"#);
    assert_eq!(dbl.id, "/a/b");
}

#[test]
fn constraint_values_may_be_numbers_and_come_back_as_strings() {
    let app = AppDefinition::parse(
        br#"{"id": "n", "cmd": "x", "constraints": [["rack", "GROUP_BY", 3], ["hostname", "MAX_PER", 2]]}"#,
    )
    .expect("numbers are taken");
    let v = serde_json::to_value(&app).expect("serialises");
    assert_eq!(
        v["constraints"],
        serde_json::json!([["rack", "GROUP_BY", "3"], ["hostname", "MAX_PER", "2"]])
    );
}
