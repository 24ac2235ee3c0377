//! The providers' own reports, read into one shape: [`ReportLine`]. Stripe's itemized
//! balance change report and Adyen's Settlement details report in the column layouts the
//! providers document; for PortOne and iPint, whose formats are not public, a documented
//! generic CSV (`docs/providers.md`, "Reports").
//!
//! Reading is strict: a file that is not UTF-8, a missing column, a value that is not what
//! its column holds is refused with the line and column ([`ReportError`]); amounts are
//! exact decimals, never floats.

use rust_decimal::Decimal;
use serde::Serialize;

/// Whose report it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportProvider {
    Stripe,
    Adyen,
    PortOne,
    Ipint,
}

/// What one report line records, in the reconciliation's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// Money taken for a payment (Stripe `charge`/`payment`, Adyen `Settled`).
    Capture,
    /// Money given back (Stripe `refund`/`payment_refund`, Adyen `Refunded`).
    Refund,
    /// A dispute took the money (Stripe `dispute`/`adjustment` for a dispute, Adyen
    /// `Chargeback`).
    Chargeback,
    /// A dispute was won and the money came back.
    ChargebackReversal,
    /// Fees, payouts, transfers and anything else that is not about one payment: read,
    /// kept, never matched against the ledger.
    Other,
}

/// One line of a provider report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportLine {
    pub provider: ReportProvider,
    /// The line in the file (1 is the header line, so data starts at 2).
    pub line: usize,
    /// The provider's id of the payment the line is about: Stripe's PaymentIntent id
    /// (`pi_…`) when the report has it, else the charge id; Adyen's pspReference of the
    /// payment (for a modification, the original payment's); the generic CSV's
    /// `provider_payment_ref`.
    pub payment_ref: String,
    /// The merchant's order reference when the line carries it (Stripe metadata
    /// `order_ref` column when exported, Adyen `Merchant Reference`, generic
    /// `merchant_order_ref`).
    pub order_ref: Option<String>,
    pub kind: LineKind,
    /// The line's gross amount, exact, in major units, positive for money in and negative
    /// for money out as the report shows it.
    pub amount: Decimal,
    /// ISO 4217 code, uppercase.
    pub currency: String,
    /// When the provider says it happened (creation or booking time), Unix milliseconds,
    /// UTC.
    pub at_ms: i64,
    /// The report's own id of the line (Stripe balance transaction id, Adyen batch and
    /// journal, generic `line_id` when present), for evidence and duplicate detection.
    pub line_id: Option<String>,
}

/// Why a report could not be read. Nothing of the file is used then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default())]
pub struct ReportError {
    /// 1-based line in the file.
    pub line: usize,
    /// The column's header name, when one column is at fault.
    pub column: Option<String>,
    pub message: String,
}

mod adyen;
pub mod generic;
mod stripe;
mod table;

/// The largest report file accepted, in bytes (64 MiB): a month of Stripe balance
/// transactions for a busy shop is a few MB; the whole file is held in memory while read.
pub const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;

/// The most lines (header included) a report may have: 500 000 lines. Larger periods are
/// read as several reports.
pub const MAX_REPORT_LINES: usize = 500_000;

/// The longest value one field may hold, in characters (4 096): the providers document
/// 16 to 80 characters for ids and references; Stripe descriptions and metadata values
/// stay under 1 000.
pub const MAX_FIELD_CHARS: usize = 4_096;

/// Reads one report of `provider` from the file's bytes: Stripe's itemized balance change
/// report, Adyen's Settlement details report, or for PortOne and iPint the generic CSV
/// (`docs/providers.md`, "Reports"). All lines or an error: a file with one bad line is
/// refused whole, naming that line and column.
pub fn parse(provider: ReportProvider, bytes: &[u8]) -> Result<Vec<ReportLine>, ReportError> {
    let table = table::Table::read(bytes)?;
    match provider {
        ReportProvider::Stripe => stripe::parse(&table),
        ReportProvider::Adyen => adyen::parse(&table),
        ReportProvider::PortOne | ReportProvider::Ipint => generic::parse(provider, &table),
    }
}

impl ReportError {
    /// An error at `line`, about the whole line or file.
    pub(crate) fn line(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            column: None,
            message: message.into(),
        }
    }

    /// An error in one column of `line`.
    pub(crate) fn field(line: usize, column: &str, message: impl Into<String>) -> Self {
        Self {
            line,
            column: Some(column.to_owned()),
            message: message.into(),
        }
    }
}
