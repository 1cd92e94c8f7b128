//! What a container's cgroup enforces, computed from the task: CPU shares and CFS quota from
//! `cpus`, the memory limit from `mem`, a pids limit, the cpuset from the placement plan, devices.

use gantry_gpu::DeviceAccessRules;

/// Mesos's CFS period (100 ms) and minimum quota (1 ms).
pub const CFS_PERIOD_US: u64 = 100_000;
const MIN_CFS_QUOTA_US: u64 = 1_000;
/// Mesos's minimum memory limit (32 MiB).
const MIN_MEMORY_BYTES: u64 = 32 << 20;

/// Limits to apply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    /// CPUs (fractional); 0 for unlimited.
    pub cpus: f64,
    /// Memory in MiB; 0 for unlimited.
    pub mem_mib: f64,
    /// Maximum processes and threads.
    pub pids_max: Option<u64>,
    /// cpuset.cpus in list form (`0-3,8`), from the placement plan.
    pub cpuset_cpus: Option<String>,
    /// cpuset.mems in list form.
    pub cpuset_mems: Option<String>,
    /// NVIDIA device rules; `None` leaves devices as on the host.
    pub devices: Option<DeviceAccessRules>,
    /// Char majors from `/proc/devices` to keep allowed when devices are restricted (v1).
    pub host_char_majors: Vec<u32>,
}

impl Limits {
    /// `cpu.shares`: `max(1024 × cpus, 2)`.
    pub fn cpu_shares(&self) -> u64 {
        ((1024.0 * self.cpus) as u64).max(2)
    }

    /// CFS quota in µs per [`CFS_PERIOD_US`], `None` for unlimited.
    pub fn cfs_quota_us(&self) -> Option<u64> {
        (self.cpus > 0.0).then(|| ((CFS_PERIOD_US as f64 * self.cpus) as u64).max(MIN_CFS_QUOTA_US))
    }

    /// Memory limit in bytes, `None` for unlimited.
    pub fn memory_bytes(&self) -> Option<u64> {
        (self.mem_mib > 0.0).then(|| ((self.mem_mib * 1048576.0) as u64).max(MIN_MEMORY_BYTES))
    }
}

/// `[0, 1, 2, 5]` → `0-2,5`.
pub fn list_form(ids: &[u32]) -> String {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesos_formulas() {
        let l = Limits {
            cpus: 0.5,
            mem_mib: 16.0,
            ..Default::default()
        };
        assert_eq!(l.cpu_shares(), 512);
        assert_eq!(l.cfs_quota_us(), Some(50_000));
        assert_eq!(l.memory_bytes(), Some(32 << 20), "minimum 32 MiB");
        let tiny = Limits {
            cpus: 0.001,
            ..Default::default()
        };
        assert_eq!(tiny.cpu_shares(), 2);
        assert_eq!(tiny.cfs_quota_us(), Some(1_000));
        assert_eq!(Limits::default().memory_bytes(), None);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(list_form(&[5, 0, 1, 2, 2]), "0-2,5");
        assert_eq!(list_form(&[3]), "3");
        assert_eq!(list_form(&[]), "");
    }
}
