//! The merchant API's writes. Each is a contract event like any other: built from the
//! request, published, and answered with the ledger's decision (200/201), 409 (404 for an
//! unknown order or return) when the ledger refused it, or 202 with the event id when the
//! decision is not back within `STOCKLEDGER_CONFIRMATION_DEADLINE`.
//!
//! Event identities (dedupe keys), so that a retried request is the same event:
//!
//! | endpoint | identity |
//! | --- | --- |
//! | `PUT /v1/orders/{order_ref}` | `merchant:order:{order_ref}:{sha256 of the canonical content}` |
//! | `POST /v1/orders/{order_ref}/payment-refs` | `merchant:payment-ref:{order_ref}:{provider}:{ref}` |
//! | `POST /v1/stock/receipts` | `merchant:receipt:{reference}` |
//! | `POST /v1/returns` | `merchant:return:{reference}` |
//! | `POST /v1/returns/{reference}/inspection` | `merchant:inspection:{reference}:{sha256 of the canonical content}` |
//!
//! The receipt's and the return's `reference` is their idempotency key: a second request
//! with the same reference is the same event, answered with the first one's outcome, and
//! moves nothing again, even if its body differs.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{
    EventKind, Lines, Money, OrderRef, OrderSpec, PaymentRef, Provider, ReturnRef, StockKey,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::decision::{self, Decided, Waited};
use crate::error::ApiError;
use crate::input::{self, Obj};
use crate::publish::{MERCHANT, Outgoing};
use crate::{AppState, RawBody};

/// Refusal reasons answered with 404 rather than 409.
const NOT_FOUND_REASONS: [&str; 2] = ["refused:unknown_order", "refused:unknown_return"];

/// Publishes `out`, waits for the decision, and measures the wait.
async fn submit(state: &AppState, out: &Outgoing) -> Result<Waited, ApiError> {
    let started = Instant::now();
    let waited =
        decision::publish_and_wait(state, out, started + state.settings.confirmation_deadline)
            .await?;
    state.metrics.merchant_decision(started.elapsed());
    Ok(waited)
}

/// The answer to a write: `created` says whether a fresh (not repeated) decision means
/// something new exists (201) rather than an accepted change or no-op (200).
fn answer(
    out: &Outgoing,
    waited: Waited,
    created: impl Fn(&Decided) -> bool,
) -> Result<Response, ApiError> {
    let event_id = out.event_id.to_string();
    let d = match waited {
        Waited::Pending => {
            let body = json!({"event_id": event_id, "status": "pending",
                "message": "accepted; the ledger's decision is not back yet: see GET /v1/orders/… or retry the same request"});
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
        Waited::Decided(d) => d,
    };
    if let Some(reason) = d.reason.as_deref().filter(|r| r.starts_with("refused:")) {
        let message = format!("the ledger refused event {event_id}: {}", describe(reason));
        return Err(if NOT_FOUND_REASONS.contains(&reason) {
            ApiError::NotFound {
                code: reason.to_owned(),
                message,
            }
        } else {
            ApiError::Refused {
                code: reason.to_owned(),
                message,
            }
        });
    }
    let body = json!({"event_id": event_id, "outcome": d.outcome, "reason": d.reason, "repeated": d.earlier});
    let status = if d.outcome == "exception" {
        // Accepted, and waiting for a person (see the exception queue under this id).
        StatusCode::ACCEPTED
    } else if !d.earlier && created(&d) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}

/// A sentence for a refusal reason code.
fn describe(reason: &str) -> &'static str {
    match reason {
        "refused:order_changed_after_stock_moved" => {
            "the order cannot change after stock moved for it"
        }
        "refused:payment_ref_in_use" => "the payment reference belongs to another order",
        "refused:unknown_order" => "the order is not registered",
        "refused:unknown_return" => "no return with this reference was received",
        "refused:return_of_unsold_order" => "the order was not sold, so nothing can come back",
        "refused:return_exceeds_sold" => "more units would come back than were sold",
        "refused:return_reference_in_use" => "the return reference was used for another return",
        "refused:inspection_exceeds_returned" => {
            "more units inspected than are waiting in returned"
        }
        "refused:invalid_quantity" => "a quantity is zero or beyond the limit",
        _ => "see the reason code",
    }
}

fn sha256_hex(content: &impl serde::Serialize) -> String {
    // Tuples, vectors and strings only: serialization cannot fail and is deterministic.
    let text = serde_json::to_string(content).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn lines_tuple(lines: &Lines) -> Vec<(&str, &str, u64)> {
    lines
        .iter()
        .map(|(k, q)| (k.sku.as_str(), k.location.as_str(), q.get()))
        .collect()
}

/// The canonical content of an order registration: lines merged and sorted, the amount
/// normalized (`"100.50"` = `"100.5"`), payment references sorted. Two registrations with
/// the same content are the same event.
pub fn order_content_hash(spec: &OrderSpec, refs: &[(Provider, PaymentRef)]) -> String {
    let refs: Vec<(&str, &str)> = refs.iter().map(|(p, r)| (p.as_str(), r.as_str())).collect();
    let amount = spec.amount.amount.normalize().to_string();
    sha256_hex(&(
        spec.order_ref.as_str(),
        lines_tuple(&spec.lines),
        amount,
        spec.amount.currency.as_str(),
        refs,
    ))
}

fn order_ref_from_path(s: String) -> Result<OrderRef, ApiError> {
    OrderRef::parse(s).map_err(|e| ApiError::malformed("order_ref", e.to_string()))
}

/// `PUT /v1/orders/{order_ref}`: registers (or re-registers) an order.
/// `{"lines":[{"sku","location","quantity"}],"amount":"100.50","currency":"USD","payment_refs":[{"provider","ref"}]}`.
pub async fn put_order(
    State(state): State<AppState>,
    Path(order_ref): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let order_ref = order_ref_from_path(order_ref)?;
    let value = input::parse_body(&body)?;
    let o = Obj::root(&value)?;
    o.only(&["lines", "amount", "currency", "payment_refs"])?;
    let lines = o.lines("lines")?;
    let amount: Money = o.money("amount", "currency")?;
    let mut refs = Vec::new();
    for r in o.array("payment_refs")? {
        r.only(&["provider", "ref"])?;
        refs.push((
            r.parsed("provider", Provider::parse)?,
            r.parsed("ref", PaymentRef::parse)?,
        ));
    }
    refs.sort();
    refs.dedup();
    let spec = OrderSpec {
        order_ref: order_ref.clone(),
        lines,
        amount,
    };
    let identity = format!(
        "merchant:order:{order_ref}:{}",
        order_content_hash(&spec, &refs)
    );
    let kind = EventKind::OrderRegistered {
        spec: spec.clone(),
        payment_refs: refs,
    };
    let out = Outgoing::new(&kind, MERCHANT, identity, None)?;
    let waited = submit(&state, &out).await?;
    if let Waited::Decided(d) = &waited {
        check_not_superseded(&state, d, &spec).await?;
    }
    answer(&out, waited, |d| {
        d.reason.as_deref() == Some("order_registered")
    })
}

/// The same content registered earlier is the same event, so a repeat answers with the
/// first outcome. If the order was changed in between (content A, then B, then A again),
/// that answer would be a lie: say so instead.
async fn check_not_superseded(
    state: &AppState,
    d: &Decided,
    spec: &OrderSpec,
) -> Result<(), ApiError> {
    if !d.earlier
        || d.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("refused:"))
    {
        return Ok(());
    }
    match state.store.order(&spec.order_ref).await? {
        Some(current) if !current.spec.same_as(spec) => Err(ApiError::Refused {
            code: "order_superseded".into(),
            message: "this exact content was registered before and has since been replaced; \
                      the order does not have it now (see GET /v1/orders/{order_ref})"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// `POST /v1/orders/{order_ref}/payment-refs`: `{"provider":"stripe","ref":"pi_…"}`.
pub async fn post_payment_ref(
    State(state): State<AppState>,
    Path(order_ref): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let order_ref = order_ref_from_path(order_ref)?;
    let value = input::parse_body(&body)?;
    let o = Obj::root(&value)?;
    o.only(&["provider", "ref"])?;
    let provider = o.parsed("provider", Provider::parse)?;
    let payment_ref = o.parsed("ref", PaymentRef::parse)?;
    let identity = format!("merchant:payment-ref:{order_ref}:{provider}:{payment_ref}");
    let kind = EventKind::PaymentRefAttached {
        order_ref,
        provider,
        payment_ref,
    };
    let out = Outgoing::new(&kind, MERCHANT, identity, None)?;
    let waited = submit(&state, &out).await?;
    answer(&out, waited, |d| {
        d.reason.as_deref() == Some("payment_ref_attached")
    })
}

/// `POST /v1/stock/receipts`: `{"sku","location","quantity","reference"}`: units in.
/// `reference` (the delivery note, the purchase order) is the idempotency key.
pub async fn post_receipt(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let value = input::parse_body(&body)?;
    let o = Obj::root(&value)?;
    o.only(&["sku", "location", "quantity", "reference"])?;
    let key: StockKey = o.stock_key()?;
    let quantity = o.quantity("quantity")?;
    // Same rules as any reference: non-empty, bounded, no control characters.
    let reference = o.parsed("reference", ReturnRef::parse)?;
    let identity = format!("merchant:receipt:{reference}");
    let kind = EventKind::StockReceived {
        key,
        quantity,
        reference: reference.to_string(),
    };
    let out = Outgoing::new(&kind, MERCHANT, identity, None)?;
    let waited = submit(&state, &out).await?;
    answer(&out, waited, |d| d.outcome == "moved")
}

/// `POST /v1/returns`: `{"order_ref","reference","lines":[…]}`: goods back
/// (`sold → returned`). `reference` is the idempotency key.
pub async fn post_return(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let value = input::parse_body(&body)?;
    let o = Obj::root(&value)?;
    o.only(&["order_ref", "reference", "lines"])?;
    let order_ref = o.parsed("order_ref", OrderRef::parse)?;
    let reference = o.parsed("reference", ReturnRef::parse)?;
    let lines = o.lines("lines")?;
    let identity = format!("merchant:return:{reference}");
    let kind = EventKind::ReturnReceived {
        order_ref,
        reference,
        lines,
    };
    let out = Outgoing::new(&kind, MERCHANT, identity, None)?;
    let waited = submit(&state, &out).await?;
    answer(&out, waited, |d| d.outcome == "moved")
}

/// `POST /v1/returns/{reference}/inspection`: `{"outcome":"restock"|"write_off","lines":[…]}`.
pub async fn post_inspection(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let reference =
        ReturnRef::parse(reference).map_err(|e| ApiError::malformed("reference", e.to_string()))?;
    let value = input::parse_body(&body)?;
    let o = Obj::root(&value)?;
    o.only(&["outcome", "lines"])?;
    let outcome = o.inspection_outcome("outcome")?;
    let lines = o.lines("lines")?;
    let outcome_name = match outcome {
        domain::InspectionOutcome::Restock => "restock",
        domain::InspectionOutcome::WriteOff => "write_off",
    };
    let hash = sha256_hex(&(outcome_name, lines_tuple(&lines)));
    let identity = format!("merchant:inspection:{reference}:{hash}");
    let kind = EventKind::ReturnInspected {
        reference,
        outcome,
        lines,
    };
    let out = Outgoing::new(&kind, MERCHANT, identity, None)?;
    let waited = submit(&state, &out).await?;
    answer(&out, waited, |_| false)
}
