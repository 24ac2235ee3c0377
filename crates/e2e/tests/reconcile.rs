//! `stockctl reconcile` against a real ledger (NATS, the ledger as a task, SQLite and
//! PostgreSQL): a day of traffic across all four providers in which one Stripe capture's
//! webhook is never delivered, one Adyen settlement line has another amount, one capture
//! lands after the cutoff and one reservation expires while the provider's report shows the
//! capture. The run finds exactly those: three unmatched (each with one
//! `reconciliation_mismatch` exception) and one deferred, the rest matched, exit code 1; a
//! second run opens no new exception; once the missing webhook is delivered the day's
//! Stripe line matches (its exception closes), and the next day's run matches the late
//! capture and passes (exit code 0).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use contract::{Envelope, Source};
use domain::{
    AuthorizationMode, EventId, EventKind, Line, Lines, Location, Money, OrderLookup, OrderRef,
    OrderSpec, Payment, PaymentRef, Provider, Quantity, Sku, StockKey, Timestamp,
};
use e2e::{Harness, test_settings};
use serde_json::Value;
use testkit::Backend;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_across_four_providers_reconciles_sqlite() {
    a_day_across_four_providers_reconciles(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_across_four_providers_reconciles_postgres() {
    a_day_across_four_providers_reconciles(Backend::Postgres).await;
}

fn key() -> StockKey {
    StockKey {
        sku: Sku::parse("sku-r").unwrap(),
        location: Location::parse("main").unwrap(),
    }
}

fn usd(a: &str) -> Money {
    Money::parse(a, "USD").unwrap()
}

fn payment(order: &str) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(OrderRef::parse(order).unwrap()),
        amount: Some(usd("10.00")),
    }
}

/// Publishes `kind` as `provider`'s event that happened at `at` (Unix ms).
async fn publish(h: &Harness, provider: &str, identity: &str, at: i64, kind: EventKind) -> EventId {
    let env = Envelope::new(
        &kind,
        Source {
            provider: provider.into(),
            identity: identity.into(),
        },
        Timestamp(at),
        Timestamp(at),
        None,
    );
    let id = env.event_id();
    let subject = h.bus.namespace().event_subject(provider, kind.name());
    h.bus
        .publish_event(
            subject,
            &id.to_string(),
            env.to_json().unwrap().into(),
            None,
        )
        .await
        .unwrap();
    id
}

async fn register(h: &Harness, order: &str, at: i64, refs: Vec<(Provider, PaymentRef)>) {
    let spec = OrderSpec {
        order_ref: OrderRef::parse(order).unwrap(),
        lines: Lines::new(vec![Line {
            key: key(),
            quantity: Quantity::new(1).unwrap(),
        }])
        .unwrap(),
        amount: usd("10.00"),
    };
    publish(
        h,
        "merchant",
        &format!("merchant:order:{order}"),
        at,
        EventKind::OrderRegistered {
            spec,
            payment_refs: refs,
        },
    )
    .await;
}

async fn authorize(h: &Harness, provider: &str, order: &str, at: i64) -> EventId {
    publish(
        h,
        provider,
        &format!("{provider}:{order}:auth"),
        at,
        EventKind::PaymentAuthorized {
            payment: payment(order),
            mode: AuthorizationMode::Notification,
            method: None,
        },
    )
    .await
}

async fn capture(h: &Harness, provider: &str, order: &str, at: i64) {
    publish(
        h,
        provider,
        &format!("{provider}:{order}:capture"),
        at,
        EventKind::PaymentCaptured {
            payment: payment(order),
        },
    )
    .await;
}

fn utc(ms: i64, sep: char) -> String {
    let day = ms.div_euclid(DAY);
    let s = ms.rem_euclid(DAY) / 1000;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn date(ms: i64) -> String {
    utc(ms, ' ')[..10].to_owned()
}

struct Reports {
    stripe: String,
    adyen: String,
    portone: String,
    ipint: String,
}

impl Reports {
    fn new() -> Reports {
        Reports {
            stripe: "balance_transaction_id,created_utc,currency,gross,reporting_category,source_id,payment_intent_id,payment_metadata[order_ref]\n".into(),
            adyen: "Psp Reference,Merchant Reference,Creation Date,TimeZone,Type,Gross Debit (GC),Gross Credit (GC),Gross Currency,Batch Number\n".into(),
            portone: "provider,provider_payment_ref,merchant_order_ref,type,amount,currency,time,line_id\n".into(),
            ipint: "provider,provider_payment_ref,merchant_order_ref,type,amount,currency,time,line_id\n".into(),
        }
    }

    fn capture(&mut self, provider: &str, order: &str, amount: &str, at: i64) {
        match provider {
            "stripe" => self.stripe.push_str(&format!(
                "txn_{order},{},usd,{amount},charge,ch_{order},pi_{order},{order}\n",
                utc(at, ' ')
            )),
            "adyen" => self.adyen.push_str(&format!(
                "psp_{order},{order},{},UTC,Settled,,{amount},USD,7\n",
                utc(at, ' ')
            )),
            "portone" => self.portone.push_str(&format!(
                "portone,pay_{order},{order},capture,{amount},USD,{}Z,tx-{order}\n",
                utc(at, 'T')
            )),
            _ => self.ipint.push_str(&format!(
                "ipint,inv_{order},{order},capture,{amount},USD,{}Z,tx-{order}\n",
                utc(at, 'T')
            )),
        }
    }

    fn write(&self, dir: &Path, day: &str) {
        for (p, text) in [
            ("stripe", &self.stripe),
            ("adyen", &self.adyen),
            ("portone", &self.portone),
            ("ipint", &self.ipint),
        ] {
            std::fs::write(dir.join(format!("{p}-{day}.csv")), text).unwrap();
        }
    }
}

fn reconcile(h: &Harness, day: &str, dir: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let out = Command::new(e2e::binary("stockctl"))
        .args(["reconcile", "--json", "--date", day, "--reports-dir"])
        .arg(dir)
        .args(extra)
        .env("STOCKLEDGER_DATABASE_URL", h.db.url())
        .env("STOCKLEDGER_RECONCILE_CUTOFF", "22:00")
        .env_remove("STOCKLEDGER_RECONCILE_REPORTS_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), json)
}

/// `(checkpoint, bucket, reason, order)` of every item not matched.
fn not_matched(run: &Value) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = run["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["bucket"] != "matched")
        .map(|i| {
            (
                i["checkpoint"].as_str().unwrap().to_owned(),
                i["bucket"].as_str().unwrap().to_owned(),
                i["reason"].as_str().unwrap_or("").to_owned(),
                i["order_ref"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn exceptions(h: &Harness) -> (i64, i64) {
    let rows: Vec<(String, i64)> = store::sqlx::query_as(
        "SELECT state, COUNT(*) FROM exceptions WHERE source = 'reconciliation' AND reason = 'reconciliation_mismatch' GROUP BY state",
    )
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    let get = |s: &str| rows.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    (get("open"), get("resolved"))
}

async fn a_day_across_four_providers_reconciles(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    // Three days ago: recent enough that a late delivery counts for it, past enough that the
    // next day is over too.
    let now = service::clock::now().0;
    let d0 = (now / DAY - 3) * DAY;
    let day = date(d0);
    let next_day = date(d0 + DAY);
    let dir = tempfile::tempdir().unwrap();
    let next_dir = tempfile::tempdir().unwrap();
    let mut reports = Reports::new();

    publish(
        &h,
        "merchant",
        "merchant:receipt:r",
        d0 + 8 * HOUR,
        EventKind::StockReceived {
            key: key(),
            quantity: Quantity::new(100).unwrap(),
            reference: "po-r".into(),
        },
    )
    .await;
    let mut events = 1;
    let providers = ["stripe", "adyen", "portone", "ipint"];
    for (n, p) in providers.iter().enumerate() {
        for k in 0..3 {
            let order = format!("{p}-{k}");
            let t = d0 + 9 * HOUR + i64::try_from(n * 3 + k).unwrap() * 600_000;
            let refs = if *p == "stripe" {
                vec![(
                    Provider::parse("stripe").unwrap(),
                    PaymentRef::parse(format!("pi_{order}")).unwrap(),
                )]
            } else {
                vec![]
            };
            register(&h, &order, t, refs).await;
            authorize(&h, p, &order, t + 1000).await;
            capture(&h, p, &order, t + 2000).await;
            events += 3;
            // The Adyen settlement of its first order says 9.50 where the capture was 10.00.
            let amount = if order == "adyen-0" { "9.50" } else { "10.00" };
            reports.capture(p, &order, amount, t + 2000);
        }
    }
    // Stripe: authorized, captured at Stripe, the capture's webhook never delivered.
    register(&h, "st-miss", d0 + 11 * HOUR, vec![]).await;
    authorize(&h, "stripe", "st-miss", d0 + 11 * HOUR + 1000).await;
    reports.capture("stripe", "st-miss", "10.00", d0 + 12 * HOUR);
    // PortOne: captured at 23:00, after the 22:00 cutoff: it belongs to the next day.
    register(&h, "po-late", d0 + 10 * HOUR, vec![]).await;
    authorize(&h, "portone", "po-late", d0 + 10 * HOUR + 1000).await;
    capture(&h, "portone", "po-late", d0 + 23 * HOUR).await;
    reports.capture("portone", "po-late", "10.00", d0 + 23 * HOUR);
    // iPint: the reservation expired while iPint captured the payment.
    register(&h, "ip-exp", d0 + 10 * HOUR, vec![]).await;
    let auth = authorize(&h, "ipint", "ip-exp", d0 + 10 * HOUR + 1000).await;
    publish(
        &h,
        "stockledger",
        &format!("stockledger:reservation_expired:{auth}"),
        d0 + 15 * HOUR,
        EventKind::ReservationExpired {
            order_ref: OrderRef::parse("ip-exp").unwrap(),
            reservation: auth,
        },
    )
    .await;
    reports.capture("ipint", "ip-exp", "10.00", d0 + 14 * HOUR);
    events += 2 + 3 + 3;
    // A Stripe fee line: read, never matched.
    reports.stripe.push_str(&format!(
        "txn_fee,{},usd,-1.20,fee,fee_1,,\n",
        utc(d0 + 20 * HOUR, ' ')
    ));
    reports.write(dir.path(), &day);
    Reports::new().write(next_dir.path(), &next_day);
    assert_eq!(
        h.wait_processed(events, Duration::from_secs(30))
            .await
            .unwrap(),
        events
    );

    // The day: exactly the three problems unmatched and the late capture deferred.
    let csv = dir.path().join("out.csv");
    let html = dir.path().join("out.html");
    let (code, run) = reconcile(
        &h,
        &day,
        dir.path(),
        &[
            "--csv",
            csv.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{run:#}");
    let p2l = |b: &str, r: &str, o: &str| {
        (
            "provider_to_ledger".to_owned(),
            b.to_owned(),
            r.to_owned(),
            o.to_owned(),
        )
    };
    assert_eq!(
        not_matched(&run),
        vec![
            p2l("deferred", "after_cutoff", "po-late"),
            p2l("unmatched", "amount_mismatch", "adyen-0"),
            p2l("unmatched", "missing_webhook", "st-miss"),
            p2l("unmatched", "no_stock_movement", "ip-exp"),
        ],
        "{run:#}"
    );
    let s = &run["summary"];
    assert_eq!(s["passed"], false);
    assert_eq!(s["total"]["unmatched"], 3);
    assert_eq!(s["total"]["deferred"], 1);
    // 13 authorizations... every payment event, movement and report line of the day.
    assert!(s["total"]["matched"].as_u64().unwrap() >= 40, "{s:#}");
    assert_eq!(s["checkpoints"]["payment_to_stock"]["passed"], true);
    assert_eq!(s["checkpoints"]["stock_to_payment"]["passed"], true);
    assert_eq!(s["checkpoints"]["provider_to_ledger"]["passed"], false);
    let deferred = run["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["bucket"] == "deferred")
        .unwrap();
    assert_eq!(deferred["expected_by"], next_day.as_str());
    assert_eq!(deferred["recon_date"], day.as_str());
    assert_eq!(run["exceptions_opened"], 3);
    assert_eq!(exceptions(&h).await, (3, 0));
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        csv.lines().count(),
        run["items"].as_array().unwrap().len() + 1
    );
    assert!(csv.contains("missing_webhook"));
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("<style>") && !html.contains("<script"));
    assert!(html.contains("amount_mismatch"));

    // The text summary: one line per checkpoint, then each item to look at and its action.
    let text = Command::new(e2e::binary("stockctl"))
        .args(["reconcile", "--date", &day, "--reports-dir"])
        .arg(dir.path())
        .env("STOCKLEDGER_DATABASE_URL", h.db.url())
        .env("STOCKLEDGER_RECONCILE_CUTOFF", "22:00")
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    println!("{text}");
    assert!(
        text.starts_with(&format!("Reconciliation of {day}: FAILED")),
        "{text}"
    );
    for needle in [
        "provider_to_ledger",
        "FAIL",
        "missing_webhook stripe pi_st-miss st-miss",
        "after_cutoff",
        &format!("expected by {next_day}"),
        "→ ",
        "0 exception(s) opened",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }

    // The order's evidence pack carries the reconciliation line that mentions it.
    let pack = tempfile::tempdir().unwrap();
    let out = Command::new(e2e::binary("stockctl"))
        .args(["evidence", "order", "adyen-0", "--out"])
        .arg(pack.path().join("adyen-0"))
        .env("STOCKLEDGER_NATS_URL", &h.nats_url)
        .env("STOCKLEDGER_NATS_NAMESPACE", h.bus.namespace().as_str())
        .env("STOCKLEDGER_DATABASE_URL", h.db.url())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Value = serde_json::from_str(
        &std::fs::read_to_string(pack.path().join("adyen-0/reconciliation.json")).unwrap(),
    )
    .unwrap();
    assert!(
        lines
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["bucket"] == "unmatched" && l["item"]["reason"] == "amount_mismatch"),
        "{lines}"
    );
    let verify = Command::new(e2e::binary("stockctl"))
        .args(["evidence", "verify"])
        .arg(pack.path().join("adyen-0"))
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // Again: the same result, no second exception.
    let (code, again) = reconcile(&h, &day, dir.path(), &[]);
    assert_eq!(code, Some(1));
    assert_eq!(not_matched(&again), not_matched(&run));
    assert_eq!(again["exceptions_opened"], 0);
    assert_eq!(exceptions(&h).await, (3, 0));

    // An operator works a reconciliation exception like any other: finance settled the
    // Adyen difference, so it is resolved through the ledger (an `exception.action`).
    let adyen: Vec<(String,)> = store::sqlx::query_as(
        "SELECT id FROM exceptions WHERE source = 'reconciliation' AND order_ref = 'adyen-0'",
    )
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    assert_eq!(adyen.len(), 1);
    let report = h
        .actions(Duration::from_secs(10))
        .resolve(&adyen[0].0, "finance", "fee booked by Adyen, settled")
        .await
        .unwrap();
    assert_eq!(report.result, "resolved", "{report:?}");
    events += 1;
    assert_eq!(exceptions(&h).await, (2, 1));
    // A run after that opens nothing for the resolved item either.
    let (_, after) = reconcile(&h, &day, dir.path(), &[]);
    assert_eq!(after["exceptions_opened"], 0);
    assert_eq!(exceptions(&h).await, (2, 1));

    // The missing webhook is delivered (Stripe resends it): the day's Stripe line matches
    // and its exception closes; the other two stay.
    capture(&h, "stripe", "st-miss", d0 + 12 * HOUR).await;
    events += 1;
    assert_eq!(
        h.wait_processed(events, Duration::from_secs(30))
            .await
            .unwrap(),
        events
    );
    let (code, healed) = reconcile(&h, &day, dir.path(), &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        not_matched(&healed),
        vec![
            p2l("deferred", "after_cutoff", "po-late"),
            p2l("unmatched", "amount_mismatch", "adyen-0"),
            p2l("unmatched", "no_stock_movement", "ip-exp"),
        ],
        "{healed:#}"
    );
    assert_eq!(healed["exceptions_opened"], 0);
    assert_eq!(healed["exceptions_resolved"], 1);
    assert_eq!(exceptions(&h).await, (1, 2));

    // The late day: the capture after the cutoff matches its carried report line.
    let (code, late) = reconcile(&h, &next_day, next_dir.path(), &[]);
    assert_eq!(code, Some(0), "{late:#}");
    assert_eq!(not_matched(&late), vec![], "{late:#}");
    assert_eq!(late["summary"]["passed"], true);
    assert_eq!(late["deferrals_settled"], 1);
    let carried = late["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["order_ref"] == "po-late" && i["checkpoint"] == "provider_to_ledger")
        .unwrap();
    assert_eq!(carried["bucket"], "matched");
    assert_eq!(carried["origin_date"], day.as_str());
    ledger.stop().await;
}

/// Two `ledger` processes started with `STOCKLEDGER_RECONCILE_AT` already passed today: the
/// previous day is reconciled once, by one of them, with the reports of
/// `STOCKLEDGER_RECONCILE_REPORTS_DIR`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_run_reconciles_yesterday_once() {
    let h = Harness::new(Backend::Sqlite).await.unwrap();
    let now = service::clock::now().0;
    let yesterday = date(now - DAY);
    let dir = tempfile::tempdir().unwrap();
    Reports::new().write(dir.path(), &yesterday);
    let env = [
        ("STOCKLEDGER_NATS_URL", h.nats_url.clone()),
        (
            "STOCKLEDGER_NATS_NAMESPACE",
            h.bus.namespace().as_str().to_owned(),
        ),
        ("STOCKLEDGER_DATABASE_URL", h.db.url().to_owned()),
        ("STOCKLEDGER_LEDGER_METRICS_ADDR", "off".to_owned()),
        ("STOCKLEDGER_RECONCILE_AT", "00:00".to_owned()),
        (
            "STOCKLEDGER_RECONCILE_REPORTS_DIR",
            dir.path().display().to_string(),
        ),
        ("RUST_LOG", "info".to_owned()),
    ];
    let mut ledgers = [
        e2e::procs::Role::spawn("ledger", None, &env),
        e2e::procs::Role::spawn("ledger", None, &env),
    ];
    e2e::wait::eventually("the scheduled run of yesterday", || async {
        let runs = h.store.recon_runs(&yesterday).await.unwrap();
        runs.iter().any(|r| r.finished_at.is_some())
    })
    .await;
    // Both processes have looked at the clock by now: each says it scheduled the run.
    for l in &ledgers {
        e2e::procs::wait_output(l, "daily reconciliation scheduled", Duration::from_secs(15)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for l in &mut ledgers {
        l.kill();
    }
    let runs = h.store.recon_runs(&yesterday).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].run_kind, "scheduled");
    assert_eq!(runs[0].passed, Some(true));
    let finished: usize = ledgers
        .iter()
        .map(|l| {
            l.output()
                .matches("scheduled reconciliation finished")
                .count()
        })
        .sum();
    assert_eq!(finished, 1);
}

/// A report that cannot be read is a usage error (exit code 2) naming the file, the line and
/// the column; nothing is reconciled.
#[test]
fn an_unreadable_report_is_a_usage_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adyen.csv");
    std::fs::write(
        &file,
        "Psp Reference,Merchant Reference,Creation Date,TimeZone,Type,Gross Debit (GC),Gross Credit (GC),Gross Currency,Batch Number\n\
         psp_1,o-1,2026-11-18 10:00:00,UTC,Settled,,12,50,EUR,7\n",
    )
    .unwrap();
    let db = dir.path().join("ledger.db");
    let out = Command::new(e2e::binary("stockctl"))
        .args(["reconcile", "--date", "2026-11-18", "--report"])
        .arg(format!("adyen={}", file.display()))
        .env(
            "STOCKLEDGER_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("adyen.csv") && stderr.contains("line 2"),
        "{stderr}"
    );
    assert!(!db.exists(), "nothing was reconciled");
    let bad = Command::new(e2e::binary("stockctl"))
        .args(["reconcile", "--date", "18/11/2026"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
