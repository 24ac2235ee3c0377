//! The operator actions on the exception queue and on stock, shared by `stockctl` and the
//! ingress's `/v1/exceptions` endpoints, each recorded in the audit trail (who, when, what,
//! why) before and after it takes effect.
//!
//! - [`Actions::retry`]: re-publishes the original event bytes (so the event id, and the
//!   ledger's deduplication by it, are kept) with a fresh `Nats-Msg-Id`
//!   (`<event id>:retry:<n>`, or JetStream's duplicate window would swallow it) and the
//!   operator-retry header, so the ledger decides the event again if its outcome is an
//!   open exception. A final outcome is never replaced, so a retry is safe while every
//!   consumer runs and safe to repeat.
//! - [`Actions::resolve`]: closes a problem as a deliberate no-op with a reason. No stock
//!   moves.
//! - [`Actions::correct_stock`]: publishes a `stock.corrected` event through JetStream; the
//!   ledger applies it like any other event (refused if it would make `available`
//!   negative). Refused here without a reason, evidence and an approver.

use std::time::Duration;

use bus::Bus;
use contract::{Envelope, Source};
use domain::{EventKind, Location, Sku, StockKey};
use serde::Serialize;
use serde_json::json;
use store::{NewAction, QueueError, ResolveDone, RetryStart, Store};

use crate::intake::wait_until;
use crate::now;

/// Why an action was not taken. Callers branch on the variant (exit codes, HTTP status).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No exception has this id (404).
    #[error("no exception {0}")]
    NotFound(String),
    /// The request is incomplete or invalid; nothing was done (400).
    #[error("refused: {0}")]
    Invalid(String),
    /// This problem cannot be retried as it is; nothing was published (409).
    #[error("not retryable: {0}")]
    NotRetryable(String),
    /// NATS or the database is unavailable; the attempt is recorded, try again later (503).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<QueueError> for ActionError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::NotFound(id) => ActionError::NotFound(id),
            QueueError::Invalid(m) => ActionError::Invalid(m),
            QueueError::Store(s) => ActionError::Unavailable(s.to_string()),
        }
    }
}

impl From<store::StoreError> for ActionError {
    fn from(e: store::StoreError) -> Self {
        ActionError::Unavailable(e.to_string())
    }
}

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryReport {
    pub id: String,
    /// `already_resolved` (nothing published), `resolved` (the event has a final outcome
    /// now), `open` (the exception still stands, or a new one replaced it) or `pending`
    /// (published; no outcome within the wait).
    pub result: String,
    pub attempt: Option<i64>,
    pub msg_id: Option<String>,
    /// The row's reason after the retry (a retry can turn `unknown_order` into `oversold`).
    pub reason: Option<String>,
    pub resolution: Option<String>,
}

/// What a resolve did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolveReport {
    pub id: String,
    /// `resolved` or `already_resolved`.
    pub result: String,
    pub resolution: Option<String>,
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
    /// `moved`, `noop` (refused, with `reason`) or `pending` (no outcome within the wait).
    pub outcome: String,
    pub reason: Option<String>,
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

fn required(fields: &[(&str, &str)]) -> Result<(), ActionError> {
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

impl Actions {
    /// Retries exception `id` (see the module documentation). `why` says what was fixed.
    pub async fn retry(
        &self,
        id: &str,
        actor: &str,
        why: &str,
    ) -> Result<RetryReport, ActionError> {
        required(&[("actor", actor), ("reason", why)])?;
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

    /// Resolves exception `id` as a deliberate no-op with `why`. No stock moves.
    pub async fn resolve(
        &self,
        id: &str,
        actor: &str,
        why: &str,
    ) -> Result<ResolveReport, ActionError> {
        required(&[("actor", actor), ("reason", why)])?;
        let done = self.store.queue_resolve(id, actor, why, now().0).await?;
        let resolution = self
            .store
            .queue_item(id)
            .await?
            .and_then(|d| d.item.resolution);
        let result = match done {
            ResolveDone::Resolved => "resolved",
            ResolveDone::AlreadyResolved { .. } => "already_resolved",
        };
        Ok(ResolveReport {
            id: id.to_owned(),
            result: result.into(),
            resolution,
        })
    }

    /// Publishes a `stock.corrected` event and waits for the ledger's outcome. Refused
    /// (nothing published) without a reason, evidence and an approver.
    pub async fn correct_stock(&self, c: &Correction) -> Result<CorrectionReport, ActionError> {
        required(&[
            ("reason", &c.reason),
            ("evidence", &c.evidence),
            ("approved-by", &c.approved_by),
            ("actor", &c.actor),
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
        };
        let key = c
            .idempotency_key
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let source = Source {
            provider: "operator".into(),
            identity: format!("operator:stock-correction:{key}"),
        };
        let t = now();
        let envelope = Envelope::new(&kind, source, t, t, None);
        envelope
            .to_domain()
            .map_err(|e| ActionError::Invalid(e.to_string()))?;
        let event_id = envelope.event_id().to_string();
        let target = format!("stock:{event_id}");
        let detail = json!({
            "sku": c.sku, "location": c.location, "delta": c.delta,
            "evidence": c.evidence, "approved_by": c.approved_by, "event_id": event_id,
        });
        let action = |result: &'static str| NewAction {
            target: &target,
            action: "stock_correct",
            actor: &c.actor,
            reason: &c.reason,
            result,
            detail: &detail,
        };
        self.store.record_action(action("publishing"), t.0).await?;
        let subject = self
            .bus
            .namespace()
            .event_subject("operator", envelope.kind_name());
        let published = match self
            .bus
            .publish_event(subject, &event_id, envelope.to_json().into(), None)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                let failed = json!({"error": e.to_string()});
                self.store
                    .record_action(
                        NewAction {
                            result: "not published",
                            detail: &failed,
                            ..action("")
                        },
                        now().0,
                    )
                    .await?;
                return Err(ActionError::Unavailable(e.to_string()));
            }
        };
        let outcome = wait_until(self.wait, || async {
            self.store.processed(&event_id).await.ok().flatten()
        })
        .await;
        let (label, reason) = match outcome {
            Some(p) => (p.outcome, p.reason),
            None => ("pending".to_owned(), None),
        };
        let result = match &reason {
            Some(r) => format!("{label}: {r}"),
            None => label.clone(),
        };
        self.store
            .record_action(
                NewAction {
                    result: &result,
                    ..action("")
                },
                now().0,
            )
            .await?;
        Ok(CorrectionReport {
            event_id,
            duplicate: published.duplicate,
            outcome: label,
            reason,
        })
    }
}
