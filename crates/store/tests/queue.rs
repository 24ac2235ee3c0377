//! The exception queue's workflow on both backends: a dead letter and the ledger's own row
//! for the same message are one row; retry and resolve move the state machine
//! (open → retrying → open/resolved) and every action lands in the audit trail; a
//! dead-letter row is reconciled once its event has a final outcome.

use serde_json::json;
use store::{NewDeadLetter, QueueFilter, Recorded, ResolveDone, RetryStart, Store, StoreOptions};
use testkit::{Backend, TestDatabase};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name(testkit::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(testkit::Backend::Postgres).await }
        }
    )*};
}

on_both_backends!(
    a_dead_letter_of_a_recorded_message_is_the_same_row,
    retry_and_resolve_follow_the_state_machine_and_are_audited,
    dead_letter_rows_are_reconciled_by_a_final_outcome,
);

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
    assert_eq!(
        store
            .queue_resolve("E1", "bob", "refunded instead", 4)
            .await
            .expect("resolve"),
        ResolveDone::Resolved
    );
    assert!(matches!(
        store
            .queue_resolve("E1", "bob", "again", 5)
            .await
            .expect("resolve"),
        ResolveDone::AlreadyResolved { .. }
    ));
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
    let trail: Vec<(i64, &str, &str, &str)> = d
        .actions
        .iter()
        .map(|a| {
            (
                a.seq,
                a.action.as_str(),
                a.actor.as_str(),
                a.result.as_str(),
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            (1, "retry", "ann", "publishing"),
            (2, "retry_result", "exceptions", "failed"),
            (3, "resolve", "bob", "resolved"),
            (4, "resolve", "bob", "noop: already resolved"),
            (5, "retry", "ann", "noop: already resolved"),
        ]
    );
    let stats = store.queue_stats().await.expect("stats");
    assert_eq!((stats.resolved, stats.unresolved.len()), (1, 0));
}

async fn dead_letter_rows_are_reconciled_by_a_final_outcome(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let id = domain::EventId::from_dedupe_key("q:receipt");
    let event = domain::Event {
        id,
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
