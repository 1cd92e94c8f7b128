//! The connection to the Docker daemon (bollard over its unix socket, API version negotiated so
//! Debian's docker.io 20.10 answers) on a small runtime of its own, so the containerizer's
//! blocking methods can wait for it from any thread; and the image: present, or pulled.

use bollard::query_parameters::CreateImageOptions;
use bollard::Docker;
use futures_util::StreamExt;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// The Docker client with the runtime its requests run on.
pub struct DockerClient {
    pub docker: Docker,
    /// Always `Some` until dropped (then shut down without waiting: it may be dropped on a
    /// thread that drives another runtime, where a blocking shutdown panics).
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for DockerClient {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Seconds a request to the daemon may take (a pull of a big image takes longer: pulls stream).
const REQUEST_TIMEOUT_SECS: u64 = 600;

impl DockerClient {
    /// Connects to the daemon at `socket` and checks that it answers.
    pub fn connect(socket: &Path) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("docker-client")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Docker client's runtime: {e}"))?;
        let path = socket.display().to_string();
        let docker = run_on(&rt, async move {
            let d = Docker::connect_with_unix(
                &path,
                REQUEST_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            )
            .map_err(|e| format!("cannot reach the Docker daemon at {path}: {e}"))?;
            let d = tokio::time::timeout(Duration::from_secs(30), d.negotiate_version())
                .await
                .map_err(|_| format!("the Docker daemon at {path} did not answer in 30 s"))?
                .map_err(|e| format!("the Docker daemon at {path} does not answer: {e}"))?;
            d.ping()
                .await
                .map_err(|e| format!("the Docker daemon at {path} does not answer: {e}"))?;
            Ok::<_, String>(d)
        })?;
        Ok(Self {
            docker,
            rt: Some(rt),
        })
    }

    /// Runs `f` on the client's runtime and waits for it from a thread that is not one of that
    /// runtime's (the agent's blocking pool, or its main thread at recovery).
    pub fn block<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        match &self.rt {
            Some(rt) => run_on(rt, f),
            None => std::process::abort(),
        }
    }

    /// Runs `f` on the client's runtime; the handle can be awaited on any runtime.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        match &self.rt {
            Some(rt) => rt.spawn(f),
            None => std::process::abort(),
        }
    }
}

/// Runs `f` on `rt` and waits for it on this thread (which may be driving another runtime: it
/// only blocks, it never enters `rt`).
fn run_on<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    f: impl Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let _ = tx.send(f.await);
    });
    match rx.recv() {
        Ok(v) => v,
        // The runtime is shutting down with the agent: nothing will answer any more.
        Err(_) => std::process::abort(),
    }
}

/// True when `image` is present on the daemon.
pub async fn image_present(docker: &Docker, image: &str) -> bool {
    docker.inspect_image(image).await.is_ok()
}

/// Pulls `image`; the error says why (the registry's own words).
pub async fn pull(docker: &Docker, image: &str) -> Result<(), String> {
    let (from_image, tag) = split_tag(image);
    let opts = CreateImageOptions {
        from_image: Some(from_image.to_string()),
        tag: tag.map(String::from),
        ..CreateImageOptions::default()
    };
    let mut stream = docker.create_image(Some(opts), None, None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    return Err(e);
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Makes `image` present: pulled when absent, or always with `force_pull` (a failed forced pull
/// of an image already present runs that copy, so an agent without a registry still runs it).
pub async fn ensure_image(docker: &Docker, image: &str, force_pull: bool) -> Result<(), String> {
    let present = image_present(docker, image).await;
    if present && !force_pull {
        return Ok(());
    }
    match pull(docker, image).await {
        Ok(()) => Ok(()),
        Err(e) if present => {
            tracing::warn!(image, error = %e, "forcePullImage: the pull failed; running the local copy");
            Ok(())
        }
        Err(e) => Err(format!("cannot pull the Docker image '{image}': {e}")),
    }
}

/// `repo:tag` into its parts; a digest (`@sha256:...`) stays in the name; no tag is `latest`.
pub fn split_tag(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (image, Some("latest")),
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn tags_split_from_names_but_not_from_registry_ports() {
        assert_eq!(split_tag("nginx:1.11"), ("nginx", Some("1.11")));
        assert_eq!(split_tag("ubuntu"), ("ubuntu", Some("latest")));
        assert_eq!(
            split_tag("reg:5000/team/app"),
            ("reg:5000/team/app", Some("latest"))
        );
        assert_eq!(split_tag("reg:5000/app:2"), ("reg:5000/app", Some("2")));
        assert_eq!(split_tag("a@sha256:00"), ("a@sha256:00", None));
    }
}
