//! The Gantry extension `numaPolicy` on apps: parsed (`none`, `prefer`, `require`), refused with
//! Marathon's 422 `Invalid JSON` when unknown, emitted only when given, defaulting by `gpus`.

use gantry_masterd::alloc::NumaPolicy;
use gantry_masterd::services::app_definition::AppDefinition;
use serde_json::{json, Value};

#[test]
fn a_given_policy_is_kept_and_emitted() {
    let app = AppDefinition::parse(
        br#"{"id": "/train", "cmd": "x", "gpus": 2, "numaPolicy": "require"}"#,
    )
    .expect("valid");
    assert_eq!(app.numa_policy, Some(NumaPolicy::Require));
    assert_eq!(app.effective_numa_policy(), NumaPolicy::Require);
    let out = serde_json::to_value(&app).expect("serializes");
    assert_eq!(out["numaPolicy"], "require");
    let back = AppDefinition::from_json(&out, "/").expect("round trip");
    assert_eq!(back.numa_policy, Some(NumaPolicy::Require));
}

#[test]
fn without_a_policy_nothing_is_emitted_and_gpus_decide_the_default() {
    let gpu = AppDefinition::parse(br#"{"id": "/g", "cmd": "x", "gpus": 1}"#).expect("valid");
    assert_eq!(gpu.numa_policy, None);
    assert_eq!(gpu.effective_numa_policy(), NumaPolicy::Prefer);
    let out = serde_json::to_value(&gpu).expect("serializes");
    assert!(out.get("numaPolicy").is_none(), "{out}");
    let cpu = AppDefinition::parse(br#"{"id": "/c", "cmd": "x"}"#).expect("valid");
    assert_eq!(cpu.effective_numa_policy(), NumaPolicy::None);
}

#[test]
fn an_unknown_policy_is_a_422_in_marathons_format() {
    let e = AppDefinition::parse(br#"{"id": "/a", "cmd": "x", "numaPolicy": "strict"}"#)
        .expect_err("refused");
    let e = gantry_masterd::api::marathon::error::MarathonError::from(e);
    assert_eq!(e.status().as_u16(), 422);
    let body: Value = e.body();
    assert_eq!(
        body,
        json!({"message": "Invalid JSON", "details": [
            {"path": "/numaPolicy", "errors": ["error.unknown.enum.literal"]}
        ]})
    );
}
