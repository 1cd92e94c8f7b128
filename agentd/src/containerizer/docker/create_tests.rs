//! Tests of the create request: command forms, environment, limits, refusals and GPUs (a fake
//! GPU set: no GPU is needed).

use super::*;
use crate::containerizer::LaunchSpec;
use gantry_proto::{
    CommandInfo, ContainerSpec, DockerNetwork, DockerPortMapping, GpuAssignment, NumaPlacement,
    Resources, TaskId, TaskInfo,
};
use std::path::PathBuf;

fn spec_of(docker: DockerSpec, command: CommandInfo) -> LaunchSpec {
    let task = TaskInfo {
        task_id: TaskId("web.1".into()),
        command,
        resources: Resources {
            cpus: 0.25,
            mem: 64.0,
            ..Resources::default()
        },
        ports: vec![31005],
        kill_grace_period_secs: 2.5,
        container: ContainerSpec {
            docker: Some(docker),
            ..ContainerSpec::default()
        },
        ..TaskInfo::default()
    };
    let mut env = BTreeMap::new();
    env.insert("PORT0".to_string(), "31005".to_string());
    env.insert("MESOS_SANDBOX".to_string(), "/host/sb".to_string());
    LaunchSpec {
        task,
        sandbox: PathBuf::from("/host/sb"),
        env,
        meta_dir: PathBuf::from("/host/meta"),
    }
}

fn nginx() -> DockerSpec {
    DockerSpec {
        image: "nginx:1.11".into(),
        network: DockerNetwork::Bridge,
        port_mappings: vec![DockerPortMapping {
            container_port: 80,
            host_port: true,
            protocol: "tcp".into(),
            name: None,
        }],
        ..DockerSpec::default()
    }
}

fn no_devices() -> HostDevices<'static> {
    HostDevices {
        proc_devices: "",
        exists: &|_| false,
    }
}

#[test]
fn the_seeds_nginx_maps_its_port_limits_and_labels() {
    let s = spec_of(nginx(), CommandInfo::default());
    let d = s.task.container.docker.clone().expect("docker");
    let p = plan(&s, &d, &DockerPolicy::default(), &no_devices()).expect("a plan");
    assert_eq!(p.name, "gantry-web.1");
    let b = &p.body;
    assert_eq!(b.image.as_deref(), Some("nginx:1.11"));
    assert_eq!(b.cmd, None, "no command: the image's own runs");
    assert_eq!(b.stop_timeout, Some(3));
    assert_eq!(b.labels.as_ref().expect("labels")[TASK_LABEL], "web.1");
    let env = b.env.as_ref().expect("env");
    assert!(env.contains(&"PORT0=31005".to_string()));
    assert!(env.contains(&"MESOS_SANDBOX=/mnt/mesos/sandbox".to_string()));
    let h = b.host_config.as_ref().expect("host config");
    assert_eq!(h.network_mode.as_deref(), Some("bridge"));
    assert_eq!(h.memory, Some(64 << 20));
    assert_eq!(h.nano_cpus, Some(250_000_000));
    assert_eq!(h.cpu_shares, Some(256));
    assert_eq!(h.privileged, Some(false));
    let bound = h.port_bindings.as_ref().expect("bindings")["80/tcp"]
        .as_ref()
        .expect("bound");
    assert_eq!(bound[0].host_port.as_deref(), Some("31005"));
}

#[test]
fn shell_commands_run_under_sh_and_argv_follows_the_entrypoint() {
    let shell = CommandInfo {
        value: Some("echo hi".into()),
        shell: true,
        ..CommandInfo::default()
    };
    let s = spec_of(nginx(), shell);
    let d = s.task.container.docker.clone().expect("docker");
    let p = plan(&s, &d, &DockerPolicy::default(), &no_devices()).expect("a plan");
    assert_eq!(
        p.body.entrypoint,
        Some(vec!["/bin/sh".to_string(), "-c".to_string()])
    );
    assert_eq!(p.body.cmd, Some(vec!["echo hi".to_string()]));
    let argv = CommandInfo {
        value: Some("redis-server".into()),
        arguments: vec!["redis-server".into(), "--port".into(), "6379".into()],
        ..CommandInfo::default()
    };
    let s = spec_of(nginx(), argv);
    let p = plan(&s, &d, &DockerPolicy::default(), &no_devices()).expect("a plan");
    assert_eq!(p.body.entrypoint, None);
    assert_eq!(p.body.cmd.expect("cmd").len(), 3);
}

#[test]
fn privileged_is_refused_unless_allowed() {
    let d = DockerSpec {
        privileged: true,
        ..nginx()
    };
    let s = spec_of(d.clone(), CommandInfo::default());
    let err = plan(&s, &d, &DockerPolicy::default(), &no_devices()).expect_err("refused");
    assert!(err.contains("privileged"), "{err}");
    let allowed = DockerPolicy {
        allow_privileged: true,
        ..DockerPolicy::default()
    };
    let p = plan(&s, &d, &allowed, &no_devices()).expect("allowed");
    assert_eq!(p.body.host_config.and_then(|h| h.privileged), Some(true));
}

#[test]
fn bad_image_names_are_refused() {
    let d = DockerSpec {
        image: "nginx latest".into(),
        ..nginx()
    };
    let s = spec_of(d.clone(), CommandInfo::default());
    assert!(plan(&s, &d, &DockerPolicy::default(), &no_devices()).is_err());
}

fn gpu(index: u32, minor: u32) -> GpuAssignment {
    GpuAssignment {
        index,
        minor,
        uuid: format!("GPU-{index}").into(),
        pci_bus_id: format!("0000:{:02x}:00.0", 0x30 + index).into(),
        caps_minors: Vec::new(),
    }
}

const PROC_DEVICES: &str =
    "Character devices:\n  1 mem\n195 nvidia-frontend\n234 nvidia-uvm\n\nBlock devices:\n  8 sd\n";

#[test]
fn gpus_pass_only_the_tasks_device_nodes_and_rules() {
    let mut s = spec_of(nginx(), CommandInfo::default());
    s.task.placement = Some(NumaPlacement {
        gpus: vec![gpu(2, 2), gpu(5, 5)],
        ..NumaPlacement::default()
    });
    let d = s.task.container.docker.clone().expect("docker");
    let devices = HostDevices {
        proc_devices: PROC_DEVICES,
        exists: &|p| p != "/dev/nvidia-modeset",
    };
    let p = plan(&s, &d, &DockerPolicy::default(), &devices).expect("a plan");
    let h = p.body.host_config.as_ref().expect("host");
    let nodes: Vec<&str> = h
        .devices
        .as_ref()
        .expect("devices")
        .iter()
        .filter_map(|m| m.path_on_host.as_deref())
        .collect();
    assert_eq!(
        nodes,
        [
            "/dev/nvidia2",
            "/dev/nvidia5",
            "/dev/nvidiactl",
            "/dev/nvidia-uvm",
            "/dev/nvidia-uvm-tools"
        ]
    );
    let rules = h.device_cgroup_rules.as_ref().expect("rules");
    assert!(rules.contains(&"c 195:2 rwm".to_string()));
    assert!(rules.contains(&"c 195:5 rwm".to_string()));
    assert!(rules.contains(&"c 234:0 rwm".to_string()));
    assert!(!rules.iter().any(|r| r == "c 195:3 rwm" || r.contains(":*")));
    let env = p.body.env.as_ref().expect("env");
    assert!(
        env.contains(&"NVIDIA_VISIBLE_DEVICES=GPU-2,GPU-5".to_string()),
        "{env:?}"
    );
    assert!(
        env.contains(&"CUDA_VISIBLE_DEVICES=0,1".to_string()),
        "{env:?}"
    );
}

#[test]
fn a_gpu_without_its_device_node_fails_with_a_reason() {
    let mut s = spec_of(nginx(), CommandInfo::default());
    s.task.placement = Some(NumaPlacement {
        gpus: vec![gpu(1, 1)],
        ..NumaPlacement::default()
    });
    let d = s.task.container.docker.clone().expect("docker");
    let devices = HostDevices {
        proc_devices: PROC_DEVICES,
        exists: &|_| false,
    };
    let err = plan(&s, &d, &DockerPolicy::default(), &devices).expect_err("no node");
    assert!(err.contains("/dev/nvidia1"), "{err}");
}

#[test]
fn container_names_are_docker_safe() {
    assert_eq!(container_name("a/b c.1"), "gantry-a_b_c.1");
}
