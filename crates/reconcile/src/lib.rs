//! The daily reconciliation (`docs/operations.md`, "Reconciliation"), as pure code: no
//! I/O, no clock. The callers (`stockctl reconcile`, the scheduled job) read the files and
//! the ledger and store the result.
//!
//! - [`reports`]: the providers' own settlement and transaction reports, read strictly into
//!   [`reports::ReportLine`]s (exact decimal amounts; a refusal names the line and column).

pub mod reports;
