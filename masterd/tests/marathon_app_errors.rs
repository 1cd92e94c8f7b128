//! Refused app definitions: every error class of spec §3.9 with its exact status and body, and
//! every error of a body collected rather than only the first.

use axum::response::IntoResponse;
use gantry_masterd::api::marathon::error::MarathonError;
use gantry_masterd::services::app_definition::AppDefinition;
use serde_json::{json, Value};

/// Parses `body` expecting an error; returns Marathon's status and body for it.
fn refuse(body: &str) -> (u16, Value) {
    match AppDefinition::parse(body.as_bytes()) {
        Ok(app) => panic!("accepted {body}: {app:?}"),
        Err(e) => {
            let e = MarathonError::from(e);
            (e.status().as_u16(), e.body())
        }
    }
}

fn invalid_json(details: Value) -> Value {
    json!({"message": "Invalid JSON", "details": details})
}

fn not_valid(details: Value) -> Value {
    json!({"message": "Object is not valid", "details": details})
}

#[test]
fn malformed_json_is_400_with_the_parser_message_as_a_string() {
    let (status, body) = refuse(r#"{"id": "a", "cmd": }"#);
    assert_eq!(status, 400);
    assert_eq!(body["message"], json!("Invalid JSON"));
    assert!(body["details"].is_string(), "{body}");
}

#[test]
fn an_empty_body_is_400_please_specify_data() {
    for empty in ["", "  \n"] {
        let (status, body) = refuse(empty);
        assert_eq!(status, 400);
        assert_eq!(body["message"], json!("Please specify data in JSON format"));
        assert!(body["details"].is_string(), "{body}");
    }
}

#[test]
fn a_body_that_is_not_an_object_is_422() {
    let (status, body) = refuse("[1,2]");
    assert_eq!(status, 422);
    assert_eq!(
        body,
        invalid_json(json!([{"path":"/","errors":["error.expected.jsobject"]}]))
    );
}

#[test]
fn wrong_types_are_422_invalid_json_with_paths_and_play_codes() {
    let cases = [
        (r#"{"id": 5, "cmd": "x"}"#, "/id", "error.expected.jsstring"),
        (
            r#"{"id": "a", "cmd": "x", "instances": "2"}"#,
            "/instances",
            "error.expected.jsnumber",
        ),
        (
            r#"{"id": "a", "cmd": "x", "instances": 1.5}"#,
            "/instances",
            "error.expected.int",
        ),
        (
            r#"{"id": "a", "args": "x"}"#,
            "/args",
            "error.expected.jsarray",
        ),
        (
            r#"{"id": "a", "cmd": "x", "env": []}"#,
            "/env",
            "error.expected.jsobject",
        ),
        (
            r#"{"id": "a", "cmd": "x", "env": {"A": 1}}"#,
            "/env/A",
            "error.expected.jsstring",
        ),
        (
            r#"{"id": "a", "cmd": "x", "labels": {"L": true}}"#,
            "/labels/L",
            "error.expected.jsstring",
        ),
        (
            r#"{"id": "a", "cmd": "x", "requirePorts": "yes"}"#,
            "/requirePorts",
            "error.expected.jsboolean",
        ),
        (r#"{"cmd": "x"}"#, "/id", "error.path.missing"),
        (r#"{"id": "a", "cmd": ""}"#, "/cmd", "error.minLength"),
        (
            r#"{"id": "a", "cmd": "x", "killSelection": "RANDOM"}"#,
            "/killSelection",
            "error.unknown.enum.literal",
        ),
        (
            r#"{"id": "a", "cmd": "x", "unreachableStrategy": "off"}"#,
            "/unreachableStrategy",
            "error.unknown.enum.literal",
        ),
        (
            r#"{"id": "a", "cmd": "x", "portDefinitions": [{"port": "80"}]}"#,
            "/portDefinitions(0)/port",
            "error.expected.jsnumber",
        ),
        (
            r#"{"id": "a", "cmd": "x", "portDefinitions": [{"port": 70000}]}"#,
            "/portDefinitions(0)/port",
            "error.max",
        ),
        (
            r#"{"id": "a", "container": {"docker": {}}}"#,
            "/container/docker/image",
            "error.path.missing",
        ),
        (
            r#"{"id": "a", "container": {"type": "RKT", "docker": {"image": "i"}}}"#,
            "/container/type",
            "error.unknown.enum.literal",
        ),
        (
            r#"{"id": "a", "cmd": "x", "constraints": [["rack", "GROUP_BY", true]]}"#,
            "/constraints(0)(2)",
            "error.expected.jsstring",
        ),
        (
            r#"{"id": "a", "cmd": "x", "networks": [{"mode": "bridge"}]}"#,
            "/networks(0)/mode",
            "error.unknown.enum.literal",
        ),
        (
            r#"{"id": "a", "cmd": "x", "networks": [{"mode": "container", "name": "Bad Name"}]}"#,
            "/networks(0)/name",
            "error.pattern",
        ),
        (
            r#"{"id": "a", "cmd": "x", "healthChecks": [{"protocol": "UDP"}]}"#,
            "/healthChecks(0)/protocol",
            "error.unknown.enum.literal",
        ),
        (
            r#"{"id": "a", "cmd": "x", "fetch": [{}]}"#,
            "/fetch(0)/uri",
            "error.path.missing",
        ),
        (
            r#"{"id": "a", "cmd": "x", "tty": 1}"#,
            "/tty",
            "error.expected.jsboolean",
        ),
    ];
    for (body, path, code) in cases {
        let (status, got) = refuse(body);
        assert_eq!(status, 422, "{body}");
        assert_eq!(
            got,
            invalid_json(json!([{"path": path, "errors": [code]}])),
            "{body}"
        );
    }
}

#[test]
fn negative_resources_and_instances_are_422_at_their_paths() {
    for (field, value) in [
        ("instances", "-1"),
        ("cpus", "-0.5"),
        ("cpus", "0"),
        ("mem", "-128"),
        ("disk", "-1"),
        ("gpus", "-1"),
        ("backoffSeconds", "-1"),
        ("backoffFactor", "0.5"),
        ("maxLaunchDelaySeconds", "-1"),
        ("taskKillGracePeriodSeconds", "-3"),
    ] {
        let body = format!(r#"{{"id": "a", "cmd": "x", "{field}": {value}}}"#);
        let (status, got) = refuse(&body);
        assert_eq!(status, 422, "{body}");
        assert_eq!(
            got,
            invalid_json(json!([{"path": format!("/{field}"), "errors": ["error.min"]}])),
            "{body}"
        );
    }
}

#[test]
fn ids_with_bad_characters_are_refused() {
    for id in [
        "My_App", "UPPER", "a_b", "-lead", "trail-", "sp ace", "a/B/c",
    ] {
        let body = json!({"id": id, "cmd": "x"}).to_string();
        let (status, got) = refuse(&body);
        assert_eq!(status, 422, "{id}");
        assert_eq!(
            got,
            invalid_json(json!([{"path":"/id","errors":["error.pattern"]}])),
            "{id}"
        );
    }
}

#[test]
fn reserved_and_root_ids_are_not_valid_objects() {
    let (status, got) = refuse(r#"{"id": "/group/restart", "cmd": "x"}"#);
    assert_eq!(status, 422);
    assert_eq!(got["message"], json!("Object is not valid"));
    assert_eq!(got["details"][0]["path"], json!("/id"));
    for id in ["/", "..", "/a/../.."] {
        let (status, got) = refuse(&json!({"id": id, "cmd": "x"}).to_string());
        assert_eq!(status, 422, "{id}");
        assert_eq!(got["details"][0]["path"], json!("/id"), "{id}");
    }
}

#[test]
fn all_type_errors_are_collected() {
    let (status, got) = refuse(
        r#"{"id": 1, "cmd": 2, "instances": -1, "mem": "lots", "labels": {"a": 1, "b": 2},
            "portDefinitions": [{"port": -1}, {"port": 1, "name": 3}]}"#,
    );
    assert_eq!(status, 422);
    assert_eq!(
        got,
        invalid_json(json!([
            {"path":"/id","errors":["error.expected.jsstring"]},
            {"path":"/cmd","errors":["error.expected.jsstring"]},
            {"path":"/instances","errors":["error.min"]},
            {"path":"/mem","errors":["error.expected.jsnumber"]},
            {"path":"/labels/a","errors":["error.expected.jsstring"]},
            {"path":"/labels/b","errors":["error.expected.jsstring"]},
            {"path":"/portDefinitions(0)/port","errors":["error.min"]},
            {"path":"/portDefinitions(1)/name","errors":["error.expected.jsstring"]}
        ]))
    );
}

#[test]
fn no_command_is_the_marathon_message_at_the_root() {
    let (status, got) = refuse(r#"{"id": "a"}"#);
    assert_eq!(status, 422);
    assert_eq!(
        got,
        not_valid(json!([{"path":"/","errors":[
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
        ]}]))
    );
}

#[test]
fn all_semantic_errors_are_collected() {
    let (status, got) = refuse(
        r#"{"id": "a", "cmd": "x", "args": ["y"],
            "upgradeStrategy": {"minimumHealthCapacity": 1.5, "maximumOverCapacity": -0.1},
            "unreachableStrategy": {"inactiveAfterSeconds": 600, "expungeAfterSeconds": 300},
            "portDefinitions": [{"port": 80, "name": "a"}, {"port": 80, "name": "a"}],
            "constraints": [["hostname", "MAX_PER"]],
            "healthChecks": [{"protocol": "HTTP", "portIndex": 5}]}"#,
    );
    assert_eq!(status, 422);
    assert_eq!(got["message"], json!("Object is not valid"));
    let paths: Vec<&str> = got["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["path"].as_str())
        .collect();
    for want in [
        "/",
        "/upgradeStrategy/minimumHealthCapacity",
        "/upgradeStrategy/maximumOverCapacity",
        "/unreachableStrategy",
        "/portDefinitions",
        "/constraints(0)",
        "/healthChecks(0)",
    ] {
        assert!(paths.contains(&want), "{want} missing from {got}");
    }
    let find = |p: &str| {
        got["details"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["path"] == json!(p))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        find("/upgradeStrategy/minimumHealthCapacity")["errors"],
        json!(["is greater than 1"])
    );
    assert_eq!(
        find("/upgradeStrategy/maximumOverCapacity")["errors"],
        json!(["is less than 0"])
    );
    assert_eq!(
        find("/unreachableStrategy")["errors"],
        json!([
            "inactiveAfterSeconds (600) must be less or equal to expungeAfterSeconds, which is 300"
        ])
    );
    assert_eq!(
        find("/portDefinitions")["errors"],
        json!(["ports must be unique", "Port names must be unique."])
    );
}

#[test]
fn network_and_port_rules() {
    let cases = [
        (
            r#"{"id":"a","cmd":"x","networks":[{"mode":"host"},{"mode":"container","name":"n"}]}"#,
            "/networks",
        ),
        (
            r#"{"id":"a","cmd":"x","networks":[{"mode":"container"}]}"#,
            "/networks(0)/name",
        ),
        (
            r#"{"id":"a","container":{"docker":{"image":"i"},"portMappings":[{"containerPort":80}]}}"#,
            "/container/portMappings",
        ),
        (
            r#"{"id":"a","cmd":"x","networks":[{"mode":"container/bridge"}],"portDefinitions":[{"port":0}]}"#,
            "/portDefinitions",
        ),
        (
            r#"{"id":"a","cmd":"x","portDefinitions":[{"port":0,"protocol":"sctp"}]}"#,
            "/portDefinitions(0)/protocol",
        ),
        (
            r#"{"id":"a","cmd":"x","gpus":1,"container":{"type":"DOCKER","docker":{"image":"i"}}}"#,
            "/",
        ),
        (
            r#"{"id":"a","container":{"type":"DOCKER"}}"#,
            "/container/docker",
        ),
        (
            r#"{"id":"a","cmd":"x","healthChecks":[{"protocol":"COMMAND"}]}"#,
            "/healthChecks(0)/command",
        ),
        (
            r#"{"id":"a","cmd":"x","healthChecks":[{"protocol":"MESOS_TCP"},{"protocol":"COMMAND","command":{"value":"true"}}]}"#,
            "/healthChecks",
        ),
        (
            r#"{"id":"a","cmd":"x","portDefinitions":[],"healthChecks":[{"protocol":"HTTP"}]}"#,
            "/healthChecks(0)",
        ),
        (
            r#"{"id":"a","cmd":"x","readinessChecks":[{"portName":"nope"}]}"#,
            "/readinessChecks(0)",
        ),
        (
            r#"{"id":"a","cmd":"x","env":{"PW":{"secret":"pw"}}}"#,
            "/env/PW",
        ),
        (
            r#"{"id":"a","cmd":"x","secrets":{"pw":{"source":"s"}}}"#,
            "/secrets",
        ),
        (
            r#"{"id":"pv","cmd":"x","container":{"type":"MESOS","volumes":[{"containerPath":"d","persistent":{"size":1}}]},
               "unreachableStrategy":{"inactiveAfterSeconds":1,"expungeAfterSeconds":2}}"#,
            "/unreachableStrategy",
        ),
        (
            r#"{"id":"a","cmd":"x","instances":2,"labels":{"MARATHON_SINGLE_INSTANCE_APP":"true"},
               "upgradeStrategy":{"minimumHealthCapacity":0,"maximumOverCapacity":0}}"#,
            "/instances",
        ),
        (
            r#"{"id":"a","cmd":"x","acceptedResourceRoles":["a/b"]}"#,
            "/acceptedResourceRoles(0)",
        ),
    ];
    for (body, path) in cases {
        let (status, got) = refuse(body);
        assert_eq!(status, 422, "{body}");
        assert_eq!(
            got["message"],
            json!("Object is not valid"),
            "{body}: {got}"
        );
        let paths: Vec<&Value> = got["details"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| &d["path"])
            .collect();
        assert!(
            paths.contains(&&json!(path)),
            "{body}: want {path} in {got}"
        );
    }
}

#[test]
fn conflicting_deprecated_fields_are_plain_422_messages() {
    let cases = [
        (
            r#"{"id":"a","cmd":"x","uris":["http://h/a"],"fetch":[{"uri":"http://h/b"}]}"#,
            "cannot specify both uris and fetch fields",
        ),
        (
            r#"{"id":"a","cmd":"x","ports":[80],"portDefinitions":[{"port":81}]}"#,
            "You cannot specify both ports and port definitions",
        ),
        (
            r#"{"id":"a","container":{"docker":{"image":"i","network":"BRIDGE"}},"networks":[{"mode":"host"}]}"#,
            "container.docker.network",
        ),
        (
            r#"{"id":"a","container":{"docker":{"image":"i","portMappings":[{"containerPort":1}]},
                "portMappings":[{"containerPort":2}]},"networks":[{"mode":"container/bridge"}]}"#,
            "container.portMappings",
        ),
    ];
    for (body, needle) in cases {
        let (status, got) = refuse(body);
        assert_eq!(status, 422, "{body}");
        let obj = got.as_object().expect("object body");
        assert_eq!(obj.len(), 1, "only a message: {got}");
        let msg = got["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{msg}");
    }
}

#[test]
fn the_marathon_kitchen_sink_example_is_refused() {
    // docs/.../examples/app.json is intentionally invalid: both cmd and args.
    let (status, got) = refuse(
        r#"{"id":"/foo","cmd":"sleep 1","args":["sleep","1"],"instances":2,"cpus":1,"mem":1024,
            "container":{"type":"DOCKER","docker":{"image":"group/image"}}}"#,
    );
    assert_eq!(status, 422);
    assert_eq!(got["details"][0]["path"], json!("/"));
}

#[test]
fn errors_answer_as_application_json() {
    let Err(err) = AppDefinition::parse(b"{\"id\": 5}") else {
        panic!("accepted")
    };
    let resp = MarathonError::from(err).into_response();
    assert_eq!(resp.status().as_u16(), 422);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(ct.starts_with("application/json"), "{ct}");
    let _: MarathonError = MarathonError::Unprocessable(String::new());
}
