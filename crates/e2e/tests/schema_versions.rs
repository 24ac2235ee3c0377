//! Schema versions end to end, on SQLite and PostgreSQL. A stream holding v1 events exactly
//! as the previous release wrote them (the v1 encoder's bytes) and v2 events — some orders
//! entirely in v1, others in v2, and some deliveries in both versions, the second a
//! duplicate — is consumed by the ledger and then replayed into a fresh database: both
//! ledgers have identical balances, the ones the domain computes. A v1-only stream and the
//! same events all in v2 replay to identical balances. And the producers write v2: the
//! ingress in its configured merchant scope, the sweeper naming the reservation it releases.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bus::read::ReadFrom;
use contract::{Envelope, Source, v1};
use domain::{Balance, Context, Delivery, Event, EventId, State};
use e2e::{Harness, test_settings, workload};
use ledger::replay::{ReplayOptions, ReplaySummary, replay};
use store::{Store, StoreOptions};
use testkit::{Backend, TestDatabase};

use testkit::on_both_backends;

on_both_backends!(
    mixed_v1_v2_stream_replays_to_identical_balances,
    v1_only_and_v2_only_streams_give_identical_balances,
);

const WAIT: Duration = Duration::from_secs(60);
/// The merchant scope of the v2 events these tests write.
const MERCHANT: &str = "acme-outdoor";

type Balances = BTreeMap<(String, String), Balance>;

/// The balances the pure domain expects after `events`, applied in order.
fn expected(events: &[(String, Event)]) -> Balances {
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

async fn balances(store: &Store) -> Balances {
    store
        .all_balances()
        .await
        .unwrap()
        .into_iter()
        .map(|(s, l, b)| ((s, l), b))
        .collect()
}

fn distinct(events: &[(String, Event)]) -> usize {
    events
        .iter()
        .map(|(_, e)| e.id)
        .collect::<BTreeSet<_>>()
        .len()
}

/// The exact bytes the previous release published for this delivery: the v1 encoder's.
fn v1_bytes(identity: &str, e: &Event) -> Vec<u8> {
    let source = Source {
        provider: "test".into(),
        identity: identity.into(),
    };
    v1::Envelope::new(&e.kind, source, e.recorded_at, e.recorded_at, None)
        .expect("a v1 kind")
        .to_json()
        .expect("the envelope encodes")
}

/// What this release publishes for it: v2, in a merchant scope, an authorization caused by
/// its order's registration (workload identities are `wl:<order>:<step>`).
fn v2_bytes(identity: &str, e: &Event) -> Vec<u8> {
    let mut env: Envelope = e2e::envelope(identity, e).with_merchant(MERCHANT);
    if let Some(order) = identity.strip_suffix(":auth") {
        env = env.caused_by(EventId::from_dedupe_key(&format!("{order}:register")));
    }
    env.to_json().expect("encodes")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    V1,
    V2,
    /// Both versions of the same delivery, v1 first.
    V1ThenV2,
    /// Both versions of the same delivery, v2 first.
    V2ThenV1,
}

/// How a delivery is encoded, decided per order (every event of an order alike) or, for
/// receipts, per SKU: a stable hash of `wl:<order>` / `wl:<seed>:receipt:<sku>`.
fn encoding(identity: &str) -> Encoding {
    let group = if identity.contains(":receipt:") {
        identity
    } else {
        identity.rsplit_once(':').map_or(identity, |(g, _)| g)
    };
    let hash = group.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    [
        Encoding::V1,
        Encoding::V2,
        Encoding::V1ThenV2,
        Encoding::V2ThenV1,
    ][(hash % 4) as usize]
}

/// Publishes `payload` for event `e` on `subject_source` with message id `msg_id`, and
/// remembers the id (JetStream stores one message per id within its duplicate window).
async fn publish(
    h: &Harness,
    subject_source: &str,
    msg_id: String,
    e: &Event,
    payload: Vec<u8>,
    sent: &mut BTreeSet<String>,
) {
    let subject = h
        .bus
        .namespace()
        .event_subject(subject_source, e.kind.name());
    h.bus
        .publish_event(subject, &msg_id, payload.into(), None)
        .await
        .unwrap();
    sent.insert(msg_id);
}

/// Publishes the mixed stream; returns how many messages the stream holds.
async fn publish_mixed(h: &Harness, events: &[(String, Event)]) -> u64 {
    let mut sent = BTreeSet::new();
    for (identity, e) in events {
        let id = e.id.to_string();
        // A second version of one delivery gets its own message id, as when the previous
        // release published it longer ago than JetStream's duplicate window.
        let (first, second) = match encoding(identity) {
            Encoding::V1 => (v1_bytes(identity, e), None),
            Encoding::V2 => (v2_bytes(identity, e), None),
            Encoding::V1ThenV2 => (v1_bytes(identity, e), Some(v2_bytes(identity, e))),
            Encoding::V2ThenV1 => (v2_bytes(identity, e), Some(v1_bytes(identity, e))),
        };
        publish(h, "test", id.clone(), e, first, &mut sent).await;
        if let Some(second) = second {
            publish(h, "test", format!("{id}:again"), e, second, &mut sent).await;
        }
    }
    sent.len() as u64
}

/// Versions of the messages on `filter`, and the ids of events present in both versions.
async fn versions_in_stream(h: &Harness, filter: &str) -> (BTreeMap<u64, u64>, usize) {
    let mut reader = h
        .bus
        .read(&h.bus.namespace().events_stream(), filter, ReadFrom::Start)
        .await
        .unwrap();
    let (mut counts, mut by_id) = (BTreeMap::new(), BTreeMap::<String, BTreeSet<u64>>::new());
    while let Some(msg) = reader.next().await {
        let v: serde_json::Value = serde_json::from_slice(&msg.unwrap().payload).unwrap();
        let version = v["version"].as_u64().unwrap();
        *counts.entry(version).or_default() += 1;
        by_id
            .entry(v["event_id"].as_str().unwrap().to_owned())
            .or_default()
            .insert(version);
    }
    (counts, by_id.values().filter(|vs| vs.len() == 2).count())
}

fn replay_options(filter: String) -> ReplayOptions {
    ReplayOptions {
        filter,
        from: ReadFrom::Sequence(1),
        to_seq: None,
        dry_run: false,
        unknown_order_hold: Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented(),
    }
}

/// Replays `filter` into a fresh database of `backend`; returns its store (and database,
/// which must outlive it) and the summary.
async fn replay_fresh(
    h: &Harness,
    backend: Backend,
    filter: String,
) -> (Store, TestDatabase, ReplaySummary) {
    let db = TestDatabase::new(backend).await.unwrap();
    let store = Store::connect(db.url(), &StoreOptions::default())
        .await
        .unwrap();
    let summary = replay(&h.bus, &store, &replay_options(filter), |_, _| {})
        .await
        .unwrap();
    (store, db, summary)
}

async fn assert_verified(store: &Store, events: usize) {
    let report = store.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(
        report.processed_events, events as u64,
        "exactly one outcome per event id"
    );
}

async fn mixed_v1_v2_stream_replays_to_identical_balances(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let events = workload::mixed(600, 15, 61);
    let n = distinct(&events);
    let messages = publish_mixed(&h, &events).await;
    let (versions, in_both) = versions_in_stream(&h, &h.bus.namespace().events_wildcard()).await;
    assert!(
        versions.get(&1).is_some_and(|c| *c > 50) && versions.get(&2).is_some_and(|c| *c > 50),
        "{versions:?}"
    );
    assert!(
        in_both > 50,
        "only {in_both} deliveries are in the stream in both versions"
    );
    assert_eq!(versions.values().sum::<u64>(), messages);

    let ledger = h.start_ledger(test_settings()).await.unwrap();
    assert_eq!(
        h.wait_processed(n as i64, WAIT).await.unwrap(),
        n as i64,
        "every event has an outcome"
    );
    ledger.stop().await;
    let consumed = balances(&h.store).await;
    assert_eq!(
        consumed,
        expected(&events),
        "the consumed ledger is the domain's"
    );
    assert_verified(&h.store, n).await;

    let (fresh, _db, summary) =
        replay_fresh(&h, backend, h.bus.namespace().events_wildcard()).await;
    assert_eq!(summary.read, messages);
    assert_eq!(summary.unprocessable, 0, "every v1 and v2 message decodes");
    assert_eq!(
        summary.deduplicated,
        messages - n as u64,
        "a delivery in both versions is one event"
    );
    assert_eq!(
        summary.applied + summary.business_noops + summary.exceptions,
        n as u64
    );
    assert_eq!(
        balances(&fresh).await,
        consumed,
        "the replayed ledger is the consumed one"
    );
    assert_verified(&fresh, n).await;
}

async fn v1_only_and_v2_only_streams_give_identical_balances(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let events = workload::mixed(400, 10, 62);
    let n = distinct(&events);
    let mut sent = BTreeSet::new();
    for (identity, e) in &events {
        publish(
            &h,
            "legacy",
            format!("v1:{}", e.id),
            e,
            v1_bytes(identity, e),
            &mut sent,
        )
        .await;
        publish(
            &h,
            "current",
            format!("v2:{}", e.id),
            e,
            v2_bytes(identity, e),
            &mut sent,
        )
        .await;
    }
    let filter = |source: &str| format!("{}.events.{source}.>", h.bus.namespace().as_str());
    assert_eq!(
        versions_in_stream(&h, &filter("legacy"))
            .await
            .0
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(
        versions_in_stream(&h, &filter("current"))
            .await
            .0
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![2]
    );

    let (from_v1, _db1, s1) = replay_fresh(&h, backend, filter("legacy")).await;
    let (from_v2, _db2, s2) = replay_fresh(&h, backend, filter("current")).await;
    assert_eq!(s1, s2, "the same outcomes, counted alike");
    assert_eq!(s1.unprocessable, 0);
    let (b1, b2) = (balances(&from_v1).await, balances(&from_v2).await);
    assert_eq!(
        b1, b2,
        "v1 and v2 encodings of the same events give the same ledger"
    );
    assert_eq!(b1, expected(&events));
    assert_verified(&from_v1, n).await;
    assert_verified(&from_v2, n).await;
}

/// The last message on the events stream, decoded.
async fn last_event(h: &Harness) -> (serde_json::Value, Envelope) {
    let mut reader = h
        .bus
        .read(
            &h.bus.namespace().events_stream(),
            &h.bus.namespace().events_wildcard(),
            ReadFrom::Start,
        )
        .await
        .unwrap();
    let mut last = None;
    while let Some(msg) = reader.next().await {
        last = Some(msg.unwrap().payload);
    }
    let bytes = last.expect("the stream holds a message");
    (
        serde_json::from_slice(&bytes).unwrap(),
        contract::decode(&bytes).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingress_publishes_v2_in_its_merchant_scope() {
    let h = Harness::new(Backend::Sqlite).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let ingress = h
        .start_ingress(&e2e::ingress_config(&[("STOCKLEDGER_MERCHANT", MERCHANT)]).unwrap())
        .await
        .unwrap();
    e2e::http::Client::new(&ingress.url)
        .receive("sku-v2", 5, "po-v2")
        .await;
    let (json, envelope) = last_event(&h).await;
    assert_eq!(json["version"], 2);
    assert_eq!(json["causation_id"], serde_json::Value::Null);
    assert_eq!(envelope.merchant, MERCHANT);
    assert_eq!(
        envelope.event_id(),
        EventId::from_dedupe_key("merchant:receipt:po-v2")
    );
    ingress.stop().await;
    ledger.stop().await;

    let refused = e2e::ingress_config(&[("STOCKLEDGER_MERCHANT", "acme\u{7}")]).unwrap();
    assert!(matches!(
        ingress::Settings::from_config(&refused),
        Err(ingress::SettingsError::InvalidMerchant(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_names_the_reservation_it_releases_as_the_cause() {
    let h = Harness::new(Backend::Sqlite).await.unwrap();
    let events: Vec<_> = workload::with_mix(
        3,
        1,
        63,
        workload::Mix {
            void_percent: 0,
            open_percent: 100,
            stock_per_sku: 10,
            base_time: 1,
        },
    )
    .into_iter()
    .take(3)
    .collect();
    let auth = events
        .iter()
        .find(|(i, _)| i.ends_with(":auth"))
        .map(|(_, e)| e.id)
        .expect("an authorization");
    for (identity, e) in &events {
        h.publish(identity, e).await.unwrap();
    }
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    assert_eq!(h.wait_processed(3, WAIT).await.unwrap(), 3);
    let swept = ledger::sweeper::sweep_once(
        &h.bus,
        &h.store,
        &domain::ReservationTtls::uniform(Duration::ZERO),
        10,
        e2e::past_every_reservation_deadline(),
    )
    .await
    .unwrap();
    assert_eq!(swept, 1);
    let (json, envelope) = last_event(&h).await;
    assert_eq!(json["version"], 2);
    assert_eq!(envelope.kind_name(), "reservation.expired");
    assert_eq!(envelope.causation_id, Some(auth));
    assert_eq!(h.wait_processed(4, WAIT).await.unwrap(), 4);
    ledger.stop().await;
}
