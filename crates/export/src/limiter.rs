//! The run's API budget: one limiter shared by every API request, and a
//! pause of every worker when the API answers 429.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudflare_stream_downloads::{Admission, RequestGate};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::StatusCode;

/// How long every worker pauses after a 429 that names no wait: Cloudflare
/// locks a user out for 5 minutes past its limit.
pub const DEFAULT_LOCKOUT: Duration = Duration::from_secs(300);

/// `--rate N/DURATION`: at most `requests` API requests in any window of
/// `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in any window.
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

impl Rate {
    /// The default, `1000/5m`: under Cloudflare's 1200 requests per 5
    /// minutes per user, with room for the user's other tools.
    pub const DEFAULT: Rate = Rate {
        requests: 1000,
        per: Duration::from_secs(300),
    };

    /// The least time `requests` requests can take at this rate (after the
    /// first burst).
    pub fn floor(&self, requests: u64) -> Duration {
        let burst = u64::from(self.burst());
        let steady = u64::from(self.requests - self.burst());
        if requests <= burst || steady == 0 {
            return Duration::ZERO;
        }
        self.per.mul_f64((requests - burst) as f64 / steady as f64)
    }

    /// The burst the limiter allows: a tenth of the budget (at least 1).
    /// The rest is spread evenly over the window, so no window of `per`
    /// ever holds more than `requests` (a burst of all `requests` followed
    /// by the steady rate would allow twice that).
    fn burst(&self) -> u32 {
        (self.requests / 10).max(1)
    }

    fn quota(&self) -> Quota {
        let burst = self.burst();
        let steady = (self.requests - burst).max(1);
        let period = (self.per / steady).max(Duration::from_nanos(1));
        Quota::with_period(period)
            .expect("period is positive")
            .allow_burst(NonZeroU32::new(burst).expect("burst >= 1"))
    }
}

impl FromStr for Rate {
    type Err = String;
    /// `N/DURATION`, e.g. `1000/5m`, `200/1m`, `5/1s`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{s:?}: {why} (expected N/DURATION, e.g. 1000/5m)");
        let (n, per) = s.split_once('/').ok_or_else(|| bad("no /"))?;
        let requests: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad("N must be a positive whole number"))?;
        let per = per.trim();
        // `1000/m` reads as one minute.
        let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
            humantime::parse_duration(per)
        } else {
            humantime::parse_duration(&format!("1{per}"))
        }
        .map_err(|e| bad(&e.to_string()))?;
        if per.is_zero() {
            return Err(bad("the duration must be positive"));
        }
        Ok(Rate { requests, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.requests,
            humantime::format_duration(self.per)
        )
    }
}

tokio::task_local! {
    /// The request counter of the video a task works on.
    static VIDEO_REQUESTS: Arc<AtomicU64>;
}

/// Runs `f` with its API requests counted into `counter` (on top of the
/// run's total).
pub async fn counted<F: Future>(counter: Arc<AtomicU64>, f: F) -> F::Output {
    VIDEO_REQUESTS.scope(counter, f).await
}

/// The [`RequestGate`] of a run: a GCRA limiter (`governor`) at [`Rate`],
/// a shared pause until the `Retry-After` of the last 429, and counters.
pub struct Limiter {
    limiter: DefaultDirectRateLimiter,
    rate: Rate,
    paused_until: Mutex<Option<Instant>>,
    requests: AtomicU64,
    rate_limited: AtomicU64,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("rate", &self.rate)
            .field("requests", &self.requests())
            .field("rate_limited", &self.rate_limited())
            .finish()
    }
}

impl Limiter {
    /// A limiter at `rate`.
    pub fn new(rate: Rate) -> Self {
        Self {
            limiter: RateLimiter::direct(rate.quota()),
            rate,
            paused_until: Mutex::new(None),
            requests: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// API requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// 429 answers received so far.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Until when every request waits, if a 429 asked for a pause.
    pub fn paused_until(&self) -> Option<Instant> {
        let paused = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        paused.filter(|t| *t > Instant::now())
    }

    /// Waits out the pause of the last 429, if any.
    pub async fn wait_pause(&self) {
        while let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

impl RequestGate for Limiter {
    fn admit(&self) -> Admission<'_> {
        Box::pin(async move {
            loop {
                self.wait_pause().await;
                self.limiter.until_ready().await;
                // A 429 may have arrived while this request waited its turn.
                if self.paused_until().is_none() {
                    break;
                }
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let _ = VIDEO_REQUESTS.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
        })
    }

    fn answered(&self, status: StatusCode, retry_after: Option<Duration>) {
        if status != StatusCode::TOO_MANY_REQUESTS {
            return;
        }
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + retry_after.unwrap_or(DEFAULT_LOCKOUT);
        let mut paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
        tracing::warn!(
            pause_ms = (until - Instant::now()).as_millis() as u64,
            "rate limited (HTTP 429): every worker pauses"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(
            "1000/5m".parse(),
            Ok(Rate {
                requests: 1000,
                per: Duration::from_secs(300)
            })
        );
        assert_eq!(
            "5/s".parse(),
            Ok(Rate {
                requests: 5,
                per: Duration::from_secs(1)
            })
        );
        for bad in ["0/5m", "1000", "1000/0s", "x/5m", "1000/forever", "-1/5m"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn no_window_holds_more_than_the_budget() {
        // 20 per 200 ms: count admissions in every 200 ms window over 1 s.
        let rate: Rate = "20/200ms".parse().unwrap();
        let limiter = Limiter::new(rate);
        let start = Instant::now();
        let mut times = Vec::new();
        while start.elapsed() < Duration::from_millis(1000) {
            limiter.admit().await;
            times.push(start.elapsed());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u < *t + rate.per)
                .count();
            assert!(in_window <= 20, "{in_window} requests in 200 ms from {t:?}");
        }
        assert!(
            times.len() > 40,
            "the limiter let through only {}",
            times.len()
        );
        assert_eq!(limiter.requests(), times.len() as u64);
    }

    #[tokio::test]
    async fn a_429_pauses_every_request() {
        let limiter = Arc::new(Limiter::new("1000/1s".parse().unwrap()));
        limiter.answered(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_millis(300)),
        );
        let started = Instant::now();
        let (a, b) = (limiter.clone(), limiter.clone());
        tokio::join!(a.admit(), b.admit());
        assert!(started.elapsed() >= Duration::from_millis(290));
        assert_eq!(limiter.rate_limited(), 1);
        // Other statuses do not pause.
        limiter.answered(StatusCode::BAD_GATEWAY, Some(Duration::from_secs(60)));
        assert!(limiter.paused_until().is_none());
    }
}
