//! Running under a service manager: telling systemd the daemon is ready (`Type=notify`, through
//! `sd_notify(3)`; nothing happens when `NOTIFY_SOCKET` is unset, as outside systemd), and waiting
//! for the signals that stop a daemon (SIGINT from a terminal, SIGTERM from `systemctl stop`).

/// Tells the service manager that start-up is done. A no-op without `NOTIFY_SOCKET`; a failure to
/// notify is logged, never fatal (systemd then times the start out and says why).
pub fn notify_ready(what: &str) {
    send(&[sd_notify::NotifyState::Ready], what, "READY=1");
}

/// Tells the service manager that the daemon is stopping.
pub fn notify_stopping() {
    send(&[sd_notify::NotifyState::Stopping], "", "STOPPING=1");
}

fn send(state: &[sd_notify::NotifyState], status: &str, name: &str) {
    let mut all = state.to_vec();
    if !status.is_empty() {
        all.push(sd_notify::NotifyState::Status(status));
    }
    if let Err(e) = sd_notify::notify(&all) {
        tracing::warn!(error = %e, "could not send {name} to the service manager (NOTIFY_SOCKET)");
    }
}

/// Resolves on the first SIGINT or SIGTERM, naming it.
pub async fn stop_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[cfg(test)]
mod tests {
    /// Outside systemd (no NOTIFY_SOCKET) notifying does nothing and does not fail.
    #[test]
    fn notify_without_a_socket_is_a_no_op() {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            super::notify_ready("test");
            super::notify_stopping();
        }
    }

    /// With a socket, READY=1 and the status arrive as one datagram.
    #[test]
    fn ready_reaches_the_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        // Its output captured: its own `test result:` line must not reach the suite's summary.
        let child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", "service::tests::child_notifies"])
            .env("NOTIFY_SOCKET", &path)
            .env("GANTRY_TEST_NOTIFY_CHILD", "1")
            .output()
            .expect("child");
        assert!(child.status.success(), "{child:?}");
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("recv");
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.contains("READY=1\n"), "{text}");
        assert!(text.contains("STATUS=listening"), "{text}");
    }

    /// The child half of `ready_reaches_the_socket` (does nothing when run on its own).
    #[test]
    fn child_notifies() {
        if std::env::var_os("GANTRY_TEST_NOTIFY_CHILD").is_some() {
            super::notify_ready("listening");
        }
    }
}
