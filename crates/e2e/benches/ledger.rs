//! The ledger benchmark: publishes N events (default 100k: receipts, then orders that are
//! authorized and captured or voided, over 1,000 SKUs, ~2% duplicates) to JetStream, then
//! measures how fast one ledger consumer applies them, on SQLite and on PostgreSQL. In the
//! same run it measures the raw rates of the parts, so the ratio is visible: JetStream
//! publish with awaited acks (windowed), and plain batched inserts into each database.
//!
//! Run: `scripts/bench` (or `cargo bench -p e2e --bench ledger -- --events 100000`).
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a 300-event smoke run.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use e2e::{Harness, test_settings, workload};
use futures::StreamExt;
use testkit::Backend;

struct Args {
    events: usize,
    skus: u64,
    batch: usize,
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
    let events = value("--events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 100_000 } else { 300 });
    let skus = value("--skus")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 1000 } else { 20 });
    let batch = value("--batch").and_then(|v| v.parse().ok()).unwrap_or(256);
    let backends = match value("--backend").as_deref() {
        Some("sqlite") => vec![Backend::Sqlite],
        Some("postgres") => vec![Backend::Postgres],
        _ => vec![Backend::Sqlite, Backend::Postgres],
    };
    Args {
        events,
        skus,
        batch,
        backends,
    }
}

/// Peak resident memory of this process so far (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let events = workload::mixed(a.events, a.skus, 42);
    println!(
        "ledger bench: {} events ({} SKUs), batch {}",
        events.len(),
        a.skus,
        a.batch
    );
    for backend in &a.backends {
        let h = Harness::new(*backend).await?;
        // 1. Raw JetStream publish rate: the same envelopes, acks awaited in a window of 256.
        let payloads: Vec<_> = events
            .iter()
            .map(|(i, e)| Ok((e.id.to_string(), e2e::envelope(i, e).to_json()?)))
            .collect::<Result<_, contract::EncodeError>>()?;
        let subject = h.bus.namespace().event_subject("bench", "event");
        let start = Instant::now();
        let mut acks = futures::stream::iter(payloads.iter().map(|(id, p)| {
            let (bus, subject) = (h.bus.clone(), subject.clone());
            async move { bus.publish_event(subject, id, p.clone().into(), None).await }
        }))
        .buffer_unordered(256);
        while let Some(r) = acks.next().await {
            r?;
        }
        let publish = start.elapsed();
        // 2. The ledger consumer applying them.
        let n = events
            .iter()
            .map(|(_, e)| e.id)
            .collect::<std::collections::BTreeSet<_>>()
            .len() as i64;
        let mut settings = test_settings();
        settings.fetch_batch_max = a.batch;
        settings.consumer.ack_wait = Duration::from_secs(60);
        let rss_before = peak_rss_mib();
        let start = Instant::now();
        let ledger = h.start_ledger(settings).await?;
        let done = h.wait_processed(n, Duration::from_secs(3600)).await?;
        let apply = start.elapsed();
        ledger.stop().await;
        anyhow::ensure!(done == n, "only {done} of {n} events processed");
        let report = h.store.verify().await?;
        anyhow::ensure!(report.is_ok(), "verify failed: {:?}", report.problems);
        // 3. A rebuild of the same ledger from the stream into an empty database
        //    (`stockctl ledger rebuild --into`), which must come out equal.
        let fresh = testkit::TestDatabase::new(*backend).await?;
        let fresh_store =
            store::Store::connect(fresh.url(), &store::StoreOptions::default()).await?;
        let start = Instant::now();
        let rebuilt = ledger::replay::rebuild(
            &h.bus,
            &fresh_store,
            false,
            Duration::ZERO,
            domain::ReservationTtls::documented_ref(),
            |_, _| {},
        )
        .await?;
        let rebuild = start.elapsed();
        anyhow::ensure!(
            fresh_store.canonical_export().await? == h.store.canonical_export().await?,
            "the rebuilt ledger differs from the live one"
        );
        fresh_store.close().await;
        fresh.drop_db().await?;
        // 4. Raw database insert rate: the same number of rows in batches of the same size.
        let raw_db = raw_inserts(&h, events.len(), a.batch).await?;
        println!(
            "{backend}: consumer {:.0} events/s ({} events in {:.2}s) | rebuild into an empty database {:.0} events/s ({} events in {:.2}s, equal) | jetstream publish {:.0} msg/s | db insert {:.0} rows/s | peak RSS {:.0} MiB (before consumer {:.0} MiB)",
            rate(events.len(), apply),
            events.len(),
            apply.as_secs_f64(),
            rate(rebuilt.replay.read as usize, rebuild),
            rebuilt.replay.read,
            rebuild.as_secs_f64(),
            rate(events.len(), publish),
            raw_db,
            peak_rss_mib(),
            rss_before,
        );
    }
    println!("1 passed, 0 failed");
    Ok(())
}

/// Inserts `rows` rows into a scratch table in transactions of `batch`, returning rows/s.
async fn raw_inserts(h: &Harness, rows: usize, batch: usize) -> anyhow::Result<f64> {
    let pool = h.store.pool();
    sqlx_exec(
        pool,
        "CREATE TABLE bench_raw (id BIGINT PRIMARY KEY, body TEXT NOT NULL)",
    )
    .await?;
    let start = Instant::now();
    let mut id = 0i64;
    while (id as usize) < rows {
        let mut tx = pool.begin().await?;
        for _ in 0..batch.min(rows - id as usize) {
            id += 1;
            store::sqlx::query("INSERT INTO bench_raw (id, body) VALUES ($1, $2)")
                .bind(id)
                .bind("x".repeat(200))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(rate(rows, start.elapsed()))
}

async fn sqlx_exec(pool: &store::AnyPool, sql: &'static str) -> anyhow::Result<()> {
    store::sqlx::query(sql).execute(pool).await?;
    Ok(())
}
