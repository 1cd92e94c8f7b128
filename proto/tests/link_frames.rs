//! Property tests ("fuzzing that keeps running", on stable Rust) of the agent link's frame decoding,
//! `AgentMessage::decode` (the master's side) and `MasterMessage::decode` (the agent's side):
//! generated messages round-trip exactly; random bytes, mutated and truncated valid frames, random
//! JSON values with real message tags, and very deep nesting never panic and give a clean error
//! (or, where the garbage happens to be a message, one that round-trips itself).

use gantry_proto::{
    AgentId, AgentInfo, AgentMessage, CommandInfo, ContainerSpec, FetchUri, GpuAssignment, GpuInfo,
    GpuUsage, MasterMessage, NumaDomain, NumaPlacement, PortRanges, Reason, Resources,
    StatusUpdate, TaskId, TaskInfo, TaskReport, TaskState, TaskStatus, TaskUsage, Usage,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use std::sync::Arc;

/// JSON has no NaN or infinity, so valid messages carry finite floats only (proptest's
/// `any::<f64>()` leaves them out; with `proptest::num::f64::ANY` the round trips fail).
fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        0.0f64..1e10,
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._/-]{0,12}",
        any::<String>(),
        Just("\"\\\u{0}\n{}[]".to_string()),
    ]
}

fn small_map() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
    btree_map(text(), text(), 0..3)
}

fn ports() -> impl Strategy<Value = PortRanges> {
    vec((any::<u16>(), any::<u16>()), 0..4).prop_map(PortRanges::new)
}

fn resources() -> impl Strategy<Value = Resources> {
    (finite(), finite(), finite(), any::<u32>(), ports()).prop_map(
        |(cpus, mem, disk, gpus, ports)| Resources {
            cpus,
            mem,
            disk,
            gpus,
            ports,
        },
    )
}

fn fetch_uri() -> impl Strategy<Value = FetchUri> {
    (
        text(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        option::of(text()),
    )
        .prop_map(|(uri, extract, executable, cache, dest_path)| FetchUri {
            uri,
            extract,
            executable,
            cache,
            dest_path,
        })
}

fn command() -> impl Strategy<Value = CommandInfo> {
    (
        option::of(text()),
        vec(text(), 0..3),
        any::<bool>(),
        small_map(),
        option::of(text()),
        vec(fetch_uri(), 0..3),
    )
        .prop_map(
            |(value, arguments, shell, environment, user, uris)| CommandInfo {
                value,
                arguments,
                shell,
                environment,
                user,
                uris,
            },
        )
}

fn placement() -> impl Strategy<Value = NumaPlacement> {
    let gpu = (
        any::<u32>(),
        any::<u32>(),
        text(),
        text(),
        vec(any::<u32>(), 0..3),
    )
        .prop_map(|(index, minor, uuid, bus, caps_minors)| GpuAssignment {
            index,
            minor,
            uuid: Arc::from(uuid),
            pci_bus_id: Arc::from(bus),
            caps_minors,
        });
    (
        option::of(any::<u32>()),
        vec(any::<u32>(), 0..4),
        vec(any::<u32>(), 0..2),
        vec(gpu, 0..2),
    )
        .prop_map(|(numa_node, cpus, mems, gpus)| NumaPlacement {
            numa_node,
            cpus,
            mems,
            gpus,
        })
}

fn task_info() -> impl Strategy<Value = TaskInfo> {
    (
        (text(), text(), text()),
        command(),
        resources(),
        vec(any::<u16>(), 0..3),
        finite(),
        small_map(),
        option::of(placement()),
        any::<bool>(),
    )
        .prop_map(
            |((id, name, agent), command, resources, ports, grace, labels, placement, net)| {
                TaskInfo {
                    task_id: TaskId(id),
                    name,
                    agent_id: AgentId(agent),
                    command,
                    resources,
                    ports,
                    kill_grace_period_secs: grace,
                    labels,
                    placement,
                    container: ContainerSpec {
                        private_network: net,
                        ..ContainerSpec::default()
                    },
                    health_checks: if net {
                        vec![gantry_proto::HealthCheckSpec {
                            protocol: gantry_proto::HealthProtocol::Command,
                            command: Some("true".into()),
                            interval_secs: grace,
                            ..Default::default()
                        }]
                    } else {
                        Vec::new()
                    },
                }
            },
        )
}

const REASONS: [Reason; 4] = [
    Reason::ReasonContainerLaunchFailed,
    Reason::ReasonContainerLimitationMemory,
    Reason::ReasonAgentRestarted,
    Reason::ReasonTaskHealthCheckStatusUpdated,
];

fn status() -> impl Strategy<Value = TaskStatus> {
    (
        (text(), option::of(text())),
        0..TaskState::ALL.len(),
        option::of(0..REASONS.len()),
        option::of(text()),
        finite(),
        (
            option::of(any::<i32>()),
            option::of(any::<i32>()),
            option::of(any::<bool>()),
        ),
    )
        .prop_map(
            |((id, agent), state, reason, message, timestamp, (exit_code, signal, healthy))| {
                TaskStatus {
                    task_id: TaskId(id),
                    agent_id: agent.map(AgentId),
                    state: TaskState::ALL[state],
                    reason: reason.map(|r| REASONS[r]),
                    message,
                    timestamp,
                    exit_code,
                    signal,
                    healthy,
                    health: healthy
                        .map(|alive| gantry_proto::HealthResult {
                            alive,
                            consecutive_failures: u32::from(!alive),
                            first_success: Some(timestamp),
                            last_failure_cause: (!alive).then(|| "HTTP status 500".into()),
                            ..Default::default()
                        })
                        .into_iter()
                        .collect(),
                }
            },
        )
}

fn update() -> impl Strategy<Value = StatusUpdate> {
    (any::<u64>(), text(), status()).prop_map(|(seq, uuid, status)| StatusUpdate {
        seq,
        uuid,
        status,
    })
}

fn gpu_info() -> impl Strategy<Value = GpuInfo> {
    (
        (any::<u32>(), any::<u32>(), text(), text(), any::<u64>()),
        (text(), option::of(any::<u32>()), vec(any::<u32>(), 0..3)),
        (
            option::of(text()),
            text(),
            any::<bool>(),
            option::of(text()),
        ),
    )
        .prop_map(
            |(
                (index, minor, uuid, name, memory_mib),
                (pci_bus_id, numa_node, nvlink_peers),
                (pcie_switch, mig_mode, healthy, unhealthy_reason),
            )| GpuInfo {
                index,
                minor,
                uuid,
                name,
                memory_mib,
                pci_bus_id,
                numa_node,
                nvlink_peers,
                pcie_switch,
                mig_mode,
                healthy,
                unhealthy_reason,
                mig: None,
            },
        )
}

fn agent_info() -> impl Strategy<Value = AgentInfo> {
    let domain = (
        any::<u32>(),
        vec(any::<u32>(), 0..3),
        finite(),
        vec(any::<u32>(), 0..2),
        vec(vec(any::<u32>(), 0..2), 0..2),
    )
        .prop_map(|(id, cpus, mem, gpus, cores)| NumaDomain {
            id,
            cpus,
            mem,
            gpus,
            cores,
        });
    (
        (text(), any::<u16>(), resources(), small_map()),
        (vec(domain, 0..2), vec(gpu_info(), 0..2), vec(text(), 0..2)),
        (
            text(),
            vec(text(), 0..2),
            vec(text(), 0..2),
            vec(text(), 0..2),
        ),
    )
        .prop_map(
            |(
                (hostname, port, resources, attributes),
                (numa_domains, gpus, topology_warnings),
                (version, containerizers, image_providers, networks),
            )| AgentInfo {
                hostname,
                port,
                resources,
                attributes,
                numa_domains,
                gpus,
                topology_warnings,
                version,
                containerizers,
                image_providers,
                networks,
            },
        )
}

fn gpu_usage() -> impl Strategy<Value = GpuUsage> {
    (
        (text(), any::<u32>(), finite()),
        (option::of(finite()), option::of(finite())),
        (option::of(any::<u64>()), option::of(any::<u64>())),
        (option::of(finite()), option::of(finite())),
        (any::<u64>(), vec(any::<u64>(), 0..3)),
    )
        .prop_map(
            |((uuid, index, timestamp), (gu, mu), (used, total), (power, temp), (n, xids))| {
                GpuUsage {
                    uuid,
                    index,
                    timestamp,
                    gpu_util_percent: gu,
                    memory_util_percent: mu,
                    memory_used_bytes: used,
                    memory_total_bytes: total,
                    power_watts: power,
                    temperature_celsius: temp,
                    xid_events: n,
                    xids,
                }
            },
        )
}

fn usage() -> impl Strategy<Value = TaskUsage> {
    (
        vec(gpu_usage(), 0..3),
        text(),
        finite(),
        (finite(), finite(), any::<u64>(), any::<u64>()),
        (
            option::of(any::<u64>()),
            any::<u64>(),
            any::<u64>(),
            finite(),
        ),
    )
        .prop_map(
            |(gpu_usage, id, timestamp, (user, system, rss, total), (limit, np, nt, tt))| {
                TaskUsage {
                    task_id: TaskId(id),
                    gpu_usage,
                    timestamp,
                    usage: Usage {
                        cpus_user_time_secs: user,
                        cpus_system_time_secs: system,
                        mem_rss_bytes: rss,
                        mem_total_bytes: total,
                        mem_limit_bytes: limit,
                        cpus_nr_periods: np,
                        cpus_nr_throttled: nt,
                        cpus_throttled_time_secs: tt,
                    },
                }
            },
        )
}

fn agent_message() -> impl Strategy<Value = AgentMessage> {
    let report = (task_info(), status()).prop_map(|(task, status)| TaskReport { task, status });
    prop_oneof![
        (
            any::<u32>(),
            option::of(text()),
            agent_info(),
            vec(report, 0..3)
        )
            .prop_map(|(v, id, info, tasks)| AgentMessage::Register {
                protocol_version: v,
                agent_id: id.map(AgentId),
                info,
                tasks,
            }),
        vec(usage(), 0..3).prop_map(|usage| AgentMessage::Heartbeat { usage }),
        update().prop_map(AgentMessage::StatusUpdate),
        (vec(gpu_info(), 0..3), any::<u32>())
            .prop_map(|(gpus, total_gpus)| AgentMessage::UpdateGpus { gpus, total_gpus }),
    ]
}

fn master_message() -> impl Strategy<Value = MasterMessage> {
    prop_oneof![
        (text(), any::<u64>()).prop_map(|(id, ms)| MasterMessage::Registered {
            agent_id: AgentId(id),
            heartbeat_interval_ms: ms,
        }),
        task_info().prop_map(|t| MasterMessage::LaunchTask { task: Box::new(t) }),
        (text(), option::of(finite())).prop_map(|(id, g)| MasterMessage::KillTask {
            task_id: TaskId(id),
            grace_period_secs: g,
        }),
        (text(), any::<u64>()).prop_map(|(id, seq)| MasterMessage::Acknowledge {
            task_id: TaskId(id),
            seq,
        }),
        text().prop_map(|reason| MasterMessage::Shutdown { reason }),
    ]
}

/// Decodes `frame` both ways; whatever decodes must re-encode to a frame that decodes the same.
fn decode_cleanly(frame: &str) -> Result<(), TestCaseError> {
    match AgentMessage::decode(frame) {
        Ok(m) => prop_assert_eq!(AgentMessage::decode(&m.encode()).ok(), Some(m)),
        Err(e) => prop_assert!(e.to_string().starts_with("not an agent message: ")),
    }
    match MasterMessage::decode(frame) {
        Ok(m) => prop_assert_eq!(MasterMessage::decode(&m.encode()).ok(), Some(m)),
        Err(e) => prop_assert!(e.to_string().starts_with("not a master message: ")),
    }
    Ok(())
}

/// One edit to a frame: delete a span, insert a JSON-ish snippet, or replace one character.
#[derive(Clone, Debug)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, &'static str),
    Replace(usize, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    const SNIPPETS: [&str; 14] = [
        "\"",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "null",
        "-1",
        "1e999",
        "\"type\":\"KILL_TASK\"",
        "18446744073709551616",
        "\\u0000",
        "\u{1F600}",
    ];
    prop_oneof![
        (any::<usize>(), 0usize..8).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), 0..SNIPPETS.len()).prop_map(|(at, i)| Edit::Insert(at, SNIPPETS[i])),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
    ]
}

/// Applies `edits` at char boundaries (positions are taken modulo the length).
fn mutate(frame: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = frame.chars().collect();
    for e in edits {
        let len = chars.len().max(1);
        match *e {
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                if at < end {
                    chars.drain(at..end);
                }
            }
            Edit::Insert(at, s) => {
                let at = at % (chars.len() + 1);
                chars.splice(at..at, s.chars());
            }
            Edit::Replace(at, c) => {
                if !chars.is_empty() {
                    chars[at % len] = c;
                }
            }
        }
    }
    chars.into_iter().collect()
}

/// A random JSON value, mostly objects whose `type` is a real tag, so decoding gets past the tag.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite().prop_map(Value::from),
        text().prop_map(Value::String),
        Just(Value::String("[1-65535]".into())),
        Just(Value::String("[9-3]".into())),
    ];
    let tree = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            btree_map(field_name(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    (0..TAGS.len(), btree_map(field_name(), tree, 0..8)).prop_map(|(tag, fields)| {
        let mut m: serde_json::Map<String, serde_json::Value> = fields.into_iter().collect();
        m.insert("type".into(), serde_json::Value::String(TAGS[tag].into()));
        serde_json::Value::Object(m)
    })
}

const TAGS: [&str; 10] = [
    "REGISTER",
    "HEARTBEAT",
    "STATUS_UPDATE",
    "UPDATE_GPUS",
    "REGISTERED",
    "LAUNCH_TASK",
    "KILL_TASK",
    "ACKNOWLEDGE",
    "SHUTDOWN",
    "NO_SUCH_TYPE",
];

/// Field names of the real messages (and a few that are not), so values land where they matter.
fn field_name() -> impl Strategy<Value = String> {
    const NAMES: [&str; 24] = [
        "protocol_version",
        "agent_id",
        "info",
        "tasks",
        "task",
        "status",
        "usage",
        "seq",
        "uuid",
        "gpus",
        "total_gpus",
        "heartbeat_interval_ms",
        "task_id",
        "grace_period_secs",
        "reason",
        "state",
        "timestamp",
        "resources",
        "ports",
        "command",
        "uris",
        "placement",
        "numa_domains",
        "x",
    ];
    (0..NAMES.len()).prop_map(|i| NAMES[i].to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn agent_messages_round_trip(m in agent_message()) {
        let frame = m.encode();
        prop_assert_eq!(AgentMessage::decode(&frame).ok(), Some(m));
        // The other side's decoder refuses it cleanly: no tag is shared.
        prop_assert!(MasterMessage::decode(&frame).is_err());
    }

    #[test]
    fn master_messages_round_trip(m in master_message()) {
        let frame = m.encode();
        prop_assert_eq!(MasterMessage::decode(&frame).ok(), Some(m));
        prop_assert!(AgentMessage::decode(&frame).is_err());
    }

    #[test]
    fn every_strict_prefix_of_a_frame_is_an_error(m in agent_message(), cut in any::<usize>()) {
        let frame = m.encode();
        let mut at = cut % frame.len();
        while !frame.is_char_boundary(at) {
            at -= 1;
        }
        prop_assert!(AgentMessage::decode(&frame[..at]).is_err(), "prefix {:?}", &frame[..at]);
    }

    #[test]
    fn mutated_frames_never_panic(
        a in agent_message(),
        m in master_message(),
        edits in vec(edit(), 1..6),
    ) {
        decode_cleanly(&mutate(&a.encode(), &edits))?;
        decode_cleanly(&mutate(&m.encode(), &edits))?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        decode_cleanly(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn random_json_with_real_tags_never_panics(v in json_value()) {
        decode_cleanly(&v.to_string())?;
    }
}

#[test]
fn deep_nesting_is_a_clean_error_not_a_stack_overflow() {
    for depth in [200usize, 10_000, 200_000] {
        let arrays = "[".repeat(depth) + &"]".repeat(depth);
        assert!(AgentMessage::decode(&arrays).is_err());
        let inside = format!(
            r#"{{"type":"LAUNCH_TASK","task":{}{}}}"#,
            "{\"labels\":".repeat(depth),
            "}".repeat(depth)
        );
        let e = MasterMessage::decode(&inside).expect_err("too deep");
        assert!(e.to_string().contains("recursion limit"), "{e}");
    }
}

#[test]
fn out_of_range_and_wrong_typed_fields_are_errors() {
    for frame in [
        r#"{"type":"ACKNOWLEDGE","task_id":"t","seq":-1}"#,
        r#"{"type":"ACKNOWLEDGE","task_id":"t","seq":18446744073709551616}"#,
        r#"{"type":"KILL_TASK","task_id":"t","grace_period_secs":1e999}"#,
        r#"{"type":"REGISTERED","agent_id":7,"heartbeat_interval_ms":1}"#,
        r#"{"type":"LAUNCH_TASK","task":{"task_id":"t","name":"n","agent_id":"a","command":{},"resources":{"ports":"[9-3]"}}}"#,
        r#"{"type":"LAUNCH_TASK","task":{"task_id":"t","name":"n","agent_id":"a","command":{},"resources":{"ports":"[1-65536]"}}}"#,
        r#"{"type":"LAUNCH_TASK"}"#,
        r#"{"type":"launch_task","task":{}}"#,
        r#"{"task_id":"t","seq":1}"#,
        "",
        "null",
    ] {
        assert!(MasterMessage::decode(frame).is_err(), "{frame}");
    }
    // An unknown field is ignored (newer peers may add some); the known ones still count.
    let m = MasterMessage::decode(r#"{"type":"ACKNOWLEDGE","task_id":"t","seq":1,"new":true}"#)
        .expect("unknown fields are ignored");
    assert_eq!(
        m,
        MasterMessage::Acknowledge {
            task_id: "t".into(),
            seq: 1
        }
    );
}
