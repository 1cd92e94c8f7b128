//! The environment Marathon gives an app's task (spec §2.5, Marathon's `EnvironmentHelper` and
//! `TaskBuilder`): the app and its resources, labels, named and legacy port variables. `PORT0..`,
//! `PORT`, `PORTS`, `HOST` and `MESOS_TASK_ID` are set by the agent for every task.

use super::app_definition::AppDefinition;
use std::collections::BTreeMap;

/// The longest environment variable name or value Marathon exports for a label.
const MAX_ENV_LENGTH: usize = 512;
const LABEL_PREFIX: &str = "MARATHON_APP_LABEL_";

/// A double as the JVM prints it (`1.0`, `0.1`, `128.0`), as Marathon's `toString` does.
pub fn jvm_double(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e7 {
        format!("{x:.1}")
    } else {
        x.to_string()
    }
}

/// A label key as an environment variable name: every run of characters outside `[a-zA-Z0-9_]`
/// becomes one `_`, then upper case.
pub fn env_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut in_run = false;
    for c in key.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_uppercase());
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// `MARATHON_APP_LABELS` (the exported keys, space-separated) and one `MARATHON_APP_LABEL_<KEY>`
/// per label whose key and value are short enough (Marathon skips the others).
fn label_env(labels: &BTreeMap<String, String>, env: &mut BTreeMap<String, String>) {
    let mut names = Vec::new();
    for (k, v) in labels {
        if k.len() >= MAX_ENV_LENGTH - LABEL_PREFIX.len() || v.len() >= MAX_ENV_LENGTH {
            continue;
        }
        let name = env_name(k);
        env.insert(format!("{LABEL_PREFIX}{name}"), v.clone());
        names.push(name);
    }
    env.insert("MARATHON_APP_LABELS".into(), names.join(" "));
}

/// For each host port of a task, in order: the port the app declared for it (service port on
/// host networking, container port otherwise; 0 = none) and its name.
fn declared_ports(app: &AppDefinition) -> Vec<(u32, Option<String>)> {
    if app.is_host_networking() {
        app.port_definitions
            .iter()
            .map(|p| (p.port, p.name.clone()))
            .collect()
    } else {
        app.port_mappings()
            .iter()
            .filter(|m| m.host_port.is_some())
            .map(|m| (m.container_port, m.name.clone()))
            .collect()
    }
}

/// The environment of a task of `app` given host `ports`: Marathon's variables, then the app's
/// own `env`, which wins over them as in Marathon.
pub fn task_env(app: &AppDefinition, ports: &[u16]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("MARATHON_APP_ID".into(), app.id.clone());
    env.insert("MARATHON_APP_VERSION".into(), app.version.clone());
    env.insert("MARATHON_APP_RESOURCE_CPUS".into(), jvm_double(app.cpus));
    env.insert("MARATHON_APP_RESOURCE_MEM".into(), jvm_double(app.mem));
    env.insert("MARATHON_APP_RESOURCE_DISK".into(), jvm_double(app.disk));
    env.insert("MARATHON_APP_RESOURCE_GPUS".into(), app.gpus.to_string());
    env.insert("MARATHON_APP_ENFORCE_GROUP_ROLE".into(), "false".into());
    if let Some(image) = app
        .container
        .as_ref()
        .and_then(|c| c.docker.as_ref())
        .map(|d| d.image.clone())
        .filter(|i| !i.is_empty())
    {
        env.insert("MARATHON_APP_DOCKER_IMAGE".into(), image);
    }
    label_env(&app.labels, &mut env);
    for ((declared, name), host) in declared_ports(app).into_iter().zip(ports) {
        if declared != 0 {
            env.insert(format!("PORT_{declared}"), host.to_string());
        }
        if let Some(name) = name {
            env.insert(format!("PORT_{}", name.to_uppercase()), host.to_string());
        }
    }
    env.extend(app.env.clone());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_on_the_jvm_and_label_keys_are_escaped() {
        assert_eq!(jvm_double(1.0), "1.0");
        assert_eq!(jvm_double(0.1), "0.1");
        assert_eq!(jvm_double(128.0), "128.0");
        assert_eq!(env_name("HAPROXY_0_VHOST"), "HAPROXY_0_VHOST");
        assert_eq!(env_name("com.example/team-name"), "COM_EXAMPLE_TEAM_NAME");
        assert_eq!(env_name("a..b"), "A_B", "a run of bad characters is one _");
        let mut labels = BTreeMap::new();
        labels.insert("ok".to_string(), "v".to_string());
        labels.insert("long".to_string(), "x".repeat(512));
        labels.insert("k".repeat(493), "v".to_string());
        let mut env = BTreeMap::new();
        label_env(&labels, &mut env);
        assert_eq!(env["MARATHON_APP_LABELS"], "OK");
        assert_eq!(env["MARATHON_APP_LABEL_OK"], "v");
        assert_eq!(
            env.len(),
            2,
            "over-long keys and values are skipped: {env:?}"
        );
    }

    #[test]
    fn app_variables_named_ports_and_the_docker_image() {
        let mut app = AppDefinition::with_defaults("/shop/web");
        app.version = "2026-12-02T06:00:00.000Z".into();
        app.port_definitions[0].port = 10001;
        app.port_definitions[0].name = Some("http-api".into());
        app.env.insert("MARATHON_APP_ID".into(), "mine".into());
        let env = task_env(&app, &[31005]);
        assert_eq!(
            env["PORT_HTTP-API"], "31005",
            "upper-cased, nothing else changed"
        );
        assert_eq!(env["PORT_10001"], "31005");
        assert_eq!(env["MARATHON_APP_VERSION"], "2026-12-02T06:00:00.000Z");
        assert_eq!(env["MARATHON_APP_RESOURCE_CPUS"], "1.0");
        assert_eq!(env["MARATHON_APP_RESOURCE_MEM"], "128.0");
        assert_eq!(env["MARATHON_APP_ID"], "mine", "the app's env wins");
        assert!(!env.contains_key("MARATHON_APP_DOCKER_IMAGE"));
        app.container = Some(
            serde_json::from_value(
                serde_json::json!({"type": "DOCKER", "docker": {"image": "python:3"}}),
            )
            .expect("container"),
        );
        assert_eq!(
            task_env(&app, &[31005])["MARATHON_APP_DOCKER_IMAGE"],
            "python:3"
        );
    }
}
