//! Adyen's Settlement details report (the per-batch `settlement_detail_report_batch_N`
//! CSV) read into [`ReportLine`]s by column name.
//!
//! Adyen's report structure (docs.adyen.com, "Settlement details report"): `Psp Reference`
//! is the original payment's pspReference on every journal line (the modification's own is
//! `Modification Reference`); `Creation Date` is `YYYY-MM-DD HH:MM:SS` in the account's
//! time zone, named in `TimeZone`; gross amounts are decimals in major units of
//! `Gross Currency`, split into a debit and a credit column.

use super::table::{Table, at_offset_ms, currency, decimal, local_time};
use super::{LineKind, ReportError, ReportLine, ReportProvider};
use rust_decimal::Decimal;
use time::UtcOffset;

pub(crate) const PSP_REFERENCE: &str = "Psp Reference";
pub(crate) const MERCHANT_REFERENCE: &str = "Merchant Reference";
pub(crate) const CREATION_DATE: &str = "Creation Date";
pub(crate) const TIME_ZONE: &str = "TimeZone";
pub(crate) const TYPE: &str = "Type";
pub(crate) const GROSS_CURRENCY: &str = "Gross Currency";
pub(crate) const GROSS_DEBIT: &str = "Gross Debit (GC)";
pub(crate) const GROSS_CREDIT: &str = "Gross Credit (GC)";
pub(crate) const BATCH_NUMBER: &str = "Batch Number";
/// Optional: used when a line has no gross amount (fees, payouts, corrections).
pub(crate) const NET_CURRENCY: &str = "Net Currency";
pub(crate) const NET_DEBIT: &str = "Net Debit (NC)";
pub(crate) const NET_CREDIT: &str = "Net Credit (NC)";

/// What an Adyen journal type means here. `SecondChargeback` takes the money again for
/// the same payment: a chargeback. `RefundedReversed` (a refund that failed, money back)
/// stays a refund with its positive sign, as Stripe's `refund_failure`. The `…Bulk` types
/// are Settled/Refunded booked in bulk. Everything else (`Fee`, `MerchantPayout`,
/// `MiscCosts`, `DepositCorrection`, `InvoiceDeduction`, …) is not about one payment.
fn kind(journal_type: &str) -> LineKind {
    match journal_type {
        "Settled" | "SettledBulk" => LineKind::Capture,
        "Refunded" | "RefundedBulk" | "RefundedReversed" => LineKind::Refund,
        "Chargeback" | "SecondChargeback" => LineKind::Chargeback,
        "ChargebackReversed" => LineKind::ChargebackReversal,
        _ => LineKind::Other,
    }
}

/// The time zone names accepted in `TimeZone`, with their offsets in hours and minutes.
/// Ambiguous abbreviations (`CST`, `IST`, `AST`…) are refused; an account in those zones
/// writes its offset instead.
const ZONES: [(&str, i8, i8); 24] = [
    ("UTC", 0, 0),
    ("GMT", 0, 0),
    ("WET", 0, 0),
    ("WEST", 1, 0),
    ("BST", 1, 0),
    ("CET", 1, 0),
    ("CEST", 2, 0),
    ("EET", 2, 0),
    ("EEST", 3, 0),
    ("MSK", 3, 0),
    ("EST", -5, 0),
    ("EDT", -4, 0),
    ("MST", -7, 0),
    ("MDT", -6, 0),
    ("PST", -8, 0),
    ("PDT", -7, 0),
    ("HST", -10, 0),
    ("SGT", 8, 0),
    ("HKT", 8, 0),
    ("JST", 9, 0),
    ("KST", 9, 0),
    ("AEST", 10, 0),
    ("AEDT", 11, 0),
    ("NZST", 12, 0),
];

/// A `TimeZone` value: a name from [`ZONES`], or an offset `+HH:MM`, `+HHMM`, `+HH`,
/// optionally after `UTC` or `GMT` (`GMT+01:00`).
fn zone(text: &str, line: usize) -> Result<UtcOffset, ReportError> {
    let bad = || {
        ReportError::field(
            line,
            TIME_ZONE,
            format!(
                "`{text}` is not a time zone this reader knows (a listed name or an offset like +01:00)"
            ),
        )
    };
    if let Some((_, h, m)) = ZONES.iter().find(|(name, ..)| *name == text) {
        return UtcOffset::from_hms(*h, *m, 0).map_err(|_| bad());
    }
    let offset = text
        .strip_prefix("UTC")
        .or_else(|| text.strip_prefix("GMT"))
        .unwrap_or(text);
    let (sign, rest) = match offset.split_at_checked(1) {
        Some(("+", rest)) => (1, rest),
        Some(("-", rest)) => (-1, rest),
        _ => return Err(bad()),
    };
    let rest = rest.replace(':', "");
    if !(rest.len() == 2 || rest.len() == 4) || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let hours: i8 = rest[..2].parse().map_err(|_| bad())?;
    let minutes: i8 = if rest.len() == 4 {
        rest[2..].parse().map_err(|_| bad())?
    } else {
        0
    };
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).map_err(|_| bad())
}

/// An amount column that may be empty (zero then).
fn maybe(text: &str, line: usize, column: &str) -> Result<Option<Decimal>, ReportError> {
    if text.is_empty() {
        Ok(None)
    } else {
        decimal(text, line, column).map(Some)
    }
}

pub(crate) fn parse(table: &Table) -> Result<Vec<ReportLine>, ReportError> {
    let psp = table.require(PSP_REFERENCE)?;
    let merchant_ref = table.require(MERCHANT_REFERENCE)?;
    let created = table.require(CREATION_DATE)?;
    let tz = table.require(TIME_ZONE)?;
    let type_col = table.require(TYPE)?;
    let gross_currency = table.require(GROSS_CURRENCY)?;
    let gross_debit = table.require(GROSS_DEBIT)?;
    let gross_credit = table.require(GROSS_CREDIT)?;
    let batch = table.require(BATCH_NUMBER)?;
    let net_currency = table.optional(NET_CURRENCY);
    let net_debit = table.optional(NET_DEBIT);
    let net_credit = table.optional(NET_CREDIT);

    table
        .rows()
        .iter()
        .map(|row| {
            let line = row.line;
            let kind = kind(row.get(type_col));
            let payment_ref = row.get(psp);
            if payment_ref.is_empty() && kind != LineKind::Other {
                return Err(ReportError::field(
                    line,
                    PSP_REFERENCE,
                    "a payment's line has no Psp Reference",
                ));
            }
            let debit = maybe(row.get(gross_debit), line, GROSS_DEBIT)?;
            let credit = maybe(row.get(gross_credit), line, GROSS_CREDIT)?;
            let (amount, currency) = if debit.is_some() || credit.is_some() {
                let amount = credit.unwrap_or_default() - debit.unwrap_or_default();
                (
                    amount,
                    currency(row.get(gross_currency), line, GROSS_CURRENCY)?,
                )
            } else if kind == LineKind::Other {
                // Fees and payouts are booked in the net (settlement) currency only.
                let debit = maybe(row.opt(net_debit), line, NET_DEBIT)?;
                let credit = maybe(row.opt(net_credit), line, NET_CREDIT)?;
                let amount = credit.unwrap_or_default() - debit.unwrap_or_default();
                (amount, currency(row.opt(net_currency), line, NET_CURRENCY)?)
            } else {
                return Err(ReportError::field(
                    line,
                    GROSS_CREDIT,
                    "a payment's line has neither a gross debit nor a gross credit",
                ));
            };
            let local = local_time(row.get(created), line, CREATION_DATE)?;
            let at_ms = at_offset_ms(local, zone(row.get(tz), line)?);
            let batch_number = row.get(batch);
            let order_ref = Some(row.get(merchant_ref))
                .filter(|o| !o.is_empty())
                .map(str::to_owned);
            Ok(ReportLine {
                provider: ReportProvider::Adyen,
                line,
                payment_ref: payment_ref.to_owned(),
                order_ref,
                kind,
                amount,
                currency,
                at_ms,
                line_id: Some(format!("batch {batch_number} line {line}")),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn zones_by_name_and_offset() {
        assert_eq!(
            zone("CET", 2).unwrap(),
            UtcOffset::from_hms(1, 0, 0).unwrap()
        );
        assert_eq!(
            zone("PST", 2).unwrap(),
            UtcOffset::from_hms(-8, 0, 0).unwrap()
        );
        assert_eq!(
            zone("+05:30", 2).unwrap(),
            UtcOffset::from_hms(5, 30, 0).unwrap()
        );
        assert_eq!(
            zone("GMT-0330", 2).unwrap(),
            UtcOffset::from_hms(-3, -30, 0).unwrap()
        );
        assert_eq!(
            zone("UTC+09", 2).unwrap(),
            UtcOffset::from_hms(9, 0, 0).unwrap()
        );
        for bad in [
            "CST",
            "IST",
            "",
            "+5",
            "+15:00",
            "+01:60",
            "Europe/Amsterdam",
        ] {
            let e = zone(bad, 7).unwrap_err();
            assert_eq!((e.line, e.column.as_deref()), (7, Some(TIME_ZONE)), "{bad}");
        }
    }

    #[test]
    fn journal_types() {
        assert_eq!(kind("Settled"), LineKind::Capture);
        assert_eq!(kind("Refunded"), LineKind::Refund);
        assert_eq!(kind("RefundedReversed"), LineKind::Refund);
        assert_eq!(kind("Chargeback"), LineKind::Chargeback);
        assert_eq!(kind("SecondChargeback"), LineKind::Chargeback);
        assert_eq!(kind("ChargebackReversed"), LineKind::ChargebackReversal);
        assert_eq!(kind("MerchantPayout"), LineKind::Other);
        assert_eq!(kind("Fee"), LineKind::Other);
    }
}
