//! The configured stock policy (`STOCKLEDGER_STOCK_POLICY`) put in force at start, as an
//! event: the policy is part of the ledger's state and changes only through
//! `policy.changed` on the stream, so a rebuild applies every event under the policy that
//! was in force when it was accepted (`docs/trigger-matrix.md`, "Stock policy").
//!
//! The rule: the ledger publishes a change when the configured policy differs both from
//! the policy in force and from the last policy configured at start (the last change whose
//! actor is [`CONFIGURED_ACTOR`], or the default when there is none). So a new value of the
//! variable is put in force at the next start, and a change an operator made since with
//! `stockctl policy set` is not undone by a restart with the same, unchanged variable.
//!
//! The event id is derived from the last change applied and the configured policy, so two
//! ledgers starting together publish one event (JetStream deduplicates the `Nats-Msg-Id`,
//! the ledger the event id), and a later start after another change publishes a new one.

use bus::Bus;
use contract::{Envelope, Source};
use domain::{EventKind, PolicySet};
use store::Store;

use crate::{LedgerError, now, sweeper::SELF_PROVIDER};

/// The actor of a change the ledger publishes at start.
pub const CONFIGURED_ACTOR: &str = "STOCKLEDGER_STOCK_POLICY";

/// The reason of a change the ledger publishes at start.
pub const CONFIGURED_REASON: &str = "configured at start";

/// Publishes a `policy.changed` to `configured` when the rule of the module documentation
/// says so; returns its event id, or `None` when nothing was published.
pub async fn put_configured_in_force(
    bus: &Bus,
    store: &Store,
    configured: &PolicySet,
) -> Result<Option<String>, LedgerError> {
    let in_force = store.policy_in_force().await?;
    let changes = store.policy_changes().await?;
    let last_configured = changes
        .iter()
        .rev()
        .find(|c| c.actor == CONFIGURED_ACTOR)
        .map(|c| c.policy.parse::<PolicySet>())
        .transpose()
        .map_err(|e| store::StoreError::Corrupt(format!("policy_changes.policy: {e}")))?
        .unwrap_or_default();
    if *configured == in_force || *configured == last_configured {
        return Ok(None);
    }
    let after = changes.last().map_or("none", |c| c.event_id.as_str());
    let kind = EventKind::PolicyChanged {
        policy: configured.clone(),
        actor: CONFIGURED_ACTOR.to_owned(),
        reason: CONFIGURED_REASON.to_owned(),
    };
    let source = Source {
        provider: SELF_PROVIDER.to_owned(),
        identity: format!("stockledger:policy-configured:after:{after}:{configured}"),
    };
    let t = now();
    let envelope = Envelope::new(&kind, source, t, t, None);
    let id = envelope.event_id.to_string();
    let payload = envelope
        .to_json()
        .map_err(|e| store::StoreError::Corrupt(format!("{e}: {}", e.source)))?;
    let subject = bus.namespace().event_subject(SELF_PROVIDER, kind.name());
    bus.publish_event(subject, &id, payload.into(), None)
        .await?;
    tracing::info!(
        event_id = %id,
        policy = %configured,
        previous = %in_force,
        "published the configured stock policy"
    );
    Ok(Some(id))
}
