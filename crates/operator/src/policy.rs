//! Changing the stock policy (`stockctl policy set`): a `policy.changed` event published
//! through JetStream like every operator action (`actions`), applied by the ledger in
//! stream order, so every later event is decided under it and a rebuild applies it again
//! (`docs/trigger-matrix.md`, "Stock policy"). The event id comes from the source identity
//! `operator:policy:<key>`, `key` being the operator's idempotency key or a fresh one: the
//! same key again is the same change, applied once.

use domain::{EventKind, OutcomeKind, PolicySet, ReasonCode};
use serde::Serialize;

use crate::actions::{
    ACTOR_LEN_MAX, ActionError, ActionRequest, Actions, IDEMPOTENCY_KEY_LEN_MAX, TextRule,
    check_texts, key_or_fresh, required,
};

/// What a change of policy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyReport {
    /// The `policy.changed` event.
    pub event_id: String,
    /// The policy asked for (canonical text).
    pub policy: String,
    /// True when JetStream already had this change (same idempotency key).
    pub duplicate: bool,
    /// `changed`, `unchanged` (already in force) or `pending` (no outcome within the wait;
    /// the ledger will apply it).
    pub result: String,
}

impl Actions {
    /// Publishes a change of the stock policy to `policy` by `req.actor` for `req.reason`,
    /// and waits for the ledger's decision. Refused before anything is published without
    /// an actor or a reason.
    pub async fn set_policy(
        &self,
        policy: &PolicySet,
        req: &ActionRequest,
    ) -> Result<PolicyReport, ActionError> {
        required(&[("actor", &req.actor), ("reason", &req.reason)])?;
        check_texts(&[
            ("actor", &req.actor, TextRule::Line(ACTOR_LEN_MAX)),
            (
                "reason",
                &req.reason,
                TextRule::Line(domain::types::NOTE_LEN_MAX),
            ),
            (
                "idempotency_key",
                req.idempotency_key.as_deref().unwrap_or_default(),
                TextRule::Line(IDEMPOTENCY_KEY_LEN_MAX),
            ),
        ])?;
        let kind = EventKind::PolicyChanged {
            policy: policy.clone(),
            actor: req.actor.clone(),
            reason: req.reason.clone(),
        };
        let key = key_or_fresh(req.idempotency_key.as_deref());
        let (event_id, duplicate) = self
            .publish(&kind, format!("operator:policy:{key}"))
            .await?;
        let result = match self.decision(&event_id).await? {
            None => "pending".to_owned(),
            Some(p) => match (p.outcome, p.reason) {
                (OutcomeKind::NoOp, Some(ReasonCode::PolicyChanged)) => "changed".to_owned(),
                (OutcomeKind::NoOp, Some(ReasonCode::PolicyUnchanged)) => "unchanged".to_owned(),
                (_, other) => {
                    let code = other.map_or("", ReasonCode::as_str).to_owned();
                    return Err(ActionError::Refused {
                        message: format!("the ledger refused the change: {code}"),
                        code,
                    });
                }
            },
        };
        Ok(PolicyReport {
            event_id,
            policy: policy.to_string(),
            duplicate,
            result,
        })
    }
}
