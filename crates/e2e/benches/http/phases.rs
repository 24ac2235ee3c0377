//! The measured phases of one backend's run, in the order they run: each is one method of
//! [`Bench`], which owns the harness, the service processes, and the count of events the
//! ledger must have processed so far.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{Event, EventId, EventKind, Location, Quantity, Sku, StockKey};
use e2e::Harness;
use e2e::http::{Client, confirmation, portone_webhook};
use reqwest::Method;
use serde_json::json;
use testkit::Backend;

use crate::Args;
use crate::load::{Run, drive, rate};
use crate::procs::{self, Binaries, Proc};
use crate::report::Row;

/// Units every SKU receives before the orders.
pub const RECEIVED: i64 = 1_000_000;

/// An order of one unit of one SKU, and the PortOne payment reference it is paid with.
pub struct Order {
    pub reference: String,
    pub sku: String,
}

impl Order {
    fn payment_ref(&self) -> String {
        format!("pp-{}", self.reference)
    }
}

/// `n` orders named `<prefix>-<i>`, spread round-robin over `skus`.
pub fn orders(prefix: &str, n: usize, skus: &[String]) -> Arc<Vec<Order>> {
    let orders = (0..n).map(|i| Order {
        reference: format!("{prefix}-{i}"),
        sku: skus[i % skus.len()].clone(),
    });
    Arc::new(orders.collect())
}

/// One backend under load.
pub struct Bench {
    pub h: Arc<Harness>,
    pub c: Client,
    ingress: Proc,
    ledgers: Vec<Proc>,
    clients: usize,
    /// Events published so far, each of which the ledger must process.
    expected: i64,
    /// Longest wait for the ledger to catch up.
    patience: Duration,
}

impl Bench {
    /// Starts `args.ledgers` ledger processes and one ingress on a fresh harness.
    pub async fn start(h: Harness, bins: &Binaries, args: &Args) -> anyhow::Result<Bench> {
        let ledgers = (0..args.ledgers)
            .map(|_| procs::spawn(&bins.ledger, &h, "127.0.0.1:0"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let addr = procs::free_addr()?;
        let mut ingress = procs::spawn(&bins.ingress, &h, &addr)?;
        let base = format!("http://{addr}");
        procs::wait_ready(&base, &mut ingress).await?;
        Ok(Bench {
            h: Arc::new(h),
            c: Client::new(&base),
            ingress,
            ledgers,
            clients: args.clients,
            expected: 0,
            patience: Duration::from_secs(if args.bench { 3600 } else { 60 }),
        })
    }

    /// Waits until the ledger processed every event published so far, polling every
    /// `poll`; returns when that was seen. Fails if a service died or time ran out.
    ///
    /// The poll asks JetStream, not the database: the ledger's durable consumer has nothing
    /// pending and nothing unacknowledged once every message's transaction committed (it
    /// acknowledges only after the commit). Counting `processed_events` instead would scan
    /// a growing table every poll and take CPU from the services being measured; the count
    /// is read once, at the end, to check it.
    pub async fn settle(&mut self, poll: Duration) -> anyhow::Result<Instant> {
        let started = Instant::now();
        let stream = self.h.bus.namespace().events_stream();
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = self
            .h
            .bus
            .jetstream()
            .get_stream(&stream)
            .await?
            .get_consumer(bus::LEDGER_CONSUMER)
            .await
            .map_err(|e| anyhow::anyhow!("the ledger's consumer: {e}"))?;
        loop {
            let info = consumer.info().await?;
            let drained = info.num_pending == 0 && info.num_ack_pending == 0;
            let done = if drained {
                self.h.processed_count().await?
            } else {
                -1
            };
            if done >= self.expected {
                anyhow::ensure!(
                    done == self.expected,
                    "{done} events processed, but only {} were published",
                    self.expected
                );
                return Ok(Instant::now());
            }
            self.ingress.ensure_running("ingress")?;
            for ledger in &mut self.ledgers {
                ledger.ensure_running("ledger")?;
            }
            anyhow::ensure!(
                started.elapsed() < self.patience,
                "the ledger processed only {done} of {} events within {:?}",
                self.expected,
                self.patience
            );
            tokio::time::sleep(poll).await;
        }
    }

    /// Not timed: every SKU receives [`RECEIVED`] units.
    pub async fn seed_stock(&mut self, skus: &[String]) -> anyhow::Result<()> {
        let (c, skus) = (self.c.clone(), Arc::new(skus.to_vec()));
        let n = skus.len();
        let run = drive(n, self.clients, move |i| {
            let (c, skus) = (c.clone(), skus.clone());
            async move {
                let body = json!({"sku": skus[i], "location": "main", "quantity": RECEIVED, "reference": format!("po-{}", skus[i])});
                c.api(Method::POST, "/v1/stock/receipts", Some(body)).await.0
            }
        })
        .await?;
        self.expected += n as i64;
        run.ensure_all("stock receipts", &[200, 201])
    }

    /// `PUT /v1/orders/{ref}` for every order; each answer waits for the ledger's decision.
    pub async fn register(&mut self, orders: &Arc<Vec<Order>>) -> anyhow::Result<Run> {
        let (c, list) = (self.c.clone(), orders.clone());
        let run = drive(orders.len(), self.clients, move |i| {
            let (c, list) = (c.clone(), list.clone());
            async move {
                let o = &list[i];
                let body = json!({"lines": [{"sku": o.sku, "location": "main", "quantity": 1}], "amount": "10.00", "currency": "USD"});
                let path = format!("/v1/orders/{}", o.reference);
                c.api(Method::PUT, &path, Some(body)).await.0
            }
        })
        .await?;
        self.expected += orders.len() as i64;
        run.ensure_all("order registrations", &[200, 201])?;
        Ok(run)
    }

    /// PortOne's inventory confirmation for every order: reserves its unit (200).
    pub async fn confirm(&mut self, orders: &Arc<Vec<Order>>) -> anyhow::Result<Run> {
        let (c, list) = (self.c.clone(), orders.clone());
        let run = drive(orders.len(), self.clients, move |i| {
            let (c, list) = (c.clone(), list.clone());
            async move {
                let o = &list[i];
                let body = confirmation(&o.reference, &o.payment_ref(), "10");
                c.post("/portone/inventory-confirmation", body).await.0
            }
        })
        .await?;
        self.expected += orders.len() as i64;
        run.ensure_all("inventory confirmations", &[200])?;
        Ok(run)
    }

    /// A signed PortOne `Success` webhook for every order (reserved → sold). Returns the
    /// HTTP run (answered once JetStream acknowledged) and the "accepted → applied" row:
    /// webhooks / time from the first send until the ledger processed all of them.
    pub async fn webhooks(
        &mut self,
        orders: &Arc<Vec<Order>>,
        label: &str,
    ) -> anyhow::Result<(Row, Row)> {
        self.settle(Duration::from_millis(20)).await?;
        let (c, list) = (self.c.clone(), orders.clone());
        let started = Instant::now();
        let run = drive(orders.len(), self.clients, move |i| {
            let (c, list) = (c.clone(), list.clone());
            async move {
                let o = &list[i];
                let body = portone_webhook(&o.payment_ref(), &o.reference, "Success", "10");
                c.post("/webhooks/portone", body).await.0
            }
        })
        .await?;
        self.expected += orders.len() as i64;
        run.ensure_all("webhooks", &[200])?;
        let applied = self.settle(Duration::from_millis(20)).await? - started;
        let accept = Row::run(
            format!("signed PortOne webhooks, HTTP accepted, {label}"),
            &run,
            "req/s",
        );
        let n = orders.len();
        let path = format!("signed PortOne webhooks, accepted → applied, {label}");
        Ok((accept, Row::rate(path, n, rate(n, applied), "events/s")))
    }

    /// Not timed: publishes already-applied-shaped events (one-unit receipts on SKUs of
    /// their own) straight to JetStream until the stream holds `target` events, and waits
    /// until the ledger applied them, so that the replay has `target` events to dedupe.
    pub async fn fill_for_replay(&mut self, target: usize, skus: usize) -> anyhow::Result<()> {
        let missing = usize::try_from((target as i64 - self.expected).max(0))?;
        if missing == 0 {
            return Ok(());
        }
        let started = Instant::now();
        let h = self.h.clone();
        let run = drive(missing, self.clients, move |i| {
            let h = h.clone();
            async move {
                let (identity, event) = filler(i, skus);
                match h.publish(&identity, &event).await {
                    Ok(()) => 200,
                    Err(_) => 503,
                }
            }
        })
        .await?;
        self.expected += missing as i64;
        run.ensure_all("replay filler publishes", &[200])?;
        self.settle(Duration::from_millis(250)).await?;
        println!(
            "  replay setup: {missing} receipts published straight to JetStream in {:.1} s, all applied after {:.1} s",
            run.elapsed.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// `stockctl replay --all-history` over everything published: every event is a
    /// recorded duplicate. Returns the row and stockctl's peak RSS.
    pub async fn replay(&mut self, bins: &Binaries) -> anyhow::Result<(Row, f64)> {
        self.settle(Duration::from_millis(250)).await?;
        let args = ["replay", "--all-history", "--json"];
        let done = procs::run_stockctl(&bins.stockctl, &self.h, &args).await?;
        let out: serde_json::Value = serde_json::from_str(&done.stdout)?;
        let summary = &out["summary"];
        let count = |k: &str| summary[k].as_u64().unwrap_or(0);
        anyhow::ensure!(
            count("applied") + count("exceptions") + count("unprocessable") == 0,
            "the replay changed something: {summary}"
        );
        let deduplicated = usize::try_from(count("deduplicated"))?;
        anyhow::ensure!(
            deduplicated as i64 >= self.expected,
            "the replay saw {deduplicated} events of {}: {summary}",
            self.expected
        );
        let path = "replay of already-applied events (`stockctl replay --all-history`, dedupe)";
        let row = Row::rate(
            path,
            deduplicated,
            rate(deduplicated, done.elapsed),
            "events/s",
        );
        Ok((row, done.peak_rss_mib))
    }

    /// Afterwards: every SKU's units add up to what it received, every order's unit is
    /// sold and none is left reserved; and the store's own verification passes.
    pub async fn check_stock(&self, orders: &[&Arc<Vec<Order>>]) -> anyhow::Result<()> {
        let mut sold: BTreeMap<&str, i64> = BTreeMap::new();
        for o in orders.iter().flat_map(|list| list.iter()) {
            *sold.entry(o.sku.as_str()).or_insert(0) += 1;
        }
        for (sku, expected_sold) in sold {
            let (available, reserved, sold) = self.c.stock(sku).await;
            anyhow::ensure!(
                available + reserved + sold == RECEIVED && reserved == 0 && sold == expected_sold,
                "{sku}: available {available} + reserved {reserved} + sold {sold}, expected {} sold of {RECEIVED}",
                expected_sold
            );
        }
        let report = self.h.store.verify().await?;
        anyhow::ensure!(report.is_ok(), "ledger verify: {:?}", report.problems);
        Ok(())
    }

    /// Peak RSS of the services so far (VmHWM never decreases, so this is the run's peak).
    pub fn memory(&self) -> Vec<(String, f64)> {
        let mut out = vec![(
            "ingress".to_owned(),
            procs::peak_rss_mib(self.ingress.pid()).unwrap_or(0.0),
        )];
        let ledgers: Vec<f64> = self
            .ledgers
            .iter()
            .map(|l| procs::peak_rss_mib(l.pid()).unwrap_or(0.0))
            .collect();
        let label = match ledgers.len() {
            1 => "ledger".to_owned(),
            n => format!("ledger (largest of {n})"),
        };
        out.push((label, ledgers.iter().copied().fold(0.0, f64::max)));
        out
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.h.db.backend()
    }
}

/// The i-th filler event: one unit received on SKU `fill-<i % skus>`.
fn filler(i: usize, skus: usize) -> (String, Event) {
    let identity = format!("bench:fill:{i}");
    let key = StockKey {
        sku: Sku::parse(format!("fill-{}", i % skus.max(1))).expect("valid SKU"),
        location: Location::parse("main").expect("valid location"),
    };
    let kind = EventKind::StockReceived {
        key,
        quantity: Quantity::new(1).expect("valid quantity"),
        reference: format!("fill-{i}"),
    };
    let event = Event {
        id: EventId::from_dedupe_key(&identity),
        provider: domain::Provider::named("test"),
        recorded_at: e2e::now(),
        kind,
    };
    (identity, event)
}
