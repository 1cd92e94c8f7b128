//! Following a deployment to its end: one progress line (redrawn in place on a terminal, plain
//! lines when it changes otherwise) until the deployment is gone from `/v2/deployments` (done),
//! or, after `--timeout`, an error naming why it has not finished (the placement reason, the
//! last task failure since the deployment began, or the step it is stuck in). Every app command
//! that starts a deployment ends here.

use super::Started;
use crate::client::Client;
use anyhow::bail;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// The flags of a command that starts a deployment.
#[derive(clap::Args)]
pub struct FollowArgs {
    /// Return once the master accepted the change, without following the deployment.
    #[arg(long)]
    pub no_wait: bool,
    /// Stop following after this long (e.g. 90s, 5m) and exit 1 with why the deployment has not
    /// finished (it keeps running).
    #[arg(long, default_value = "10m", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Cancel any deployment that locks the app (force=true).
    #[arg(long)]
    pub force: bool,
}

/// A duration: seconds (`90`, `90s`), minutes (`5m`) or hours (`1h`).
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 90s, 5m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{s}`: the unit must be s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

/// Ends a command that started a deployment: with `--no-wait` (or when the master started none)
/// prints `done` at once, else follows the deployment first.
pub async fn finish(
    c: &Client,
    app: &str,
    started: Started,
    f: &FollowArgs,
    done: &str,
) -> anyhow::Result<()> {
    let Some(deployment) = started.deployment else {
        c.print(&started.body, || done.to_string());
        return Ok(());
    };
    if f.no_wait {
        c.print(&started.body, || format!("{done}: deployment {deployment}"));
        return Ok(());
    }
    let last = follow(c, app, &deployment, f.timeout).await?;
    c.print(&started.body, || match last.as_ref() {
        Some(a) => format!(
            "{done}: deployment {deployment} finished, {} of {} tasks running",
            a["tasksRunning"], a["instances"]
        ),
        None => format!("{done}: deployment {deployment} finished"),
    });
    Ok(())
}

/// Follows `deployment` of `app` until it is gone (the app as it is then, `None` once deleted)
/// or `timeout` passes (an error saying why it has not finished).
async fn follow(
    c: &Client,
    app: &str,
    deployment: &str,
    timeout: Duration,
) -> anyhow::Result<Option<Value>> {
    let began = Instant::now();
    let began_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    let shown = !c.json_output();
    let tty = shown && std::io::stdout().is_terminal();
    let mut last_line = String::new();
    loop {
        let plans = c.get("/v2/deployments").await?;
        let plan = plans
            .as_array()
            .and_then(|a| a.iter().find(|d| d["id"] == deployment))
            .cloned();
        let state = app_state(c, app).await?;
        let Some(plan) = plan else {
            if tty && !last_line.is_empty() {
                println!();
            }
            return Ok(state);
        };
        let line = progress_line(app, &plan, state.as_ref());
        if tty {
            print!("\r\x1b[2K{line}");
            let _ = std::io::stdout().flush();
        } else if shown && line != last_line {
            println!("{line}");
        }
        last_line = line;
        if began.elapsed() >= timeout {
            if tty {
                println!();
            }
            let why = stuck_reason(&plan, state.as_ref(), began_at);
            bail!(
                "deployment {deployment} of {app} did not finish within {}s: {why}; it keeps \
                 running (`gantry deployments cancel {deployment}` stops it)",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The app with its `waiting` extension; `None` when it does not exist (being deleted).
async fn app_state(c: &Client, app: &str) -> anyhow::Result<Option<Value>> {
    let resp = c
        .get_with_query(
            &super::app_path(app),
            &[("embed", "app.waiting".to_string())],
        )
        .await?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body = Client::body(resp).await?;
    Ok(Some(body["app"].clone()))
}

/// The actions of the plan's current step, those of `app` first (all when none is `app`'s).
fn current_actions(app: &str, plan: &Value) -> String {
    let actions: Vec<&Value> = plan["currentActions"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let own: Vec<&str> = actions
        .iter()
        .filter(|a| a["app"] == app)
        .filter_map(|a| a["action"].as_str())
        .collect();
    if !own.is_empty() {
        return own.join(", ");
    }
    let all: Vec<String> = actions.iter().map(|a| action_text(a)).collect();
    all.join(", ")
}

/// One action of a deployment step as `ScaleApplication /web`.
pub(crate) fn action_text(a: &Value) -> String {
    format!(
        "{} {}",
        a["action"].as_str().unwrap_or_default(),
        a["app"].as_str().unwrap_or_default()
    )
}

/// E.g. `deploying /web: step 1 of 2 (StartApplication), 2 of 3 tasks running`.
pub(crate) fn progress_line(app: &str, plan: &Value, state: Option<&Value>) -> String {
    let mut line = format!(
        "deploying {app}: step {} of {}",
        plan["currentStep"], plan["totalSteps"]
    );
    let actions = current_actions(app, plan);
    if !actions.is_empty() {
        line.push_str(&format!(" ({actions})"));
    }
    if let Some(a) = state {
        line.push_str(&format!(
            ", {} of {} tasks running",
            a["tasksRunning"], a["instances"]
        ));
        if a["tasksUnhealthy"].as_u64().is_some_and(|n| n > 0) {
            line.push_str(&format!(", {} unhealthy", a["tasksUnhealthy"]));
        }
        let waiting = crate::client::waiting_text(&a["waiting"]);
        if !waiting.is_empty() {
            line.push_str(&format!(", waiting: {waiting}"));
        }
    }
    line
}

/// Why a deployment has not finished: the last task failure since it began, the placement reason
/// (what no agent offers), or the step it is in.
fn stuck_reason(
    plan: &Value,
    state: Option<&Value>,
    began: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut why = Vec::new();
    if let Some(a) = state {
        let f = &a["lastTaskFailure"];
        let recent = f["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t >= began);
        if let (true, Some(m)) = (recent, f["message"].as_str()) {
            why.push(format!(
                "task {} failed ({}): {m}",
                f["taskId"].as_str().unwrap_or_default(),
                f["state"].as_str().unwrap_or_default()
            ));
        }
        if let Some(r) = a["waiting"]["reason"].as_str() {
            why.push(format!("instances wait for a place: {r}"));
        }
        if let Some(secs) = a["waiting"]["delay"]["timeLeftSeconds"].as_i64() {
            why.push(format!("launches are delayed {secs}s after failures"));
        }
        if why.is_empty() {
            why.push(format!(
                "{} of {} tasks running",
                a["tasksRunning"], a["instances"]
            ));
        }
    }
    why.push(format!(
        "still at step {} of {}",
        plan["currentStep"], plan["totalSteps"]
    ));
    why.join("; ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn timeouts() {
        assert_eq!(super::parse_timeout("90"), Ok(Duration::from_secs(90)));
        assert_eq!(super::parse_timeout("5m"), Ok(Duration::from_secs(300)));
        assert!(super::parse_timeout("5x").is_err());
        assert!(super::parse_timeout("m").is_err());
    }

    #[test]
    fn progress() {
        let plan = json!({"currentStep": 1, "totalSteps": 2,
            "currentActions": [{"action": "StartApplication", "app": "/web"}]});
        let app = json!({"tasksRunning": 2, "instances": 3, "tasksUnhealthy": 0});
        assert_eq!(
            super::progress_line("/web", &plan, Some(&app)),
            "deploying /web: step 1 of 2 (StartApplication), 2 of 3 tasks running"
        );
    }
}
