//! `docs/providers.md` cannot drift from the code: every row of the Stripe, Adyen and
//! iPint tables is turned into the provider's message, run through the translation the
//! ingress and the verifier use (`providers::events`), and its contract event and dedupe key compared with the table.
#![allow(clippy::unwrap_used)]

use domain::EventKind;
use providers::events::{self, IpintVerdict as Verdict};

/// One table row: the backticked tokens of the message cell, the contract event (first
/// backticked token, or the cell's first words), and the dedupe key template.
struct Row {
    message: Vec<String>,
    event: String,
    event_cell: String,
    key: String,
}

fn ticks(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn table(doc: &str, heading: &str) -> Vec<Row> {
    let start = doc
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let section = &doc[start + 4..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let rows: Vec<Row> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 4, "{l}");
            let event = ticks(cells[1])
                .into_iter()
                .next()
                .unwrap_or_else(|| cells[1].to_owned());
            Row {
                message: ticks(cells[0]),
                event,
                event_cell: cells[1].to_owned(),
                key: ticks(cells[2]).into_iter().next().unwrap_or_default(),
            }
        })
        .collect();
    assert!(rows.len() > 3, "{heading}: {} rows", rows.len());
    rows
}

fn attr<'a>(tokens: &'a [String], name: &str) -> Option<&'a str> {
    tokens
        .iter()
        .find_map(|t| t.strip_prefix(&format!("{name}=")))
}

fn doc() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/providers.md"
    ))
    .unwrap()
}

fn name(kind: Option<&EventKind>) -> &str {
    kind.map_or("ignored", EventKind::name)
}

/// A closed chargeback's outcome must be the one the row names.
fn check_outcome(kind: Option<&EventKind>, row: &Row) {
    if let Some(EventKind::ChargebackClosed { outcome, .. }) = kind {
        let word = match outcome {
            domain::ChargebackOutcome::Won => "(won)",
            domain::ChargebackOutcome::Lost => "(lost)",
        };
        assert!(
            row.event_cell.contains(word),
            "{:?}: {}",
            row.message,
            row.event_cell
        );
    }
}

#[test]
fn stripe_table_matches_the_code() {
    for row in table(&doc(), "Stripe") {
        let kind = &row.message[0];
        let status = attr(&row.message, "status")
            .map(|s| format!(r#","status":"{s}""#))
            .unwrap_or_default();
        let object = if kind.starts_with("charge.dispute") {
            "dispute"
        } else {
            "charge"
        };
        let body = format!(
            r#"{{"id":"evt_doc","type":"{kind}","data":{{"object":{{"id":"dp_1","object":"{object}","payment_intent":"pi_1","amount":100,"currency":"usd"{status}}}}}}}"#
        );
        let event = providers::stripe::parse_event(body.as_bytes()).unwrap();
        let translated = events::stripe_event(&event).unwrap();
        assert_eq!(name(translated.as_ref()), row.event, "{kind}");
        check_outcome(translated.as_ref(), &row);
        if translated.is_some() {
            assert_eq!(
                row.key.replace("{event id}", &event.id),
                event.dedupe_key(),
                "{kind}"
            );
        }
    }
}

#[test]
fn adyen_table_matches_the_code() {
    for row in table(&doc(), "Adyen") {
        let code = &row.message[0];
        let success = attr(&row.message, "success").unwrap();
        let action = attr(&row.message, "modification.action")
            .map(|a| format!(r#","modification.action":"{a}""#))
            .unwrap_or_default();
        let body = format!(
            r#"{{"live":"false","notificationItems":[{{"NotificationRequestItem":{{"additionalData":{{"hmacSignature":"x"{action}}},"amount":{{"currency":"EUR","value":100}},"eventCode":"{code}","merchantAccountCode":"A","merchantReference":"ord-1","originalReference":"P0","pspReference":"P1","success":"{success}"}}}}]}}"#
        );
        let item = providers::adyen::parse_batch(body.as_bytes())
            .unwrap()
            .items
            .remove(0);
        let translated = events::adyen_event(&item).unwrap();
        assert_eq!(name(translated.as_ref()), row.event, "{code} {success}");
        check_outcome(translated.as_ref(), &row);
        if translated.is_some() {
            let key = row
                .key
                .replace("{pspReference}", "P1")
                .replace("{eventCode}", code)
                .replace("{success}", success);
            assert_eq!(key, item.dedupe_key(), "{code}");
        }
    }
}

#[test]
fn ipint_table_matches_the_code() {
    for row in table(&doc(), "iPint") {
        let status = &row.message[0];
        let received = match attr(&row.message, "paid").unwrap() {
            "full" => "10.00",
            "over" => "10.50",
            "short" => "9.99",
            "missing" => "",
            _ => "0",
        };
        let body = format!(
            r#"{{"data":{{"invoice_id":"inv_doc","transaction_status":"{status}","local_currency_code":"USD","invoice_amount_in_local_currency":"10.00","invoice_amount_in_usd":"10.00","invoice_crypto_amount":"0.1","received_amount_in_local_currency":"{received}","received_amount_in_usd":"{received}","received_crypto_amount":"{}"}}}}"#,
            if received.is_empty() { "" } else { "0.1" }
        );
        let invoice = providers::ipint::parse_invoice(body.as_bytes()).unwrap();
        match events::ipint_verdict(&invoice).unwrap() {
            Verdict::Publish { kind, identity } => {
                assert_eq!(kind.name(), row.event, "{status}");
                let key = row
                    .key
                    .replace("{invoice_id}", "inv_doc")
                    .replace("{status}", status);
                assert_eq!(key, identity, "{status}");
                if let EventKind::PaymentFlagged { reason, .. } = kind {
                    let code = match reason {
                        domain::FlagReason::Unverifiable => "unverifiable",
                        domain::FlagReason::AmountMismatch => "amount_mismatch",
                    };
                    assert!(
                        row.event_cell.contains(&format!("`{code}`")),
                        "{status}: {}",
                        row.event_cell
                    );
                }
            }
            Verdict::Later { .. } => assert!(
                row.event.starts_with("verify again later"),
                "{status}: {}",
                row.event
            ),
        }
    }
}
