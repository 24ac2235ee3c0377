//! The HTTP handlers, one module per audience: PortOne, the merchant (writes and reads),
//! the operator (health, readiness, metrics), and the merchant API's bearer-token check.

pub mod auth;
pub mod merchant;
pub mod ops;
pub mod portone;
pub mod reads;
