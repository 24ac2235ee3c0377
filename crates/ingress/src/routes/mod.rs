//! The HTTP handlers, one module per audience: each provider (PortOne, Stripe, Adyen,
//! iPint), the merchant (writes and reads), the operator (health, readiness, metrics, the
//! exception queue and its web console), and the merchant API's bearer-token check.

pub mod adyen;
pub mod auth;
pub mod console;
pub mod exceptions;
pub mod ipint;
pub mod merchant;
pub mod ops;
pub mod portone;
pub mod reads;
pub mod stripe;
