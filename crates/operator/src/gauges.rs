//! The exception queue's gauges and the `/readyz` answer of the processes that are not the
//! ingress (decision 25), computed when asked: from the database and the dead-letter
//! stream, so every exception process and `stockctl exceptions stats` report the same
//! numbers. Rendered in Prometheus text format:
//!
//! | metric | meaning |
//! | --- | --- |
//! | `stockledger_exceptions_unresolved{reason,state}` | exceptions `open` or `retrying`, per reason code (0 for every known code) |
//! | `stockledger_exceptions_oldest_unresolved_age_seconds` | age of the oldest exception not resolved (0 when none) |
//! | `stockledger_exceptions_resolved` | exceptions resolved so far |
//! | `stockledger_dlq_depth` | dead letters held by the dead-letter stream |
//! | `stockledger_dlq_advisories_pending` | advisories captured but not yet turned into dead letters |

use std::fmt::Write as _;

use bus::Bus;
use domain::ExceptionCode;
use store::Store;

/// Why the gauges could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GaugeError {
    /// The dead-letter stream could not be read.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    /// The exception queue could not be read.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// What the gauges are computed from.
#[derive(Debug, Clone)]
pub struct Gauges {
    pub bus: Bus,
    pub store: Store,
}

impl Gauges {
    /// `/readyz`: 200 when NATS and the database answer and the ledger is not behind the
    /// event stream (`operator::standing`); 503 naming the reason otherwise.
    pub async fn readiness(&self) -> (&'static str, String) {
        match crate::standing::standing(&self.bus, &self.store).await {
            Ok(s) if s.is_behind() => (
                "503 Service Unavailable",
                format!("{}: {}\n", crate::standing::BEHIND_REASON, s.describe()),
            ),
            Ok(_) => ("200 OK", "ready\n".to_owned()),
            Err(crate::StandingError::Bus(e)) => (
                "503 Service Unavailable",
                format!("nats_unavailable: {e}\n"),
            ),
            Err(crate::StandingError::Store(e)) => (
                "503 Service Unavailable",
                format!("database_unavailable: {e}\n"),
            ),
        }
    }

    /// The gauges in Prometheus text format, at `now_ms`.
    pub async fn render(&self, now_ms: i64) -> Result<String, GaugeError> {
        let stats = self.store.queue_stats().await?;
        let depth = self.bus.dlq_depth().await?;
        let pending = self.bus.advisories_pending().await?;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP stockledger_exceptions_unresolved Exceptions open or retrying, by reason code and state."
        );
        let _ = writeln!(out, "# TYPE stockledger_exceptions_unresolved gauge");
        // Every reason code the queue can hold (the ledger's and the dead letters'), so that
        // a dashboard sees a 0 rather than no series.
        for code in ExceptionCode::ALL.iter().map(|c| c.as_str()) {
            if !stats
                .unresolved
                .iter()
                .any(|(r, s, _)| r == code && s == "open")
            {
                let _ = writeln!(
                    out,
                    "stockledger_exceptions_unresolved{{reason=\"{code}\",state=\"open\"}} 0"
                );
            }
        }
        for (reason, state, n) in &stats.unresolved {
            let _ = writeln!(
                out,
                "stockledger_exceptions_unresolved{{reason=\"{}\",state=\"{}\"}} {n}",
                label(reason),
                label(state)
            );
        }
        let age = stats
            .oldest_unresolved_at
            .map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0);
        let _ = writeln!(
            out,
            "# HELP stockledger_exceptions_oldest_unresolved_age_seconds Age of the oldest exception not resolved."
        );
        let _ = writeln!(
            out,
            "# TYPE stockledger_exceptions_oldest_unresolved_age_seconds gauge"
        );
        let _ = writeln!(
            out,
            "stockledger_exceptions_oldest_unresolved_age_seconds {age}"
        );
        let _ = writeln!(
            out,
            "# HELP stockledger_exceptions_resolved Exceptions resolved."
        );
        let _ = writeln!(out, "# TYPE stockledger_exceptions_resolved gauge");
        let _ = writeln!(out, "stockledger_exceptions_resolved {}", stats.resolved);
        let _ = writeln!(
            out,
            "# HELP stockledger_dlq_depth Dead letters held by the dead-letter stream."
        );
        let _ = writeln!(out, "# TYPE stockledger_dlq_depth gauge");
        let _ = writeln!(out, "stockledger_dlq_depth {depth}");
        let _ = writeln!(
            out,
            "# HELP stockledger_dlq_advisories_pending Advisories captured, not yet dead letters."
        );
        let _ = writeln!(out, "# TYPE stockledger_dlq_advisories_pending gauge");
        let _ = writeln!(out, "stockledger_dlq_advisories_pending {pending}");
        Ok(out)
    }
}

/// A label value with `\` and `"` escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
