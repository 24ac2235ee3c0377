//! The operator actions on the exception queue and on stock, shared by `stockctl` and the
//! ingress's `/v1/exceptions` endpoints (moved here from the `exceptions` service so that
//! neither depends on a service crate). Every action is an event (`docs/decisions.md`
//! §27): it is published through JetStream like any other event and applied by the
//! ledger, which writes the queue row's new state and the audit entry (who, when, what,
//! why) in its batch transaction. The queue's state and its trail are therefore part of
//! the ledger and come back when it is rebuilt from the stream. Each action waits for the
//! ledger's decision up to `wait`, and is refused before anything is published when the
//! request cannot be right (no actor or reason: 400; no such exception: 404; `release` or
//! `keep` of anything but a `void_after_capture`: 409). Operator text is checked first
//! (`docs/decisions.md` §31): `actor`, `reason`, `approved-by` and the idempotency key are
//! one line without control characters, `evidence` may also hold line feeds and tabs, each
//! bounded ([`ACTOR_LEN_MAX`], `domain::types::NOTE_LEN_MAX`,
//! `domain::types::EVIDENCE_LEN_MAX`, [`IDEMPOTENCY_KEY_LEN_MAX`]); a refusal names the
//! field ([`ActionError::InvalidField`]).
//!
//! - [`Actions::act`]: `resolve` (a deliberate no-op), `dismiss` (not a problem), and for a
//!   `void_after_capture` `release` (`sold → available` for the order's lines: the goods
//!   never left) or `keep` (a recorded no-op: the goods left, finance follows up). An
//!   action on a resolved exception is recorded and changes nothing.
//! - [`Actions::retry`]: publishes a `retry` action; the ledger decides the exception's
//!   event again in the same transaction (only an open exception is re-decided; a final
//!   outcome is never replaced). A dead letter, which the ledger never decided, is retried
//!   the older way: its original bytes are re-published with a fresh `Nats-Msg-Id`
//!   (`<event id>:retry:<n>`) and the operator-retry header, and its row's workflow is
//!   written here (`store::RetryStart`).
//! - [`Actions::correct_stock`]: publishes a `stock.corrected` event naming its actor; the
//!   ledger applies it (refused if it would make `available` negative) and audits it.
//!   Refused here without a reason, evidence and an approver.
//!
//! Every event id comes from a source identity: `operator:exception:<id>:<action>:<key>`
//! and `operator:stock-correction:<key>`, where `key` is the idempotency key the operator
//! gave, or a fresh one per call. The same key again is the same event: applied once.

use std::time::Duration;

use bus::Bus;
use contract::{Envelope, Source};
use domain::{
    EventKind, ExceptionCode, ExceptionId, Location, OperatorAction, OutcomeKind, ReasonCode,
    RefusalReason, Sku, StockKey,
};
use serde::Serialize;
use store::{ProcessedRow, QueueError, QueueItem, RetryStart, Store};

use crate::wait::wait_until;
use service::now;

/// The reason code of the exceptions `release` and `keep` apply to.
const VOID_AFTER_CAPTURE: ExceptionCode = ExceptionCode::VoidAfterCapture;

/// Why an action was not taken. Callers branch on the variant (exit codes, HTTP status).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No exception has this id (404).
    #[error("no exception {0}")]
    NotFound(String),
    /// The request is incomplete or invalid; nothing was done (400).
    #[error("refused: {0}")]
    Invalid(String),
    /// One field of the request is not acceptable text (a control character, too long);
    /// nothing was done (400 naming `field`).
    #[error("refused: {field}: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    /// This problem cannot be retried as it is; nothing was published, or the ledger
    /// recorded the refusal (409).
    #[error("not retryable: {0}")]
    NotRetryable(String),
    /// The action does not fit this exception (`release` of an `oversold`, …); nothing
    /// changed (409 with `code`).
    #[error("refused ({code}): {message}")]
    Refused { code: String, message: String },
    /// NATS or the database is unavailable; nothing changed, try again later (503).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Stored data this release cannot read (a bug or a damaged database). Permanent: a
    /// retry reads the same bytes, so it is not "unavailable, retry later" but an internal
    /// error (500); the store's error is kept for the log.
    #[error("stored data unreadable: {0}")]
    Corrupt(#[source] store::StoreError),
}

impl From<QueueError> for ActionError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::NotFound(id) => ActionError::NotFound(id),
            QueueError::Invalid(m) => ActionError::Invalid(m),
            QueueError::Store(s) => ActionError::from(s),
        }
    }
}

impl From<store::StoreError> for ActionError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Corrupt(_) => ActionError::Corrupt(e),
            e => ActionError::Unavailable(e.to_string()),
        }
    }
}

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetryReport {
    pub id: String,
    /// `already_resolved` (nothing retried), `resolved` (the event has a final outcome
    /// now), `open` (the exception still stands, or a new one replaced it) or `pending`
    /// (published; no outcome within the wait).
    pub result: String,
    /// The row's retries so far, this one included.
    pub attempt: Option<i64>,
    /// The `Nats-Msg-Id` it was published under (the action's event id; for a dead letter
    /// `<event id>:retry:<n>`).
    pub msg_id: Option<String>,
    /// The row's reason after the retry (a retry can turn `unknown_order` into `oversold`).
    pub reason: Option<String>,
    pub resolution: Option<String>,
}

/// What an action (resolve, dismiss, release, keep) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionReport {
    pub id: String,
    pub action: String,
    /// The event id of the action.
    pub event_id: String,
    /// `resolved`, `dismissed`, `released`, `kept`, `already_resolved`, or `pending` (no
    /// decision within the wait; the ledger will apply it).
    pub result: String,
    /// The row's resolution after the action.
    pub resolution: Option<String>,
}

/// An action as an operator asks for it.
#[derive(Debug, Clone, Default)]
pub struct ActionRequest {
    /// Who acts (recorded).
    pub actor: String,
    /// Why (recorded).
    pub reason: String,
    /// What shows it is right (recorded), if anything.
    pub evidence: Option<String>,
    /// Makes a re-run of the same action one event; a fresh one is made when absent.
    pub idempotency_key: Option<String>,
}

impl ActionRequest {
    /// A request with an actor and a reason only.
    pub fn new(actor: &str, reason: &str) -> ActionRequest {
        ActionRequest {
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            ..ActionRequest::default()
        }
    }
}

/// A stock correction as an operator asks for it.
#[derive(Debug, Clone)]
pub struct Correction {
    pub sku: String,
    pub location: String,
    /// Units added (positive) or removed (negative); never zero.
    pub delta: i64,
    pub reason: String,
    pub evidence: String,
    pub approved_by: String,
    /// Who runs the command (may differ from the approver).
    pub actor: String,
    /// Makes a re-run of the same correction a no-op; a fresh one is made when absent.
    pub idempotency_key: Option<String>,
}

/// What a correction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorrectionReport {
    pub event_id: String,
    /// True when JetStream already had this correction (same idempotency key).
    pub duplicate: bool,
    /// `moved`, `noop` (refused, with `reason`) or `pending` (no outcome within the wait):
    /// text, because `pending` is not an outcome the ledger records.
    pub outcome: String,
    /// Serialized as its stored name (`refused:correction_would_go_negative`, …).
    pub reason: Option<ReasonCode>,
}

/// The operator actions, over one NATS connection and one database pool.
#[derive(Debug, Clone)]
pub struct Actions {
    pub bus: Bus,
    pub store: Store,
    /// How long an action waits for the ledger's outcome before answering `pending`
    /// (`STOCKLEDGER_CONFIRMATION_DEADLINE`).
    pub wait: Duration,
}

/// The longest `actor` or `approved-by` (a person or a console login), in bytes.
pub const ACTOR_LEN_MAX: usize = domain::types::IDENTIFIER_LEN_MAX;

/// The longest idempotency key an operator gives, in bytes (it becomes part of the
/// event's source identity).
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = domain::types::IDENTIFIER_LEN_MAX;

/// Which rule a text field of an operator request follows.
pub(crate) enum TextRule {
    /// One line (`actor`, `reason`, `approved-by`, the idempotency key).
    Line(usize),
    /// Line feeds and tabs allowed (`evidence`).
    Text(usize),
}

/// Checks operator-written text before anything is published (`docs/decisions.md` §31):
/// no NUL, ANSI escape or other control character (PostgreSQL refuses NUL in TEXT,
/// SQLite would store it, and a terminal would obey an escape), and a bounded length.
pub(crate) fn check_texts(fields: &[(&'static str, &str, TextRule)]) -> Result<(), ActionError> {
    for (field, value, rule) in fields {
        let field: &'static str = field;
        let checked = match rule {
            TextRule::Line(max) => domain::check_line(field, value, *max),
            TextRule::Text(max) => domain::check_text(field, value, *max),
        };
        checked.map_err(|e| ActionError::InvalidField {
            field,
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// The text checks of an action request: actor, reason, evidence, idempotency key.
fn check_request(req: &ActionRequest) -> Result<(), ActionError> {
    check_texts(&[
        ("actor", &req.actor, TextRule::Line(ACTOR_LEN_MAX)),
        (
            "reason",
            &req.reason,
            TextRule::Line(domain::types::NOTE_LEN_MAX),
        ),
        (
            "evidence",
            req.evidence.as_deref().unwrap_or_default(),
            TextRule::Text(domain::types::EVIDENCE_LEN_MAX),
        ),
        (
            "idempotency_key",
            req.idempotency_key.as_deref().unwrap_or_default(),
            TextRule::Line(IDEMPOTENCY_KEY_LEN_MAX),
        ),
    ])
}

pub(crate) fn required(fields: &[(&str, &str)]) -> Result<(), ActionError> {
    let missing: Vec<&str> = fields
        .iter()
        .filter(|(_, v)| v.trim().is_empty())
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ActionError::Invalid(format!(
            "{} must be given and not empty",
            missing.join(", ")
        )))
    }
}

/// The idempotency key given, or a fresh one.
pub(crate) fn key_or_fresh(key: Option<&str>) -> String {
    key.filter(|k| !k.trim().is_empty())
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The word a report uses for the reason code the ledger recorded for an action.
fn action_result(p: &ProcessedRow) -> Result<String, ActionError> {
    if p.outcome == OutcomeKind::Moved {
        return Ok("released".into());
    }
    Ok(match p.reason {
        Some(ReasonCode::ExceptionResolved) => "resolved".into(),
        Some(ReasonCode::ExceptionDismissed) => "dismissed".into(),
        Some(ReasonCode::SaleKept) => "kept".into(),
        Some(ReasonCode::RetryRequested) => "retried".into(),
        Some(ReasonCode::ExceptionAlreadyResolved) => "already_resolved".into(),
        Some(ReasonCode::Refused(RefusalReason::NotRetryable)) => {
            return Err(ActionError::NotRetryable(
                "the ledger never decided this exception's event: it cannot be retried".into(),
            ));
        }
        other => {
            // A refusal is reported by its own code (`unknown_exception`, not
            // `refused:unknown_exception`); any other reason by its stored name.
            let code = match other {
                Some(ReasonCode::Refused(r)) => r.as_str(),
                Some(c) => c.as_str(),
                None => "",
            }
            .to_owned();
            return Err(ActionError::Refused {
                message: format!("the ledger refused the action: {code}"),
                code,
            });
        }
    })
}

impl Actions {
    /// Resolves exception `id` as a deliberate no-op with `why`. No stock moves.
    pub async fn resolve(
        &self,
        id: &str,
        actor: &str,
        why: &str,
    ) -> Result<ActionReport, ActionError> {
        self.act(id, OperatorAction::Resolve, &ActionRequest::new(actor, why))
            .await
    }

    /// Takes `action` (`resolve`, `dismiss`, `release` or `keep`; see the module
    /// documentation) on exception `id`: publishes it and waits for the ledger's decision.
    pub async fn act(
        &self,
        id: &str,
        action: OperatorAction,
        req: &ActionRequest,
    ) -> Result<ActionReport, ActionError> {
        if action == OperatorAction::Retry {
            return Err(ActionError::Invalid("use retry for a retry".into()));
        }
        let row = self.checked_row(id, req).await?;
        if matches!(action, OperatorAction::Release | OperatorAction::Keep)
            && row.reason != VOID_AFTER_CAPTURE.as_str()
        {
            return Err(ActionError::Refused {
                code: RefusalReason::NotVoidAfterCapture.as_str().into(),
                message: format!(
                    "{} applies to {VOID_AFTER_CAPTURE} exceptions only; {id} is {}",
                    action.as_str(),
                    row.reason
                ),
            });
        }
        let event_id = self.publish_action(id, action, req).await?;
        let result = match self.decision(&event_id).await? {
            Some(p) => action_result(&p)?,
            None => "pending".to_owned(),
        };
        Ok(ActionReport {
            id: id.to_owned(),
            action: action.as_str().to_owned(),
            event_id,
            result,
            resolution: self.row(id).await?.and_then(|r| r.resolution),
        })
    }

    /// Retries exception `id` (see the module documentation). `why` says what was fixed.
    pub async fn retry(
        &self,
        id: &str,
        actor: &str,
        why: &str,
    ) -> Result<RetryReport, ActionError> {
        self.retry_with(id, &ActionRequest::new(actor, why)).await
    }

    /// [`Actions::retry`] with evidence or an idempotency key.
    pub async fn retry_with(
        &self,
        id: &str,
        req: &ActionRequest,
    ) -> Result<RetryReport, ActionError> {
        let row = self.checked_row(id, req).await?;
        if !self.ledger_decided(&row).await? {
            return self.republish(id, &req.actor, &req.reason).await;
        }
        let event_id = self.publish_action(id, OperatorAction::Retry, req).await?;
        let decided = self.decision(&event_id).await?;
        let after = self.row(id).await?;
        let result = match (&decided, &after) {
            (None, _) => "pending".to_owned(),
            (Some(p), Some(r)) => match action_result(p)?.as_str() {
                "already_resolved" => "already_resolved".to_owned(),
                _ => r.state.clone(),
            },
            (Some(_), None) => "pending".to_owned(),
        };
        let retried = result != "already_resolved";
        Ok(RetryReport {
            id: id.to_owned(),
            attempt: after.as_ref().filter(|_| retried).map(|r| r.retries),
            msg_id: Some(event_id),
            reason: after.as_ref().map(|r| r.reason.clone()),
            resolution: after.and_then(|r| r.resolution),
            result,
        })
    }

    /// The exception row `id`, after checking the request (400 before 404).
    async fn checked_row(&self, id: &str, req: &ActionRequest) -> Result<QueueItem, ActionError> {
        required(&[("actor", &req.actor), ("reason", &req.reason)])?;
        check_request(req)?;
        ExceptionId::parse(id).map_err(|e| ActionError::NotFound(format!("{id} ({e})")))?;
        self.row(id)
            .await?
            .ok_or_else(|| ActionError::NotFound(id.to_owned()))
    }

    async fn row(&self, id: &str) -> Result<Option<QueueItem>, ActionError> {
        Ok(self.store.queue_item(id).await?.map(|d| d.item))
    }

    /// True when the row is its event's own exception as the ledger recorded it: the
    /// ledger can decide that event again. A dead letter, or a message the ledger could
    /// not decode, is not.
    async fn ledger_decided(&self, row: &QueueItem) -> Result<bool, ActionError> {
        if row.source != "ledger" || row.id.parse::<domain::EventId>().is_err() {
            return Ok(false);
        }
        Ok(self
            .store
            .processed(&row.id)
            .await?
            .is_some_and(|p| p.outcome == OutcomeKind::Exception || row.state == "resolved"))
    }

    /// Builds, checks and publishes the `exception.action` event; returns its event id.
    async fn publish_action(
        &self,
        id: &str,
        action: OperatorAction,
        req: &ActionRequest,
    ) -> Result<String, ActionError> {
        let exception_id =
            ExceptionId::parse(id).map_err(|e| ActionError::Invalid(e.to_string()))?;
        let kind = EventKind::ExceptionAction {
            exception_id,
            action,
            actor: req.actor.clone(),
            reason: req.reason.clone(),
            evidence: req.evidence.clone().filter(|e| !e.trim().is_empty()),
        };
        let key = key_or_fresh(req.idempotency_key.as_deref());
        let identity = format!("operator:exception:{id}:{}:{key}", action.as_str());
        self.publish(&kind, identity)
            .await
            .map(|(event_id, _)| event_id)
    }

    /// Publishes an operator event (`Envelope::new`, checked like a decoded one); returns
    /// its event id and whether JetStream already had it.
    pub(crate) async fn publish(
        &self,
        kind: &EventKind,
        identity: String,
    ) -> Result<(String, bool), ActionError> {
        let source = Source {
            provider: "operator".into(),
            identity,
        };
        let t = now();
        let envelope = Envelope::new(kind, source, t, t, None);
        envelope
            .to_domain()
            .map_err(|e| ActionError::Invalid(e.to_string()))?;
        let event_id = envelope.event_id.to_string();
        // An encoder bug is an internal error (500, permanent), never an empty payload.
        let payload = envelope.to_json().map_err(|e| {
            ActionError::Corrupt(store::StoreError::Corrupt(format!("{e}: {}", e.source)))
        })?;
        let subject = self
            .bus
            .namespace()
            .event_subject("operator", envelope.kind_name());
        let published = self
            .bus
            .publish_event(subject, &event_id, payload.into(), None)
            .await
            .map_err(|e| ActionError::Unavailable(e.to_string()))?;
        Ok((event_id, published.duplicate))
    }

    /// The ledger's decision on `event_id`, waiting up to `wait`.
    pub(crate) async fn decision(
        &self,
        event_id: &str,
    ) -> Result<Option<ProcessedRow>, ActionError> {
        Ok(wait_until(self.wait, || async {
            self.store.processed(event_id).await.ok().flatten()
        })
        .await)
    }

    /// The retry of a dead letter: re-publishes the original bytes with the operator-retry
    /// header, its workflow written here (`store::RetryStart`).
    async fn republish(
        &self,
        id: &str,
        actor: &str,
        why: &str,
    ) -> Result<RetryReport, ActionError> {
        let (item, attempt, payload) = match self
            .store
            .queue_begin_retry(id, actor, why, now().0)
            .await?
        {
            RetryStart::AlreadyResolved { resolution } => {
                return Ok(RetryReport {
                    id: id.to_owned(),
                    result: "already_resolved".into(),
                    attempt: None,
                    msg_id: None,
                    reason: None,
                    resolution,
                });
            }
            RetryStart::Go {
                item,
                attempt,
                payload,
            } => (item, attempt, payload),
        };
        let (envelope, event) = match contract::decode_event(&payload) {
            Ok(decoded) => decoded,
            Err(e) => {
                let why_not = format!(
                    "this release cannot decode the message either ({e}); fix the producer and resolve it, or retry after an upgrade that reads it"
                );
                self.store
                    .queue_retry_failed(id, attempt, &why_not, now().0)
                    .await?;
                return Err(ActionError::NotRetryable(why_not));
            }
        };
        let event_id = event.id.to_string();
        let msg_id = format!("{event_id}:retry:{attempt}");
        let subject = self
            .bus
            .namespace()
            .event_subject(&envelope.source.provider, envelope.kind_name());
        if let Err(e) = self
            .bus
            .publish_operator_retry(subject, &msg_id, payload.into(), actor)
            .await
        {
            self.store
                .queue_retry_failed(id, attempt, &e.to_string(), now().0)
                .await?;
            return Err(ActionError::Unavailable(e.to_string()));
        }
        let other_id = (event_id != item.event_id).then_some(event_id.as_str());
        self.store
            .queue_retry_published(id, attempt, &msg_id, other_id, now().0)
            .await?;
        let reconciles = item.source == "dlq" || other_id.is_some();
        let settled = wait_until(self.wait, || async {
            if reconciles {
                let _ = self.store.queue_reconcile(now().0).await;
            }
            match self.store.queue_item(id).await {
                Ok(Some(d)) if d.item.state != "retrying" => Some(d.item),
                _ => None,
            }
        })
        .await;
        let (result, reason, resolution) = match settled {
            Some(i) => (i.state.clone(), Some(i.reason), i.resolution),
            None => ("pending".to_owned(), Some(item.reason), None),
        };
        Ok(RetryReport {
            id: id.to_owned(),
            result,
            attempt: Some(attempt),
            msg_id: Some(msg_id),
            reason,
            resolution,
        })
    }

    /// Publishes a `stock.corrected` event naming its actor and waits for the ledger's
    /// outcome; the ledger audits it. Refused (nothing published) without a reason,
    /// evidence and an approver.
    pub async fn correct_stock(&self, c: &Correction) -> Result<CorrectionReport, ActionError> {
        required(&[
            ("reason", &c.reason),
            ("evidence", &c.evidence),
            ("approved-by", &c.approved_by),
            ("actor", &c.actor),
        ])?;
        check_texts(&[
            (
                "reason",
                &c.reason,
                TextRule::Line(domain::types::NOTE_LEN_MAX),
            ),
            (
                "evidence",
                &c.evidence,
                TextRule::Text(domain::types::EVIDENCE_LEN_MAX),
            ),
            ("approved-by", &c.approved_by, TextRule::Line(ACTOR_LEN_MAX)),
            ("actor", &c.actor, TextRule::Line(ACTOR_LEN_MAX)),
            (
                "idempotency_key",
                c.idempotency_key.as_deref().unwrap_or_default(),
                TextRule::Line(IDEMPOTENCY_KEY_LEN_MAX),
            ),
        ])?;
        if c.delta == 0 {
            return Err(ActionError::Invalid("delta must not be zero".into()));
        }
        let sku =
            Sku::parse(c.sku.clone()).map_err(|e| ActionError::Invalid(format!("sku: {e}")))?;
        let location = Location::parse(c.location.clone())
            .map_err(|e| ActionError::Invalid(format!("location: {e}")))?;
        let kind = EventKind::StockCorrected {
            key: StockKey { sku, location },
            delta: c.delta,
            reason: c.reason.clone(),
            evidence: c.evidence.clone(),
            approved_by: c.approved_by.clone(),
            actor: Some(c.actor.clone()),
        };
        let key = key_or_fresh(c.idempotency_key.as_deref());
        let (event_id, duplicate) = self
            .publish(&kind, format!("operator:stock-correction:{key}"))
            .await?;
        let (outcome, reason) = match self.decision(&event_id).await? {
            Some(p) => (p.outcome.as_str().to_owned(), p.reason),
            None => ("pending".to_owned(), None),
        };
        Ok(CorrectionReport {
            event_id,
            duplicate,
            outcome,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_data_is_permanent_and_keeps_its_source() {
        let e = ActionError::from(store::StoreError::Corrupt("bad json".into()));
        assert!(matches!(e, ActionError::Corrupt(_)), "{e:?}");
        assert!(std::error::Error::source(&e).is_some());
        let e = ActionError::from(QueueError::Store(store::StoreError::Corrupt("x".into())));
        assert!(matches!(e, ActionError::Corrupt(_)), "{e:?}");
        // A conflict that outlived the store's retries may pass: retry later.
        let e = ActionError::from(store::StoreError::Conflict);
        assert!(matches!(e, ActionError::Unavailable(_)), "{e:?}");
    }

    fn field_of(r: Result<(), ActionError>) -> Option<&'static str> {
        match r {
            Err(ActionError::InvalidField { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn operator_text_is_checked_naming_the_field() {
        let ok = ActionRequest {
            actor: "console:ann".into(),
            reason: "parcel never left".into(),
            evidence: Some("ticket T-9\n\tcarrier scan missing".into()),
            idempotency_key: Some("k-1".into()),
        };
        assert!(check_request(&ok).is_ok());
        let nul = "a\0b".to_owned();
        let ansi = "\u{1b}[31mred".to_owned();
        let big = "a".repeat(200 * 1024);
        for bad in [&nul, &ansi, &big] {
            let with = |f: &dyn Fn(&mut ActionRequest)| {
                let mut r = ok.clone();
                f(&mut r);
                field_of(check_request(&r))
            };
            assert_eq!(with(&|r| r.actor = bad.clone()), Some("actor"));
            assert_eq!(with(&|r| r.reason = bad.clone()), Some("reason"));
            assert_eq!(with(&|r| r.evidence = Some(bad.clone())), Some("evidence"));
            assert_eq!(
                with(&|r| r.idempotency_key = Some(bad.clone())),
                Some("idempotency_key")
            );
        }
        let mut multi = ok.clone();
        multi.reason = "two\nlines".into();
        assert_eq!(field_of(check_request(&multi)), Some("reason"));
        assert_eq!(
            field_of(check_texts(&[(
                "approved-by",
                "x\0",
                TextRule::Line(ACTOR_LEN_MAX)
            )])),
            Some("approved-by")
        );
    }
}
