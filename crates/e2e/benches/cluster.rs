//! # The cluster benchmark (issue 12): the production shape's throughput
//!
//! Starts `scripts/cluster` with the release binaries (three JetStream nodes with R3
//! streams, PostgreSQL, two ingresses behind haproxy, two ledgers, the exception consumer)
//! and drives it through the load balancer from `--clients` concurrent clients (default
//! 64) with a fixed number of distinct requests, the same paths as the single-node HTTP
//! bench (`benches/http.rs`): merchant order registration, PortOne inventory confirmations,
//! signed PortOne webhooks (HTTP accept rate, and accepted → applied: webhooks / time until
//! the ledgers' durable consumer has nothing pending or unacknowledged). In the same run it
//! measures the raw ceilings of this shape: JetStream durable publish on a fresh R3 stream
//! of the cluster, `GET /healthz` through haproxy, and batched inserts into PostgreSQL.
//! Correctness: every request succeeds, and every SKU ends with what it received, one unit
//! sold per order.
//!
//! Run: `scripts/bench-cluster` (builds the release binaries first), e.g.
//! `scripts/bench-cluster --orders 5000 --skus 200 --clients 64`. Without `--bench` (as
//! `cargo test --all-targets` runs benches) it does nothing: the cluster is exercised in the
//! test suite by `tests/cluster_faults.rs`.
#![allow(clippy::unwrap_used)]

#[path = "http/ceilings.rs"]
#[allow(dead_code)]
mod ceilings;
#[path = "http/load.rs"]
mod load;
#[path = "http/report.rs"]
#[allow(dead_code)]
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::cluster::Cluster;
use e2e::http::{Client, confirmation, portone_webhook};
use load::{Run, drive, rate};
use report::{Row, thousands};
use reqwest::Method;
use serde_json::json;

/// Units every SKU receives before the orders.
const RECEIVED: i64 = 1_000_000;

struct Args {
    orders: usize,
    skus: usize,
    clients: usize,
    raw_messages: usize,
    raw_http: usize,
    raw_rows: usize,
}

fn args() -> anyhow::Result<Option<Args>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if !argv.iter().any(|a| a == "--bench") {
        return Ok(None);
    }
    let num = |flag: &str, default: usize| -> anyhow::Result<usize> {
        match argv.iter().position(|a| a == flag) {
            Some(i) => Ok(argv
                .get(i + 1)
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a number"))?
                .parse()?),
            None => Ok(default),
        }
    };
    Ok(Some(Args {
        orders: num("--orders", 3000)?,
        skus: num("--skus", 200)?.max(1),
        clients: num("--clients", 64)?.max(1),
        raw_messages: num("--raw-messages", 20_000)?,
        raw_http: num("--raw-http", 50_000)?,
        raw_rows: num("--raw-rows", 100_000)?,
    }))
}

fn print(row: &Row) {
    let p = |d: Option<Duration>| {
        d.map_or("—".to_owned(), |d| {
            format!("{:.1} ms", d.as_secs_f64() * 1e3)
        })
    };
    println!(
        "| {} | {} | {} {} | {} | {} |",
        row.path,
        row.n,
        thousands(row.rate),
        row.unit,
        p(row.p50),
        p(row.p99)
    );
}

/// Waits until the ledgers' durable consumer has nothing pending and nothing unacknowledged.
async fn drained(nats_url: &str) -> anyhow::Result<Instant> {
    let servers: Vec<&str> = nats_url.split(',').collect();
    let js = async_nats::jetstream::new(async_nats::connect(servers).await?);
    let ns = bus::Namespace::default();
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream(ns.events_stream())
        .await?
        .get_consumer(bus::LEDGER_CONSUMER)
        .await
        .map_err(|e| anyhow::anyhow!("the ledger's consumer: {e}"))?;
    let start = Instant::now();
    loop {
        let info = consumer.info().await?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return Ok(Instant::now());
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(3600),
            "the ledgers did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(a) = args()? else {
        println!("cluster bench: run it with scripts/bench-cluster (skipped)");
        return Ok(());
    };
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    let dir = std::env::temp_dir().join(testkit::unique_name("cluster_bench"));
    std::fs::create_dir_all(&dir)?;
    let mut cluster = Cluster::start(&dir, &target.join("release"), &[]);
    cluster.ready().await;
    let base = cluster.var("CLUSTER_URL");
    let nats_url = cluster.var("STOCKLEDGER_NATS_URL");
    let c = Client::new(&base);
    println!(
        "cluster bench: 3 NATS nodes (R3, sync_interval: always), PostgreSQL, 2 ingresses behind haproxy, 2 ledgers; {} orders over {} SKUs, {} clients",
        a.orders, a.skus, a.clients
    );
    println!("\n| path | n | rate | p50 | p99 |\n| --- | --- | --- | --- | --- |");

    // Ceilings of this shape, in the same run.
    let js = ceilings::jetstream_publish(&nats_url, a.raw_messages, a.clients, 3).await?;
    print(&Row::run(
        format!(
            "ceiling: JetStream durable publish, fresh R3 stream, {} publishers",
            a.clients
        ),
        &js,
        "msg/s",
    ));
    let http = ceilings::http_healthz(&c, a.raw_http, a.clients).await?;
    print(&Row::run(
        "ceiling: `GET /healthz` through haproxy",
        &http,
        "req/s",
    ));
    let rows = ceilings::batched_insert(testkit::Backend::Postgres, a.raw_rows).await?;
    print(&Row::rate(
        format!(
            "ceiling: PostgreSQL batched INSERT, {} rows per transaction",
            ceilings::ROWS_PER_TRANSACTION
        ),
        a.raw_rows,
        rows,
        "rows/s",
    ));

    let skus: Arc<Vec<String>> = Arc::new((0..a.skus).map(|s| format!("sku-{s}")).collect());
    let (cc, list) = (c.clone(), skus.clone());
    drive(a.skus, a.clients, move |i| {
        let (c, list) = (cc.clone(), list.clone());
        async move {
            let body = json!({"sku": list[i], "location": "main", "quantity": RECEIVED, "reference": format!("po-{}", list[i])});
            c.api(Method::POST, "/v1/stock/receipts", Some(body)).await.0
        }
    })
    .await?
    .ensure_all("stock receipts", &[200, 201])?;

    let order = |i: usize| (format!("o-{i}"), format!("pp-o-{i}"));
    let (cc, list) = (c.clone(), skus.clone());
    let run: Run = drive(a.orders, a.clients, move |i| {
        let (c, list) = (cc.clone(), list.clone());
        async move {
            let (reference, _) = order(i);
            let body = json!({"lines": [{"sku": list[i % list.len()], "location": "main", "quantity": 1}], "amount": "10.00", "currency": "USD"});
            c.api(Method::PUT, &format!("/v1/orders/{reference}"), Some(body)).await.0
        }
    })
    .await?;
    run.ensure_all("order registrations", &[200, 201])?;
    print(&Row::run(
        "merchant `PUT /v1/orders/{ref}` (waits for the decision)",
        &run,
        "req/s",
    ));

    let cc = c.clone();
    let run = drive(a.orders, a.clients, move |i| {
        let c = cc.clone();
        async move {
            let (reference, payment) = order(i);
            c.post(
                "/portone/inventory-confirmation",
                confirmation(&reference, &payment, "10"),
            )
            .await
            .0
        }
    })
    .await?;
    run.ensure_all("inventory confirmations", &[200])?;
    print(&Row::run("PortOne inventory confirmations", &run, "req/s"));

    drained(&nats_url).await?;
    let started = Instant::now();
    let cc = c.clone();
    let run = drive(a.orders, a.clients, move |i| {
        let c = cc.clone();
        async move {
            let (reference, payment) = order(i);
            c.post(
                "/webhooks/portone",
                portone_webhook(&payment, &reference, "Success", "10"),
            )
            .await
            .0
        }
    })
    .await?;
    run.ensure_all("webhooks", &[200])?;
    let applied = drained(&nats_url).await? - started;
    print(&Row::run(
        "signed PortOne webhooks, HTTP accepted",
        &run,
        "req/s",
    ));
    print(&Row::rate(
        "signed PortOne webhooks, accepted → applied",
        a.orders,
        rate(a.orders, applied),
        "events/s",
    ));

    // Every order's unit sold, once.
    let mut sold = 0i64;
    for (i, sku) in skus.iter().enumerate() {
        let (available, reserved, s) = c.stock(sku).await;
        let orders = (a.orders / a.skus + usize::from(i < a.orders % a.skus)) as i64;
        anyhow::ensure!(
            (available, reserved, s) == (RECEIVED - orders, 0, orders),
            "{sku}: {available}/{reserved}/{s}, expected {}/0/{orders}",
            RECEIVED - orders
        );
        sold += s;
    }
    println!("\ncheck: {sold} units sold, one per order; every SKU adds up");
    drop(cluster);
    Ok(())
}
