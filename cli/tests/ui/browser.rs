//! A headless Chromium for the UI's browser tests: Debian's `chromium` driven by
//! `chromium-driver` (chromedriver) over WebDriver through fantoccini. The driver runs in its own
//! process group, killed with everything it started (the browser) when the `Browser` is dropped.

use anyhow::{bail, Context};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts them.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    driver: Child,
    pub client: Client,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless browser session.
    pub async fn start() -> anyhow::Result<Browser> {
        for (path, pkg) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            if !Path::new(path).exists() {
                bail!("{path} is missing: install Debian's {pkg} (scripts/deps --packaging does)");
            }
        }
        let port = super::support::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("start chromedriver")?;
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1360,900", "--hide-scrollbars", "--no-first-run"],
            }
        });
        let Value::Object(caps) = caps else {
            bail!("capabilities are a JSON object");
        };
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        let mut driver = Some(driver);
        loop {
            let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
            connector.enforce_http(true);
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    let driver = driver.take().context("driver")?;
                    return Ok(Browser { driver, client });
                }
                Err(e) if start.elapsed() > Duration::from_secs(60) => {
                    if let Some(mut d) = driver.take() {
                        let _ = d.kill();
                    }
                    bail!("no WebDriver session within 60 s: {e}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// Loads `url` and waits for the page's script to have run.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client.goto(url).await?;
        self.eventually(Duration::from_secs(20), "the page's script to load", || async {
            let v = self
                .client
                .execute("return Array.isArray(window.__gantryErrors) && document.readyState === 'complete';", vec![])
                .await
                .ok()?;
            v.as_bool().filter(|b| *b)
        })
        .await?;
        Ok(())
    }

    /// What went wrong on the page: script errors, and any resource it loaded that did not
    /// answer 2xx/3xx.
    pub async fn page_errors(&self) -> anyhow::Result<Vec<String>> {
        let v = self
            .client
            .execute(
                "var out = (window.__gantryErrors || ['gantry.js did not run']).slice();
                 performance.getEntriesByType('resource').forEach(function (r) {
                   if (r.responseStatus >= 400) out.push(r.name + ' answered ' + r.responseStatus);
                 });
                 if (!document.styleSheets.length || !document.styleSheets[0].cssRules.length) out.push('no stylesheet');
                 return out;",
                vec![],
            )
            .await?;
        Ok(serde_json::from_value(v)?)
    }

    /// The rendered text of the first element `css` matches, if any. Read in one script, so a
    /// live update between finding and reading cannot make the element stale.
    pub async fn text(&self, css: &str) -> Option<String> {
        let v = self
            .client
            .execute(
                "var e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;",
                vec![Value::String(css.into())],
            )
            .await
            .ok()?;
        v.as_str().map(String::from)
    }

    /// How many elements `css` matches.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .execute(
                "return document.querySelectorAll(arguments[0]).length;",
                vec![Value::String(css.into())],
            )
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as usize
    }

    /// Sets an input's value (clearing it first).
    pub async fn fill(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let e = self.client.find(Locator::Css(css)).await?;
        e.clear().await?;
        e.send_keys(value).await?;
        Ok(())
    }

    /// Clicks the element `css` matches; tried again when a live update replaced it between
    /// finding and clicking.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let mut tries = 0;
        loop {
            let e = self.client.find(Locator::Css(css)).await?;
            match e.click().await {
                Ok(()) => return Ok(()),
                Err(fantoccini::error::CmdError::Standard(w))
                    if w.error == fantoccini::error::ErrorStatus::StaleElementReference
                        && tries < 5 =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Polls `f` until `Some`, failing after `timeout` with `what`.
    pub async fn eventually<T, F, Fut>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(v) = f().await {
                return Ok(v);
            }
            if start.elapsed() > timeout {
                let at = self.client.current_url().await.map(|u| u.to_string());
                let shown = self.text("main").await.unwrap_or_default();
                let flash = self.text("#flash").await.unwrap_or_default();
                bail!(
                    "timed out after {timeout:?} waiting for {what}; at {at:?}, flash {flash:?}, \
                     the page shows:\n{shown}"
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Writes a PNG of the window to `dir/name.png` and returns its size.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> anyhow::Result<usize> {
        let png = self.client.screenshot().await?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(format!("{name}.png")), &png)?;
        Ok(png.len())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver's group holds the browser and its helpers.
        let pgid = nix::unistd::Pid::from_raw(-(self.driver.id() as i32));
        let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.driver.wait();
    }
}
