//! The files of an evidence pack: from an [`EvidenceInput`] to a [`Pack`] (every file but
//! the manifest, which [`Pack`] computes when it is written).

use serde::Serialize;
use serde_json::Value;
use store::{ActionRow, QueueDetail};

use super::manifest::{self, Pack};
use super::{EvidenceInput, RawStatus, Subject, file_name, summary};

/// The outcome rows of `ledger/outcomes.json`.
#[derive(Serialize)]
struct OutcomeLine<'a> {
    event_id: &'a str,
    kind: &'a str,
    stream_seq: Option<i64>,
    outcome: &'a str,
    reason: Option<&'a str>,
    processed_at: i64,
    duplicates: i64,
    detail: &'a Value,
}

/// The files of a pack for `input` (without the manifest).
pub fn build(input: &EvidenceInput) -> Pack {
    let mut pack = Pack::default();
    pack.add_json(
        "pack.json",
        &serde_json::json!({
            "subject": input.subject,
            "generated_at": input.generated_at,
            "generator": concat!("stockledger ", env!("CARGO_PKG_VERSION")),
            "raw_retention_secs": input.raw_retention_secs,
        }),
    );
    if let Some(order) = &input.order {
        pack.add_json("order.json", order);
    }
    for e in &input.events {
        let seq = e.stream_seq.unwrap_or(0);
        pack.add(
            format!("events/{seq:012}-{}.json", file_name(&e.event_id)),
            e.envelope.clone().into_bytes(),
        );
        if let (RawStatus::Kept { path, .. }, Some(body)) = (&e.raw, &e.raw_body) {
            pack.add(path.clone(), body.clone());
        }
    }
    pack.add_json("raw/verification.json", &verification(input));
    pack.add_json("ledger/entries.json", &input.entries);
    let outcomes: Vec<OutcomeLine<'_>> = input
        .events
        .iter()
        .map(|e| OutcomeLine {
            event_id: &e.event_id,
            kind: &e.kind,
            stream_seq: e.stream_seq,
            outcome: &e.outcome,
            reason: e.reason.as_deref(),
            processed_at: e.processed_at,
            duplicates: e.duplicates,
            detail: &e.outcome_detail,
        })
        .collect();
    pack.add_json("ledger/outcomes.json", &outcomes);
    add_exceptions(&mut pack, input);
    if !input.reconciliation.is_empty() {
        pack.add_json("reconciliation.json", &input.reconciliation);
    }
    let listing: Vec<(String, String)> = pack
        .files
        .iter()
        .map(|(p, b)| (p.clone(), manifest::sha256_hex(b)))
        .collect();
    pack.add(
        "summary.html",
        summary::render(input, &listing).into_bytes(),
    );
    pack
}

/// `raw/verification.json`: per event, who vouched for the sender and whether the stored
/// body is the one accepted.
fn verification(input: &EvidenceInput) -> Vec<Value> {
    input
        .events
        .iter()
        .map(|e| {
            serde_json::json!({
                "event_id": e.event_id,
                "provider": e.provider,
                "verified_by": e.verified_by,
                "raw_digest": e.raw_digest,
                "raw": e.raw,
            })
        })
        .collect()
}

/// `exception.json` + `actions.json` for an exception's pack; one pair per exception
/// under `exceptions/` for an order's.
fn add_exceptions(pack: &mut Pack, input: &EvidenceInput) {
    let split = |x: &QueueDetail| -> (QueueDetail, Vec<ActionRow>) {
        let mut row = x.clone();
        let actions = std::mem::take(&mut row.actions);
        (row, actions)
    };
    match &input.subject {
        Subject::Exception(_) => {
            if let Some(x) = input.exceptions.first() {
                let (row, actions) = split(x);
                pack.add_json("exception.json", &row);
                pack.add_json("actions.json", &actions);
            }
        }
        Subject::Order(_) => {
            for x in &input.exceptions {
                let (row, actions) = split(x);
                let id = file_name(&row.item.id);
                pack.add_json(format!("exceptions/{id}.json"), &row);
                pack.add_json(format!("exceptions/{id}.actions.json"), &actions);
            }
        }
    }
}
