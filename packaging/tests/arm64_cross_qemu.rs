//! The arm64 packages: cross-built for aarch64-unknown-linux-gnu with Debian's cross toolchain
//! (gcc-aarch64-linux-gnu) against multiarch hwloc (libhwloc-dev:arm64) by `packaging/build
//! --target`, packaged as `arm64` .debs and `aarch64` .rpms, and smoke-tested under
//! qemu-user-static: `gantry --version`, `gantry-agentd --help`, `gantry-masterd --help` and
//! `gantry doctor agent --json` run as arm64 binaries.

mod support;

use anyhow::{ensure, Context};
use std::process::Command;
use support::{build_packages, package, require, run};

const TARGET: &str = "aarch64-unknown-linux-gnu";

#[test]
fn arm64_packages_cross_build_and_run_under_qemu() -> anyhow::Result<()> {
    require("qemu-aarch64-static", "qemu-user-static")?;
    require("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu")?;
    require("readelf", "binutils")?;
    let all = build_packages(Some(TARGET), 1, "arm64")?;
    let dir = support::target_dir().join("packaging/arm64-extract");
    let _ = std::fs::remove_dir_all(&dir);
    for name in ["gantry-masterd", "gantry-agentd", "gantry"] {
        let deb = package(&all, name, ".deb")?;
        let arch = run(Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .arg("Architecture"))?;
        ensure!(arch.trim() == "arm64", "{name}.deb is for {arch}");
        let rpm = package(&all, name, ".rpm")?;
        ensure!(
            rpm.to_string_lossy().ends_with(".aarch64.rpm"),
            "{} is not an aarch64 rpm",
            rpm.display()
        );
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&dir))?;
    }
    let bin = |b: &str| dir.join("usr/bin").join(b);
    for b in ["gantry-masterd", "gantry-agentd", "gantry"] {
        let h = run(Command::new("readelf").arg("-h").arg(bin(b)))?;
        ensure!(h.contains("AArch64"), "{b} is not an arm64 binary: {h}");
    }
    let qemu = |b: &str, args: &[&str]| {
        Command::new("qemu-aarch64-static")
            .args(["-L", "/usr/aarch64-linux-gnu"])
            .arg(bin(b))
            .args(args)
            .output()
            .with_context(|| format!("qemu-aarch64-static {b}"))
    };
    let v = qemu("gantry", &["--version"])?;
    let version = String::from_utf8_lossy(&v.stdout).into_owned();
    ensure!(
        v.status.success() && version.starts_with(&format!("gantry {}", env!("CARGO_PKG_VERSION"))),
        "gantry --version under qemu: {version}{}",
        String::from_utf8_lossy(&v.stderr)
    );
    for b in ["gantry-agentd", "gantry-masterd"] {
        let h = qemu(b, &["--help"])?;
        let help = String::from_utf8_lossy(&h.stdout).into_owned();
        ensure!(
            h.status.success() && help.contains("--config"),
            "{b} --help under qemu: {help}{}",
            String::from_utf8_lossy(&h.stderr)
        );
    }
    // The doctor's verdicts depend on this host (and qemu-user); it must run and report.
    let d = qemu(
        "gantry",
        &[
            "doctor",
            "agent",
            "--json",
            "--work-dir",
            "/nonexistent/gantry-arm64",
        ],
    )?;
    let report: serde_json::Value = serde_json::from_slice(&d.stdout).with_context(|| {
        format!(
            "gantry doctor --json under qemu: {}{}",
            String::from_utf8_lossy(&d.stdout),
            String::from_utf8_lossy(&d.stderr)
        )
    })?;
    let checks = report["checks"].as_array().context("checks")?;
    ensure!(
        checks
            .iter()
            .any(|c| c["name"] == "hwloc" && c["status"] == "ok"),
        "hwloc (arm64 libhwloc under qemu) did not discover the topology: {report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "arm64 packages: {}",
        all.iter()
            .map(|p| format!(
                "{} {} KiB",
                p.file_name().unwrap_or_default().to_string_lossy(),
                std::fs::metadata(p).map(|m| m.len() / 1024).unwrap_or(0)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
