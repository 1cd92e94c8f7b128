//! Finding processes the agent started for a task but never checkpointed (it died between starting
//! them and saving their pid), by the marker argument and task file on their command line, so that
//! recovery can kill them instead of leaving a task running untracked next to its replacement.

use std::path::Path;

/// Pids of live processes started as `<exe> __gantry_executor <status_file> ...` (the plain-process
/// back end's shim).
pub fn shims_for(status_file: &Path) -> Vec<i32> {
    processes_with(crate::executor::EXECUTOR_ARG, status_file)
}

/// Pids of live processes whose command line holds `marker` followed by `file`.
pub fn processes_with(marker: &str, file: &Path) -> Vec<i32> {
    let want = file.as_os_str().as_encoded_bytes();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.windows(2)
                .any(|w| w[0] == marker.as_bytes() && w[1] == want)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_process_by_the_shim_marker_and_its_status_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("exit_status.json");
        // `sh -c SCRIPT MARKER FILE` carries the shim's marker and status file in its argv.
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("sleep 5; true")
            .arg(crate::executor::EXECUTOR_ARG)
            .arg(&status)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Until the child has exec'd, its command line is still this test's.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut found = shims_for(&status);
        while found.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = shims_for(&status);
        }
        let other = shims_for(&dir.path().join("other.json"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found, vec![pid]);
        assert!(
            other.is_empty(),
            "another task's status file matches nothing"
        );
    }
}
