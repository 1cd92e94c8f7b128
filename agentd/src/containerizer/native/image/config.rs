//! The image's config (`config.Env`, `WorkingDir`, `Entrypoint`, `Cmd`, `User`) and how it is
//! applied to a task, as Mesos's docker/runtime isolator does: the image's Env under the task's
//! own, the task's command as a shell command in the image when it has one, else Entrypoint+Cmd.

use gantry_proto::CommandInfo;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What the runtime takes from an image's config (every field optional, as registries vary).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct RuntimeConfig {
    #[serde(rename = "Env")]
    pub env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir")]
    pub working_dir: Option<String>,
    #[serde(rename = "Entrypoint")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "User")]
    pub user: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigFile {
    config: Option<RuntimeConfig>,
}

impl RuntimeConfig {
    /// The `config` object of an image config blob; an empty one when it has none.
    pub fn parse(blob: &str) -> Result<RuntimeConfig, serde_json::Error> {
        let f: ConfigFile = serde_json::from_str(blob)?;
        Ok(f.config.unwrap_or_default())
    }

    /// The image's `Env` entries as pairs (entries without `=` are dropped).
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .flatten()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The task's argv in the image: its shell command (`/bin/sh -c`, the image's shell), its own
    /// argv when it gives one (appended to the Entrypoint, as Mesos does), else Entrypoint+Cmd.
    pub fn argv(&self, cmd: &CommandInfo) -> Option<Vec<String>> {
        let entry = self.entrypoint.clone().unwrap_or_default();
        match (&cmd.value, cmd.shell) {
            (Some(v), true) if !v.is_empty() => {
                Some(vec!["/bin/sh".into(), "-c".into(), v.clone()])
            }
            _ if !cmd.shell && !cmd.arguments.is_empty() => {
                let mut a = entry;
                a.extend(cmd.arguments.iter().cloned());
                Some(a)
            }
            (Some(v), false) if !v.is_empty() => Some(vec![v.clone()]),
            _ => {
                let mut a = entry;
                a.extend(self.cmd.clone().unwrap_or_default());
                (!a.is_empty()).then_some(a)
            }
        }
    }

    /// The directory the task starts in: the image's WorkingDir; `None` (the sandbox, as in
    /// Mesos) when it gives none.
    pub fn cwd(&self) -> Option<String> {
        match self.working_dir.as_deref() {
            Some(w) if w.starts_with('/') => Some(w.to_string()),
            _ => None,
        }
    }

    /// The task's environment: the image's Env, overridden by the task's (a `PATH` the image
    /// gives wins over the agent's, since the agent's names host directories).
    pub fn merge_env(&self, task_env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self.env_pairs().into_iter().collect();
        for (k, v) in task_env {
            if k == "PATH" && out.contains_key("PATH") {
                continue;
            }
            out.insert(k.clone(), v.clone());
        }
        out.entry("PATH".into()).or_insert_with(|| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf() -> RuntimeConfig {
        RuntimeConfig::parse(
            r#"{"architecture":"amd64","config":{"Env":["A=1","PATH=/bin"],"WorkingDir":"/srv",
            "Entrypoint":["/bin/httpd","-f"],"Cmd":["-p","80"]}}"#,
        )
        .expect("parse")
    }

    #[test]
    fn a_shell_command_runs_in_the_image_without_the_entrypoint() {
        let c = CommandInfo {
            value: Some("echo hi".into()),
            shell: true,
            ..CommandInfo::default()
        };
        assert_eq!(conf().argv(&c).expect("argv"), ["/bin/sh", "-c", "echo hi"]);
    }

    #[test]
    fn no_command_runs_entrypoint_and_cmd() {
        let c = CommandInfo::default();
        assert_eq!(
            conf().argv(&c).expect("argv"),
            ["/bin/httpd", "-f", "-p", "80"]
        );
        let args = CommandInfo {
            arguments: vec!["-p".into(), "8080".into()],
            ..CommandInfo::default()
        };
        assert_eq!(
            conf().argv(&args).expect("argv"),
            ["/bin/httpd", "-f", "-p", "8080"]
        );
        assert!(RuntimeConfig::default().argv(&c).is_none());
    }

    #[test]
    fn env_and_workdir_come_from_the_image_under_the_tasks() {
        let mut t = BTreeMap::new();
        t.insert("A".to_string(), "task".to_string());
        t.insert("PATH".to_string(), "/host/bin".to_string());
        let e = conf().merge_env(&t);
        assert_eq!(e["A"], "task");
        assert_eq!(e["PATH"], "/bin");
        assert_eq!(conf().cwd().as_deref(), Some("/srv"));
        assert_eq!(RuntimeConfig::default().cwd(), None);
    }
}
