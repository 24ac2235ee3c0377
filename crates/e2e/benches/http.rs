//! The HTTP benchmark: the real `ingress` and `ledger` binaries as separate processes, fed
//! PortOne inventory confirmations and signed payment webhooks over loopback at a fixed
//! rate. Reports throughput, confirmation latency p50/p99 and each process's peak memory,
//! on SQLite and on PostgreSQL.
//!
//! Run: `scripts/bench-http` (or, with release binaries built,
//! `cargo bench -p e2e --bench http -- --bench --rate 200 --seconds 20`).
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a short smoke run with
//! the debug binaries.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::http::{Client, confirmation, portone_webhook};
use e2e::{Harness, TEST_API_TOKEN, TEST_PORTONE_SECRET};
use futures::StreamExt;
use testkit::Backend;

struct Args {
    bench: bool,
    rate: u64,
    seconds: u64,
    skus: u64,
    backends: Vec<Backend>,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let bench = argv.iter().any(|a| a == "--bench");
    let value = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    Args {
        bench,
        rate: value("--rate")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if bench { 200 } else { 20 }),
        seconds: value("--seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if bench { 20 } else { 2 }),
        skus: value("--skus")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if bench { 1000 } else { 10 }),
        backends: match value("--backend").as_deref() {
            Some("sqlite") => vec![Backend::Sqlite],
            Some("postgres") => vec![Backend::Postgres],
            _ => vec![Backend::Sqlite, Backend::Postgres],
        },
    }
}

fn binary(name: &str, release: bool) -> anyhow::Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let path = target
        .join(if release { "release" } else { "debug" })
        .join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build it first (scripts/bench-http does)",
        path.display()
    );
    Ok(path)
}

/// Peak resident memory (VmHWM) of a running process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &PathBuf, h: &Harness, addr: &str) -> anyhow::Result<Proc> {
    let child = Command::new(bin)
        .env("STOCKLEDGER_NATS_URL", &h.nats_url)
        .env("STOCKLEDGER_NATS_NAMESPACE", h.bus.namespace().as_str())
        .env("STOCKLEDGER_DATABASE_URL", h.db.url())
        .env("STOCKLEDGER_API_TOKEN", TEST_API_TOKEN)
        .env("STOCKLEDGER_PORTONE_SECRET_KEY", TEST_PORTONE_SECRET)
        .env("STOCKLEDGER_HTTP_ADDR", addr)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    Ok(Proc(child))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let (ingress_bin, ledger_bin) = (binary("ingress", a.bench)?, binary("ledger", a.bench)?);
    let orders = a.rate * a.seconds;
    println!(
        "http bench: {} confirmations + {} webhooks at {}/s for {}s, {} SKUs",
        orders, orders, a.rate, a.seconds, a.skus
    );
    for backend in &a.backends {
        let h = Harness::new(*backend).await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let ledger = spawn(&ledger_bin, &h, "127.0.0.1:0")?;
        let ingress = spawn(&ingress_bin, &h, &addr)?;
        let c = Client::new(&format!("http://{addr}"));
        let ready = Instant::now();
        let probe = e2e::http::reqwest_client();
        while !probe
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(
                ready.elapsed() < Duration::from_secs(30),
                "ingress did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Stock and orders first (not timed).
        futures::stream::iter(0..a.skus)
            .for_each_concurrent(32, |s| {
                let c = c.clone();
                async move {
                    c.receive(&format!("sku-{s}"), 1_000_000, &format!("po-{s}"))
                        .await
                }
            })
            .await;
        futures::stream::iter(0..orders)
            .for_each_concurrent(32, |i| {
                let c = c.clone();
                let skus = a.skus;
                async move {
                    c.register(&format!("o-{i}"), &format!("sku-{}", i % skus), 1, "10.00")
                        .await
                }
            })
            .await;
        // Timed: one order per tick: confirmation, then a signed Success (7 in 10) or Failed webhook.
        let latencies = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(orders as usize)));
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate as f64));
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(orders as usize);
        for i in 0..orders {
            tick.tick().await;
            let (c, latencies) = (c.clone(), latencies.clone());
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let (status, _) = c
                    .post(
                        "/portone/inventory-confirmation",
                        confirmation(&format!("o-{i}"), &format!("pp-{i}"), "10"),
                    )
                    .await;
                latencies.lock().await.push(t.elapsed());
                let outcome = if i % 10 < 7 { "Success" } else { "Failed" };
                let (hook, _) = c
                    .post(
                        "/webhooks/portone",
                        portone_webhook(&format!("pp-{i}"), &format!("o-{i}"), outcome, "10"),
                    )
                    .await;
                (status == 200, hook == 200)
            }));
        }
        let mut ok = (0u64, 0u64);
        for t in tasks {
            let (confirmed, hooked) = t.await?;
            ok.0 += u64::from(confirmed);
            ok.1 += u64::from(hooked);
        }
        let elapsed = start.elapsed();
        let expected = a.skus as i64 + 3 * orders as i64;
        let done = h.wait_processed(expected, Duration::from_secs(600)).await?;
        let drained = start.elapsed();
        let mut lat = latencies.lock().await.clone();
        lat.sort();
        println!(
            "{backend}: {:.0} req/s sent ({} confirmations 200, {} webhooks 200 of {orders} each) | ledger caught up after {:.1}s ({done}/{expected} events) | confirmation p50 {:.1} ms p99 {:.1} ms | peak RSS ingress {:.0} MiB, ledger {:.0} MiB",
            (2 * orders) as f64 / elapsed.as_secs_f64(),
            ok.0,
            ok.1,
            drained.as_secs_f64(),
            percentile(&lat, 0.50).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            peak_rss_mib(ingress.0.id()),
            peak_rss_mib(ledger.0.id()),
        );
        anyhow::ensure!(ok.0 == orders && ok.1 == orders, "some requests failed");
        anyhow::ensure!(done == expected, "the ledger did not process every event");
    }
    println!("1 passed, 0 failed");
    Ok(())
}
