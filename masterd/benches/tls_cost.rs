//! The cost of TLS per request on the master's port: starts two masters in this process (each on a
//! 2-worker runtime, as gantry-masterd runs), one plain and one with `--tls-cert-file`, and times
//! sequential `GET /ping` on loopback: on one keep-alive connection, and on a new connection each
//! (for HTTPS with a full handshake each, and with TLS 1.3 session resumption). Prints mean, p50
//! and p99 latency per request. The client is a minimal HTTP/1.1 client on one thread, so the
//! figures are the server's and TLS's costs rather than a client library's.
//! Run: `cargo bench -p gantry-masterd --bench tls_cost` (`TLS_BENCH_N=5000` for more requests).

use gantry_daemon::tls_files::rustls;
use gantry_masterd::config::MasterArgs;
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const KEEP_ALIVE: &[u8] = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
const CLOSE: &[u8] = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/// Sends one request and reads its whole response (a 200 with a Content-Length body).
async fn ping<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, req: &[u8], buf: &mut Vec<u8>) {
    s.write_all(req).await.expect("send the request");
    s.flush().await.expect("flush");
    buf.clear();
    let mut chunk = [0u8; 2048];
    loop {
        let n = s.read(&mut chunk).await.expect("read the response");
        assert!(n > 0, "the master closed the connection mid-response");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a Content-Length");
        if buf.len() >= end + 4 + len {
            return;
        }
    }
}

struct Figures {
    name: &'static str,
    samples: Vec<Duration>,
}

impl Figures {
    fn mean_us(&self) -> f64 {
        let total: Duration = self.samples.iter().sum();
        total.as_secs_f64() * 1e6 / self.samples.len().max(1) as f64
    }

    fn percentile_us(&self, p: f64) -> f64 {
        let mut s = self.samples.clone();
        s.sort();
        let i = ((s.len() as f64 - 1.0) * p).round() as usize;
        s.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    }

    fn print(&self) {
        println!(
            "{:<46} {:>6} {:>9.1} {:>9.1} {:>9.1}",
            self.name,
            self.samples.len(),
            self.mean_us(),
            self.percentile_us(0.5),
            self.percentile_us(0.99)
        );
    }
}

/// How each request reaches the master.
#[derive(Clone, Copy)]
enum Mode<'a> {
    Plain,
    Tls(&'a TlsConnector),
}

async fn connect(addr: SocketAddr, mode: Mode<'_>) -> Box<dyn Io> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    match mode {
        Mode::Plain => Box::new(tcp),
        Mode::Tls(c) => {
            let name = ServerName::try_from("127.0.0.1").expect("an IP name");
            Box::new(c.connect(name, tcp).await.expect("TLS handshake"))
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// `n` requests on one connection (after `n / 10` to warm up).
async fn keep_alive(name: &'static str, addr: SocketAddr, mode: Mode<'_>, n: usize) -> Figures {
    let mut conn = connect(addr, mode).await;
    let mut buf = Vec::new();
    for _ in 0..n / 10 {
        ping(&mut conn, KEEP_ALIVE, &mut buf).await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        ping(&mut conn, KEEP_ALIVE, &mut buf).await;
        samples.push(t.elapsed());
    }
    Figures { name, samples }
}

/// `n` requests, each on a new connection (connect, handshake, request, response).
async fn new_connections(
    name: &'static str,
    addr: SocketAddr,
    mode: Mode<'_>,
    n: usize,
) -> Figures {
    let mut buf = Vec::new();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t = Instant::now();
        let mut conn = connect(addr, mode).await;
        ping(&mut conn, CLOSE, &mut buf).await;
        if i >= n / 10 {
            samples.push(t.elapsed());
        }
    }
    Figures { name, samples }
}

fn client_tls(ca_pem: &str, resume: bool) -> TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(gantry_daemon::tls_files::provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        cfg.resumption = Resumption::disabled();
    }
    TlsConnector::from(Arc::new(cfg))
}

fn main() {
    let n: usize = std::env::var("TLS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().expect("temp dir");

    // A CA and a server certificate for 127.0.0.1 (ECDSA P-256, rcgen's default).
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut srv = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    srv.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
    let srv = srv.signed_by(&key, &ca, &ca_key).expect("certificate");
    let cert_file = dir.path().join("master.crt.pem");
    let key_file = dir.path().join("master.key.pem");
    std::fs::write(&cert_file, srv.pem()).expect("write");
    std::fs::write(&key_file, key.serialize_pem()).expect("write");

    let master_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let start = |name: &str, tls: bool| {
        let args = MasterArgs {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            state_dir: Some(dir.path().join(name)),
            token: Some("bench".into()),
            tls_cert_file: tls.then(|| cert_file.clone()),
            tls_key_file: tls.then(|| key_file.clone()),
            ..MasterArgs::default()
        };
        let cfg = args.resolve().expect("config");
        master_rt
            .block_on(gantry_masterd::master::start(cfg))
            .expect("master")
            .addr
    };
    let plain = start("plain", false);
    let https = start("https", true);

    let full = client_tls(&ca.pem(), false);
    let resumed = client_tls(&ca.pem(), true);
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let new_n = (n / 4).max(1);
    let figures = client_rt.block_on(async {
        {
            let tcp = TcpStream::connect(https).await.expect("connect");
            let name = ServerName::try_from("127.0.0.1").expect("name");
            let tls = full.connect(name, tcp).await.expect("handshake");
            let (_, session) = tls.get_ref();
            println!(
                "TLS: {:?}, {:?}, key exchange {:?}; ECDSA P-256 certificate; rustls on ring",
                session.protocol_version().expect("version"),
                session.negotiated_cipher_suite().expect("suite").suite(),
                session.negotiated_key_exchange_group().map(|g| g.name()),
            );
            // The resumed scenario really resumes: a second connection with the same client.
            let mut kinds = Vec::new();
            for _ in 0..2 {
                let tcp = TcpStream::connect(https).await.expect("connect");
                let name = ServerName::try_from("127.0.0.1").expect("name");
                let mut tls = resumed.connect(name, tcp).await.expect("handshake");
                ping(&mut tls, CLOSE, &mut Vec::new()).await;
                kinds.push(tls.get_ref().1.handshake_kind());
            }
            println!("handshakes of the resuming client: {kinds:?}");
        }
        vec![
            keep_alive("HTTP  keep-alive", plain, Mode::Plain, n).await,
            keep_alive("HTTPS keep-alive", https, Mode::Tls(&full), n).await,
            new_connections("HTTP  new connection each", plain, Mode::Plain, new_n).await,
            new_connections(
                "HTTPS new connection each, full handshake",
                https,
                Mode::Tls(&full),
                new_n,
            )
            .await,
            new_connections(
                "HTTPS new connection each, resumed session",
                https,
                Mode::Tls(&resumed),
                new_n,
            )
            .await,
        ]
    });
    println!(
        "GET /ping on loopback, sequential; master: 2-worker runtime; client: 1 thread, raw HTTP/1.1"
    );
    println!(
        "{:<46} {:>6} {:>9} {:>9} {:>9}",
        "", "n", "mean µs", "p50 µs", "p99 µs"
    );
    for f in &figures {
        f.print();
    }
    let extra = |a: usize, b: usize| figures[b].mean_us() - figures[a].mean_us();
    println!(
        "TLS adds per request (mean): keep-alive {:+.1} µs; new connection {:+.1} µs with a full \
         handshake, {:+.1} µs resumed",
        extra(0, 1),
        extra(2, 3),
        extra(2, 4)
    );
}
