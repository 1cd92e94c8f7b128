//! A private Docker daemon for one test (Debian's docker.io): its own data root, exec root, pid
//! file, socket and bridge, with no iptables rules (published ports go through docker-proxy), and
//! the seed's images (`nginx:1.11`, `redis:3.0.3`, `ubuntu:latest`, ...) built from a
//! busybox-static root file system, since nothing can be pulled here. Everything it made goes
//! when it is dropped: containers, networks, mounts, the bridge and the daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Tests of one binary share the machine's two cores: one daemon at a time.
pub static ONE_DAEMON: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The page the stand-in nginx and httpi serve.
pub const PAGE: &str = "gantry docker test page\n";

/// A running private dockerd.
pub struct DockerDaemon {
    pub root: PathBuf,
    pub socket: PathBuf,
    /// docker.io's CLI.
    cli: PathBuf,
    bridge: String,
    daemon: Option<Child>,
}

/// Fails the test naming what is missing.
fn need(program: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{program} is missing: install Debian's {package} (scripts/deps does) to run the Docker \
         containerizer's tests"
    );
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl DockerDaemon {
    /// Starts a daemon under a fresh directory in /tmp and loads the test images.
    pub fn start() -> Self {
        let dockerd = need("dockerd", "docker.io");
        let cli = need("docker", "docker.io");
        let ip = need("ip", "iproute2");
        let busybox = need("busybox", "busybox-static");
        let id = uuid::Uuid::new_v4().simple().to_string();
        // Short: the socket path must fit in sun_path, the bridge name in 15 bytes.
        let root = PathBuf::from(format!("/tmp/gdk-{}", &id[..10]));
        std::fs::create_dir_all(&root).expect("the daemon's directory");
        let bridge = format!("gdk{}", &id[..10]);
        let subnet = 16 + (u32::from_str_radix(&id[10..12], 16).unwrap_or(0) % 200);
        run(
            Command::new(&ip).args(["link", "add", &bridge, "type", "bridge"]),
            "ip link add (a bridge for the test's dockerd)",
        );
        let mut d = DockerDaemon {
            socket: root.join("docker.sock"),
            root,
            cli,
            bridge,
            daemon: None,
        };
        run(
            Command::new(&ip).args([
                "addr",
                "add",
                &format!("172.30.{subnet}.1/24"),
                "dev",
                &d.bridge,
            ]),
            "ip addr add",
        );
        run(
            Command::new(&ip).args(["link", "set", &d.bridge, "up"]),
            "ip link set up",
        );
        let log = std::fs::File::create(d.root.join("dockerd.log")).expect("dockerd log");
        let child = Command::new(dockerd)
            .arg("--data-root")
            .arg(d.root.join("data"))
            .arg("--exec-root")
            .arg(d.root.join("exec"))
            .arg("--pidfile")
            .arg(d.root.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.socket.display()))
            .args(["--iptables=false", "--ip6tables=false", "--ip-masq=false"])
            .args(["--bridge", &d.bridge])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        d.daemon = Some(child);
        let start = Instant::now();
        while !d.docker(&["info"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the test's dockerd did not answer in 60 s:\n{}",
                d.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d.load_images(&busybox);
        d
    }

    /// Runs the docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.cli)
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .expect("run docker")
    }

    /// As [`DockerDaemon::docker`], failing the test when the command fails; its stdout.
    pub fn must(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Ids of the running containers labelled with `task_id`.
    pub fn containers_of(&self, task_id: &str) -> Vec<String> {
        self.must(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=gantry.task_id={task_id}"),
        ])
        .lines()
        .map(String::from)
        .collect()
    }

    /// Ids of all containers, running or not.
    pub fn all_containers(&self) -> Vec<String> {
        self.must(&["ps", "-aq", "--no-trunc"])
            .lines()
            .map(String::from)
            .collect()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The seed's images, each a busybox root with a command that stands in for the real one.
    fn load_images(&self, busybox: &Path) {
        let rootfs = self.root.join("rootfs");
        for d in ["bin", "etc", "tmp", "www", "var/log", "data"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("rootfs dir");
        }
        std::fs::copy(busybox, rootfs.join("bin/busybox")).expect("copy busybox");
        for applet in [
            "sh", "httpd", "sleep", "cat", "echo", "ls", "nc", "date", "env", "id", "true",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .expect("applet link");
        }
        std::fs::write(rootfs.join("www/index.html"), PAGE).expect("page");
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").expect("passwd");
        let tar = self.root.join("rootfs.tar");
        run(
            Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
            "tar of the test image",
        );
        let images: [(&str, &str); 5] = [
            (
                "nginx:1.11",
                r#"CMD ["/bin/httpd", "-f", "-p", "80", "-h", "/www"]"#,
            ),
            (
                "redis:3.0.3",
                r#"CMD ["/bin/nc", "-ll", "-p", "6379", "-e", "/bin/cat"]"#,
            ),
            ("ubuntu:latest", r#"CMD ["/bin/sh"]"#),
            (
                "dcoslabs/httpi:latest",
                r#"CMD ["/bin/sh", "-c", "exec httpd -f -p $PORT_HTTP -h /www"]"#,
            ),
            (
                "mesosphere/id-server:2.1.0",
                r#"CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]"#,
            ),
        ];
        for (tag, cmd) in images {
            let t = tar.display().to_string();
            self.must(&[
                "import",
                "--change",
                cmd,
                "--change",
                "ENV PATH=/bin",
                &t,
                tag,
            ]);
        }
    }
}

impl Drop for DockerDaemon {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", "-v", id]);
        }
        let _ = self.docker(&["network", "prune", "-f"]);
        let _ = self.docker(&["volume", "prune", "-f"]);
        if let Some(mut child) = self.daemon.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Whatever the daemon left mounted under its directories (overlay layers, shm, netns).
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let root = self.root.display().to_string();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|p| p.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}
