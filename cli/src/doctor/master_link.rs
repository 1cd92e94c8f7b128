//! The master from this host: `GET /version` answers as a Gantry master, and the join token is
//! accepted. The token is tried the way an agent presents it, on `GET /agent/v1/connect` with a
//! WebSocket upgrade: a right token gets `101 Switching Protocols` (the doctor then closes the
//! connection before registering, so nothing joins), a wrong one `401`.

use super::Check;
use gantry_agentd::link::token::TokenSource;
use std::path::Path;
use std::time::Duration;

/// The token from `--token` or `--token-file` (as the agent reads it), or why it cannot be read.
pub fn token_from(token: Option<&str>, file: Option<&Path>) -> Option<Result<String, String>> {
    match (token, file) {
        (Some(t), _) => Some(Ok(t.trim().to_string())),
        (None, Some(f)) => Some(
            TokenSource::File(f.to_owned())
                .read()
                .map_err(|e| e.to_string()),
        ),
        (None, None) => None,
    }
}

/// Both checks against `url`.
pub async fn checks(
    http: &reqwest::Client,
    url: &str,
    token: Option<Result<String, String>>,
) -> Vec<Check> {
    let base = url.trim_end_matches('/');
    let version = async {
        let r = http
            .get(format!("{base}/version"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = r.status().as_u16();
        Ok((status, r.text().await.unwrap_or_default()))
    }
    .await;
    let reachable = version.is_ok();
    let mut out = vec![verdict_version(base, version)];
    let joined = match token {
        None => None,
        Some(Err(e)) => Some(Err(e)),
        Some(Ok(_)) if !reachable => Some(Err("the master is not reachable".into())),
        Some(Ok(t)) => Some(Ok(try_token(http, base, &t).await)),
    };
    out.push(verdict_token(joined));
    out
}

/// An error with its causes (reqwest's own message is often only "error sending request").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

async fn try_token(http: &reqwest::Client, base: &str, token: &str) -> Result<u16, String> {
    let r = http
        .get(format!(
            "{base}{}",
            gantry_proto::messages::AGENT_CONNECT_PATH
        ))
        .timeout(Duration::from_secs(5))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "Z2FudHJ5LWRvY3Rvci0xNg==")
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(r.status().as_u16())
}

pub fn verdict_version(url: &str, answer: Result<(u16, String), String>) -> Check {
    const NAME: &str = "master";
    let fix = format!(
        "check --master (now {url}) and that gantry-masterd runs there (`systemctl status \
         gantry-masterd`); for an https:// master with a private CA, pass --ca-file FILE"
    );
    match answer {
        Err(e) => Check::fail(NAME, format!("cannot reach {url}: {e}"), fix),
        Ok((200, body)) => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            match v["gantry_version"].as_str() {
                Some(ver) => Check::ok(NAME, format!("gantry-masterd {ver} answers at {url}")),
                None => Check::fail(
                    NAME,
                    format!("{url}/version answers, but not as a Gantry master"),
                    fix,
                ),
            }
        }
        Ok((code, _)) => Check::fail(NAME, format!("{url}/version answered {code}"), fix),
    }
}

pub fn verdict_token(answer: Option<Result<Result<u16, String>, String>>) -> Check {
    const NAME: &str = "join token";
    let fix = "give the agent a token the master accepts (the master's --token, or a line of its \
               --token-file) with --token-file FILE, and the doctor the same";
    match answer {
        None => Check::warn(
            NAME,
            "no join token given: not checked",
            "pass the agent's --token-file FILE (or --token T) to the doctor",
        ),
        Some(Err(e)) => Check::fail(NAME, format!("not checked: {e}"), fix),
        Some(Ok(Err(e))) => Check::fail(NAME, format!("the connect request failed: {e}"), fix),
        Some(Ok(Ok(101))) => Check::ok(
            NAME,
            "the master accepts it (WebSocket upgrade answered 101; closed before registering)",
        ),
        Some(Ok(Ok(401))) => Check::fail(NAME, "the master refuses it (401)", fix),
        Some(Ok(Ok(403))) => Check::fail(
            NAME,
            "the master requires a client certificate (it runs with --tls-client-ca-file)",
            "give the agent --tls-cert-file FILE and --tls-key-file FILE signed by that CA",
        ),
        Some(Ok(Ok(code))) => Check::fail(
            NAME,
            format!("the master answered the agent connect path with {code}"),
            "check that --master is a gantry-masterd of this version (`gantry-masterd --version`)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    #[test]
    fn version_verdicts() {
        let u = "http://m:5050";
        let c = verdict_version(u, Err("connection refused".into()));
        assert_eq!(c.status, Status::Fail);
        assert!(c
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("systemctl status gantry-masterd"));
        let c = verdict_version(u, Ok((200, r#"{"gantry_version":"0.1.0"}"#.into())));
        assert_eq!(c.status, Status::Ok);
        assert_eq!(c.detail, "gantry-masterd 0.1.0 answers at http://m:5050");
        let c = verdict_version(u, Ok((200, r#"{"version":"1.11.0"}"#.into())));
        assert_eq!(c.status, Status::Fail, "a Mesos master is not Gantry");
        assert_eq!(
            verdict_version(u, Ok((502, String::new()))).status,
            Status::Fail
        );
    }

    #[test]
    fn token_verdicts() {
        assert_eq!(verdict_token(None).status, Status::Warn);
        assert_eq!(verdict_token(Some(Ok(Ok(101)))).status, Status::Ok);
        let c = verdict_token(Some(Ok(Ok(401))));
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.as_deref().unwrap_or("").contains("--token-file FILE"));
        let c = verdict_token(Some(Ok(Ok(403))));
        assert!(c.fix.as_deref().unwrap_or("").contains("--tls-cert-file"));
        assert_eq!(verdict_token(Some(Ok(Ok(426)))).status, Status::Fail);
        assert_eq!(
            verdict_token(Some(Err("cannot read".into()))).status,
            Status::Fail
        );
    }

    #[test]
    fn tokens_come_from_the_flag_or_the_file() {
        let t = tempfile::tempdir().expect("tempdir");
        let f = t.path().join("token");
        std::fs::write(&f, "# join token\n\n  abc  \n").expect("w");
        assert_eq!(token_from(None, Some(&f)), Some(Ok("abc".to_string())));
        assert_eq!(token_from(Some(" x "), None), Some(Ok("x".to_string())));
        assert_eq!(token_from(None, None), None);
        let missing = token_from(None, Some(&t.path().join("nope")));
        assert!(matches!(missing, Some(Err(e)) if e.contains("nope")));
    }
}
