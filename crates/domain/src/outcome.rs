//! What the trigger matrix decides for one event: the outcome that is recorded against the
//! event id (movements, a no-op with its reason, or an exception), and the after-images of
//! everything the event changed, so that a store can persist a decision without knowing
//! any rule.

use serde::{Deserialize, Serialize};

use crate::codes::{ExceptionCode, OutcomeKind, ReasonCode};
use crate::conflict::ConflictEvidence;
use crate::event::ChargebackOutcome;
use crate::order::{Order, ReturnRecord};
use crate::policy::{PolicySet, StockPolicy};
use crate::stock::{Balance, Movement, StockKey};
use crate::types::{DisputeId, EventId, ExceptionId, OrderRef, PaymentRef, Provider, Timestamp};

/// Why a synchronous authorization question was answered "no".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    InsufficientInventory,
    UnknownOrder,
    AmountMismatch,
}

/// Why a merchant or operator command was refused (the API answers 409, or 404 for an
/// unknown order or return).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    OrderChangedAfterStockMoved,
    PaymentRefInUse,
    UnknownOrder,
    UnknownReturn,
    ReturnOfUnsoldOrder,
    ReturnExceedsSold,
    ReturnReferenceInUse,
    InspectionExceedsReturned,
    CorrectionWouldGoNegative,
    /// A correction without a reason, evidence or approver.
    CorrectionUnapproved,
    /// A quantity of zero or beyond the limit.
    InvalidQuantity,
    /// An operator action naming no exception the ledger knows.
    UnknownException,
    /// An operator action without an actor or a reason.
    ActionUnapproved,
    /// `release` or `keep` on an exception that is not a `void_after_capture`.
    NotVoidAfterCapture,
    /// `release` for an order that is not `sold` (or holds nothing sold any more).
    ReleaseOfUnsoldOrder,
    /// `retry` of an exception whose event the ledger cannot decide again (a message it
    /// never decoded, a dead letter).
    NotRetryable,
}

/// Why a processed event moved nothing, on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code", content = "detail")]
pub enum NoOpReason {
    OrderRegistered,
    OrderUnchanged,
    OrderUpdated,
    PaymentRefAttached,
    PaymentRefUnchanged,
    /// A second authorization for an order already reserved.
    AlreadyReserved,
    /// A second capture (for example `charge.captured` after `payment_intent.succeeded`).
    AlreadySold,
    /// A void or expiry for an order already released.
    AlreadyReleased,
    /// A void for an order that never reserved anything.
    NothingReserved,
    /// An authorization after the order was sold or released: it never re-reserves.
    StaleAuthorization,
    /// An expiry for a reservation that is no longer the order's current one.
    ReservationNotActive,
    ProviderStatusRecorded,
    SettlementRecorded,
    /// Money back is not goods back.
    RefundRecorded,
    /// A second opening of a dispute that is already open.
    ChargebackAlreadyOpen,
    ChargebackClosed(ChargebackOutcome),
    /// A synchronous authorization answered "no"; nothing reserved.
    Declined(DeclineReason),
    /// A merchant or operator command refused; nothing changed.
    Refused(RefusalReason),
    /// An operator resolved an exception as a deliberate no-op.
    ExceptionResolved,
    /// An operator dismissed an exception as not a problem.
    ExceptionDismissed,
    /// An operator kept a sale whose payment was voided after capture: the goods left.
    SaleKept,
    /// An operator asked to decide an exception's event again; its new outcome is the
    /// event's own.
    RetryRequested,
    /// An operator action on an exception that is already resolved: nothing to do.
    ExceptionAlreadyResolved,
    /// A second, different content under an event id already recorded (a provider sent
    /// changed content under one delivery identity): recorded under its own id
    /// ([`crate::conflict::conflict_id`]) with both digests, for a person to see.
    ConflictingDuplicate(ConflictEvidence),
    /// The stock policy in force for the event's provider moves stock at a later event:
    /// an authorization under `deduct_on_capture` or `deduct_on_settlement`, a capture
    /// under `deduct_on_settlement` (`docs/trigger-matrix.md`, "Stock policy").
    PolicyDefersStock,
    /// A `policy.changed` put a new stock policy in force.
    PolicyChanged,
    /// A `policy.changed` naming the policy already in force: nothing changed.
    PolicyUnchanged,
}

/// Why an event waits for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum ExceptionReason {
    /// Money taken, no stock.
    Oversold,
    /// A void arrived after the order was sold.
    VoidAfterCapture,
    /// A notified authorization could not reserve every line.
    InsufficientAtAuthorization,
    /// The provider's amount or currency differs from the registered order.
    AmountMismatch,
    /// A chargeback opened; review it before its deadline.
    ChargebackReview { deadline: Option<Timestamp> },
    /// The order was not registered within the unknown-order hold.
    UnknownOrder,
    /// The event lacks a field the trigger matrix needs.
    MissingFields,
    /// The message could not be decoded at all.
    Undecodable,
    /// The message has a schema version this release does not know.
    UnknownSchemaVersion,
    /// A provider callback that could not be verified with the provider.
    Unverifiable,
}

impl ExceptionReason {
    /// The stable reason code used in the exception queue and the docs.
    pub fn code(&self) -> &'static str {
        self.exception_code().as_str()
    }

    /// The reason without its evidence ([`ExceptionCode`]).
    pub fn exception_code(&self) -> ExceptionCode {
        match self {
            ExceptionReason::Oversold => ExceptionCode::Oversold,
            ExceptionReason::VoidAfterCapture => ExceptionCode::VoidAfterCapture,
            ExceptionReason::InsufficientAtAuthorization => {
                ExceptionCode::InsufficientAtAuthorization
            }
            ExceptionReason::AmountMismatch => ExceptionCode::AmountMismatch,
            ExceptionReason::ChargebackReview { .. } => ExceptionCode::ChargebackReview,
            ExceptionReason::UnknownOrder => ExceptionCode::UnknownOrder,
            ExceptionReason::MissingFields => ExceptionCode::MissingFields,
            ExceptionReason::Undecodable => ExceptionCode::Undecodable,
            ExceptionReason::UnknownSchemaVersion => ExceptionCode::UnknownSchemaVersion,
            ExceptionReason::Unverifiable => ExceptionCode::Unverifiable,
        }
    }
}

impl NoOpReason {
    /// The reason code of this no-op (its evidence, if any, left out). Exhaustive on
    /// purpose: a new no-op reason does not compile until it has a code.
    pub fn code(&self) -> ReasonCode {
        match self {
            NoOpReason::OrderRegistered => ReasonCode::OrderRegistered,
            NoOpReason::OrderUnchanged => ReasonCode::OrderUnchanged,
            NoOpReason::OrderUpdated => ReasonCode::OrderUpdated,
            NoOpReason::PaymentRefAttached => ReasonCode::PaymentRefAttached,
            NoOpReason::PaymentRefUnchanged => ReasonCode::PaymentRefUnchanged,
            NoOpReason::AlreadyReserved => ReasonCode::AlreadyReserved,
            NoOpReason::AlreadySold => ReasonCode::AlreadySold,
            NoOpReason::AlreadyReleased => ReasonCode::AlreadyReleased,
            NoOpReason::NothingReserved => ReasonCode::NothingReserved,
            NoOpReason::StaleAuthorization => ReasonCode::StaleAuthorization,
            NoOpReason::ReservationNotActive => ReasonCode::ReservationNotActive,
            NoOpReason::ProviderStatusRecorded => ReasonCode::ProviderStatusRecorded,
            NoOpReason::SettlementRecorded => ReasonCode::SettlementRecorded,
            NoOpReason::RefundRecorded => ReasonCode::RefundRecorded,
            NoOpReason::ChargebackAlreadyOpen => ReasonCode::ChargebackAlreadyOpen,
            NoOpReason::ChargebackClosed(o) => ReasonCode::ChargebackClosed(*o),
            NoOpReason::Declined(d) => ReasonCode::Declined(*d),
            NoOpReason::Refused(r) => ReasonCode::Refused(*r),
            NoOpReason::ExceptionResolved => ReasonCode::ExceptionResolved,
            NoOpReason::ExceptionDismissed => ReasonCode::ExceptionDismissed,
            NoOpReason::SaleKept => ReasonCode::SaleKept,
            NoOpReason::RetryRequested => ReasonCode::RetryRequested,
            NoOpReason::ExceptionAlreadyResolved => ReasonCode::ExceptionAlreadyResolved,
            NoOpReason::ConflictingDuplicate(_) => ReasonCode::ConflictingDuplicate,
            NoOpReason::PolicyDefersStock => ReasonCode::PolicyDefersStock,
            NoOpReason::PolicyChanged => ReasonCode::PolicyChanged,
            NoOpReason::PolicyUnchanged => ReasonCode::PolicyUnchanged,
        }
    }
}

/// The one outcome recorded against a processed event id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// One ledger transaction: these movements, all or none.
    Moved { movements: Vec<Movement> },
    /// Deliberately nothing.
    NoOp { reason: NoOpReason },
    /// Waits for a person; `detail` is the evidence in words.
    Exception {
        reason: ExceptionReason,
        detail: String,
    },
}

impl Outcome {
    /// True for an exception: an outcome that is not final until an operator acts.
    pub fn is_exception(&self) -> bool {
        matches!(self, Outcome::Exception { .. })
    }
    /// A short stable label: `moved`, `noop` or `exception` ([`OutcomeKind::as_str`]).
    pub fn label(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Which of the three outcomes this is.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Moved { .. } => OutcomeKind::Moved,
            Outcome::NoOp { .. } => OutcomeKind::NoOp,
            Outcome::Exception { .. } => OutcomeKind::Exception,
        }
    }

    /// The reason code of a no-op or an exception; `None` for movements.
    pub fn reason_code(&self) -> Option<ReasonCode> {
        match self {
            Outcome::Moved { .. } => None,
            Outcome::NoOp { reason } => Some(reason.code()),
            Outcome::Exception { reason, .. } => {
                Some(ReasonCode::Exception(reason.exception_code()))
            }
        }
    }
}

/// The state of a dispute as the ledger tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chargeback {
    pub dispute_id: DisputeId,
    pub order_ref: OrderRef,
    /// The `chargeback.opened` event whose exception this dispute's closing resolves.
    pub opened_by: Option<EventId>,
    pub closed: Option<ChargebackOutcome>,
}

/// Everything one recorded event changes. A store persists this as-is, in one transaction:
/// the outcome under the event id, the movements as entries, and the after-images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub outcome: Outcome,
    /// The order the event was applied to, if it names one that exists.
    pub order_ref: Option<OrderRef>,
    /// New balances of every (SKU, location) moved, after the movements.
    pub balances: Vec<(StockKey, Balance)>,
    /// The order after the event, when the event changed it.
    pub order: Option<Order>,
    /// Payment references newly attached to an order.
    pub payment_refs: Vec<(Provider, PaymentRef, OrderRef)>,
    /// The return after the event, when the event changed it.
    pub return_record: Option<ReturnRecord>,
    /// The dispute after the event, for chargeback events.
    pub chargeback: Option<Chargeback>,
    /// True when this resolution replaces an open exception of the same event (an operator
    /// retry that succeeded); the store finalizes the event's outcome.
    pub replaces_exception: bool,
    /// The exception-queue row an operator action changed, for `exception.action` events.
    pub queue: Option<QueueUpdate>,
    /// For an exception: the order, SKU and location it is about, where the event or the
    /// decision knows them (also an order that is not registered). Empty otherwise.
    pub concerns: Concerns,
    /// The stock policy the event was decided under: the policy in force for the event's
    /// provider when it was applied. Recorded with every outcome.
    pub policy_applied: StockPolicy,
    /// The policy in force from this event on, for a `policy.changed` that changed it.
    pub policy: Option<PolicySet>,
}

/// What an exception is about, for the queue's `order_ref`, `sku` and `location` columns:
/// whatever the event or the decision knows, registered or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Concerns {
    /// The order the event names (by reference, or through a known payment reference).
    pub order_ref: Option<OrderRef>,
    /// The (SKU, location) concerned: the short line of a shortfall, or the order's only
    /// line. `None` when the exception is about several lines at once.
    pub key: Option<StockKey>,
}

/// What an operator action does to its exception-queue row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUpdate {
    pub exception_id: ExceptionId,
    /// `Some(text)`: the row is resolved with this resolution; `None`: it stays open.
    pub resolution: Option<String>,
    /// True for a retry, counted in the row's retries.
    pub retried: bool,
}

/// What to do with one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The event id already has an outcome: acknowledge, change nothing.
    Duplicate,
    /// An operator retry whose exception still stands: nothing changes.
    StillException,
    /// The event names an order not registered yet and the hold has not run out: do not
    /// record anything; deliver again later.
    Defer { until: Timestamp },
    /// Record this.
    Record(Box<Resolution>),
}
