//! Verdicts of each protocol against real listeners on loopback: 200, 500, a server that never
//! answers (timeout), a closed port (refused), 1xx with and without `ignoreHttp1xx`, HTTPS with a
//! self-signed certificate, TCP and COMMAND.

use super::*;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A listener that answers every connection with `answer` (or holds it open, silent, for `None`).
async fn server(answer: Option<&'static str>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                match answer {
                    Some(a) => {
                        let _ = s.write_all(a.as_bytes()).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    port
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

fn spec(protocol: HealthProtocol, port: u16) -> HealthCheckSpec {
    HealthCheckSpec {
        protocol,
        port: Some(port),
        timeout_secs: 0.5,
        ..HealthCheckSpec::default()
    }
}

fn ctx() -> ProbeContext {
    ProbeContext::loopback(
        std::env::temp_dir(),
        BTreeMap::new(),
        CommandRunner::Sandbox,
    )
}

#[tokio::test]
async fn http_verdicts() {
    let ok = server(Some("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")).await;
    assert_eq!(
        probe(&spec(HealthProtocol::Http, ok), &ctx()).await,
        Verdict::Healthy
    );
    let moved = server(Some("HTTP/1.0 302 Found\r\n\r\n")).await;
    assert_eq!(
        probe(&spec(HealthProtocol::Http, moved), &ctx()).await,
        Verdict::Healthy
    );
    let bad = server(Some("HTTP/1.1 500 Internal Server Error\r\n\r\n")).await;
    assert_eq!(
        probe(&spec(HealthProtocol::Http, bad), &ctx()).await,
        Verdict::Unhealthy("HTTP status 500".into())
    );
    let silent = server(None).await;
    let Verdict::Unhealthy(cause) = probe(&spec(HealthProtocol::Http, silent), &ctx()).await else {
        panic!("a silent server is unhealthy");
    };
    assert!(cause.contains("timed out after 0.5 s"), "{cause}");
    let refused = closed_port().await;
    let Verdict::Unhealthy(cause) = probe(&spec(HealthProtocol::Http, refused), &ctx()).await
    else {
        panic!("a refused connection is unhealthy");
    };
    assert!(cause.contains("connection to 127.0.0.1"), "{cause}");
    let garbage = server(Some("SSH-2.0-OpenSSH\r\n")).await;
    assert!(matches!(
        probe(&spec(HealthProtocol::Http, garbage), &ctx()).await,
        Verdict::Unhealthy(c) if c.contains("no HTTP status line")
    ));
}

#[tokio::test]
async fn informational_answers_count_only_without_ignore_http1xx() {
    let early = server(Some("HTTP/1.1 102 Processing\r\n\r\n")).await;
    let mut s = spec(HealthProtocol::Http, early);
    assert_eq!(
        probe(&s, &ctx()).await,
        Verdict::Unhealthy("HTTP status 102".into())
    );
    s.ignore_http1xx = true;
    assert_eq!(probe(&s, &ctx()).await, Verdict::Unchanged);
}

#[tokio::test]
async fn https_accepts_a_self_signed_certificate() {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![der], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                let _ = tls.shutdown().await;
            });
        }
    });
    assert_eq!(
        probe(&spec(HealthProtocol::Https, port), &ctx()).await,
        Verdict::Healthy
    );
    let plain = server(Some("HTTP/1.1 200 OK\r\n\r\n")).await;
    assert!(matches!(
        probe(&spec(HealthProtocol::Https, plain), &ctx()).await,
        Verdict::Unhealthy(c) if c.contains("TLS handshake")
    ));
}

#[tokio::test]
async fn tcp_verdicts() {
    let open = server(Some("")).await;
    assert_eq!(
        probe(&spec(HealthProtocol::Tcp, open), &ctx()).await,
        Verdict::Healthy
    );
    let refused = closed_port().await;
    assert!(matches!(
        probe(&spec(HealthProtocol::Tcp, refused), &ctx()).await,
        Verdict::Unhealthy(c) if c.contains("TCP connection")
    ));
    let mut none = spec(HealthProtocol::Tcp, 1);
    none.port = None;
    assert!(matches!(probe(&none, &ctx()).await, Verdict::Unhealthy(_)));
}

#[tokio::test]
async fn command_verdicts_use_the_sandbox_and_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("marker"), "x").expect("marker");
    let mut env = BTreeMap::new();
    env.insert("WANT".to_string(), "7".to_string());
    let c = ProbeContext::loopback(dir.path().to_path_buf(), env, CommandRunner::Sandbox);
    let cmd = |s: &str| HealthCheckSpec {
        protocol: HealthProtocol::Command,
        command: Some(s.into()),
        timeout_secs: 0.5,
        ..HealthCheckSpec::default()
    };
    assert_eq!(
        probe(&cmd("test -f marker && test \"$WANT\" = 7"), &c).await,
        Verdict::Healthy
    );
    assert_eq!(
        probe(&cmd("exit 3"), &c).await,
        Verdict::Unhealthy("command exited with code 3".into())
    );
    assert!(matches!(
        probe(&cmd("sleep 5"), &c).await,
        Verdict::Unhealthy(cause) if cause.contains("command timed out")
    ));
}
