//! Per-source rate limits for the unauthenticated endpoints (decision 30).
//!
//! iPint's callback and PortOne's inventory confirmation carry no signature, so anyone who
//! can reach them can make the ingress (and, behind it, iPint's API and the ledger) work.
//! [`Limiter`] is a token bucket per source address (`net::client_addr`: the TCP peer, or
//! `X-Forwarded-For` behind a trusted proxy): `burst` requests at once, then `per_second`
//! sustained. Over the limit a request is answered `429 rate_limited` with `Retry-After`
//! before its body is read; nothing is stored. Each limited route has its own limiter
//! ([`layer`]), configured by its own variables (`STOCKLEDGER_IPINT_CALLBACKS_*`,
//! `STOCKLEDGER_CONFIRMATIONS_*`); `per_second` 0 turns a limiter off.
//!
//! The table of sources is bounded ([`SOURCES_MAX`]): when it is full, sources whose bucket
//! has refilled (they carry no information) are forgotten; if none has, new sources share
//! one overflow bucket, so a spread-out flood cannot grow memory nor starve the sources
//! already known. Requests whose source cannot be known (no peer address) share the
//! overflow bucket too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The most source addresses one limiter remembers.
pub const SOURCES_MAX: usize = 10_000;

/// One limiter's budget per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, sustained; 0: no limit.
    pub per_second: u32,
    /// Requests at once before the rate applies (at least 1).
    pub burst: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by source address; cheap to share (`Arc`).
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

impl Limiter {
    /// A limiter with this budget per source.
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `source` at `now`: `Ok` when the request may proceed, else how
    /// long until the next token.
    pub fn check(&self, source: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        if self.limit.per_second == 0 {
            return Ok(());
        }
        let rate = f64::from(self.limit.per_second);
        let burst = f64::from(self.limit.burst.max(1));
        let refill = |b: &Bucket| {
            (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(burst)
        };
        // A poisoned lock only means another request panicked mid-update; the map is
        // still a valid map of buckets.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut key = source;
        if key.is_some() && !buckets.contains_key(&key) && buckets.len() >= SOURCES_MAX {
            buckets.retain(|k, b| k.is_none() || refill(b) < burst);
            if buckets.len() >= SOURCES_MAX {
                key = None;
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = refill(&*bucket);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / rate))
        }
    }
}

/// The state of one limited route: the app (trusted proxies, metrics) and its limiter.
pub type LimitState = (AppState, Arc<Limiter>);

/// The middleware: `route_layer(middleware::from_fn_with_state((state, limiter), limit))`.
pub async fn limit(
    State((state, limiter)): State<LimitState>,
    req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let source = crate::net::client_addr(peer, req.headers(), &state.settings.trusted_proxies);
    match limiter.check(source, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs().saturating_add(1);
            tracing::debug!(source = ?source, "request over its source's rate limit: 429");
            let body = crate::wire::error::ErrorBody {
                error: "rate_limited".to_owned(),
                message: format!("too many requests from this source; retry in {secs} s"),
            };
            let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
    }
}

/// A fresh limiter for one route, as middleware state.
pub fn layer(state: &AppState, limit: RateLimit) -> LimitState {
    (state.clone(), Arc::new(Limiter::new(limit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn burst_then_rate_per_source() {
        let l = Limiter::new(RateLimit {
            per_second: 10,
            burst: 3,
        });
        let t = Instant::now();
        assert!((0..3).all(|_| l.check(ip(1), t).is_ok()));
        let wait = l.check(ip(1), t).err();
        assert!(wait.is_some_and(|w| w <= Duration::from_millis(100)));
        assert!(
            l.check(ip(2), t).is_ok(),
            "another source has its own bucket"
        );
        assert!(l.check(ip(1), t + Duration::from_millis(100)).is_ok());
        assert!(l.check(ip(1), t + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn zero_rate_is_off() {
        let l = Limiter::new(RateLimit {
            per_second: 0,
            burst: 1,
        });
        let t = Instant::now();
        assert!((0..1000).all(|_| l.check(ip(1), t).is_ok()));
    }

    #[test]
    fn the_table_of_sources_is_bounded() {
        let l = Limiter::new(RateLimit {
            per_second: 1,
            burst: 1,
        });
        let t = Instant::now();
        for i in 0..SOURCES_MAX {
            let a = Some(IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]));
            assert!(l.check(a, t).is_ok());
        }
        // Every known source is drained: a new one shares the overflow bucket.
        assert!(l.check(Some(IpAddr::from([11, 0, 0, 1])), t).is_ok());
        assert!(l.check(Some(IpAddr::from([11, 0, 0, 2])), t).is_err());
        let len = l.buckets.lock().map(|b| b.len()).unwrap_or(0);
        assert!(len <= SOURCES_MAX + 1);
        // Once they refilled, they are forgotten and new sources get their own buckets.
        let later = t + Duration::from_secs(2);
        assert!(l.check(Some(IpAddr::from([11, 0, 0, 3])), later).is_ok());
        assert!(l.check(Some(IpAddr::from([11, 0, 0, 4])), later).is_ok());
    }
}
