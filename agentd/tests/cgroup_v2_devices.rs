//! cgroup v2 device programs on the real kernel (run as root, on any host with a cgroup2 mount —
//! on this hybrid host `/sys/fs/cgroup/unified`): a shell moved into a test cgroup opens exactly
//! what the program allows, the program outlives its fd, the mknod test (one NVIDIA minor of 16
//! opens), and replacing the program 100 times under a tight open loop never lets one open fail.
//! A last test checks that the kernel and the interpreter agree on 40 random filters. Every test
//! removes the cgroups it makes (killing their processes first). A host without cgroup2 or root
//! FAILS, saying so.

use gantry_agentd::containerizer::native::cgroup::devfilter::{self, DeviceFilter};
use gantry_agentd::containerizer::native::cgroup::{CgroupLayout, Limits};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A v2 cgroup made for one test, removed on drop (its processes SIGKILLed first).
struct TestCgroup {
    dir: PathBuf,
}

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        assert!(
            nix::unistd::geteuid().is_root(),
            "these tests attach BPF programs to cgroups: run them as root"
        );
        let layout = CgroupLayout::detect().expect("cgroup layout");
        let root = layout.unified.clone().unwrap_or_else(|| {
            panic!("no cgroup2 hierarchy is mounted: the v2 device filter cannot be tested here")
        });
        assert!(
            root.join("cgroup.procs").is_file(),
            "{} is not a cgroup2 mount",
            root.display()
        );
        let dir = root.join(format!("gantry-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TestCgroup { dir }
    }

    fn install(&self, f: &DeviceFilter) {
        devfilter::install(&self.dir, f).unwrap_or_else(|e| panic!("install: {e}"));
    }

    fn attached(&self) -> usize {
        devfilter::attached(&self.dir).expect("query").len()
    }

    /// Starts `sh -c script`, moves it into this cgroup, then lets it run (it waits on stdin).
    fn spawn(&self, script: &str, args: &[&str]) -> Child {
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
            .expect("join the cgroup");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"go\n").expect("release the child");
        child
    }

    /// Runs `script` in the cgroup; (stdout, stderr).
    fn run(&self, script: &str, args: &[&str]) -> (String, String) {
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

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

fn filter(lines: &[&str]) -> DeviceFilter {
    let mut plan = vec![("devices.deny", "a".to_string())];
    plan.extend(lines.iter().map(|l| ("devices.allow", l.to_string())));
    DeviceFilter::from_v1_plan(&plan).expect("filter")
}

const OPEN_EACH: &str = r#"for f in "$@"; do if true <"$f"; then echo "open $f"; fi; done"#;

#[test]
fn a_shell_opens_dev_null_but_not_dev_zero_even_after_the_fd_is_closed() {
    let cg = TestCgroup::new("null");
    // install returns the program fd, dropped here: the attachment must keep the filter alive.
    cg.install(&filter(&["c 1:3 rwm"]));
    assert_eq!(cg.attached(), 1);
    std::thread::sleep(Duration::from_millis(50));
    let (out, err) = cg.run(OPEN_EACH, &["/dev/null", "/dev/zero"]);
    assert_eq!(out, "open /dev/null\n", "stderr: {err}");
    assert!(
        err.contains("/dev/zero: Operation not permitted"),
        "want EPERM for /dev/zero: {err}"
    );
    assert_eq!(cg.attached(), 1, "still attached after its fd was closed");
}

#[test]
fn mknod_test_a_one_gpu_task_opens_exactly_its_nvidia_node_of_16() {
    let cg = TestCgroup::new("mknod");
    // The rules a task given GPU minor 3 gets, built as the v2 path builds them.
    let proc_devices = std::fs::read_to_string("/proc/devices").expect("/proc/devices");
    let limits = Limits {
        devices: Some(gantry_gpu::gpu_device_rules_for_minors(&[3], &proc_devices)),
        host_char_majors: gantry_gpu::proc_char_majors(&proc_devices)
            .into_iter()
            .map(|(m, _)| m)
            .collect(),
        ..Default::default()
    };
    cg.install(&DeviceFilter::for_limits(&limits).expect("filter"));
    let nodes = tempfile::Builder::new()
        .prefix("gantry-mknod-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir");
    let mut paths = Vec::new();
    for minor in 0..16u64 {
        let p = nodes.path().join(format!("nvidia{minor}"));
        nix::sys::stat::mknod(
            &p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(195, minor),
        )
        .expect("mknod (outside the cgroup)");
        paths.push(p.display().to_string());
    }
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (out, err) = cg.run(OPEN_EACH, &args);
    let denied: Vec<&str> = err
        .lines()
        .filter(|l| l.ends_with("Operation not permitted"))
        .collect();
    assert_eq!(denied.len(), 15, "EPERM for every other minor: {err}");
    assert!(!denied.iter().any(|l| l.contains("/nvidia3:")), "{err}");
    // No driver behind 195:3 here, so the open that passed the filter fails in the kernel's
    // char device lookup (ENXIO), unless a real GPU 3 exists and it opened.
    let passed = out.contains("/nvidia3\n")
        || err
            .lines()
            .any(|l| l.contains("/nvidia3:") && !l.ends_with("Operation not permitted"));
    assert!(passed, "195:3 got past the filter: out {out:?} err {err:?}");
    // mknod inside the cgroup of a denied GPU node is refused too.
    let (_, err) = cg.run(
        r#"mknod "$1/x4" c 195 4 || true"#,
        &[&nodes.path().display().to_string()],
    );
    assert!(
        err.contains("Operation not permitted"),
        "mknod 195:4: {err}"
    );
}

#[test]
fn replacing_the_program_100_times_never_fails_an_open_then_a_new_rule_set_applies() {
    let cg = TestCgroup::new("replace");
    let a = filter(&["c 1:3 rwm"]);
    let b = filter(&["c 1:7 rwm", "c 1:3 rw"]);
    cg.install(&a);
    let marks = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let started = marks.path().join("started");
    let stop = marks.path().join("stop");
    let child = cg.spawn(
        // /dev/null must always open; /dev/zero never (both programs deny it): a moment with no
        // filter at all would let it through.
        r#"n=0; fails=0; leaks=0; : >"$1"; while [ ! -e "$2" ]; do
             if ! true </dev/null; then fails=$((fails+1)); fi
             if true </dev/zero 2>/dev/null; then leaks=$((leaks+1)); fi
             n=$((n+1)); done; echo "$n $fails $leaks""#,
        &[&started.display().to_string(), &stop.display().to_string()],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the loop never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..100 {
        cg.install(if i % 2 == 0 { &b } else { &a });
        assert_eq!(cg.attached(), 1, "replacement {i} left the old program");
    }
    std::fs::write(&stop, "").expect("stop");
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 3, "loop output {text:?}");
    assert_eq!(
        nums[1],
        0,
        "{} of {} opens failed while the program was replaced: {}",
        nums[1],
        nums[0],
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(nums[2], 0, "{} opens of /dev/zero got through", nums[2]);
    assert!(nums[0] > 0, "the loop ran");
    eprintln!(
        "{} rounds (open /dev/null, /dev/zero) during 100 replacements: none failed, none leaked",
        nums[0]
    );
    // Now a program without /dev/null.
    cg.install(&filter(&["c 1:5 rwm"]));
    let (out, err) = cg.run(OPEN_EACH, &["/dev/null", "/dev/zero"]);
    assert_eq!(out, "open /dev/zero\n", "stderr: {err}");
    assert!(err.contains("/dev/null: Operation not permitted"), "{err}");
}

#[test]
fn the_verifier_log_comes_back_on_a_bad_program() {
    let bad = [gantry_agentd::containerizer::native::cgroup::bpf::Insn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    }];
    // `exit` with r0 never written: the verifier refuses it and says why.
    let e = gantry_agentd::containerizer::native::cgroup::bpf::load_device_program(&bad)
        .expect_err("an uninitialised r0 must not load");
    assert!(e.to_string().contains("R0"), "{e}");
}

#[test]
fn the_kernel_agrees_with_the_interpreter_on_random_filters() {
    use devfilter::{FilterRule, ACC_MKNOD, ACC_READ, ACC_WRITE, DEV_BLOCK, DEV_CHAR};
    let cg = TestCgroup::new("agree");
    // /dev/null, /dev/zero, /dev/full, each opened for reading and for writing.
    let devices = [("/dev/null", 3u32), ("/dev/zero", 5), ("/dev/full", 7)];
    let script = r#"for f in "$@"; do
        if true <"$f"; then echo "$f r ok"; else echo "$f r no"; fi
        if true >"$f"; then echo "$f w ok"; else echo "$f w no"; fi
      done 2>/dev/null"#;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut disagreements = Vec::new();
    for round in 0..40 {
        let rules: Vec<FilterRule> = (0..next(5))
            .map(|_| FilterRule {
                allow: next(3) != 0,
                kind: [None, Some(DEV_CHAR), Some(DEV_BLOCK)][next(3) as usize],
                major: [None, Some(1), Some(2)][next(3) as usize],
                minor: [None, Some(3), Some(5), Some(7)][next(4) as usize],
                access: [
                    ACC_READ,
                    ACC_WRITE,
                    ACC_READ | ACC_WRITE,
                    ACC_MKNOD | ACC_WRITE,
                ][next(4) as usize],
            })
            .collect();
        // /dev/null must stay open for the shell's own `2>/dev/null`: allow writing it first.
        let mut all = vec![FilterRule {
            allow: true,
            kind: Some(DEV_CHAR),
            major: Some(1),
            minor: Some(3),
            access: ACC_WRITE,
        }];
        all.extend(rules);
        let f = DeviceFilter {
            default_allow: next(2) == 0,
            rules: all,
        };
        cg.install(&f);
        let args: Vec<&str> = devices.iter().map(|(p, _)| *p).collect();
        let (out, _) = cg.run(script, &args);
        for (path, minor) in devices {
            for (mode, acc) in [("r", ACC_READ), ("w", ACC_WRITE)] {
                let want = f.verdict(DEV_CHAR, 1, minor, acc);
                let prog = devfilter::interpret(&f.assemble(), (acc << 16) | DEV_CHAR, 1, minor);
                assert_eq!(prog, Some(u64::from(want)), "interpreter, round {round}");
                let line = format!("{path} {mode} {}", if want { "ok" } else { "no" });
                if !out.lines().any(|l| l == line) {
                    disagreements.push(format!("round {round}: want {line:?}; {f:?}"));
                }
            }
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}
