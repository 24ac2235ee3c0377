//! Issue 15, item 3: `stockctl whatif` against a real stream. A day of traffic goes through
//! the real ledger on NATS (SQLite, and PostgreSQL): orders authorized and captured, voided, never captured
//! (the sweeper, run every hour of stream time with a 2 h TTL, publishes their expiries),
//! captured three hours later (after their reservation expired), and a flash sale where 25
//! buyers authorize 10 units and a third of them never pay. Then `stockctl whatif --policy
//! deduct_on_capture --reservation-ttl 30m` runs on the stream, and every number of its
//! report is checked against a count made here, from the generated traffic, by a model of
//! the trigger matrix's stock rules written for this traffic (never the simulator). Also:
//! the HTML page has one chart per top SKU, and nothing was written to the ledger or the
//! streams.
//!
//! The proposal's numbers are checked against `deduct_on_capture` once the matrix honours
//! the policy (issue 15, item 1), and against `reserve_on_authorization` with the proposal's
//! TTL before: either way the proposal differs from the baseline (its TTL does).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use domain::{
    AuthorizationMode, Context, Decision, Delivery, Event, EventId, EventKind, Line, Lines,
    Location, Money, OrderLookup, OrderRef, OrderSpec, Outcome, Payment, PolicySet, Provider,
    Quantity, ReservationTtls, Sku, State, StockKey, StockPolicy, Timestamp,
};
use e2e::{Harness, test_settings};
use serde_json::Value;
use testkit::Backend;

/// 2026-11-21T00:00:00Z: the day compared.
const DAY0: i64 = 1_795_219_200_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// The configured reservation TTL (the baseline's, and the sweeper's).
const TTL: i64 = 2 * HOUR;
/// The proposal's TTL.
const PROPOSED_TTL: i64 = 30 * MIN;
const REGULAR: [&str; 5] = ["day-a", "day-b", "day-c", "day-d", "day-e"];
const REGULAR_STOCK: u64 = 60;
const FLASH: &str = "flash";
const FLASH_STOCK: u64 = 10;
const FLASH_BUYERS: i64 = 25;

fn key(sku: &str) -> StockKey {
    StockKey {
        sku: Sku::parse(sku).unwrap(),
        location: Location::parse("main").unwrap(),
    }
}

fn event(identity: &str, t: i64, kind: EventKind) -> (String, Event) {
    let id = EventId::from_dedupe_key(identity);
    // Payments come from Stripe; receipts and registrations from the merchant API.
    let provider = if kind.payment().is_some() {
        "stripe"
    } else {
        "merchant"
    };
    (
        identity.to_owned(),
        Event {
            id,
            provider: Provider::parse(provider).unwrap(),
            recorded_at: Timestamp(t),
            kind,
        },
    )
}

/// The configured reservation TTLs: 2 h for every provider.
fn ttls() -> ReservationTtls {
    ReservationTtls::uniform(Duration::from_millis(TTL as u64))
}

fn payment(order: &str) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(OrderRef::parse(order).unwrap()),
        amount: None,
    }
}

fn register(order: &str, sku: &str, qty: u64, t: i64) -> (String, Event) {
    let spec = OrderSpec {
        order_ref: OrderRef::parse(order).unwrap(),
        lines: Lines::new([Line {
            key: key(sku),
            quantity: Quantity::new(qty).unwrap(),
        }])
        .unwrap(),
        amount: Money::parse("20", "EUR").unwrap(),
    };
    let kind = EventKind::OrderRegistered {
        spec,
        payment_refs: vec![],
    };
    event(&format!("wi:{order}:register"), t, kind)
}

fn authorize(order: &str, t: i64) -> (String, Event) {
    let kind = EventKind::PaymentAuthorized {
        payment: payment(order),
        mode: AuthorizationMode::Notification,
        method: None,
    };
    event(&format!("wi:{order}:auth"), t, kind)
}

fn capture(order: &str, t: i64) -> (String, Event) {
    let kind = EventKind::PaymentCaptured {
        payment: payment(order),
    };
    event(&format!("wi:{order}:capture"), t, kind)
}

fn void(order: &str, t: i64) -> (String, Event) {
    let kind = EventKind::PaymentVoided {
        payment: payment(order),
    };
    event(&format!("wi:{order}:void"), t, kind)
}

/// The day's traffic, in time order: receipts the hour before the day (applied, not
/// counted), 120 regular orders, the flash sale at noon.
fn traffic() -> Vec<(String, Event)> {
    let mut out = Vec::new();
    for sku in REGULAR.iter().chain([&FLASH]) {
        let n = if *sku == FLASH {
            FLASH_STOCK
        } else {
            REGULAR_STOCK
        };
        let kind = EventKind::StockReceived {
            key: key(sku),
            quantity: Quantity::new(n).unwrap(),
            reference: format!("po-{sku}"),
        };
        out.push(event(&format!("wi:receipt:{sku}"), DAY0 - HOUR, kind));
    }
    for k in 0..120i64 {
        let o = format!("day-{k}");
        let t = DAY0 + 10 * MIN + k * 9 * MIN;
        out.push(register(
            &o,
            REGULAR[(k % 5) as usize],
            1 + (k % 2) as u64,
            t,
        ));
        out.push(authorize(&o, t + MIN));
        match k % 20 {
            0..=11 => out.push(capture(&o, t + 10 * MIN)),
            12..=14 => out.push(void(&o, t + 5 * MIN)),
            15..=17 => {} // never captured: the reservation expires
            _ => out.push(capture(&o, t + 3 * HOUR)), // after its reservation expired
        }
    }
    for i in 0..FLASH_BUYERS {
        let o = format!("flash-{i}");
        out.push(register(
            &o,
            FLASH,
            1,
            DAY0 + 11 * HOUR + 50 * MIN + i * 10_000,
        ));
        out.push(authorize(&o, DAY0 + 12 * HOUR + i * MIN));
        if i % 3 != 0 {
            out.push(capture(&o, DAY0 + 12 * HOUR + 30 * MIN + 30_000 + i * MIN));
        }
    }
    out.sort_by_key(|(_, e)| e.recorded_at);
    out
}

/// What the model counts, as the report names it.
#[derive(Debug, Default, Clone, PartialEq)]
struct Counts {
    oversold: u64,
    units_short: u64,
    declined: u64,
    units_reserved: u64,
    expired: u64,
    units_expired: u64,
    units_sold: u64,
    peak_blocked: i64,
    unit_ms: i64,
    exceptions: BTreeMap<String, u64>,
    flash: (u64, u64, u64), // oversold, declined, expired
    /// Per order: (state, exceptions, declined).
    orders: BTreeMap<String, (&'static str, Vec<&'static str>, bool)>,
}

#[derive(Clone, Copy, PartialEq)]
enum St {
    Registered,
    Reserved,
    Sold,
    Released,
}

/// The stock rules of `docs/trigger-matrix.md` for this traffic (single-line orders, one
/// location, notified authorizations), applied in time order with expiries at exactly
/// reservation + `ttl`; counted within the day.
fn model(events: &[(String, Event)], reserve: bool, ttl: i64) -> Counts {
    let mut c = Counts::default();
    let mut available: BTreeMap<String, i64> = BTreeMap::new();
    let mut reserved: BTreeMap<String, i64> = BTreeMap::new();
    let mut orders: BTreeMap<String, (String, i64, St, Option<i64>)> = BTreeMap::new();
    let mut expiries: Vec<(i64, String)> = Vec::new();
    let in_day = |t: i64| (DAY0..DAY0 + DAY).contains(&t);
    let total_reserved = |r: &BTreeMap<String, i64>| r.values().sum::<i64>();
    let exception = |c: &mut Counts, o: &str, code: &'static str| {
        *c.exceptions.entry(code.to_owned()).or_default() += 1;
        let entry = c.orders.get_mut(o).unwrap();
        if !entry.1.contains(&code) {
            entry.1.push(code);
        }
    };
    let mut all: Vec<(i64, Option<&Event>)> = events
        .iter()
        .map(|(_, e)| (e.recorded_at.0, Some(e)))
        .collect();
    all.push((DAY0 + DAY, None));
    for (t, e) in all {
        // Expiries due by now, in deadline order.
        expiries.sort();
        while let Some((at, o)) = expiries.first().cloned() {
            if at > t || at >= DAY0 + DAY {
                break;
            }
            expiries.remove(0);
            let (sku, q, st, since) = orders[&o].clone();
            if st != St::Reserved {
                continue;
            }
            *reserved.get_mut(&sku).unwrap() -= q;
            *available.get_mut(&sku).unwrap() += q;
            c.unit_ms += q * (at - since.unwrap().max(DAY0));
            orders.insert(o.clone(), (sku.clone(), q, St::Released, None));
            c.orders.get_mut(&o).unwrap().0 = "not_sold";
            c.expired += 1;
            c.units_expired += q as u64;
            if sku == FLASH {
                c.flash.2 += 1;
            }
        }
        let Some(e) = e else { break };
        match &e.kind {
            EventKind::StockReceived { key, quantity, .. } => {
                *available.entry(key.sku.to_string()).or_default() += quantity.as_i64();
                reserved.entry(key.sku.to_string()).or_default();
            }
            EventKind::OrderRegistered { spec, .. } => {
                let (k, q) = spec.lines.iter().next().unwrap();
                let o = spec.order_ref.to_string();
                orders.insert(
                    o.clone(),
                    (k.sku.to_string(), q.as_i64(), St::Registered, None),
                );
                c.orders.insert(o, ("not_sold", vec![], false));
            }
            kind => {
                let Some(OrderLookup::OrderRef(o)) = kind.payment().map(|p| &p.order) else {
                    continue;
                };
                let o = o.to_string();
                let (sku, q, st, since) = orders[&o].clone();
                let counted = in_day(t);
                assert!(counted, "all payments are within the day");
                match kind {
                    EventKind::PaymentAuthorized { .. } if reserve && st == St::Registered => {
                        if available[&sku] >= q {
                            *available.get_mut(&sku).unwrap() -= q;
                            *reserved.get_mut(&sku).unwrap() += q;
                            orders.insert(o.clone(), (sku.clone(), q, St::Reserved, Some(t)));
                            c.orders.get_mut(&o).unwrap().0 = "reserved";
                            c.units_reserved += q as u64;
                            c.peak_blocked = c.peak_blocked.max(total_reserved(&reserved));
                            expiries.push((t + ttl, o.clone()));
                        } else {
                            c.declined += 1;
                            c.orders.get_mut(&o).unwrap().2 = true;
                            exception(&mut c, &o, "insufficient_at_authorization");
                            if sku == FLASH {
                                c.flash.1 += 1;
                            }
                        }
                    }
                    EventKind::PaymentCaptured { .. } if st != St::Sold => {
                        if st == St::Reserved {
                            *reserved.get_mut(&sku).unwrap() -= q;
                            c.unit_ms += q * (t - since.unwrap().max(DAY0));
                        } else if available[&sku] >= q {
                            *available.get_mut(&sku).unwrap() -= q;
                        } else {
                            c.oversold += 1;
                            c.units_short += (q - available[&sku]) as u64;
                            exception(&mut c, &o, "oversold");
                            if sku == FLASH {
                                c.flash.0 += 1;
                            }
                            continue;
                        }
                        orders.insert(o.clone(), (sku, q, St::Sold, None));
                        c.orders.get_mut(&o).unwrap().0 = "sold";
                        c.units_sold += q as u64;
                    }
                    EventKind::PaymentVoided { .. } if st == St::Reserved => {
                        *reserved.get_mut(&sku).unwrap() -= q;
                        *available.get_mut(&sku).unwrap() += q;
                        c.unit_ms += q * (t - since.unwrap().max(DAY0));
                        orders.insert(o.clone(), (sku, q, St::Released, None));
                        c.orders.get_mut(&o).unwrap().0 = "not_sold";
                    }
                    _ => {}
                }
            }
        }
    }
    // Reservations still standing at the end of the day block stock until then.
    for (_, q, st, since) in orders.values() {
        if *st == St::Reserved {
            c.unit_ms += q * (DAY0 + DAY - since.unwrap().max(DAY0));
        }
    }
    c
}

/// True once the matrix reads the policy: an authorization under `deduct_on_capture`
/// moves nothing.
fn policy_is_honoured() -> bool {
    let mut state = State {
        policy: PolicySet::uniform(StockPolicy::DeductOnCapture),
        ..State::default()
    };
    let events = traffic();
    for (_, e) in &events {
        let ctx = Context {
            now: e.recorded_at,
            unknown_order_hold: Duration::ZERO,
            reservation_ttls: &ttls(),
        };
        let delivery = Delivery {
            event: e.clone(),
            operator_retry: false,
        };
        if let (EventKind::PaymentAuthorized { .. }, Decision::Record(r)) =
            (&e.kind, state.step(&delivery, &ctx))
        {
            return !matches!(r.outcome, Outcome::Moved { .. });
        }
    }
    panic!("the traffic starts with an authorization within its first events")
}

fn check_total(report: &Value, run: &str, c: &Counts) {
    let t = &report[run]["total"];
    let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{run}.{k}: {t}"));
    assert_eq!(n("oversold"), c.oversold, "{run} oversold");
    assert_eq!(n("units_short"), c.units_short, "{run} units_short");
    assert_eq!(n("declined"), c.declined, "{run} declined");
    assert_eq!(
        n("units_reserved"),
        c.units_reserved,
        "{run} units_reserved"
    );
    assert_eq!(n("expired"), c.expired, "{run} expired");
    assert_eq!(n("units_expired"), c.units_expired, "{run} units_expired");
    assert_eq!(n("units_sold"), c.units_sold, "{run} units_sold");
    assert_eq!(
        t["peak_blocked"].as_i64().unwrap(),
        c.peak_blocked,
        "{run} peak"
    );
    let hours = t["unit_hours_blocked"].as_f64().unwrap();
    let expected = c.unit_ms as f64 / 3_600_000.0;
    assert!(
        (hours - expected).abs() < 1e-6,
        "{run} unit-hours {hours} != {expected}"
    );
    let exceptions: BTreeMap<String, u64> =
        serde_json::from_value(t["exceptions"].clone()).unwrap();
    assert_eq!(exceptions, c.exceptions, "{run} exceptions");
    let f = &report[run]["per_sku"]["flash@main"];
    let flash = (
        f["oversold"].as_u64().unwrap(),
        f["declined"].as_u64().unwrap(),
        f["expired"].as_u64().unwrap(),
    );
    assert_eq!(flash, c.flash, "{run} flash (oversold, declined, expired)");
}

fn stockctl(h: &Harness, db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(e2e::binary("stockctl"))
        .args(args)
        .env("STOCKLEDGER_NATS_URL", &h.nats_url)
        .env("STOCKLEDGER_NATS_NAMESPACE", h.bus.namespace().as_str())
        .env("STOCKLEDGER_DATABASE_URL", db_url)
        .env("STOCKLEDGER_RESERVATION_TTL", "2h")
        .env("STOCKLEDGER_UNKNOWN_ORDER_HOLD", "0s")
        .env_remove("STOCKLEDGER_STOCK_POLICY")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatif_matches_an_independent_count_of_a_recorded_day_sqlite() {
    whatif_matches_an_independent_count_of_a_recorded_day(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatif_matches_an_independent_count_of_a_recorded_day_postgres() {
    whatif_matches_an_independent_count_of_a_recorded_day(Backend::Postgres).await;
}

async fn whatif_matches_an_independent_count_of_a_recorded_day(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let mut settings = test_settings();
    settings.reservation_ttls = ttls();
    let ledger = h.start_ledger(settings).await.unwrap();
    let events = traffic();
    // Published hour by hour of stream time; after each hour the sweeper runs as it would,
    // with the configured TTL, at the end of that hour.
    let mut published = 0i64;
    let mut next = 0usize;
    for hour in -1..24i64 {
        let end = DAY0 + (hour + 1) * HOUR;
        while next < events.len() && events[next].1.recorded_at.0 < end {
            let (identity, e) = &events[next];
            h.publish(identity, e).await.unwrap();
            published += 1;
            next += 1;
        }
        assert_eq!(
            h.wait_processed(published, Duration::from_secs(60))
                .await
                .unwrap(),
            published
        );
        let swept = ledger::sweeper::sweep_once(&h.bus, &h.store, &ttls(), 1000, Timestamp(end))
            .await
            .unwrap();
        published += swept as i64;
        assert_eq!(
            h.wait_processed(published, Duration::from_secs(60))
                .await
                .unwrap(),
            published
        );
    }
    assert_eq!(next, events.len());
    ledger.stop().await;

    // What is stored before the what-if.
    let stream = h.bus.namespace().events_stream();
    let stream_before = h.bus.stream_last_seq(&stream).await.unwrap();
    let stock_stream = h.bus.namespace().stock_stream();
    let stock_before = h.bus.stream_last_seq(&stock_stream).await.unwrap_or(0);
    let outcomes_before = h.store.outcome_counts().await.unwrap();
    let balances_before = h.store.all_balances().await.unwrap();
    assert!(
        stream_before > events.len() as u64,
        "the sweeper's expiries are in the stream"
    );

    let html = tempfile::tempdir().unwrap();
    let page = html.path().join("whatif.html");
    let since = "2026-11-21T00:00:00Z";
    let until = "2026-11-22T00:00:00Z";
    let out = stockctl(
        &h,
        h.db.url(),
        &[
            "whatif",
            "--policy",
            "deduct_on_capture",
            "--reservation-ttl",
            "30m",
            "--since",
            since,
            "--until",
            until,
            "--html",
            page.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    // The baseline: reserve on authorization with the configured 2 h TTL.
    let baseline = model(&events, true, TTL);
    check_total(&report, "baseline", &baseline);
    assert_eq!(report["baseline"]["policy"], "reserve_on_authorization");
    assert_eq!(report["baseline_ttl"], "2h");
    assert_eq!(report["proposal_ttl"], "30m");
    // The sweeper's recorded expiries are all dropped.
    let swept = stream_before - events.len() as u64;
    assert_eq!(report["recorded_expiries_dropped"].as_u64().unwrap(), swept);
    // The flash sale, by hand: 10 units, buyers 0..9 reserve, 10..24 are declined; the
    // 16 who pay capture at 12:30:30 + i min, before any reservation expires at 14:00.
    assert_eq!(baseline.flash, (10, 15, 4), "model sanity");

    // The proposal.
    let honoured = policy_is_honoured();
    let proposal = model(&events, !honoured, PROPOSED_TTL);
    check_total(&report, "proposal", &proposal);
    assert_eq!(report["proposal"]["policy"], "deduct_on_capture");
    if honoured {
        // Nothing reserved: the first 10 payers get the flash units, 6 are oversold.
        assert_eq!(proposal.flash, (6, 0, 0));
    } else {
        // Reservations of 30 min: all 10 expire half a minute before their payers capture
        // (from `available`, then), so the first 10 payers get the units, 6 are oversold.
        assert_eq!(proposal.flash, (6, 15, 10));
    }
    // The orders whose outcome differs, and which.
    let differing: Vec<String> = baseline
        .orders
        .iter()
        .filter(|(o, outcome)| {
            let mut a = (*outcome).clone();
            let mut b = proposal.orders[*o].clone();
            a.1.sort_unstable();
            b.1.sort_unstable();
            a != b
        })
        .map(|(o, _)| o.clone())
        .collect();
    assert_eq!(
        report["differing_orders_total"].as_u64().unwrap(),
        differing.len() as u64
    );
    let listed: Vec<String> = report["differing_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_ref"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, differing);
    for o in report["differing_orders"].as_array().unwrap() {
        assert!(!o["events"].as_array().unwrap().is_empty(), "{o}");
    }
    // The flash SKU differs most.
    let top: Vec<&str> = report["top_skus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(top.first(), Some(&"flash@main"), "{top:?}");

    // The page: one chart per top SKU, self-contained.
    let text = std::fs::read_to_string(&page).unwrap();
    assert_eq!(text.matches("<svg class=\"chart\"").count(), top.len());
    for sku in &top {
        assert!(text.contains(&format!("data-sku=\"{sku}\"")), "{sku}");
    }
    assert!(!text.contains("<script") && !text.contains("https://"));
    assert_eq!(
        text.matches("http://").count(),
        text.matches("http://www.w3.org/2000/svg").count(),
        "no address but the SVG namespace"
    );
    if let Ok(keep) = std::env::var("STOCKLEDGER_KEEP_WHATIF_HTML") {
        std::fs::copy(&page, keep).unwrap();
    }

    // The text table runs too.
    let out = stockctl(
        &h,
        h.db.url(),
        &[
            "whatif",
            "--policy",
            "deduct_on_capture",
            "--reservation-ttl",
            "30m",
            "--since",
            since,
            "--until",
            until,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if let Ok(keep) = std::env::var("STOCKLEDGER_KEEP_WHATIF_HTML") {
        std::fs::write(format!("{keep}.txt"), text.as_bytes()).unwrap();
    }
    assert!(
        text.contains("oversold (captures without stock)") && text.contains("flash@main"),
        "{text}"
    );
    // A policy that does not exist is a usage error.
    let out = stockctl(&h, h.db.url(), &["whatif", "--policy", "sometimes"]);
    assert_eq!(out.status.code(), Some(2));

    // Nothing was written: the streams and the ledger are as they were.
    assert_eq!(h.bus.stream_last_seq(&stream).await.unwrap(), stream_before);
    assert_eq!(
        h.bus.stream_last_seq(&stock_stream).await.unwrap_or(0),
        stock_before
    );
    assert_eq!(h.store.outcome_counts().await.unwrap(), outcomes_before);
    assert_eq!(h.store.all_balances().await.unwrap(), balances_before);
}
