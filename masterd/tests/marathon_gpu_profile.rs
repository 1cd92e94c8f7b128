//! The Gantry extension `gpuProfile` on apps: kept and emitted only when given, refused with
//! Marathon's 422 `Object is not valid` (path `/gpuProfile`) when it is not a MIG profile name
//! or the app asks for no GPU, and a wrong type is Marathon's `Invalid JSON`.

use gantry_masterd::api::marathon::error::MarathonError;
use gantry_masterd::services::app_definition::AppDefinition;
use serde_json::{json, Value};

fn refused(body: &[u8]) -> (u16, Value) {
    let e = AppDefinition::parse(body).expect_err("refused");
    let e = MarathonError::from(e);
    (e.status().as_u16(), e.body())
}

#[test]
fn a_given_profile_is_kept_and_emitted_and_none_is_not() {
    let app = AppDefinition::parse(
        br#"{"id": "/infer", "cmd": "x", "gpus": 1, "gpuProfile": "1g.10gb"}"#,
    )
    .expect("valid");
    assert_eq!(app.gpu_profile.as_deref(), Some("1g.10gb"));
    let out = serde_json::to_value(&app).expect("serializes");
    assert_eq!(out["gpuProfile"], "1g.10gb");
    let back = AppDefinition::from_json(&out, "/").expect("round trip");
    assert_eq!(back.gpu_profile.as_deref(), Some("1g.10gb"));
    let whole = AppDefinition::parse(br#"{"id": "/w", "cmd": "x", "gpus": 1}"#).expect("valid");
    let out = serde_json::to_value(&whole).expect("serializes");
    assert!(out.get("gpuProfile").is_none(), "{out}");
}

#[test]
fn a_bad_profile_or_one_without_gpus_is_a_422_object_is_not_valid() {
    let (status, body) = refused(br#"{"id": "/a", "cmd": "x", "gpus": 1, "gpuProfile": "big"}"#);
    assert_eq!(status, 422);
    assert_eq!(body["message"], "Object is not valid", "{body}");
    assert_eq!(body["details"][0]["path"], "/gpuProfile", "{body}");
    let errors = body["details"][0]["errors"].to_string();
    assert!(errors.contains("'big' is not a MIG profile"), "{body}");

    let (status, body) = refused(br#"{"id": "/a", "cmd": "x", "gpuProfile": "1g.10gb"}"#);
    assert_eq!(status, 422);
    assert_eq!(body["details"][0]["path"], "/gpuProfile", "{body}");
    assert!(
        body["details"][0]["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("needs gpus of at least 1"),
        "{body}"
    );
}

#[test]
fn a_profile_that_is_not_a_string_is_invalid_json() {
    let (status, body) = refused(br#"{"id": "/a", "cmd": "x", "gpus": 1, "gpuProfile": 10}"#);
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"message": "Invalid JSON", "details": [
            {"path": "/gpuProfile", "errors": ["error.expected.jsstring"]}
        ]})
    );
}
