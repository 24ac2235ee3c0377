//! The reconciliation benchmark: a day of N events (default 100k: stock receipts, then
//! orders registered, authorized and captured across the four providers) applied by a real
//! ledger through JetStream, the providers' reports of the day (one capture line per
//! captured order, in each provider's format), then `reconcile` of that day timed: reading
//! the facts, matching, storing the run and its items. On SQLite and on PostgreSQL.
//!
//! Run: `scripts/bench-reconcile` (or `cargo bench -p e2e --bench reconcile -- --bench
//! --events 100000 --backend postgres`). Without `--bench` (as `cargo test --all-targets`
//! runs it) it does a 300-event smoke run.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use contract::{Envelope, Source};
use domain::{
    AuthorizationMode, EventKind, Line, Lines, Location, Money, OrderLookup, OrderRef, OrderSpec,
    Payment, Quantity, Sku, StockKey, Timestamp,
};
use e2e::{Harness, test_settings};
use futures::StreamExt;
use reconcile::engine::{self, Settings};
use reconcile::reports::ReportProvider;
use testkit::Backend;

const DAY: i64 = 86_400_000;
/// Publishes in flight at once.
const PUBLISH_WINDOW: usize = 512;
const PROVIDERS: [&str; 4] = ["stripe", "adyen", "portone", "ipint"];

struct Args {
    events: usize,
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
        events: value("--events")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if bench { 100_000 } else { 300 }),
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

fn key(s: u64) -> StockKey {
    StockKey {
        sku: Sku::parse(format!("sku-{s:05}")).unwrap(),
        location: Location::parse("main").unwrap(),
    }
}

fn payment(order: &str) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(OrderRef::parse(order).unwrap()),
        amount: Some(Money::parse("10.00", "USD").unwrap()),
    }
}

/// One envelope: `(subject provider, identity, time, kind)`.
type Planned = (String, String, i64, EventKind);

async fn publish_all(h: &Harness, events: Vec<Planned>) {
    futures::stream::iter(events)
        .map(|(provider, identity, at, kind)| async move {
            let env = Envelope::new(
                &kind,
                Source {
                    provider: provider.clone(),
                    identity,
                },
                Timestamp(at),
                Timestamp(at),
                None,
            );
            let subject = h.bus.namespace().event_subject(&provider, kind.name());
            h.bus
                .publish_event(
                    subject,
                    &env.event_id().to_string(),
                    env.to_json().unwrap().into(),
                    None,
                )
                .await
                .unwrap();
        })
        .buffer_unordered(PUBLISH_WINDOW)
        .collect::<Vec<()>>()
        .await;
}

fn hms(ms: i64) -> (i64, i64, i64) {
    let s = ms.rem_euclid(DAY) / 1000;
    (s / 3600, s / 60 % 60, s % 60)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let now = service::clock::now().0;
    let d0 = (now / DAY - 2) * DAY;
    let date = engine::parse_date(&engine::date_from_ms(d0)).unwrap();
    let day = engine::date_str(date);
    let orders = (a.events.saturating_sub(a.skus as usize) / 3).max(1);
    for backend in &a.backends {
        let h = Harness::new(*backend).await?;
        let ledger = h.start_ledger(test_settings()).await?;
        let started = Instant::now();
        let receipts: Vec<Planned> = (0..a.skus)
            .map(|s| {
                (
                    "merchant".to_owned(),
                    format!("merchant:receipt:{s}"),
                    d0 + 60_000,
                    EventKind::StockReceived {
                        key: key(s),
                        quantity: Quantity::new(1_000_000).unwrap(),
                        reference: format!("po-{s}"),
                    },
                )
            })
            .collect();
        publish_all(&h, receipts).await;
        // Orders spread over the day, each registered, then authorized, then captured.
        let at = |o: usize| d0 + 3_600_000 + (o as i64 * (20 * 3_600_000)) / orders as i64;
        let order_ref = |o: usize| format!("o-{o}");
        let provider = |o: usize| PROVIDERS[o % PROVIDERS.len()];
        let phase = |step: u8| -> Vec<Planned> {
            (0..orders)
                .map(|o| {
                    let r = order_ref(o);
                    let p = provider(o);
                    match step {
                        0 => (
                            "merchant".to_owned(),
                            format!("merchant:order:{r}"),
                            at(o),
                            EventKind::OrderRegistered {
                                spec: OrderSpec {
                                    order_ref: OrderRef::parse(&r).unwrap(),
                                    lines: Lines::new(vec![Line {
                                        key: key(o as u64 % a.skus),
                                        quantity: Quantity::new(1).unwrap(),
                                    }])
                                    .unwrap(),
                                    amount: Money::parse("10.00", "USD").unwrap(),
                                },
                                payment_refs: vec![],
                            },
                        ),
                        1 => (
                            p.to_owned(),
                            format!("{p}:{r}:auth"),
                            at(o) + 1000,
                            EventKind::PaymentAuthorized {
                                payment: payment(&r),
                                mode: AuthorizationMode::Notification,
                                method: None,
                            },
                        ),
                        _ => (
                            p.to_owned(),
                            format!("{p}:{r}:capture"),
                            at(o) + 2000,
                            EventKind::PaymentCaptured {
                                payment: payment(&r),
                            },
                        ),
                    }
                })
                .collect()
        };
        for step in 0..3 {
            publish_all(&h, phase(step)).await;
        }
        let total = a.skus as i64 + 3 * orders as i64;
        let done = h.wait_processed(total, Duration::from_secs(3600)).await?;
        assert_eq!(done, total, "the ledger did not apply the day");
        let applied = started.elapsed();
        ledger.stop().await;

        // The reports: one capture line per order in its provider's format.
        let mut files: Vec<(ReportProvider, String)> = vec![
            (
                ReportProvider::Stripe,
                "balance_transaction_id,created_utc,currency,gross,reporting_category,source_id,payment_intent_id,payment_metadata[order_ref]\n".into(),
            ),
            (
                ReportProvider::Adyen,
                "Psp Reference,Merchant Reference,Creation Date,TimeZone,Type,Gross Debit (GC),Gross Credit (GC),Gross Currency,Batch Number\n".into(),
            ),
            (
                ReportProvider::PortOne,
                "provider,provider_payment_ref,merchant_order_ref,type,amount,currency,time,line_id\n".into(),
            ),
            (
                ReportProvider::Ipint,
                "provider,provider_payment_ref,merchant_order_ref,type,amount,currency,time,line_id\n".into(),
            ),
        ];
        for o in 0..orders {
            let r = order_ref(o);
            let t = at(o) + 2000;
            let (hh, mm, ss) = hms(t);
            let (_, text) = &mut files[o % PROVIDERS.len()];
            match provider(o) {
                "stripe" => text.push_str(&format!(
                    "txn_{r},{day} {hh:02}:{mm:02}:{ss:02},usd,10.00,charge,ch_{r},pi_{r},{r}\n"
                )),
                "adyen" => text.push_str(&format!(
                    "psp_{r},{r},{day} {hh:02}:{mm:02}:{ss:02},UTC,Settled,,10.00,USD,1\n"
                )),
                p => text.push_str(&format!(
                    "{p},pay_{r},{r},capture,10.00,USD,{day}T{hh:02}:{mm:02}:{ss:02}Z,tx-{r}\n"
                )),
            }
        }
        let parse_started = Instant::now();
        let mut reports = Vec::new();
        for (p, text) in &files {
            reports.push(ledger::reconcile::Report {
                provider: *p,
                file: format!("{}-{day}.csv", engine::provider_name(*p)),
                lines: reconcile::reports::parse(*p, text.as_bytes()).unwrap(),
            });
        }
        let parsed = parse_started.elapsed();
        let lines: usize = reports.iter().map(|r| r.lines.len()).sum();
        let outcome = ledger::reconcile::reconcile_day(
            &h.store,
            date,
            &reports,
            &Settings::default(),
            service::clock::now().0,
            None,
        )
        .await?;
        let s = &outcome.result.summary;
        assert!(s.passed, "{s:?}");
        println!(
            "reconcile {backend:?}: a day of {total} events applied in {:.1} s; {lines} report lines parsed in {:.2} s; \
             reconcile {day}: {} items ({} matched, {} unmatched, {} deferred) in {:.2} s \
             (read {:.2} s, match {:.2} s, store {:.2} s)",
            applied.as_secs_f64(),
            parsed.as_secs_f64(),
            outcome.result.items.len(),
            s.total.matched,
            s.total.unmatched,
            s.total.deferred,
            outcome.took.as_secs_f64(),
            outcome.read.as_secs_f64(),
            outcome.matching.as_secs_f64(),
            (outcome.took - outcome.read - outcome.matching).as_secs_f64(),
        );
    }
    Ok(())
}
