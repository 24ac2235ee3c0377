//! Group commit through real JetStream and the real ledger, on SQLite and PostgreSQL: many
//! concurrent publishers share JetStream messages (fewer messages than events), every
//! caller still gets its own answer, the ledger applies every event exactly once (a retried
//! event stored twice is a recorded duplicate), and a replay of the stream reads every
//! event and changes nothing; an event stored twice (its caller retried it in another
//! message) is announced the second time with its first decision, marked repeated, so the
//! caller's repeated request answers as the first did without reading the database.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bus::read::ReadFrom;
use domain::{Event, EventId, EventKind, Location, Quantity, Sku, StockKey, Timestamp};
use e2e::{Harness, test_settings};
use futures::StreamExt;
use ledger::replay::{ReplayOptions, replay};

use testkit::on_both_backends;

on_both_backends!(
    concurrent_publishes_share_messages_and_apply_once,
    an_event_stored_twice_is_announced_with_its_first_decision,
);

const EVENTS: u64 = 400;
const RETRIED: u64 = 50;
const PUBLISHERS: usize = 64;

fn receipt(n: u64) -> (String, Event) {
    let identity = format!("group-test:receipt:{n}");
    let event = Event {
        id: EventId::from_dedupe_key(&identity),
        provider: domain::Provider::named("test"),
        recorded_at: Timestamp(1_000 + i64::try_from(n).unwrap()),
        kind: EventKind::StockReceived {
            key: StockKey {
                sku: Sku::parse("hot").unwrap(),
                location: Location::parse("main").unwrap(),
            },
            quantity: Quantity::new(1 + n % 3).unwrap(),
            reference: format!("po-{n}"),
        },
    };
    (identity, event)
}

async fn publish_all(h: &Harness, ns: impl Iterator<Item = u64>) {
    futures::stream::iter(ns)
        .for_each_concurrent(PUBLISHERS, |n| async move {
            let (identity, event) = receipt(n);
            h.publish(&identity, &event).await.expect("accepted");
        })
        .await;
}

async fn concurrent_publishes_share_messages_and_apply_once(backend: testkit::Backend) {
    let h = Harness::new(backend).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    publish_all(&h, 0..EVENTS).await;
    // Callers that did not hear back retry: the same events again, concurrently.
    publish_all(&h, 0..RETRIED).await;
    let done = h
        .wait_processed(EVENTS as i64, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done, EVENTS as i64, "every event has exactly one outcome");

    let stream = h.bus.namespace().events_stream();
    let messages = h.bus.stream_last_seq(&stream).await.unwrap();
    assert!(
        messages < EVENTS + RETRIED,
        "{PUBLISHERS} concurrent publishers share messages: {messages} messages for {} publishes",
        EVENTS + RETRIED
    );
    let units: i64 = (0..EVENTS).map(|n| 1 + (n % 3) as i64).sum();
    let key = StockKey {
        sku: Sku::parse("hot").unwrap(),
        location: Location::parse("main").unwrap(),
    };
    // The ledger may still be counting duplicates of the retries; stock is already final.
    let balance = h.store.balance(&key).await.unwrap();
    assert_eq!(balance.available, units, "each receipt moved stock once");
    ledger.stop().await;

    let opts = ReplayOptions {
        filter: h.bus.namespace().events_wildcard(),
        from: ReadFrom::Start,
        to_seq: None,
        dry_run: false,
        unknown_order_hold: Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented(),
    };
    let summary = replay(&h.bus, &h.store, &opts, |_, _| {}).await.unwrap();
    assert!(
        summary.read >= EVENTS,
        "a replay reads every event of every group: {summary:?}"
    );
    assert_eq!(summary.applied, 0, "replaying changes nothing: {summary:?}");
    assert_eq!(summary.deduplicated, summary.read, "{summary:?}");
    assert_eq!(h.store.balance(&key).await.unwrap(), balance);
    assert!(h.store.verify().await.unwrap().is_ok());
}

async fn an_event_stored_twice_is_announced_with_its_first_decision(backend: testkit::Backend) {
    let h = Harness::new(backend).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let (identity, event) = receipt(7);
    let subject = h.bus.namespace().decision_subject(&event.id.to_string());
    let mut notices = h.bus.subscribe(subject).await.unwrap();
    let envelope = e2e::envelope(&identity, &event).to_json().expect("encodes");
    let mut next = async || {
        let msg = tokio::time::timeout(Duration::from_secs(30), notices.next())
            .await
            .expect("a decision is announced")
            .unwrap();
        serde_json::from_slice::<bus::DecisionNotice>(&msg.payload).unwrap()
    };
    // Two messages carrying the same event, as a retry in another group stores it.
    h.publish_raw("first-message", envelope.clone())
        .await
        .unwrap();
    let first = next().await;
    h.publish_raw("second-message", envelope).await.unwrap();
    let second = next().await;
    assert_eq!((first.outcome.as_str(), first.repeated), ("moved", false));
    assert_eq!(
        (second.outcome.as_str(), second.reason, second.repeated),
        ("moved", first.reason, true),
        "the second delivery is answered with the first decision"
    );
    let key = StockKey {
        sku: Sku::parse("hot").unwrap(),
        location: Location::parse("main").unwrap(),
    };
    assert_eq!(
        h.store.balance(&key).await.unwrap().available,
        2,
        "moved once"
    );
    ledger.stop().await;
}
