//! Provisioning while NATS may be away: the roles start without NATS (they serve, not
//! ready, and say why) and create their streams once it answers.

use std::future::Future;
use std::time::Duration;

use crate::BusError;

/// The first pause between two attempts.
pub const PROVISION_RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest pause between two attempts (the pause doubles up to it).
pub const PROVISION_RETRY_MAX: Duration = Duration::from_secs(5);

/// Runs `attempt` until it succeeds, pausing between tries, and logs each different
/// failure once (and, after a failure, the success).
pub async fn until_provisioned<F, Fut>(mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), BusError>>,
{
    let mut pause = PROVISION_RETRY_FIRST;
    let mut said: Option<String> = None;
    loop {
        match attempt().await {
            Ok(()) => {
                if said.is_some() {
                    tracing::info!("NATS is reachable; the streams are in place");
                }
                return;
            }
            Err(e) => {
                let line = e.to_string();
                if said.as_ref() != Some(&line) {
                    tracing::warn!(error = %line, "cannot create the streams yet (is NATS up? STOCKLEDGER_NATS_URL); retrying");
                    said = Some(line);
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(PROVISION_RETRY_MAX);
    }
}
