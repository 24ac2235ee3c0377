//! Waiting on observed state instead of sleeping: the two ways an end-to-end test waits.
//!
//! - [`eventually`]: until a condition a user could see holds (a balance, an outcome, an
//!   HTTP answer), or fail naming what did not happen.
//! - [`Harness::settled`]: until the ledger has finished with every message published so far
//!   (its durable consumer has nothing undelivered and nothing unacknowledged) and the
//!   stock-change relay has drained. A test that asserts something did *not*
//!   happen ("a second retry moves nothing") checks after `settled`, so the check is made
//!   once the ledger has seen the message, not after a guessed pause.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::Harness;

/// How long any wait lasts at most before the test fails: long enough for a slow CI machine,
/// short enough that a hang shows up as a failure.
pub const WAIT_MAX: Duration = Duration::from_secs(30);

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it holds; panics naming `what` after [`WAIT_MAX`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT_MAX, "timed out waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

impl Harness {
    /// Waits until the ledger consumer has no message left to deliver and none awaiting an
    /// acknowledgement, and no stock change waits in the outbox. Messages the ledger holds
    /// back on purpose (an order not registered yet) keep it unsettled: use it where every
    /// event can be decided.
    pub async fn settled(&self) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut consumer: bus::PullConsumer = self
            .bus
            .jetstream()
            .get_stream(self.bus.namespace().events_stream())
            .await?
            .get_consumer(bus::LEDGER_CONSUMER)
            .await
            .map_err(|e| anyhow::anyhow!("the ledger consumer: {e}"))?;
        loop {
            let info = consumer
                .info()
                .await
                .map_err(|e| anyhow::anyhow!("the ledger consumer's info: {e}"))?;
            let (pending, unacked) = (info.num_pending, info.num_ack_pending);
            let outbox = self.store.stock_outbox_len().await?;
            if pending == 0 && unacked == 0 && outbox == 0 {
                return Ok(());
            }
            anyhow::ensure!(
                start.elapsed() < WAIT_MAX,
                "not settled: {pending} messages undelivered, {unacked} unacknowledged, \
                 {outbox} stock changes unsent"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}
