//! Connection-level limits of the ingress's HTTP server (issue 16, `docs/decisions.md` §28,
//! `docs/threat-model.md` "Connection limits").
//!
//! The server is hyper's HTTP/1.1 connection builder behind our own accept loop, so that
//! every resource a client can hold without credentials has a named bound:
//!
//! - **Header-read timeout** (`STOCKLEDGER_HEADER_READ_TIMEOUT`): a request head must be
//!   complete this long after the connection opened or the previous response ended, or
//!   the connection is closed. It is therefore also the idle keep-alive timeout: an idle
//!   or header-trickling connection is gone after it.
//! - **Connections** (`STOCKLEDGER_MAX_CONNECTIONS`, and never more than the open-file
//!   limit minus [`FD_RESERVE`] and the database pool): when every slot is taken, a new
//!   connection closes the oldest one that has no request in progress (idle, or still
//!   sending its head) and takes its place, as nginx reuses keep-alive connections; if
//!   every connection is working on a request, the newcomer gets `503` with `Retry-After`
//!   and is closed. A flood of idle connections therefore cannot keep `/healthz` or a
//!   provider's webhook out, and the process never reaches "Too many open files".
//! - **In-flight requests** (`STOCKLEDGER_MAX_INFLIGHT_REQUESTS`) and a declared
//!   `Content-Length` above `STOCKLEDGER_MAX_BODY_BYTES` are answered in the router
//!   ([`crate::shed_and_limit`]): `503` + `Retry-After`, and `413` before any body byte is
//!   read (so `Expect: 100-continue` never gets its `100 Continue`).
//!
//! Each request carries its TCP peer address as `ConnectInfo<SocketAddr>`, which the
//! PortOne allow-list needs.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// File descriptors kept free for everything but client connections (NATS, the log, the
/// SQLite files, outgoing iPint calls, a listener being re-armed), on top of the database
/// pool.
pub const FD_RESERVE: usize = 64;
/// How long a new connection waits for the slot of the connection it closed.
pub const EVICTION_WAIT: Duration = Duration::from_millis(250);
/// How long writing the `503` to a connection over the limit may take.
pub const SHED_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Connections being answered `503` at once at most; beyond, a connection over the limit
/// is closed without an answer (each one holds a file descriptor while it is answered).
pub const SHED_CONCURRENCY_MAX: usize = 16;
/// The `Retry-After` (seconds) of every load-shedding `503`.
pub const SHED_RETRY_AFTER_SECS: u64 = 1;
/// Pause after a failed `accept` (out of file descriptors, most often) before the next.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The bounds a [`serve`] call enforces.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    /// Connections kept open at once (already lowered to fit the open-file limit).
    pub max_connections: usize,
}

/// The soft open-file limit of this process (`/proc/self/limits`; `None` elsewhere).
pub fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    // "unlimited" has no number: no bound from here.
    soft.parse().ok()
}

/// `configured`, lowered so that connections plus the reserve (and `db_pool` database
/// connections) stay under the open-file limit `nofile`.
pub fn effective_max_connections(
    configured: usize,
    nofile: Option<usize>,
    db_pool: usize,
) -> usize {
    match nofile {
        Some(n) => configured.min(n.saturating_sub(FD_RESERVE + db_pool).max(1)),
        None => configured,
    }
}

/// One open connection as the eviction sees it.
#[derive(Debug, Default)]
struct Slot {
    /// Requests being answered on it (0 = idle, or its head is still arriving).
    active: AtomicUsize,
    /// Set once the slot is chosen for eviction.
    evicted: AtomicBool,
    evict: Notify,
}

/// The open connections, oldest first.
#[derive(Debug)]
struct Tracker {
    slots: Arc<Semaphore>,
    open: Mutex<BTreeMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
}

impl Tracker {
    fn register(&self) -> (u64, Arc<Slot>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        self.lock().insert(id, slot.clone());
        (id, slot)
    }

    fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Tells the oldest connection without a request in progress to close. False when
    /// every connection is busy.
    fn evict_oldest_idle(&self) -> bool {
        let open = self.lock();
        for slot in open.values() {
            if slot.active.load(Ordering::Acquire) == 0
                && !slot.evicted.swap(true, Ordering::AcqRel)
            {
                slot.evict.notify_one();
                return true;
            }
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Slot>>> {
        // A poisoned lock only means a panic mid-insert; the map itself is consistent.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection slot: a free one, or the one of an idle connection closed for it.
    async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        if !self.evict_oldest_idle() {
            return None;
        }
        tokio::time::timeout(EVICTION_WAIT, self.slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// Counts a request as in progress on its connection until dropped.
struct Busy(Arc<Slot>);

impl Busy {
    fn new(slot: &Arc<Slot>) -> Busy {
        slot.active.fetch_add(1, Ordering::AcqRel);
        Busy(slot.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` completes; then closes the
/// listener, lets every connection finish its request in progress (idle ones close at
/// once) and returns when all are closed (bound that wait in the caller).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tracker = Arc::new(Tracker {
        slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        open: Mutex::new(BTreeMap::new()),
        next_id: AtomicU64::new(0),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; `recv` returns `None` once all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let shedders = Arc::new(Semaphore::new(SHED_CONCURRENCY_MAX));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed; pausing");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // The slot is taken here, before the next accept, so that accepted sockets never
        // outnumber the slots by more than one (and the open-file limit is never reached).
        let Some(permit) = tracker.acquire().await else {
            if let Ok(shedding) = shedders.clone().try_acquire_owned() {
                let done = done_tx.clone();
                tokio::spawn(async move {
                    shed(stream).await;
                    drop((shedding, done));
                });
            }
            continue;
        };
        let (tracker, builder, app, stop, done) = (
            tracker.clone(),
            builder.clone(),
            app.clone(),
            stop_rx.clone(),
            done_tx.clone(),
        );
        tokio::spawn(async move {
            connection(stream, peer, permit, tracker, &builder, app, stop).await;
            drop(done);
        });
    }
    // Close the listening socket now, not when this function returns: a connection a load
    // balancer opens while the requests in progress finish is then refused at once (and
    // retried on another replica) instead of waiting in the backlog until it is reset.
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_tx);
    let _ = done_rx.recv().await;
    Ok(())
}

/// One connection from accept to close.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    tracker: Arc<Tracker>,
    builder: &hyper::server::conn::http1::Builder,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let (id, slot) = tracker.register();
    let service = {
        let slot = slot.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let busy = Busy::new(&slot);
            let mut app = app.clone();
            async move {
                let response = tower::Service::call(&mut app, req).await;
                drop(busy);
                response
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection closed with an error");
                }
                break;
            }
            () = slot.evict.notified() => {
                // Chosen because it had no request in progress; it may have started one
                // since, and then it finishes it first.
                if slot.active.load(Ordering::Acquire) == 0 {
                    tracing::debug!("closing an idle connection for a new one (connection limit)");
                    break;
                }
                conn.as_mut().graceful_shutdown();
            }
            changed = stop.changed(), if !stopping => {
                if changed.is_err() || *stop.borrow() {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
    tracker.unregister(id);
    drop(permit);
}

/// Answers a connection over the limit with `503` and `Retry-After`, then closes it.
async fn shed(mut stream: TcpStream) {
    let body = r#"{"error":"overloaded","message":"too many connections; retry later"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {SHED_RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(SHED_WRITE_TIMEOUT, async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_fit_the_open_file_limit() {
        assert_eq!(
            effective_max_connections(1024, Some(256), 8),
            256 - FD_RESERVE - 8
        );
        assert_eq!(effective_max_connections(100, Some(1 << 20), 8), 100);
        assert_eq!(effective_max_connections(100, None, 8), 100);
        assert_eq!(effective_max_connections(100, Some(10), 8), 1);
        assert!(open_file_limit().is_some_and(|n| n > 0) || !cfg!(target_os = "linux"));
    }
}
