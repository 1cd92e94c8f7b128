//! `gantry apps`: Marathon apps through the master's `/v2/apps` API (spec §1.1): run one from
//! flags, deploy an app JSON file (create or update), list, show one with its tasks, scale,
//! restart, roll back to a stored version and delete. The commands that start a deployment follow
//! it to its end (`follow.rs`) unless given `--no-wait`.

pub(crate) mod follow;

pub use follow::FollowArgs;

use crate::client::{Client, RunArgs};
use crate::logs::encode_segment;
use crate::table::render;
use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;

/// `gantry apps ...`.
#[derive(clap::Subcommand)]
pub enum AppsCommand {
    /// Create an app from flags or from a Marathon app JSON file (does not wait).
    Run(RunArgs),
    /// Create or update the app of a Marathon app JSON file, then follow its deployment.
    Deploy {
        /// A Marathon app JSON file ("-" for standard input).
        file: PathBuf,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// List apps with their running counts and why any instance waits.
    #[command(alias = "ls")]
    List,
    /// An app's definition, deployments, last failure and tasks (host, state, health).
    Show {
        /// The app id, e.g. /web.
        id: String,
    },
    /// Set the app's instance count.
    Scale {
        /// The app id, e.g. /web.
        id: String,
        /// The number of instances.
        instances: u32,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Replace every task of the app, in a rolling way, with the same definition.
    Restart {
        /// The app id, e.g. /web.
        id: String,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Deploy a stored version of the app again (default: the version before the current one).
    Rollback {
        /// The app id, e.g. /web.
        id: String,
        /// A version from `GET /v2/apps/ID/versions` (a timestamp).
        version: Option<String>,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Delete an app and kill its tasks.
    #[command(alias = "rm")]
    Delete {
        /// The app id, e.g. /web.
        id: String,
        #[command(flatten)]
        follow: FollowArgs,
    },
}

/// Runs one `gantry apps` command.
pub async fn run(c: &Client, cmd: AppsCommand) -> anyhow::Result<()> {
    match cmd {
        AppsCommand::Run(a) => c.apps_run(a).await,
        AppsCommand::Deploy { file, follow } => deploy(c, &file, &follow).await,
        AppsCommand::List => c.apps_list().await,
        AppsCommand::Show { id } => show(c, &id).await,
        AppsCommand::Scale {
            id,
            instances,
            follow,
        } => {
            let id = absolute(&id);
            let body = json!({ "instances": instances });
            let q = force_query(&follow);
            let started = send(c, Method::PUT, &app_path(&id), &q, Some(&body)).await?;
            follow::finish(
                c,
                &id,
                started,
                &follow,
                &format!("scaled {id} to {instances}"),
            )
            .await
        }
        AppsCommand::Restart { id, follow } => {
            let id = absolute(&id);
            let path = format!("{}/restart", app_path(&id));
            let started = send(c, Method::POST, &path, &force_query(&follow), None).await?;
            follow::finish(c, &id, started, &follow, &format!("restarted {id}")).await
        }
        AppsCommand::Rollback {
            id,
            version,
            follow,
        } => rollback(c, &absolute(&id), version, &follow).await,
        AppsCommand::Delete { id, follow } => {
            let id = absolute(&id);
            let started = send(
                c,
                Method::DELETE,
                &app_path(&id),
                &force_query(&follow),
                None,
            )
            .await?;
            follow::finish(c, &id, started, &follow, &format!("deleted {id}")).await
        }
    }
}

/// `id` made absolute: `web` is `/web`.
fn absolute(id: &str) -> String {
    format!("/{}", id.trim_matches('/'))
}

/// `/v2/apps/ID` with each segment of the id encoded.
fn app_path(id: &str) -> String {
    let segments: Vec<String> = id
        .split('/')
        .filter(|s| !s.is_empty())
        .map(encode_segment)
        .collect();
    format!("/v2/apps/{}", segments.join("/"))
}

fn force_query(f: &FollowArgs) -> Vec<(&'static str, String)> {
    if f.force {
        vec![("force", "true".to_string())]
    } else {
        Vec::new()
    }
}

/// A deployment a request started: its id (from `Marathon-Deployment-Id`, the body's
/// `deploymentId`, or a created app's `deployments`) and the answer's body.
pub struct Started {
    pub deployment: Option<String>,
    pub body: Value,
}

/// Sends a deploying request; the deployment it started, else the master's error.
async fn send(
    c: &Client,
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> anyhow::Result<Started> {
    let resp = c.send(method, path, query, body).await?;
    let header = resp
        .headers()
        .get("Marathon-Deployment-Id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = Client::body(resp).await?;
    let deployment = header
        .or_else(|| body["deploymentId"].as_str().map(String::from))
        .or_else(|| body["deployments"][0]["id"].as_str().map(String::from));
    Ok(Started { deployment, body })
}

/// `gantry apps deploy FILE`: POST when the app is new, else PUT (the file replaces the whole
/// definition), then follow the deployment.
async fn deploy(c: &Client, file: &std::path::Path, follow: &FollowArgs) -> anyhow::Result<()> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let app: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let Some(id) = app["id"].as_str() else {
        bail!("{}: the app needs an \"id\"", file.display());
    };
    let id = absolute(id);
    let exists = c
        .get_with_query(&app_path(&id), &[])
        .await?
        .status()
        .is_success();
    let mut q = force_query(follow);
    let (started, verb) = if exists {
        q.push(("partialUpdate", "false".to_string()));
        (
            send(c, Method::PUT, &app_path(&id), &q, Some(&app)).await?,
            "updated",
        )
    } else {
        (
            send(c, Method::POST, "/v2/apps", &q, Some(&app)).await?,
            "created",
        )
    };
    follow::finish(c, &id, started, follow, &format!("{verb} {id}")).await
}

/// `gantry apps rollback ID [VERSION]`: `PUT {"version": v}`, which the master turns into the
/// stored definition of that version.
async fn rollback(
    c: &Client,
    id: &str,
    version: Option<String>,
    follow: &FollowArgs,
) -> anyhow::Result<()> {
    let version = match version {
        Some(v) => v,
        None => {
            let versions = c.get(&format!("{}/versions", app_path(id))).await?;
            // Newest first: the current version, then the one before it.
            match versions["versions"].get(1).and_then(Value::as_str) {
                Some(v) => v.to_string(),
                None => bail!("{id} has no version before the current one"),
            }
        }
    };
    let body = json!({ "version": version });
    let q = force_query(follow);
    let started = send(c, Method::PUT, &app_path(id), &q, Some(&body)).await?;
    follow::finish(
        c,
        id,
        started,
        follow,
        &format!("rolled {id} back to {version}"),
    )
    .await
}

/// `gantry apps show ID`.
async fn show(c: &Client, id: &str) -> anyhow::Result<()> {
    let id = absolute(id);
    let v = c
        .get_with_query(&app_path(&id), &[("embed", "app.waiting".to_string())])
        .await?;
    let v = Client::body(v).await?;
    let app = &v["app"];
    c.print(&v, || {
        let mut out = String::new();
        let mut line = |k: &str, val: String| {
            if !val.is_empty() {
                out.push_str(&format!("{k:<13}{val}\n"));
            }
        };
        line("id", text(&app["id"]));
        line("cmd", text(&app["cmd"]));
        if let Some(args) = app["args"].as_array().filter(|a| !a.is_empty()) {
            let args: Vec<String> = args.iter().map(text).collect();
            line("args", args.join(" "));
        }
        line("image", text(&app["container"]["docker"]["image"]));
        line(
            "instances",
            format!(
                "{} ({} running, {} staged, {} healthy, {} unhealthy)",
                app["instances"],
                app["tasksRunning"],
                app["tasksStaged"],
                app["tasksHealthy"],
                app["tasksUnhealthy"]
            ),
        );
        let mut res = format!(
            "cpus {} mem {} disk {}",
            app["cpus"], app["mem"], app["disk"]
        );
        if app["gpus"].as_f64().is_some_and(|g| g > 0.0) {
            res.push_str(&format!(" gpus {}", app["gpus"]));
        }
        line("resources", res);
        line("version", text(&app["version"]));
        let deployments: Vec<String> = app["deployments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| text(&d["id"]))
            .collect();
        line("deployments", deployments.join(", "));
        line("waiting", crate::client::waiting_text(&app["waiting"]));
        let f = &app["lastTaskFailure"];
        if !f.is_null() {
            line(
                "last failure",
                format!(
                    "{} {} on {}: {}",
                    text(&f["timestamp"]),
                    text(&f["state"]),
                    text(&f["host"]),
                    text(&f["message"])
                ),
            );
        }
        let rows: Vec<Vec<String>> = app["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                vec![
                    text(&t["id"]),
                    text(&t["host"]),
                    text(&t["state"]),
                    health(t),
                    text(&t["startedAt"]),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&render(
            &["TASK", "HOST", "STATE", "HEALTH", "STARTED"],
            &rows,
        ));
        out
    });
    Ok(())
}

/// A JSON string as text; empty for anything else.
fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A task's health: `healthy` when a check passes, `unhealthy` when checks ran and none passes,
/// `-` without checks.
fn health(t: &Value) -> String {
    let results = t["healthCheckResults"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if results.is_empty() {
        "-".into()
    } else if results.iter().any(|r| r["alive"] == true) {
        "healthy".into()
    } else {
        "unhealthy".into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn app_paths() {
        assert_eq!(super::absolute("web"), "/web");
        assert_eq!(super::absolute("/a/b/"), "/a/b");
        assert_eq!(super::app_path("/a/b"), "/v2/apps/a/b");
    }

    #[test]
    fn health_column() {
        let t = serde_json::json!({"healthCheckResults": [{"alive": false}, {"alive": true}]});
        assert_eq!(super::health(&t), "healthy");
        assert_eq!(super::health(&serde_json::json!({})), "-");
    }
}
