//! Waiting for the ledger: operator commands publish an event and then poll the database
//! for its outcome, up to a deadline. One poller, for the actions here and for the
//! exception consumer's retries.

use std::time::Duration;

/// How long [`wait_until`] sleeps between two looks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Some` or `timeout` passes (operator commands waiting
/// for the ledger's outcome of a retry).
pub async fn wait_until<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
