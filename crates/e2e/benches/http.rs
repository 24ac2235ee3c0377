//! # The HTTP benchmark (issue 9): the real binaries, many clients, a fixed amount of work
//!
//! Drives the real `ingress` and `ledger` binaries (as separate processes, on a fresh NATS
//! namespace and a fresh database) over loopback HTTP from `--clients` concurrent clients
//! (default 64), each sending its next request as soon as the previous one is answered,
//! through a FIXED NUMBER of distinct requests (not a fixed rate), on SQLite and on
//! PostgreSQL. Per backend, in this order, it measures:
//!
//! 1. merchant order registration `PUT /v1/orders/{ref}` (answered with the ledger's
//!    decision) for `--orders` orders over `--skus` SKUs: rate, p50, p99;
//! 2. PortOne inventory confirmations (`POST /portone/inventory-confirmation`, each
//!    reserves one unit, answered with the decision): rate, p50, p99;
//! 3. signed PortOne `Success` webhooks (reserved → sold) for the same orders: the HTTP
//!    accept rate (answered once JetStream acknowledged) and the "accepted → applied"
//!    rate = webhooks / time from the first send until the ledger processed all of them
//!    (its `processed_events`, polled every 20 ms);
//! 4. the same three on one hot SKU (`--hot-orders` orders, all on one (SKU, location));
//! 5. replay of every event already applied (the dedupe path) by the real `stockctl replay
//!    --all-history`: events / wall time of the process. With `--bench`, the stream is first
//!    topped up to `--replay-events` (default 100,000) with one-unit receipts published
//!    straight to JetStream and applied by the ledger (not timed);
//! 6. peak RSS (VmHWM) of the ingress and the ledger over the whole run, and of stockctl
//!    during the replay;
//! 7. the raw ceilings, in the same run: JetStream durable publish on one fresh
//!    file-storage stream (`--raw-messages` messages with `Nats-Msg-Id` from `--clients`
//!    publishers, each awaiting its ack), batched inserts (`--raw-rows` rows, 256 per
//!    transaction in one multi-row INSERT) into a fresh database of the backend (SQLite: a
//!    WAL + `synchronous = FULL` file), and `GET /healthz` (`--raw-http` requests) against
//!    the same ingress.
//!
//! It then prints one markdown table per backend and a summary comparing them. Every
//! figure is measured. Correctness is asserted on every run: every request succeeds, the
//! ledger processes every published event (no more, no fewer), every SKU's units add up to
//! what it received with each order's unit sold, `Store::verify` passes, and the replay
//! moves nothing.
//!
//! Run: `scripts/bench-http` (builds the release binaries, starts a throwaway nats-server
//! with `sync_interval: always`, uses the local PostgreSQL), with options such as
//! `scripts/bench-http --orders 3000 --skus 200 --clients 64 --backend postgres`.
//! `--ledgers N` starts N ledger processes on the same database. Any `STOCKLEDGER_*`
//! variable in the bench's environment reaches the spawned binaries
//! (`STOCKLEDGER_FETCH_BATCH_MAX=512 scripts/bench-http`).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it is a smoke run with the
//! debug binaries and tiny counts, asserting the same correctness.
#![allow(clippy::unwrap_used)]

#[path = "http/ceilings.rs"]
mod ceilings;
#[path = "http/load.rs"]
mod load;
#[path = "http/phases.rs"]
mod phases;
#[path = "http/procs.rs"]
mod procs;
#[path = "http/report.rs"]
mod report;

use std::sync::Arc;

use anyhow::Context as _;
use e2e::Harness;
use testkit::Backend;

use phases::{Bench, Order, orders};
use procs::Binaries;
use report::{Report, Row};

/// The bench's settings, from the command line (defaults: `--bench` / smoke).
pub struct Args {
    pub bench: bool,
    /// Orders over many SKUs (3,000 / 40).
    pub orders: usize,
    /// SKUs they are spread over (200 / 5).
    pub skus: usize,
    /// Orders on the one hot SKU (same as `orders`).
    pub hot_orders: usize,
    /// Concurrent HTTP clients and JetStream publishers (64 / 4).
    pub clients: usize,
    /// Ledger processes (1).
    pub ledgers: usize,
    /// Events the replay goes over at least (100,000 / whatever the phases published).
    pub replay_events: usize,
    /// Raw ceilings: JetStream messages (20,000 / 200), database rows (100,000 / 2,000),
    /// `/healthz` requests (50,000 / 400).
    pub raw_messages: usize,
    pub raw_rows: usize,
    pub raw_http: usize,
    pub backends: Vec<Backend>,
}

impl Args {
    fn parse() -> anyhow::Result<Args> {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        for removed in ["--rate", "--seconds"] {
            anyhow::ensure!(
                !argv.iter().any(|a| a == removed),
                "{removed} is gone: the bench sends a fixed number of requests (--orders, --skus, --clients)"
            );
        }
        let bench = argv.iter().any(|a| a == "--bench");
        let value = |name: &str| {
            argv.iter()
                .position(|a| a == name)
                .and_then(|i| argv.get(i + 1))
        };
        let num =
            |name: &str, bench_default: usize, smoke_default: usize| -> anyhow::Result<usize> {
                match value(name) {
                    Some(v) => v.parse().with_context(|| format!("{name} {v}")),
                    None => Ok(if bench { bench_default } else { smoke_default }),
                }
            };
        let orders = num("--orders", 3000, 40)?;
        let backends = match value("--backend").map(String::as_str) {
            Some("sqlite") => vec![Backend::Sqlite],
            Some("postgres") => vec![Backend::Postgres],
            Some("both") | None => vec![Backend::Sqlite, Backend::Postgres],
            Some(other) => anyhow::bail!("--backend {other}: sqlite, postgres or both"),
        };
        Ok(Args {
            bench,
            orders,
            skus: num("--skus", 200, 5)?.max(1),
            hot_orders: num("--hot-orders", orders, orders)?,
            clients: num("--clients", 64, 4)?.max(1),
            ledgers: num("--ledgers", 1, 1)?.max(1),
            replay_events: num("--replay-events", 100_000, 0)?,
            raw_messages: num("--raw-messages", 20_000, 200)?,
            raw_rows: num("--raw-rows", 100_000, 2_000)?,
            raw_http: num("--raw-http", 50_000, 400)?,
            backends,
        })
    }

    fn setup(&self) -> String {
        format!(
            "{} orders over {} SKUs + {} on one hot SKU, {} clients, {} ledger process{}",
            self.orders,
            self.skus,
            self.hot_orders,
            self.clients,
            self.ledgers,
            if self.ledgers == 1 { "" } else { "es" }
        )
    }
}

/// Prints a measured row as soon as it is known.
fn progress(backend: Backend, row: &Row) {
    let p99 = row.p99.map_or_else(String::new, |d| {
        format!(", p99 {:.1} ms", d.as_secs_f64() * 1e3)
    });
    println!(
        "  {backend}: {}: {} {}{p99}",
        row.path,
        report::thousands(row.rate),
        row.unit
    );
}

/// The raw ceilings that need no services: JetStream publish and database inserts.
async fn storage_ceilings(a: &Args, h: &Harness, backend: Backend) -> anyhow::Result<Vec<Row>> {
    let js = ceilings::jetstream_publish(&h.nats_url, a.raw_messages, a.clients, 1).await?;
    let js = Row::run(
        format!(
            "JetStream durable publish, one fresh stream, {} publishers",
            a.clients
        ),
        &js,
        "msg/s",
    );
    let rows = ceilings::batched_insert(backend, a.raw_rows).await?;
    let per_tx = ceilings::ROWS_PER_TRANSACTION;
    let insert = Row::rate(
        format!(
            "batched INSERT into a fresh database (SQLite: WAL, synchronous = FULL), {per_tx} rows per transaction"
        ),
        a.raw_rows,
        rows,
        "rows/s",
    );
    Ok(vec![js, insert])
}

/// Phases 1-3 for one set of orders (all on `label`): registration, confirmation, then
/// the signed webhooks; returns their rows, printed as they come.
async fn order_phases(
    b: &mut Bench,
    orders: &Arc<Vec<Order>>,
    label: &str,
) -> anyhow::Result<Vec<Row>> {
    let backend = b.backend();
    let run = b.register(orders).await?;
    let path = format!("merchant `PUT /v1/orders/{{ref}}` (waits for the decision), {label}");
    let mut rows = vec![Row::run(path, &run, "req/s")];
    progress(backend, &rows[0]);
    let run = b.confirm(orders).await?;
    let path = format!("PortOne inventory confirmations, {label}");
    rows.push(Row::run(path, &run, "req/s"));
    progress(backend, &rows[1]);
    let (accept, applied) = b.webhooks(orders, label).await?;
    progress(backend, &accept);
    progress(backend, &applied);
    rows.extend([accept, applied]);
    Ok(rows)
}

/// One backend, every phase in order; returns its table.
async fn run_backend(a: &Args, bins: &Binaries, backend: Backend) -> anyhow::Result<Report> {
    let h = Harness::new(backend).await?;
    let mut ceilings = storage_ceilings(a, &h, backend).await?;
    let mut b = Bench::start(h, bins, a).await?;
    let http = ceilings::http_healthz(&b.c, a.raw_http, a.clients).await?;
    let path = format!("HTTP `GET /healthz`, {} clients", a.clients);
    ceilings.push(Row::run(path, &http, "req/s"));
    for row in &ceilings {
        progress(backend, row);
    }
    let skus: Vec<String> = (0..a.skus).map(|s| format!("sku-{s}")).collect();
    let hot_sku = vec!["hot-sku".to_owned()];
    b.seed_stock(&[skus.clone(), hot_sku.clone()].concat())
        .await?;
    let many = orders("o", a.orders, &skus);
    let hot = orders("h", a.hot_orders, &hot_sku);
    let mut rows = order_phases(&mut b, &many, &format!("{} SKUs", a.skus)).await?;
    rows.extend(order_phases(&mut b, &hot, "hot SKU").await?);
    b.fill_for_replay(a.replay_events, a.skus).await?;
    b.check_stock(&[&many, &hot]).await?;
    let (replay, stockctl_rss) = b.replay(bins).await?;
    progress(backend, &replay);
    rows.push(replay);
    let mut memory = b.memory();
    memory.push(("stockctl replay".to_owned(), stockctl_rss));
    Ok(Report {
        backend: backend.to_string(),
        setup: a.setup(),
        rows,
        ceilings,
        memory,
    })
}

/// The machine, for the README: cores and CPU model.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse()?;
    let bins = Binaries::find(a.bench)?;
    let passed: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("STOCKLEDGER_") && !k.starts_with("STOCKLEDGER_TEST_"))
        .filter(|(k, _)| !procs::SET_BY_BENCH.contains(&k.as_str()))
        .filter(|(k, _)| k != "STOCKLEDGER_NATS_SERVER_BIN")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "http bench ({}): {}; machine: {}; settings passed to the services: {}",
        if a.bench {
            "release binaries"
        } else {
            "smoke run, debug binaries"
        },
        a.setup(),
        machine(),
        if passed.is_empty() {
            "none".to_owned()
        } else {
            passed.join(" ")
        }
    );
    let mut reports = Vec::new();
    for backend in &a.backends {
        let report = run_backend(&a, &bins, *backend)
            .await
            .with_context(|| format!("http bench on {backend}"))?;
        report::print(&report);
        reports.push(report);
    }
    if reports.len() > 1 {
        report::print_comparison(&reports);
    }
    println!("\n1 passed, 0 failed");
    Ok(())
}
