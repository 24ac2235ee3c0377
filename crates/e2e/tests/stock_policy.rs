//! The stock policy as an event (`docs/trigger-matrix.md`, "Stock policy"), on SQLite and
//! PostgreSQL: a stream with `policy.changed` in the middle (one by `stockctl policy set`,
//! one by the ledger putting its configured policy in force, published twice at once as
//! two starting ledgers would). The same authorization before and after the first change
//! behaves per the policy in force when it is applied; every outcome records its policy;
//! `stockctl policy show` lists the changes; a ledger restarted with the same
//! `STOCKLEDGER_STOCK_POLICY` does not undo an operator's later change; and `stockctl ledger rebuild` into an empty
//! database gives the same ledger byte for byte (balances, outcomes with their policies,
//! the policy changes).
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::Duration;

use domain::{
    AuthorizationMode, Event, EventId, EventKind, Line, Lines, Location, Money, OrderLookup,
    OrderRef, OrderSpec, Payment, PolicySet, Provider, Quantity, Sku, StockKey,
};
use e2e::wait::eventually;
use e2e::{Harness, test_settings};
use store::{Store, StoreOptions};
use testkit::{Backend, TestDatabase, on_both_backends};

on_both_backends!(a_policy_change_in_the_middle_of_the_stream_survives_a_rebuild);

fn key() -> StockKey {
    StockKey {
        sku: Sku::parse("mug").unwrap(),
        location: Location::parse("main").unwrap(),
    }
}

fn event(identity: &str, provider: &str, kind: EventKind) -> (String, Event) {
    (
        identity.to_owned(),
        Event {
            id: EventId::from_dedupe_key(identity),
            provider: Provider::parse(provider).unwrap(),
            recorded_at: e2e::now(),
            kind,
        },
    )
}

fn payment(order: &str) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(OrderRef::parse(order).unwrap()),
        amount: Some(Money::parse("15", "USD").unwrap()),
    }
}

fn register(order: &str) -> (String, Event) {
    let spec = OrderSpec {
        order_ref: OrderRef::parse(order).unwrap(),
        lines: Lines::new([Line {
            key: key(),
            quantity: Quantity::new(2).unwrap(),
        }])
        .unwrap(),
        amount: Money::parse("15", "USD").unwrap(),
    };
    event(
        &format!("merchant:order:{order}"),
        "merchant",
        EventKind::OrderRegistered {
            spec,
            payment_refs: vec![],
        },
    )
}

fn authorized(order: &str) -> (String, Event) {
    event(
        &format!("stripe:auth:{order}"),
        "stripe",
        EventKind::PaymentAuthorized {
            payment: payment(order),
            mode: AuthorizationMode::Notification,
            method: None,
        },
    )
}

fn captured(order: &str) -> (String, Event) {
    event(
        &format!("stripe:capture:{order}"),
        "stripe",
        EventKind::PaymentCaptured {
            payment: payment(order),
        },
    )
}

fn settled(order: &str) -> (String, Event) {
    event(
        &format!("stripe:settle:{order}"),
        "stripe",
        EventKind::PaymentSettled {
            payment: payment(order),
        },
    )
}

async fn publish(h: &Harness, events: &[(String, Event)]) {
    for (identity, e) in events {
        h.publish(identity, e).await.unwrap();
    }
}

/// Waits until every event of the stream has an outcome.
async fn applied(h: &Harness, n: i64) {
    let done = h.wait_processed(n, Duration::from_secs(30)).await.unwrap();
    assert_eq!(done, n, "events with an outcome");
}

/// The outcome (label, reason, policy) recorded for the event of `identity`.
async fn decided(store: &Store, identity: &str) -> (String, Option<String>, Option<String>) {
    let id = EventId::from_dedupe_key(identity).to_string();
    let row = store.processed(&id).await.unwrap().unwrap();
    (
        row.outcome.as_str().to_owned(),
        row.reason.map(|r| r.as_str().to_owned()),
        row.policy,
    )
}

fn owned(
    label: &str,
    reason: Option<&str>,
    policy: &str,
) -> (String, Option<String>, Option<String>) {
    (
        label.to_owned(),
        reason.map(str::to_owned),
        Some(policy.to_owned()),
    )
}

/// `stockctl` against `db_url` in `h`'s namespace.
fn stockctl(h: &Harness, db_url: &str, args: &[&str]) -> Output {
    let out = Command::new(e2e::binary("stockctl"))
        .args(args)
        .env("STOCKLEDGER_NATS_URL", &h.nats_url)
        .env("STOCKLEDGER_NATS_NAMESPACE", h.bus.namespace().as_str())
        .env("STOCKLEDGER_DATABASE_URL", db_url)
        .env("STOCKLEDGER_UNKNOWN_ORDER_HOLD", "0s")
        .env("STOCKLEDGER_CONFIRMATION_DEADLINE", "15s")
        .output()
        .unwrap();
    eprintln!(
        "stockctl {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn a_policy_change_in_the_middle_of_the_stream_survives_a_rebuild(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let receipt = event(
        "merchant:receipt:1",
        "merchant",
        EventKind::StockReceived {
            key: key(),
            quantity: Quantity::new(10).unwrap(),
            reference: "po-1".into(),
        },
    );
    publish(
        &h,
        &[
            receipt,
            register("o1"),
            register("o2"),
            register("o3"),
            authorized("o1"),
        ],
    )
    .await;
    applied(&h, 5).await;
    assert_eq!(
        decided(&h.store, "stripe:auth:o1").await,
        owned("moved", None, "reserve_on_authorization")
    );

    // An operator changes the policy through JetStream, like any stockctl action.
    let out = stockctl(
        &h,
        h.db.url(),
        &[
            "--json",
            "policy",
            "set",
            "deduct_on_capture",
            "--actor",
            "ops-alice",
            "--reason",
            "fewer units blocked",
        ],
    );
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["result"], "changed", "{report}");
    let bad = stockctl(
        &h,
        h.db.url(),
        &[
            "policy",
            "set",
            "sometimes",
            "--actor",
            "x",
            "--reason",
            "y",
        ],
    );
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown policy is a usage error"
    );

    // The same authorization after the change moves nothing; both captures sell.
    publish(&h, &[authorized("o2"), captured("o1"), captured("o2")]).await;
    applied(&h, 9).await;
    assert_eq!(
        decided(&h.store, "stripe:auth:o2").await,
        owned("noop", Some("policy_defers_stock"), "deduct_on_capture")
    );
    assert_eq!(
        decided(&h.store, "stripe:capture:o1").await,
        owned("moved", None, "deduct_on_capture")
    );
    let b = h.store.balance(&key()).await.unwrap();
    assert_eq!((b.available, b.reserved, b.sold), (6, 0, 4));

    // Two ledgers starting together with the same configured policy publish one change.
    let configured: PolicySet = "deduct_on_settlement".parse().unwrap();
    let (first, second) = tokio::join!(
        ledger::policy::put_configured_in_force(&h.bus, &h.store, &configured),
        ledger::policy::put_configured_in_force(&h.bus, &h.store, &configured),
    );
    // Both publish the same event id, or the later one finds the change already in force.
    let ids: std::collections::BTreeSet<String> = [first.unwrap(), second.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ids.len(), 1, "one change published: {ids:?}");
    applied(&h, 10).await;
    eventually("the configured policy in force", || async {
        h.store.policy_in_force().await.unwrap() == configured
    })
    .await;
    assert_eq!(
        ledger::policy::put_configured_in_force(&h.bus, &h.store, &configured)
            .await
            .unwrap(),
        None,
        "nothing to publish once in force"
    );
    publish(&h, &[authorized("o3"), captured("o3"), settled("o3")]).await;
    applied(&h, 13).await;
    assert_eq!(
        decided(&h.store, "stripe:capture:o3").await,
        owned("noop", Some("policy_defers_stock"), "deduct_on_settlement")
    );
    assert_eq!(
        decided(&h.store, "stripe:settle:o3").await,
        owned("moved", None, "deduct_on_settlement")
    );
    let b = h.store.balance(&key()).await.unwrap();
    assert_eq!((b.available, b.reserved, b.sold), (4, 0, 6));

    let out = stockctl(&h, h.db.url(), &["--json", "policy", "show"]);
    assert!(out.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["policy"], "deduct_on_settlement", "{shown}");
    let changes = shown["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{shown}");
    assert_eq!(changes[0]["actor"], "ops-alice");
    assert_eq!(changes[0]["previous"], "reserve_on_authorization");
    assert_eq!(changes[1]["actor"], ledger::policy::CONFIGURED_ACTOR);

    // An operator's later change is not undone by a restart with the same variable.
    let out = stockctl(
        &h,
        h.db.url(),
        &[
            "policy",
            "set",
            "deduct_on_capture",
            "--actor",
            "ops-bob",
            "--reason",
            "back",
        ],
    );
    assert!(out.status.success());
    applied(&h, 14).await;
    ledger.stop().await;
    let restarted = h
        .start_ledger(ledger::LedgerSettings {
            stock_policy: Some(configured.clone()),
            ..test_settings()
        })
        .await
        .unwrap();
    publish(&h, &[register("o4")]).await;
    applied(&h, 15).await;
    // The restarted ledger published before its consumer started; give a change it might
    // have published the time to be applied, then check it did not.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(h.processed_count().await.unwrap(), 15);
    assert_eq!(
        h.store.policy_in_force().await.unwrap(),
        PolicySet::uniform(domain::StockPolicy::DeductOnCapture)
    );
    assert_eq!(h.store.policy_changes().await.unwrap().len(), 3);
    restarted.stop().await;

    // A rebuild into an empty database applies every event under the policy in force
    // when it was applied: the same ledger, byte for byte.
    let before = h.store.canonical_export().await.unwrap();
    assert!(before.contains("policy_defers_stock"), "{before}");
    let fresh = TestDatabase::new(backend).await.unwrap();
    let out = stockctl(
        &h,
        h.db.url(),
        &["ledger", "rebuild", "--yes", "--into", fresh.url()],
    );
    assert!(out.status.success());
    let rebuilt = Store::connect(fresh.url(), &StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(rebuilt.canonical_export().await.unwrap(), before);
    assert_eq!(
        rebuilt.policy_in_force().await.unwrap(),
        PolicySet::uniform(domain::StockPolicy::DeductOnCapture)
    );
}
