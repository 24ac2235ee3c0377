//! The exception process's `/readyz` (decision 25) and the exception queue's gauges, computed when scraped (from the database and the
//! dead-letter stream, so every exception process and `stockctl exceptions stats` report
//! the same numbers), in Prometheus text format:
//!
//! | metric | meaning |
//! | --- | --- |
//! | `stockledger_exceptions_unresolved{reason,state}` | exceptions `open` or `retrying`, per reason code (0 for every known code) |
//! | `stockledger_exceptions_oldest_unresolved_age_seconds` | age of the oldest exception not resolved (0 when none) |
//! | `stockledger_exceptions_resolved` | exceptions resolved so far |
//! | `stockledger_dlq_depth` | dead letters held by the dead-letter stream |
//! | `stockledger_dlq_advisories_pending` | advisories captured but not yet turned into dead letters |
//!
//! [`serve`] answers `GET /metrics` (and `GET /healthz`) on its own port with a deliberately
//! tiny HTTP/1.1 responder: one request per connection, bounded in size and time, so this
//! process needs no web framework (only the ingress knows axum).

use std::fmt::Write as _;
use std::time::Duration;

use bus::Bus;
use store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Every reason code the queue can hold: the ledger's and the dead letters'.
pub const REASON_CODES: [&str; 12] = [
    "oversold",
    "void_after_capture",
    "insufficient_at_authorization",
    "amount_mismatch",
    "chargeback_review",
    "unknown_order",
    "missing_fields",
    "undecodable",
    "unknown_schema_version",
    "unverifiable",
    "max_deliveries",
    "terminated",
];

/// The largest request head read, in bytes.
pub const REQUEST_HEAD_MAX_BYTES: usize = 8 * 1024;
/// The longest a scrape connection may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the gauges are computed from.
#[derive(Debug, Clone)]
pub struct Gauges {
    pub bus: Bus,
    pub store: Store,
}

impl Gauges {
    /// `/readyz`: 200 when NATS and the database answer and the ledger is not behind the
    /// event stream (`ledger::position`); 503 naming the reason otherwise.
    pub async fn readiness(&self) -> (&'static str, String) {
        match ledger::position::standing(&self.bus, &self.store).await {
            Ok(s) if s.is_behind() => (
                "503 Service Unavailable",
                format!("{}: {}\n", ledger::position::BEHIND_REASON, s.describe()),
            ),
            Ok(_) => ("200 OK", "ready\n".to_owned()),
            Err(ledger::LedgerError::Bus(e)) => (
                "503 Service Unavailable",
                format!("nats_unavailable: {e}\n"),
            ),
            Err(ledger::LedgerError::Store(e)) => (
                "503 Service Unavailable",
                format!("database_unavailable: {e}\n"),
            ),
        }
    }

    /// The gauges in Prometheus text format, at `now_ms`.
    pub async fn render(&self, now_ms: i64) -> Result<String, crate::ExceptionsError> {
        let stats = self.store.queue_stats().await?;
        let depth = self.bus.dlq_depth().await?;
        let pending = self.bus.advisories_pending().await?;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP stockledger_exceptions_unresolved Exceptions open or retrying, by reason code and state."
        );
        let _ = writeln!(out, "# TYPE stockledger_exceptions_unresolved gauge");
        for code in REASON_CODES {
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

/// Serves `/metrics` on `listener` until `stop`.
pub async fn serve(listener: TcpListener, gauges: Gauges, mut stop: watch::Receiver<bool>) {
    loop {
        let conn = tokio::select! {
            _ = stop.changed() => return,
            c = listener.accept() => c,
        };
        let Ok((stream, _)) = conn else { continue };
        let gauges = gauges.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &gauges))
                .await
                .is_err()
            {
                tracing::debug!("metrics request timed out");
            }
        });
    }
}

async fn answer(mut stream: tokio::net::TcpStream, gauges: &Gauges) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REQUEST_HEAD_MAX_BYTES {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let (status, body) = if line.starts_with("GET /metrics ") {
        match gauges.render(crate::now().0).await {
            Ok(text) => ("200 OK", text),
            Err(e) => ("503 Service Unavailable", format!("{e}\n")),
        }
    } else if line.starts_with("GET /healthz ") {
        ("200 OK", "ok\n".to_owned())
    } else if line.starts_with("GET /readyz ") {
        gauges.readiness().await
    } else {
        ("404 Not Found", "not found\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
