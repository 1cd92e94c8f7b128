//! Reading processes from /proc: start times (to recognise a pid after an agent restart), liveness,
//! CPU time and memory of a process group.

use std::path::Path;

/// Fields of `/proc/<pid>/stat` that Gantry uses.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcStat {
    pub state: char,
    pub pgrp: i32,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    /// Start time in clock ticks since boot (field 22).
    pub start_time: u64,
    pub rss_pages: u64,
}

/// Parses a `/proc/<pid>/stat` line; the command name may hold spaces and parentheses.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: f[0] is field 3 (state), so field N is f[N - 3].
    let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(5 - 3)?.parse().ok()?,
        utime_ticks: num(14)?,
        stime_ticks: num(15)?,
        start_time: num(22)?,
        rss_pages: num(24)?,
    })
}

/// Reads `/proc/<pid>/stat`, or `None` when the process does not exist.
pub fn stat(pid: i32) -> Option<ProcStat> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|l| parse_stat(&l))
}

/// True when `pid` is a live (not zombie) process that started at `start_time`.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    matches!(stat(pid), Some(s) if s.start_time == start_time && s.state != 'Z' && s.state != 'X')
}

/// Every live process whose process group is `pgrp`.
pub fn group_members(pgrp: i32) -> Vec<(i32, ProcStat)> {
    let Ok(dir) = std::fs::read_dir(Path::new("/proc")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .filter(|(_, s)| s.pgrp == pgrp && s.state != 'Z')
        .collect()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), 100 where it cannot be read.
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|v| v as u64)
        .unwrap_or(100)
}

/// The page size in bytes.
pub fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map(|v| v as u64)
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_odd_command_names() {
        let line = "1234 (my (weird) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 987654 1000000 250 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.pgrp, 1234);
        assert_eq!(s.utime_ticks, 7);
        assert_eq!(s.stime_ticks, 3);
        assert_eq!(s.start_time, 987654);
        assert_eq!(s.rss_pages, 250);
    }

    #[test]
    fn sees_this_process_alive() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(is_alive(me, s.start_time));
        assert!(
            !is_alive(me, s.start_time + 1),
            "a different start time is another process"
        );
    }
}
