//! Logging, set up once per process. `RUST_LOG` filters (default `info`);
//! `STOCKLEDGER_LOG_FORMAT` chooses human-readable lines (`text`, the default) or one JSON
//! object per line (`json`) for a log pipeline. Spans carry the event id where one is known
//! (`#[instrument]` on the publish and apply paths), so one event's way from the HTTP
//! request to its ledger row can be followed with a single filter on `event_id`.

use config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the process's subscriber. Call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}
