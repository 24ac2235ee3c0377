//! PortOne's two endpoints (`docs/providers.md`: PortOne; threat model in
//! `docs/threat-model.md`).
//!
//! - `POST /webhooks/portone`: the signed payment webhook. Verified over the raw body,
//!   mapped by status (Success → `payment.captured`; Failed, Expired, Cancelled →
//!   `payment.voided`; anything else → `payment.noted`), published, and answered 200 once
//!   JetStream acknowledged it. Its amount goes into the event: the ledger compares it with
//!   the registered order, so a signed webhook with another amount becomes an
//!   `amount_mismatch` exception rather than being dropped here.
//! - `POST /portone/inventory-confirmation`: unsigned, synchronous. Checked in order:
//!   source address, `portone_key`, then the registered order and its amount (read here,
//!   so a forger's guesses publish nothing). Then `payment.authorized` (mode confirmation)
//!   is published and the ledger's decision awaited: `200` with an empty body when the
//!   stock is reserved, otherwise a non-200 status with `{"reason": …}`.
//!
//! A non-200 answer never ends as a reservation (`docs/decisions.md` §29): the
//! authorization carries `answer_by`, the instant after which this endpoint no longer
//! answers `200` (a decision must be in hand by then). Whenever the answer is "no" although
//! the authorization may reserve (no decision in time, a publish not acknowledged, a
//! decision in hand too late), its withdrawal (`contract::withdrawal`, a
//! `reservation.expired` naming it) is published and its ack awaited before answering,
//! within the deadline. When even that cannot be published (NATS down), the ledger
//! publishes the same event before deciding an authorization it reaches after
//! `answer_by` (`ledger::withdraw`), so the stream carries the release either way.
//!
//! With `STOCKLEDGER_PORTONE_SECRET_KEY` unset, both answer 401.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{
    AuthorizationMode, DeclineReason, EventKind, ExceptionCode, Money, OrderLookup, OrderRef,
    OrderState, OutcomeKind, Payment, ReasonCode,
};
use providers::{events, portone};
use rust_decimal::Decimal;

use crate::decision::{self, Decided, Waited};
use crate::error::ApiError;
use crate::publish::{self, Outgoing, PORTONE, PublishError};
use crate::wire::error::ConfirmationRefusal;
use crate::{AppState, RawBody, net};

/// The peer address extension that [`crate::serve`] attaches to every request.
type Peer = Option<axum::Extension<ConnectInfo<SocketAddr>>>;

/// `Err` with the reason when the request's source address is not allowed.
fn check_source(state: &AppState, peer: &Peer, headers: &HeaderMap) -> Result<(), String> {
    let Some(allowed) = &state.settings.portone_allowed_ips else {
        return Ok(());
    };
    let peer_ip: Option<IpAddr> = peer.as_ref().map(|p| p.0.0.ip());
    match net::client_addr(peer_ip, headers, &state.settings.trusted_proxies) {
        Some(ip) if net::any_contains(allowed, ip) => Ok(()),
        Some(ip) => {
            tracing::warn!(client = %ip, "PortOne endpoint called from an address not in STOCKLEDGER_PORTONE_ALLOWED_IPS");
            Err(format!("{ip} is not allowed to call PortOne endpoints"))
        }
        None => Err("the client address cannot be determined".into()),
    }
}

/// Money from PortOne's amount and currency, naming the field it refuses.
fn money(amount: &Decimal, currency: &str) -> Result<Money, ApiError> {
    Ok(events::portone_money(amount, currency)?)
}

// ---- payment webhook ---------------------------------------------------------------------

/// `POST /webhooks/portone`.
#[utoipa::path(
    post, path = "/webhooks/portone", tag = "providers",
    description = "PortOne's payment webhook, signed with `signature_hash` (HMAC-SHA256 under `STOCKLEDGER_PORTONE_SECRET_KEY`). 200 once the event is durably in the event stream.",
    request_body = crate::wire::providers::PortOneWebhook,
    responses(
        (status = 200, description = "Accepted (durably in the event stream)."),
        (status = 400, description = "Malformed: the body or a parameter is not what the endpoint accepts; `message` names the field.", body = crate::wire::error::ErrorBody),
        (status = 401, description = "Missing or wrong credentials, or a signature that does not verify.", body = crate::wire::error::ErrorBody),
        (status = 403, description = "The caller's address is not allowed (`STOCKLEDGER_PORTONE_ALLOWED_IPS`).", body = crate::wire::error::ErrorBody),
    )
)]
pub async fn webhook(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: RawBody,
) -> Result<StatusCode, ApiError> {
    let Some(secret) = &state.settings.portone_secret_key else {
        return Err(ApiError::Unauthorized(
            "STOCKLEDGER_PORTONE_SECRET_KEY is not set".into(),
        ));
    };
    check_source(&state, &peer, &headers).map_err(ApiError::Forbidden)?;
    let hook = portone::parse_payment_webhook(&body.0)?;
    portone::verify_payment_webhook(&hook, secret.expose())?;
    let kind = events::portone_event(&hook)?;
    let out = Outgoing::new(&kind, PORTONE, hook.dedupe_key(), Some(&body))?;
    publish::publish(&state, &out).await?;
    Ok(StatusCode::OK)
}

// ---- inventory confirmation --------------------------------------------------------------

/// The answer PortOne expects: `200` with an empty body, or another status with
/// `{"reason": "<code>"}` (plus a human `message` when there is more to say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    /// `None` only for 200.
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl Answer {
    fn reserved() -> Answer {
        Answer {
            status: StatusCode::OK,
            reason: None,
            message: None,
        }
    }
    fn no(status: StatusCode, reason: &str, message: impl Into<Option<String>>) -> Answer {
        Answer {
            status,
            reason: Some(reason.to_owned()),
            message: message.into(),
        }
    }
    /// The metrics label of the answer.
    fn label(&self) -> &str {
        self.reason.as_deref().unwrap_or("reserved")
    }
}

impl From<ApiError> for Answer {
    fn from(e: ApiError) -> Answer {
        let reason = match &e {
            ApiError::Malformed { .. } => "malformed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::TooLarge { .. } => "body_too_large",
            ApiError::Unavailable(_) => "unavailable",
            other => other.code(),
        };
        Answer::no(e.status(), reason, e.message())
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self.reason {
            None => StatusCode::OK.into_response(),
            Some(reason) => {
                let body = ConfirmationRefusal {
                    message: self.message,
                    reason,
                };
                (self.status, Json(body)).into_response()
            }
        }
    }
}

/// The path of PortOne's confirmation, whose every non-200 answer has PortOne's shape.
pub const CONFIRMATION_PATH: &str = "/portone/inventory-confirmation";

/// The largest error body [`refusal_shape`] reads to reshape (error bodies are small).
const REFUSAL_BODY_MAX: usize = 16 * 1024;

/// Gives every non-200 answer of the confirmation PortOne's shape, `{"reason", "message"}`,
/// also those made in front of the handler (rate limit, ledger behind, load shedding,
/// body limit, timeout), which have the API's `{"error", "message"}`: the `error` code
/// becomes the `reason`. Other paths pass untouched.
pub async fn refusal_shape(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.uri().path() != CONFIRMATION_PATH {
        return next.run(req).await;
    }
    let response = next.run(req).await;
    if response.status() == StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, REFUSAL_BODY_MAX)
        .await
        .unwrap_or_default();
    let refusal = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) if v.get("reason").is_some() => {
            return Response::from_parts(parts, axum::body::Body::from(bytes));
        }
        Ok(v) => ConfirmationRefusal {
            message: v["message"].as_str().map(str::to_owned),
            reason: v["error"].as_str().unwrap_or("refused").to_owned(),
        },
        Err(_) => ConfirmationRefusal {
            message: None,
            reason: "refused".to_owned(),
        },
    };
    let mut reshaped = (parts.status, Json(refusal)).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            reshaped.headers_mut().append(name.clone(), value.clone());
        }
    }
    reshaped
}

/// `POST /portone/inventory-confirmation`.
#[utoipa::path(
    post, path = "/portone/inventory-confirmation", tag = "providers",
    description = "PortOne's synchronous inventory check, answered within `STOCKLEDGER_CONFIRMATION_DEADLINE`. PortOne dictates the answer: 200 with an empty body when the stock is reserved; any other status with `{\"reason\": …}` otherwise.",
    request_body = crate::wire::providers::PortOneConfirmation,
    responses(
        (status = 200, description = "Reserved."),
        (status = 400, description = "Malformed.", body = ConfirmationRefusal),
        (status = 401, description = "Not configured, or another PortOne key.", body = ConfirmationRefusal),
        (status = 403, description = "Caller's address not allowed.", body = ConfirmationRefusal),
        (status = 404, description = "Unknown order.", body = ConfirmationRefusal),
        (status = 409, description = "Refused (`insufficient_inventory`, `amount_mismatch`, …).", body = ConfirmationRefusal),
        (status = 408, description = "No answer in time.", body = ConfirmationRefusal),
        (status = 413, description = "Body too large.", body = ConfirmationRefusal),
        (status = 415, description = "Not JSON.", body = ConfirmationRefusal),
        (status = 429, description = "Over the per-source rate limit.", body = ConfirmationRefusal),
        (status = 503, description = "Unavailable, or no decision within the deadline; nothing is reserved.", body = ConfirmationRefusal),
        (status = 504, description = "No decision within the deadline; nothing is reserved.", body = ConfirmationRefusal),
    )
)]
pub async fn confirmation(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<RawBody, ApiError>,
) -> Response {
    let started = Instant::now();
    let answer = confirm(&state, &peer, &headers, body, started).await;
    state
        .metrics
        .confirmation(started.elapsed(), answer.label());
    answer.into_response()
}

/// The checks that publish nothing, then the decision.
async fn confirm(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    body: Result<RawBody, ApiError>,
    started: Instant,
) -> Answer {
    let settings = &state.settings;
    if settings.portone_secret_key.is_none() {
        return Answer::no(
            StatusCode::UNAUTHORIZED,
            "not_configured",
            "STOCKLEDGER_PORTONE_SECRET_KEY is not set".to_owned(),
        );
    }
    if let Err(m) = check_source(state, peer, headers) {
        return Answer::no(StatusCode::FORBIDDEN, "source_not_allowed", m);
    }
    let raw = match body {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    let request = match portone::parse_inventory_confirmation(&raw.0) {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into(),
    };
    if let Some(key) = &settings.portone_key
        && request.verify_portone_key(key.expose()).is_err()
    {
        tracing::warn!("PortOne confirmation with a portone_key that is not ours");
        return Answer::no(StatusCode::UNAUTHORIZED, "bad_portone_key", None);
    }
    let order_ref = match OrderRef::parse(request.merchant_order_ref.as_str()) {
        Ok(r) => r,
        Err(e) => return ApiError::malformed("merchant_order_ref", e.to_string()).into(),
    };
    let amount = match money(&request.amount, &request.currency) {
        Ok(m) => m,
        Err(e) => return e.into(),
    };
    match state.store.order(&order_ref).await {
        Ok(Some(order)) if order.spec.amount.same_as(&amount) => {}
        // The same codes the ledger's declines answer with (`answer_decided`).
        Ok(Some(_)) => {
            let code = DeclineReason::AmountMismatch.as_str();
            return Answer::no(StatusCode::CONFLICT, code, None);
        }
        Ok(None) => {
            let code = DeclineReason::UnknownOrder.as_str();
            return Answer::no(StatusCode::NOT_FOUND, code, None);
        }
        Err(e) => return ApiError::from(e).into(),
    }
    let payment = Payment {
        order: OrderLookup::OrderRef(order_ref.clone()),
        amount: Some(amount),
    };
    let kind = EventKind::PaymentAuthorized {
        payment: payment.clone(),
        mode: AuthorizationMode::Confirmation,
        method: None,
    };
    let timing = Timing::of(settings, started);
    let out = match Outgoing::new(&kind, PORTONE, request.dedupe_key(), Some(&raw)) {
        Ok(o) => Outgoing {
            envelope: o.envelope.with_answer_by(timing.answer_by_wall()),
            ..o
        },
        Err(e) => return e.into(),
    };
    let pending = Pending {
        state: state.clone(),
        out,
        payment,
        timing,
    };
    // Its own task: neither a client that hangs up nor the request timeout may cancel the
    // work between publishing the authorization and publishing its withdrawal.
    match tokio::spawn(pending.decide()).await {
        Ok(answer) => answer,
        Err(e) => Answer::no(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// The instants of one confirmation, from when its request arrived.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// `STOCKLEDGER_CONFIRMATION_DEADLINE` after arrival: the answer leaves by then.
    deadline: Instant,
    /// Until when the decision is waited for; the rest of the deadline is kept for
    /// publishing the withdrawal.
    wait_until: Instant,
    /// The last instant a decision in hand is answered `200` (the wait, then the one read
    /// of the ledger at its end). Written into the authorization as `answer_by`.
    answer_by: Instant,
}

impl Timing {
    fn of(settings: &crate::Settings, started: Instant) -> Timing {
        let deadline = started + settings.confirmation_deadline;
        // Keep part of the deadline for the withdrawal's publish.
        let reserve = settings
            .publish_timeout
            .min(settings.confirmation_deadline / 4);
        let wait_until = deadline.checked_sub(reserve).unwrap_or(started);
        let answer_by = (wait_until + decision::FINAL_READ_TIMEOUT).min(deadline);
        Timing {
            deadline,
            wait_until,
            answer_by,
        }
    }

    /// `answer_by` on the wall clock, as the ledger reads it.
    fn answer_by_wall(&self) -> domain::Timestamp {
        let left = self.answer_by.saturating_duration_since(Instant::now());
        let left = i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
        domain::Timestamp(publish::now().0.saturating_add(left))
    }
}

/// A confirmation that passed every check and is about to be published.
struct Pending {
    state: AppState,
    out: Outgoing,
    payment: Payment,
    timing: Timing,
}

impl Pending {
    async fn decide(self) -> Answer {
        let waited =
            decision::publish_and_wait(&self.state, &self.out, self.timing.wait_until).await;
        let in_time = Instant::now() <= self.timing.answer_by;
        match waited {
            Ok(Waited::Decided(d)) if d.outcome == OutcomeKind::Moved && !d.earlier && !in_time => {
                // Reserved, but too late to say so: the answer is no, and the reservation
                // is withdrawn.
                tracing::warn!(event_id = %self.out.event_id, "a confirmation's reservation arrived after answer_by; answering no and withdrawing it");
                self.withdraw().await;
                Answer::no(StatusCode::GATEWAY_TIMEOUT, "decision_timeout", None)
            }
            Ok(Waited::Decided(d)) => {
                let answer = self.answer_decided(&d).await;
                if answer.status != StatusCode::OK && d.outcome == OutcomeKind::Moved {
                    // A repeated question answered no (released, or unknown): whatever
                    // this authorization still holds is withdrawn, since PortOne acts on
                    // this answer.
                    self.withdraw().await;
                }
                answer
            }
            Ok(Waited::Pending) => {
                self.withdraw().await;
                Answer::no(StatusCode::GATEWAY_TIMEOUT, "decision_timeout", None)
            }
            Err(PublishError::Unconfirmed(e)) => {
                // The authorization may land after all: withdraw whatever it reserves.
                self.withdraw().await;
                e.into()
            }
            Err(PublishError::NotSent(e)) => e.into(),
        }
    }

    /// Publishes the withdrawal of this authorization and awaits its ack, until the
    /// deadline at most. If it does not make it, the ledger publishes the same event when it
    /// reaches the authorization after `answer_by` (`ledger::withdraw`).
    async fn withdraw(&self) {
        let Some(envelope) = contract::withdrawal::withdrawal(&self.out.envelope, publish::now())
        else {
            tracing::error!(event_id = %self.out.event_id, "a confirmation without an order reference has no withdrawal");
            return;
        };
        // `withdrawal` built it from the authorization's checked event; this is the check
        // that keeps its domain event (the envelope's id is carried, not derived again).
        let out = match Outgoing::checked(envelope) {
            Ok(out) => out,
            Err(e) => {
                tracing::error!(event_id = %self.out.event_id, error = %e, "the withdrawal of a confirmation is refused by the contract");
                return;
            }
        };
        let left = self
            .timing
            .deadline
            .saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, publish::publish(&self.state, &out)).await {
            Ok(Ok(_)) => {
                tracing::info!(event_id = %out.event_id, reservation = %self.out.event_id, "withdrawal of a confirmation answered no published");
            }
            Ok(Err(e)) => {
                tracing::warn!(event_id = %out.event_id, error = %e, "withdrawal not published; the ledger publishes it when it reaches the authorization after answer_by");
            }
            Err(_) => {
                tracing::warn!(event_id = %out.event_id, "withdrawal not acknowledged by the deadline; the ledger publishes it when it reaches the authorization after answer_by");
            }
        }
    }

    /// The answer for a decision. `200` only while the order is still reserved or sold:
    /// a repeated call after the reservation was released is not a yes.
    async fn answer_decided(&self, d: &Decided) -> Answer {
        match (d.outcome, d.reason) {
            (OutcomeKind::Moved, _) => self.answer_moved(d).await,
            (_, Some(reason)) => {
                // A decline answers with its own code (`insufficient_inventory`), any other
                // reason with its stored name; an unknown order is a 404 either way.
                let code = match reason {
                    ReasonCode::Declined(why) => why.as_str(),
                    other => other.as_str(),
                };
                let status = match reason {
                    ReasonCode::Declined(DeclineReason::UnknownOrder)
                    | ReasonCode::Exception(ExceptionCode::UnknownOrder) => StatusCode::NOT_FOUND,
                    _ => StatusCode::CONFLICT,
                };
                Answer::no(status, code, None)
            }
            (outcome, None) => Answer::no(StatusCode::CONFLICT, outcome.as_str(), None),
        }
    }

    async fn answer_moved(&self, d: &Decided) -> Answer {
        // This call's own reservation, just decided: a yes without another read. Only a
        // repeated call must check that the reservation it repeats still holds.
        if !d.earlier {
            return Answer::reserved();
        }
        let OrderLookup::OrderRef(order_ref) = &self.payment.order else {
            return Answer::reserved();
        };
        match self.state.store.order(order_ref).await {
            Ok(Some(o)) if matches!(o.state, OrderState::Reserved | OrderState::Sold) => {
                Answer::reserved()
            }
            Ok(Some(o)) => Answer::no(
                StatusCode::CONFLICT,
                "reservation_released",
                format!("the order is {}", o.state.as_str()),
            ),
            Ok(None) => Answer::no(
                StatusCode::NOT_FOUND,
                DeclineReason::UnknownOrder.as_str(),
                None,
            ),
            // A repeated call's answer is unknown when the read fails.
            Err(e) => ApiError::from(e).into(),
        }
    }
}
