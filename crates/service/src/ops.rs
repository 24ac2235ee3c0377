//! The ops HTTP server every role that is not the ingress runs on a port of its own (the
//! ingress serves the same three paths on its API port, `ingress::routes::ops`):
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /metrics` | 200, the role's `prometheus-client` [`Registry`] in the OpenMetrics text format ([`CONTENT_TYPE`], ending `# EOF`); 503 with the reason when [`Probe::collect`] fails |
//! | `GET /healthz` | 200 `ok`: the process is up and serving |
//! | `GET /readyz` | 200 `ready`, or 503 with the reason ([`Probe::readiness`]) |
//! | anything else | 404 (405 for another method on a known path) |
//!
//! **Metrics computed at scrape time.** Counters and histograms the role updates as it works
//! live in the registry and cost nothing to serve. Gauges read from the database or from
//! JetStream (queue depths, ages) cannot be read inside `prometheus-client`'s encoder, which
//! is synchronous; so every scrape first awaits [`Probe::collect`], the role's "collect
//! before encode" hook, which reads what it needs and stores it in the registry's metrics
//! (plain gauges, or a `prometheus_client::collector::Collector` holding a snapshot), and
//! only then encodes. Scrapes are serialized (one collect-and-encode at a time), so two
//! scrapers never interleave one collect's values with another's, and a burst of scrapes
//! costs the database one query set at a time.
//!
//! **Bounds.** Each request is answered within [`REQUEST_TIMEOUT`] (503 `timed out`
//! otherwise: a database that does not answer does not hold a scraper's connection open);
//! on shutdown the server stops accepting, lets requests in hand finish, and gives up on
//! them after [`DRAIN_MAX`]. The ops port is meant for the monitoring network, like the
//! ingress's ops endpoints: it serves no data beyond counts and ages.

use std::future::{Future, IntoFuture as _};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::shutdown::CancellationToken;

/// The `Content-Type` of `GET /metrics`: OpenMetrics text, as `prometheus-client` encodes it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The longest one ops request may take, reading the database or JetStream included; a
/// request still running then is answered 503 `timed out`. Below Prometheus's default
/// scrape timeout (10 s), so the scraper hears why.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long, after shutdown begins, requests in hand may still take before the server
/// stops without them.
pub const DRAIN_MAX: Duration = REQUEST_TIMEOUT;

/// Whether the process should get traffic (`GET /readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// 200 `ready`.
    Ready,
    /// 503 with this reason (one line, starting with a stable code such as
    /// `ledger_behind_stream:`).
    NotReady(String),
}

/// Why the metrics could not be collected: answered 503 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CollectError(pub String);

/// What a role tells its ops server: how to refresh the metrics computed at scrape time,
/// and whether it is ready.
pub trait Probe: Send + Sync + 'static {
    /// Called before every encode of the registry: reads what the scrape-time metrics
    /// show and stores it in them. An error answers the scrape 503 with its text; a role
    /// that prefers serving its counters anyway leaves the unreadable series out instead.
    fn collect(&self) -> impl Future<Output = Result<(), CollectError>> + Send;

    /// The answer of `GET /readyz`.
    fn readiness(&self) -> impl Future<Output = Readiness> + Send;
}

/// Why the ops server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The address could not be bound (in use, not local, malformed).
    #[error("ops listener on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("ops server: {0}")]
    Serve(#[source] std::io::Error),
}

/// Binds the ops listener on `addr` (`host:port`).
pub async fn bind(addr: &str) -> Result<TcpListener, OpsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| OpsError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

/// What the handlers share.
struct Ops<P> {
    registry: Registry,
    probe: P,
    /// One collect-and-encode at a time.
    scrape: tokio::sync::Mutex<()>,
}

/// The ops routes over `registry` and `probe` (without a listener: for tests and for a
/// role that mounts them elsewhere).
pub fn router<P: Probe>(registry: Registry, probe: P) -> axum::Router {
    let ops = Arc::new(Ops {
        registry,
        probe,
        scrape: tokio::sync::Mutex::new(()),
    });
    axum::Router::new()
        .route("/metrics", get(metrics::<P>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<P>))
        .with_state(ops)
        .layer(axum::middleware::from_fn(bounded))
}

/// Serves the ops routes on `listener` until `stop` is cancelled, then drains for at most
/// [`DRAIN_MAX`].
pub async fn serve<P: Probe>(
    listener: TcpListener,
    registry: Registry,
    probe: P,
    stop: CancellationToken,
) -> Result<(), OpsError> {
    let app = router(registry, probe);
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result.map_err(OpsError::Serve),
        () = async {
            stop.cancelled().await;
            tokio::time::sleep(DRAIN_MAX).await;
        } => {
            tracing::debug!("ops requests still in hand after the drain; dropped");
            Ok(())
        }
    }
}

/// Every request within [`REQUEST_TIMEOUT`].
async fn bounded(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "timed out\n").into_response(),
    }
}

async fn metrics<P: Probe>(State(ops): State<Arc<Ops<P>>>) -> Response {
    let _one_at_a_time = ops.scrape.lock().await;
    if let Err(e) = ops.probe.collect().await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response();
    }
    match render(&ops.registry) {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not encode the metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics encoding failed\n",
            )
                .into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz<P: Probe>(State(ops): State<Arc<Ops<P>>>) -> Response {
    match ops.probe.readiness().await {
        Readiness::Ready => (StatusCode::OK, "ready\n").into_response(),
        Readiness::NotReady(reason) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response()
        }
    }
}

/// `registry` in the OpenMetrics text format ([`CONTENT_TYPE`]).
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    encode(&mut out, registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;

    use super::*;

    /// A probe whose gauge is set at scrape time and whose readiness is switched by hand.
    struct TestProbe {
        value: Arc<AtomicI64>,
        gauge: Gauge,
        ready: Arc<AtomicBool>,
    }

    impl Probe for TestProbe {
        async fn collect(&self) -> Result<(), CollectError> {
            match self.value.load(Ordering::Relaxed) {
                v if v < 0 => Err(CollectError("database_unavailable: down".into())),
                v => {
                    self.gauge.set(v);
                    Ok(())
                }
            }
        }
        async fn readiness(&self) -> Readiness {
            if self.ready.load(Ordering::Relaxed) {
                Readiness::Ready
            } else {
                Readiness::NotReady("ledger_behind_stream: 3 behind".into())
            }
        }
    }

    async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_owned(), body.to_owned())
    }

    #[tokio::test]
    async fn serves_metrics_collected_at_scrape_time_health_and_readiness_until_stopped() {
        let mut registry = Registry::default();
        let gauge = Gauge::default();
        registry.register("test_depth", "A depth read at scrape time", gauge.clone());
        let counter: Counter = Counter::default();
        registry.register("test_things", "Things done", counter.clone());
        counter.inc();
        let value = Arc::new(AtomicI64::new(7));
        let ready = Arc::new(AtomicBool::new(false));
        let probe = TestProbe {
            value: value.clone(),
            gauge,
            ready: ready.clone(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, registry, probe, stop.clone()));

        let (status, head, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("content-type: {CONTENT_TYPE}")),
            "{head}"
        );
        assert!(body.contains("test_depth 7\n"), "{body}");
        assert!(body.contains("test_things_total 1\n"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
        value.store(9, Ordering::Relaxed);
        assert!(get(addr, "/metrics").await.2.contains("test_depth 9\n"));
        value.store(-1, Ordering::Relaxed);
        let (status, _, body) = get(addr, "/metrics").await;
        assert_eq!(
            (status, body.as_str()),
            (503, "database_unavailable: down\n")
        );

        assert_eq!(get(addr, "/healthz").await.2, "ok\n");
        let (status, _, body) = get(addr, "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (503, "ledger_behind_stream: 3 behind\n")
        );
        ready.store(true, Ordering::Relaxed);
        let (status, _, body) = get(addr, "/readyz").await;
        assert_eq!((status, body.as_str()), (200, "ready\n"));
        assert_eq!(get(addr, "/nope").await.0, 404);

        stop.cancel();
        tokio::time::timeout(DRAIN_MAX + Duration::from_secs(1), server)
            .await
            .expect("stops within the drain bound")
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    /// A collect that never returns is answered 503 within [`REQUEST_TIMEOUT`].
    #[tokio::test(start_paused = true)]
    async fn a_hanging_collect_is_cut_at_the_request_timeout() {
        struct Hanging;
        impl Probe for Hanging {
            async fn collect(&self) -> Result<(), CollectError> {
                std::future::pending().await
            }
            async fn readiness(&self) -> Readiness {
                Readiness::Ready
            }
        }
        use tower::ServiceExt as _;
        let app = router(Registry::default(), Hanging);
        let response = app
            .oneshot(
                axum::http::Request::get("/metrics")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
