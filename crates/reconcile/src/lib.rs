//! The daily reconciliation (`docs/operations.md`, "Reconciliation"), as pure code: no
//! I/O, no clock. The callers (`stockctl reconcile`, the scheduled job) read the files and
//! the ledger and store the result.
//!
//! - [`reports`]: the providers' own settlement and transaction reports, read strictly into
//!   [`reports::ReportLine`]s (exact decimal amounts; a refusal names the line and column).
//! - [`engine`]: the matching of a day's ledger facts and report lines into matched,
//!   unmatched and deferred items per checkpoint.

pub mod engine;
pub mod reports;
