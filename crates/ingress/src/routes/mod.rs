//! The HTTP handlers, one module per audience: each provider (PortOne, Stripe, Adyen,
//! iPint), the merchant (writes and reads), the operator (health, readiness, metrics, the
//! exception queue), and the merchant API's bearer-token check.

pub mod adyen;
pub mod auth;
pub mod exceptions;
pub mod ipint;
pub mod merchant;
pub mod ops;
pub mod portone;
pub mod reads;
pub mod stripe;

use domain::Money;
use providers::MinorAmount;

/// A provider's minor-unit amount as the contract's money. `None` when it is not a plain
/// non-negative decimal with a three-letter currency: the event then carries no amount,
/// and the ledger has nothing to compare.
pub(crate) fn provider_money(amount: Option<&MinorAmount>) -> Option<Money> {
    let a = amount?;
    Money::parse(&a.value.to_string(), &a.currency).ok()
}
