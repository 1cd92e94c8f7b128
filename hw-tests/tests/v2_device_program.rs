//! On a real NVIDIA GPU, the cgroup v2 device program (the agent's own code: `Limits` with the
//! GPU rules of one GPU, `DeviceFilter::for_limits`, installed as the v2 path installs it) on a
//! task cgroup: a shell in it opens its real `/dev/nvidiaN` and `/dev/nvidiactl`, and gets EPERM
//! for every other NVIDIA minor (mknod'd nodes 0..16 and the machine's other GPUs); reinstalling
//! the rules 50 times while it opens its GPU in a loop never fails an open nor lets another
//! through; `nvidia-smi -L` in it lists that one GPU. Without a GPU each test prints why it
//! skipped; with one, a missing root or cgroup2 mount FAILS, naming what is missing.

use gantry_agentd::containerizer::native::cgroup::devfilter::{self, DeviceFilter};
use gantry_agentd::containerizer::native::cgroup::{
    CgroupLayout, ContainerCgroup, HostMode, Limits,
};
use gantry_gpu::{gpu_device_rules, proc_char_majors, Gpu, NVIDIA_MAJOR};
use gantry_hw_tests::gpu_machine_or_skip;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The task cgroup: created by the containerizer's v2 code on a v2-only host, or (hybrid host) a
/// directory in the cgroup2 mount with the same program installed by `devfilter::install`.
struct TaskCgroup {
    dir: PathBuf,
    cgroup: Option<ContainerCgroup>,
}

impl TaskCgroup {
    fn new(name: &str, limits: &Limits) -> TaskCgroup {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test attaches BPF device programs to cgroups: run it as root"
        );
        let layout = CgroupLayout::detect().unwrap_or_else(|e| panic!("cgroup layout: {e}"));
        let root = layout.unified.clone().unwrap_or_else(|| {
            panic!("no cgroup2 hierarchy is mounted: the v2 device program cannot be tested here")
        });
        let rel = format!("gantry-hw-{name}-{}", std::process::id());
        let dir = root.join(&rel);
        if layout.mode == HostMode::Unified {
            println!(
                "cgroup v2-only host: the containerizer's v2 create at {}",
                dir.display()
            );
            let cg = ContainerCgroup::new(layout, rel);
            cg.create(limits)
                .unwrap_or_else(|e| panic!("create the task cgroup: {e}"));
            return TaskCgroup {
                dir,
                cgroup: Some(cg),
            };
        }
        println!(
            "hybrid host: the v2 program on {} (cgroup2 mount)",
            dir.display()
        );
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let tc = TaskCgroup { dir, cgroup: None };
        tc.install(limits);
        tc
    }

    fn install(&self, limits: &Limits) {
        let f = DeviceFilter::for_limits(limits).unwrap_or_else(|e| panic!("filter: {e}"));
        devfilter::install(&self.dir, &f).unwrap_or_else(|e| panic!("install: {e}"));
    }

    /// Starts `sh -c script` inside the cgroup (it waits on stdin until it has joined).
    fn spawn(&self, script: &str, args: &[String]) -> Child {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read go; {script}"))
            .arg("sh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        std::fs::write(self.dir.join("cgroup.procs"), child.id().to_string())
            .expect("join the task cgroup");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("release the shell");
        child
    }

    fn run(&self, script: &str, args: &[String]) -> (String, String) {
        let out = self
            .spawn(script, args)
            .wait_with_output()
            .expect("wait for sh");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for TaskCgroup {
    fn drop(&mut self) {
        let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let removed = match &self.cgroup {
            Some(cg) => cg.destroy(Duration::from_secs(5)).is_ok(),
            None => (0..500).any(|_| {
                let gone = std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists();
                if !gone {
                    std::thread::sleep(Duration::from_millis(10));
                }
                gone
            }),
        };
        if !removed {
            eprintln!("could not remove {}", self.dir.display());
        }
    }
}

/// The limits a task given `gpu` gets: its device rules and the host's char majors.
fn limits_for(gpu: &Gpu) -> Limits {
    let proc_devices = std::fs::read_to_string("/proc/devices").expect("read /proc/devices");
    let rules = gpu_device_rules(&[gpu], &proc_devices)
        .unwrap_or_else(|e| panic!("{e} (the GPU machine must have nvidia-uvm loaded)"));
    Limits {
        devices: Some(rules),
        host_char_majors: proc_char_majors(&proc_devices)
            .into_iter()
            .map(|(m, _)| m)
            .collect(),
        ..Default::default()
    }
}

/// Char nodes 195:`minor` for minors 0..16 and `extra`, made outside the cgroup in `dir`.
fn nvidia_nodes(dir: &Path, extra: u32) -> Vec<(u32, String)> {
    let mut minors: Vec<u32> = (0..16).collect();
    if !minors.contains(&extra) {
        minors.push(extra);
    }
    minors
        .into_iter()
        .map(|minor| {
            let p = dir.join(format!("nvidia{minor}"));
            nix::sys::stat::mknod(
                &p,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(u64::from(NVIDIA_MAJOR), u64::from(minor)),
            )
            .expect("mknod (outside the cgroup)");
            (minor, p.display().to_string())
        })
        .collect()
}

const OPEN_EACH: &str = r#"for f in "$@"; do if true <"$f"; then echo "open $f"; fi; done"#;

#[test]
fn a_v2_device_program_lets_a_task_open_only_its_gpu() {
    let Some(m) = gpu_machine_or_skip("a_v2_device_program_lets_a_task_open_only_its_gpu") else {
        return;
    };
    let gpu = &m.gpus[0];
    let cg = TaskCgroup::new("only", &limits_for(gpu));
    let nodes = tempfile::tempdir().expect("tempdir");
    let made = nvidia_nodes(nodes.path(), gpu.minor);
    let own = format!("/dev/nvidia{}", gpu.minor);
    let others: Vec<String> = m
        .gpus
        .iter()
        .filter(|g| g.minor != gpu.minor)
        .map(|g| format!("/dev/nvidia{}", g.minor))
        .collect();
    let mut args = vec![own.clone(), "/dev/nvidiactl".to_string()];
    args.extend(made.iter().map(|(_, p)| p.clone()));
    args.extend(others.iter().cloned());
    let (out, err) = cg.run(OPEN_EACH, &args);
    println!("opens in the task cgroup:\n{out}errors:\n{err}");
    assert!(
        out.contains(&format!("open {own}\n")),
        "its GPU opens: {err}"
    );
    assert!(
        out.contains("open /dev/nvidiactl\n"),
        "nvidiactl opens: {err}"
    );
    let own_made = made
        .iter()
        .find(|(mi, _)| *mi == gpu.minor)
        .map(|(_, p)| p.clone())
        .expect("its own mknod'd node");
    assert!(
        out.contains(&format!("open {own_made}\n")),
        "195:{} is its GPU wherever the node is: {err}",
        gpu.minor
    );
    for (minor, path) in made.iter().filter(|(mi, _)| *mi != gpu.minor) {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("{path}:")) && l.ends_with("Operation not permitted")),
            "195:{minor} must be EPERM: {err}"
        );
    }
    for path in &others {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("{path}:")) && l.ends_with("Operation not permitted")),
            "{path} (another GPU) must be EPERM: {err}"
        );
    }

    let (smi, smi_err) = cg.run("nvidia-smi -L", &[]);
    println!("nvidia-smi -L in the task cgroup:\n{smi}{smi_err}");
    let listed: Vec<&str> = smi.lines().filter(|l| l.starts_with("GPU ")).collect();
    assert_eq!(listed.len(), 1, "exactly its GPU: {smi}{smi_err}");
    assert!(listed[0].contains(&gpu.uuid), "{smi}");
}

#[test]
fn reinstalling_a_tasks_gpu_rules_never_fails_an_open_of_its_gpu() {
    let Some(m) =
        gpu_machine_or_skip("reinstalling_a_tasks_gpu_rules_never_fails_an_open_of_its_gpu")
    else {
        return;
    };
    let gpu = &m.gpus[0];
    let limits = limits_for(gpu);
    let cg = TaskCgroup::new("replace", &limits);
    let nodes = tempfile::tempdir().expect("tempdir");
    let other = nvidia_nodes(nodes.path(), gpu.minor)
        .into_iter()
        .find(|(mi, _)| *mi != gpu.minor)
        .map(|(_, p)| p)
        .expect("another minor");
    let started = nodes.path().join("started");
    let stop = nodes.path().join("stop");
    let child = cg.spawn(
        r#"n=0; fails=0; leaks=0; : >"$1"; while [ ! -e "$2" ]; do
             if ! true <"$3"; then fails=$((fails+1)); fi
             if true <"$4" 2>/dev/null; then leaks=$((leaks+1)); fi
             n=$((n+1)); done; echo "$n $fails $leaks""#,
        &[
            started.display().to_string(),
            stop.display().to_string(),
            format!("/dev/nvidia{}", gpu.minor),
            other,
        ],
    );
    while !started.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..50 {
        cg.install(&limits);
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::write(&stop, "").expect("stop the loop");
    let out = child.wait_with_output().expect("wait for the loop");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("opens / failures / leaks over 50 reinstalls: {text}");
    let nums: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(
        nums.len(),
        3,
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(nums[0] > 0, "the loop ran");
    assert_eq!(nums[1], 0, "an open of its GPU failed during a reinstall");
    assert_eq!(nums[2], 0, "another minor opened during a reinstall");
    assert_eq!(
        devfilter::attached(&cg.dir).expect("query").len(),
        1,
        "one program attached at the end"
    );
}
