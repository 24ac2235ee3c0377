//! The ledger through real JetStream and a real database, on SQLite and PostgreSQL:
//! a history with duplicates ends where the domain says; a consumer killed mid-batch and
//! restarted loses nothing and applies nothing twice; two consumers on one durable end with
//! the same ledger; a poison message is recorded and does not block the messages behind it;
//! expiries from two sweepers release a reservation once.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use domain::{Balance, Context, Delivery, State};
use e2e::{Harness, test_settings, workload};
use testkit::Backend;
use workload::Mix;

use testkit::on_both_backends;

on_both_backends!(
    history_with_duplicates_ends_where_the_domain_says,
    killed_consumer_loses_nothing_and_applies_nothing_twice,
    two_consumers_on_one_durable_end_with_the_same_ledger,
    poison_message_is_recorded_and_does_not_block,
    two_sweepers_release_a_reservation_once,
);

const WAIT: Duration = Duration::from_secs(60);

/// The balances the pure domain expects after `events`, applied in order.
fn expected(events: &[(String, domain::Event)]) -> BTreeMap<(String, String), Balance> {
    let mut state = State::default();
    let ctx = Context {
        now: e2e::now(),
        unknown_order_hold: Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented_ref(),
    };
    for (_, e) in events {
        state.step(
            &Delivery {
                event: e.clone(),
                operator_retry: false,
            },
            &ctx,
        );
    }
    state
        .balances
        .iter()
        .map(|(k, b)| ((k.sku.to_string(), k.location.to_string()), *b))
        .collect()
}

async fn actual(h: &Harness) -> BTreeMap<(String, String), Balance> {
    h.store
        .all_balances()
        .await
        .unwrap()
        .into_iter()
        .map(|(s, l, b)| ((s, l), b))
        .collect()
}

fn distinct(events: &[(String, domain::Event)]) -> i64 {
    events
        .iter()
        .map(|(_, e)| e.id)
        .collect::<BTreeSet<_>>()
        .len() as i64
}

async fn publish_all(h: &Harness, events: &[(String, domain::Event)]) {
    for (identity, e) in events {
        h.publish(identity, e).await.unwrap();
    }
}

/// Balances without their sequence numbers: when redelivery reorders a capture before its
/// authorization, the same units end in the same buckets through one entry instead of two.
fn units(b: BTreeMap<(String, String), Balance>) -> BTreeMap<(String, String), Balance> {
    b.into_iter()
        .map(|(k, b)| (k, Balance { seq: 0, ..b }))
        .collect()
}

async fn assert_ledger_is(h: &Harness, events: &[(String, domain::Event)]) {
    assert_ledger_matches(h, events, |b| b).await
}

/// Balances by (SKU, location).
type Balances = BTreeMap<(String, String), Balance>;

async fn assert_ledger_matches(
    h: &Harness,
    events: &[(String, domain::Event)],
    view: fn(Balances) -> Balances,
) {
    let n = distinct(events);
    assert_eq!(
        h.wait_processed(n, WAIT).await.unwrap(),
        n,
        "every event has an outcome"
    );
    let (got, want) = (view(actual(h).await), view(expected(events)));
    if got != want {
        let reasons = h.store.pool();
        let rows: Vec<(String, String, Option<String>)> =
            store::sqlx::query_as("SELECT kind, outcome, reason FROM processed_events")
                .fetch_all(reasons)
                .await
                .unwrap();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (k, o, r) in rows {
            *counts
                .entry(format!("{k} {o} {}", r.unwrap_or_default()))
                .or_default() += 1;
        }
        panic!("ledger differs from the domain; outcomes: {counts:#?}");
    }
    let report = h.store.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(
        report.processed_events as i64, n,
        "exactly one outcome per event id"
    );
}

async fn history_with_duplicates_ends_where_the_domain_says(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let events = workload::mixed(600, 20, 1);
    publish_all(&h, &events).await;
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    assert_ledger_is(&h, &events).await;
    // Publishing everything again (past JetStream's dedupe, with fresh message ids) moves nothing.
    let before = actual(&h).await;
    for (i, (identity, e)) in events.iter().enumerate() {
        let env = e2e::envelope(identity, e);
        h.bus
            .publish_event(
                h.bus.namespace().event_subject("test", "again"),
                &format!("again-{i}"),
                env.to_json().expect("encodes").into(),
                None,
            )
            .await
            .unwrap();
    }
    h.settled().await.unwrap();
    assert_eq!(actual(&h).await, before);
    ledger.stop().await;
}

async fn killed_consumer_loses_nothing_and_applies_nothing_twice(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    // Redelivery after a kill reorders events, so the workload is one whose balances do not
    // depend on order; an event for an order whose registration comes back later is held.
    let events = workload::with_mix(3000, 50, 2, Mix::order_insensitive(e2e::now().0));
    let mut settings = test_settings();
    settings.fetch_batch_max = 64;
    settings.unknown_order_hold = Duration::from_secs(120);
    receipts_first(&h, &events, 50, &settings).await;
    publish_all(&h, &events[50..]).await;
    // Kill the consumer three times as it makes progress: mid-batch, or between a commit and
    // its acks, wherever the task happens to be.
    for progress in [300i64, 900, 1500] {
        let ledger = h.start_ledger(settings.clone()).await.unwrap();
        h.wait_processed(progress, WAIT).await.unwrap();
        ledger.kill().await;
    }
    let done = h.processed_count().await.unwrap();
    assert!(
        done < distinct(&events),
        "the kills happened mid-stream ({done} done)"
    );
    let ledger = h.start_ledger(settings).await.unwrap();
    assert_ledger_matches(&h, &events, units).await;
    ledger.stop().await;
}

/// Publishes the workload's receipts (its first `skus` events) and waits until they are
/// applied, so that reordering among the rest never meets a SKU without stock.
async fn receipts_first(
    h: &Harness,
    events: &[(String, domain::Event)],
    skus: usize,
    settings: &ledger::LedgerSettings,
) {
    publish_all(h, &events[..skus]).await;
    let ledger = h.start_ledger(settings.clone()).await.unwrap();
    assert_eq!(
        h.wait_processed(skus as i64, WAIT).await.unwrap(),
        skus as i64
    );
    ledger.stop().await;
}

async fn two_consumers_on_one_durable_end_with_the_same_ledger(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    // Two consumers apply batches in parallel, so events of one order may be applied out
    // of publish order: the workload's balances do not depend on order, and the final
    // ledger must equal the one a single consumer (and the domain) produces.
    let events = workload::with_mix(1500, 10, 3, Mix::order_insensitive(e2e::now().0));
    let mut settings = test_settings();
    settings.unknown_order_hold = Duration::from_secs(120);
    settings.fetch_batch_max = 32;
    receipts_first(&h, &events, 10, &settings).await;
    let a = h.start_ledger(settings.clone()).await.unwrap();
    let b = h.start_ledger(settings).await.unwrap();
    publish_all(&h, &events[10..]).await;
    assert_ledger_matches(&h, &events, units).await;
    a.stop().await;
    b.stop().await;
}

async fn poison_message_is_recorded_and_does_not_block(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let events = workload::mixed(50, 5, 4);
    h.publish_raw("poison-1", b"\x00\xffnot json".to_vec())
        .await
        .unwrap();
    h.publish_raw(
        "poison-2",
        br#"{"schema":"stockledger.event","version":99}"#.to_vec(),
    )
    .await
    .unwrap();
    publish_all(&h, &events).await;
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let n = distinct(&events) + 2;
    assert_eq!(h.wait_processed(n, WAIT).await.unwrap(), n);
    let reasons: BTreeSet<String> = h
        .store
        .queue_list(&store::QueueFilter {
            state: Some("open".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert!(reasons.contains("undecodable"), "{reasons:?}");
    assert!(reasons.contains("unknown_schema_version"), "{reasons:?}");
    assert_eq!(actual(&h).await, expected(&events));
    ledger.stop().await;
}

async fn two_sweepers_release_a_reservation_once(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let events = workload::with_mix(
        200,
        5,
        5,
        Mix {
            open_percent: 30,
            ..Mix::realistic()
        },
    );
    publish_all(&h, &events).await;
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    assert_ledger_is(&h, &events).await;
    let reserved: i64 = actual(&h).await.values().map(|b| b.reserved).sum();
    assert!(reserved > 0, "the workload leaves some reservations");
    let reserved_orders = h.store.count_orders("reserved").await.unwrap();
    // Two sweepers with a zero TTL, twice each: every reservation is released exactly once.
    let later = e2e::past_every_reservation_deadline();
    for _ in 0..2 {
        for sweeper_bus in [h.bus.clone(), h.replica().await.unwrap().0] {
            ledger::sweeper::sweep_once(
                &sweeper_bus,
                &h.store,
                &domain::ReservationTtls::uniform(Duration::ZERO),
                1000,
                later,
            )
            .await
            .unwrap();
        }
    }
    e2e::wait::eventually("every reservation released", || async {
        actual(&h).await.values().all(|b| b.reserved == 0)
    })
    .await;
    h.settled().await.unwrap();
    let after = actual(&h).await;
    assert!(after.values().all(|b| b.reserved == 0), "{after:?}");
    let report = h.store.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let moved = h
        .store
        .count_processed("reservation.expired", Some(domain::OutcomeKind::Moved))
        .await
        .unwrap();
    assert_eq!(
        moved, reserved_orders,
        "each reservation released by exactly one expiry"
    );
    assert_eq!(h.store.count_orders("reserved").await.unwrap(), 0);
    ledger.stop().await;
}
