//! What one client may ask of the hub: a request rate per address and per
//! token (429 with `Retry-After` past it), and a deadline for answering
//! anything but a publish (which has its own, see [`crate::publish`]).
//!
//! Addresses are keyed whole for IPv4 and by /64 for IPv6, where one host
//! holds a whole prefix. Tokens are keyed by a hash of the header, so a
//! client rotating made-up tokens is still bounded by its address. Behind a
//! reverse proxy every request comes from the proxy's address: limit there.
//!
//! Uploads in progress are also counted per address ([`UploadsInFlight`]).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// A sustained request rate and the burst allowed above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: NonZeroU32,
    /// Requests allowed at once above the rate.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `per_second` sustained with bursts of `burst`; `None` when either is 0.
    pub fn new(per_second: u32, burst: u32) -> Option<RateLimit> {
        Some(RateLimit { per_second: NonZeroU32::new(per_second)?, burst: NonZeroU32::new(burst)? })
    }
}

/// How often idle keys are dropped from the limiters' maps.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// The limiters of one hub.
pub struct Limiters {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_token: DefaultKeyedRateLimiter<[u8; 16]>,
    started: Instant,
    /// Seconds after `started` of the last sweep of idle keys.
    swept: AtomicU64,
}

impl Limiters {
    /// Limiters allowing `limit` per address and per token.
    pub fn new(limit: RateLimit) -> Limiters {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Limiters {
            by_address: RateLimiter::keyed(quota),
            by_token: RateLimiter::keyed(quota),
            started: Instant::now(),
            swept: AtomicU64::new(0),
        }
    }

    /// `Ok` when both keys are within their rate; else how long to wait.
    fn check(&self, address: Option<IpAddr>, token: Option<[u8; 16]>) -> Result<(), Duration> {
        self.sweep();
        let now = DefaultClock::default().now();
        if let Some(address) = address {
            self.by_address.check_key(&address).map_err(|n| n.wait_time_from(now))?;
        }
        if let Some(token) = token {
            self.by_token.check_key(&token).map_err(|n| n.wait_time_from(now))?;
        }
        Ok(())
    }

    /// Drops keys whose limit has fully recovered, at most once a minute,
    /// so a stream of new addresses or tokens cannot grow the maps forever.
    fn sweep(&self) {
        let now = self.started.elapsed().as_secs();
        let last = self.swept.load(Ordering::Relaxed);
        if now >= last + FORGET_EVERY.as_secs()
            && self.swept.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.by_address.retain_recent();
            self.by_token.retain_recent();
            self.by_address.shrink_to_fit();
            self.by_token.shrink_to_fit();
        }
    }
}

/// Uploads in progress per client address (by [`address_key`]), so one
/// client cannot take every upload slot.
#[derive(Default)]
pub struct UploadsInFlight {
    counts: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
}

impl UploadsInFlight {
    /// A pass for one more upload from `address`, unless it has `most` already.
    pub fn enter(self: &Arc<Self>, address: IpAddr, most: usize) -> Option<UploadPass> {
        let key = address_key(address);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key).or_default();
        if *count >= most {
            return None;
        }
        *count += 1;
        Some(UploadPass { uploads: self.clone(), key })
    }
}

/// One upload in progress; the count goes down when it is dropped.
pub struct UploadPass {
    uploads: Arc<UploadsInFlight>,
    key: IpAddr,
}

impl Drop for UploadPass {
    fn drop(&mut self) {
        let mut counts = self.uploads.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// The key of a client address: IPv4 whole, IPv6 by its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The key of the request's bearer token, if it sends one.
fn token_key(request: &Request) -> Option<[u8; 16]> {
    let value = request.headers().get(header::AUTHORIZATION)?;
    let digest = Sha256::digest(value.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    Some(key)
}

/// Middleware: refuses requests over the rate (429), and answers 503 for
/// any request but a publish that is not answered within the hub's
/// `request_timeout`.
pub async fn limit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(limiters) = &state.limiters {
        let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| address_key(c.0.ip()));
        if let Err(wait) = limiters.check(address, token_key(&request)) {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            return ApiError::retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from this client; try again in {seconds} s"),
                seconds,
            )
            .into_response();
        }
    }
    if crate::publish::is_publish(&request) {
        return next.run(request).await;
    }
    let deadline = state.config.request_timeout;
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the hub did not answer within {} s; try again shortly", deadline.as_secs_f64()),
            5,
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("address");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("address");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("address");
        assert_eq!(address_key(mapped), IpAddr::from([192, 0, 2, 7]));
    }

    #[test]
    fn a_burst_then_refusal_per_address_and_per_token_apart() {
        let limiters = Limiters::new(RateLimit::new(1, 3).expect("a limit"));
        let here = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            assert!(limiters.check(here, None).is_ok());
        }
        let wait = limiters.check(here, None).err();
        assert!(wait.is_some_and(|w| w > Duration::ZERO && w <= Duration::from_secs(1)), "{wait:?}");
        // Another address is not held back by the first one's use.
        assert!(limiters.check(Some(IpAddr::from([10, 0, 0, 2])), None).is_ok());
        // One token from many addresses is limited as one client.
        for i in 0..3u8 {
            assert!(limiters.check(Some(IpAddr::from([10, 1, 0, i])), Some([7; 16])).is_ok());
        }
        assert!(limiters.check(Some(IpAddr::from([10, 1, 0, 9])), Some([7; 16])).is_err());
    }

    #[test]
    fn uploads_in_flight_are_counted_per_address_and_released_on_drop() {
        let uploads = Arc::new(UploadsInFlight::default());
        let a: IpAddr = "2001:db8::1".parse().expect("address");
        let a_too: IpAddr = "2001:db8::2".parse().expect("address");
        let first = uploads.enter(a, 2).expect("first");
        let _second = uploads.enter(a_too, 2).expect("second, same /64");
        assert!(uploads.enter(a, 2).is_none(), "a third from one /64");
        assert!(uploads.enter(IpAddr::from([10, 0, 0, 1]), 2).is_some(), "another client");
        drop(first);
        assert!(uploads.enter(a, 2).is_some(), "a slot came back");
        assert!(uploads.counts.lock().expect("lock").len() <= 1, "idle addresses are forgotten");
    }
}
