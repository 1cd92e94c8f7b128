//! Getting one URI's bytes into a file: `http://` with reqwest (streamed), `file://` and absolute
//! local paths by copy. `https://` needs TLS, which this build does not link (a clear error).

use super::FetchError;
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Writes the content of `uri` to `dest`.
pub async fn fetch_to(client: &reqwest::Client, uri: &str, dest: &Path) -> Result<(), FetchError> {
    let fail = |why: String| FetchError::Source {
        uri: uri.to_string(),
        why,
    };
    if let Some(local) = uri
        .strip_prefix("file://")
        .or_else(|| uri.starts_with('/').then_some(uri))
    {
        return tokio::fs::copy(local, dest)
            .await
            .map(|_| ())
            .map_err(|e| fail(format!("cannot copy {local}: {e}")));
    }
    if uri.starts_with("https://") {
        return Err(fail("https is not supported by this build of the fetcher (no TLS); use http or a local path".into()));
    }
    if !uri.starts_with("http://") {
        return Err(fail(
            "unsupported scheme (http://, file:// or an absolute path)".into(),
        ));
    }
    let resp = client
        .get(uri)
        .send()
        .await
        .map_err(|e| fail(format!("request failed: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!("HTTP {status}")));
    }
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| fail(format!("cannot create {}: {e}", dest.display())))?;
    let mut resp = resp;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| fail(format!("download interrupted: {e}")))?
    {
        file.write_all(&chunk)
            .await
            .map_err(|e| fail(format!("cannot write {}: {e}", dest.display())))?;
    }
    file.flush()
        .await
        .map_err(|e| fail(format!("cannot write {}: {e}", dest.display())))
}
