//! The load generator: a fixed number of distinct requests sent by a fixed number of
//! concurrent clients, each client sending its next request as soon as the previous one is
//! answered (a closed loop, not a fixed rate), and the statistics of such a run.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One closed-loop run: how many requests, how long, and what came back.
pub struct Run {
    pub n: usize,
    pub elapsed: Duration,
    /// Latency of every request, sorted.
    pub latencies: Vec<Duration>,
    /// How many requests ended with each status.
    pub statuses: BTreeMap<u16, usize>,
}

impl Run {
    /// Requests per second over the whole run.
    pub fn rate(&self) -> f64 {
        rate(self.n, self.elapsed)
    }

    /// The latency at quantile `q` (0.5 = median), nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        let Some(last) = self.latencies.len().checked_sub(1) else {
            return Duration::ZERO;
        };
        let i = ((last as f64) * q).round() as usize;
        self.latencies[i.min(last)]
    }

    /// Fails unless every request ended with one of `ok`.
    pub fn ensure_all(&self, what: &str, ok: &[u16]) -> anyhow::Result<()> {
        let good: usize = ok.iter().filter_map(|s| self.statuses.get(s)).sum();
        anyhow::ensure!(
            good == self.n,
            "{what}: {good} of {} requests answered {ok:?}; statuses: {:?}",
            self.n,
            self.statuses
        );
        Ok(())
    }
}

/// Units per second.
pub fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Sends requests `0..n` from `clients` concurrent clients (tokio tasks). `request(i)`
/// sends the i-th request and returns its status (HTTP status, or 200/503 for a
/// non-HTTP operation). Every request index is sent exactly once.
pub async fn drive<F, Fut>(n: usize, clients: usize, request: F) -> anyhow::Result<Run>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = u16> + Send + 'static,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (request, next) = (request.clone(), next.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return done;
                    }
                    let sent = Instant::now();
                    let status = request(i).await;
                    done.push((sent.elapsed(), status));
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(n);
    let mut statuses = BTreeMap::new();
    for worker in workers {
        for (latency, status) in worker.await? {
            latencies.push(latency);
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Ok(Run {
        n,
        elapsed,
        latencies,
        statuses,
    })
}
