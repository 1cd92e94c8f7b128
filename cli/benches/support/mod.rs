//! What the CLI's benchmarks share: the release binaries next to `gantry`, a daemon killed when
//! dropped, a free loopback port, a one-agent Gantry cluster (`gantry`), and Slurm as a peer to
//! compare with (`slurm`).
#![allow(dead_code)]

pub mod gantry;
pub mod slurm;

use std::path::PathBuf;
use std::process::Child;

/// A binary of the workspace, built by `cargo build --release --bins`.
pub fn bin(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_gantry"));
    let path = dir.parent().map(|d| d.join(name)).unwrap_or_default();
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release --bins` first",
        path.display()
    );
    path
}

/// A daemon, killed and reaped when dropped.
pub struct Killed(pub Child);

impl Killed {
    /// Starts `cmd` as a quiet daemon: warnings only, its output discarded.
    pub fn quiet(cmd: &mut std::process::Command) -> std::io::Result<Self> {
        cmd.env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(Killed)
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
