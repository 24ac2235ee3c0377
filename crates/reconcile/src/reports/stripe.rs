//! Stripe's itemized balance change report (`balance_change_from_activity.itemized.N`, the
//! Balance report's itemized CSV) read into [`ReportLine`]s by column name.
//!
//! Stripe's report schema (docs.stripe.com, "Balance report type"): `gross` is a decimal in
//! the currency's major units (dollars, yen), `currency` a lowercase ISO code,
//! `created_utc` a `YYYY-MM-DD HH:MM:SS` time in UTC. Columns are chosen and ordered by the
//! merchant, so only the header names matter.

use super::table::{Table, at_offset_ms, currency, decimal, local_time};
use super::{LineKind, ReportError, ReportLine, ReportProvider};
use time::UtcOffset;

/// The balance transaction's id (`txn_…`): the line's id.
pub(crate) const BALANCE_TRANSACTION_ID: &str = "balance_transaction_id";
/// When the balance transaction was created, in UTC.
pub(crate) const CREATED_UTC: &str = "created_utc";
pub(crate) const CURRENCY: &str = "currency";
/// The gross amount in major units, signed as the balance moved.
pub(crate) const GROSS: &str = "gross";
pub(crate) const REPORTING_CATEGORY: &str = "reporting_category";
/// The object the balance transaction is about (`ch_…`, `re_…`, `py_…`, `po_…`).
pub(crate) const SOURCE_ID: &str = "source_id";
/// Optional: the PaymentIntent (`pi_…`) of a charge, refund or dispute.
pub(crate) const PAYMENT_INTENT_ID: &str = "payment_intent_id";
/// Optional: the charge (`ch_…`/`py_…`) a refund or dispute belongs to.
pub(crate) const CHARGE_ID: &str = "charge_id";
/// Optional: the payment's `order_ref` metadata, when the merchant exports it.
pub(crate) const ORDER_REF: &str = "payment_metadata[order_ref]";

/// What a Stripe reporting category means here. `refund_failure` (a refund that did not
/// reach the customer, money back in the balance) stays a refund with its positive sign.
fn kind(category: &str) -> LineKind {
    match category {
        "charge" => LineKind::Capture,
        "refund" | "refund_failure" => LineKind::Refund,
        "dispute" => LineKind::Chargeback,
        "dispute_reversal" => LineKind::ChargebackReversal,
        _ => LineKind::Other,
    }
}

pub(crate) fn parse(table: &Table) -> Result<Vec<ReportLine>, ReportError> {
    let id = table.require(BALANCE_TRANSACTION_ID)?;
    let created = table.require(CREATED_UTC)?;
    let currency_col = table.require(CURRENCY)?;
    let gross = table.require(GROSS)?;
    let category = table.require(REPORTING_CATEGORY)?;
    let source = table.require(SOURCE_ID)?;
    let payment_intent = table.optional(PAYMENT_INTENT_ID);
    let charge = table.optional(CHARGE_ID);
    let order = table.optional(ORDER_REF);

    table
        .rows()
        .iter()
        .map(|row| {
            let line = row.line;
            let txn = row.get(id);
            if txn.is_empty() {
                return Err(ReportError::field(line, BALANCE_TRANSACTION_ID, "empty"));
            }
            let kind = kind(row.get(category));
            let payment_ref = [row.opt(payment_intent), row.opt(charge), row.get(source)]
                .into_iter()
                .find(|r| !r.is_empty())
                .unwrap_or_default();
            if payment_ref.is_empty() && kind != LineKind::Other {
                return Err(ReportError::field(
                    line,
                    SOURCE_ID,
                    "a payment's line names no payment (payment_intent_id, charge_id, source_id all empty)",
                ));
            }
            let order_ref = Some(row.opt(order)).filter(|o| !o.is_empty()).map(str::to_owned);
            Ok(ReportLine {
                provider: ReportProvider::Stripe,
                line,
                payment_ref: payment_ref.to_owned(),
                order_ref,
                kind,
                amount: decimal(row.get(gross), line, GROSS)?,
                currency: currency(row.get(currency_col), line, CURRENCY)?,
                at_ms: at_offset_ms(local_time(row.get(created), line, CREATED_UTC)?, UtcOffset::UTC),
                line_id: Some(txn.to_owned()),
            })
        })
        .collect()
}
