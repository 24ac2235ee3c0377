//! # domain: the trigger matrix, pure
//!
//! Everything stockledger decides about stock lives here, with no I/O, no clock and no
//! async: validated newtypes ([`types`]), buckets and movements ([`stock`]), orders
//! ([`order`]), contract events ([`event`]), outcomes ([`outcome`]), the stock policy
//! ([`policy`]: when payments move stock, part of the state and changed by an event), the
//! matrix itself ([`matrix::decide`], per policy) and an in-memory [`State`] that the
//! property tests drive through every ordering of events under every policy.
//!
//! The adapters (HTTP, NATS, SQL) translate to and from these types at the edges. A store
//! loads the part of the state one event touches, calls [`decide`], and persists the
//! [`Resolution`] it gets back; it never decides anything itself.

pub mod codes;
pub mod conflict;
pub mod event;
pub mod explain;
pub mod matrix;
pub mod order;
pub mod outcome;
mod pairs;
pub mod policy;
pub mod state;
pub mod stock;
pub mod types;

pub use codes::{ExceptionCode, OutcomeKind, ReasonCode, UnknownCode};
pub use conflict::{ConflictEvidence, ContentDigest, conflict_id, conflicting_duplicate};
pub use event::{
    AuthorizationMode, ChargebackOutcome, Delivery, Event, EventKind, FlagReason,
    InspectionOutcome, OperatorAction, OrderLookup, Payment,
};
pub use matrix::{Context, RESERVATION_AWAIT_MAX, decide};
pub use order::{Line, Lines, Order, OrderSpec, OrderState, ReturnRecord};
pub use outcome::{
    Chargeback, Concerns, Decision, DeclineReason, ExceptionReason, NoOpReason, Outcome,
    QueueUpdate, RefusalReason, Resolution,
};
pub use policy::{InvalidPolicy, PolicySet, ReservationTtls, StockPolicy};
pub use state::{QueueEntry, State};
pub use stock::{Balance, Bucket, Movement, StockKey};
pub use types::{
    Currency, DisputeId, EventId, ExceptionId, InvalidValue, Location, Money, OrderRef,
    PaymentMethod, PaymentRef, Provider, Quantity, ReturnRef, Sku, Timestamp, check_line,
    check_text,
};
