//! When to ask again whether a download is ready.
//!
//! Every poll is an API request out of a budget shared with every other
//! video, so a poll that finds the download still generating is wasted.
//! [`PollPolicy::Adaptive`] (the default) extrapolates the finish time from
//! the last two observations of `percentComplete` and asks at that time
//! (bounded below and above); a download whose progress stalls falls back to
//! doubling backoff. Before a download has two observations, the pace of the
//! downloads that already finished in this run ([`Pace`]) places its first
//! poll, so that in a run of many videos most downloads cost one create and
//! one poll. The two others are the baselines it is measured against
//! (docs/performance.md): a fixed interval, and doubling backoff alone.

use std::time::{Duration, Instant};

/// How an export polls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PollPolicy {
    /// Extrapolate from `percentComplete`; first poll after `first`, never
    /// sooner than `min` or later than `max` apart.
    Adaptive {
        /// Wait before the first poll after a create.
        first: Duration,
        /// Shortest wait between polls.
        min: Duration,
        /// Longest wait between polls.
        max: Duration,
    },
    /// Every `interval` (the common script: `sleep 1` in a loop).
    Fixed {
        /// The interval.
        interval: Duration,
    },
    /// `first`, then doubling up to `max`.
    Doubling {
        /// First wait.
        first: Duration,
        /// Longest wait.
        max: Duration,
    },
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy::Adaptive {
            first: Duration::from_secs(2),
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// The pace at which this run's downloads generate, in percentage points
/// per second: a moving average over the downloads seen from creation to
/// ready (their time to ready is measured up to the poll that saw it, so
/// the pace errs slow, and a first poll placed with it errs late: one poll
/// after ready, rather than several before).
#[derive(Debug, Default)]
pub struct Pace {
    points_per_second: std::sync::Mutex<Option<f64>>,
}

impl Pace {
    /// A download went from `from` % to ready in `elapsed`.
    pub fn record(&self, from: f64, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if secs <= 0.0 || !(0.0..100.0).contains(&from) {
            return;
        }
        let sample = (100.0 - from) / secs;
        let mut pace = self
            .points_per_second
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *pace = Some(match *pace {
            None => sample,
            Some(avg) => 0.8 * avg + 0.2 * sample,
        });
    }

    /// The current estimate, if any download finished yet.
    pub fn get(&self) -> Option<f64> {
        *self
            .points_per_second
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// The polling schedule of one download.
#[derive(Debug, Clone)]
pub struct Poller {
    policy: PollPolicy,
    /// The run's [`Pace`] when this download started waiting.
    hint: Option<f64>,
    /// The last two observations: (when, percent).
    last: Option<(Instant, f64)>,
    before: Option<(Instant, f64)>,
    /// The previous wait (for backoff).
    wait: Option<Duration>,
}

impl Poller {
    /// A schedule under `policy`.
    pub fn new(policy: PollPolicy) -> Self {
        Self::with_pace(policy, None)
    }

    /// A schedule under `policy` whose first adaptive poll is placed by the
    /// run's pace, when known (points per second).
    pub fn with_pace(policy: PollPolicy, hint: Option<f64>) -> Self {
        Self {
            policy,
            hint,
            last: None,
            before: None,
            wait: None,
        }
    }

    /// Records `percent` seen at `at` and returns how long to wait before
    /// the next poll.
    pub fn observe(&mut self, at: Instant, percent: f64) -> Duration {
        let percent = if percent.is_finite() {
            percent.clamp(0.0, 100.0)
        } else {
            0.0
        };
        self.before = self.last.replace((at, percent));
        let wait = match self.policy {
            PollPolicy::Fixed { interval } => interval,
            PollPolicy::Doubling { first, max } => self.wait.map_or(first, |w| (w * 2).min(max)),
            PollPolicy::Adaptive { first, min, max } => match (self.before, self.last) {
                (Some((t0, p0)), Some((t1, p1))) if p1 > p0 && t1 > t0 => {
                    // Linear extrapolation to 100 %.
                    let rate = (p1 - p0) / (t1 - t0).as_secs_f64();
                    let eta = Duration::from_secs_f64(((100.0 - p1) / rate).min(max.as_secs_f64()));
                    eta.clamp(min, max)
                }
                // No progress since the last poll: back off.
                (Some(_), Some(_)) => self.wait.map_or(first, |w| (w * 2).clamp(min, max)),
                // One observation: the run's pace, else `first`.
                (_, Some((_, p))) => match self.hint {
                    Some(rate) if rate > 0.0 => {
                        Duration::from_secs_f64(((100.0 - p) / rate).min(max.as_secs_f64()))
                            .clamp(min, max)
                    }
                    _ => first.clamp(min, max),
                },
                _ => first.clamp(min, max),
            },
        };
        self.wait = Some(wait);
        wait
    }
}

impl Poller {
    /// The wait after a check that learned nothing (the download host has
    /// no file yet; no new `percentComplete`): checks of the download host
    /// cost no API request, so under the adaptive policy the wait grows by
    /// half (not doubling) from the last, within `min..=max`; the other
    /// policies keep their schedule.
    pub fn missed(&mut self) -> Duration {
        let wait = match (self.policy, self.wait) {
            (PollPolicy::Adaptive { min, max, .. }, Some(w)) => (w * 3 / 2).clamp(min, max),
            (PollPolicy::Adaptive { first, min, max }, None) => first.clamp(min, max),
            (PollPolicy::Fixed { interval }, _) => interval,
            (PollPolicy::Doubling { first, max }, w) => w.map_or(first, |w| (w * 2).min(max)),
        };
        self.wait = Some(wait);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_check_of_the_host_waits_half_as_long_again() {
        let mut p = Poller::new(PollPolicy::default());
        let t = Instant::now();
        assert_eq!(p.observe(t, 0.0), Duration::from_secs(2));
        assert_eq!(p.missed(), Duration::from_secs(3));
        assert_eq!(p.missed(), Duration::from_millis(4500));
        for _ in 0..20 {
            p.missed();
        }
        assert_eq!(p.missed(), Duration::from_secs(60));
    }

    fn adaptive() -> Poller {
        Poller::new(PollPolicy::default())
    }

    #[test]
    fn extrapolates_the_finish() {
        let mut p = adaptive();
        let t = Instant::now();
        assert_eq!(p.observe(t, 0.0), Duration::from_secs(2));
        // 20 % in 2 s: 80 % more takes 8 s.
        let w = p.observe(t + Duration::from_secs(2), 20.0);
        assert_eq!(w.as_secs_f64().round(), 8.0);
    }

    #[test]
    fn is_bounded() {
        let mut p = adaptive();
        let t = Instant::now();
        p.observe(t, 0.0);
        // 0.01 % in 10 s would be a day: capped at 60 s.
        assert_eq!(
            p.observe(t + Duration::from_secs(10), 0.01),
            Duration::from_secs(60)
        );
        let mut p = adaptive();
        p.observe(t, 0.0);
        // 99 % in 1 s: the rest in 10 ms, but never sooner than 1 s.
        assert_eq!(
            p.observe(t + Duration::from_secs(1), 99.0),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn backs_off_when_stalled() {
        let mut p = adaptive();
        let t = Instant::now();
        let mut waits = vec![p.observe(t, 40.0)];
        for i in 1..8 {
            waits.push(p.observe(t + Duration::from_secs(i * 10), 40.0));
        }
        let secs: Vec<u64> = waits.iter().map(|w| w.as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn the_run_pace_places_the_first_poll() {
        let pace = Pace::default();
        assert_eq!(pace.get(), None);
        // 100 points in 10 s, then in 20 s: the average moves a fifth.
        pace.record(0.0, Duration::from_secs(10));
        pace.record(0.0, Duration::from_secs(20));
        let rate = pace.get().unwrap();
        assert!((rate - (0.8 * 10.0 + 0.2 * 5.0)).abs() < 1e-9);
        let t = Instant::now();
        let mut p = Poller::with_pace(PollPolicy::default(), Some(rate));
        // 90 points to go at 9 points/s.
        assert_eq!(p.observe(t, 10.0).as_secs_f64().round(), 10.0);
        // Without a pace: the fixed first wait.
        assert_eq!(
            Poller::new(PollPolicy::default()).observe(t, 10.0),
            Duration::from_secs(2)
        );
        // Nonsense samples are ignored.
        pace.record(100.0, Duration::from_secs(1));
        pace.record(0.0, Duration::ZERO);
        assert_eq!(pace.get(), Some(rate));
    }

    #[test]
    fn baselines() {
        let t = Instant::now();
        let mut fixed = Poller::new(PollPolicy::Fixed {
            interval: Duration::from_secs(1),
        });
        let mut doubling = Poller::new(PollPolicy::Doubling {
            first: Duration::from_secs(1),
            max: Duration::from_secs(8),
        });
        let f: Vec<u64> = (0..5)
            .map(|i| fixed.observe(t, i as f64).as_secs())
            .collect();
        let d: Vec<u64> = (0..5)
            .map(|i| doubling.observe(t, i as f64).as_secs())
            .collect();
        assert_eq!(f, [1, 1, 1, 1, 1]);
        assert_eq!(d, [1, 2, 4, 8, 8]);
    }
}
