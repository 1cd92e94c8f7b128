//! The native containerizer on the real kernel (run as root): namespaces, users, OOM, CPU quota,
//! pids, cpuset, GPU device rules, kill with freeze, and recovery after the launching process is
//! SIGKILLed. Every test checks that no process or cgroup of its containers is left behind.

// Tasks are built field by field from the default, as the agent receives them.
#![allow(clippy::field_reassign_with_default)]

use gantry_agentd::containerizer::native::cgroup::{CgroupLayout, ContainerCgroup, HostMode};
use gantry_agentd::containerizer::native::users::UserPolicy;
use gantry_agentd::containerizer::native::{NativeConfig, NativeContainerizer};
use gantry_agentd::containerizer::{Checkpoint, Containerizer, LaunchSpec, Recovered, Termination};
use gantry_proto::{GpuAssignment, NumaPlacement, Reason, TaskInfo};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Fails, naming what is missing, unless this runs as root on a host with usable cgroups.
fn layout() -> CgroupLayout {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (cgroups and namespaces): run them as root, as scripts/test does"
    );
    let l = CgroupLayout::detect().unwrap_or_else(|e| panic!("no usable cgroup hierarchy: {e}"));
    assert!(
        l.mode == HostMode::Unified || l.missing_v1().is_empty(),
        "cgroup v1 controllers missing: {:?}",
        l.missing_v1()
    );
    l
}

struct Rig {
    dir: tempfile::TempDir,
    cz: NativeContainerizer,
    parent: String,
}

impl Rig {
    fn new(test: &str) -> Rig {
        Self::with_pids(test, Some(512))
    }

    fn with_pids(test: &str, pids_max: Option<u64>) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        // The task's user (nobody) must be able to reach its sandbox.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let parent = format!("gantry-test-{}-{test}", std::process::id());
        let cz = NativeContainerizer::new(NativeConfig {
            shim_exe: PathBuf::from(env!("CARGO_BIN_EXE_gantry-agentd")),
            layout: layout(),
            cgroup_parent: parent.clone(),
            users: UserPolicy::default(),
            pids_max,
            images: None,
        });
        Rig { dir, cz, parent }
    }

    fn spec(&self, id: &str, cmd: &str, cpus: f64, mem: f64) -> LaunchSpec {
        spec_at(self.dir.path(), id, cmd, cpus, mem)
    }

    fn out(&self, id: &str, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(id).join("sandbox").join(file))
            .unwrap_or_default()
    }

    fn cgroup(&self, c: &Checkpoint) -> ContainerCgroup {
        self.cz.cgroup_of(c).expect("a cgroup")
    }

    async fn run(&self, spec: &LaunchSpec) -> (Checkpoint, Termination) {
        let c = self.cz.launch(spec).expect("launch");
        let t = tokio::time::timeout(Duration::from_secs(30), self.cz.wait(&c))
            .await
            .expect("task ends");
        let cg = self.cgroup(&c);
        self.cz.cleanup(&c);
        assert_gone(&cg, &[]);
        (c, t)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // The per-test parent cgroup, in every hierarchy.
        let _ = ContainerCgroup::new(layout(), &self.parent).destroy(Duration::from_millis(500));
    }
}

fn spec_at(root: &Path, id: &str, cmd: &str, cpus: f64, mem: f64) -> LaunchSpec {
    let mut task = TaskInfo::default();
    task.task_id = id.into();
    task.command.value = Some(cmd.into());
    task.command.shell = true;
    task.resources.cpus = cpus;
    task.resources.mem = mem;
    let sandbox = root.join(id).join("sandbox");
    let meta = root.join(id).join("meta");
    std::fs::create_dir_all(&sandbox).expect("sandbox");
    std::fs::create_dir_all(&meta).expect("meta");
    std::fs::set_permissions(root.join(id), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_string(),
        "/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    );
    env.insert("MESOS_SANDBOX".to_string(), sandbox.display().to_string());
    LaunchSpec {
        task,
        sandbox,
        env,
        meta_dir: meta,
    }
}

/// No process of `pids` alive, and the cgroup's directories removed.
fn assert_gone(cg: &ContainerCgroup, pids: &[i32]) {
    for p in pids {
        let alive = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        assert!(!alive, "process {p} of the container is still alive");
    }
    for d in cg.dirs() {
        assert!(!d.exists(), "cgroup {} was not removed", d.display());
    }
}

fn uid() -> String {
    format!("{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn runs_in_its_own_namespaces_as_nobody_with_a_private_tmp() {
    let rig = Rig::new("ns");
    let id = format!("ns-{}", uid());
    let marker = format!("/tmp/gantry-private-{id}");
    let cmd = format!(
        "echo pid=$$; echo uid=$(id -u); echo procs=$(ls /proc | grep -c '^[0-9]'); touch {marker}; ls {marker} && echo tmp=ok; echo hi > in-sandbox"
    );
    let spec = rig.spec(&id, &cmd, 0.5, 64.0);
    let (_, t) = rig.run(&spec).await;
    let out = rig.out(&id, "stdout");
    assert!(
        t.succeeded(),
        "{t:?}\nstdout: {out}\nstderr: {}",
        rig.out(&id, "stderr")
    );
    assert!(
        out.contains("pid=2\n"),
        "the shell is pid 2 (the init is 1): {out}"
    );
    assert!(
        out.contains("uid=65534\n"),
        "runs as nobody, never root: {out}"
    );
    assert!(out.contains("tmp=ok"), "{out}");
    let procs: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("procs=")?.parse().ok())
        .expect("procs line");
    // init, sh, the $(...) subshell, ls and grep.
    assert!(
        procs <= 5,
        "its /proc shows only its own pid namespace, saw {procs}"
    );
    assert!(
        !Path::new(&marker).exists(),
        "/tmp is private to the container"
    );
    assert_eq!(
        rig.out(&id, "in-sandbox"),
        "hi\n",
        "the sandbox is the working directory"
    );
}

#[tokio::test]
async fn a_task_past_its_memory_is_oom_killed_and_says_so() {
    let rig = Rig::new("oom");
    let id = format!("oom-{}", uid());
    let spec = rig.spec(
        &id,
        "dd if=/dev/zero of=/dev/null bs=256M count=1",
        0.5,
        32.0,
    );
    let (_, t) = rig.run(&spec).await;
    assert_eq!(
        t.limitation,
        Some(Reason::ReasonContainerLimitationMemory),
        "{t:?}"
    );
    assert!(t.message.contains("Memory limit"), "{}", t.message);
    assert!(!t.succeeded());
}

#[tokio::test]
async fn half_a_cpu_is_about_half_a_core() {
    let rig = Rig::new("cpu");
    let id = format!("cpu-{}", uid());
    let spec = rig.spec(&id, "while :; do :; done", 0.5, 64.0);
    let c = rig.cz.launch(&spec).expect("launch");
    let cg = rig.cgroup(&c);
    let u0 = rig.cz.usage(&c).expect("usage");
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let u1 = rig.cz.usage(&c).expect("usage");
    let used = (u1.cpus_user_time_secs + u1.cpus_system_time_secs)
        - (u0.cpus_user_time_secs + u0.cpus_system_time_secs);
    let share = used / t0.elapsed().as_secs_f64();
    let pids = cg.pids();
    rig.cz.kill(&c, Duration::from_millis(100)).await;
    rig.cz.cleanup(&c);
    assert_gone(&cg, &pids);
    assert!(
        (0.2..=0.65).contains(&share),
        "a busy loop given 0.5 cpus used {share:.2} of a core"
    );
    assert!(u1.cpus_nr_throttled > 0, "the CFS quota throttled it");
}

#[tokio::test]
async fn the_pids_limit_stops_a_fork_storm() {
    let rig = Rig::with_pids("pids", Some(10));
    let id = format!("pids-{}", uid());
    let spec = rig.spec(
        &id,
        "n=0; for i in $(seq 30); do sleep 2 & n=$((n+1)); done; echo started=$n; wait",
        0.5,
        64.0,
    );
    let (_, t) = rig.run(&spec).await;
    let err = rig.out(&id, "stderr");
    assert!(
        err.contains("fork") || err.contains("Resource temporarily unavailable"),
        "forks past pids.max=10 fail: {t:?} stderr: {err}"
    );
}

#[tokio::test]
async fn cpuset_and_memory_nodes_follow_the_placement_plan() {
    let rig = Rig::new("cpuset");
    let id = format!("cpuset-{}", uid());
    let mut spec = rig.spec(
        &id,
        "grep -E '^(Cpus_allowed_list|Mems_allowed_list)' /proc/self/status",
        0.5,
        64.0,
    );
    let last_cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32 - 1;
    spec.task.placement = Some(NumaPlacement {
        numa_node: Some(0),
        cpus: vec![last_cpu],
        mems: vec![0],
        gpus: vec![],
    });
    let (_, t) = rig.run(&spec).await;
    let out = rig.out(&id, "stdout");
    assert!(t.succeeded(), "{t:?}");
    assert!(
        out.contains(&format!("Cpus_allowed_list:\t{last_cpu}\n")),
        "{out}"
    );
    assert!(out.contains("Mems_allowed_list:\t0\n"), "{out}");
}

#[tokio::test]
async fn only_the_given_gpu_is_reachable() {
    let rig = Rig::new("devices");
    let id = format!("dev-{}", uid());
    let mut spec = rig.spec(
        &id,
        "cat devs/nvidia0; echo rc0=$?; cat devs/nvidia1; echo rc1=$?",
        0.5,
        64.0,
    );
    let devs = spec.sandbox.join("devs");
    std::fs::create_dir_all(&devs).expect("mkdir");
    for minor in [0u64, 1] {
        let path = devs.join(format!("nvidia{minor}"));
        nix::sys::stat::mknod(
            &path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(195, minor),
        )
        .expect("mknod 195:N (needs root)");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    }
    spec.task.placement = Some(NumaPlacement {
        gpus: vec![GpuAssignment {
            index: 0,
            minor: 0,
            uuid: "GPU-test-0".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let (_, _t) = rig.run(&spec).await;
    let err = rig.out(&id, "stderr");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("nvidia0") && l.contains("No such device or address")),
        "GPU 0 is allowed: opening it reaches the (absent) driver, ENXIO: {err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("nvidia1") && l.contains("Operation not permitted")),
        "GPU 1 is denied by the devices cgroup, EPERM: {err}"
    );
}

#[tokio::test]
async fn kill_takes_a_grandchild_that_ignores_sigterm_and_removes_the_cgroup() {
    let rig = Rig::new("kill");
    let id = format!("kill-{}", uid());
    let spec = rig.spec(
        &id,
        "trap '' TERM; sh -c \"trap '' TERM; sleep 1000\" & sleep 1000; wait",
        0.5,
        64.0,
    );
    let c = rig.cz.launch(&spec).expect("launch");
    let cg = rig.cgroup(&c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while cg.pids().len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pids = cg.pids();
    assert!(pids.len() >= 4, "init, sh, sh, sleep...: {pids:?}");
    let t0 = Instant::now();
    rig.cz.kill(&c, Duration::from_millis(800)).await;
    let took = t0.elapsed();
    let t = tokio::time::timeout(Duration::from_secs(5), rig.cz.wait(&c))
        .await
        .expect("ended");
    rig.cz.cleanup(&c);
    assert!(
        took >= Duration::from_millis(750),
        "SIGTERM was ignored, so it waited the grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(!t.succeeded(), "{t:?}");
    assert_gone(&cg, &pids);
}

/// Recovery of a launch the agent never checkpointed (it died between starting the container and
/// saving its checkpoint): `destroy_unrecorded` finds the container by its cgroup and ends it.
#[tokio::test]
async fn a_launch_that_was_never_checkpointed_is_destroyed_at_recovery() {
    let rig = Rig::new("unrecorded");
    let id = format!("lost-{}", uid());
    let spec = rig.spec(&id, "sleep 1000 & sleep 1000; wait", 0.1, 32.0);
    let c = rig.cz.launch(&spec).expect("launch");
    let cg = rig.cgroup(&c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while cg.pids().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pids = cg.pids();
    assert!(pids.len() >= 3, "init, sh, sleeps: {pids:?}");
    // The checkpoint `c` is "lost": recovery only knows the task and its meta dir.
    rig.cz.destroy_unrecorded(&spec.task, &spec.meta_dir);
    assert_gone(&cg, &pids);
}

/// Recovery: a helper process (this test binary, re-run) launches five containers and records
/// their checkpoints; the test SIGKILLs it, then re-adopts them with a fresh containerizer.
#[tokio::test]
async fn containers_survive_the_launcher_being_killed_and_are_readopted() {
    if let Ok(dir) = std::env::var("GANTRY_RECOVERY_HELPER_DIR") {
        return recovery_helper(Path::new(&dir));
    }
    let rig = Rig::new("recover");
    let dir = rig.dir.path().join("helper");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut helper = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "containers_survive_the_launcher_being_killed_and_are_readopted",
            "--test-threads=1",
        ])
        .env("GANTRY_RECOVERY_HELPER_DIR", &dir)
        .env("GANTRY_RECOVERY_PARENT", &rig.parent)
        .stdout(std::fs::File::create(rig.dir.path().join("helper.log")).expect("log"))
        .spawn()
        .expect("helper");
    let ready = dir.join("ready");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        if Instant::now() > deadline {
            let _ = helper.kill();
            let _ = helper.wait();
            let log =
                std::fs::read_to_string(rig.dir.path().join("helper.log")).unwrap_or_default();
            panic!("the helper never launched its containers:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(helper.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let _ = helper.wait();
    // The short one (exit 7 after 1 s) ends while nobody watches.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ckpts: Vec<Checkpoint> = (0..5)
        .map(|i| {
            serde_json::from_slice(&std::fs::read(dir.join(format!("c{i}.json"))).expect("ckpt"))
                .expect("json")
        })
        .collect();
    let mut running = 0;
    let mut exited = Vec::new();
    for c in &ckpts {
        match rig.cz.recover(c) {
            Recovered::Running => running += 1,
            Recovered::Exited(t) => exited.push(t),
        }
    }
    // Clean up before asserting, so a failure leaves nothing behind.
    for c in &ckpts {
        let cg = rig.cgroup(c);
        let pids = cg.pids();
        rig.cz.kill(c, Duration::from_millis(200)).await;
        rig.cz.cleanup(c);
        assert_gone(&cg, &pids);
    }
    assert_eq!(running, 4, "four still running, re-adopted");
    assert_eq!(exited.len(), 1, "{exited:?}");
    assert_eq!(
        exited[0].exit_code,
        Some(7),
        "the one that exited is reported with its code: {exited:?}"
    );
}

fn recovery_helper(dir: &Path) {
    let parent = std::env::var("GANTRY_RECOVERY_PARENT").expect("parent");
    let cz = NativeContainerizer::new(NativeConfig {
        shim_exe: PathBuf::from(env!("CARGO_BIN_EXE_gantry-agentd")),
        layout: layout(),
        cgroup_parent: parent,
        users: UserPolicy::default(),
        pids_max: Some(64),
        images: None,
    });
    for i in 0..5 {
        let cmd = if i == 0 {
            "sleep 1; exit 7"
        } else {
            "sleep 1000"
        };
        let spec = spec_at(dir, &format!("rec{i}-{}", uid()), cmd, 0.1, 32.0);
        let c = cz.launch(&spec).expect("launch");
        std::fs::write(
            dir.join(format!("c{i}.json")),
            serde_json::to_vec(&c).expect("json"),
        )
        .expect("write");
    }
    // Keep the sandboxes: the test owns them after the kill.
    std::fs::write(dir.join("ready"), "").expect("write");
    std::thread::sleep(Duration::from_secs(60));
}
