//! Replay for recovery, on SQLite and PostgreSQL: a range with duplicate messages, stale
//! events and exceptions, replayed into an empty ledger, reproduces the original ledger and
//! reports the counts; replayed again it changes nothing; a dry run changes nothing at all.
//! `stockctl replay` refuses an unbounded replay and reports a dry run as JSON.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use bus::read::ReadFrom;
use domain::{
    AuthorizationMode, Event, EventId, EventKind, OrderLookup, OrderRef, Payment, Timestamp,
};
use e2e::{Harness, test_settings, workload};
use ledger::replay::{ReplayOptions, ReplaySummary, replay};
use store::{Store, StoreOptions};
use testkit::{Backend, TestDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rebuilds_and_is_idempotent_sqlite() {
    replay_rebuilds_and_is_idempotent(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rebuilds_and_is_idempotent_postgres() {
    replay_rebuilds_and_is_idempotent(Backend::Postgres).await;
}

fn payment(order: &str) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(OrderRef::parse(order).unwrap()),
        amount: None,
    }
}

fn late(identity: &str, kind: EventKind) -> (String, Event) {
    (
        identity.to_owned(),
        Event {
            id: EventId::from_dedupe_key(identity),
            provider: domain::Provider::named("test"),
            recorded_at: Timestamp(1),
            kind,
        },
    )
}

async fn balances(store: &Store) -> BTreeMap<(String, String), domain::Balance> {
    store
        .all_balances()
        .await
        .unwrap()
        .into_iter()
        .map(|(s, l, b)| ((s, l), b))
        .collect()
}

async fn outcome(store: &Store, label: &str) -> u64 {
    store
        .outcome_counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(o, _)| o.as_str() == label)
        .map_or(0, |(_, n)| n as u64)
}

async fn replay_rebuilds_and_is_idempotent(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let mut events = workload::mixed(600, 15, 21);
    // Stale events (a second authorization after the order moved on) and exceptions (a
    // capture for an order nobody registered).
    for i in 1..=10 {
        let o = format!("wl-21-{i}");
        let kind = EventKind::PaymentAuthorized {
            payment: payment(&o),
            mode: AuthorizationMode::Notification,
            method: None,
        };
        events.push(late(&format!("late-auth:{o}"), kind));
    }
    events.push(late(
        "ghost-capture",
        EventKind::PaymentCaptured {
            payment: payment("never-registered"),
        },
    ));
    for (identity, e) in &events {
        h.publish(identity, e).await.unwrap();
    }
    // Duplicate messages in the stream: the same events again under new message ids.
    let duplicates = 40u64;
    for (i, (identity, e)) in events.iter().take(duplicates as usize).enumerate() {
        let env = e2e::envelope(identity, e);
        let subject = h.bus.namespace().event_subject("test", "again");
        h.bus
            .publish_event(
                subject,
                &format!("dup-{i}"),
                env.to_json().expect("encodes").into(),
                None,
            )
            .await
            .unwrap();
    }
    let distinct = events
        .iter()
        .map(|(_, e)| e.id)
        .collect::<std::collections::BTreeSet<_>>()
        .len() as i64;
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    assert_eq!(
        h.wait_processed(distinct, Duration::from_secs(60))
            .await
            .unwrap(),
        distinct
    );
    ledger.stop().await;
    let original = balances(&h.store).await;
    let (moved, noops, exceptions) = (
        outcome(&h.store, "moved").await,
        outcome(&h.store, "noop").await,
        outcome(&h.store, "exception").await,
    );
    assert!(
        noops > 0 && exceptions > 0,
        "the range holds no-ops ({noops}) and exceptions ({exceptions})"
    );

    // Recovery into an empty ledger.
    let db = TestDatabase::new(backend).await.unwrap();
    let fresh = Store::connect(db.url(), &StoreOptions::default())
        .await
        .unwrap();
    let opts = |dry_run| ReplayOptions {
        filter: h.bus.namespace().events_wildcard(),
        from: ReadFrom::Sequence(1),
        to_seq: None,
        dry_run,
        unknown_order_hold: Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented(),
    };
    let read = distinct as u64 + duplicates;
    let first = ReplaySummary {
        read,
        applied: moved,
        deduplicated: duplicates,
        business_noops: noops,
        exceptions,
        deferred: 0,
        unprocessable: 0,
    };
    let dry = replay(&h.bus, &fresh, &opts(true), |_, _| {})
        .await
        .unwrap();
    assert_eq!(dry, first, "a dry run reports what the replay will do");
    assert!(
        balances(&fresh).await.is_empty(),
        "a dry run changes nothing"
    );
    assert_eq!(fresh.outcome_counts().await.unwrap(), vec![]);
    let real = replay(&h.bus, &fresh, &opts(false), |_, _| {})
        .await
        .unwrap();
    assert_eq!(real, first);
    assert_eq!(
        balances(&fresh).await,
        original,
        "the replayed ledger is the original"
    );
    // Again: nothing moves.
    let again = replay(&h.bus, &fresh, &opts(false), |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        again,
        ReplaySummary {
            read,
            deduplicated: read,
            ..ReplaySummary::default()
        }
    );
    assert_eq!(balances(&fresh).await, original);
    assert!(fresh.verify().await.unwrap().is_ok());
    // And into the original ledger: nothing moves either.
    let onto_original = replay(&h.bus, &h.store, &opts(false), |_, _| {})
        .await
        .unwrap();
    assert_eq!(onto_original.deduplicated, read);
    assert_eq!(balances(&h.store).await, original);

    // The command line: bounded only, and a dry run as JSON.
    let stockctl = e2e::binary("stockctl");
    let run = |args: &[&str]| {
        Command::new(&stockctl)
            .args(args)
            .env("STOCKLEDGER_NATS_URL", &h.nats_url)
            .env("STOCKLEDGER_NATS_NAMESPACE", h.bus.namespace().as_str())
            .env("STOCKLEDGER_DATABASE_URL", db.url())
            .env("STOCKLEDGER_UNKNOWN_ORDER_HOLD", "0s")
            .output()
            .unwrap()
    };
    let unbounded = run(&["replay"]);
    assert!(!unbounded.status.success());
    assert!(String::from_utf8_lossy(&unbounded.stderr).contains("refusing an unbounded replay"));
    // A range that reads nothing, or the whole stream without saying so, is refused before
    // anything is read.
    for (args, says) in [
        (
            &["replay", "--from-seq", "10", "--to-seq", "5"][..],
            "the range is empty",
        ),
        (&["replay", "--from-seq", "0"][..], "--all-history"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing replayed");
    }
    let out = run(&["replay", "--from-seq", "1", "--dry-run", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["read"], read);
    assert_eq!(report["summary"]["deduplicated"], read);
}
