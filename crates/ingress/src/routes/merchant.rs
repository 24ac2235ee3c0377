//! The merchant API's writes. Each is a contract event like any other: built from the
//! request, published, and answered with the ledger's decision (200/201), 409 (404 for an
//! unknown order or return) when the ledger refused it, or 202 with the event id when the
//! decision is not back within `STOCKLEDGER_CONFIRMATION_DEADLINE`.
//!
//! Event identities (dedupe keys): each write's idempotency key, so that a retried
//! request is the same event:
//!
//! | endpoint | idempotency key | identity |
//! | --- | --- | --- |
//! | `PUT /v1/orders/{order_ref}` | `order_ref` | `merchant:order:{order_ref}` |
//! | `POST /v1/orders/{order_ref}/payment-refs` | the whole request | `merchant:payment-ref:{order_ref}:{provider}:{ref}` |
//! | `POST /v1/stock/receipts` | `reference` | `merchant:receipt:{reference}` |
//! | `POST /v1/returns` | `reference` | `merchant:return:{reference}` |
//! | `POST /v1/returns/{reference}/inspection` | the body's `reference`, else the return's | `merchant:inspection:{return reference}:{inspection reference}` |
//!
//! **One key, one content** (`docs/decisions.md` §26). The same key with the same content
//! (`contract::content_digest`: amounts compared as numbers, lines in any order) is the
//! same event and answers as the first call did. The same key with other content is
//! refused with 409 `idempotency_key_reused` naming the key, and changes nothing: the
//! ingress reads the event id's recorded content first (one primary-key read) and
//! publishes nothing; when the first call is not applied yet, the ledger refuses the
//! second content itself and records nothing for it. So an order cannot be changed by
//! registering it again, and a return is inspected once per inspection `reference`.
//!
//! **Strict input** (`docs/decisions.md` §31, [`crate::input`]; the bodies and their
//! answers are [`crate::wire::merchant`]): a write's
//! `Content-Type` must be JSON (415 otherwise), a repeated key is a 400, and an amount
//! with more digits than its currency's minor unit or than an exact decimal holds is a
//! 400 naming `amount`, never rounded.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{EventKind, OrderRef, OrderSpec, OutcomeKind, ReasonCode, RefusalReason, ReturnRef};

use crate::AppState;
use crate::decision::{self, Decided, Waited};
use crate::error::ApiError;
use crate::input::JsonBody;
use crate::publish::{MERCHANT, Outgoing};
use crate::wire::merchant::{
    Accepted, Decision, Inspection, InspectionBody, Order, OrderBody, PaymentRefAttachment,
    PaymentRefBody, Pending, Receipt, ReceiptBody, Return, ReturnBody,
};

/// An idempotency key: the request field it is and its value, for the 409 that names it.
struct Key<'a> {
    field: &'static str,
    value: &'a str,
}

impl Key<'_> {
    fn reused(&self) -> ApiError {
        ApiError::Refused {
            code: ReasonCode::IdempotencyKeyReused.as_str().to_owned(),
            message: format!(
                "idempotency key {} `{}` was used before with different content; a key \
                 means one content, so nothing was changed: repeat the first request \
                 exactly for its answer, or use a new {} for something new",
                self.field, self.value, self.field
            ),
        }
    }
}

/// Refuses `out` before publishing when its event id was recorded with other content.
async fn check_key(state: &AppState, out: &Outgoing, key: &Key<'_>) -> Result<(), ApiError> {
    let id = out.event_id.to_string();
    match state.store.processed_content(&id).await? {
        Some((_, Some(first))) if first != contract::content_digest(&out.event.kind) => {
            Err(key.reused())
        }
        _ => Ok(()),
    }
}

/// Checks the key, publishes `out`, waits for the decision, and measures the wait.
async fn submit(state: &AppState, out: &Outgoing, key: &Key<'_>) -> Result<Waited, ApiError> {
    check_key(state, out, key).await?;
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
    key: &Key<'_>,
    waited: Waited,
    created: impl Fn(&Decided) -> bool,
) -> Result<Response, ApiError> {
    let event_id = out.event_id.to_string();
    let d = match waited {
        Waited::Pending => {
            let pending = Accepted::Pending(Pending::new(event_id));
            return Ok((StatusCode::ACCEPTED, Json(pending)).into_response());
        }
        Waited::Decided(d) => d,
    };
    if d.reason == Some(ReasonCode::IdempotencyKeyReused) {
        return Err(key.reused());
    }
    if let Some(refusal) = d.reason.and_then(ReasonCode::refusal) {
        let code = ReasonCode::Refused(refusal).as_str().to_owned();
        let message = format!("the ledger refused event {event_id}: {}", describe(refusal));
        return Err(if is_not_found(refusal) {
            ApiError::NotFound { code, message }
        } else {
            ApiError::Refused { code, message }
        });
    }
    // Serialized as their wire names: `"noop"`, `"order_registered"`, …
    let body = Decision {
        event_id,
        outcome: d.outcome,
        reason: d.reason,
        repeated: d.earlier,
    };
    if d.outcome == OutcomeKind::Exception {
        // Accepted, and waiting for a person (see the exception queue under this id).
        return Ok((StatusCode::ACCEPTED, Json(Accepted::Exception(body))).into_response());
    }
    let status = if !d.earlier && created(&d) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}

/// Refusals answered with 404 (the thing named does not exist) rather than 409.
fn is_not_found(refusal: RefusalReason) -> bool {
    matches!(
        refusal,
        RefusalReason::UnknownOrder | RefusalReason::UnknownReturn
    )
}

/// A sentence for a refusal. Exhaustive on purpose: a new refusal needs a decision here.
fn describe(refusal: RefusalReason) -> &'static str {
    match refusal {
        RefusalReason::OrderChangedAfterStockMoved => {
            "the order cannot change after stock moved for it"
        }
        RefusalReason::PaymentRefInUse => "the payment reference belongs to another order",
        RefusalReason::UnknownOrder => "the order is not registered",
        RefusalReason::UnknownReturn => "no return with this reference was received",
        RefusalReason::ReturnOfUnsoldOrder => "the order was not sold, so nothing can come back",
        RefusalReason::ReturnExceedsSold => "more units would come back than were sold",
        RefusalReason::ReturnReferenceInUse => "the return reference was used for another return",
        RefusalReason::InspectionExceedsReturned => {
            "more units inspected than are waiting in returned"
        }
        RefusalReason::InvalidQuantity => "a quantity is zero or beyond the limit",
        // Operator commands' refusals: not answered by the merchant API.
        RefusalReason::CorrectionWouldGoNegative
        | RefusalReason::CorrectionUnapproved
        | RefusalReason::UnknownException
        | RefusalReason::ActionUnapproved
        | RefusalReason::NotVoidAfterCapture
        | RefusalReason::ReleaseOfUnsoldOrder
        | RefusalReason::NotRetryable => "see the reason code",
    }
}

fn order_ref_from_path(s: String) -> Result<OrderRef, ApiError> {
    OrderRef::parse(s).map_err(|e| ApiError::malformed("order_ref", e.to_string()))
}

/// `PUT /v1/orders/{order_ref}`: registers an order, once; the order reference is the
/// idempotency key, so changing an order by registering it again is refused.
/// `{"lines":[{"sku","location","quantity"}],"amount":"100.50","currency":"USD","payment_refs":[{"provider","ref"}]}`.
#[utoipa::path(
    put, path = "/v1/orders/{order_ref}", tag = "merchant",
    params(("order_ref" = String, Path, example = "ORD-1001", description = "The merchant's order reference: the idempotency key.")),
    request_body = OrderBody,
    responses(
        (status = 201, description = "Registered.", body = Decision),
        (status = 200, description = "Already registered with the same content (`repeated`), or a no-op.", body = Decision),
        (status = 202, description = "Accepted: waiting for a person (exception) or the decision is not back yet.", body = crate::wire::merchant::Accepted),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
        (status = 409, description = "Refused: conflicts with what already happened; `error` is the reason code.", body = crate::wire::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_order(
    State(state): State<AppState>,
    Path(order_ref): Path<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let order_ref = order_ref_from_path(order_ref)?;
    let Order {
        lines,
        amount,
        payment_refs: refs,
    } = Order::try_from(body.read::<OrderBody>()?)?;
    let spec = OrderSpec {
        order_ref: order_ref.clone(),
        lines,
        amount,
    };
    let identity = format!("merchant:order:{order_ref}");
    let kind = EventKind::OrderRegistered {
        spec,
        payment_refs: refs,
    };
    let key = Key {
        field: "order_ref",
        value: order_ref.as_str(),
    };
    let out = Outgoing::new(&kind, MERCHANT, identity, None)?;
    let waited = submit(&state, &out, &key).await?;
    answer(&out, &key, waited, |d| {
        d.reason == Some(ReasonCode::OrderRegistered)
    })
}

/// `POST /v1/orders/{order_ref}/payment-refs`: `{"provider":"stripe","ref":"pi_…"}`.
#[utoipa::path(
    post, path = "/v1/orders/{order_ref}/payment-refs", tag = "merchant",
    params(("order_ref" = String, Path, example = "ORD-1001", description = "The registered order.")),
    request_body = PaymentRefBody,
    responses(
        (status = 201, description = "Attached.", body = Decision),
        (status = 200, description = "Already attached (`repeated`), or a no-op.", body = Decision),
        (status = 202, description = "Accepted; the decision is not back yet, or an exception.", body = crate::wire::merchant::Accepted),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
        (status = 409, description = "Refused: conflicts with what already happened; `error` is the reason code.", body = crate::wire::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_payment_ref(
    State(state): State<AppState>,
    Path(order_ref): Path<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let order_ref = order_ref_from_path(order_ref)?;
    let PaymentRefAttachment {
        provider,
        payment_ref,
    } = PaymentRefAttachment::try_from(body.read::<PaymentRefBody>()?)?;
    let identity = format!("merchant:payment-ref:{order_ref}:{provider}:{payment_ref}");
    // The identity is the whole content: it cannot be reused for another one.
    let key = Key {
        field: "ref",
        value: &identity,
    };
    let kind = EventKind::PaymentRefAttached {
        order_ref,
        provider,
        payment_ref,
    };
    let out = Outgoing::new(&kind, MERCHANT, identity.clone(), None)?;
    let waited = submit(&state, &out, &key).await?;
    answer(&out, &key, waited, |d| {
        d.reason == Some(ReasonCode::PaymentRefAttached)
    })
}

/// `POST /v1/stock/receipts`: `{"sku","location","quantity","reference"}`: units in.
/// `reference` (the delivery note, the purchase order) is the idempotency key.
#[utoipa::path(
    post, path = "/v1/stock/receipts", tag = "merchant",
    request_body = ReceiptBody,
    responses(
        (status = 201, description = "Units added to `available`.", body = Decision),
        (status = 200, description = "The same receipt again (`repeated`).", body = Decision),
        (status = 202, description = "Accepted; the decision is not back yet, or an exception.", body = crate::wire::merchant::Accepted),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 409, description = "Refused: conflicts with what already happened; `error` is the reason code.", body = crate::wire::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_receipt(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let Receipt {
        key,
        quantity,
        reference,
    } = Receipt::try_from(body.read::<ReceiptBody>()?)?;
    let identity = format!("merchant:receipt:{reference}");
    let kind = EventKind::StockReceived {
        key,
        quantity,
        reference: reference.to_string(),
    };
    let key = Key {
        field: "reference",
        value: reference.as_str(),
    };
    let out = Outgoing::new(&kind, MERCHANT, identity, None)?;
    let waited = submit(&state, &out, &key).await?;
    answer(&out, &key, waited, |d| d.outcome == OutcomeKind::Moved)
}

/// `POST /v1/returns`: `{"order_ref","reference","lines":[…]}`: goods back
/// (`sold → returned`). `reference` is the idempotency key.
#[utoipa::path(
    post, path = "/v1/returns", tag = "merchant",
    request_body = ReturnBody,
    responses(
        (status = 201, description = "Units moved `sold → returned`.", body = Decision),
        (status = 200, description = "The same return again (`repeated`).", body = Decision),
        (status = 202, description = "Accepted; the decision is not back yet, or an exception.", body = crate::wire::merchant::Accepted),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
        (status = 409, description = "Refused: conflicts with what already happened; `error` is the reason code.", body = crate::wire::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_return(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let Return {
        order_ref,
        reference,
        lines,
    } = Return::try_from(body.read::<ReturnBody>()?)?;
    let identity = format!("merchant:return:{reference}");
    let key_value = reference.to_string();
    let key = Key {
        field: "reference",
        value: &key_value,
    };
    let kind = EventKind::ReturnReceived {
        order_ref,
        reference,
        lines,
    };
    let out = Outgoing::new(&kind, MERCHANT, identity, None)?;
    let waited = submit(&state, &out, &key).await?;
    answer(&out, &key, waited, |d| d.outcome == OutcomeKind::Moved)
}

/// `POST /v1/returns/{reference}/inspection`:
/// `{"outcome":"restock"|"write_off","lines":[…],"reference":"…"}`. The optional body
/// `reference` names this inspection (its idempotency key) when a return is inspected in
/// several parts (some units restocked, others written off); without it the return's
/// reference is the key, so a return is inspected once.
#[utoipa::path(
    post, path = "/v1/returns/{reference}/inspection", tag = "merchant",
    params(("reference" = String, Path, example = "RMA-7", description = "The return's reference.")),
    request_body = InspectionBody,
    responses(
        (status = 200, description = "Units moved `returned → available` (restock) or `returned → written_off`.", body = Decision),
        (status = 202, description = "Accepted; the decision is not back yet, or an exception.", body = crate::wire::merchant::Accepted),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 404, description = "Not found.", body = crate::wire::error::ErrorBody),
        (status = 409, description = "Refused: conflicts with what already happened; `error` is the reason code.", body = crate::wire::error::ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = crate::wire::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_inspection(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let reference =
        ReturnRef::parse(reference).map_err(|e| ApiError::malformed("reference", e.to_string()))?;
    let Inspection {
        outcome,
        lines,
        reference: inspection,
    } = Inspection::try_from(body.read::<InspectionBody>()?)?;
    let inspection = inspection.unwrap_or_else(|| reference.clone());
    let identity = format!("merchant:inspection:{reference}:{inspection}");
    let key = Key {
        field: "reference",
        value: inspection.as_str(),
    };
    let kind = EventKind::ReturnInspected {
        reference,
        outcome,
        lines,
    };
    let out = Outgoing::new(&kind, MERCHANT, identity, None)?;
    let waited = submit(&state, &out, &key).await?;
    answer(&out, &key, waited, |_| false)
}
