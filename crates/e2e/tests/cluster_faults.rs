//! The production shape under faults (issue 12): `scripts/cluster` starts a three-node
//! JetStream cluster (R3 streams), PostgreSQL, two ingress replicas behind haproxy, two
//! ledger processes and the exception consumer, all as processes on loopback. Signed PortOne
//! webhooks, PortOne inventory confirmations and merchant writes go through the load balancer
//! while, at random moments, one NATS node, one ingress replica and one ledger process are
//! killed with SIGKILL (the cluster script starts each again, as a platform would).
//!
//! A client here behaves as the providers and the merchant do: a write that did not get a
//! success answer is sent again, unchanged, until it does (PortOne and the merchant's
//! systems retry; every write is idempotent by its reference). A confirmation is asked once
//! (PortOne does not retry it): its answer decides the payment, `Success` after a
//! reservation and `Failed` otherwise. Afterwards, the ledger must hold exactly what the
//! answers say: per SKU, `available` = units received − units sold, `reserved` = 0, `sold` =
//! orders whose confirmation answered 200; every receipt and every sale once in the entries;
//! `stockctl ledger verify` passes; the stock-change stream holds each change once. Every
//! metric the shipped dashboard and alert rules read is exported by the running roles.
//! Before the load, provisioning is shown to raise an existing R1 stream to R3 in place.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bus::read::ReadFrom;
use contract::stock_change::StockChange;
use e2e::TEST_API_TOKEN;
use e2e::cluster::Cluster;
use e2e::http::{confirmation, portone_webhook};
use e2e::workload::Rng;
use serde_json::json;
use tokio::sync::Mutex;

/// How long one write may keep failing before the test calls it lost.
const WRITE_RETRY_MAX: Duration = Duration::from_secs(120);
/// How long the ledger may take to apply everything once the load stopped.
const SETTLE_MAX: Duration = Duration::from_secs(180);
/// Concurrent clients.
const CLIENTS: usize = 12;
/// SKUs the load spreads over.
const SKUS: u64 = 8;
/// Kills per kind of process (NATS node, ingress, ledger).
const KILLS_PER_KIND: usize = 2;
/// Pause between two kills: a random time within these bounds, after the last one is back.
const KILL_PAUSE_MS: (u64, u64) = (1_000, 5_000);

/// The processes `scripts/cluster` runs; the test kills one of a kind at a time.
const KINDS: [&[&str]; 3] = [
    &["nats1", "nats2", "nats3"],
    &["ingress1", "ingress2"],
    &["ledger1", "ledger2"],
];

/// What the clients sent and what came back.
#[derive(Default)]
struct Tally {
    /// Receipts accepted: reference → (SKU, units).
    receipts: BTreeMap<String, (String, i64)>,
    /// Orders whose confirmation answered 200 (and whose `Success` webhook was accepted).
    sold: BTreeMap<String, String>,
    /// Orders whose confirmation answered anything else (and whose `Failed` was accepted).
    declined: BTreeMap<String, u16>,
    /// Success answers, by kind of request.
    accepted: BTreeMap<&'static str, u64>,
    /// Answers that were not a success (then sent again), by status (0: no answer).
    retried: BTreeMap<u16, u64>,
}

fn sku(n: u64) -> String {
    format!("CLU-{n}")
}

/// One load-generating client: until `stop`, receipts and orders (register, confirm, pay).
async fn client(
    id: usize,
    base: String,
    http: reqwest::Client,
    stop: Arc<AtomicBool>,
    next: Arc<AtomicU64>,
    tally: Arc<Mutex<Tally>>,
    seed: u64,
) {
    let mut rng = Rng::new(seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    while !stop.load(Ordering::Relaxed) {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let sku = sku(rng.below(SKUS));
        if rng.below(3) == 0 {
            let reference = format!("rcpt-{n}");
            let units = 1 + rng.below(4) as i64;
            let body =
                json!({"sku": sku, "location": "main", "quantity": units, "reference": reference});
            write(&http, &tally, "receipt", || {
                http.post(format!("{base}/v1/stock/receipts"))
                    .bearer_auth(TEST_API_TOKEN)
                    .json(&body)
            })
            .await;
            tally.lock().await.receipts.insert(reference, (sku, units));
        } else {
            let order = format!("ord-{n}");
            let payment = format!("pay-{n}");
            let body = json!({"lines": [{"sku": sku, "location": "main", "quantity": 1}], "amount": "10", "currency": "USD"});
            write(&http, &tally, "order", || {
                http.put(format!("{base}/v1/orders/{order}"))
                    .bearer_auth(TEST_API_TOKEN)
                    .json(&body)
            })
            .await;
            let status = match http
                .post(format!("{base}/portone/inventory-confirmation"))
                .header("content-type", "application/json")
                .body(confirmation(&order, &payment, "10"))
                .send()
                .await
            {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            let paid = status == 200;
            let webhook = portone_webhook(
                &payment,
                &order,
                if paid { "Success" } else { "Failed" },
                "10",
            );
            write(&http, &tally, "portone webhook", || {
                http.post(format!("{base}/webhooks/portone"))
                    .header("content-type", "application/json")
                    .body(webhook.clone())
            })
            .await;
            let mut t = tally.lock().await;
            *t.accepted.entry("confirmation").or_default() += u64::from(paid);
            if paid {
                t.sold.insert(order, sku);
            } else {
                t.declined.insert(order, status);
            }
        }
    }
}

/// Sends the request `build` makes until it is answered with a success.
async fn write<F>(http: &reqwest::Client, tally: &Mutex<Tally>, kind: &'static str, build: F)
where
    F: Fn() -> reqwest::RequestBuilder,
{
    let start = Instant::now();
    loop {
        let status = match http.execute(build().build().expect("request")).await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
        let mut t = tally.lock().await;
        if (200..300).contains(&status) {
            *t.accepted.entry(kind).or_default() += 1;
            return;
        }
        *t.retried.entry(status).or_default() += 1;
        drop(t);
        assert!(
            start.elapsed() < WRITE_RETRY_MAX,
            "a {kind} got no success answer in {WRITE_RETRY_MAX:?} (last status {status})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_nodes_replicas_and_ledgers_loses_and_duplicates_nothing() {
    let dir = std::env::temp_dir().join(testkit::unique_name("cluster_faults"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = Cluster::start(
        &dir,
        &e2e::cluster::debug_binaries(),
        &[("STOCKLEDGER_LOG_FORMAT", "text")],
    );
    cluster.ready().await;
    let base = cluster.var("CLUSTER_URL");
    ingress::install_tls_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}; cluster state in {}", dir.display());

    // Provisioning raises an existing stream's replicas in place: streams made R1 (in a
    // namespace of their own) become R3 when a role starts with STOCKLEDGER_STREAM_REPLICAS=3.
    let nats_url = cluster.var("STOCKLEDGER_NATS_URL");
    let namespace = bus::Namespace::parse(&testkit::unique_name("r1")).unwrap();
    let mut replicas = Vec::new();
    for count in [1, 3] {
        let mut cfg = bus::BusConfig::new(nats_url.clone());
        cfg.namespace = namespace.clone();
        cfg.replicas = count;
        let bus = bus::Bus::connect(cfg).await.unwrap();
        bus.ensure_streams().await.unwrap();
        let mut stream = bus
            .jetstream()
            .get_stream(namespace.events_stream())
            .await
            .unwrap();
        // The followers are listed once they have caught up.
        let start = Instant::now();
        let seen = loop {
            let info = stream.info().await.unwrap().clone();
            // The nodes holding a current copy: the leader and the followers caught up.
            let holders: BTreeSet<String> = info
                .cluster
                .map(|c| {
                    let current = c.replicas.into_iter().filter(|p| p.current && !p.offline);
                    c.leader
                        .into_iter()
                        .chain(current.map(|p| p.name))
                        .collect()
                })
                .unwrap_or_default();
            let seen = (info.config.num_replicas, holders.len());
            if seen.1 >= count || start.elapsed() > e2e::wait::WAIT_MAX {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        replicas.push(seen);
    }
    // (configured, nodes holding a current copy)
    assert_eq!(replicas, [(1, 1), (3, 3)], "R1 → R3 in place");

    // Load from the start; the kills begin while it runs.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let load_start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                i,
                base.clone(),
                http.clone(),
                stop.clone(),
                next.clone(),
                tally.clone(),
                seed,
            ))
        })
        .collect();

    let mut rng = Rng::new(seed);
    let mut schedule: Vec<usize> = (0..KINDS.len())
        .flat_map(|k| std::iter::repeat_n(k, KILLS_PER_KIND))
        .collect();
    for i in (1..schedule.len()).rev() {
        schedule.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut kills = Vec::new();
    for kind in schedule {
        let pause = KILL_PAUSE_MS.0 + rng.below(KILL_PAUSE_MS.1 - KILL_PAUSE_MS.0);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let names = KINDS[kind];
        let name = names[rng.below(names.len() as u64) as usize];
        let pid = cluster.kill9(name);
        let at = load_start.elapsed();
        let back = cluster.back(name, pid, &http).await;
        println!("killed {name} (pid {pid}) at {at:.1?}; back after {back:.1?}");
        kills.push(name);
    }
    // A little load after the last restart, then stop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("a client task");
    }
    let load_time = load_start.elapsed();
    let tally = Arc::try_unwrap(tally)
        .ok()
        .expect("every client is done")
        .into_inner();

    // The independent count.
    let mut expected: BTreeMap<String, (i64, i64, i64)> =
        (0..SKUS).map(|n| (sku(n), (0, 0, 0))).collect();
    for (sku, units) in tally.receipts.values() {
        expected.get_mut(sku).unwrap().0 += units;
    }
    for sku in tally.sold.values() {
        let e = expected.get_mut(sku).unwrap();
        e.0 -= 1;
        e.2 += 1;
    }
    let api = e2e::http::Client::new(&base);
    let settle_start = Instant::now();
    loop {
        let mut actual = BTreeMap::new();
        for sku in expected.keys() {
            actual.insert(sku.clone(), api.stock(sku).await);
        }
        if actual == expected {
            break;
        }
        assert!(
            settle_start.elapsed() < SETTLE_MAX,
            "balances (available, reserved, sold) per SKU differ from what the answers say:\n\
             expected {expected:?}\nactual   {actual:?}\n{}",
            cluster.output()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every receipt and every sale once in the entries.
    let db_url = cluster.var("STOCKLEDGER_DATABASE_URL");
    let store = store::Store::connect(&db_url, &store::StoreOptions::default())
        .await
        .unwrap();
    let sql = "SELECT from_bucket, to_bucket, event_id, COUNT(*) FROM ledger_entries \
               GROUP BY from_bucket, to_bucket, event_id";
    let rows: Vec<(String, String, String, i64)> = store::sqlx::query_as(sql)
        .fetch_all(store.pool())
        .await
        .unwrap();
    let receipt_entries: Vec<_> = rows
        .iter()
        .filter(|r| r.0 == "external" && r.1 == "available")
        .collect();
    assert!(
        receipt_entries.iter().all(|r| r.3 == 1),
        "a receipt moved twice: {receipt_entries:?}"
    );
    assert_eq!(
        receipt_entries.len(),
        tally.receipts.len(),
        "one entry per accepted receipt"
    );
    let sale_entries: Vec<_> = rows.iter().filter(|r| r.1 == "sold").collect();
    // Accepted writes with no entry (asserted to be none below; reported from the counts).
    let lost = tally.receipts.len().saturating_sub(receipt_entries.len())
        + tally.sold.len().saturating_sub(sale_entries.len());
    assert!(
        sale_entries.iter().all(|r| r.3 == 1),
        "a sale moved twice: {sale_entries:?}"
    );
    assert_eq!(
        sale_entries.len(),
        tally.sold.len(),
        "one sale per paid order"
    );

    // `stockctl ledger verify` against the cluster.
    let verify = Command::new(e2e::binary("stockctl"))
        .args(["ledger", "verify"])
        .env("STOCKLEDGER_DATABASE_URL", &db_url)
        .env("STOCKLEDGER_NATS_URL", cluster.var("STOCKLEDGER_NATS_URL"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "stockctl ledger verify: {}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // The stock-change stream: per (SKU, location) strictly increasing sequences, each the
    // entry of its cause, ending at the ledger's balance.
    let mut bus_cfg = bus::BusConfig::new(cluster.var("STOCKLEDGER_NATS_URL"));
    bus_cfg.replicas = 3;
    let bus = bus::Bus::connect(bus_cfg).await.unwrap();
    let ns = bus.namespace().clone();
    let entries: BTreeMap<(String, String, u64), String> =
        store::sqlx::query_as::<_, (String, String, i64, String)>(
            "SELECT sku, location, seq, event_id FROM ledger_entries",
        )
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|(s, l, q, e)| ((s, l, q as u64), e))
        .collect();
    let relay_start = Instant::now();
    while store.stock_outbox_len().await.unwrap() > 0 {
        assert!(relay_start.elapsed() < SETTLE_MAX, "the outbox drains");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut reader = bus
        .read(&ns.stock_stream(), &ns.stock_wildcard(), ReadFrom::Start)
        .await
        .unwrap();
    let mut changes: BTreeMap<(String, String), Vec<StockChange>> = BTreeMap::new();
    let mut stock_messages = 0u64;
    while let Some(msg) = reader.next().await {
        let change = StockChange::parse(&msg.unwrap().payload).expect("a stock change");
        stock_messages += 1;
        changes
            .entry((change.sku.clone(), change.location.clone()))
            .or_default()
            .push(change);
    }
    let mut duplicated = 0;
    for ((sku, location), list) in &changes {
        let seqs: Vec<u64> = list.iter().map(|c| c.seq).collect();
        let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
        duplicated += seqs.len() - distinct.len();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{sku}@{location}: changes out of order or twice: {seqs:?}"
        );
        for c in list {
            assert_eq!(
                entries.get(&(sku.clone(), location.clone(), c.seq)),
                Some(&c.cause.event_id),
                "{sku}@{location} seq {}: the change is the entry of its cause",
                c.seq
            );
        }
        let last = list.last().unwrap();
        let (available, reserved, sold) = expected[sku];
        assert_eq!(
            (
                last.balances.available,
                last.balances.reserved,
                last.balances.sold
            ),
            (available, reserved, sold),
            "{sku}: the last change is the balance"
        );
    }

    // What the dashboard and the alert rules read is exported by the running roles, and the
    // SLI saw this run's stock changes.
    let mut exported = BTreeSet::new();
    let mut scrapes = String::new();
    for list in [
        "CLUSTER_INGRESS_URLS",
        "CLUSTER_LEDGER_METRICS",
        "CLUSTER_EXCEPTIONS_METRICS",
    ] {
        for url in cluster.var(list).split(',') {
            let url = format!("{}/metrics", url.trim_end_matches("/metrics"));
            let r = http.get(&url).send().await.unwrap();
            assert!(r.status().is_success(), "GET {url}: {}", r.status());
            let text = r.text().await.unwrap();
            for line in text.lines() {
                // A family with no sample yet (no publish has failed) is still declared.
                if let Some(declared) = line.strip_prefix("# TYPE ") {
                    let mut words = declared.split(' ');
                    let (name, kind) = (words.next().unwrap(), words.next().unwrap_or_default());
                    let suffixes: &[&str] = match kind {
                        "counter" => &["_total"],
                        "histogram" => &["_bucket", "_sum", "_count"],
                        _ => &[""],
                    };
                    exported.extend(suffixes.iter().map(|s| format!("{name}{s}")));
                } else if !line.starts_with('#') {
                    let name = line.split(['{', ' ']).next().unwrap_or_default();
                    exported.insert(name.to_owned());
                }
            }
            scrapes.push_str(&text);
        }
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    for file in [
        "grafana/dashboards/stockledger.json",
        "prometheus/alerts.yml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("stockledger_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                exported.contains(&name),
                "deploy/{file} reads {name}, which no running role exports"
            );
            rest = &rest[at + name.len()..];
        }
    }
    let visible: f64 = scrapes
        .lines()
        .filter_map(|l| l.strip_prefix("stockledger_stock_visible_seconds_count "))
        .filter_map(|v| v.split(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        visible >= 1.0,
        "the stock-visibility SLI counted this run's changes"
    );

    let accepted: u64 = tally.accepted.values().sum();
    let retried: u64 = tally.retried.values().sum();
    println!(
        "cluster fault test: {accepted} requests answered with success in {load_time:.1?} \
         ({:.0}/s through the load balancer) — {:?}; {} receipts, {} orders paid, {} declined \
         (confirmation statuses {:?}); {retried} answers were not a success and were sent \
         again (statuses {:?}); kills {:?}; lost {lost}, duplicated {duplicated}; stock stream \
         {stock_messages} changes",
        accepted as f64 / load_time.as_secs_f64(),
        tally.accepted,
        tally.receipts.len(),
        tally.sold.len(),
        tally.declined.len(),
        tally
            .declined
            .values()
            .fold(BTreeMap::<u16, u64>::new(), |mut m, s| {
                *m.entry(*s).or_default() += 1;
                m
            }),
        tally.retried,
        kills,
    );
    assert_eq!(duplicated, 0);
    // A node or a replica going away is an outage to retry (503), never a server bug (500)
    // or a refusal (4xx) of a valid write.
    assert!(
        tally
            .retried
            .keys()
            .all(|s| matches!(s, 0 | 502 | 503 | 504)),
        "writes were answered {:?} during the faults",
        tally.retried
    );
    assert!(
        tally.sold.len() > 10 && tally.receipts.len() > 10,
        "the load moved stock"
    );
}
