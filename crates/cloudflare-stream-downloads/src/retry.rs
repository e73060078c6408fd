//! The retry policy: which answers are retried and how long to wait. The
//! one place retries are decided; applied to every generated call by the
//! `exec` hook (`hooks.rs`).
//!
//! Retried: connection errors, timeouts, 408, 409, 429 and every 5xx. The
//! wait is, in order of preference: `retry-after-ms`; `Retry-After` as
//! seconds or as an HTTP date; otherwise 0.5 s × 2ⁿ capped at 8 s, minus up
//! to 25 % jitter. `x-should-retry: true|false` overrides the status rule.
//! A server-given wait longer than [`RetryPolicy::max_retry_after`] (60 s by
//! default, as Cloudflare's SDKs) is not waited out inside the call: the
//! call fails at once with [`Error::RateLimited`](crate::Error::RateLimited)
//! carrying the delay, because a rate-limit lockout lasts minutes.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// How many times and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 2, as Cloudflare's Python
    /// and TypeScript SDKs).
    pub max_retries: u32,
    /// First backoff delay (default 0.5 s).
    pub initial_backoff: Duration,
    /// Longest backoff delay (default 8 s).
    pub max_backoff: Duration,
    /// Longest server-requested wait honoured inside a call (default 60 s).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Statuses worth retrying: 408, 409, 429 and 5xx.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

/// What to do after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Hand the answer to the caller.
    Stop,
    /// Wait this long, then send the request again.
    RetryAfter(Duration),
    /// The server asked for a wait longer than the policy allows.
    TooLongToWait(Duration),
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (0-based), without jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(16));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Backoff with up to 25 % taken off at random, so clients that failed
    /// together do not retry together.
    pub fn backoff_with_jitter(&self, retry: u32) -> Duration {
        let base = self.backoff(retry);
        base.mul_f64(1.0 - 0.25 * fastrand::f64())
    }

    /// Decide after an HTTP answer; `retries_done` retries were already made.
    pub fn decide(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        retries_done: u32,
        now: SystemTime,
    ) -> Decision {
        self.decide_parsed(status, headers, retry_after(headers, now), retries_done)
    }

    /// [`decide`](Self::decide) with the server's wait already parsed from
    /// `headers` (the `exec` hook also records it, and parses it once).
    pub(crate) fn decide_parsed(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        server_wait: Option<Duration>,
        retries_done: u32,
    ) -> Decision {
        let wanted = match should_retry_header(headers) {
            Some(explicit) => explicit,
            None => is_retryable_status(status),
        };
        if !wanted {
            return Decision::Stop;
        }
        if let Some(wait) = server_wait
            && wait > self.max_retry_after
        {
            return Decision::TooLongToWait(wait);
        }
        if retries_done >= self.max_retries {
            return Decision::Stop;
        }
        Decision::RetryAfter(server_wait.unwrap_or_else(|| self.backoff_with_jitter(retries_done)))
    }

    /// Decide after a connection failure or timeout (no answer).
    pub fn decide_transport(&self, retries_done: u32) -> Decision {
        if retries_done >= self.max_retries {
            Decision::Stop
        } else {
            Decision::RetryAfter(self.backoff_with_jitter(retries_done))
        }
    }
}

/// `x-should-retry: true|false`, when present and valid.
pub fn should_retry_header(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The server's requested wait: `retry-after-ms` (milliseconds), else
/// `Retry-After` as delta-seconds or as an HTTP date (RFC 9110; all three
/// date formats, parsed by the `httpdate` crate). A date in the past means
/// no wait. Unparseable values are ignored.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64((ms / 1000.0).min(u32::MAX as f64)));
    }
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn backoff_doubles_from_half_a_second_and_caps_at_eight() {
        let p = RetryPolicy::default();
        let secs: Vec<f64> = (0..7).map(|n| p.backoff(n).as_secs_f64()).collect();
        assert_eq!(secs, [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(8));
    }

    #[test]
    fn jitter_takes_off_at_most_a_quarter() {
        let p = RetryPolicy::default();
        for _ in 0..1000 {
            let d = p.backoff_with_jitter(2);
            assert!(
                d <= Duration::from_secs(2) && d >= Duration::from_millis(1500),
                "{d:?}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_date_and_ms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        let in_five = httpdate::fmt_http_date(now + Duration::from_secs(5));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &in_five)]), now),
            Some(Duration::from_secs(5))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "9")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "-1")]), now),
            None
        );
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn decisions() {
        let p = RetryPolicy::default();
        let now = SystemTime::now();
        let none = HeaderMap::new();
        for status in [408, 409, 429, 500, 502, 503, 504] {
            let s = StatusCode::from_u16(status).unwrap();
            assert!(
                matches!(p.decide(s, &none, 0, now), Decision::RetryAfter(_)),
                "{status}"
            );
            assert_eq!(
                p.decide(s, &none, 2, now),
                Decision::Stop,
                "{status} after 2 retries"
            );
        }
        for status in [200, 400, 401, 403, 404, 422] {
            let s = StatusCode::from_u16(status).unwrap();
            assert_eq!(p.decide(s, &none, 0, now), Decision::Stop, "{status}");
        }
        let no = headers(&[("x-should-retry", "false")]);
        assert_eq!(
            p.decide(StatusCode::SERVICE_UNAVAILABLE, &no, 0, now),
            Decision::Stop
        );
        let yes = headers(&[("x-should-retry", "true")]);
        assert!(matches!(
            p.decide(StatusCode::BAD_REQUEST, &yes, 0, now),
            Decision::RetryAfter(_)
        ));
        let lockout = headers(&[("retry-after", "300")]);
        assert_eq!(
            p.decide(StatusCode::TOO_MANY_REQUESTS, &lockout, 0, now),
            Decision::TooLongToWait(Duration::from_secs(300))
        );
        let two = headers(&[("retry-after", "2")]);
        assert_eq!(
            p.decide(StatusCode::TOO_MANY_REQUESTS, &two, 0, now),
            Decision::RetryAfter(Duration::from_secs(2))
        );
    }
}
