//! The client side of the failover tests (`ha_failover`, `ha_cluster`): authenticated requests
//! that never follow a redirect, and the loop that creates, scales and deletes apps on a leader
//! while it is killed, logging every acknowledged change.
#![allow(dead_code)]

use super::CREDENTIALS;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the client was told, in order: (app id, `Some(instances)` or `None` for deleted).
pub type Acks = Arc<Mutex<Vec<(String, Option<u64>)>>>;

/// A client that follows no redirect (a standby's 307 is an answer to look at) and gives up on a
/// request after 10 s.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// One request with the harness's credentials; its status (None: no answer).
pub async fn send(method: reqwest::Method, url: &str, body: Option<Value>) -> Option<u16> {
    let (user, pass) = CREDENTIALS.split_once(':')?;
    let mut r = client().request(method, url).basic_auth(user, Some(pass));
    if let Some(b) = body {
        r = r.json(&b);
    }
    Some(r.send().await.ok()?.status().as_u16())
}

/// `GET base+path` as JSON, when it answers 200.
pub async fn get_json(base: &str, path: &str) -> Option<Value> {
    let (user, pass) = CREDENTIALS.split_once(':')?;
    let r = client()
        .get(format!("{base}{path}"))
        .basic_auth(user, Some(pass))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

/// Creates (`app(id)`), scales to 2 and, every third app, deletes apps on `base` until it stops
/// answering, logging each 2xx in `acks`. Returns the change that got no answer (it may or may
/// not have been made).
pub async fn churn(
    base: String,
    round: usize,
    app: impl Fn(&str) -> Value,
    acks: Acks,
) -> (String, Option<u64>) {
    let mut k = 0;
    loop {
        k += 1;
        let id = format!("/r{round}/app{k}");
        let url = format!("{base}/v2/apps{id}?force=true");
        let mut steps = vec![
            (
                reqwest::Method::POST,
                format!("{base}/v2/apps"),
                Some(app(&id)),
                Some(0),
            ),
            (
                reqwest::Method::PUT,
                url.clone(),
                Some(json!({"instances": 2})),
                Some(2),
            ),
        ];
        if k % 3 == 0 {
            steps.push((reqwest::Method::DELETE, url, None, None));
        }
        for (method, url, body, what) in steps {
            let Some(s) = send(method, &url, body).await else {
                return (id, what);
            };
            if (200..300).contains(&s) {
                acks.lock().expect("acks").push((id.clone(), what));
            }
        }
    }
}
