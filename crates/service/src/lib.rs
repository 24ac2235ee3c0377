//! # service: what every stockledger process shares
//!
//! The `ingress`, `ledger` and `exceptions` binaries start the same way, and this crate is
//! that way, written once:
//! 1. read the configuration ([`config::Config::from_env`], validated once);
//! 2. start telemetry ([`telemetry::init`]);
//! 3. connect to NATS and the database ([`connect`]): NATS need not be up yet;
//! 4. run the role's work under one [`shutdown::Shutdown`]: SIGINT or SIGTERM cancels its
//!    token, every task watching the token finishes what it holds, and the process waits
//!    for them at most `STOCKLEDGER_SHUTDOWN_GRACE`.
//!
//! [`ops`] is the ops HTTP server (`/metrics`, `/healthz`, `/readyz`) of the roles without
//! an API port of their own: the ledger and the exception consumer.
//!
//! [`clock::now`] is the one place a process reads the wall clock; the domain never does.

pub mod clock;
pub mod connect;
pub mod ops;
pub mod shutdown;
pub mod telemetry;

pub use clock::now;
pub use shutdown::Shutdown;
