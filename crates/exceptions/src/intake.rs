//! From JetStream's advisories to rows of the exception queue, in two idempotent steps.
//!
//! 1. An advisory (captured durably by the advisory stream) becomes a dead letter: the
//!    original message fetched by its stream sequence and written to the dead-letter
//!    stream ([`bus::Bus::dead_letter`]), then the advisory is acknowledged.
//! 2. A dead letter becomes a row with its evidence ([`describe`]), then it is acknowledged.
//!
//! A crash between any two steps repeats the step, and each step is idempotent (one dead
//! letter per source message, one row per event id or stream position), so nothing is lost
//! and nothing is doubled. A message the ledger terminated after recording it as
//! unprocessable has the same key (`<stream>:<sequence>`) as its dead letter: it stays one
//! row, which gains the dead-letter facts.

use bus::dlq::{self, DeadLetter, DeadReason};
use bus::{Bus, Disposition};
use contract::DecodeError;
use domain::{EventKind, OrderLookup, OrderRef, StockKey};
use futures::StreamExt;
use serde_json::{Value, json};
use service::shutdown::CancellationToken;
use store::{NewDeadLetter, Store};

use crate::{ExceptionSettings, ExceptionsError, now};

/// Reads captured advisories and writes their dead letters until `stop`.
pub async fn run_advisories(
    bus: Bus,
    settings: ExceptionSettings,
    stop: CancellationToken,
) -> Result<(), ExceptionsError> {
    let consumer = bus.advisory_consumer().await?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(bus::BusError::unavailable)?;
    tracing::info!("advisory intake started");
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            m = messages.next() => m,
        };
        let msg = match next {
            None => break,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "advisory pull error");
                continue;
            }
        };
        let disposition = match dlq::parse_advisory(&msg.subject, &msg.payload) {
            Err(e) => {
                // An advisory we cannot read never will be readable: keep it out of the way.
                tracing::error!(error = %e, "unreadable advisory terminated");
                Disposition::Terminate
            }
            Ok(adv) => match bus.dead_letter(&adv).await {
                Ok(done) => {
                    tracing::info!(
                        stream_seq = adv.stream_seq,
                        reason = adv.reason.code(),
                        ?done,
                        "dead letter written"
                    );
                    Disposition::Done
                }
                Err(e) => {
                    tracing::warn!(error = %e, stream_seq = adv.stream_seq, "dead letter not written; will retry");
                    Disposition::Later(settings.retry_delay)
                }
            },
        };
        bus::settle(&msg, disposition, "message").await;
    }
    tracing::info!("advisory intake stopped");
    Ok(())
}

/// Reads dead letters and records them in the exception queue until `stop`.
pub async fn run_dead_letters(
    bus: Bus,
    store: Store,
    settings: ExceptionSettings,
    stop: CancellationToken,
) -> Result<(), ExceptionsError> {
    let consumer = bus.dlq_consumer().await?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(bus::BusError::unavailable)?;
    tracing::info!("dead-letter intake started");
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            m = messages.next() => m,
        };
        let msg = match next {
            None => break,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "dead-letter pull error");
                continue;
            }
        };
        let disposition = match dlq::read_dead_letter(&msg) {
            Err(e) => {
                tracing::error!(error = %e, "unreadable dead letter terminated");
                Disposition::Terminate
            }
            Ok(dl) => match record(&store, &dl).await {
                Ok(()) => Disposition::Done,
                Err(e) => {
                    tracing::warn!(error = %e, stream_seq = dl.stream_seq, "dead letter not recorded; will retry");
                    Disposition::Later(settings.retry_delay)
                }
            },
        };
        bus::settle(&msg, disposition, "message").await;
    }
    tracing::info!("dead-letter intake stopped");
    Ok(())
}

/// Records one dead letter as a problem of the exception queue (once).
pub async fn record(store: &Store, dl: &DeadLetter) -> Result<(), store::StoreError> {
    let new = describe(store, dl).await?;
    let recorded = store.queue_record_dead_letter(&new, now().0).await?;
    tracing::info!(id = %new.id, reason = %new.reason, ?recorded, "dead letter recorded");
    Ok(())
}

/// The payload as evidence: text when it is UTF-8 without NUL (PostgreSQL text refuses
/// NUL), hex otherwise. The same shape the ledger uses for unprocessable messages.
pub fn raw_evidence(raw: &[u8]) -> Value {
    match std::str::from_utf8(raw) {
        Ok(s) if !s.contains('\0') => json!({"raw_utf8": s}),
        _ => json!({"raw_hex": raw.iter().map(|b| format!("{b:02x}")).collect::<String>()}),
    }
}

/// The reason code and detail of a message that does not decode (`message` is its key,
/// `<stream>:<sequence>`), as the ledger records them, so that both reports of one message
/// agree ([`store::unprocessable_exception`]).
pub fn decode_reason(e: &DecodeError, message: &str) -> (&'static str, String) {
    let (reason, detail) = store::unprocessable_exception(e, message);
    (reason.code(), detail)
}

/// The (SKU, location) an event concerns when it is about one line: a stock event's key,
/// or the only line of the order it names.
fn line_of(kind: &EventKind, order: Option<&domain::Order>) -> Option<StockKey> {
    if let EventKind::StockReceived { key, .. } | EventKind::StockCorrected { key, .. } = kind {
        return Some(key.clone());
    }
    let mut keys = order?.spec.lines.keys();
    match (keys.next(), keys.next()) {
        (Some(only), None) => Some(only.clone()),
        _ => None,
    }
}

/// The order a payment event names by a provider's payment reference, when that reference
/// is attached to one.
async fn by_payment_ref(
    store: &Store,
    kind: &EventKind,
) -> Result<Option<OrderRef>, store::StoreError> {
    let Some(OrderLookup::PaymentRef {
        provider,
        payment_ref,
    }) = kind.payment().map(|p| &p.order)
    else {
        return Ok(None);
    };
    let order = store
        .payment_ref_order(provider.as_str(), payment_ref.as_str())
        .await?;
    // A stored reference that no longer parses names no order we can show.
    Ok(order.and_then(|o| OrderRef::parse(o).ok()))
}

/// What happened to a dead letter's event and what to do, in a sentence.
fn dead_letter_sentence(dl: &DeadLetter, kind: &EventKind, event_id: &str) -> String {
    let about = match kind.payment() {
        Some(p) => format!(" for {}", domain::explain::order_named(&p.order)),
        None => match order_of(kind) {
            Some(r) => format!(" for order {r}"),
            None => String::new(),
        },
    };
    let what = format!("{}{about} (event {event_id})", kind.name());
    match dl.reason {
        DeadReason::MaxDeliveries => format!(
            "The {what} was delivered {} times to consumer {} without being acknowledged, and \
             JetStream gave up on it; nothing was applied. Find the cause in that consumer's \
             logs around this time (a database outage, an order still unregistered, a bug), fix \
             it, then retry this exception.",
            dl.deliveries, dl.consumer
        ),
        DeadReason::Terminated => format!(
            "The {what} was terminated by consumer {} as a permanent failure; nothing was \
             applied. Check that consumer's logs; retry this exception if the ledger should \
             apply the event (a retry is deduplicated by its event id), else resolve it.",
            dl.consumer
        ),
    }
}

/// The order an event names by reference, if it names one that way.
pub fn order_of(kind: &EventKind) -> Option<OrderRef> {
    match kind {
        EventKind::OrderRegistered { spec, .. } => Some(spec.order_ref.clone()),
        EventKind::PaymentRefAttached { order_ref, .. }
        | EventKind::ReservationExpired { order_ref, .. }
        | EventKind::ReturnReceived { order_ref, .. } => Some(order_ref.clone()),
        other => other.payment().and_then(|p| match &p.order {
            OrderLookup::OrderRef(r) => Some(r.clone()),
            OrderLookup::PaymentRef { .. } => None,
        }),
    }
}

/// Builds the row for a dead letter: its key, reason, detail and evidence (raw message,
/// headers, dead-letter facts, the decoded event, its provider identity, the order, and
/// the stock of the SKUs involved now).
pub async fn describe(store: &Store, dl: &DeadLetter) -> Result<NewDeadLetter, store::StoreError> {
    let headers: Vec<Value> = dl.headers.iter().map(|(k, v)| json!([k, v])).collect();
    let facts = json!({
        "reason": dl.reason.code(),
        "stream": dl.stream,
        "stream_seq": dl.stream_seq,
        "consumer": dl.consumer,
        "deliveries": dl.deliveries,
        "subject": dl.subject,
        "dlq_seq": dl.dlq_seq,
        "original_found": dl.original_found,
    });
    let position = format!("{}:{}", dl.stream, dl.stream_seq);
    let mut evidence = json!({"message": raw_evidence(&dl.payload), "headers": headers, "dead_letter": facts, "stream_seq": dl.stream_seq});
    if !dl.original_found {
        return Ok(NewDeadLetter {
            reason: dl.reason.code().to_owned(),
            detail: format!(
                "Message {position} was no longer in its stream when JetStream gave up on it \
                 ({}, consumer {}), so its content is unknown; nothing was applied. Check that \
                 consumer's logs around this time and the stream's retention, then resolve \
                 this exception.",
                dl.reason.code(),
                dl.consumer
            ),
            id: position,
            evidence,
            order_ref: None,
            sku: None,
            location: None,
            stream_seq: dl.stream_seq,
            already_final: None,
        });
    }
    let (envelope, event) = match contract::decode_event(&dl.payload) {
        Ok(decoded) => decoded,
        Err(e) => {
            let (reason, detail) = decode_reason(&e, &position);
            return Ok(NewDeadLetter {
                reason: reason.to_owned(),
                detail,
                id: position,
                evidence,
                order_ref: None,
                sku: None,
                location: None,
                stream_seq: dl.stream_seq,
                already_final: None,
            });
        }
    };
    let id = event.id.to_string();
    let order_ref = match order_of(&event.kind) {
        Some(r) => Some(r),
        None => by_payment_ref(store, &event.kind).await?,
    };
    let order = match &order_ref {
        Some(r) => store.order(r).await?,
        None => None,
    };
    let mut keys: Vec<StockKey> = order
        .iter()
        .flat_map(|o| o.spec.lines.keys().cloned())
        .collect();
    if let EventKind::StockReceived { key, .. } | EventKind::StockCorrected { key, .. } =
        &event.kind
    {
        keys.push(key.clone());
    }
    let mut stock = Vec::with_capacity(keys.len());
    for key in &keys {
        let b = store.balance(key).await?;
        stock.push(
            json!({"sku": key.sku.as_str(), "location": key.location.as_str(), "balance": b}),
        );
    }
    if let Some(map) = evidence.as_object_mut() {
        map.insert(
            "event".into(),
            serde_json::to_value(&envelope).unwrap_or(Value::Null),
        );
        map.insert("event_id".into(), json!(id));
        map.insert(
            "provider".into(),
            json!({"provider": envelope.source.provider, "identity": envelope.source.identity}),
        );
        map.insert(
            "order".into(),
            serde_json::to_value(&order).unwrap_or(Value::Null),
        );
        map.insert("stock_at_dead_letter".into(), json!(stock));
    }
    let already_final = store
        .processed(&id)
        .await?
        .filter(|p| p.outcome != domain::OutcomeKind::Exception)
        .map(|p| {
            // The reason's name, or for a movement (no reason) the outcome's: `moved`.
            let code = p
                .reason
                .map_or(p.outcome.as_str(), domain::ReasonCode::as_str);
            format!("already processed: {code}")
        });
    let detail = dead_letter_sentence(dl, &event.kind, &id);
    let line = line_of(&event.kind, order.as_ref());
    Ok(NewDeadLetter {
        id,
        reason: dl.reason.code().to_owned(),
        detail,
        evidence,
        order_ref: order_ref.map(|r| r.as_str().to_owned()),
        sku: line.as_ref().map(|k| k.sku.as_str().to_owned()),
        location: line.as_ref().map(|k| k.location.as_str().to_owned()),
        stream_seq: dl.stream_seq,
        already_final,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_are_kept_as_text_or_hex() {
        assert_eq!(raw_evidence(b"{}"), json!({"raw_utf8": "{}"}));
        assert_eq!(raw_evidence(b"a\0"), json!({"raw_hex": "6100"}));
        assert_eq!(raw_evidence(&[0xff]), json!({"raw_hex": "ff"}));
    }

    /// A dead letter's sentence names the event kind, its order, event id, consumer and
    /// deliveries in plain text, and what to do.
    #[test]
    fn a_dead_letter_reads_as_a_sentence() {
        let dl = DeadLetter {
            reason: DeadReason::MaxDeliveries,
            stream: "X_EVENTS".into(),
            consumer: "ledger".into(),
            stream_seq: 7,
            deliveries: 100,
            subject: "x.events.payment".into(),
            headers: Vec::new(),
            payload: Default::default(),
            original_found: true,
            dlq_seq: 1,
        };
        let kind = EventKind::PaymentCaptured {
            payment: domain::Payment {
                order: OrderLookup::OrderRef(OrderRef::parse("GHOST-1").expect("order")),
                amount: None,
            },
        };
        let text = dead_letter_sentence(&dl, &kind, "e-1");
        assert!(
            text.contains("payment.captured for order GHOST-1 (event e-1)")
                && text.contains("100 times to consumer ledger")
                && text.contains("retry this exception"),
            "{text}"
        );
        assert!(!domain::explain::shows_debug_text(&text), "{text}");
    }

    #[test]
    fn decode_errors_map_to_the_ledgers_reason_codes() {
        let e = contract::decode_event(br#"{"schema":"stockledger.event","version":99}"#)
            .expect_err("unknown version");
        let (code, detail) = decode_reason(&e, "X_EVENTS:7");
        assert_eq!(code, "unknown_schema_version");
        assert!(
            detail.contains("Message X_EVENTS:7") && detail.contains("version 99"),
            "{detail}"
        );
        let e = contract::decode_event(b"nope").expect_err("not json");
        assert_eq!(decode_reason(&e, "X_EVENTS:8").0, "undecodable");
    }
}
