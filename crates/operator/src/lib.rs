//! # operator: what an operator does and asks
//!
//! Library code that `stockctl`, the ingress and the service processes (`ledger`,
//! `exceptions`) all need, kept out of the service crates so that no crate depends on a
//! role's code:
//!
//! - [`actions`]: the operator actions on the exception queue and on stock, each published
//!   as an event (`exception.action`, `stock.corrected`) and awaited until the ledger
//!   decided it;
//! - [`standing`]: whether the ledger database is behind the event stream (decision 25),
//!   for the ledger (which applies nothing while it is), `/readyz` and writes, and
//!   `stockctl`;
//! - [`policy`]: changing the stock policy (`policy.changed`, `stockctl policy set`);
//! - [`wait`]: polling for the ledger's outcome;
//! - [`gauges`]: the exception queue's gauges and the non-ingress `/readyz`, for the
//!   exception process and `stockctl exceptions stats`;
//! - [`evidence`]: evidence packs of an order or an exception (`stockctl evidence`, the
//!   ingress's `/v1/exceptions/{id}/evidence`).

pub mod actions;
pub mod evidence;
pub mod gauges;
pub mod policy;
pub mod standing;
pub mod wait;

pub use standing::{Standing, StandingError};
