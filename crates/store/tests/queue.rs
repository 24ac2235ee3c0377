//! The exception queue's workflow on both backends: a dead letter and the ledger's own row
//! for the same message are one row; retry and resolve move the state machine
//! (open → retrying → open/resolved) and every action lands in the audit trail; a
//! dead-letter row is reconciled once its event has a final outcome; operator actions
//! applied as events (`exception.action`) release a `void_after_capture` once and retry
//! an exception in the ledger's batch, audited with the action's time.
#![allow(clippy::unwrap_used)]

use domain::{
    Event, EventId, EventKind, ExceptionId, Line, Lines, Location, Money, OperatorAction,
    OrderLookup, OrderRef, OrderSpec, Payment, Quantity, Sku, StockKey, Timestamp,
};
use serde_json::json;
use store::{Incoming, NewDeadLetter, QueueFilter, Recorded, RetryStart, Store, StoreOptions};
use testkit::{Backend, TestDatabase};

use testkit::on_both_backends;

on_both_backends!(
    a_dead_letter_of_a_recorded_message_is_the_same_row,
    retry_and_resolve_follow_the_state_machine_and_are_audited,
    dead_letter_rows_are_reconciled_by_a_final_outcome,
    release_and_retry_are_applied_as_events_and_audited,
);

/// An action event on exception `id` by `actor` at time `at`.
fn action(id: &str, action: OperatorAction, actor: &str, why: &str, at: i64) -> Incoming {
    let kind = EventKind::ExceptionAction {
        exception_id: ExceptionId::parse(id).expect("id"),
        action,
        actor: actor.into(),
        reason: why.into(),
        evidence: Some("ev-1".into()),
    };
    incoming(&format!("op:{id}:{}:{at}", action.as_str()), kind, at)
}

/// An event as the ledger receives it, with its real envelope (a retry decodes it).
fn incoming(identity: &str, kind: EventKind, at: i64) -> Incoming {
    let source = contract::Source {
        provider: "test".into(),
        identity: identity.into(),
    };
    let envelope = contract::Envelope::new(&kind, source, Timestamp(at), Timestamp(at), None);
    Incoming {
        event: Event {
            id: EventId::from_dedupe_key(identity),
            provider: domain::Provider::named("test"),
            recorded_at: Timestamp(at),
            kind,
        },
        envelope: String::from_utf8(envelope.to_json().expect("encodes")).expect("utf8"),
        operator_retry: false,
        stream_seq: None,
    }
}

fn ctx(now: i64) -> domain::Context<'static> {
    domain::Context {
        now: Timestamp(now),
        unknown_order_hold: std::time::Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented_ref(),
    }
}

async fn fresh(backend: Backend) -> (TestDatabase, Store) {
    let db = TestDatabase::new(backend).await.expect("test database");
    let store = Store::connect(db.url(), &StoreOptions::default())
        .await
        .expect("connect");
    (db, store)
}

fn dead_letter(id: &str, reason: &str, raw: &str) -> NewDeadLetter {
    NewDeadLetter {
        id: id.into(),
        reason: reason.into(),
        detail: "test".into(),
        evidence: json!({"message": {"raw_utf8": raw}, "dead_letter": {"reason": "terminated", "dlq_seq": 1}}),
        order_ref: None,
        sku: None,
        location: None,
        stream_seq: 7,
        already_final: None,
    }
}

async fn a_dead_letter_of_a_recorded_message_is_the_same_row(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let reason = domain::ExceptionReason::Undecodable;
    store
        .record_unprocessable(
            "S_EVENTS:7",
            &reason,
            "not JSON",
            b"{x",
            Some(7),
            domain::Timestamp(1),
        )
        .await
        .expect("record");
    let dl = dead_letter("S_EVENTS:7", "undecodable", "{x");
    assert_eq!(
        store.queue_record_dead_letter(&dl, 2).await.expect("dl"),
        Recorded::AlreadyQueued
    );
    assert_eq!(
        store.queue_record_dead_letter(&dl, 3).await.expect("dl"),
        Recorded::AlreadyQueued
    );
    let rows = store
        .queue_list(&QueueFilter::default())
        .await
        .expect("list");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].source, "ledger");
    let d = store
        .queue_item("S_EVENTS:7")
        .await
        .expect("item")
        .expect("exists");
    assert_eq!(d.evidence["dead_letter"]["reason"], "terminated");
    assert_eq!(d.evidence["message"]["raw_utf8"], "{x");
    let other = dead_letter("S_EVENTS:8", "max_deliveries", "{}");
    assert_eq!(
        store.queue_record_dead_letter(&other, 4).await.expect("dl"),
        Recorded::New
    );
    let filtered = store
        .queue_list(&QueueFilter {
            reason: Some("max_deliveries".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(filtered.len(), 1);
    let old = store
        .queue_list(&QueueFilter {
            created_before: Some(1),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(old.len(), 1, "only the row created at 1 is that old");
}

async fn retry_and_resolve_follow_the_state_machine_and_are_audited(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    store
        .queue_record_dead_letter(&dead_letter("E1", "max_deliveries", "{\"a\":1}"), 1)
        .await
        .expect("dl");
    assert!(
        store.queue_begin_retry("E1", "", "why", 2).await.is_err(),
        "an actor is required"
    );
    assert!(
        store
            .queue_begin_retry("nope", "ann", "why", 2)
            .await
            .is_err()
    );
    let RetryStart::Go {
        attempt, payload, ..
    } = store
        .queue_begin_retry("E1", "ann", "fixed it", 2)
        .await
        .expect("retry")
    else {
        panic!("expected a retry to start");
    };
    assert_eq!((attempt, payload), (1, b"{\"a\":1}".to_vec()));
    assert_eq!(
        store
            .queue_item("E1")
            .await
            .expect("item")
            .expect("row")
            .item
            .state,
        "retrying"
    );
    store
        .queue_retry_failed("E1", 1, "nats down", 3)
        .await
        .expect("failed");
    assert_eq!(
        store
            .queue_item("E1")
            .await
            .expect("item")
            .expect("row")
            .item
            .state,
        "open"
    );
    // Resolving is an event the ledger applies: twice in one batch, the second sees the
    // first.
    store
        .apply_batch(
            &[
                action("E1", OperatorAction::Resolve, "bob", "refunded instead", 4),
                action("E1", OperatorAction::Resolve, "bob", "again", 5),
            ],
            &ctx(5),
        )
        .await
        .expect("apply");
    assert!(matches!(
        store
            .queue_begin_retry("E1", "ann", "late", 6)
            .await
            .expect("retry"),
        RetryStart::AlreadyResolved { .. }
    ));
    let d = store.queue_item("E1").await.expect("item").expect("row");
    assert_eq!(
        d.item.resolution.as_deref(),
        Some("no-op by bob: refunded instead")
    );
    let trail: Vec<(i64, &str, &str, &str, i64)> = d
        .actions
        .iter()
        .map(|a| {
            (
                a.seq,
                a.action.as_str(),
                a.actor.as_str(),
                a.result.as_str(),
                a.at,
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            (1, "retry", "ann", "publishing", 2),
            (2, "retry_result", "exceptions", "failed", 3),
            (3, "resolve", "bob", "resolved", 4),
            (4, "resolve", "bob", "noop: already resolved", 5),
            (5, "retry", "ann", "noop: already resolved", 6),
        ]
    );
    assert_eq!(d.actions[2].detail["evidence"], "ev-1");
    assert_eq!(d.item.updated_at, 4, "the resolving action's time");
    let stats = store.queue_stats().await.expect("stats");
    assert_eq!((stats.resolved, stats.unresolved.len()), (1, 0));
}

async fn dead_letter_rows_are_reconciled_by_a_final_outcome(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let id = domain::EventId::from_dedupe_key("q:receipt");
    let event = domain::Event {
        id,
        provider: domain::Provider::named("test"),
        recorded_at: domain::Timestamp(1),
        kind: domain::EventKind::StockReceived {
            key: domain::StockKey {
                sku: domain::Sku::parse("q").expect("sku"),
                location: domain::Location::parse("main").expect("loc"),
            },
            quantity: domain::Quantity::new(1).expect("qty"),
            reference: "r".into(),
        },
    };
    store
        .queue_record_dead_letter(&dead_letter(&id.to_string(), "max_deliveries", "{}"), 1)
        .await
        .expect("dl");
    assert_eq!(
        store.queue_reconcile(2).await.expect("reconcile"),
        0,
        "no outcome yet"
    );
    let ctx = domain::Context {
        now: domain::Timestamp(3),
        unknown_order_hold: std::time::Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented_ref(),
    };
    let incoming = store::Incoming {
        event,
        envelope: "{}".into(),
        operator_retry: true,
        stream_seq: None,
    };
    store.apply_batch(&[incoming], &ctx).await.expect("apply");
    assert_eq!(store.queue_reconcile(4).await.expect("reconcile"), 1);
    assert_eq!(store.queue_reconcile(5).await.expect("reconcile"), 0);
    let d = store
        .queue_item(&id.to_string())
        .await
        .expect("item")
        .expect("row");
    assert_eq!(
        (d.item.state.as_str(), d.item.resolution.as_deref()),
        ("resolved", Some("retried: moved"))
    );
    assert_eq!(d.outcomes.len(), 1);
}

fn key(sku: &str) -> StockKey {
    StockKey {
        sku: Sku::parse(sku).expect("sku"),
        location: Location::parse("main").expect("loc"),
    }
}

fn pay(order: &str) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(OrderRef::parse(order).expect("order")),
        amount: None,
    }
}

fn register(order: &str, sku: &str, at: i64) -> Incoming {
    let spec = OrderSpec {
        order_ref: OrderRef::parse(order).expect("order"),
        lines: Lines::new([Line {
            key: key(sku),
            quantity: Quantity::new(2).expect("qty"),
        }])
        .expect("lines"),
        amount: Money::parse("20", "USD").expect("money"),
    };
    let kind = EventKind::OrderRegistered {
        spec,
        payment_refs: vec![],
    };
    incoming(&format!("{order}:register"), kind, at)
}

fn receipt(sku: &str, n: u64, at: i64) -> Incoming {
    let kind = EventKind::StockReceived {
        key: key(sku),
        quantity: Quantity::new(n).expect("qty"),
        reference: format!("po-{at}"),
    };
    incoming(&format!("{sku}:receipt:{at}"), kind, at)
}

fn payment(order: &str, void: bool, at: i64) -> Incoming {
    let kind = if void {
        EventKind::PaymentVoided {
            payment: pay(order),
        }
    } else {
        EventKind::PaymentCaptured {
            payment: pay(order),
        }
    };
    incoming(&format!("{order}:{void}"), kind, at)
}

async fn release_and_retry_are_applied_as_events_and_audited(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let stage = [
        receipt("a", 5, 1),
        register("o1", "a", 2),
        payment("o1", false, 3),
        payment("o1", true, 4),
        register("o2", "b", 5),
        payment("o2", false, 6),
    ];
    store.apply_batch(&stage, &ctx(6)).await.expect("stage");
    let void_id = stage[3].event.id.to_string();
    let over_id = stage[5].event.id.to_string();
    let row = |id: String| {
        let store = store.clone();
        async move { store.queue_item(&id).await.expect("item").expect("row") }
    };
    assert_eq!(row(void_id.clone()).await.item.reason, "void_after_capture");
    let over = row(over_id.clone()).await.item;
    assert_eq!(over.reason, "oversold");
    // The row says what it concerns: the order, and the line that cannot move.
    assert_eq!(
        (
            over.order_ref.as_deref(),
            over.sku.as_deref(),
            over.location.as_deref()
        ),
        (Some("o2"), Some("b"), Some("main"))
    );
    assert!(
        over.detail.contains("SKU b at location main"),
        "{}",
        over.detail
    );
    // Release, twice: sold → available once.
    let release = action(
        &void_id,
        OperatorAction::Release,
        "ann",
        "never shipped",
        10,
    );
    let again = action(&void_id, OperatorAction::Release, "ann", "again", 11);
    store
        .apply_batch(&[release.clone(), again], &ctx(11))
        .await
        .expect("release");
    let b = store.balance(&key("a")).await.expect("balance");
    assert_eq!((b.available, b.sold), (5, 0));
    let d = row(void_id.clone()).await;
    assert_eq!(
        (
            d.item.state.as_str(),
            d.item.resolution.as_deref(),
            d.item.updated_at
        ),
        ("resolved", Some("released by ann: never shipped"), 10)
    );
    let results: Vec<&str> = d.actions.iter().map(|a| a.result.as_str()).collect();
    assert_eq!(results, ["released", "noop: already resolved"]);
    let released = store
        .processed(&release.event.id.to_string())
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(
        (released.outcome.as_str(), released.order_ref.as_deref()),
        ("moved", Some("o1"))
    );
    // Retry before the stock exists: still oversold; after a receipt: sold, resolved.
    store
        .apply_batch(
            &[action(&over_id, OperatorAction::Retry, "ann", "maybe", 20)],
            &ctx(20),
        )
        .await
        .expect("retry");
    assert_eq!(row(over_id.clone()).await.item.state, "open");
    store
        .apply_batch(
            &[
                receipt("b", 2, 30),
                action(&over_id, OperatorAction::Retry, "ann", "stock received", 31),
            ],
            &ctx(31),
        )
        .await
        .expect("retry");
    let b = store.balance(&key("b")).await.expect("balance");
    assert_eq!((b.available, b.sold), (0, 2));
    let d = row(over_id.clone()).await;
    assert_eq!(
        (
            d.item.state.as_str(),
            d.item.resolution.as_deref(),
            d.item.retries,
            d.item.updated_at
        ),
        ("resolved", Some("retried: moved"), 2, 31)
    );
    let trail: Vec<(&str, &str, &str, i64)> = d
        .actions
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str(), a.result.as_str(), a.at))
        .collect();
    assert_eq!(
        trail,
        [
            ("retry", "ann", "retried", 20),
            ("retry_result", "ledger", "still oversold", 20),
            ("retry", "ann", "retried", 31),
            ("retry_result", "ledger", "resolved: retried: moved", 31),
        ]
    );
    assert_eq!(
        d.outcomes
            .iter()
            .map(|o| (o.outcome.as_str(), o.recorded_at))
            .collect::<Vec<_>>(),
        [("exception", 6), ("moved", 31)]
    );
    assert!(store.verify().await.expect("verify").is_ok());
}
