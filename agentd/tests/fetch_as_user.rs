//! Local fetches read with the task user's permissions (issue 15), as root with real processes:
//! the app `{"id":"/x","cmd":"cat shadow","fetch":[{"uri":"/etc/shadow"}]}` through the native
//! task table fails instead of printing the host's `/etc/shadow`; a root-only file, a symlink to
//! it in a world-readable directory, a file in a closed directory, a directory and a device are
//! refused; a world-readable file still fetches (and is never cached); and at the fetcher level
//! the `process` back end's `RunAs::Agent` reads with the agent's own rights.

// Tasks are built field by field from the default, as the agent receives them.
#![allow(clippy::field_reassign_with_default)]

mod common;

use common::NativeTable;
use gantry_agentd::containerizer::native::users;
use gantry_agentd::containerizer::RunAs;
use gantry_agentd::fetcher::Fetcher;
use gantry_proto::{FetchUri, Reason, TaskInfo, TaskState};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The task the master makes of a Marathon app JSON: `cmd` through the shell, `fetch` as URIs,
/// `user` as asked (none: the agent's default, `nobody`).
fn task_of_app(id: &str, app: &str) -> TaskInfo {
    let app: serde_json::Value = serde_json::from_str(app).expect("app JSON");
    let mut t = TaskInfo::default();
    t.task_id = id.into();
    t.command.value = app["cmd"].as_str().map(String::from);
    t.command.shell = true;
    t.command.uris = serde_json::from_value(app["fetch"].clone()).expect("fetch");
    t.command.user = app["user"].as_str().map(String::from);
    t.command
        .environment
        .insert("PATH".into(), "/usr/bin:/bin".into());
    t.resources.cpus = 0.1;
    t.resources.mem = 32.0;
    t
}

fn rig(name: &str) -> NativeTable {
    let rig = NativeTable::new(name);
    rig.table.set_fetcher(Arc::new(Fetcher::new(
        rig.dir.path().join("cache"),
        1 << 20,
    )));
    rig
}

fn sandbox_of(rig: &NativeTable, id: &str) -> PathBuf {
    rig.table.work_dir().sandbox(&id.into())
}

#[tokio::test]
async fn the_shadow_app_cannot_read_the_hosts_etc_shadow() {
    let shadow = std::fs::metadata("/etc/shadow").expect("this host has an /etc/shadow");
    assert_eq!(
        shadow.permissions().mode() & 0o004,
        0,
        "the test needs an /etc/shadow that others cannot read"
    );
    let mut rig = rig("shadow");
    rig.table.launch(task_of_app(
        "shadow",
        r#"{"id":"/x","cmd":"cat shadow","fetch":[{"uri":"/etc/shadow"}]}"#,
    ));
    let s = rig.terminal("shadow").await;
    assert_eq!(s.state, TaskState::TaskFailed, "{s:?}");
    assert_eq!(s.reason, Some(Reason::ReasonContainerLaunchFailed));
    let msg = s.message.unwrap_or_default();
    assert!(
        msg.contains("Failed to fetch '/etc/shadow'")
            && msg.contains("/etc/shadow cannot be read as user 'nobody' (uid 65534)")
            && msg.contains("Permission denied"),
        "{msg}"
    );
    let sandbox = sandbox_of(&rig, "shadow");
    assert!(!sandbox.join("shadow").exists(), "nothing fetched");
    let out = std::fs::read_to_string(sandbox.join("stdout")).unwrap_or_default();
    assert!(!out.contains("root:"), "the task never ran: {out}");
}

/// A directory of test files (world-searchable, outside `/tmp`'s sticky rules): `secret` (root,
/// 0600), `link` -> `secret`, `public` (0644), `closed/` (0700) holding a 0644 `inner`, `dir/`.
fn files() -> tempfile::TempDir {
    let d = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let p = d.path();
    let mode = |path: &Path, m| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    mode(p, 0o755);
    std::fs::write(p.join("secret"), "root only\n").expect("write");
    mode(&p.join("secret"), 0o600);
    std::os::unix::fs::symlink(p.join("secret"), p.join("link")).expect("ln");
    std::fs::write(p.join("public"), "anyone\n").expect("write");
    mode(&p.join("public"), 0o644);
    std::fs::create_dir(p.join("closed")).expect("mkdir");
    std::fs::write(p.join("closed/inner"), "behind a closed door\n").expect("write");
    mode(&p.join("closed/inner"), 0o644);
    mode(&p.join("closed"), 0o700);
    std::fs::create_dir(p.join("dir")).expect("mkdir");
    d
}

fn uri(u: &str, dest: &str) -> FetchUri {
    FetchUri {
        uri: u.into(),
        extract: true,
        executable: false,
        cache: true,
        dest_path: Some(dest.into()),
    }
}

#[tokio::test]
async fn root_only_files_and_links_to_them_are_refused_readable_ones_fetch() {
    let f = files();
    let p = f.path().display().to_string();
    let mut rig = rig("local");
    let refused = [
        ("secret", format!("{p}/secret"), "Permission denied"),
        ("link", format!("file://{p}/link"), "Permission denied"),
        ("closed", format!("{p}/closed/inner"), "Permission denied"),
        (
            "dir",
            format!("{p}/dir"),
            "is not a regular file (a directory)",
        ),
        ("zero", "/dev/zero".to_string(), "a character device"),
        ("missing", format!("{p}/missing"), "No such file"),
    ];
    for (id, source, why) in &refused {
        let mut t = task_of_app(id, r#"{"cmd":"cat got","fetch":[]}"#);
        t.command.uris = vec![uri(source, "got")];
        rig.table.launch(t);
        let s = rig.terminal(id).await;
        assert_eq!(s.state, TaskState::TaskFailed, "{id}: {s:?}");
        assert_eq!(s.reason, Some(Reason::ReasonContainerLaunchFailed), "{id}");
        let msg = s.message.unwrap_or_default();
        assert!(
            msg.contains(why) && msg.contains(source.as_str()),
            "{id}: {msg}"
        );
        if *why == "Permission denied" {
            assert!(
                msg.contains("cannot be read as user 'nobody'"),
                "{id}: {msg}"
            );
        }
        assert!(
            !sandbox_of(&rig, id).join("got").exists(),
            "{id}: nothing fetched"
        );
    }

    let mut t = task_of_app("public", r#"{"cmd":"cat got","fetch":[]}"#);
    t.command.uris = vec![uri(&format!("file://{p}/public"), "got")];
    rig.table.launch(t);
    let s = rig.terminal("public").await;
    let out = std::fs::read_to_string(sandbox_of(&rig, "public").join("stdout"));
    assert_eq!(s.state, TaskState::TaskFinished, "{s:?} {out:?}");
    assert_eq!(out.expect("stdout"), "anyone\n");
    let cached = std::fs::read_dir(rig.dir.path().join("cache"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        cached, 0,
        "local files are never cached, even with cache: true"
    );
}

#[tokio::test]
async fn the_fetcher_reads_as_the_given_user_or_as_the_agent() {
    let f = files();
    let secret = format!("{}/secret", f.path().display());
    let work = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(work.path().join("cache"), 1 << 20);
    let sandbox = work.path().join("sandbox");
    std::fs::create_dir(&sandbox).expect("mkdir");
    let nobody = users::lookup("nobody").expect("a nobody user");
    let as_nobody = RunAs::User {
        user: nobody,
        helper: PathBuf::from(env!("CARGO_BIN_EXE_gantry-agentd")),
    };
    let e = fetcher
        .fetch_all(&[uri(&secret, "s")], &sandbox, &as_nobody)
        .await
        .expect_err("nobody may not read it");
    assert!(
        e.to_string().contains("cannot be read as user 'nobody'"),
        "{e}"
    );
    assert!(!sandbox.join("s").exists());
    // The `process` back end runs tasks as the agent (root here): they could read it anyway.
    fetcher
        .fetch_all(&[uri(&secret, "s")], &sandbox, &RunAs::Agent)
        .await
        .expect("the agent's own rights");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("s")).expect("s"),
        "root only\n"
    );
    let m = std::fs::metadata(sandbox.join("s")).expect("meta");
    assert_eq!(m.permissions().mode() & 0o777, 0o644);
}
