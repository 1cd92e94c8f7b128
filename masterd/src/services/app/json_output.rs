//! The app JSON Marathon returns (spec §3.1, §4.2): always-present fields always, optional ones
//! only when set or non-empty, `portDefinitions` only on host networking, and none of the keys that
//! marathon-python 0.13.0 rejects. Whole numbers are written as integers, as Marathon does.

use super::model::AppDefinition;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Number, Value};

/// Writes `x` as an integer when it is whole (`128`, not `128.0`), like Marathon's JSON writer.
pub(super) fn whole_as_int<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    number(*x).serialize(s)
}

fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::Number(Number::from(x as i64))
    } else {
        Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

impl Serialize for AppDefinition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id)?;
        if let Some(cmd) = &self.cmd {
            m.serialize_entry("cmd", cmd)?;
        }
        if let Some(args) = self.args.as_ref().filter(|a| !a.is_empty()) {
            m.serialize_entry("args", args)?;
        }
        if let Some(user) = &self.user {
            m.serialize_entry("user", user)?;
        }
        m.serialize_entry("instances", &self.instances)?;
        m.serialize_entry("cpus", &number(self.cpus))?;
        m.serialize_entry("mem", &number(self.mem))?;
        m.serialize_entry("disk", &number(self.disk))?;
        m.serialize_entry("gpus", &self.gpus)?;
        if let Some(p) = &self.numa_policy {
            // Gantry extension, only when given: marathon-python 0.13 rejects unknown keys.
            m.serialize_entry("numaPolicy", p)?;
        }
        if let Some(p) = &self.gpu_profile {
            // Gantry extension, only when given.
            m.serialize_entry("gpuProfile", p)?;
        }
        if self.gang {
            // Gantry extensions, only when set (docs/gang.md).
            m.serialize_entry("gang", &true)?;
        }
        if let Some(t) = self.gang_timeout_seconds {
            m.serialize_entry("gangTimeoutSeconds", &t)?;
        }
        m.serialize_entry("executor", &self.executor)?;
        m.serialize_entry("backoffSeconds", &self.backoff_seconds)?;
        m.serialize_entry("backoffFactor", &number(self.backoff_factor))?;
        m.serialize_entry("maxLaunchDelaySeconds", &self.max_launch_delay_seconds)?;
        if !self.env.is_empty() {
            m.serialize_entry("env", &self.env)?;
        }
        m.serialize_entry("labels", &self.labels)?;
        m.serialize_entry("networks", &self.networks)?;
        if self.is_host_networking() {
            m.serialize_entry("portDefinitions", &self.port_definitions)?;
        }
        m.serialize_entry("requirePorts", &self.require_ports)?;
        if let Some(c) = &self.container {
            m.serialize_entry("container", c)?;
        }
        if !self.health_checks.is_empty() {
            m.serialize_entry("healthChecks", &self.health_checks)?;
        }
        if !self.readiness_checks.is_empty() {
            m.serialize_entry("readinessChecks", &self.readiness_checks)?;
        }
        if !self.constraints.is_empty() {
            m.serialize_entry("constraints", &self.constraints)?;
        }
        if !self.fetch.is_empty() {
            m.serialize_entry("fetch", &self.fetch)?;
        }
        if !self.dependencies.is_empty() {
            m.serialize_entry("dependencies", &self.dependencies)?;
        }
        if !self.accepted_resource_roles.is_empty() {
            m.serialize_entry("acceptedResourceRoles", &self.accepted_resource_roles)?;
        }
        if let Some(t) = self.task_kill_grace_period_seconds {
            m.serialize_entry("taskKillGracePeriodSeconds", &number(t))?;
        }
        if let Some(r) = &self.residency {
            m.serialize_entry("residency", r)?;
        }
        m.serialize_entry("upgradeStrategy", &self.upgrade_strategy)?;
        m.serialize_entry("unreachableStrategy", &self.unreachable_strategy)?;
        m.serialize_entry("killSelection", &self.kill_selection)?;
        m.serialize_entry("role", &self.role)?;
        m.serialize_entry("version", &self.version)?;
        m.serialize_entry("versionInfo", &self.version_info)?;
        m.end()
    }
}
