//! Contract events as the domain sees them: already validated, already translated from
//! whatever the provider sent. The wire shapes (versions, JSON) live in the `contract`
//! crate; this is what the trigger matrix is applied to.

use serde::{Deserialize, Serialize};

use crate::order::{Lines, OrderSpec};
use crate::policy::PolicySet;
use crate::stock::StockKey;
use crate::types::{
    DisputeId, EventId, ExceptionId, Money, OrderRef, PaymentMethod, PaymentRef, Provider,
    Quantity, ReturnRef, Timestamp,
};

/// How a payment event names its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderLookup {
    /// By the merchant's order reference.
    OrderRef(OrderRef),
    /// By a provider's payment reference attached to the order (an iPint invoice id, a
    /// Stripe PaymentIntent id).
    PaymentRef {
        provider: Provider,
        payment_ref: PaymentRef,
    },
}

/// Whether the provider asks before capturing (and waits for the answer) or only tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationMode {
    /// The provider asks synchronously (PortOne's inventory confirmation): a shortfall is
    /// a declined answer, recorded as a no-op.
    Confirmation,
    /// The provider only notifies (Stripe, Adyen): a shortfall is an exception, so the
    /// payment can be cancelled before capture.
    Notification,
}

/// What a payment event says about the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub order: OrderLookup,
    /// The amount the provider reports, when it reports one; compared with the order.
    pub amount: Option<Money>,
}

/// The outcome of a closed chargeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargebackOutcome {
    Won,
    Lost,
}

/// Why a provider payment waits for a person instead of being applied (`payment.flagged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagReason {
    /// The provider's message could not be verified with the provider (iPint: no API keys,
    /// or still unconfirmed after the verification bound).
    Unverifiable,
    /// The provider confirmed a payment whose amount does not cover the order (iPint:
    /// `COMPLETED` with a received amount short of the invoice).
    AmountMismatch,
}

/// What an inspection decided for the returned units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectionOutcome {
    /// `returned → available`.
    Restock,
    /// `returned → written_off`.
    WriteOff,
}

/// What an operator does to an exception (`exception.action`, `docs/decisions.md` §27).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    /// Close it as a deliberate no-op: nothing should move (a refund made instead, …).
    Resolve,
    /// Close it as not a problem at all (test traffic, a duplicate report). No stock moves.
    Dismiss,
    /// Decide the exception's event again after the cause was fixed.
    Retry,
    /// `void_after_capture` only: the goods never left, `sold → available` for the
    /// order's lines.
    Release,
    /// `void_after_capture` only: the goods left; a recorded no-op, finance follows up.
    Keep,
}

impl OperatorAction {
    /// Every action, in the order of the wire enum.
    pub const ALL: [OperatorAction; 5] = [
        OperatorAction::Resolve,
        OperatorAction::Dismiss,
        OperatorAction::Retry,
        OperatorAction::Release,
        OperatorAction::Keep,
    ];

    /// The stable name used on the wire, in the audit trail and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorAction::Resolve => "resolve",
            OperatorAction::Dismiss => "dismiss",
            OperatorAction::Retry => "retry",
            OperatorAction::Release => "release",
            OperatorAction::Keep => "keep",
        }
    }

    /// The action named `name`, if there is one.
    pub fn parse(name: &str) -> Option<OperatorAction> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// Every contract event kind the trigger matrix knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EventKind {
    /// The merchant registers (or re-registers) an order.
    OrderRegistered {
        spec: OrderSpec,
        payment_refs: Vec<(Provider, PaymentRef)>,
    },
    /// The merchant attaches a provider's payment reference to an order.
    PaymentRefAttached {
        order_ref: OrderRef,
        provider: Provider,
        payment_ref: PaymentRef,
    },
    /// `available → reserved`.
    PaymentAuthorized {
        payment: Payment,
        mode: AuthorizationMode,
        /// The payment method, when the provider's message names it: it chooses the
        /// reservation's TTL (`docs/providers.md`, "How long a reservation holds").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<PaymentMethod>,
    },
    /// `reserved → sold`, or `available → sold`.
    PaymentCaptured { payment: Payment },
    /// `reserved → available`.
    PaymentVoided { payment: Payment },
    /// A provider status with no stock effect (pending, initiated, payment failed but
    /// retryable, an unknown status): recorded on the order's history.
    PaymentNoted { payment: Payment, status: String },
    /// A provider payment stockledger will not apply without a person: always an exception
    /// with `reason` and the evidence in `detail`; no stock moves.
    PaymentFlagged {
        payment: Payment,
        reason: FlagReason,
        detail: String,
    },
    /// Emitted by stockledger after the reservation TTL: `reserved → available`.
    ReservationExpired {
        order_ref: OrderRef,
        reservation: EventId,
    },
    /// Recorded for reconciliation; no stock effect.
    PaymentSettled { payment: Payment },
    /// Money back is not goods back: recorded, no stock effect.
    PaymentRefunded { payment: Payment },
    /// Opens a `chargeback_review` exception; no restock.
    ChargebackOpened {
        payment: Payment,
        dispute_id: DisputeId,
        deadline: Option<Timestamp>,
    },
    /// Recorded; closes the matching `chargeback_review`.
    ChargebackClosed {
        payment: Payment,
        dispute_id: DisputeId,
        outcome: ChargebackOutcome,
    },
    /// `sold → returned` for the lines received.
    ReturnReceived {
        order_ref: OrderRef,
        reference: ReturnRef,
        lines: Lines,
    },
    /// `returned → available` or `returned → written_off`.
    ReturnInspected {
        reference: ReturnRef,
        outcome: InspectionOutcome,
        lines: Lines,
    },
    /// `external → available`.
    StockReceived {
        key: StockKey,
        quantity: Quantity,
        reference: String,
    },
    /// Between `external` and `available`, either way (`delta` non-zero).
    StockCorrected {
        key: StockKey,
        delta: i64,
        reason: String,
        evidence: String,
        approved_by: String,
        /// Who ran the correction (may differ from the approver); `None` for corrections
        /// written before the contract carried it.
        actor: Option<String>,
    },
    /// An operator's action on an exception of the queue: resolve, dismiss, retry, or for
    /// `void_after_capture` release or keep. Applied by the ledger like any other event,
    /// so the queue's state and its audit trail come back when the ledger is rebuilt.
    ExceptionAction {
        exception_id: ExceptionId,
        action: OperatorAction,
        /// Who acts; recorded in the audit trail.
        actor: String,
        /// Why; recorded in the audit trail.
        reason: String,
        /// What shows it is right (a provider refund id, a shipping record), if any.
        evidence: Option<String>,
    },
    /// An operator changes the stock policy in force (`stockctl policy set`, or the ledger
    /// at start when `STOCKLEDGER_STOCK_POLICY` differs from the ledger's). Applied like
    /// any other event, so every later event is decided, and re-decided in a rebuild,
    /// under the policy in force when it was accepted.
    PolicyChanged {
        /// The whole policy from now on (not a change relative to the old one).
        policy: PolicySet,
        /// Who changed it; recorded with the change.
        actor: String,
        /// Why; recorded with the change.
        reason: String,
    },
}

impl EventKind {
    /// The contract name of the kind (`payment.captured`, …), stable across versions.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::OrderRegistered { .. } => "order.registered",
            EventKind::PaymentRefAttached { .. } => "order.payment_ref_attached",
            EventKind::PaymentAuthorized { .. } => "payment.authorized",
            EventKind::PaymentCaptured { .. } => "payment.captured",
            EventKind::PaymentVoided { .. } => "payment.voided",
            EventKind::PaymentNoted { .. } => "payment.noted",
            EventKind::PaymentFlagged { .. } => "payment.flagged",
            EventKind::ReservationExpired { .. } => "reservation.expired",
            EventKind::PaymentSettled { .. } => "payment.settled",
            EventKind::PaymentRefunded { .. } => "payment.refunded",
            EventKind::ChargebackOpened { .. } => "chargeback.opened",
            EventKind::ChargebackClosed { .. } => "chargeback.closed",
            EventKind::ReturnReceived { .. } => "return.received",
            EventKind::ReturnInspected { .. } => "return.inspected",
            EventKind::StockReceived { .. } => "stock.received",
            EventKind::StockCorrected { .. } => "stock.corrected",
            EventKind::ExceptionAction { .. } => "exception.action",
            EventKind::PolicyChanged { .. } => "policy.changed",
        }
    }

    /// The payment this event is about, for payment and chargeback events.
    pub fn payment(&self) -> Option<&Payment> {
        match self {
            EventKind::PaymentAuthorized { payment, .. }
            | EventKind::PaymentCaptured { payment }
            | EventKind::PaymentVoided { payment }
            | EventKind::PaymentNoted { payment, .. }
            | EventKind::PaymentFlagged { payment, .. }
            | EventKind::PaymentSettled { payment }
            | EventKind::PaymentRefunded { payment }
            | EventKind::ChargebackOpened { payment, .. }
            | EventKind::ChargebackClosed { payment, .. } => Some(payment),
            _ => None,
        }
    }
}

/// One contract event: an id born at the edge, the time the edge recorded it, and what
/// it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    /// Who produced the event: the envelope's `source.provider` (`stripe`, `portone`, …,
    /// or `merchant`, `operator`, `stockledger`). The stock policy in force for a payment
    /// event is its provider's ([`crate::PolicySet::for_provider`]).
    pub provider: Provider,
    /// When the ingress (or the emitting process) recorded the event. Used for the
    /// unknown-order hold and as the reservation time; never a reading of the clock here.
    pub recorded_at: Timestamp,
    pub kind: EventKind,
}

/// One delivery of an event to the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event: Event,
    /// True when an operator asked to apply this event again after fixing the cause of its
    /// exception. Only an open exception is re-decided; a final outcome never changes.
    pub operator_retry: bool,
}
