//! The CLI's client commands: they call the master's Marathon and Mesos APIs and print tables,
//! or the API's JSON with `--json`.

use crate::table::render;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Flags of `gantry apps run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The app id, e.g. /web (not needed with --file).
    id: Option<String>,
    /// A Marathon app JSON file ("-" for standard input).
    #[arg(long, short = 'f', conflicts_with_all = ["cmd"])]
    file: Option<PathBuf>,
    /// Shell command to run.
    #[arg(long)]
    cmd: Option<String>,
    #[arg(long, default_value_t = 1)]
    instances: u32,
    #[arg(long, default_value_t = 0.1)]
    cpus: f64,
    #[arg(long, default_value_t = 32.0)]
    mem: f64,
    /// Host ports to ask for (exported as PORT0, PORT1, ...).
    #[arg(long, default_value_t = 0)]
    ports: usize,
}

/// The WAITING column: why instances are not running (what no agent offers), the launch delay
/// after failures, and the last failure's message; empty when nothing waits.
pub(crate) fn waiting_text(w: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(r) = w["reason"].as_str() {
        parts.push(r.to_string());
    }
    if let Some(secs) = w["delay"]["timeLeftSeconds"].as_i64() {
        parts.push(format!("launch delayed {secs}s after a failure"));
    }
    if let Some(m) = w["lastFailureMessage"].as_str() {
        parts.push(format!("last failure: {m}"));
    }
    parts.join("; ")
}

/// The `details` of a Marathon error (spec §3.9), each field at fault as `path: errors`, and a
/// hint for an app locked by a deployment; empty when there are none.
fn details_text(body: &Value) -> String {
    let mut out = String::new();
    match &body["details"] {
        Value::Null => {}
        Value::String(s) => out.push_str(&format!(": {s}")),
        Value::Array(items) => {
            for d in items {
                let errors: Vec<String> = d["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), String::from))
                    .collect();
                match d["path"].as_str() {
                    Some(path) => out.push_str(&format!("\n  {path}: {}", errors.join(", "))),
                    None => out.push_str(&format!("\n  {d}")),
                }
            }
        }
        other => out.push_str(&format!(" {other}")),
    }
    let locking: Vec<&str> = body["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str())
        .collect();
    if !locking.is_empty() {
        let ids = locking.join(" ");
        out.push_str(&format!(
            "\n  locked by deployment {ids}: add --force to cancel it, or `gantry deployments \
             cancel {ids}`"
        ));
    }
    out
}

/// How the client proves who it is.
pub enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

impl Auth {
    /// `r` with these credentials.
    pub fn apply(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => r,
            Auth::Basic(u, p) => r.basic_auth(u, Some(p)),
            Auth::Bearer(t) => r.bearer_auth(t),
        }
    }
}

/// A client of one master.
pub struct Client {
    base: String,
    json: bool,
    http: reqwest::Client,
    auth: Auth,
}

/// An HTTP client; with `ca_file`, an https:// master must have a certificate signed by a CA in it
/// (and the public roots are not trusted).
pub fn http_client(ca_file: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    http_client_builder(ca_file)?
        .build()
        .context("setting up the HTTP client")
}

/// [`http_client`]'s builder, for clients that need more settings.
pub fn http_client_builder(ca_file: Option<&Path>) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut http = reqwest::Client::builder();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("--ca-file {}: cannot read the file", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("--ca-file {}: not a PEM file", path.display()))?;
        if certs.is_empty() {
            bail!(
                "--ca-file {}: holds no certificate (no `-----BEGIN CERTIFICATE-----` block)",
                path.display()
            );
        }
        http = http.tls_built_in_root_certs(false);
        for cert in certs {
            http = http.add_root_certificate(cert);
        }
    }
    Ok(http)
}

impl Client {
    /// A client of `master` with `auth`; with `ca_file`, an https:// master must have a
    /// certificate signed by a CA in it (and the public roots are not trusted).
    pub fn new(
        master: &str,
        json: bool,
        auth: Auth,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            base: master.trim_end_matches('/').to_string(),
            json,
            http: http_client(ca_file)?,
            auth,
        })
    }

    /// A request to the master with the client's credentials.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.auth {
            Auth::None => r,
            Auth::Basic(u, p) => r.basic_auth(u, Some(p)),
            Auth::Bearer(t) => r.bearer_auth(t),
        }
    }

    /// Sends `method path` with `query` and a JSON `body`; the answer as it came.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut r = self.request(method, path).query(query);
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.with_context(|| self.unreachable())
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .with_context(|| self.unreachable())?;
        Self::body(resp).await
    }

    /// The context of a failed request; for an https:// master it says how to trust a private CA.
    pub(crate) fn unreachable(&self) -> String {
        if self.base.starts_with("https://") {
            format!(
                "cannot reach the master at {} (a master with a private CA needs --ca-file or \
                 GANTRY_CA_FILE)",
                self.base
            )
        } else {
            format!("cannot reach the master at {}", self.base)
        }
    }

    /// A GET of `path` with `query`; the answer as it came (for endpoints that are not JSON
    /// everywhere, or whose headers matter).
    pub(crate) async fn get_with_query(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<reqwest::Response> {
        self.request(reqwest::Method::GET, path)
            .query(query)
            .send()
            .await
            .with_context(|| self.unreachable())
    }

    /// The JSON body of an answer; an error (with the API's message) for a status other than 2xx.
    pub(crate) async fn body(resp: reqwest::Response) -> anyhow::Result<Value> {
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body["message"].as_str().unwrap_or("request failed");
            let details = details_text(&body);
            let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
                " (give --credentials USER:PASSWORD or --api-token TOKEN)"
            } else {
                ""
            };
            bail!("{status}: {msg}{details}{hint}");
        }
        Ok(body)
    }

    /// True with `--json`.
    pub(crate) fn json_output(&self) -> bool {
        self.json
    }

    pub(crate) fn print(&self, value: &Value, table: impl FnOnce() -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        } else {
            println!("{}", table());
        }
    }

    pub async fn apps_run(&self, a: RunArgs) -> anyhow::Result<()> {
        let body: Value = match (&a.file, &a.id, &a.cmd) {
            (Some(f), _, _) => {
                let text = if f.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?
                };
                serde_json::from_str(&text).context("the app file is not JSON")?
            }
            (None, Some(id), Some(cmd)) => {
                let ports: Vec<Value> = (0..a.ports).map(|_| json!({"port": 0})).collect();
                json!({"id": id, "cmd": cmd, "instances": a.instances, "cpus": a.cpus,
                       "mem": a.mem, "portDefinitions": ports})
            }
            _ => bail!("give an app id and --cmd, or --file"),
        };
        let resp = self
            .request(reqwest::Method::POST, "/v2/apps")
            .json(&body)
            .send()
            .await
            .with_context(|| self.unreachable())?;
        let app = Self::body(resp).await?;
        self.print(&app, || {
            format!("created {}", app["id"].as_str().unwrap_or(""))
        });
        Ok(())
    }

    pub async fn apps_list(&self) -> anyhow::Result<()> {
        let apps = self.get("/v2/apps?embed=apps.waiting").await?;
        self.print(&apps, || {
            let rows: Vec<Vec<String>> = apps["apps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    vec![
                        a["id"].as_str().unwrap_or("").to_string(),
                        a["instances"].to_string(),
                        a["tasksRunning"].to_string(),
                        a["tasksStaged"].to_string(),
                        a["cpus"].to_string(),
                        a["mem"].to_string(),
                        a["cmd"]
                            .as_str()
                            .map(String::from)
                            .or_else(|| {
                                let args: Vec<&str> = a["args"]
                                    .as_array()?
                                    .iter()
                                    .filter_map(Value::as_str)
                                    .collect();
                                (!args.is_empty()).then(|| args.join(" "))
                            })
                            .or_else(|| {
                                let image = a["container"]["docker"]["image"].as_str()?;
                                Some(format!("image {image}"))
                            })
                            .unwrap_or_default(),
                        waiting_text(&a["waiting"]),
                    ]
                })
                .collect();
            render(
                &[
                    "ID",
                    "INSTANCES",
                    "RUNNING",
                    "STAGED",
                    "CPUS",
                    "MEM",
                    "CMD",
                    "WAITING",
                ],
                &rows,
            )
        });
        Ok(())
    }

    pub async fn tasks_list(&self) -> anyhow::Result<()> {
        let tasks = self.get("/v2/tasks").await?;
        self.print(&tasks, || {
            let rows: Vec<Vec<String>> = tasks["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    let ports: Vec<String> = t["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(Value::to_string)
                        .collect();
                    vec![
                        t["id"].as_str().unwrap_or("").to_string(),
                        t["appId"].as_str().unwrap_or("").to_string(),
                        t["state"].as_str().unwrap_or("").to_string(),
                        t["host"].as_str().unwrap_or("").to_string(),
                        ports.join(","),
                    ]
                })
                .collect();
            render(&["ID", "APP", "STATE", "HOST", "PORTS"], &rows)
        });
        Ok(())
    }

    pub async fn agents_list(&self) -> anyhow::Result<()> {
        let agents = self.get("/master/slaves").await?;
        self.print(&agents, || {
            let rows: Vec<Vec<String>> = agents["slaves"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    vec![
                        a["id"].as_str().unwrap_or("").to_string(),
                        a["hostname"].as_str().unwrap_or("").to_string(),
                        a["lifecycle"].as_str().unwrap_or("").to_string(),
                        format!("{}/{}", a["used_resources"]["cpus"], a["resources"]["cpus"]),
                        format!("{}/{}", a["used_resources"]["mem"], a["resources"]["mem"]),
                        a["tasks_running"].to_string(),
                    ]
                })
                .collect();
            render(&["ID", "HOSTNAME", "STATE", "CPUS", "MEM", "TASKS"], &rows)
        });
        Ok(())
    }
}
