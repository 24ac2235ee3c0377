//! One idempotency key, one content (`docs/decisions.md` §26), end to end through the
//! real ingress, JetStream and ledger, on SQLite and PostgreSQL:
//! - a merchant write reusing its key with other content is 409 `idempotency_key_reused`
//!   naming the key, publishes nothing (the events stream's message count is unchanged)
//!   and changes nothing (the canonical export of the ledger is unchanged); the same
//!   content again answers as the first call did;
//! - the same holds when the second content reaches the ledger anyway (it was published
//!   before the first was applied): the ledger refuses it and records nothing;
//! - a provider's identity seen again with other content is a recorded no-op
//!   `conflicting_duplicate` under an id of its own, with both digests; the first outcome
//!   is untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use domain::{ConflictEvidence, EventKind, Location, NoOpReason, Outcome, Quantity, Sku, StockKey};
use e2e::http::Client;
use e2e::wait::eventually;
use e2e::{Harness, ingress_config, test_settings};
use futures::StreamExt as _;
use reqwest::Method;
use serde_json::json;

use testkit::on_both_backends;

on_both_backends!(
    a_reused_merchant_key_is_refused_and_changes_nothing,
    the_ledger_refuses_a_reused_key_that_reached_the_stream,
    a_provider_identity_with_other_content_is_a_conflicting_duplicate,
);

const WAIT: Duration = Duration::from_secs(30);

fn key(sku: &str) -> StockKey {
    StockKey {
        sku: Sku::parse(sku).unwrap(),
        location: Location::parse("main").unwrap(),
    }
}

fn received(sku: &str, n: u64, reference: &str) -> EventKind {
    EventKind::StockReceived {
        key: key(sku),
        quantity: Quantity::new(n).unwrap(),
        reference: reference.into(),
    }
}

/// An envelope from `provider` under `identity`, stamped now.
fn envelope(provider: &str, identity: &str, kind: &EventKind) -> contract::Envelope {
    let now = e2e::now();
    contract::Envelope::new(
        kind,
        contract::Source {
            provider: provider.into(),
            identity: identity.into(),
        },
        now,
        now,
        None,
    )
}

async fn stream_messages(h: &Harness) -> u64 {
    let mut stream = h
        .bus
        .jetstream()
        .get_stream(h.bus.namespace().events_stream())
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

async fn a_reused_merchant_key_is_refused_and_changes_nothing(backend: testkit::Backend) {
    let h = Harness::new(backend).await.unwrap();
    let _ledger = h.start_ledger(test_settings()).await.unwrap();
    let ingress = h
        .start_ingress(&ingress_config(&[]).unwrap())
        .await
        .unwrap();
    let api = Client::new(&ingress.url);

    // The bug report: reference po-1001 with quantity 3, then with 99.
    let receipt =
        |n: u64| json!({"sku": "tee", "location": "main", "quantity": n, "reference": "po-1001"});
    let (status, first) = api
        .api(Method::POST, "/v1/stock/receipts", Some(receipt(3)))
        .await;
    assert_eq!(
        (status, first["outcome"].as_str()),
        (201, Some("moved")),
        "{first}"
    );
    let messages = stream_messages(&h).await;
    let ledger = h.store.canonical_export().await.unwrap();

    let (status, reply) = api
        .api(Method::POST, "/v1/stock/receipts", Some(receipt(99)))
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (409, Some("idempotency_key_reused")),
        "{reply}"
    );
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("reference `po-1001`"),
        "the key is named: {reply}"
    );
    assert_eq!(stream_messages(&h).await, messages, "nothing published");
    assert_eq!(
        h.store.canonical_export().await.unwrap(),
        ledger,
        "nothing changed"
    );

    // The same content again answers as the first call did.
    let (status, again) = api
        .api(Method::POST, "/v1/stock/receipts", Some(receipt(3)))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["event_id"], first["event_id"]);
    assert_eq!(again["outcome"], first["outcome"]);
    assert_eq!(again["reason"], first["reason"]);
    assert_eq!(again["repeated"], true);
    assert_eq!(api.stock("tee").await, (3, 0, 0));

    // An order is registered once: the same content (amounts as numbers, lines in any
    // order) is the first registration, other lines are refused.
    let order = |amount: &str, lines: serde_json::Value| json!({"lines": lines, "amount": amount, "currency": "USD"});
    let two = json!([{"sku": "tee", "location": "main", "quantity": 2}, {"sku": "cap", "location": "main", "quantity": 1}]);
    let two_reordered = json!([{"sku": "cap", "location": "main", "quantity": 1}, {"sku": "tee", "location": "main", "quantity": 2}]);
    let (status, reply) = api
        .api(Method::PUT, "/v1/orders/o-1", Some(order("40.00", two)))
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (201, Some("order_registered")),
        "{reply}"
    );
    let (status, reply) = api
        .api(
            Method::PUT,
            "/v1/orders/o-1",
            Some(order("40", two_reordered)),
        )
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (200, Some("order_registered")),
        "{reply}"
    );
    let messages = stream_messages(&h).await;
    let ledger = h.store.canonical_export().await.unwrap();
    let one = json!([{"sku": "tee", "location": "main", "quantity": 1}]);
    let (status, reply) = api
        .api(Method::PUT, "/v1/orders/o-1", Some(order("40.00", one)))
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (409, Some("idempotency_key_reused")),
        "{reply}"
    );
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("order_ref `o-1`"),
        "{reply}"
    );
    assert_eq!(stream_messages(&h).await, messages);
    assert_eq!(h.store.canonical_export().await.unwrap(), ledger);
    let (_, order) = api.api(Method::GET, "/v1/orders/o-1", None).await;
    assert_eq!(order["lines"].as_array().unwrap().len(), 2, "{order}");
    ingress.stop().await;
}

async fn the_ledger_refuses_a_reused_key_that_reached_the_stream(backend: testkit::Backend) {
    let h = Harness::new(backend).await.unwrap();
    let _ledger = h.start_ledger(test_settings()).await.unwrap();
    let ingress = h
        .start_ingress(&ingress_config(&[]).unwrap())
        .await
        .unwrap();
    let api = Client::new(&ingress.url);
    api.receive("tee", 3, "po-1001").await;
    let id = contract::Envelope::new(
        &received("tee", 3, "po-1001"),
        contract::Source {
            provider: "merchant".into(),
            identity: "merchant:receipt:po-1001".into(),
        },
        e2e::now(),
        e2e::now(),
        None,
    )
    .event_id();
    let ledger = h.store.canonical_export().await.unwrap();

    // The second content reaches the stream (as when both requests were published before
    // the first was applied, in different group-commit messages).
    let subject = h.bus.namespace().decision_subject(&id.to_string());
    let mut notices = h.bus.subscribe(subject).await.unwrap();
    let second = envelope(
        "merchant",
        "merchant:receipt:po-1001",
        &received("tee", 99, "po-1001"),
    );
    assert_eq!(second.event_id(), id);
    h.publish_raw(&format!("{id}:second"), second.to_json().expect("encodes"))
        .await
        .unwrap();
    let notice = tokio::time::timeout(WAIT, notices.next())
        .await
        .unwrap()
        .unwrap();
    let notice: bus::DecisionNotice = serde_json::from_slice(&notice.payload).unwrap();
    assert_eq!(
        notice.reason.map(|r| r.as_str()),
        Some("idempotency_key_reused")
    );
    assert_eq!(
        notice.content_digest,
        Some(second.content_digest().to_string())
    );
    assert_eq!(
        h.store.canonical_export().await.unwrap(),
        ledger,
        "nothing recorded"
    );
    assert_eq!(api.stock("tee").await, (3, 0, 0));

    // A request with the second content now is refused by the ingress itself.
    let (status, reply) = api
        .api(
            Method::POST,
            "/v1/stock/receipts",
            Some(json!({"sku": "tee", "location": "main", "quantity": 99, "reference": "po-1001"})),
        )
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (409, Some("idempotency_key_reused")),
        "{reply}"
    );
    ingress.stop().await;
}

async fn a_provider_identity_with_other_content_is_a_conflicting_duplicate(
    backend: testkit::Backend,
) {
    let h = Harness::new(backend).await.unwrap();
    let _ledger = h.start_ledger(test_settings()).await.unwrap();
    let first = envelope("stripe", "stripe:evt_42", &received("mug", 2, "asn-1"));
    let id = first.event_id();
    h.publish_raw(&id.to_string(), first.to_json().expect("encodes"))
        .await
        .unwrap();
    assert!(h.wait_processed(1, WAIT).await.unwrap() >= 1);

    // Other content under the same identity (a different Nats-Msg-Id, as a group would
    // carry it, so JetStream's own duplicate window does not hide it).
    let second = envelope("stripe", "stripe:evt_42", &received("mug", 7, "asn-1"));
    h.publish_raw(&format!("{id}:second"), second.to_json().expect("encodes"))
        .await
        .unwrap();
    assert!(h.wait_processed(2, WAIT).await.unwrap() >= 2);

    let evidence = ConflictEvidence {
        event_id: id,
        first_digest: first.content_digest(),
        second_digest: second.content_digest(),
    };
    let conflict = domain::conflict_id(id, evidence.second_digest);
    assert_eq!(
        h.store.outcome(conflict).await.unwrap(),
        Some(Outcome::NoOp {
            reason: NoOpReason::ConflictingDuplicate(evidence)
        })
    );
    let row = h
        .store
        .processed(&conflict.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.reason, Some(domain::ReasonCode::ConflictingDuplicate));
    let Some(Outcome::Moved { movements }) = h.store.outcome(id).await.unwrap() else {
        panic!("the first outcome is untouched")
    };
    assert_eq!(movements.len(), 1);
    assert_eq!(movements[0].quantity.get(), 2);
    assert_eq!(h.store.balance(&key("mug")).await.unwrap().available, 2);

    // The same conflicting content again is a duplicate of its record: nothing new.
    h.publish_raw(&format!("{id}:third"), second.to_json().expect("encodes"))
        .await
        .unwrap();
    let store = h.store.clone();
    let conflict_text = conflict.to_string();
    eventually("the redelivered conflict counted as a duplicate", || {
        let store = store.clone();
        let conflict_text = conflict_text.clone();
        async move {
            store
                .processed(&conflict_text)
                .await
                .unwrap()
                .is_some_and(|r| r.duplicates == 1)
        }
    })
    .await;
    assert_eq!(h.processed_count().await.unwrap(), 2);
    assert!(h.store.verify().await.unwrap().problems.is_empty());
}
