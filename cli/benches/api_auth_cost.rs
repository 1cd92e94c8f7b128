//! What authentication and the request guard cost per request: the same GET answered by a master
//! without authentication (`gantry dev`'s setting, here `gantry dev` itself) and by gantry-masterd
//! with HTTP Basic and with a bearer token, each over one keep-alive connection on loopback, plus a
//! mutation (POST then DELETE of an app, audited) with and without authentication. Prints mean, p50
//! and p99 per request for each.
//! Run: `cargo build --release --bins && cargo bench -p gantry-cli --bench api_auth_cost`

mod support;

use support::{bin, free_port, Killed};

use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Cred {
    None,
    Basic,
    Bearer,
}

fn with(rb: reqwest::RequestBuilder, cred: Cred) -> reqwest::RequestBuilder {
    match cred {
        Cred::None => rb,
        Cred::Basic => rb.basic_auth("bench", Some("bench-secret")),
        Cred::Bearer => rb.bearer_auth("bench-token-000001"),
    }
}

/// Per-request latencies of `n` rounds of `round`, after 200 warm-up rounds.
async fn measure<F, Fut>(n: usize, mut round: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..200 {
        round().await;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        round().await;
        out.push(t.elapsed());
    }
    out
}

fn report(what: &str, mut d: Vec<Duration>) {
    d.sort();
    let us = |x: Duration| x.as_secs_f64() * 1e6;
    let mean = d.iter().map(|x| us(*x)).sum::<f64>() / d.len() as f64;
    println!(
        "{what:<48} n={:<5} mean {mean:>7.1} µs  p50 {:>7.1} µs  p99 {:>7.1} µs",
        d.len(),
        us(d[d.len() / 2]),
        us(d[d.len() * 99 / 100]),
    );
}

async fn wait_up(http: &reqwest::Client, base: &str) {
    let start = Instant::now();
    while http.get(format!("{base}/version")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{base} never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let principals = dir.path().join("principals.toml");
    std::fs::write(
        &principals,
        "[[principal]]\nname = \"bench\"\npassword = \"bench-secret\"\n\
         tokens = [\"bench-token-000001\"]\npermissions = [\"admin\"]\nrate_limit = 1000000.0\n",
    )
    .expect("principals");
    let (open_port, auth_port) = (free_port(), free_port());
    let _open = Killed::quiet(
        Command::new(bin("gantry"))
            .args(["dev", "--listen", &format!("127.0.0.1:{open_port}")])
            .args(["--resources", "cpus:1;mem:256"])
            .arg("--state-dir")
            .arg(dir.path().join("dev")),
    )
    .expect("start gantry dev");
    let _auth = Killed::quiet(
        Command::new(bin("gantry-masterd"))
            .args([
                "--listen",
                &format!("127.0.0.1:{auth_port}"),
                "--token",
                "bench",
            ])
            .arg("--principals-file")
            .arg(&principals)
            .arg("--state-dir")
            .arg(dir.path().join("m")),
    )
    .expect("start gantry-masterd");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let open = format!("http://127.0.0.1:{open_port}");
        let auth = format!("http://127.0.0.1:{auth_port}");
        wait_up(&http, &open).await;
        wait_up(&http, &auth).await;
        const N: usize = 5000;
        for (what, base, cred) in [
            ("GET /v2/apps, authentication off", &open, Cred::None),
            ("GET /v2/apps, HTTP Basic", &auth, Cred::Basic),
            ("GET /v2/apps, bearer token", &auth, Cred::Bearer),
        ] {
            let d = measure(N, || {
                let rb = with(http.get(format!("{base}/v2/apps")), cred);
                async move {
                    let r = rb.send().await.expect("GET");
                    assert_eq!(r.status().as_u16(), 200);
                    let _ = r.bytes().await;
                }
            })
            .await;
            report(what, d);
        }
        const M: usize = 500;
        for (what, base, cred) in [
            ("POST+DELETE an app, authentication off", &open, Cred::None),
            (
                "POST+DELETE an app, HTTP Basic, audited",
                &auth,
                Cred::Basic,
            ),
        ] {
            let mut i = 0u64;
            let d = measure(M, || {
                i += 1;
                let id = format!("/bench-{i}");
                let body =
                    format!(r#"{{"id":"{id}","cmd":"sleep 1","cpus":0.01,"mem":1,"instances":0}}"#);
                let post = with(http.post(format!("{base}/v2/apps")), cred)
                    .header("content-type", "application/json")
                    .body(body);
                let del = with(http.delete(format!("{base}/v2/apps{id}")), cred);
                async move {
                    let r = post.send().await.expect("POST");
                    assert_eq!(r.status().as_u16(), 201);
                    let _ = r.bytes().await;
                    let r = del.send().await.expect("DELETE");
                    assert_eq!(r.status().as_u16(), 200);
                    let _ = r.bytes().await;
                }
            })
            .await;
            report(what, d);
        }
    });
}
