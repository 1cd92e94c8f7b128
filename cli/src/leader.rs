//! Which master a client command talks to: `--master` is one URL (used as it is), a list of
//! them (the first that answers; a standby's `307` from `/master/redirect` names the leader,
//! and a `503` means it knows none), or `zk://` (the leader ZooKeeper names, read once). Once
//! per command: a command is short, and a standby proxies Marathon calls to the leader anyway.

use crate::client::Auth;
use anyhow::{bail, Context};
use gantry_daemon::detector;
use gantry_daemon::masters::Masters;
use std::path::Path;
use std::time::Duration;

/// How long ZooKeeper or each master of a list may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `--master`'s values (clap splits them at commas, which also splits a `zk://` server list)
/// as one [`Masters`].
pub fn parse(values: &[String]) -> anyhow::Result<Masters> {
    Masters::parse(&values.join(",")).context("--master")
}

/// The base URL of the master to talk to.
pub async fn resolve(
    masters: &Masters,
    auth: &Auth,
    ca_file: Option<&Path>,
) -> anyhow::Result<String> {
    match masters {
        Masters::Zk(zk) => match detector::read_leader(zk, TIMEOUT).await? {
            Some(leader) => Ok(leader.base_url()),
            None => bail!("no master is leading: {zk} holds no json.info_ node (are the masters started with --zk {zk}?)"),
        },
        Masters::Urls(urls) if urls.len() == 1 => Ok(urls[0].clone()),
        Masters::Urls(urls) => {
            let http = crate::client::http_client_builder(ca_file)?
                .redirect(reqwest::redirect::Policy::none())
                .timeout(TIMEOUT)
                .build()
                .context("setting up the HTTP client")?;
            first_answering(&http, urls, auth).await
        }
    }
}

/// The first master of `urls` that answers, or the leader a standby among them names.
async fn first_answering(
    http: &reqwest::Client,
    urls: &[String],
    auth: &Auth,
) -> anyhow::Result<String> {
    let mut why = Vec::new();
    for url in urls {
        let r = auth.apply(http.get(format!("{url}/master/redirect")));
        match r.send().await {
            Ok(resp) if resp.status().is_redirection() => {
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                match gantry_agentd::link::leader::redirect_base(url, location) {
                    Some(leader) => return Ok(leader),
                    None => why.push(format!("{url}: a redirect to '{location}'")),
                }
            }
            Ok(resp) if resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                why.push(format!("{url}: no leader known (503)"))
            }
            Ok(_) => return Ok(url.clone()),
            Err(e) => why.push(format!("{url}: {}", e.without_url())),
        }
    }
    bail!("no master answers: {}", why.join("; "))
}
