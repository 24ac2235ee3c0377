//! The matching engine's properties, over random days: every fact ends in exactly one
//! bucket of each checkpoint it belongs to, a run over its own output is stable, and what
//! matched stays matched when the run is repeated.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use reconcile::engine::{
    self, Bucket, Checkpoint, DayFacts, EventFact, Move, Reason, RunInput, Settings, midnight_ms,
    parse_date,
};
use reconcile::reports::{LineKind, ReportLine, ReportProvider};
use rust_decimal::Decimal;

const DAY: &str = "2026-11-18";

fn day_start() -> i64 {
    midnight_ms(parse_date(DAY).unwrap())
}

fn provider(i: u8) -> ReportProvider {
    [
        ReportProvider::Stripe,
        ReportProvider::Adyen,
        ReportProvider::PortOne,
        ReportProvider::Ipint,
    ][usize::from(i % 4)]
}

/// One order's day: captured (or not), reported (or not, or with another amount).
#[derive(Debug, Clone)]
struct Case {
    provider: u8,
    captured: bool,
    reported: bool,
    drift: i64,
    lines: u8,
    at: i64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0u8..4,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(0i64), -3i64..3],
        1u8..3,
        0i64..engine::DAY_MS,
    )
        .prop_map(|(provider, captured, reported, drift, lines, at)| Case {
            provider,
            captured,
            reported,
            drift,
            lines,
            at,
        })
}

fn build(cases: &[Case]) -> (DayFacts, Vec<ReportLine>) {
    let mut facts = DayFacts::default();
    let mut lines = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let p = provider(c.provider);
        let order = format!("ord_{n}");
        let at = day_start() + c.at;
        if c.captured {
            facts.events.push(EventFact {
                event_id: format!("ev_{n}"),
                kind: "payment.captured".into(),
                provider: engine::provider_name(p).into(),
                order_ref: Some(order.clone()),
                payment_ref: None,
                amount: Some(Decimal::new(10_000, 2)),
                currency: Some("USD".into()),
                at_ms: at,
                outcome: "moved".into(),
                reason: None,
                moves: vec![Move {
                    sku: "SKU".into(),
                    location: "L".into(),
                    from: "reserved".into(),
                    to: "sold".into(),
                    quantity: 1,
                }],
            });
        }
        if c.reported {
            let parts = i64::from(c.lines);
            for k in 0..parts {
                let mut cents = 10_000 / parts;
                if k == 0 {
                    cents += 10_000 % parts + c.drift;
                }
                lines.push(ReportLine {
                    provider: p,
                    line: k as usize + 2,
                    payment_ref: format!("pay_{n}"),
                    order_ref: Some(order.clone()),
                    kind: LineKind::Capture,
                    amount: Decimal::new(cents, 2),
                    currency: "USD".into(),
                    at_ms: at,
                    line_id: Some(format!("bt_{n}_{k}")),
                });
            }
        }
    }
    (facts, lines)
}

fn settings() -> Settings {
    Settings {
        lag_business_days: BTreeMap::from([
            (ReportProvider::Stripe, 2),
            (ReportProvider::Adyen, 2),
        ]),
        ..Settings::default()
    }
}

proptest! {
    #[test]
    fn every_fact_ends_in_exactly_one_bucket_per_checkpoint(cases in prop::collection::vec(case(), 0..30), now_days in 0i64..10) {
        let (facts, lines) = build(&cases);
        let s = settings();
        let now = day_start() + now_days * engine::DAY_MS + 1;
        let r = engine::run(RunInput { date: parse_date(DAY).unwrap(), facts: &facts, lines: &lines, carried: &[], now_ms: now, settings: &s });
        // Keys are unique per checkpoint.
        let mut seen = std::collections::BTreeSet::new();
        for i in &r.items {
            prop_assert!(seen.insert((i.checkpoint, i.key.clone())), "{} twice", i.key);
            prop_assert_eq!(i.bucket == Bucket::Matched, i.reason.is_none());
            prop_assert_eq!(i.bucket != Bucket::Matched, !i.action.is_empty());
        }
        for (n, c) in cases.iter().enumerate() {
            let ev = format!("ev_{n}");
            let on = |cp: Checkpoint| r.items.iter().filter(|i| i.checkpoint == cp && i.event_id.as_deref() == Some(ev.as_str())).count();
            if c.captured {
                prop_assert_eq!(on(Checkpoint::PaymentToStock), 1);
                prop_assert_eq!(on(Checkpoint::StockToPayment), 1);
            }
            // Each report line is one item; a capture without lines is one item.
            let line_items = r.items.iter().filter(|i| i.checkpoint == Checkpoint::ProviderToLedger && i.order_ref.as_deref() == Some(format!("ord_{n}").as_str())).count();
            let expected = if c.reported { usize::from(c.lines) } else { usize::from(c.captured) };
            prop_assert_eq!(line_items, expected);
            let buckets: Vec<(Bucket, Option<Reason>)> = r.items.iter().filter(|i| i.checkpoint == Checkpoint::ProviderToLedger && i.order_ref.as_deref() == Some(format!("ord_{n}").as_str())).map(|i| (i.bucket, i.reason)).collect();
            for b in buckets {
                let want = match (c.captured, c.reported) {
                    (true, true) if c.drift == 0 => (Bucket::Matched, None),
                    (true, true) => (Bucket::Unmatched, Some(Reason::AmountMismatch)),
                    (false, true) => (Bucket::Unmatched, Some(Reason::MissingWebhook)),
                    (true, false) => b,
                    (false, false) => unreachable!(),
                };
                prop_assert_eq!(b, want);
            }
        }
        prop_assert_eq!(r.summary.passed, r.items.iter().all(|i| i.bucket != Bucket::Unmatched));
    }

    #[test]
    fn a_run_is_stable_and_matched_items_stay_matched(cases in prop::collection::vec(case(), 0..30)) {
        let (facts, lines) = build(&cases);
        let s = settings();
        let date = parse_date(DAY).unwrap();
        let now = day_start() + engine::DAY_MS + 1;
        let first = engine::run(RunInput { date, facts: &facts, lines: &lines, carried: &[], now_ms: now, settings: &s });
        let second = engine::run(RunInput { date, facts: &facts, lines: &lines, carried: &[], now_ms: now, settings: &s });
        prop_assert_eq!(&first, &second);
        // The next day, with the first run's deferred items carried and no new lines: what
        // was deferred is deferred or settled, never lost, and a later "now" never unmatches
        // a matched item of the first day.
        let carried: Vec<_> = first.items.iter().filter(|i| i.bucket == Bucket::Deferred).cloned().collect();
        let later = engine::run(RunInput { date, facts: &facts, lines: &lines, carried: &[], now_ms: now + 30 * engine::DAY_MS, settings: &s });
        for i in first.items.iter().filter(|i| i.bucket == Bucket::Matched) {
            let again = later.items.iter().find(|j| j.checkpoint == i.checkpoint && j.key == i.key);
            prop_assert_eq!(again.map(|j| j.bucket), Some(Bucket::Matched));
        }
        let next = parse_date("2026-11-19").unwrap();
        let empty = DayFacts::default();
        let next_run = engine::run(RunInput { date: next, facts: &empty, lines: &[], carried: &carried, now_ms: now, settings: &s });
        for c in &carried {
            prop_assert!(next_run.items.iter().any(|j| j.key == c.key), "{} lost", c.key);
        }
    }
}

#[test]
fn a_line_after_the_cutoff_is_deferred_and_matches_the_next_day() {
    let s = Settings {
        cutoff_ms: 22 * 3_600_000,
        ..settings()
    };
    let day = parse_date(DAY).unwrap();
    let late = day_start() + 23 * 3_600_000;
    let line = ReportLine {
        provider: ReportProvider::Stripe,
        line: 2,
        payment_ref: "pi_1".into(),
        order_ref: Some("ord_late".into()),
        kind: LineKind::Capture,
        amount: Decimal::new(500, 2),
        currency: "EUR".into(),
        at_ms: late,
        line_id: Some("txn_1".into()),
    };
    let empty = DayFacts::default();
    let first = engine::run(RunInput {
        date: day,
        facts: &empty,
        lines: std::slice::from_ref(&line),
        carried: &[],
        now_ms: late + 1000,
        settings: &s,
    });
    assert_eq!(first.items.len(), 1);
    let d = &first.items[0];
    assert_eq!(
        (d.bucket, d.reason),
        (Bucket::Deferred, Some(Reason::AfterCutoff))
    );
    assert_eq!(d.expected_by.as_deref(), Some("2026-11-19"));
    let mut facts = DayFacts::default();
    facts.events.push(EventFact {
        event_id: "ev_late".into(),
        kind: "payment.captured".into(),
        provider: "stripe".into(),
        order_ref: Some("ord_late".into()),
        payment_ref: None,
        amount: Some(Decimal::new(500, 2)),
        currency: Some("EUR".into()),
        at_ms: late,
        outcome: "moved".into(),
        reason: None,
        moves: vec![],
    });
    let next = engine::run(RunInput {
        date: parse_date("2026-11-19").unwrap(),
        facts: &facts,
        lines: &[],
        carried: &first.items,
        now_ms: late + 1000,
        settings: &s,
    });
    let line_item = next.items.iter().find(|i| i.key == d.key).unwrap();
    assert_eq!(line_item.bucket, Bucket::Matched);
    assert_eq!(line_item.origin_date, DAY);
    assert_eq!(line_item.matched_with, vec!["ev_late".to_owned()]);
}

#[test]
fn a_capture_settled_in_several_lines_and_a_duplicate_line() {
    let s = settings();
    let day = parse_date(DAY).unwrap();
    let at = day_start() + 3_600_000;
    let mut facts = DayFacts::default();
    facts.events.push(EventFact {
        event_id: "ev".into(),
        kind: "payment.captured".into(),
        provider: "adyen".into(),
        order_ref: Some("o".into()),
        payment_ref: None,
        amount: Some(Decimal::new(1000, 2)),
        currency: Some("EUR".into()),
        at_ms: at,
        outcome: "moved".into(),
        reason: None,
        moves: vec![],
    });
    let line = |id: &str, cents: i64| ReportLine {
        provider: ReportProvider::Adyen,
        line: 2,
        payment_ref: "psp".into(),
        order_ref: Some("o".into()),
        kind: LineKind::Capture,
        amount: Decimal::new(cents, 2),
        currency: "EUR".into(),
        at_ms: at,
        line_id: Some(id.into()),
    };
    let lines = vec![line("a", 600), line("b", 400), line("b", 400)];
    let r = engine::run(RunInput {
        date: day,
        facts: &facts,
        lines: &lines,
        carried: &[],
        now_ms: at,
        settings: &s,
    });
    let p2l: Vec<_> = r
        .items
        .iter()
        .filter(|i| i.checkpoint == Checkpoint::ProviderToLedger)
        .map(|i| (i.bucket, i.reason))
        .collect();
    assert_eq!(p2l.iter().filter(|b| b.0 == Bucket::Matched).count(), 2);
    assert!(p2l.contains(&(Bucket::Unmatched, Some(Reason::DuplicateLine))));
}
