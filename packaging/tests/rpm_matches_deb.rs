//! The .rpm packages against the .deb ones: `rpm -qlp` lists the same files as `dpkg-deb -c`,
//! both carry the workspace's version and the changelog's, the configs are marked as config
//! (dpkg conffiles, rpm `%config(noreplace)`), hwloc is a dependency and the NVIDIA driver is
//! not (NVML is loaded at run time: no binary links libnvidia-ml); and `rpm --root DIR -i` into
//! a Debian root runs the scriptlets (the gantry user, the join token 0600 owned by it), then
//! `rpm --root DIR -e` takes them away again.

mod support;

use anyhow::{ensure, Context};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use support::{host_packages, package, run, RootCopy};

const PACKAGES: [&str; 3] = ["gantry-masterd", "gantry-agentd", "gantry"];

/// The files (not directories) a .deb installs.
fn deb_files(deb: &Path) -> anyhow::Result<BTreeSet<String>> {
    let out = run(Command::new("dpkg-deb").arg("--contents").arg(deb))?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| !p.ends_with('/'))
        .map(|p| p.trim_start_matches('.').to_owned())
        .collect())
}

fn rpm_query(rpm: &Path, what: &[&str]) -> anyhow::Result<String> {
    run(Command::new("rpm").arg("-qp").args(what).arg(rpm))
}

/// The workspace's version, from the root Cargo.toml.
fn workspace_version() -> anyhow::Result<String> {
    let text = std::fs::read_to_string(support::workspace().join("Cargo.toml"))?;
    let v: toml::Value = toml::from_str(&text)?;
    v["workspace"]["package"]["version"]
        .as_str()
        .map(String::from)
        .context("workspace.package.version")
}

#[test]
fn rpm_files_versions_and_dependencies_match_the_deb() -> anyhow::Result<()> {
    support::require("rpm", "rpm")?;
    support::require("readelf", "binutils")?;
    let all = host_packages()?;
    let version = workspace_version()?;
    let changelog = std::fs::read_to_string(support::workspace().join("packaging/changelog"))?;
    ensure!(
        changelog.starts_with(&format!("gantry ({version}-1) ")),
        "packaging/changelog's first entry is not {version}-1: add one for the new version"
    );
    for name in PACKAGES {
        let deb = package(&all, name, ".deb")?;
        let rpm = package(&all, name, ".rpm")?;
        let rpm_files: BTreeSet<String> = rpm_query(rpm, &["--list"])?
            .lines()
            .map(String::from)
            .collect();
        let deb_files = deb_files(deb)?;
        ensure!(
            rpm_files == deb_files,
            "{name}: files only in the .rpm {:?}, only in the .deb {:?}",
            rpm_files.difference(&deb_files).collect::<Vec<_>>(),
            deb_files.difference(&rpm_files).collect::<Vec<_>>()
        );
        let v = rpm_query(rpm, &["--queryformat", "%{VERSION}-%{RELEASE} %{LICENSE}"])?;
        ensure!(v == format!("{version}-1 Apache-2.0"), "{name}.rpm: {v}");
        let dv = run(Command::new("dpkg-deb")
            .args(["-f"])
            .arg(deb)
            .arg("Version"))?;
        ensure!(
            dv.trim() == format!("{version}-1"),
            "{name}.deb version {dv}"
        );

        // Configs: conffiles in the .deb, %config(noreplace) in the .rpm.
        let conf = run(Command::new("sh").arg("-c").arg(format!(
            "dpkg-deb --ctrl-tarfile {} | tar -xO ./conffiles 2>/dev/null || true",
            deb.display()
        )))?;
        let rpm_conf = rpm_query(rpm, &["--configfiles"])?;
        let etc: Vec<&String> = deb_files
            .iter()
            .filter(|f| f.starts_with("/etc/"))
            .collect();
        for f in &etc {
            ensure!(
                conf.lines().any(|l| l == f.as_str()),
                "{name}.deb: {f} is not a conffile"
            );
            ensure!(
                rpm_conf.lines().any(|l| l == f.as_str()),
                "{name}.rpm: {f} is not %config"
            );
        }
        let flags = rpm_query(
            rpm,
            &["--queryformat", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]"],
        )?;
        for f in &etc {
            ensure!(
                flags
                    .lines()
                    .any(|l| l.starts_with(f.as_str()) && l.contains('n')),
                "{name}.rpm: {f} is not noreplace: {flags}"
            );
        }

        // Dependencies: hwloc where the binary links it, never the NVIDIA driver.
        let bin = format!("/usr/bin/{name}");
        let extract = tempfile_dir(name)?;
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&extract))?;
        let needed = run(Command::new("readelf")
            .args(["-d"])
            .arg(extract.join(bin.trim_start_matches('/'))))?;
        let _ = std::fs::remove_dir_all(&extract);
        ensure!(
            !needed.contains("nvidia"),
            "{bin} links the NVIDIA driver: {needed}"
        );
        let depends = run(Command::new("dpkg-deb")
            .args(["-f"])
            .arg(deb)
            .arg("Depends"))?;
        let requires = rpm_query(rpm, &["--requires"])?;
        ensure!(
            !depends.contains("nvidia") && !requires.contains("nvidia"),
            "{name} depends on the NVIDIA driver: {depends} / {requires}"
        );
        if needed.contains("libhwloc.so.15") {
            ensure!(
                depends.contains("libhwloc15"),
                "{name}.deb Depends: {depends}"
            );
            ensure!(
                requires.contains("libhwloc.so.15"),
                "{name}.rpm Requires: {requires}"
            );
        }
        if name == "gantry-agentd" {
            ensure!(
                needed.contains("libhwloc.so.15"),
                "gantry-agentd does not link hwloc: {needed}"
            );
        }
    }
    Ok(())
}

fn tempfile_dir(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let d = support::target_dir().join(format!("packaging/extract-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

#[test]
fn rpm_root_install_runs_the_scriptlets_and_erase_undoes_them() -> anyhow::Result<()> {
    support::require("rpm", "rpm")?;
    let all = host_packages()?;
    let root = RootCopy::new("rpm-root")?;
    let r = root.dir.to_str().context("root path")?.to_owned();
    run(Command::new("rpm").args(["--root", &r, "--initdb"]))?;
    let rpms: Vec<&Path> = PACKAGES
        .iter()
        .map(|n| package(&all, n, ".rpm"))
        .collect::<anyhow::Result<_>>()?;
    // --nodeps: the Debian root's libraries are dpkg's, not in its rpm database.
    let out = Command::new("rpm")
        .args(["--root", &r, "-i", "--nodeps"])
        .args(&rpms)
        .output()?;
    ensure!(
        out.status.success(),
        "rpm -i: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.dir.join("etc/passwd"))?;
    let gantry = passwd
        .lines()
        .find(|l| l.starts_with("gantry:"))
        .context("%pre did not create the gantry user")?;
    let uid: u32 = gantry.split(':').nth(2).context("uid")?.parse()?;
    let token = root.dir.join("etc/gantry/join-token");
    let meta = std::fs::metadata(&token).context("%post did not write /etc/gantry/join-token")?;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    ensure!(
        meta.permissions().mode() & 0o777 == 0o600 && meta.uid() == uid,
        "join token mode {:o} owner {}",
        meta.permissions().mode(),
        meta.uid()
    );
    let text = std::fs::read_to_string(&token)?;
    ensure!(
        gantry_token_lines(&text) == 1,
        "the join token file holds no single token: {text}"
    );
    for f in [
        "usr/bin/gantry-masterd",
        "usr/bin/gantry-agentd",
        "usr/bin/gantry",
        "etc/gantry/master.toml",
        "etc/gantry/agent.toml",
        "usr/lib/systemd/system/gantry-agentd.service",
    ] {
        ensure!(root.dir.join(f).exists(), "rpm -i did not install /{f}");
    }
    std::fs::create_dir_all(root.dir.join("var/lib/gantry/master"))?;
    std::fs::write(root.dir.join("var/lib/gantry/master/gantry.db"), "x")?;

    run(Command::new("rpm")
        .args(["--root", &r, "-e", "--nodeps"])
        .args(PACKAGES))?;
    for gone in [
        "usr/bin/gantry-masterd",
        "etc/gantry/join-token",
        "var/lib/gantry/master",
        "usr/lib/systemd/system/gantry-masterd.service",
    ] {
        ensure!(!root.dir.join(gone).exists(), "rpm -e left /{gone}");
    }
    Ok(())
}

/// Lines that are tokens (not blank, not `#` comments), as the daemons read the file.
fn gantry_token_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}
