//! The dead-letter stream and the exception queue through real JetStream and a real
//! database, on SQLite and PostgreSQL: poison messages end in the queue with their raw
//! bytes and do not block the messages behind them; an event that exhausts `max_deliver`
//! is dead-lettered with its evidence; each business exception of the trigger matrix is one
//! row however often its event is delivered; a retry after fixing the cause moves stock
//! once and a second retry is a no-op; a stock correction needs reason, evidence and
//! approver, moves stock once and is audited; dead letters that arrive while the exception
//! consumer is down are all recorded when it comes back; operator actions (resolve, retry,
//! release, keep) are events: over HTTP they give the queue state and trail the ledger
//! records, a release moves `sold → available` once, and a rebuild of the ledger from the
//! stream into a fresh database brings back the same rows and trail, times included.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use domain::{
    AuthorizationMode, Event, EventId, EventKind, FlagReason, Line, Lines, Location, Money,
    OrderLookup, OrderRef, OrderSpec, Payment, Quantity, Sku, StockKey, Timestamp,
};
use e2e::wait::eventually;
use e2e::{Harness, exceptions_settings, test_settings};
use operator::actions::{ActionError, Correction};
use store::QueueFilter;
use testkit::Backend;

use testkit::on_both_backends;

on_both_backends!(
    poison_messages_end_in_the_queue_with_raw_bytes_and_do_not_block,
    an_event_that_exhausts_max_deliver_is_dead_lettered_and_retried_once,
    each_business_exception_is_one_row_despite_three_deliveries,
    retry_after_registering_the_missing_order_moves_stock_once,
    a_correction_needs_reason_evidence_and_approver,
    dead_letters_arriving_while_the_consumer_is_down_are_not_lost,
    the_queue_is_served_over_http_with_the_merchant_token,
    operator_actions_are_events_and_come_back_in_a_rebuild,
);

const WAIT: Duration = Duration::from_secs(60);
/// How long an operator action waits for the ledger in these tests.
const ACTION_WAIT: Duration = Duration::from_secs(15);

fn key(sku: &str) -> StockKey {
    StockKey {
        sku: Sku::parse(sku).expect("sku"),
        location: Location::parse("main").expect("location"),
    }
}

fn event(identity: &str, kind: EventKind) -> (String, Event) {
    let t = e2e::now();
    (
        identity.to_owned(),
        Event {
            id: EventId::from_dedupe_key(identity),
            provider: domain::Provider::named("test"),
            recorded_at: t,
            kind,
        },
    )
}

fn receipt(id: &str, sku: &str, n: u64) -> (String, Event) {
    event(
        id,
        EventKind::StockReceived {
            key: key(sku),
            quantity: Quantity::new(n).expect("qty"),
            reference: id.into(),
        },
    )
}

fn register(order: &str, sku: &str, n: u64, amount: &str) -> (String, Event) {
    let spec = OrderSpec {
        order_ref: OrderRef::parse(order).expect("order"),
        lines: Lines::new(vec![Line {
            key: key(sku),
            quantity: Quantity::new(n).expect("qty"),
        }])
        .expect("lines"),
        amount: Money::parse(amount, "USD").expect("money"),
    };
    event(
        &format!("{order}:register"),
        EventKind::OrderRegistered {
            spec,
            payment_refs: vec![],
        },
    )
}

fn payment(order: &str, amount: Option<&str>) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(OrderRef::parse(order).expect("order")),
        amount: amount.map(|a| Money::parse(a, "USD").expect("money")),
    }
}

fn capture(order: &str, amount: Option<&str>) -> (String, Event) {
    event(
        &format!("{order}:capture"),
        EventKind::PaymentCaptured {
            payment: payment(order, amount),
        },
    )
}

/// Publishes `e` once with its event id as `Nats-Msg-Id`, then `extra` more times with
/// other message ids: a provider delivering the same event again, past JetStream's window.
async fn publish_times(h: &Harness, (identity, e): &(String, Event), times: usize) {
    let env = e2e::envelope(identity, e);
    let id = env.event_id().to_string();
    let subject = h.bus.namespace().event_subject("test", e.kind.name());
    for n in 0..times {
        let msg_id = if n == 0 {
            id.clone()
        } else {
            format!("{id}:delivery:{n}")
        };
        h.bus
            .publish_event(
                subject.clone(),
                &msg_id,
                env.to_json().expect("encodes").into(),
                None,
            )
            .await
            .expect("publish");
    }
}

async fn publish_all(h: &Harness, events: &[(String, Event)]) {
    for e in events {
        publish_times(h, e, 1).await;
    }
}

async fn rows(h: &Harness) -> Vec<store::QueueItem> {
    h.store
        .queue_list(&QueueFilter::default())
        .await
        .expect("queue")
}

async fn available_sold(h: &Harness, sku: &str) -> (i64, i64) {
    let b = h.store.balance(&key(sku)).await.expect("balance");
    (b.available, b.sold)
}

async fn poison_messages_end_in_the_queue_with_raw_bytes_and_do_not_block(backend: Backend) {
    let h = Harness::new(backend).await.expect("harness");
    let exceptions = h
        .start_exceptions(exceptions_settings())
        .await
        .expect("exceptions");
    let ledger = h.start_ledger(test_settings()).await.expect("ledger");
    let undecodable = b"\x00\xffnot json".to_vec();
    let unknown_version = br#"{"schema":"stockledger.event","version":99}"#.to_vec();
    h.publish_raw("poison-1", undecodable.clone())
        .await
        .expect("publish");
    h.publish_raw("poison-2", unknown_version.clone())
        .await
        .expect("publish");
    let behind = [
        receipt("p:receipt", "tee", 5),
        register("p-1", "tee", 2, "20.00"),
        capture("p-1", None),
    ];
    publish_all(&h, &behind).await;
    assert_eq!(
        h.wait_processed(5, WAIT).await.expect("processed"),
        5,
        "the messages behind the poison are processed"
    );
    assert_eq!(available_sold(&h, "tee").await, (3, 2));
    // Both poison messages were terminated: their dead letters reach the queue, which keeps
    // one row each (the ledger's), now with the dead-letter facts.
    eventually("dead-letter facts on both poison rows", || async {
        let r = rows(&h).await;
        r.len() == 2
            && futures::future::join_all(r.iter().map(|i| h.store.queue_item(&i.id)))
                .await
                .into_iter()
                .all(|d| {
                    d.ok()
                        .flatten()
                        .is_some_and(|d| d.evidence.get("dead_letter").is_some())
                })
    })
    .await;
    assert_eq!(h.bus.dlq_depth().await.expect("depth"), 2);
    let stream = h.bus.namespace().events_stream();
    let by_reason: BTreeMap<String, store::QueueDetail> = {
        let mut m = BTreeMap::new();
        for i in rows(&h).await {
            let d = h
                .store
                .queue_item(&i.id)
                .await
                .expect("item")
                .expect("exists");
            m.insert(i.reason.clone(), d);
        }
        m
    };
    let u = &by_reason["undecodable"];
    assert_eq!(u.item.id, format!("{stream}:1"));
    assert_eq!(u.item.state, "open");
    assert_eq!(u.evidence["message"]["raw_hex"], hex(&undecodable));
    assert_eq!(u.evidence["dead_letter"]["reason"], "terminated");
    let v = &by_reason["unknown_schema_version"];
    assert_eq!(
        v.evidence["message"]["raw_utf8"],
        String::from_utf8(unknown_version).expect("utf8")
    );
    // A retry of a message this release cannot decode is refused, recorded, and leaves the
    // row open.
    let actions = h.actions(ACTION_WAIT);
    let refused = actions.retry(&u.item.id, "ops-alice", "try again").await;
    assert!(
        matches!(refused, Err(ActionError::NotRetryable(_))),
        "{refused:?}"
    );
    let after = h
        .store
        .queue_item(&u.item.id)
        .await
        .expect("item")
        .expect("exists");
    assert_eq!(after.item.state, "open");
    assert!(
        after
            .actions
            .iter()
            .any(|a| a.action == "retry" && a.actor == "ops-alice")
    );
    // Resolving it is the recorded no-op.
    let done = actions
        .resolve(&u.item.id, "ops-alice", "garbage from a load test")
        .await
        .expect("resolve");
    assert_eq!(done.result, "resolved");
    assert_eq!(
        actions
            .resolve(&u.item.id, "ops-bob", "again")
            .await
            .expect("resolve")
            .result,
        "already_resolved"
    );
    ledger.stop().await;
    exceptions.stop().await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn an_event_that_exhausts_max_deliver_is_dead_lettered_and_retried_once(backend: Backend) {
    let h = Harness::new(backend).await.expect("harness");
    let exceptions = h
        .start_exceptions(exceptions_settings())
        .await
        .expect("exceptions");
    // A long hold and few deliveries: the capture for an unregistered order is deferred
    // until JetStream gives up on it.
    let mut settings = test_settings();
    settings.unknown_order_hold = Duration::from_secs(600);
    settings.consumer.max_deliver = 3;
    let ledger = h.start_ledger(settings).await.expect("ledger");
    let cap = capture("late-1", None);
    publish_all(&h, &[receipt("m:receipt", "cap", 4), cap.clone()]).await;
    let id = cap.1.id.to_string();
    eventually("a max_deliveries row for the capture", || async {
        rows(&h)
            .await
            .iter()
            .any(|r| r.id == id && r.reason == "max_deliveries")
    })
    .await;
    let d = h
        .store
        .queue_item(&id)
        .await
        .expect("item")
        .expect("exists");
    assert_eq!(
        (d.item.source.as_str(), d.item.state.as_str()),
        ("dlq", "open")
    );
    assert_eq!(d.evidence["event_id"], id.as_str());
    assert_eq!(d.evidence["provider"]["identity"], "late-1:capture");
    assert_eq!(d.evidence["dead_letter"]["deliveries"], 3);
    assert_eq!(h.bus.dlq_depth().await.expect("depth"), 1);
    assert_eq!(available_sold(&h, "cap").await, (4, 0));
    // Fix the cause, then retry: stock moves once.
    publish_all(&h, &[register("late-1", "cap", 1, "10.00")]).await;
    assert_eq!(
        h.wait_processed(2, WAIT).await.expect("processed"),
        2,
        "the capture itself has no outcome yet"
    );
    let actions = h.actions(ACTION_WAIT);
    let r = actions
        .retry(&id, "ops-alice", "order late-1 registered")
        .await
        .expect("retry");
    assert_eq!(r.result, "resolved", "{r:?}");
    assert_eq!(r.msg_id.as_deref(), Some(format!("{id}:retry:1").as_str()));
    assert_eq!(available_sold(&h, "cap").await, (3, 1));
    let again = actions
        .retry(&id, "ops-alice", "again")
        .await
        .expect("retry");
    assert_eq!(again.result, "already_resolved");
    h.settled().await.expect("settled");
    assert_eq!(available_sold(&h, "cap").await, (3, 1));
    assert!(h.store.verify().await.expect("verify").is_ok());
    ledger.stop().await;
    exceptions.stop().await;
}

async fn each_business_exception_is_one_row_despite_three_deliveries(backend: Backend) {
    let h = Harness::new(backend).await.expect("harness");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let exceptions = h
        .start_exceptions(exceptions::ExceptionSettings {
            metrics_addr: Some(metrics_addr.clone()),
            ..exceptions_settings()
        })
        .await
        .expect("exceptions");
    let ledger = h.start_ledger(test_settings()).await.expect("ledger");
    // The stage: stock for one SKU, and orders in the states each exception needs.
    let stage = vec![
        receipt("b:receipt", "biz", 3),
        register("b-void", "biz", 1, "10.00"),
        event(
            "b-void:auth",
            EventKind::PaymentAuthorized {
                payment: payment("b-void", None),
                mode: AuthorizationMode::Notification,
                method: None,
            },
        ),
        capture("b-void", None),
        register("b-over", "none", 1, "10.00"),
        register("b-short", "none", 2, "10.00"),
        register("b-amount", "biz", 1, "10.00"),
        register("b-dispute", "biz", 1, "10.00"),
    ];
    publish_all(&h, &stage).await;
    assert_eq!(
        h.wait_processed(stage.len() as i64, WAIT)
            .await
            .expect("processed"),
        stage.len() as i64
    );
    let problems = vec![
        ("oversold", capture("b-over", None)),
        (
            "void_after_capture",
            event(
                "b-void:void",
                EventKind::PaymentVoided {
                    payment: payment("b-void", None),
                },
            ),
        ),
        (
            "insufficient_at_authorization",
            event(
                "b-short:auth",
                EventKind::PaymentAuthorized {
                    payment: payment("b-short", None),
                    mode: AuthorizationMode::Notification,
                    method: None,
                },
            ),
        ),
        ("amount_mismatch", capture("b-amount", Some("9.00"))),
        (
            "chargeback_review",
            event(
                "b-dispute:cb",
                EventKind::ChargebackOpened {
                    payment: payment("b-dispute", None),
                    dispute_id: domain::DisputeId::parse("dp-1").expect("dispute"),
                    deadline: Some(Timestamp(e2e::now().0 + 7 * 86_400_000)),
                },
            ),
        ),
        ("unknown_order", capture("b-nobody", None)),
        (
            "unverifiable",
            event(
                "b-flag",
                EventKind::PaymentFlagged {
                    payment: payment("b-amount", None),
                    reason: FlagReason::Unverifiable,
                    detail: "no API keys".into(),
                },
            ),
        ),
    ];
    for (_, e) in &problems {
        publish_times(&h, e, 3).await;
    }
    let total = (stage.len() + problems.len()) as i64;
    assert_eq!(
        h.wait_processed(total, WAIT).await.expect("processed"),
        total
    );
    // Every delivery was consumed (two duplicates per problem event) before counting rows.
    eventually("all duplicates consumed", || async {
        let mut dups = 0;
        for (_, (_, e)) in &problems {
            dups += h
                .store
                .processed(&e.id.to_string())
                .await
                .ok()
                .flatten()
                .map_or(0, |p| p.duplicates);
        }
        dups == 2 * problems.len() as i64
    })
    .await;
    let r = rows(&h).await;
    for (reason, (_, e)) in &problems {
        let matching: Vec<_> = r
            .iter()
            .filter(|i| i.event_id == e.id.to_string())
            .collect();
        assert_eq!(matching.len(), 1, "{reason}: one row");
        assert_eq!(matching[0].reason, *reason);
        assert_eq!(matching[0].state, "open");
    }
    assert_eq!(r.len(), problems.len(), "no other rows: {r:#?}");
    let cb = r
        .iter()
        .find(|i| i.reason == "chargeback_review")
        .expect("chargeback row");
    assert!(cb.deadline.is_some(), "the dispute deadline is kept");
    let d = h
        .store
        .queue_item(
            &r.iter()
                .find(|i| i.reason == "oversold")
                .expect("oversold")
                .id,
        )
        .await
        .expect("item")
        .expect("exists");
    assert!(
        d.evidence["stock_at_decision"].is_array()
            && d.evidence["event"]["source"]["identity"] == "b-over:capture",
        "{}",
        d.evidence
    );
    // No dead letter: a business exception is acked, never terminated.
    assert_eq!(h.bus.dlq_depth().await.expect("depth"), 0);
    ingress::install_tls_provider();
    let scrape = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(scrape.status().as_u16(), 200);
    let text = scrape.text().await.expect("metrics text");
    assert!(
        text.contains("stockledger_exceptions_unresolved{reason=\"oversold\",state=\"open\"} 1"),
        "{text}"
    );
    assert!(text.contains("stockledger_dlq_depth 0"), "{text}");
    ledger.stop().await;
    exceptions.stop().await;
}

async fn retry_after_registering_the_missing_order_moves_stock_once(backend: Backend) {
    let h = Harness::new(backend).await.expect("harness");
    let ledger = h.start_ledger(test_settings()).await.expect("ledger");
    let cap = capture("r-1", None);
    publish_all(&h, &[receipt("r:receipt", "ret", 5), cap.clone()]).await;
    assert_eq!(h.wait_processed(2, WAIT).await.expect("processed"), 2);
    let id = cap.1.id.to_string();
    let row = h
        .store
        .queue_item(&id)
        .await
        .expect("item")
        .expect("an unknown_order exception");
    assert_eq!(
        (row.item.reason.as_str(), row.item.state.as_str()),
        ("unknown_order", "open")
    );
    let actions = h.actions(ACTION_WAIT);
    // Retried before the cause is fixed: the exception stands and the row is open again.
    let early = actions
        .retry(&id, "ops-alice", "maybe it arrived")
        .await
        .expect("retry");
    assert_eq!(
        (early.result.as_str(), early.reason.as_deref()),
        ("open", Some("unknown_order")),
        "{early:?}"
    );
    assert_eq!(available_sold(&h, "ret").await, (5, 0));
    // Register the order, then retry: the stock moves once.
    publish_all(&h, &[register("r-1", "ret", 2, "20.00")]).await;
    // Four outcomes: the receipt, the capture's exception, the early retry (an
    // `exception.action` event of its own) and the registration. Waiting for three raced.
    assert_eq!(h.wait_processed(4, WAIT).await.expect("processed"), 4);
    let fixed = actions
        .retry(&id, "ops-alice", "order r-1 registered")
        .await
        .expect("retry");
    assert_eq!(fixed.result, "resolved", "{fixed:?}");
    assert_eq!(fixed.attempt, Some(2));
    assert_eq!(available_sold(&h, "ret").await, (3, 2));
    // Again: nothing is published, nothing moves.
    let again = actions
        .retry(&id, "ops-bob", "just in case")
        .await
        .expect("retry");
    assert_eq!(again.result, "already_resolved");
    // Even a raw re-publish with the operator header (a replay) moves nothing: the outcome is final.
    let env = h.store.pool();
    let envelope: String =
        store::sqlx::query_scalar("SELECT envelope FROM processed_events WHERE event_id = $1")
            .bind(&id)
            .fetch_one(env)
            .await
            .expect("envelope");
    h.bus
        .publish_operator_retry(
            h.bus.namespace().event_subject("test", "payment.captured"),
            &format!("{id}:retry:99"),
            envelope.into_bytes().into(),
            "test",
        )
        .await
        .expect("publish");
    h.settled().await.expect("settled");
    assert_eq!(available_sold(&h, "ret").await, (3, 2));
    let d = h
        .store
        .queue_item(&id)
        .await
        .expect("item")
        .expect("exists");
    assert_eq!(d.item.state, "resolved");
    let trail: Vec<(String, String, String)> = d
        .actions
        .iter()
        .map(|a| (a.action.clone(), a.actor.clone(), a.result.clone()))
        .collect();
    assert!(
        trail.contains(&(
            "retry_result".into(),
            "ledger".into(),
            "still unknown_order".into()
        )),
        "{trail:?}"
    );
    assert_eq!(
        trail.iter().filter(|(a, _, _)| a == "retry").count(),
        3,
        "{trail:?}"
    );
    assert_eq!(
        d.outcomes
            .iter()
            .map(|o| o.outcome.as_str())
            .collect::<Vec<_>>(),
        ["exception", "moved"]
    );
    assert!(h.store.verify().await.expect("verify").is_ok());
    ledger.stop().await;
}

async fn a_correction_needs_reason_evidence_and_approver(backend: Backend) {
    let h = Harness::new(backend).await.expect("harness");
    let ledger = h.start_ledger(test_settings()).await.expect("ledger");
    publish_all(&h, &[receipt("c:receipt", "cor", 2)]).await;
    assert_eq!(h.wait_processed(1, WAIT).await.expect("processed"), 1);
    let actions = h.actions(ACTION_WAIT);
    let full = Correction {
        sku: "cor".into(),
        location: "main".into(),
        delta: 3,
        reason: "cycle count".into(),
        evidence: "count sheet CS-7".into(),
        approved_by: "ops-lead".into(),
        actor: "ops-alice".into(),
        idempotency_key: Some("cc-7".into()),
    };
    for missing in [
        Correction {
            reason: String::new(),
            ..full.clone()
        },
        Correction {
            evidence: " ".into(),
            ..full.clone()
        },
        Correction {
            approved_by: String::new(),
            ..full.clone()
        },
    ] {
        let r = actions.correct_stock(&missing).await;
        assert!(matches!(r, Err(ActionError::Invalid(_))), "{r:?}");
    }
    h.settled().await.expect("settled");
    assert_eq!(
        h.processed_count().await.expect("count"),
        1,
        "nothing was published"
    );
    let done = actions.correct_stock(&full).await.expect("correct");
    assert_eq!(done.outcome, "moved", "{done:?}");
    assert_eq!(available_sold(&h, "cor").await, (5, 0));
    // The same correction again (same idempotency key): applied once.
    let again = actions.correct_stock(&full).await.expect("correct");
    assert_eq!(again.event_id, done.event_id);
    h.settled().await.expect("settled");
    assert_eq!(available_sold(&h, "cor").await, (5, 0));
    let trail = h
        .store
        .actions(&format!("stock:{}", done.event_id))
        .await
        .expect("trail");
    assert!(
        trail.iter().all(|a| a.action == "stock_correct"
            && a.actor == "ops-alice"
            && a.reason == "cycle count"),
        "{trail:?}"
    );
    assert!(trail.iter().any(|a| a.result == "moved"), "{trail:?}");
    assert_eq!(trail[0].detail["approved_by"], "ops-lead");
    // A correction that would make `available` negative is refused by the ledger.
    let too_much = Correction {
        delta: -50,
        idempotency_key: Some("cc-8".into()),
        ..full.clone()
    };
    let refused = actions.correct_stock(&too_much).await.expect("correct");
    assert_eq!(
        (refused.outcome.as_str(), refused.reason.map(|r| r.as_str())),
        ("noop", Some("refused:correction_would_go_negative"))
    );
    assert_eq!(available_sold(&h, "cor").await, (5, 0));
    assert!(h.store.verify().await.expect("verify").is_ok());
    ledger.stop().await;
}

async fn dead_letters_arriving_while_the_consumer_is_down_are_not_lost(backend: Backend) {
    let h = Harness::new(backend).await.expect("harness");
    let mut settings = test_settings();
    settings.unknown_order_hold = Duration::from_secs(600);
    settings.consumer.max_deliver = 2;
    // The exception consumer starts (creating its durables) and goes down at once.
    h.start_exceptions(exceptions_settings())
        .await
        .expect("exceptions")
        .kill()
        .await;
    let ledger = h.start_ledger(settings).await.expect("ledger");
    h.publish_raw("down-poison", b"{not json".to_vec())
        .await
        .expect("publish");
    let deferred: Vec<_> = (0..3)
        .map(|i| capture(&format!("down-{i}"), None))
        .collect();
    publish_all(&h, &deferred).await;
    eventually(
        "four advisories captured while the consumer is down",
        || async { h.bus.advisories_pending().await.unwrap_or(0) == 4 },
    )
    .await;
    assert_eq!(h.bus.dlq_depth().await.expect("depth"), 0);
    assert_eq!(
        rows(&h).await.len(),
        1,
        "only the ledger's own row for the poison message"
    );
    let exceptions = h
        .start_exceptions(exceptions_settings())
        .await
        .expect("exceptions");
    eventually("every dead letter recorded", || async {
        let r = rows(&h).await;
        r.iter().filter(|i| i.reason == "max_deliveries").count() == 3 && r.len() == 4
    })
    .await;
    assert_eq!(h.bus.dlq_depth().await.expect("depth"), 4);
    eventually("the advisory stream drained", || async {
        h.bus.advisories_pending().await.unwrap_or(1) == 0
    })
    .await;
    for (_, e) in &deferred {
        let d = h
            .store
            .queue_item(&e.id.to_string())
            .await
            .expect("item")
            .expect("row for each deferred capture");
        assert_eq!(d.item.source, "dlq");
    }
    // Restarting the consumer again records nothing twice.
    exceptions.stop().await;
    let exceptions = h
        .start_exceptions(exceptions_settings())
        .await
        .expect("exceptions");
    eventually(
        "the restarted consumer has nothing left to read",
        || async {
            let mut dlq = h.bus.dlq_consumer().await.expect("dlq consumer");
            let info = dlq.info().await.expect("info");
            info.num_pending == 0 && info.num_ack_pending == 0
        },
    )
    .await;
    assert_eq!(rows(&h).await.len(), 4);
    exceptions.stop().await;
    ledger.stop().await;
}

async fn the_queue_is_served_over_http_with_the_merchant_token(backend: Backend) {
    let h = Harness::new(backend).await.expect("harness");
    let ledger = h.start_ledger(test_settings()).await.expect("ledger");
    let ingress = h
        .start_ingress(&e2e::ingress_config(&[]).expect("config"))
        .await
        .expect("ingress");
    ingress::install_tls_provider();
    let client = e2e::http::Client::new(&ingress.url);
    h.publish_raw("http-poison", b"{not json".to_vec())
        .await
        .expect("publish");
    assert_eq!(h.wait_processed(1, WAIT).await.expect("processed"), 1);
    let unauthenticated = reqwest::get(format!("{}/v1/exceptions", ingress.url))
        .await
        .expect("get");
    assert_eq!(unauthenticated.status().as_u16(), 401);
    let (status, body) = client
        .api(
            reqwest::Method::GET,
            "/v1/exceptions?state=open&reason=undecodable",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["exceptions"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let (status, body) = client
        .api(reqwest::Method::GET, &format!("/v1/exceptions/{id}"), None)
        .await;
    assert_eq!(
        (status, body["evidence"]["message"]["raw_utf8"].as_str()),
        (200, Some("{not json")),
        "{body}"
    );
    let (status, _) = client
        .api(reqwest::Method::GET, "/v1/exceptions/nope", None)
        .await;
    assert_eq!(status, 404);
    let (status, body) = client
        .api(reqwest::Method::GET, "/v1/exceptions?state=closed", None)
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("malformed")));
    let (status, body) = client
        .api(
            reqwest::Method::POST,
            &format!("/v1/exceptions/{id}/resolve"),
            Some(serde_json::json!({"reason": "x"})),
        )
        .await;
    assert_eq!(status, 400, "the actor is required: {body}");
    let who = serde_json::json!({"actor": "console:ann", "reason": "load-test garbage"});
    let (status, body) = client
        .api(
            reqwest::Method::POST,
            &format!("/v1/exceptions/{id}/retry"),
            Some(who.clone()),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_retryable")),
        "{body}"
    );
    let (status, body) = client
        .api(
            reqwest::Method::POST,
            &format!("/v1/exceptions/{id}/resolve"),
            Some(who),
        )
        .await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("resolved")),
        "{body}"
    );
    let d = h
        .store
        .queue_item(&id)
        .await
        .expect("item")
        .expect("exists");
    assert!(
        d.actions
            .iter()
            .any(|a| a.action == "resolve" && a.actor == "console:ann")
    );
    ingress.stop().await;
    ledger.stop().await;
}

fn void(order: &str) -> (String, Event) {
    event(
        &format!("{order}:void"),
        EventKind::PaymentVoided {
            payment: payment(order, None),
        },
    )
}

/// Every exception with its evidence, trail and outcomes, newest first.
async fn queue_snapshot(store: &store::Store) -> Vec<store::QueueDetail> {
    let mut out = Vec::new();
    for i in store
        .queue_list(&QueueFilter::default())
        .await
        .expect("queue")
    {
        out.push(store.queue_item(&i.id).await.expect("item").expect("row"));
    }
    out
}

async fn operator_actions_are_events_and_come_back_in_a_rebuild(backend: Backend) {
    let h = Harness::new(backend).await.expect("harness");
    let ledger = h.start_ledger(test_settings()).await.expect("ledger");
    let ingress = h
        .start_ingress(&e2e::ingress_config(&[]).expect("config"))
        .await
        .expect("ingress");
    ingress::install_tls_provider();
    let client = e2e::http::Client::new(&ingress.url);
    // Two sales voided after capture, an oversold capture and another to resolve.
    let stage = [
        receipt("op:receipt", "vac", 10),
        register("v-rel", "vac", 2, "20.00"),
        register("v-keep", "vac", 1, "10.00"),
        capture("v-rel", None),
        capture("v-keep", None),
        void("v-rel"),
        void("v-keep"),
        register("o-over", "short", 1, "10.00"),
        capture("o-over", None),
        register("o-res", "short", 1, "10.00"),
        capture("o-res", None),
    ];
    publish_all(&h, &stage).await;
    let n = stage.len() as i64;
    assert_eq!(h.wait_processed(n, WAIT).await.expect("processed"), n);
    assert_eq!(available_sold(&h, "vac").await, (7, 3));
    let id = |i: usize| stage[i].1.id.to_string();
    let (rel, keep, over, res) = (id(5), id(6), id(8), id(10));
    let post = |id: &str, action: &str, reason: &str| {
        let (client, path) = (&client, format!("/v1/exceptions/{id}/{action}"));
        let body =
            serde_json::json!({"actor": "console:ann", "reason": reason, "evidence": "ticket T-9"});
        async move { client.api(reqwest::Method::POST, &path, Some(body)).await }
    };
    // release: sold → available once; again: nothing.
    let (status, body) = post(&rel, "release", "parcel never left").await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("released")),
        "{body}"
    );
    assert_eq!(available_sold(&h, "vac").await, (9, 1));
    let (status, body) = post(&rel, "release", "again").await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("already_resolved")),
        "{body}"
    );
    assert_eq!(available_sold(&h, "vac").await, (9, 1));
    let order = h
        .store
        .order(&OrderRef::parse("v-rel").expect("order"))
        .await
        .expect("order")
        .expect("exists");
    assert_eq!(order.state, domain::OrderState::Released);
    // keep: recorded, nothing moves. release/keep of another reason: 409, nothing published.
    let (status, body) = post(&keep, "keep", "shipped; finance follows up").await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("kept")),
        "{body}"
    );
    assert_eq!(available_sold(&h, "vac").await, (9, 1));
    let before = h.processed_count().await.expect("count");
    let (status, body) = post(&over, "release", "wrong").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_void_after_capture")),
        "{body}"
    );
    let (status, _) = post("nope", "keep", "x").await;
    assert_eq!(status, 404);
    assert_eq!(h.processed_count().await.expect("count"), before);
    // resolve, and retry before and after the fix.
    let (status, body) = post(&res, "resolve", "refunded instead").await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("resolved")),
        "{body}"
    );
    let (status, body) = post(&over, "retry", "maybe").await;
    assert_eq!(
        (status, body["result"].as_str(), body["reason"].as_str()),
        (200, Some("open"), Some("oversold")),
        "{body}"
    );
    publish_all(&h, &[receipt("op:receipt-2", "short", 1)]).await;
    let (status, body) = post(&over, "retry", "stock received").await;
    assert_eq!(
        (status, body["result"].as_str(), body["attempt"].as_i64()),
        (200, Some("resolved"), Some(2)),
        "{body}"
    );
    assert_eq!(available_sold(&h, "short").await, (0, 1));
    // The queue as the operator sees it.
    let live = queue_snapshot(&h.store).await;
    let state = |id: &str| {
        let d = live.iter().find(|d| d.item.id == id).expect("row");
        (d.item.state.clone(), d.item.resolution.clone())
    };
    assert_eq!(
        state(&rel),
        (
            "resolved".into(),
            Some("released by console:ann: parcel never left".into())
        )
    );
    assert_eq!(
        state(&keep),
        (
            "resolved".into(),
            Some("kept by console:ann (the goods left): shipped; finance follows up".into())
        )
    );
    assert_eq!(
        state(&res),
        (
            "resolved".into(),
            Some("no-op by console:ann: refunded instead".into())
        )
    );
    assert_eq!(
        state(&over),
        ("resolved".into(), Some("retried: moved".into()))
    );
    let trail = |id: &str| -> Vec<(String, String, String)> {
        let d = live.iter().find(|d| d.item.id == id).expect("row");
        d.actions
            .iter()
            .map(|a| (a.action.clone(), a.actor.clone(), a.result.clone()))
            .collect()
    };
    let t = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        trail(&rel),
        [
            t("release", "console:ann", "released"),
            t("release", "console:ann", "noop: already resolved")
        ]
    );
    assert_eq!(trail(&keep), [t("keep", "console:ann", "kept")]);
    assert_eq!(
        trail(&over),
        [
            t("retry", "console:ann", "retried"),
            t("retry_result", "ledger", "still oversold"),
            t("retry", "console:ann", "retried"),
            t("retry_result", "ledger", "resolved: retried: moved"),
        ]
    );
    let rel_trail = &live.iter().find(|d| d.item.id == rel).expect("row").actions;
    assert_eq!(rel_trail[0].detail["evidence"], "ticket T-9");
    assert!(h.store.verify().await.expect("verify").is_ok());
    ingress.stop().await;
    ledger.stop().await;
    // Rebuilt from the stream into a fresh database: the same queue, trail and stock.
    let db = testkit::TestDatabase::new(backend).await.expect("database");
    let fresh = store::Store::connect(db.url(), &store::StoreOptions::default())
        .await
        .expect("fresh store");
    ledger::replay::rebuild(
        &h.bus,
        &fresh,
        false,
        Duration::ZERO,
        domain::ReservationTtls::documented_ref(),
        |_, _| {},
    )
    .await
    .expect("rebuild");
    let rebuilt = queue_snapshot(&fresh).await;
    assert_eq!(rebuilt.len(), live.len());
    for (a, b) in live.iter().zip(&rebuilt) {
        assert_eq!(a, b, "exception {} differs after the rebuild", a.item.id);
    }
    for sku in ["vac", "short"] {
        assert_eq!(
            fresh.balance(&key(sku)).await.expect("balance"),
            h.store.balance(&key(sku)).await.expect("balance"),
            "{sku}"
        );
    }
}
