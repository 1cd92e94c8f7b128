//! The fetcher over HTTPS, as root through the agent's task table and the native containerizer: a
//! real TLS server on loopback (tokio-rustls, a CA and server certificate made by `rcgen` at test
//! time) serves an archive. With the test CA given as the fetcher's extra CA file it is fetched,
//! extracted and run; without it the task fails with a clear certificate error.

// Tasks are built field by field from the default, as the agent receives them.
#![allow(clippy::field_reassign_with_default)]

mod common;

use common::NativeTable;
use gantry_agentd::fetcher::Fetcher;
use gantry_proto::{FetchUri, Reason, TaskInfo, TaskState, TaskStatus};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;

fn targz(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_path(name).expect("entry name");
    h.set_cksum();
    b.append(&h, data).expect("append");
    b.into_inner().expect("tar").finish().expect("gzip")
}

/// A TLS listener for `axum::serve`: TCP accept, then the TLS handshake (failed handshakes, such
/// as a client refusing the certificate, are skipped).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Starts an HTTPS server on loopback whose certificate (for 127.0.0.1) a fresh CA signed; returns
/// its base URL and the CA's certificate in PEM.
async fn serve_https() -> (String, String) {
    use axum::routing::get;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Gantry fetcher test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let mut srv = CertificateParams::new(Vec::<String>::new()).expect("server params");
    srv.subject_alt_names = vec![rcgen::SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    srv.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let cert = srv
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server certificate");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server TLS config");
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];

    let app_tgz = targz(
        "app/bin/run.sh",
        b"#!/bin/sh\necho fetched-over-https\n",
        0o755,
    );
    let app = axum::Router::new().route("/app.tar.gz", get(move || async move { app_tgz.clone() }));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("https://{addr}"), ca_cert.pem())
}

/// Runs one task fetching `uri` in `rig`, whose fetcher trusts `ca_file` (if any); returns its
/// terminal status and stdout.
async fn run_fetching_task(
    rig: &mut NativeTable,
    name: &str,
    uri: String,
    ca_file: Option<&Path>,
) -> (TaskStatus, String) {
    let fetcher =
        Fetcher::with_ca_file(rig.dir.path().join("cache"), 1 << 20, ca_file).expect("fetcher");
    rig.table.set_fetcher(Arc::new(fetcher));
    let mut t = TaskInfo::default();
    t.task_id = name.into();
    t.command.value = Some("./app/bin/run.sh".into());
    t.command.shell = true;
    t.command.uris = vec![FetchUri {
        uri,
        extract: true,
        executable: false,
        cache: false,
        dest_path: None,
    }];
    t.command
        .environment
        .insert("PATH".into(), "/usr/bin:/bin".into());
    t.resources.cpus = 0.2;
    t.resources.mem = 64.0;
    rig.table.launch(t);
    let s = rig.terminal(name).await;
    let out = std::fs::read_to_string(rig.table.work_dir().sandbox(&name.into()).join("stdout"))
        .unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(100)).await;
    (s, out)
}

#[tokio::test]
async fn an_archive_over_https_from_a_private_ca_is_fetched_extracted_and_run() {
    let mut rig = NativeTable::new("https-ok");
    let (base, ca_pem) = serve_https().await;
    let ca_file = rig.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write CA");
    let (s, out) = run_fetching_task(
        &mut rig,
        "https-ok",
        format!("{base}/app.tar.gz"),
        Some(&ca_file),
    )
    .await;
    assert_eq!(s.state, TaskState::TaskFinished, "{s:?} stdout: {out}");
    assert_eq!(out, "fetched-over-https\n");
}

#[tokio::test]
async fn https_without_the_ca_fails_the_task_with_a_certificate_error() {
    let mut rig = NativeTable::new("https-untrusted");
    let (base, _ca_pem) = serve_https().await;
    let uri = format!("{base}/app.tar.gz");
    let (s, out) = run_fetching_task(&mut rig, "https-untrusted", uri.clone(), None).await;
    assert_eq!(s.state, TaskState::TaskFailed, "{s:?} stdout: {out}");
    assert_eq!(s.reason, Some(Reason::ReasonContainerLaunchFailed));
    let msg = s.message.unwrap_or_default();
    assert!(
        msg.contains(&uri)
            && msg.contains("TLS certificate error")
            && msg.contains("UnknownIssuer"),
        "{msg}"
    );
    assert!(msg.contains("--fetcher-ca-file"), "says what to do: {msg}");
    assert!(out.is_empty(), "the task never started");
}
