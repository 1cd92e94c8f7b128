//! Checks of services the host runs beside Gantry: the Docker daemon at `/var/run/docker.sock`
//! (not used yet: there is no Docker containerizer) and clock synchronisation (timedatectl,
//! chronyc, or systemd-timesyncd's flag file).

use super::{Check, Host, Probes, RealProbes};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

impl RealProbes {
    /// `GET /_ping` on the Docker API socket; the status line of the answer.
    pub(super) fn ping_docker(socket: &Path) -> Result<String, String> {
        let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(|e| e.to_string())?;
        let t = Some(Duration::from_secs(3));
        s.set_read_timeout(t).map_err(|e| e.to_string())?;
        s.set_write_timeout(t).map_err(|e| e.to_string())?;
        s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(s)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim().to_string())
    }

    /// Runs `program`: `None` when it is not installed.
    pub(super) fn run(program: &str, args: &[&str]) -> Option<Result<String, String>> {
        match std::process::Command::new(program).args(args).output() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(e.to_string())),
            Ok(o) if o.status.success() => {
                Some(Ok(String::from_utf8_lossy(&o.stdout).into_owned()))
            }
            Ok(o) => Some(Err(format!(
                "{} ({})",
                String::from_utf8_lossy(&o.stderr).trim(),
                o.status
            ))),
        }
    }
}

pub fn docker(host: &Host, probes: &dyn Probes) -> Check {
    const NAME: &str = "docker";
    let socket = host.path(DOCKER_SOCKET);
    let later = "the Docker containerizer is not built yet: Docker apps wait either way";
    if !socket.exists() {
        return Check::warn(
            NAME,
            format!("no Docker daemon at {DOCKER_SOCKET} ({later})"),
            "for Docker apps later: `apt-get install docker.io && systemctl enable --now docker`",
        );
    }
    match probes.docker_ping(&socket) {
        Ok(line) if line.contains(" 200") => Check::ok(
            NAME,
            format!("the Docker daemon answers at {DOCKER_SOCKET} ({later})"),
        ),
        Ok(line) => Check::warn(
            NAME,
            format!("{DOCKER_SOCKET} answers /_ping with {line:?} ({later})"),
            "`systemctl restart docker` and check `docker info`",
        ),
        Err(e) => Check::warn(
            NAME,
            format!("{DOCKER_SOCKET} exists but does not answer: {e} ({later})"),
            "`systemctl start docker` and check `docker info`",
        ),
    }
}

pub fn clock(host: &Host, probes: &dyn Probes) -> Check {
    const NAME: &str = "clock";
    let fix =
        "`timedatectl set-ntp true` (systemd-timesyncd), or install chrony: `apt-get install \
               chrony`";
    let why = "schedules, heartbeats and TLS certificates need the right time";
    if let Some(Ok(v)) = probes.command(
        "timedatectl",
        &["show", "--property=NTPSynchronized", "--value"],
    ) {
        return match v.trim() {
            "yes" => Check::ok(NAME, "synchronised (timedatectl: NTPSynchronized=yes)"),
            other => Check::fail(
                NAME,
                format!("not synchronised (timedatectl: NTPSynchronized={other}): {why}"),
                fix,
            ),
        };
    }
    if let Some(Ok(text)) = probes.command("chronyc", &["-n", "tracking"]) {
        let leap = text
            .lines()
            .find_map(|l| l.strip_prefix("Leap status"))
            .map(|r| r.trim_start_matches([' ', ':']).trim().to_string())
            .unwrap_or_default();
        return if leap == "Normal" {
            Check::ok(NAME, "synchronised (chronyc tracking: Leap status Normal)")
        } else {
            Check::fail(
                NAME,
                format!("not synchronised (chronyc tracking: Leap status {leap:?}): {why}"),
                "`chronyc sources` to see why; `systemctl restart chrony`",
            )
        };
    }
    if host.path("/run/systemd/timesync/synchronized").exists() {
        return Check::ok(
            NAME,
            "synchronised (/run/systemd/timesync/synchronized exists)",
        );
    }
    Check::warn(
        NAME,
        "unknown: neither timedatectl nor chronyc answered, and systemd-timesyncd has not flagged \
         a sync",
        fix,
    )
}

#[cfg(test)]
mod tests {
    use super::super::fake::FakeProbes;
    use super::super::Status;
    use super::*;

    fn host() -> (tempfile::TempDir, Host) {
        let t = tempfile::tempdir().expect("tempdir");
        let h = Host {
            root: t.path().to_owned(),
        };
        (t, h)
    }

    #[test]
    fn docker_absent_dead_and_alive() {
        let (t, h) = host();
        let c = docker(&h, &FakeProbes::default());
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.starts_with("no Docker daemon"));
        assert!(c.fix.as_deref().unwrap_or("").contains("docker.io"));
        std::fs::create_dir_all(t.path().join("var/run")).expect("mkdir");
        std::fs::write(t.path().join("var/run/docker.sock"), "").expect("w");
        let c = docker(&h, &FakeProbes::default());
        assert_eq!(c.status, Status::Warn);
        assert!(c
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("systemctl start docker"));
        let p = FakeProbes {
            docker: Some(Ok("HTTP/1.0 200 OK".into())),
            ..Default::default()
        };
        assert_eq!(docker(&h, &p).status, Status::Ok);
    }

    #[test]
    fn clock_from_timedatectl_chronyc_timesyncd_or_unknown() {
        let (t, h) = host();
        let c = clock(&h, &FakeProbes::default());
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.starts_with("unknown"));

        let mut p = FakeProbes::default();
        p.commands.insert("timedatectl", Ok("no\n".into()));
        let c = clock(&h, &p);
        assert_eq!(c.status, Status::Fail);
        assert!(c
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("timedatectl set-ntp true"));
        p.commands.insert("timedatectl", Ok("yes\n".into()));
        assert_eq!(clock(&h, &p).status, Status::Ok);

        let mut p = FakeProbes::default();
        p.commands.insert(
            "timedatectl",
            Err("System has not been booted with systemd".into()),
        );
        p.commands.insert(
            "chronyc",
            Ok("Reference ID    : 0A000001\nLeap status     : Not synchronised\n".into()),
        );
        let c = clock(&h, &p);
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("Not synchronised"));
        p.commands
            .insert("chronyc", Ok("Leap status     : Normal\n".into()));
        assert_eq!(clock(&h, &p).status, Status::Ok);

        std::fs::create_dir_all(t.path().join("run/systemd/timesync")).expect("mkdir");
        std::fs::write(t.path().join("run/systemd/timesync/synchronized"), "").expect("w");
        assert_eq!(clock(&h, &FakeProbes::default()).status, Status::Ok);
    }
}
