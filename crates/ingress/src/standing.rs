//! Whether the ledger database is current with the event stream, as the ingress needs it:
//! `/readyz` asks every time; writes, reads and PortOne's confirmation ask through a cache
//! refreshed at most every [`STANDING_CACHE_TTL`], so the check costs the hot path one
//! lookup per interval, not two round trips per request. The answer itself comes from
//! `operator::standing` (decision 25).

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// How long a "current" or "behind" answer is reused by requests.
pub const STANDING_CACHE_TTL: Duration = Duration::from_secs(1);

/// The cached answer: `Some(line)` when behind (what to tell the caller).
#[derive(Debug, Default)]
pub struct StandingCache {
    last: tokio::sync::Mutex<Option<(Instant, Option<String>)>>,
}

impl StandingCache {
    /// Asks now and remembers the answer. `Err` when NATS or the database cannot say.
    pub async fn refresh(&self, state: &AppState) -> Result<Option<String>, ApiError> {
        let behind = match operator::standing::standing(&state.bus, &state.store).await {
            Ok(s) if s.is_behind() => Some(s.describe()),
            Ok(_) => None,
            Err(operator::StandingError::Bus(e)) => return Err(e.into()),
            Err(operator::StandingError::Store(e)) => return Err(e.into()),
        };
        *self.last.lock().await = Some((Instant::now(), behind.clone()));
        Ok(behind)
    }

    /// The remembered answer while fresh, else a new one. One request refreshes at a time;
    /// the others wait for it.
    async fn behind(&self, state: &AppState) -> Result<Option<String>, ApiError> {
        {
            let last = self.last.lock().await;
            if let Some((at, behind)) = last.as_ref()
                && at.elapsed() < STANDING_CACHE_TTL
            {
                return Ok(behind.clone());
            }
        }
        self.refresh(state).await
    }
}

/// Refuses the request with 503 `ledger_behind_stream` while the ledger is behind. When the
/// standing cannot be read (NATS or the database down), the request goes on and meets that
/// failure itself.
pub async fn require_current(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match state.standing.behind(&state).await {
        Ok(Some(line)) => ApiError::LedgerBehind(format!(
            "{line}; nothing was accepted: the ledger must be rebuilt (`stockctl ledger rebuild`)"
        ))
        .into_response(),
        Ok(None) | Err(_) => next.run(req).await,
    }
}
