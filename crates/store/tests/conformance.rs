//! The one conformance suite every backend passes: each test runs on SQLite and on
//! PostgreSQL (a fresh database per test). It drives the store with the same histories
//! the domain's property tests use and compares with the domain's own expectation.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use domain::*;
use store::{Applied, Incoming, Store, StoreOptions};
use testkit::{Backend, TestDatabase};

use testkit::on_both_backends;

on_both_backends!(
    history_matches_the_domain_whatever_the_batch_cuts,
    a_batch_at_once_equals_the_same_events_one_by_one,
    constraints_refuse_a_duplicate_sequence_or_event_id,
    verify_detects_a_tampered_balance_and_a_gap,
    operator_retry_finalizes_an_exception_once,
    concurrent_writers_end_with_the_same_ledger,
    reservations_due_lists_old_reservations,
    unprocessable_messages_are_recorded_once,
    a_second_content_under_one_event_id_is_never_a_duplicate,
);

async fn fresh(backend: Backend) -> (TestDatabase, Store) {
    let db = TestDatabase::new(backend).await.expect("test database");
    let store = Store::connect(db.url(), &StoreOptions::default())
        .await
        .expect("connect");
    (db, store)
}

fn ctx() -> Context<'static> {
    Context {
        now: Timestamp(10_000_000),
        unknown_order_hold: Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented_ref(),
    }
}

fn key(sku: &str) -> StockKey {
    StockKey {
        sku: Sku::parse(sku).unwrap(),
        location: Location::parse("main").unwrap(),
    }
}

fn lines(items: &[(&str, u64)]) -> Lines {
    Lines::new(items.iter().map(|(s, q)| Line {
        key: key(s),
        quantity: Quantity::new(*q).unwrap(),
    }))
    .unwrap()
}

fn pay(order: &str) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(OrderRef::parse(order).unwrap()),
        amount: None,
    }
}

fn event(n: u64, kind: EventKind) -> Event {
    Event {
        id: EventId::from_dedupe_key(&format!("conf:{n}")),
        provider: domain::Provider::named("test"),
        recorded_at: Timestamp(n as i64),
        kind,
    }
}

fn incoming(e: &Event) -> Incoming {
    Incoming {
        event: e.clone(),
        envelope: "{}".into(),
        operator_retry: false,
        stream_seq: None,
    }
}

/// A deterministic mixed history over 4 SKUs and 12 orders, with duplicates, settlements
/// and changes of the stock policy (so batches load and carry the policy in force).
fn history(seed: u64, len: usize) -> Vec<Event> {
    history_on(seed, len, ["a", "b", "c", "d"])
}

/// The same kind of history over the given SKUs (one SKU four times: a hot SKU).
fn history_on(seed: u64, len: usize, skus: [&str; 4]) -> Vec<Event> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out: Vec<Event> = Vec::new();
    for n in 0..len as u64 {
        let r = next();
        let o = format!("o{}", r % 12);
        let kind = match (r >> 8) % 11 {
            0 => EventKind::StockReceived {
                key: key(skus[(r >> 16) as usize % 4]),
                quantity: Quantity::new(1 + (r >> 20) % 4).unwrap(),
                reference: format!("po{n}"),
            },
            1 => EventKind::OrderRegistered {
                spec: OrderSpec {
                    order_ref: OrderRef::parse(&o).unwrap(),
                    lines: lines(&[
                        (skus[(r % 12) as usize % 4], 1 + r % 2),
                        (skus[(r % 12 + 1) as usize % 4], 1),
                    ]),
                    amount: Money::parse("10", "USD").unwrap(),
                },
                payment_refs: vec![],
            },
            2 | 3 => EventKind::PaymentAuthorized {
                payment: pay(&o),
                mode: if r % 2 == 0 {
                    AuthorizationMode::Confirmation
                } else {
                    AuthorizationMode::Notification
                },
                method: None,
            },
            4 | 5 => EventKind::PaymentCaptured { payment: pay(&o) },
            6 => EventKind::PaymentVoided { payment: pay(&o) },
            7 => EventKind::StockCorrected {
                key: key(skus[(r >> 16) as usize % 4]),
                delta: -1,
                reason: "count".into(),
                evidence: "sheet".into(),
                approved_by: "ops".into(),
                actor: Some("ops".into()),
            },
            8 => EventKind::PaymentSettled { payment: pay(&o) },
            9 => EventKind::PolicyChanged {
                policy: PolicySet::uniform(StockPolicy::ALL[(r >> 16) as usize % 3]),
                actor: "ops".into(),
                reason: "conformance".into(),
            },
            _ => match out.get((r >> 24) as usize % out.len().max(1)) {
                Some(e) => {
                    out.push(e.clone());
                    continue;
                }
                None => continue,
            },
        };
        out.push(event(n, kind));
    }
    out
}

async fn apply_in_batches(store: &Store, events: &[Event], cut: usize) {
    for chunk in events.chunks(cut.max(1)) {
        let batch: Vec<Incoming> = chunk.iter().map(incoming).collect();
        store
            .apply_batch(&batch, &ctx())
            .await
            .expect("apply batch");
    }
}

async fn balances(store: &Store) -> BTreeMap<(String, String), Balance> {
    store
        .all_balances()
        .await
        .unwrap()
        .into_iter()
        .map(|(s, l, b)| ((s, l), b))
        .collect()
}

async fn history_matches_the_domain_whatever_the_batch_cuts(backend: Backend) {
    let events = history(7, 400);
    let mut expected = State::default();
    for e in &events {
        expected.step(
            &Delivery {
                event: e.clone(),
                operator_retry: false,
            },
            &ctx(),
        );
    }
    let expected_policy = expected.policy.clone();
    assert_ne!(
        expected_policy,
        PolicySet::default(),
        "the history changes the policy"
    );
    let expected: BTreeMap<_, _> = expected
        .balances
        .iter()
        .map(|(k, b)| ((k.sku.to_string(), k.location.to_string()), *b))
        .collect();
    let mut results = Vec::new();
    for cut in [1, 7, 64, 400] {
        let (_db, store) = fresh(backend).await;
        apply_in_batches(&store, &events, cut).await;
        // Replaying the whole history again changes nothing.
        apply_in_batches(&store, &events, 50).await;
        assert_eq!(balances(&store).await, expected, "batch cut {cut}");
        assert_eq!(
            store.policy_in_force().await.unwrap(),
            expected_policy,
            "batch cut {cut}"
        );
        let report = store.verify().await.unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        results.push(store.outcome_counts().await.unwrap());
    }
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "outcomes differ across batch cuts: {results:?}"
    );
}

/// Everything a user can read from the ledger, as text in a stable order: entries,
/// balances, outcomes, orders, payment references, exceptions, and the last stock change
/// per (SKU, location) (a transaction publishes one change per pair it touched, so how
/// many changes there are depends on the batch cuts; the last one does not).
async fn dump(store: &Store) -> Vec<String> {
    let queries = [
        "SELECT sku || '|' || location || '|' || seq || '|' || from_bucket || '|' || to_bucket || '|' || quantity || '|' || event_id || '|' || kind FROM ledger_entries ORDER BY sku, location, seq",
        "SELECT sku || '|' || location || '|' || available || '|' || reserved || '|' || sold || '|' || returned || '|' || written_off || '|' || external || '|' || seq FROM balances ORDER BY sku, location",
        "SELECT event_id || '|' || kind || '|' || COALESCE(order_ref, '-') || '|' || outcome || '|' || COALESCE(reason, '-') || '|' || outcome_json || '|' || COALESCE(policy, '-') FROM processed_events ORDER BY event_id",
        "SELECT seq || '|' || event_id || '|' || policy || '|' || previous FROM policy_changes ORDER BY seq",
        "SELECT event_id || '|' || version || '|' || outcome || '|' || COALESCE(reason, '-') FROM outcome_history ORDER BY event_id, version",
        "SELECT order_ref || '|' || state || '|' || COALESCE(reserved_by, '-') || '|' || body FROM orders ORDER BY order_ref",
        "SELECT provider || '|' || payment_ref || '|' || order_ref FROM payment_refs ORDER BY provider, payment_ref",
        "SELECT event_id || '|' || reason || '|' || state || '|' || detail || '|' || COALESCE(order_ref, '-') FROM exceptions ORDER BY event_id",
        "SELECT o.sku || '|' || o.location || '|' || o.seq FROM stock_outbox o WHERE o.seq = (SELECT MAX(p.seq) FROM stock_outbox p WHERE p.sku = o.sku AND p.location = o.location) ORDER BY o.sku, o.location",
    ];
    let mut out = Vec::new();
    for q in queries {
        let rows: Vec<String> = sqlx::query_scalar(q).fetch_all(store.pool()).await.unwrap();
        out.push(format!("-- {q}"));
        out.extend(rows);
    }
    out
}

/// The batch path decides every event of a batch in memory and writes each table once: it
/// must leave exactly the ledger that applying the same events one at a time leaves, on
/// random histories with duplicates, over many SKUs and over one hot SKU.
async fn a_batch_at_once_equals_the_same_events_one_by_one(backend: Backend) {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 6,
        ..ProptestConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    runner
        .run(
            &(any::<u64>(), 50usize..250, any::<bool>()),
            |(seed, len, hot)| {
                let skus = if hot { ["h"; 4] } else { ["a", "b", "c", "d"] };
                let events = history_on(seed, len, skus);
                tokio::task::block_in_place(|| {
                    handle.block_on(async {
                        let (_db1, one_by_one) = fresh(backend).await;
                        apply_in_batches(&one_by_one, &events, 1).await;
                        let (_db2, at_once) = fresh(backend).await;
                        apply_in_batches(&at_once, &events, events.len()).await;
                        prop_assert_eq!(dump(&at_once).await, dump(&one_by_one).await);
                        Ok(())
                    })
                })
            },
        )
        .unwrap();
}

async fn constraints_refuse_a_duplicate_sequence_or_event_id(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let e = event(
        1,
        EventKind::StockReceived {
            key: key("a"),
            quantity: Quantity::new(3).unwrap(),
            reference: "po".into(),
        },
    );
    store.apply_batch(&[incoming(&e)], &ctx()).await.unwrap();
    let dup_seq = sqlx::query(
        "INSERT INTO ledger_entries (sku, location, seq, from_bucket, to_bucket, quantity, event_id, kind, recorded_at) \
         VALUES ('a', 'main', 1, 'external', 'available', 1, 'x', 'stock.received', 0)",
    )
    .execute(store.pool())
    .await;
    assert!(
        dup_seq
            .unwrap_err()
            .as_database_error()
            .unwrap()
            .is_unique_violation()
    );
    let dup_event = sqlx::query(
        "INSERT INTO processed_events (event_id, kind, outcome, outcome_json, envelope, processed_at) \
         VALUES ($1, 'stock.received', 'noop', '{}', '{}', 0)",
    )
    .bind(e.id.to_string())
    .execute(store.pool())
    .await;
    assert!(
        dup_event
            .unwrap_err()
            .as_database_error()
            .unwrap()
            .is_unique_violation()
    );
    let negative = sqlx::query("UPDATE balances SET available = -1, external = -2 WHERE sku = 'a'")
        .execute(store.pool())
        .await;
    assert!(
        negative.is_err(),
        "a negative bucket is refused by the schema"
    );
}

async fn verify_detects_a_tampered_balance_and_a_gap(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    apply_in_batches(&store, &history(3, 100), 10).await;
    assert!(store.verify().await.unwrap().is_ok());
    // A SKU the history moved (which ones depends on the generator).
    let tampered: String = sqlx::query_scalar("SELECT MIN(sku) FROM balances")
        .fetch_one(store.pool())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE balances SET available = available + 1, external = external - 1 WHERE sku = $1",
    )
    .bind(&tampered)
    .execute(store.pool())
    .await
    .unwrap();
    let report = store.verify().await.unwrap();
    assert!(
        report.problems.iter().any(
            |p| matches!(p, store::VerifyProblem::BalanceMismatch { sku, .. } if *sku == tampered)
        ),
        "{:?}",
        report.problems
    );
    sqlx::query(
        "INSERT INTO ledger_entries (sku, location, seq, from_bucket, to_bucket, quantity, event_id, kind, recorded_at) \
         VALUES ('zz', 'main', 2, 'external', 'available', 1, 'x', 'stock.received', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.problems.iter().any(|p| matches!(p, store::VerifyProblem::SequenceGap { sku, expected: 1, found: 2, .. } if sku == "zz")), "{:?}", report.problems);
}

async fn operator_retry_finalizes_an_exception_once(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let receive = event(
        1,
        EventKind::StockReceived {
            key: key("a"),
            quantity: Quantity::new(5).unwrap(),
            reference: "po".into(),
        },
    );
    let capture = event(
        2,
        EventKind::PaymentCaptured {
            payment: pay("late"),
        },
    );
    store
        .apply_batch(&[incoming(&receive), incoming(&capture)], &ctx())
        .await
        .unwrap();
    let open = store
        .queue_list(&store::QueueFilter {
            state: Some("open".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].reason, "unknown_order");
    // Redelivery while open: nothing changes.
    let r = store
        .apply_batch(&[incoming(&capture)], &ctx())
        .await
        .unwrap();
    assert!(
        matches!(r.results[..], [Applied::Duplicate { .. }]),
        "{:?}",
        r.results
    );
    // Fix the cause, then retry.
    let register = event(
        3,
        EventKind::OrderRegistered {
            spec: OrderSpec {
                order_ref: OrderRef::parse("late").unwrap(),
                lines: lines(&[("a", 2)]),
                amount: Money::parse("1", "USD").unwrap(),
            },
            payment_refs: vec![],
        },
    );
    store
        .apply_batch(&[incoming(&register)], &ctx())
        .await
        .unwrap();
    let retry = Incoming {
        operator_retry: true,
        ..incoming(&capture)
    };
    let r = store
        .apply_batch(std::slice::from_ref(&retry), &ctx())
        .await
        .unwrap();
    assert!(
        matches!(&r.results[0], Applied::Recorded(Outcome::Moved { .. })),
        "{:?}",
        r.results
    );
    let r = store.apply_batch(&[retry], &ctx()).await.unwrap();
    assert!(
        matches!(r.results[..], [Applied::Duplicate { .. }]),
        "{:?}",
        r.results
    );
    assert_eq!(store.balance(&key("a")).await.unwrap().sold, 2);
    let all = store
        .queue_list(&store::QueueFilter::default())
        .await
        .unwrap();
    assert_eq!(all[0].state, "resolved");
    let history: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outcome_history WHERE event_id = $1")
            .bind(capture.id.to_string())
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        history, 2,
        "the exception and the final outcome are both kept"
    );
}

async fn concurrent_writers_end_with_the_same_ledger(backend: Backend) {
    let events = history(11, 300);
    let (_db1, reference) = fresh(backend).await;
    apply_in_batches(&reference, &events, 300).await;
    let (db, store) = fresh(backend).await;
    let other = Store::connect(db.url(), &StoreOptions::default())
        .await
        .unwrap();
    // Two writers apply interleaved halves of the same (order-insensitive) receipts and then
    // the same full history; conflicts are retried and nothing is applied twice.
    let (a, b) = (store.clone(), other.clone());
    let (ea, eb) = (events.clone(), events.clone());
    let t1 = tokio::spawn(async move { apply_in_batches(&a, &ea, 13).await });
    let t2 = tokio::spawn(async move { apply_in_batches(&b, &eb, 17).await });
    t1.await.unwrap();
    t2.await.unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processed_events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let distinct = events
        .iter()
        .map(|e| e.id)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(
        total as usize, distinct,
        "each event id has exactly one outcome"
    );
    // Units are conserved and nothing is negative whatever the interleaving.
    for (_, _, b) in store.all_balances().await.unwrap() {
        assert!(b.is_valid());
    }
}

async fn reservations_due_lists_old_reservations(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let evs = [
        event(
            1,
            EventKind::StockReceived {
                key: key("a"),
                quantity: Quantity::new(5).unwrap(),
                reference: "po".into(),
            },
        ),
        event(
            2,
            EventKind::OrderRegistered {
                spec: OrderSpec {
                    order_ref: OrderRef::parse("r1").unwrap(),
                    lines: lines(&[("a", 2)]),
                    amount: Money::parse("1", "USD").unwrap(),
                },
                payment_refs: vec![],
            },
        ),
        event(
            3,
            EventKind::PaymentAuthorized {
                payment: pay("r1"),
                mode: AuthorizationMode::Notification,
                method: None,
            },
        ),
    ];
    let batch: Vec<_> = evs.iter().map(incoming).collect();
    store.apply_batch(&batch, &ctx()).await.unwrap();
    // Its deadline is the reservation time plus the provider's TTL.
    let ttl = domain::ReservationTtls::documented_ref().ttl(&evs[2].provider, None);
    let deadline = Timestamp(3).plus(ttl);
    let due_at = |now: Timestamp| store.reservations_due(now, Timestamp(0), 10);
    assert!(due_at(Timestamp(deadline.0 - 1)).await.unwrap().is_empty());
    let due = due_at(deadline).await.unwrap();
    assert_eq!(due, vec![(OrderRef::parse("r1").unwrap(), evs[2].id)]);
}

async fn unprocessable_messages_are_recorded_once(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    for _ in 0..3 {
        store
            .record_unprocessable(
                "stream:42",
                &ExceptionReason::Undecodable,
                "not JSON",
                b"\xff\x00garbage",
                Some(42),
                Timestamp(1),
            )
            .await
            .unwrap();
    }
    let ex = store
        .queue_list(&store::QueueFilter::default())
        .await
        .unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].reason, "undecodable");
}

/// A delivery with a real envelope from `provider` under `identity`, recorded at `at`.
fn enveloped(provider: &str, identity: &str, kind: EventKind, at: i64) -> Incoming {
    let envelope = contract::Envelope::new(
        &kind,
        contract::Source {
            provider: provider.into(),
            identity: identity.into(),
        },
        Timestamp(at),
        Timestamp(at),
        None,
    );
    Incoming {
        event: envelope.to_domain().unwrap(),
        envelope: String::from_utf8(envelope.to_json().unwrap()).unwrap(),
        operator_retry: false,
        stream_seq: None,
    }
}

fn received(sku: &str, n: u64, reference: &str) -> EventKind {
    EventKind::StockReceived {
        key: key(sku),
        quantity: Quantity::new(n).unwrap(),
        reference: reference.into(),
    }
}

/// One event id, one content (`docs/decisions.md` §26): a merchant's reused key with other
/// content writes nothing; a provider's other content is one `conflicting_duplicate`
/// no-op under its own id with both digests; the same content again, even stamped anew,
/// is a plain duplicate; all of it also within one batch.
async fn a_second_content_under_one_event_id_is_never_a_duplicate(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let first = enveloped(
        "merchant",
        "merchant:receipt:po-1001",
        received("a", 3, "po-1001"),
        10,
    );
    let r = store
        .apply_batch(std::slice::from_ref(&first), &ctx())
        .await
        .unwrap();
    assert!(matches!(
        &r.results[..],
        [Applied::Recorded(Outcome::Moved { .. })]
    ));
    let before = store.canonical_export().await.unwrap();

    // The merchant's key with other content: refused, nothing written, not even a count.
    let reused = enveloped(
        "merchant",
        "merchant:receipt:po-1001",
        received("a", 99, "po-1001"),
        20,
    );
    let r = store
        .apply_batch(std::slice::from_ref(&reused), &ctx())
        .await
        .unwrap();
    let [Applied::IdempotencyKeyReused { evidence }] = &r.results[..] else {
        panic!("{:?}", r.results)
    };
    assert_eq!(evidence.event_id, first.event.id);
    assert_ne!(evidence.first_digest, evidence.second_digest);
    assert_eq!(store.canonical_export().await.unwrap(), before);
    // The same content, stamped anew (a retry): a duplicate of the first.
    let retried = enveloped(
        "merchant",
        "merchant:receipt:po-1001",
        received("a", 3, "po-1001"),
        30,
    );
    let r = store.apply_batch(&[retried], &ctx()).await.unwrap();
    assert!(
        matches!(
            &r.results[..],
            [Applied::Duplicate {
                first: Outcome::Moved { .. }
            }]
        ),
        "{:?}",
        r.results
    );
    // Both contents new in one batch: the first is recorded, the second refused.
    let r = store
        .apply_batch(
            &[
                enveloped(
                    "merchant",
                    "merchant:receipt:po-2",
                    received("b", 1, "po-2"),
                    40,
                ),
                enveloped(
                    "merchant",
                    "merchant:receipt:po-2",
                    received("b", 5, "po-2"),
                    41,
                ),
            ],
            &ctx(),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            &r.results[..],
            [Applied::Recorded(_), Applied::IdempotencyKeyReused { .. }]
        ),
        "{:?}",
        r.results
    );
    assert_eq!(store.balance(&key("a")).await.unwrap().available, 3);
    assert_eq!(store.balance(&key("b")).await.unwrap().available, 1);

    // A provider's identity with other content: a recorded no-op under its own id.
    let p1 = enveloped("stripe", "stripe:evt_1", received("c", 2, "x"), 50);
    let p2 = enveloped("stripe", "stripe:evt_1", received("c", 7, "x"), 60);
    let r = store
        .apply_batch(&[p1.clone(), p2.clone()], &ctx())
        .await
        .unwrap();
    let [
        Applied::Recorded(Outcome::Moved { .. }),
        Applied::Recorded(noop),
    ] = &r.results[..]
    else {
        panic!("{:?}", r.results)
    };
    let evidence = ConflictEvidence {
        event_id: p1.event.id,
        first_digest: contract::content_digest(&p1.event.kind),
        second_digest: contract::content_digest(&p2.event.kind),
    };
    assert_eq!(
        noop,
        &Outcome::NoOp {
            reason: NoOpReason::ConflictingDuplicate(evidence)
        }
    );
    let conflict = conflict_id(p1.event.id, evidence.second_digest);
    let row = store
        .processed(&conflict.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.reason, Some(ReasonCode::ConflictingDuplicate));
    assert_eq!(store.outcome(conflict).await.unwrap().as_ref(), Some(noop));
    assert!(matches!(
        store.outcome(p1.event.id).await.unwrap(),
        Some(Outcome::Moved { .. })
    ));
    // Met again in a later batch (a redelivery): a duplicate of its record, counted.
    let r = store.apply_batch(&[p2.clone(), p1], &ctx()).await.unwrap();
    assert!(
        matches!(
            &r.results[..],
            [
                Applied::Duplicate {
                    first: Outcome::NoOp { .. }
                },
                Applied::Duplicate {
                    first: Outcome::Moved { .. }
                }
            ]
        ),
        "{:?}",
        r.results
    );
    let row = store
        .processed(&conflict.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.duplicates, 1);
    assert_eq!(store.balance(&key("c")).await.unwrap().available, 2);
    assert!(store.verify().await.unwrap().problems.is_empty());
}
