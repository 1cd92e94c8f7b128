//! `gantry deployments`: the deployments in progress (`GET /v2/deployments`, spec §1.4, §3.5) as a
//! table of their apps, steps and current actions, and cancelling one (`DELETE
//! /v2/deployments/ID`: with a rollback deployment, or with `--force` without).

use crate::client::Client;
use crate::table::render;
use anyhow::Context;
use serde_json::{json, Value};

/// `gantry deployments ...`.
#[derive(clap::Subcommand)]
pub enum DeploymentsCommand {
    /// List the deployments in progress: their apps, steps done of all, and current actions.
    #[command(alias = "ls")]
    List,
    /// Cancel a deployment; the master rolls its apps back in a new deployment (not with --force).
    Cancel {
        /// The deployment id (the ID column of `gantry deployments list`).
        id: String,
        /// Stop without rolling back (old and new tasks may stay mixed).
        #[arg(long)]
        force: bool,
    },
}

/// Runs one `gantry deployments` command.
pub async fn run(c: &Client, cmd: DeploymentsCommand) -> anyhow::Result<()> {
    match cmd {
        DeploymentsCommand::List => list(c).await,
        DeploymentsCommand::Cancel { id, force } => cancel(c, &id, force).await,
    }
}

async fn list(c: &Client) -> anyhow::Result<()> {
    let plans = c.get("/v2/deployments").await?;
    c.print(&plans, || {
        let rows: Vec<Vec<String>> = plans.as_array().into_iter().flatten().map(row).collect();
        render(&["ID", "APPS", "STEPS", "CURRENT ACTIONS"], &rows)
    });
    Ok(())
}

/// One deployment's row: the steps done are those before the current one.
fn row(p: &Value) -> Vec<String> {
    let apps: Vec<&str> = p["affectedApps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let current = p["currentStep"].as_u64().unwrap_or(0);
    let total = p["totalSteps"].as_u64().unwrap_or(0);
    let actions: Vec<String> = p["currentActions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(crate::apps::follow::action_text)
        .collect();
    vec![
        p["id"].as_str().unwrap_or_default().to_string(),
        apps.join(","),
        format!("{}/{total}", current.saturating_sub(1)),
        actions.join(", "),
    ]
}

async fn cancel(c: &Client, id: &str, force: bool) -> anyhow::Result<()> {
    let path = format!("/v2/deployments/{}", crate::logs::encode_segment(id));
    let mut r = c.request(reqwest::Method::DELETE, &path);
    if force {
        r = r.query(&[("force", "true")]);
    }
    let resp = r.send().await.with_context(|| c.unreachable())?;
    if resp.status() == reqwest::StatusCode::ACCEPTED {
        let body = json!({"deployment": id, "cancelled": true, "rollback": null});
        c.print(&body, || format!("cancelled {id} without a rollback"));
        return Ok(());
    }
    let body = Client::body(resp).await?;
    c.print(&body, || match body["deploymentId"].as_str() {
        Some(rb) => format!("cancelled {id}; rolling back in deployment {rb}"),
        None => format!("cancelled {id}"),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows() {
        let p = serde_json::json!({"id": "d1", "affectedApps": ["/web"], "currentStep": 2,
            "totalSteps": 3, "currentActions": [{"action": "ScaleApplication", "app": "/web"}]});
        assert_eq!(
            super::row(&p),
            vec!["d1", "/web", "1/3", "ScaleApplication /web"]
        );
    }
}
