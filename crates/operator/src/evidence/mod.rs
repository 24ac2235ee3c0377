//! Evidence packs: for one order or one exception, everything that shows what happened in
//! one place (`docs/operations.md`, "Evidence packs"), for `stockctl evidence` and the
//! ingress's `GET /v1/exceptions/{id}/evidence` alike.
//!
//! [`gather`] reads it: from the store the order, every event recorded for it (the
//! envelope exactly as the ledger recorded it, its stream sequence, its outcome), the
//! entries they made with the (SKU, location)'s balance before and after each (computed
//! from the entry sequence), the exceptions with their operator actions; from the raw
//! stream (`bus::raw`) each provider body exactly as received, by one direct get of its
//! event's subject. [`build`] turns that into files (`pack.json`, `order.json`,
//! `events/<seq>-<event_id>.json`, `raw/<event_id>.<ext>`, `raw/verification.json`,
//! `ledger/entries.json`, `ledger/outcomes.json`, `exception.json` + `actions.json` or
//! `exceptions/<id>.json` + `exceptions/<id>.actions.json`, `reconciliation.json`,
//! `summary.html`), and [`manifest`] chains their digests.
//!
//! The reconciliation lines are the daily reconciliation's stored items that mention the
//! order or one of its events ([`EvidenceInput::reconciliation`]); written as
//! `reconciliation.json` when there are any.

mod files;
pub mod manifest;
mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bus::Bus;
use domain::OrderRef;
use serde::Serialize;
use serde_json::Value;
use store::{EntryRow, ProcessedDetail, QueueDetail, Store, StoreError};

pub use files::build;
pub use manifest::{Manifest, Pack, PackError, Problem, Verification, verify_path};

/// What a pack is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    /// An order and everything recorded for it.
    Order(String),
    /// One exception, its event, its order (when it names one) and that order's events.
    Exception(String),
}

/// Why a pack could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// No such order or exception (404, exit 1).
    #[error("{0}")]
    NotFound(String),
    /// The database or NATS is unavailable: try again later (503, exit 3).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Stored data this release cannot read (500, exit 1).
    #[error("stored data unreadable: {0}")]
    Corrupt(#[source] StoreError),
}

impl From<StoreError> for EvidenceError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            EvidenceError::Unavailable(e.to_string())
        } else {
            EvidenceError::Corrupt(e)
        }
    }
}

impl From<bus::BusError> for EvidenceError {
    fn from(e: bus::BusError) -> Self {
        EvidenceError::Unavailable(e.to_string())
    }
}

/// What became of an event's raw body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RawStatus {
    /// Stored: `path` in the pack, its SHA-256 and whether that is the envelope's
    /// `raw_digest` (the digest the ingress recorded at acceptance).
    Kept {
        path: String,
        sha256: String,
        matches_raw_digest: bool,
        content_type: Option<String>,
        received_at: Option<i64>,
        raw_stream_seq: u64,
    },
    /// Older than the retention: the stream dropped it.
    Expired { detail: String },
    /// Raw bodies are not kept (`STOCKLEDGER_RAW_RETENTION=0`), or this one never was
    /// (accepted before raw bodies were kept, or the stream was removed).
    NotKept { detail: String },
    /// The event has no provider body (born inside stockledger: merchant API, operator,
    /// ledger).
    NoBody,
}

/// One event as the pack shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EventEvidence {
    pub event_id: String,
    pub kind: String,
    /// Who sent it (`source.provider` of the envelope).
    pub provider: String,
    pub stream_seq: Option<i64>,
    pub outcome: String,
    pub reason: Option<String>,
    pub processed_at: i64,
    pub duplicates: i64,
    /// The outcome as recorded (JSON).
    pub outcome_detail: Value,
    /// `sha256:<hex>` of the body at acceptance, from the envelope.
    pub raw_digest: Option<String>,
    /// How the sender was authenticated before the event was published.
    pub verified_by: &'static str,
    pub raw: RawStatus,
    /// The envelope text exactly as recorded (written as its own file).
    #[serde(skip)]
    pub envelope: String,
    /// The raw body, when kept (written as its own file).
    #[serde(skip)]
    pub raw_body: Option<Vec<u8>>,
}

/// One entry with the balance of its (SKU, location) before and after it.
#[derive(Debug, Clone, Serialize)]
pub struct EntryEvidence {
    #[serde(flatten)]
    pub entry: EntryRow,
    pub balance_before: BTreeMap<String, i64>,
    pub balance_after: BTreeMap<String, i64>,
}

/// Everything a pack holds, gathered; [`build`] writes it.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceInput {
    pub subject: Subject,
    /// When it was gathered (Unix ms).
    pub generated_at: i64,
    /// The raw stream's retention (`STOCKLEDGER_RAW_RETENTION` of the ingress), in
    /// seconds; 0 when there is no raw stream.
    pub raw_retention_secs: u64,
    pub order: Option<Value>,
    pub events: Vec<EventEvidence>,
    pub entries: Vec<EntryEvidence>,
    pub exceptions: Vec<QueueDetail>,
    /// The daily reconciliation's lines that mention the order or one of its events, in
    /// each date's current run (`store::Store::recon_items_mentioning`;
    /// `reconciliation.json`).
    pub reconciliation: Vec<Value>,
}

/// Gathers the evidence of `subject`.
pub async fn gather(
    store: &Store,
    bus: &Bus,
    subject: Subject,
    now: i64,
) -> Result<EvidenceInput, EvidenceError> {
    let (order_ref, exceptions) = match &subject {
        Subject::Order(r) => {
            let ids = store.exceptions_for_order(r).await?;
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                rows.extend(store.queue_item(&id).await?);
            }
            (Some(r.clone()), rows)
        }
        Subject::Exception(id) => {
            let row = store
                .queue_item(id)
                .await?
                .ok_or_else(|| EvidenceError::NotFound(format!("no exception {id}")))?;
            (row.item.order_ref.clone(), vec![row])
        }
    };
    let order = match order_ref.as_deref().map(OrderRef::parse) {
        Some(Ok(r)) => store.order(&r).await?,
        _ => None,
    };
    let event_ids = event_ids(store, order_ref.as_deref(), &exceptions).await?;
    if let Subject::Order(r) = &subject
        && order.is_none()
        && event_ids.is_empty()
    {
        // An order the ledger never registered may still have events (deferred, refused).
        return Err(EvidenceError::NotFound(format!("no order {r}")));
    }
    // The retention the ingress gave the raw stream (it alone sets it); none without one.
    let retention = bus.raw_stream_retention().await?.unwrap_or(Duration::ZERO);
    let mut events = Vec::with_capacity(event_ids.len());
    for id in &event_ids {
        if let Some(detail) = store.processed_detail(id).await? {
            events.push(event_evidence(bus, retention, detail, now).await?);
        }
    }
    events.sort_by_key(|e| (e.stream_seq.unwrap_or(i64::MAX), e.processed_at));
    let entries = entries(store, &event_ids).await?;
    let reconciliation = store
        .recon_items_mentioning(order_ref.as_deref(), &event_ids)
        .await?;
    Ok(EvidenceInput {
        subject,
        generated_at: now,
        raw_retention_secs: retention.as_secs(),
        order: order.and_then(|o| serde_json::to_value(o).ok()),
        events,
        entries,
        exceptions,
        reconciliation,
    })
}

/// The events a pack covers: the order's, and each exception's own (and its retry's).
async fn event_ids(
    store: &Store,
    order_ref: Option<&str>,
    exceptions: &[QueueDetail],
) -> Result<Vec<String>, EvidenceError> {
    let mut ids = BTreeSet::new();
    if let Some(Ok(r)) = order_ref.map(OrderRef::parse) {
        ids.extend(
            store
                .order_events(&r)
                .await?
                .into_iter()
                .map(|e| e.event_id),
        );
    }
    for x in exceptions {
        ids.insert(x.item.event_id.clone());
        ids.extend(x.item.retry_event_id.clone());
    }
    Ok(ids.into_iter().take(store::EVIDENCE_EVENTS_MAX).collect())
}

/// Every entry of `event_ids` with its balances before and after.
async fn entries(store: &Store, event_ids: &[String]) -> Result<Vec<EntryEvidence>, EvidenceError> {
    let rows = store.entries_for_events(event_ids).await?;
    let mut out = Vec::with_capacity(rows.len());
    for entry in rows {
        let before = store
            .balance_before(&entry.sku, &entry.location, entry.seq)
            .await?;
        let mut after = before.clone();
        *after.entry(entry.from.clone()).or_default() -= entry.quantity;
        *after.entry(entry.to.clone()).or_default() += entry.quantity;
        out.push(EntryEvidence {
            entry,
            balance_before: before,
            balance_after: after,
        });
    }
    Ok(out)
}

/// How a provider's sender is authenticated before its event is published
/// (`docs/providers.md`).
pub fn verified_by(provider: &str) -> &'static str {
    match provider {
        "portone" => {
            "PortOne: webhook signature_hash (HMAC-SHA256 under STOCKLEDGER_PORTONE_SECRET_KEY), or the inventory confirmation's portone_key, checked by the ingress"
        }
        "stripe" => {
            "Stripe: Stripe-Signature header (HMAC-SHA256 of timestamp and body, 300 s tolerance) checked by the ingress; a thin event completed from Stripe's API"
        }
        "adyen" => {
            "Adyen: every item's hmacSignature (HMAC-SHA256 under STOCKLEDGER_ADYEN_HMAC_KEY), and HTTP Basic when configured, checked by the ingress"
        }
        "ipint" => {
            "iPint: the callback is unsigned; the invoice was verified by a signed lookup of iPint's API (the stored body is that answer)"
        }
        "merchant" => "merchant API: bearer token (STOCKLEDGER_API_TOKEN)",
        _ => "born inside stockledger (operator action, ledger, sweeper): no provider signature",
    }
}

/// One recorded event with its raw body looked up.
async fn event_evidence(
    bus: &Bus,
    retention: Duration,
    detail: ProcessedDetail,
    now: i64,
) -> Result<EventEvidence, EvidenceError> {
    let envelope: Value = serde_json::from_str(&detail.envelope).unwrap_or(Value::Null);
    let provider = envelope
        .pointer("/source/provider")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let raw_digest = envelope
        .get("raw_digest")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let recorded_at = envelope
        .get("recorded_at")
        .and_then(Value::as_i64)
        .unwrap_or(detail.row.processed_at);
    let event_id = detail.row.event_id.clone();
    let (raw, raw_body) = match &raw_digest {
        None => (RawStatus::NoBody, None),
        Some(digest) => {
            let at = Age { recorded_at, now };
            raw_status(bus, retention, &provider, &event_id, digest, at).await?
        }
    };
    Ok(EventEvidence {
        kind: detail.row.kind.clone(),
        outcome: detail.row.outcome.as_str().to_owned(),
        reason: detail.row.reason.map(|r| r.as_str().to_owned()),
        processed_at: detail.row.processed_at,
        duplicates: detail.row.duplicates,
        stream_seq: detail.stream_seq,
        outcome_detail: serde_json::from_str(&detail.outcome_json).unwrap_or(Value::Null),
        verified_by: verified_by(&provider),
        event_id,
        provider,
        raw_digest,
        raw,
        envelope: detail.envelope,
        raw_body,
    })
}

/// The raw body of one event, and what the pack says about it.
async fn raw_status(
    bus: &Bus,
    retention: Duration,
    provider: &str,
    event_id: &str,
    digest: &str,
    Age { recorded_at, now }: Age,
) -> Result<(RawStatus, Option<Vec<u8>>), EvidenceError> {
    if let Some(stored) = bus.raw_body(provider, event_id, recorded_at).await? {
        let sha256 = manifest::sha256_hex(&stored.body);
        let ext = extension(stored.content_type.as_deref());
        let status = RawStatus::Kept {
            path: format!("raw/{}.{ext}", file_name(event_id)),
            matches_raw_digest: digest.strip_prefix("sha256:") == Some(sha256.as_str()),
            sha256,
            content_type: stored.content_type,
            received_at: stored.received_at_ms,
            raw_stream_seq: stored.stream_seq,
        };
        return Ok((status, Some(stored.body.to_vec())));
    }
    let detail = if retention.is_zero() {
        "not kept: no raw stream (STOCKLEDGER_RAW_RETENTION=0 on the ingress)".to_owned()
    } else if now.saturating_sub(recorded_at) >= millis(retention) {
        return Ok((
            RawStatus::Expired {
                detail: format!(
                    "expired under STOCKLEDGER_RAW_RETENTION ({} days)",
                    retention.as_secs() / 86_400
                ),
            },
            None,
        ));
    } else {
        "not in the raw stream: accepted before raw bodies were kept, or the stream was removed"
            .to_owned()
    };
    Ok((RawStatus::NotKept { detail }, None))
}

/// When an event was recorded and when the pack is made (Unix ms).
struct Age {
    recorded_at: i64,
    now: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `id` fit for a file name: anything but letters, digits, `-` and `_` becomes `_` (a dead
/// letter's id is `<stream>:<sequence>`).
pub(crate) fn file_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A file extension for a body of `content_type`.
fn extension(content_type: Option<&str>) -> &'static str {
    match content_type.map(str::to_ascii_lowercase) {
        Some(ct) if ct.contains("json") => "json",
        Some(ct) if ct.contains("x-www-form-urlencoded") => "form",
        Some(ct) if ct.starts_with("text/") => "txt",
        _ => "bin",
    }
}
