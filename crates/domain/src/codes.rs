//! The wire names of outcomes and reason codes, in one place.
//!
//! Outcome kinds and reason codes cross every boundary as text: the `outcome` and `reason`
//! columns of the ledger database, the ledger's decision notices, the exception queue and
//! its metrics, the merchant API's answers. Every crate uses the typed values here and
//! turns them into text only through [`OutcomeKind::as_str`] / [`ReasonCode::as_str`]
//! (and serde, which uses the same names), so a name is written once and a typo is a
//! compile error rather than a silently unmatched string.
//!
//! The names are a stable interface (`docs/operations.md` lists the exception codes):
//! never rename one; add new ones.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::ChargebackOutcome;
use crate::outcome::{DeclineReason, RefusalReason};

/// A reason code or outcome kind this release does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownCode {
    /// What was being parsed (`outcome`, `reason code`, …).
    pub what: &'static str,
    pub value: String,
}

/// Defines `as_str`, `ALL`, `Display`, `FromStr` and string serde for a fieldless enum,
/// from one table of wire names.
macro_rules! wire_names {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal,)+ }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)+];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl FromStr for $ty {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, UnknownCode> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(UnknownCode { what: $what, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Adds serde as the wire name, for the types here that are not already serde-derived.
macro_rules! serde_as_str {
    ($ty:ident) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Borrowed when the input allows it, owned otherwise (escaped JSON).
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// With the `openapi` feature: the type's OpenAPI schema, a string that is one of its wire
/// names (`names`, the same table serde uses), so an API description lists every code.
macro_rules! string_schema {
    ($ty:ident, $names:expr) => {
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let names: Vec<&'static str> = $names.collect();
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(names))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $ty {}
    };
}

/// Which of the three outcomes an event got (the `outcome` column, the notices' `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutcomeKind {
    /// Stock moved.
    Moved,
    /// Deliberately nothing (`noop`, without underscore: the stored name since the start).
    NoOp,
    /// Waits for a person.
    Exception,
}

wire_names!(OutcomeKind, "outcome", {
    Moved => "moved",
    NoOp => "noop",
    Exception => "exception",
});
serde_as_str!(OutcomeKind);
string_schema!(OutcomeKind, OutcomeKind::ALL.iter().map(|c| c.as_str()));

/// Why an event waits for a person, without its evidence: the exception queue's reason
/// codes, the ledger's ([`crate::ExceptionReason`]) and the dead letters'
/// (`max_deliveries`, `terminated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExceptionCode {
    Oversold,
    VoidAfterCapture,
    InsufficientAtAuthorization,
    AmountMismatch,
    ChargebackReview,
    UnknownOrder,
    MissingFields,
    Undecodable,
    UnknownSchemaVersion,
    Unverifiable,
    /// JetStream delivered the message `max_deliver` times without an ack.
    MaxDeliveries,
    /// A consumer terminated the message as a permanent failure.
    Terminated,
    /// The daily reconciliation found an item it could not match (a missed webhook, an
    /// amount that differs from the provider's report, …); its evidence is the item.
    ReconciliationMismatch,
}

wire_names!(ExceptionCode, "exception code", {
    Oversold => "oversold",
    VoidAfterCapture => "void_after_capture",
    InsufficientAtAuthorization => "insufficient_at_authorization",
    AmountMismatch => "amount_mismatch",
    ChargebackReview => "chargeback_review",
    UnknownOrder => "unknown_order",
    MissingFields => "missing_fields",
    Undecodable => "undecodable",
    UnknownSchemaVersion => "unknown_schema_version",
    Unverifiable => "unverifiable",
    MaxDeliveries => "max_deliveries",
    Terminated => "terminated",
    ReconciliationMismatch => "reconciliation_mismatch",
});
serde_as_str!(ExceptionCode);
string_schema!(ExceptionCode, ExceptionCode::ALL.iter().map(|c| c.as_str()));

// The sub-reasons keep their derived serde (they are inside `outcome_json`); these tables
// must give the same names, which `bus`'s tests check against serde.
wire_names!(DeclineReason, "decline reason", {
    InsufficientInventory => "insufficient_inventory",
    UnknownOrder => "unknown_order",
    AmountMismatch => "amount_mismatch",
});

wire_names!(RefusalReason, "refusal reason", {
    OrderChangedAfterStockMoved => "order_changed_after_stock_moved",
    PaymentRefInUse => "payment_ref_in_use",
    UnknownOrder => "unknown_order",
    UnknownReturn => "unknown_return",
    ReturnOfUnsoldOrder => "return_of_unsold_order",
    ReturnExceedsSold => "return_exceeds_sold",
    ReturnReferenceInUse => "return_reference_in_use",
    InspectionExceedsReturned => "inspection_exceeds_returned",
    CorrectionWouldGoNegative => "correction_would_go_negative",
    CorrectionUnapproved => "correction_unapproved",
    InvalidQuantity => "invalid_quantity",
    UnknownException => "unknown_exception",
    ActionUnapproved => "action_unapproved",
    NotVoidAfterCapture => "not_void_after_capture",
    ReleaseOfUnsoldOrder => "release_of_unsold_order",
    NotRetryable => "not_retryable",
});

wire_names!(ChargebackOutcome, "chargeback outcome", {
    Won => "won",
    Lost => "lost",
});

/// The reason code of a no-op or an exception, as stored in the `reason` column and sent
/// in decision notices: a no-op's reason (`order_registered`, `declined:<why>`,
/// `refused:<why>`, `chargeback_closed:<won|lost>`, …), an exception's
/// ([`ExceptionCode`]), or the answer to a reused idempotency key (never recorded).
///
/// The no-op variants mirror [`crate::NoOpReason`] without evidence
/// ([`crate::NoOpReason::code`] maps one to the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonCode {
    OrderRegistered,
    OrderUnchanged,
    OrderUpdated,
    PaymentRefAttached,
    PaymentRefUnchanged,
    AlreadyReserved,
    AlreadySold,
    AlreadyReleased,
    NothingReserved,
    StaleAuthorization,
    ReservationNotActive,
    ProviderStatusRecorded,
    SettlementRecorded,
    RefundRecorded,
    ChargebackAlreadyOpen,
    /// `chargeback_closed:<outcome>`.
    ChargebackClosed(ChargebackOutcome),
    /// `declined:<why>`.
    Declined(DeclineReason),
    /// `refused:<why>`.
    Refused(RefusalReason),
    ExceptionResolved,
    ExceptionDismissed,
    SaleKept,
    RetryRequested,
    ExceptionAlreadyResolved,
    ConflictingDuplicate,
    /// The answer to a merchant request whose idempotency key was used for other content;
    /// the ledger records nothing for it (`docs/decisions.md` §26).
    IdempotencyKeyReused,
    PolicyDefersStock,
    PolicyChanged,
    PolicyUnchanged,
    /// An exception's reason.
    Exception(ExceptionCode),
}

/// The separator of a compound code (`declined:insufficient_inventory`).
const SEP: char = ':';

impl ReasonCode {
    /// The wire name of a reason without a sub-reason; `None` for the compound ones.
    const fn simple_name(self) -> Option<&'static str> {
        Some(match self {
            ReasonCode::OrderRegistered => "order_registered",
            ReasonCode::OrderUnchanged => "order_unchanged",
            ReasonCode::OrderUpdated => "order_updated",
            ReasonCode::PaymentRefAttached => "payment_ref_attached",
            ReasonCode::PaymentRefUnchanged => "payment_ref_unchanged",
            ReasonCode::AlreadyReserved => "already_reserved",
            ReasonCode::AlreadySold => "already_sold",
            ReasonCode::AlreadyReleased => "already_released",
            ReasonCode::NothingReserved => "nothing_reserved",
            ReasonCode::StaleAuthorization => "stale_authorization",
            ReasonCode::ReservationNotActive => "reservation_not_active",
            ReasonCode::ProviderStatusRecorded => "provider_status_recorded",
            ReasonCode::SettlementRecorded => "settlement_recorded",
            ReasonCode::RefundRecorded => "refund_recorded",
            ReasonCode::ChargebackAlreadyOpen => "chargeback_already_open",
            ReasonCode::ExceptionResolved => "exception_resolved",
            ReasonCode::ExceptionDismissed => "exception_dismissed",
            ReasonCode::SaleKept => "sale_kept",
            ReasonCode::RetryRequested => "retry_requested",
            ReasonCode::ExceptionAlreadyResolved => "exception_already_resolved",
            ReasonCode::ConflictingDuplicate => "conflicting_duplicate",
            ReasonCode::IdempotencyKeyReused => "idempotency_key_reused",
            ReasonCode::PolicyDefersStock => "policy_defers_stock",
            ReasonCode::PolicyChanged => "policy_changed",
            ReasonCode::PolicyUnchanged => "policy_unchanged",
            ReasonCode::Exception(e) => e.as_str(),
            ReasonCode::ChargebackClosed(_) | ReasonCode::Declined(_) | ReasonCode::Refused(_) => {
                return None;
            }
        })
    }

    /// The prefix of a compound code and its sub-reason's name.
    fn compound(self) -> Option<(&'static str, &'static str)> {
        match self {
            ReasonCode::ChargebackClosed(o) => Some(("chargeback_closed", o.as_str())),
            ReasonCode::Declined(d) => Some(("declined", d.as_str())),
            ReasonCode::Refused(r) => Some(("refused", r.as_str())),
            _ => None,
        }
    }

    /// The wire name. Compound codes are built once, on first use, and kept (a few dozen
    /// short strings), so that every code is a `&'static str` like the simple ones.
    pub fn as_str(self) -> &'static str {
        if let Some(name) = self.simple_name() {
            return name;
        }
        compound_names()
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("unknown", |(_, name)| name.as_str())
    }

    /// Every code, simple ones first, then every compound one, then the exceptions'.
    pub fn all() -> &'static [ReasonCode] {
        static ALL: std::sync::OnceLock<Vec<ReasonCode>> = std::sync::OnceLock::new();
        ALL.get_or_init(|| {
            let mut all = SIMPLE_NO_OPS.to_vec();
            all.extend(
                ChargebackOutcome::ALL
                    .iter()
                    .map(|&o| ReasonCode::ChargebackClosed(o)),
            );
            all.extend(DeclineReason::ALL.iter().map(|&d| ReasonCode::Declined(d)));
            all.extend(RefusalReason::ALL.iter().map(|&r| ReasonCode::Refused(r)));
            all.extend(ExceptionCode::ALL.iter().map(|&e| ReasonCode::Exception(e)));
            all
        })
    }

    /// Which outcome this reason belongs to (no reason means [`OutcomeKind::Moved`]).
    pub fn outcome_kind(self) -> OutcomeKind {
        match self {
            ReasonCode::Exception(_) => OutcomeKind::Exception,
            _ => OutcomeKind::NoOp,
        }
    }

    /// The exception code, for an exception's reason.
    pub fn exception(self) -> Option<ExceptionCode> {
        match self {
            ReasonCode::Exception(e) => Some(e),
            _ => None,
        }
    }

    /// The refusal, for a refused command's reason.
    pub fn refusal(self) -> Option<RefusalReason> {
        match self {
            ReasonCode::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// The reasons without a sub-reason and not an exception's.
const SIMPLE_NO_OPS: &[ReasonCode] = &[
    ReasonCode::OrderRegistered,
    ReasonCode::OrderUnchanged,
    ReasonCode::OrderUpdated,
    ReasonCode::PaymentRefAttached,
    ReasonCode::PaymentRefUnchanged,
    ReasonCode::AlreadyReserved,
    ReasonCode::AlreadySold,
    ReasonCode::AlreadyReleased,
    ReasonCode::NothingReserved,
    ReasonCode::StaleAuthorization,
    ReasonCode::ReservationNotActive,
    ReasonCode::ProviderStatusRecorded,
    ReasonCode::SettlementRecorded,
    ReasonCode::RefundRecorded,
    ReasonCode::ChargebackAlreadyOpen,
    ReasonCode::ExceptionResolved,
    ReasonCode::ExceptionDismissed,
    ReasonCode::SaleKept,
    ReasonCode::RetryRequested,
    ReasonCode::ExceptionAlreadyResolved,
    ReasonCode::ConflictingDuplicate,
    ReasonCode::IdempotencyKeyReused,
    ReasonCode::PolicyDefersStock,
    ReasonCode::PolicyChanged,
    ReasonCode::PolicyUnchanged,
];

/// The names of the compound codes, built from the sub-reasons' tables.
fn compound_names() -> &'static [(ReasonCode, String)] {
    static NAMES: std::sync::OnceLock<Vec<(ReasonCode, String)>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        ReasonCode::all()
            .iter()
            .filter_map(|&c| {
                c.compound()
                    .map(|(prefix, sub)| (c, format!("{prefix}{SEP}{sub}")))
            })
            .collect()
    })
}

impl FromStr for ReasonCode {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, UnknownCode> {
        ReasonCode::all()
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode {
                what: "reason code",
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

serde_as_str!(ReasonCode);
string_schema!(ReasonCode, ReasonCode::all().iter().map(|c| c.as_str()));

/// `TryFrom<String>` with the same parse as `FromStr`, so that the store's rows decode a
/// TEXT column straight into the typed value (`#[sqlx(try_from = "String")]`; `domain`
/// does not depend on sqlx, and the derive asks for exactly this impl).
macro_rules! try_from_string {
    ($($ty:ident),+) => {
        $(
            impl TryFrom<String> for $ty {
                type Error = UnknownCode;
                fn try_from(s: String) -> Result<Self, UnknownCode> {
                    s.parse()
                }
            }
        )+
    };
}

try_from_string!(OutcomeKind, ExceptionCode, ReasonCode);

impl From<ExceptionCode> for ReasonCode {
    fn from(e: ExceptionCode) -> Self {
        ReasonCode::Exception(e)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_reason_code_parses_back_and_names_are_unique() {
        let mut names = BTreeSet::new();
        for &code in ReasonCode::all() {
            let name = code.as_str();
            assert_ne!(name, "unknown", "{code:?} has no name");
            assert_eq!(name.parse::<ReasonCode>(), Ok(code), "{name}");
            assert!(names.insert(name), "{name} named twice");
        }
        // 25 simple, 2 chargeback outcomes, 3 declines, 16 refusals, 13 exceptions.
        assert_eq!(names.len(), 25 + 2 + 3 + 16 + 13);
        assert!("declined:nothing".parse::<ReasonCode>().is_err());
        assert!("".parse::<ReasonCode>().is_err());
    }

    #[test]
    fn compound_codes_keep_their_stored_names() {
        assert_eq!(
            ReasonCode::Declined(DeclineReason::InsufficientInventory).as_str(),
            "declined:insufficient_inventory"
        );
        assert_eq!(
            ReasonCode::Refused(RefusalReason::ReturnExceedsSold).as_str(),
            "refused:return_exceeds_sold"
        );
        assert_eq!(
            ReasonCode::ChargebackClosed(ChargebackOutcome::Won).as_str(),
            "chargeback_closed:won"
        );
        assert_eq!(
            ReasonCode::IdempotencyKeyReused.as_str(),
            "idempotency_key_reused"
        );
    }

    #[test]
    fn exception_codes_are_the_queue_codes_of_the_operations_guide() {
        let names: Vec<&str> = ExceptionCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "oversold",
                "void_after_capture",
                "insufficient_at_authorization",
                "amount_mismatch",
                "chargeback_review",
                "unknown_order",
                "missing_fields",
                "undecodable",
                "unknown_schema_version",
                "unverifiable",
                "max_deliveries",
                "terminated",
                "reconciliation_mismatch",
            ]
        );
        for &c in ExceptionCode::ALL {
            assert_eq!(c.as_str().parse::<ExceptionCode>(), Ok(c));
            assert_eq!(ReasonCode::from(c).outcome_kind(), OutcomeKind::Exception);
        }
    }

    #[test]
    fn outcome_kinds_keep_their_stored_names() {
        let names: Vec<&str> = OutcomeKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["moved", "noop", "exception"]);
        for &k in OutcomeKind::ALL {
            assert_eq!(k.as_str().parse::<OutcomeKind>(), Ok(k));
        }
        assert!("no_op".parse::<OutcomeKind>().is_err());
    }

    #[test]
    fn stored_text_converts_like_from_str() {
        assert_eq!(
            OutcomeKind::try_from("noop".to_owned()),
            Ok(OutcomeKind::NoOp)
        );
        assert_eq!(
            ReasonCode::try_from("refused:not_retryable".to_owned()),
            Ok(ReasonCode::Refused(RefusalReason::NotRetryable))
        );
        assert_eq!(
            ExceptionCode::try_from("oversold".to_owned()),
            Ok(ExceptionCode::Oversold)
        );
        assert!(OutcomeKind::try_from("Moved".to_owned()).is_err());
        assert!(ReasonCode::try_from("refused:".to_owned()).is_err());
    }

    #[test]
    fn exception_reasons_map_to_their_codes() {
        use crate::outcome::ExceptionReason;
        assert_eq!(ExceptionReason::Oversold.code(), "oversold");
        assert_eq!(
            ExceptionReason::ChargebackReview { deadline: None }.exception_code(),
            ExceptionCode::ChargebackReview
        );
    }
}
