//! One shutdown mechanism for every process: a [`CancellationToken`] that SIGINT or SIGTERM
//! cancels, and a [`TaskTracker`] that the process's long-running tasks are spawned on, so
//! `main` can wait for all of them (each finishing the batch or request it holds) within
//! one bound, `STOCKLEDGER_SHUTDOWN_GRACE`.
//!
//! Tasks do not each listen for signals: they watch the token (`token.cancelled()`), which
//! tests cancel by hand to stop a role without a signal.

use std::future::Future;
use std::time::Duration;

pub use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The shutdown of one process.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every tracked task finished within the grace period.
    Completely,
    /// The grace period ran out first; the tasks still running are dropped with the process.
    TimedOut,
}

impl Shutdown {
    /// A shutdown nothing has triggered yet.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// The token every task watches.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Completes once shutdown has begun.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        self.token.clone().cancelled_owned()
    }

    /// Begins shutdown by hand (tests; a role whose essential task failed).
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Spawns a long-running task the drain waits for.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Cancels the token on SIGINT (Ctrl-C) or SIGTERM. Spawned once by `main`.
    pub fn trigger_on_signals(&self) {
        let token = self.token.clone();
        tokio::spawn(async move {
            signal().await;
            tracing::info!("shutdown requested: finishing in-flight work");
            token.cancel();
        });
    }

    /// Waits for every spawned task, at most `grace`. Call after the token is cancelled.
    pub async fn drain(&self, grace: Duration) -> Drained {
        self.tracker.close();
        match tokio::time::timeout(grace, self.tracker.wait()).await {
            Ok(()) => Drained::Completely,
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    tasks = self.tracker.len(),
                    "in-flight work did not finish within STOCKLEDGER_SHUTDOWN_GRACE; exiting"
                );
                Drained::TimedOut
            }
        }
    }
}

/// Completes on SIGINT or SIGTERM. A signal that cannot be listened for is logged and
/// never completes, so the other one still works.
async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_drain_waits_for_tasks_that_watch_the_token() {
        let shutdown = Shutdown::new();
        let cancelled = shutdown.cancelled();
        let task = shutdown.spawn(async move {
            cancelled.await;
            // Finishing what it holds takes a moment.
            tokio::time::sleep(Duration::from_millis(50)).await;
            "finished"
        });
        shutdown.trigger();
        assert_eq!(
            shutdown.drain(Duration::from_secs(5)).await,
            Drained::Completely
        );
        assert_eq!(task.await.unwrap(), "finished");
    }

    #[tokio::test]
    async fn a_drain_is_bounded() {
        let shutdown = Shutdown::new();
        shutdown.spawn(std::future::pending::<()>());
        shutdown.trigger();
        assert_eq!(
            shutdown.drain(Duration::from_millis(50)).await,
            Drained::TimedOut
        );
    }
}
