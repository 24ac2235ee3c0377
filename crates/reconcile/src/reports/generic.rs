//! The generic report CSV for providers whose own reports are not public (PortOne, iPint):
//! one payment movement a line, in columns this project documents (`docs/providers.md`,
//! "Reports"), built by the merchant from the provider's exports.

use super::table::{Table, currency, decimal, rfc3339, unix_ms};
use super::{LineKind, ReportError, ReportLine, ReportProvider};

/// `portone` or `ipint`: must be the provider the file was given for.
pub const PROVIDER: &str = "provider";
/// The provider's payment id (PortOne `paymentId`, iPint invoice id).
pub const PROVIDER_PAYMENT_REF: &str = "provider_payment_ref";
/// The merchant's order reference; may be empty.
pub const MERCHANT_ORDER_REF: &str = "merchant_order_ref";
/// `capture`, `refund`, `chargeback`, `chargeback_reversal` or `other`.
pub const TYPE: &str = "type";
/// A plain decimal in major units, negative for money out (`-12.50`).
pub const AMOUNT: &str = "amount";
/// ISO 4217 code.
pub const CURRENCY: &str = "currency";
/// RFC 3339 time with an offset.
pub const TIME: &str = "time";
/// Optional: the line's own id in the provider's export.
pub const LINE_ID: &str = "line_id";

/// The columns in the order `docs/providers.md` shows them (`line_id` optional, last).
pub const COLUMNS: [&str; 8] = [
    PROVIDER,
    PROVIDER_PAYMENT_REF,
    MERCHANT_ORDER_REF,
    TYPE,
    AMOUNT,
    CURRENCY,
    TIME,
    LINE_ID,
];

/// The `provider` column's value for `provider`.
pub fn provider_name(provider: ReportProvider) -> &'static str {
    match provider {
        ReportProvider::Stripe => "stripe",
        ReportProvider::Adyen => "adyen",
        ReportProvider::PortOne => "portone",
        ReportProvider::Ipint => "ipint",
    }
}

/// The `type` column's value for `kind`.
pub fn type_name(kind: LineKind) -> &'static str {
    match kind {
        LineKind::Capture => "capture",
        LineKind::Refund => "refund",
        LineKind::Chargeback => "chargeback",
        LineKind::ChargebackReversal => "chargeback_reversal",
        LineKind::Other => "other",
    }
}

fn kind(text: &str) -> Option<LineKind> {
    [
        LineKind::Capture,
        LineKind::Refund,
        LineKind::Chargeback,
        LineKind::ChargebackReversal,
        LineKind::Other,
    ]
    .into_iter()
    .find(|k| type_name(*k) == text)
}

pub(crate) fn parse(
    provider: ReportProvider,
    table: &Table,
) -> Result<Vec<ReportLine>, ReportError> {
    // A column this format does not have is a typo or the wrong file: refused.
    if let Some(unknown) = table
        .headers()
        .iter()
        .find(|h| !COLUMNS.contains(&h.as_str()))
    {
        return Err(ReportError::field(
            1,
            unknown,
            "not a column of the generic report",
        ));
    }
    let provider_col = table.require(PROVIDER)?;
    let payment = table.require(PROVIDER_PAYMENT_REF)?;
    let order = table.require(MERCHANT_ORDER_REF)?;
    let type_col = table.require(TYPE)?;
    let amount = table.require(AMOUNT)?;
    let currency_col = table.require(CURRENCY)?;
    let time = table.require(TIME)?;
    let line_id = table.optional(LINE_ID);
    let expected = provider_name(provider);

    table
        .rows()
        .iter()
        .map(|row| {
            let line = row.line;
            let named = row.get(provider_col);
            if named != expected {
                return Err(ReportError::field(
                    line,
                    PROVIDER,
                    format!("`{named}` in a report read for {expected}"),
                ));
            }
            let payment_ref = row.get(payment);
            if payment_ref.is_empty() {
                return Err(ReportError::field(line, PROVIDER_PAYMENT_REF, "empty"));
            }
            let kind = kind(row.get(type_col)).ok_or_else(|| {
                ReportError::field(
                    line,
                    TYPE,
                    format!(
                        "`{}` is not capture, refund, chargeback, chargeback_reversal or other",
                        row.get(type_col)
                    ),
                )
            })?;
            let non_empty = |s: &str| Some(s).filter(|s| !s.is_empty()).map(str::to_owned);
            Ok(ReportLine {
                provider,
                line,
                payment_ref: payment_ref.to_owned(),
                order_ref: non_empty(row.get(order)),
                kind,
                amount: decimal(row.get(amount), line, AMOUNT)?,
                currency: currency(row.get(currency_col), line, CURRENCY)?,
                at_ms: unix_ms(rfc3339(row.get(time), line, TIME)?),
                line_id: non_empty(row.opt(line_id)),
            })
        })
        .collect()
}
