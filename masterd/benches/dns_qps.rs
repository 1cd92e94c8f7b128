//! DNS queries per second and latency on loopback: an A query of a 3-task app
//! (`web-group.marathon.mesos`) answered by the master's DNS handler (hickory-server over UDP, the
//! records built from a state snapshot as the master builds them), and when Debian's `dnsmasq`
//! is installed, by dnsmasq serving the same three addresses from an addn-hosts file, in the same
//! run with the same load: `CLIENTS` concurrent UDP clients, each sending one query and waiting for
//! the answer, for `SECS` seconds per server.
//!
//! Run: `cargo bench -p gantry-masterd --bench dns_qps` (release profile). The server runs on its
//! own one-thread runtime, the clients on another, as dnsmasq is one thread.

use gantry_masterd::dns::names::LabelSpec;
use gantry_masterd::dns::records::{AgentView, Records, Snapshot, TaskView};
use gantry_masterd::dns::server::{Handler, Published};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const SECS: u64 = 5;
const NAME: &str = "web-group.marathon.mesos.";

fn snapshot() -> Snapshot {
    let agents = (0..3)
        .map(|i| AgentView {
            id: format!("bench-S{i}"),
            hostname: format!("127.0.0.{}", i + 2),
            port: 5051,
        })
        .collect();
    let tasks = (0..3)
        .map(|i| TaskView {
            task_id: format!("group_web.instance-{i}._app.1"),
            app_id: "/group/web".into(),
            agent_id: format!("bench-S{i}"),
            ports: vec![31000 + i],
        })
        .collect();
    Snapshot {
        leader: SocketAddr::from(([127, 0, 0, 1], 5050)),
        nameserver: None,
        agents,
        tasks,
    }
}

/// Starts the master's DNS handler on a free loopback UDP port, on a runtime of its own.
fn start_gantry() -> anyhow::Result<(SocketAddr, tokio::runtime::Runtime)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let published = Arc::new(Published::default());
    published.set(Records::build(&snapshot(), "mesos", LabelSpec::Rfc1123));
    let addr = rt.block_on(async {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let addr = sock.local_addr()?;
        let mut server = hickory_server::Server::new(Handler {
            records: published,
            ttl: 60,
            resolvers: Vec::new(),
        });
        server.register_socket(sock);
        tokio::spawn(async move { server.block_until_done().await });
        anyhow::Ok(addr)
    })?;
    Ok((addr, rt))
}

/// Starts dnsmasq with the same three addresses, or `None` when it is not installed.
fn start_dnsmasq(
    dir: &std::path::Path,
) -> anyhow::Result<Option<(SocketAddr, std::process::Child)>> {
    let Some(bin) = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        return Ok(None);
    };
    let hosts = dir.join("hosts");
    let names = NAME.trim_end_matches('.');
    let lines: String = (0..3)
        .map(|i| format!("127.0.0.{} {names}\n", i + 2))
        .collect();
    std::fs::write(&hosts, lines)?;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = std::process::Command::new(bin)
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
        ])
        .args([
            "--listen-address=127.0.0.1",
            "--user=root",
            "--cache-size=1000",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--addn-hosts={}", hosts.display()))
        .arg("--local-ttl=60")
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .spawn()?;
    std::thread::sleep(Duration::from_millis(500));
    Ok(Some((SocketAddr::from(([127, 0, 0, 1], port)), child)))
}

/// Runs the load against `server`; returns (queries/s, p50, p99, answers with 3 addresses %).
fn load(server: SocketAddr) -> anyhow::Result<(f64, Duration, Duration, f64)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut q = Message::new(0, MessageType::Query, OpCode::Query);
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(Name::from_ascii(NAME)?, RecordType::A));
        let query = q.to_vec()?;
        let until = Instant::now() + Duration::from_secs(SECS);
        let mut jobs = Vec::new();
        for c in 0..CLIENTS {
            let mut query = query.clone();
            jobs.push(tokio::spawn(async move {
                let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
                sock.connect(server).await?;
                let (mut lat, mut full) = (Vec::new(), 0u64);
                let mut buf = [0u8; 1500];
                let mut id = (c as u16) << 11;
                while Instant::now() < until {
                    id = id.wrapping_add(1);
                    query[..2].copy_from_slice(&id.to_be_bytes());
                    let t = Instant::now();
                    sock.send(&query).await?;
                    let n = tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf)).await;
                    let Ok(Ok(n)) = n else { continue };
                    lat.push(t.elapsed());
                    if let Ok(m) = Message::from_vec(&buf[..n]) {
                        full += u64::from(m.answers.len() == 3);
                    }
                }
                anyhow::Ok((lat, full))
            }));
        }
        let mut all = Vec::new();
        let mut full = 0;
        for j in jobs {
            let (l, f) = j.await??;
            all.extend(l);
            full += f;
        }
        all.sort();
        let n = all.len().max(1);
        let pct = |p: f64| all.get(((n as f64 * p) as usize).min(n - 1)).copied();
        Ok((
            all.len() as f64 / SECS as f64,
            pct(0.50).unwrap_or_default(),
            pct(0.99).unwrap_or_default(),
            full as f64 * 100.0 / n as f64,
        ))
    })
}

fn report(what: &str, r: (f64, Duration, Duration, f64)) {
    println!(
        "{what:<28} {:>9.0} queries/s   p50 {:>7.1} µs   p99 {:>7.1} µs   3-address answers {:.1} %",
        r.0,
        r.1.as_secs_f64() * 1e6,
        r.2.as_secs_f64() * 1e6,
        r.3
    );
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    println!("A query of {NAME}, {CLIENTS} UDP clients, {SECS} s each, loopback");
    let (addr, _rt) = start_gantry()?;
    report("gantry-masterd (hickory)", load(addr)?);
    let dir = tempfile::tempdir()?;
    match start_dnsmasq(dir.path())? {
        Some((addr, mut child)) => {
            let r = load(addr);
            let _ = child.kill();
            let _ = child.wait();
            report("dnsmasq (addn-hosts)", r?);
        }
        None => println!("dnsmasq not installed (apt-get install dnsmasq-base): no comparison"),
    }
    Ok(())
}
