//! Getting an `http://` or `https://` URI's bytes into a file of the sandbox with reqwest
//! (streamed; rustls with the bundled webpki roots plus the agent's extra CAs). Local paths are
//! `local`'s.

use super::FetchError;
use tokio::io::AsyncWriteExt;

/// Writes the content of `uri` to `dest`.
pub async fn fetch_to(
    client: &reqwest::Client,
    uri: &str,
    dest: &mut tokio::fs::File,
) -> Result<(), FetchError> {
    let fail = |why: String| FetchError::Source {
        uri: uri.to_string(),
        why,
    };
    if !uri.starts_with("http://") && !uri.starts_with("https://") {
        return Err(fail(
            "unsupported scheme (http://, https://, file:// or an absolute path)".into(),
        ));
    }
    let resp = client
        .get(uri)
        .send()
        .await
        .map_err(|e| fail(describe(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!("HTTP {status}")));
    }
    let mut resp = resp;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| fail(format!("download interrupted: {}", describe(&e))))?
    {
        dest.write_all(&chunk)
            .await
            .map_err(|e| fail(format!("cannot write into the sandbox: {e}")))?;
    }
    Ok(())
}

/// A request error with its causes (reqwest's own message hides them); an untrusted server
/// certificate says how to trust its CA.
fn describe(e: &reqwest::Error) -> String {
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !chain.iter().any(|c: &String| c.contains(&text)) {
            chain.push(text);
        }
        cur = err.source();
    }
    let text = chain.join(": ");
    if text.contains("certificate") {
        format!(
            "TLS certificate error: {text} (the server's certificate is not trusted by the \
             bundled web roots; give its CA with --fetcher-ca-file / GANTRY_FETCHER_CA_FILE)"
        )
    } else {
        format!("request failed: {text}")
    }
}
