//! What the download host can answer, for no API request: whether a
//! download's file is there, and a video's HLS master manifest (which
//! lists its ready captions and audio renditions: [`HostProbes::manifest`],
//! for the captions step). Both go through the same per-host guard below.
//!
//! The listing gives each video's delivery host (`playback.hls` is
//! `https://customer-<CODE>.cloudflarestream.com/<uid>/manifest/video.m3u8`)
//! and the download URLs have a documented form on it (`…/<uid>/downloads/
//! default.mp4`, `…/audio.m4a`), so a video whose downloads already exist
//! can be fetched with no create at all ([`derived_url`]). The host is not
//! the API and not under its rate limit, so asking it whether a file is
//! there ([`HostProbes::probe`]: the first byte, not the body) costs the
//! budget nothing.
//!
//! A probe is a shortcut, never a dependency: whatever goes wrong with a
//! host, the file goes the way it went before probes existed (create,
//! then the API), and one host's trouble is that host's alone. Each host
//! (scheme, name and port) has its own:
//! - **permits**: at most [`PROBES_IN_FLIGHT`] probes at once;
//! - **time limit**: a probe not answered within
//!   [`ProbePolicy::timeout`] is abandoned;
//! - **circuit breaker**: a failure (no connection, no name, a timeout, a
//!   4xx other than 401, 403, 404, 410 and 429) of a host that has not
//!   answered yet, or [`ProbePolicy::failures_to_open`] failures in a row
//!   of one that has, open it: the host is not asked for
//!   [`ProbePolicy::open_for`] (doubling at each new opening, up to
//!   [`ProbePolicy::open_at_most`]); then one probe tries it (half-open), and
//!   an answer closes it;
//! - **slow-down**: a 429 with `Retry-After` stops its probes for that
//!   long; [`THROTTLED_TO_SLOW`] answers 429 or 5xx in a row (no other
//!   answer between) stop them for 1 s, doubling to 60 s while it goes on.
//!   A lone 5xx of a flaky host only sends that probe's file to the API
//!   for the round.
//!
//! A probe never waits for a host's pause or breaker: it is skipped
//! ([`Probe::Unknown`]), and the caller asks the API as it would have. The
//! counts per host go into the run's summary ([`HostStats`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudflare_stream_downloads::types::DownloadType;
use cloudflare_stream_downloads::{Client, Error, Manifest, Secret, Signing};
use tokio::sync::Semaphore;

/// The download URL of `kind` that a video's JSON implies: its
/// `playback.hls` on a Stream delivery host (`https://customer-….
/// cloudflarestream.com`, or plain http on a loopback host, for local
/// servers) with the path `/<uid>/manifest/video.m3u8`. `None` for
/// anything else: the caller creates the download as usual.
pub fn derived_url(video_json: &str, kind: DownloadType) -> Option<String> {
    let (mut url, uid) = playback_manifest(video_json)?;
    let file = match kind {
        DownloadType::Default => "default.mp4",
        DownloadType::Audio => "audio.m4a",
    };
    url.set_path(&format!("/{uid}/downloads/{file}"));
    Some(url.to_string())
}

/// The video's HLS master manifest URL (`playback.hls`), when its JSON
/// gives one on a Stream delivery host (as for [`derived_url`]).
pub fn manifest_url(video_json: &str) -> Option<String> {
    playback_manifest(video_json).map(|(url, _)| url.to_string())
}

/// `playback.hls` of a video's JSON and its uid, when the URL is
/// `/<uid>/manifest/video.m3u8` on a delivery host.
fn playback_manifest(video_json: &str) -> Option<(reqwest::Url, String)> {
    #[derive(serde::Deserialize)]
    struct Video {
        uid: String,
        playback: Option<Playback>,
    }
    #[derive(serde::Deserialize)]
    struct Playback {
        hls: Option<String>,
    }
    let video: Video = serde_json::from_str(video_json).ok()?;
    let hls = reqwest::Url::parse(video.playback?.hls.as_deref()?).ok()?;
    let host = hls.host_str()?;
    let delivery = match hls.scheme() {
        "https" => host.starts_with("customer-") && host.ends_with(".cloudflarestream.com"),
        "http" => {
            host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    };
    let expected = format!("/{}/manifest/video.m3u8", video.uid);
    if !delivery || hls.path() != expected || hls.query().is_some() {
        return None;
    }
    cloudflare_stream_downloads::check_id("video id", &video.uid).ok()?;
    Some((hls, video.uid))
}

/// What the download host said of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// It is there (200 or 206).
    There,
    /// It is not (404, 410): not generated, or not ready yet.
    NotThere,
    /// The host could not say, or was not asked (its breaker is open, it
    /// asked to slow down): the API is asked this round.
    Unknown,
    /// The host refused the video (401, 403: a token it wants, or one it
    /// refused twice): the video is not probed again (the fetch will say
    /// why).
    Refused,
}

/// What the download host answered to one request (a probe, a manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked<T> {
    /// It answered this.
    Answered(T),
    /// It could not say, or was not asked (see [`Probe::Unknown`]).
    Unknown,
    /// It refused the video (401, 403).
    Refused,
}

/// How the download host is probed (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbePolicy {
    /// A probe not answered within this is abandoned (and counts as a
    /// failure of its host).
    pub timeout: Duration,
    /// Failures in a row that open the breaker of a host that has
    /// answered before (one that never has opens at its first failure).
    pub failures_to_open: u32,
    /// How long a breaker stays open the first time.
    pub open_for: Duration,
    /// The longest it stays open (it doubles at each new opening).
    pub open_at_most: Duration,
}

impl Default for ProbePolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            failures_to_open: 3,
            open_for: Duration::from_secs(30),
            open_at_most: Duration::from_secs(600),
        }
    }
}

/// Probes of the download host at once, per host.
pub const PROBES_IN_FLIGHT: usize = 16;

/// Answers 429 or 5xx in a row (without `Retry-After`) that slow a host
/// down.
pub const THROTTLED_TO_SLOW: u32 = 3;

/// The first and longest slow-down after 429s or 5xx without
/// `Retry-After`.
const SLOW_FIRST: Duration = Duration::from_secs(1);
const SLOW_AT_MOST: Duration = Duration::from_secs(60);

/// What the probes of one host did in a run (`cfstream export --json`:
/// `hosts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostStats {
    /// The host: scheme, name and port (never a path or a token).
    pub host: String,
    /// Probes sent.
    pub probes: u64,
    /// Probes that found the file there.
    pub found: u64,
    /// Probes that failed: no connection, no name, a timeout, an
    /// unexpected 4xx.
    pub failed: u64,
    /// Probes answered 429 or 5xx.
    pub throttled: u64,
    /// Probes not sent: the breaker open, or the host slowed down.
    pub skipped: u64,
    /// Times the breaker opened.
    pub opened: u64,
}

/// A host's breaker and slow-down.
#[derive(Debug, Default)]
struct Health {
    /// Failures in a row.
    failures: u32,
    /// The host has answered a probe (any status) in this run.
    answered: bool,
    /// Open until then.
    open_until: Option<Instant>,
    /// How long the last opening lasted (the next doubles it).
    last_open: Duration,
    /// The half-open trial probe is out.
    trial: bool,
    /// Slowed down until then (429, 5xx).
    slow_until: Option<Instant>,
    /// Answers 429 or 5xx in a row.
    throttled: u32,
    /// The last slow-down without `Retry-After` (the next doubles it).
    last_slow: Duration,
    stats: HostStats,
}

#[derive(Debug)]
struct Host {
    permits: Semaphore,
    health: Mutex<Health>,
}

/// Whether a probe may go, decided under the host's lock.
enum Admit {
    Go { trial: bool },
    Skip,
}

/// How a probe ended, for its host's health.
enum Verdict {
    Answered,
    Throttled(Option<Duration>),
    Failed(String),
}

/// A breaker that just opened, for the run to report once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The host.
    pub host: String,
    /// The last failure.
    pub reason: String,
    /// For how long its probes stop.
    pub open_for: Duration,
    /// The first time this host's breaker opened in this run.
    pub first: bool,
}

/// The run's probes of the download hosts.
pub struct HostProbes {
    policy: ProbePolicy,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    /// Called when a breaker opens.
    on_open: Box<dyn Fn(Opened) + Send + Sync>,
    /// Requests made, every host (probes and manifests).
    pub probes: AtomicU64,
    /// Manifests asked for (sent or skipped).
    pub manifests: AtomicU64,
    /// Files found already there (no create).
    pub found_existing: AtomicU64,
}

impl std::fmt::Debug for HostProbes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostProbes")
            .field("policy", &self.policy)
            .field("hosts", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Default for HostProbes {
    fn default() -> Self {
        Self::new(ProbePolicy::default(), |_| {})
    }
}

/// The host part of a URL: `scheme://name:port`.
fn host_key(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "(unparsable url)".to_owned(),
    }
}

impl HostProbes {
    /// Probes under `policy`; `on_open` hears of every breaker that opens.
    pub fn new(policy: ProbePolicy, on_open: impl Fn(Opened) + Send + Sync + 'static) -> Self {
        Self {
            policy,
            hosts: Mutex::new(HashMap::new()),
            on_open: Box::new(on_open),
            probes: AtomicU64::new(0),
            manifests: AtomicU64::new(0),
            found_existing: AtomicU64::new(0),
        }
    }

    fn host(&self, key: &str) -> Arc<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Host {
                    permits: Semaphore::new(PROBES_IN_FLIGHT),
                    health: Mutex::new(Health {
                        stats: HostStats {
                            host: key.to_owned(),
                            ..HostStats::default()
                        },
                        ..Health::default()
                    }),
                })
            })
            .clone()
    }

    /// Every host probed so far, by name.
    pub fn stats(&self) -> Vec<HostStats> {
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let mut stats: Vec<HostStats> = hosts
            .values()
            .map(|h| {
                h.health
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .stats
                    .clone()
            })
            .collect();
        stats.sort_by(|a, b| a.host.cmp(&b.host));
        stats
    }

    /// Whether `video_id`'s file at `url` is there (see [`Probe`]). Never
    /// waits for a host's pause; waits for a permit of its host at most
    /// as long as the probes before it take (each bounded by the timeout).
    pub async fn probe(
        &self,
        client: &Client,
        video_id: &str,
        url: &str,
        signing: Signing,
    ) -> Probe {
        let answer = self
            .ask(
                video_id,
                url,
                client.probe_video_url(video_id, url, signing),
            )
            .await;
        match answer {
            Asked::Answered(Some(_)) => Probe::There,
            Asked::Answered(None) => Probe::NotThere,
            Asked::Unknown => Probe::Unknown,
            Asked::Refused => Probe::Refused,
        }
    }

    /// `video_id`'s HLS master manifest at `url` ([`manifest_url`]), under
    /// the same permits, time limit, breaker and slow-down as the probes of
    /// its host. `Answered(None)`: the host has no manifest for it.
    pub async fn manifest(
        &self,
        client: &Client,
        video_id: &str,
        url: &str,
        signing: Signing,
    ) -> Asked<Option<Manifest>> {
        self.manifests.fetch_add(1, Ordering::Relaxed);
        self.ask(video_id, url, client.video_manifest(video_id, url, signing))
            .await
    }

    /// [`manifest`](Self::manifest) of a signed video with a token the
    /// caller already has (asked of the API: no signing key).
    pub async fn manifest_with_token(
        &self,
        client: &Client,
        video_id: &str,
        url: &str,
        token: &Secret,
    ) -> Asked<Option<Manifest>> {
        self.manifests.fetch_add(1, Ordering::Relaxed);
        self.ask(
            video_id,
            url,
            client.video_manifest_with_token(video_id, url, token),
        )
        .await
    }

    /// One request to the download host at `url` (`request`), guarded as
    /// the module documentation says.
    async fn ask<T>(
        &self,
        video_id: &str,
        url: &str,
        request: impl Future<Output = Result<Option<T>, Error>>,
    ) -> Asked<Option<T>> {
        let key = host_key(url);
        let host = self.host(&key);
        if matches!(host.admit(Instant::now(), false), Admit::Skip) {
            return Asked::Unknown;
        }
        let Ok(_permit) = host.permits.acquire().await else {
            return Asked::Unknown;
        };
        // The host may have failed while this request waited for a permit.
        let Admit::Go { trial } = host.admit(Instant::now(), true) else {
            return Asked::Unknown;
        };
        self.probes.fetch_add(1, Ordering::Relaxed);
        let answer = tokio::time::timeout(self.policy.timeout, request).await;
        let (asked, verdict) = match answer {
            Err(_) => (
                Asked::Unknown,
                Verdict::Failed(format!(
                    "no answer within {}",
                    humantime::format_duration(self.policy.timeout)
                )),
            ),
            Ok(Ok(found)) => (Asked::Answered(found), Verdict::Answered),
            Ok(Err(e)) => match e.status().map(|s| s.as_u16()) {
                Some(401 | 403) => {
                    tracing::info!(video = video_id, error = %e, "the download host refused this video; no more probes of it");
                    (Asked::Refused, Verdict::Answered)
                }
                Some(429 | 500..=599) => {
                    tracing::debug!(host = %key, error = %e, "the download host asks to slow down");
                    (Asked::Unknown, Verdict::Throttled(e.retry_after()))
                }
                // A 200 that is not what was asked for (a manifest that
                // is not a playlist): the host answered, this video's
                // answer is unknown.
                Some(200) => (Asked::Unknown, Verdict::Answered),
                _ => (Asked::Unknown, Verdict::Failed(e.to_string())),
            },
        };
        if matches!(asked, Asked::Answered(Some(_))) {
            let mut health = host.health.lock().unwrap_or_else(|p| p.into_inner());
            health.stats.found += 1;
        }
        if let Some(opened) = host.judge(verdict, trial, &self.policy, Instant::now()) {
            if opened.first {
                tracing::warn!(host = %opened.host, reason = %opened.reason, "the download host does not answer; its probes stop for a while and files there are created and polled through the API");
            } else {
                tracing::info!(host = %opened.host, reason = %opened.reason, "the download host still does not answer; its probes stop again");
            }
            (self.on_open)(opened);
        }
        asked
    }
}

impl Host {
    /// Counts the probe as sent, or as skipped.
    /// `take`: the probe goes now and takes the half-open trial if it is
    /// the one; without it, only whether it could (before waiting for a
    /// permit: a host that is open or slowed down is not waited for).
    fn admit(&self, now: Instant, take: bool) -> Admit {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let slowed = h.slow_until.is_some_and(|until| now < until);
        let admit = match h.open_until {
            _ if slowed => Admit::Skip,
            None => Admit::Go { trial: false },
            Some(until) if now < until || h.trial => Admit::Skip,
            // Half-open: this probe tries the host; the others wait for it
            // by being skipped.
            Some(_) => {
                h.trial = take;
                Admit::Go { trial: take }
            }
        };
        if matches!(admit, Admit::Skip) {
            h.stats.skipped += 1;
        }
        admit
    }

    /// Takes a probe's outcome into the host's health; returns the
    /// breaker's opening, if this outcome opened it.
    fn judge(
        &self,
        verdict: Verdict,
        trial: bool,
        policy: &ProbePolicy,
        now: Instant,
    ) -> Option<Opened> {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        h.stats.probes += 1;
        if trial {
            h.trial = false;
        }
        match verdict {
            Verdict::Answered => {
                h.answered = true;
                h.failures = 0;
                h.open_until = None;
                h.last_open = Duration::ZERO;
                h.slow_until = None;
                h.last_slow = Duration::ZERO;
                h.throttled = 0;
                None
            }
            Verdict::Throttled(retry_after) => {
                // An answer: the host is there, only busy.
                h.stats.throttled += 1;
                h.answered = true;
                h.failures = 0;
                if trial {
                    h.open_until = None;
                    h.last_open = Duration::ZERO;
                }
                h.throttled += 1;
                let wait = match retry_after {
                    Some(wait) => wait.min(policy.open_at_most),
                    None if h.throttled >= THROTTLED_TO_SLOW => {
                        h.last_slow = (h.last_slow * 2).clamp(SLOW_FIRST, SLOW_AT_MOST);
                        h.last_slow
                    }
                    None => return None,
                };
                let until = now + wait;
                h.slow_until = Some(h.slow_until.map_or(until, |u| u.max(until)));
                None
            }
            Verdict::Failed(reason) => {
                h.stats.failed += 1;
                h.failures += 1;
                let already_open = h.open_until.is_some_and(|u| now < u);
                // A host that never answered is not waited for again; one
                // that did may have dropped one connection.
                let enough = !h.answered || h.failures >= policy.failures_to_open;
                if already_open || (!trial && !enough) {
                    return None;
                }
                let open_for = if h.last_open.is_zero() {
                    policy.open_for
                } else {
                    (h.last_open * 2).min(policy.open_at_most)
                };
                h.last_open = open_for;
                h.open_until = Some(now + open_for);
                h.stats.opened += 1;
                Some(Opened {
                    host: h.stats.host.clone(),
                    reason,
                    open_for,
                    first: h.stats.opened == 1,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            permits: Semaphore::new(PROBES_IN_FLIGHT),
            health: Mutex::new(Health {
                stats: HostStats {
                    host: "https://customer-x.cloudflarestream.com".into(),
                    ..HostStats::default()
                },
                ..Health::default()
            }),
        }
    }

    /// What `HostProbes::probe` asks: whether it could go (before its
    /// permit), then whether it goes.
    /// A client for probes (they go to the download host, never to the
    /// API, so its base URL is a port nobody answers on).
    fn probing_client() -> Client {
        Client::builder()
            .api_token("t")
            .account_id("a")
            .base_url("http://127.0.0.1:9/client/v4")
            .build()
            .unwrap()
    }

    fn go(h: &Host, now: Instant) -> Option<bool> {
        if matches!(h.admit(now, false), Admit::Skip) {
            return None;
        }
        match h.admit(now, true) {
            Admit::Go { trial } => Some(trial),
            Admit::Skip => None,
        }
    }

    fn failed(h: &Host, trial: bool, p: &ProbePolicy, now: Instant) -> Option<Opened> {
        h.judge(Verdict::Failed("refused".into()), trial, p, now)
    }

    fn stats(h: &Host) -> HostStats {
        h.health.lock().unwrap().stats.clone()
    }

    #[test]
    fn a_host_that_never_answered_opens_at_its_first_failure_then_tries_once() {
        let p = ProbePolicy::default();
        let h = host();
        let t0 = Instant::now();
        assert_eq!(go(&h, t0), Some(false));
        let opened = failed(&h, false, &p, t0).expect("opens");
        assert_eq!(opened.open_for, p.open_for);
        assert!(opened.first);
        assert_eq!(opened.reason, "refused");
        // Others in flight when it opened fail too: no second opening.
        assert_eq!(failed(&h, false, &p, t0), None);
        // Open: skipped, for the whole period.
        assert_eq!(go(&h, t0 + p.open_for / 2), None);
        assert_eq!(go(&h, t0 + p.open_for - Duration::from_millis(1)), None);
        // Half-open: one trial, the others skipped while it is out.
        let t1 = t0 + p.open_for;
        assert_eq!(go(&h, t1), Some(true));
        assert_eq!(go(&h, t1), None);
        // The trial fails: open again, twice as long, not reported as first.
        let again = failed(&h, true, &p, t1).expect("opens again");
        assert_eq!(again.open_for, p.open_for * 2);
        assert!(!again.first);
        assert_eq!(go(&h, t1 + p.open_for), None);
        // The next trial answers: closed, and the next failure of a host
        // that has answered does not open it.
        let t2 = t1 + p.open_for * 2;
        assert_eq!(go(&h, t2), Some(true));
        assert_eq!(h.judge(Verdict::Answered, true, &p, t2), None);
        assert_eq!(go(&h, t2), Some(false));
        assert_eq!(failed(&h, false, &p, t2), None);
        let s = stats(&h);
        assert_eq!((s.probes, s.failed, s.opened, s.skipped), (5, 4, 2, 4));
    }

    #[test]
    fn a_host_that_answered_opens_after_failures_in_a_row_and_its_period_is_bounded() {
        let p = ProbePolicy {
            open_for: Duration::from_secs(100),
            open_at_most: Duration::from_secs(300),
            ..ProbePolicy::default()
        };
        let h = host();
        let t0 = Instant::now();
        h.judge(Verdict::Answered, false, &p, t0);
        for _ in 1..p.failures_to_open {
            assert_eq!(failed(&h, false, &p, t0), None);
        }
        h.judge(Verdict::Answered, false, &p, t0);
        for _ in 1..p.failures_to_open {
            assert_eq!(
                failed(&h, false, &p, t0),
                None,
                "a success in between resets"
            );
        }
        assert!(failed(&h, false, &p, t0).is_some());
        let mut now = t0;
        let mut periods = Vec::new();
        for _ in 0..3 {
            now += Duration::from_secs(1000);
            assert_eq!(go(&h, now), Some(true));
            periods.push(failed(&h, true, &p, now).unwrap().open_for.as_secs());
        }
        assert_eq!(periods, [200, 300, 300]);
    }

    #[test]
    fn throttling_skips_the_host_for_its_retry_after_or_a_doubling_pause() {
        let p = ProbePolicy::default();
        let h = host();
        let t0 = Instant::now();
        // Retry-After is honoured.
        assert_eq!(
            h.judge(
                Verdict::Throttled(Some(Duration::from_secs(7))),
                false,
                &p,
                t0
            ),
            None
        );
        assert_eq!(go(&h, t0 + Duration::from_secs(6)), None);
        assert_eq!(go(&h, t0 + Duration::from_secs(7)), Some(false));
        // Without: a lone 5xx slows nothing; THROTTLED_TO_SLOW in a row
        // do, 1 s, 2 s, 4 s …
        let mut now = t0 + Duration::from_secs(7);
        h.judge(Verdict::Answered, false, &p, now);
        for _ in 1..THROTTLED_TO_SLOW {
            h.judge(Verdict::Throttled(None), false, &p, now);
            assert_eq!(go(&h, now), Some(false));
        }
        for secs in [1, 2, 4, 8] {
            h.judge(Verdict::Throttled(None), false, &p, now);
            assert_eq!(
                go(
                    &h,
                    now + Duration::from_secs(secs) - Duration::from_millis(1)
                ),
                None
            );
            now += Duration::from_secs(secs);
            assert_eq!(go(&h, now), Some(false));
        }
        // An answer ends it; the next pause starts from 1 s again.
        h.judge(Verdict::Answered, false, &p, now);
        for _ in 0..THROTTLED_TO_SLOW {
            h.judge(Verdict::Throttled(None), false, &p, now);
        }
        assert_eq!(go(&h, now + Duration::from_millis(999)), None);
        assert_eq!(go(&h, now + Duration::from_secs(1)), Some(false));
        // Throttling is an answer: it never opens the breaker.
        let s = stats(&h);
        assert_eq!(s.opened, 0);
        assert_eq!(s.throttled, 1 + 2 * u64::from(THROTTLED_TO_SLOW) + 3);
    }

    #[test]
    fn a_host_is_its_origin_without_path_or_token() {
        assert_eq!(
            host_key(
                "https://customer-x.cloudflarestream.com/eyJhbGciOi.tok/downloads/default.mp4?filename=a"
            ),
            "https://customer-x.cloudflarestream.com"
        );
        assert_eq!(
            host_key("http://127.0.0.1:8080/u/downloads/audio.m4a"),
            "http://127.0.0.1:8080"
        );
    }

    #[tokio::test]
    async fn an_open_breaker_lets_one_probe_try_the_host_again_and_an_answer_closes_it() {
        // A port nobody listens on yet: refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!(
            "http://127.0.0.1:{port}/0123456789abcdef0123456789abcdef/downloads/default.mp4"
        );
        let client = probing_client();
        let probes = HostProbes::new(
            ProbePolicy {
                open_for: Duration::from_millis(100),
                ..ProbePolicy::default()
            },
            |_| {},
        );
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            probes.probe(&client, id, &url, Signing::Never).await,
            Probe::Unknown
        );
        assert_eq!(
            probes.probe(&client, id, &url, Signing::Never).await,
            Probe::Unknown
        );
        let stats = probes.stats();
        assert_eq!(
            (
                stats[0].probes,
                stats[0].failed,
                stats[0].skipped,
                stats[0].opened
            ),
            (1, 1, 1, 1)
        );
        // The host comes back (answering 404 to everything).
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut request = [0u8; 4096];
                let _ = std::io::Read::read(&mut stream, &mut request);
                let _ = std::io::Write::write_all(
                    &mut stream,
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        // The trial, then a closed breaker.
        assert_eq!(
            probes.probe(&client, id, &url, Signing::Never).await,
            Probe::NotThere
        );
        assert_eq!(
            probes.probe(&client, id, &url, Signing::Never).await,
            Probe::NotThere
        );
        let stats = probes.stats();
        assert_eq!(
            (
                stats[0].probes,
                stats[0].failed,
                stats[0].skipped,
                stats[0].opened
            ),
            (3, 1, 1, 1)
        );
    }

    #[tokio::test]
    async fn one_host_that_never_answers_does_not_hold_up_another() {
        // A listener that accepts and never answers, and one that answers
        // 404 at once (a real HTTP server: stream-fake's download host).
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_url = format!(
            "http://{}/0123456789abcdef0123456789abcdef/downloads/default.mp4",
            silent.local_addr().unwrap()
        );
        let fake = stream_fake::StreamFake::start(stream_fake::FakeConfig::default())
            .await
            .unwrap();
        let good_url = format!(
            "{}/0123456789abcdef0123456789abcdef/downloads/default.mp4",
            fake.files_base_url()
        );
        let client = probing_client();
        let probes = Arc::new(HostProbes::new(
            ProbePolicy {
                timeout: Duration::from_millis(300),
                ..ProbePolicy::default()
            },
            |_| {},
        ));
        // Every permit of the silent host taken, and more waiting.
        let mut silent_probes = tokio::task::JoinSet::new();
        for _ in 0..PROBES_IN_FLIGHT + 4 {
            let (probes, client, url) = (probes.clone(), client.clone(), silent_url.clone());
            silent_probes.spawn(async move {
                probes
                    .probe(
                        &client,
                        "0123456789abcdef0123456789abcdef",
                        &url,
                        Signing::Never,
                    )
                    .await
            });
        }
        tokio::task::yield_now().await;
        // The other host answers meanwhile, at once.
        let answered = probes
            .probe(
                &client,
                "0123456789abcdef0123456789abcdef",
                &good_url,
                Signing::Never,
            )
            .await;
        assert_eq!(answered, Probe::NotThere);
        // …before any probe of the silent host has ended (they end at
        // their timeout): the other host's answer did not queue behind them.
        assert!(silent_probes.try_join_next().is_none());
        while let Some(p) = silent_probes.join_next().await {
            assert_eq!(p.unwrap(), Probe::Unknown);
        }
        let stats = probes.stats();
        let silent_stats = stats
            .iter()
            .find(|s| silent_url.starts_with(&s.host))
            .unwrap();
        assert_eq!(silent_stats.opened, 1);
        assert_eq!(
            silent_stats.probes + silent_stats.skipped,
            (PROBES_IN_FLIGHT + 4) as u64
        );
        assert!(silent_stats.probes <= PROBES_IN_FLIGHT as u64);
        fake.shutdown().await;
    }

    fn video(uid: &str, hls: &str) -> String {
        serde_json::json!({"uid": uid, "playback": {"hls": hls}}).to_string()
    }

    #[test]
    fn the_download_url_follows_the_playback_host() {
        let uid = "0123456789abcdef0123456789abcdef";
        let json = video(
            uid,
            &format!("https://customer-abc123.cloudflarestream.com/{uid}/manifest/video.m3u8"),
        );
        assert_eq!(
            derived_url(&json, DownloadType::Default).as_deref(),
            Some(
                format!("https://customer-abc123.cloudflarestream.com/{uid}/downloads/default.mp4")
                    .as_str()
            )
        );
        assert_eq!(
            derived_url(&json, DownloadType::Audio).as_deref(),
            Some(
                format!("https://customer-abc123.cloudflarestream.com/{uid}/downloads/audio.m4a")
                    .as_str()
            )
        );
        let local = video(
            uid,
            &format!("http://127.0.0.1:8080/{uid}/manifest/video.m3u8"),
        );
        assert!(derived_url(&local, DownloadType::Default).is_some());
    }

    #[test]
    fn anything_else_is_no_guess() {
        let uid = "0123456789abcdef0123456789abcdef";
        for hls in [
            format!("https://example.com/{uid}/manifest/video.m3u8"),
            format!("https://customer-abc.cloudflarestream.com.evil.net/{uid}/manifest/video.m3u8"),
            format!("http://customer-abc.cloudflarestream.com/{uid}/manifest/video.m3u8"),
            format!("http://10.0.0.1/{uid}/manifest/video.m3u8"),
            format!("https://customer-abc.cloudflarestream.com/{uid}/manifest/video.mpd"),
            "https://customer-abc.cloudflarestream.com/ffffffffffffffffffffffffffffffff/manifest/video.m3u8"
                .to_string(),
            format!("https://customer-abc.cloudflarestream.com/{uid}/manifest/video.m3u8?x=1"),
        ] {
            assert_eq!(
                derived_url(&video(uid, &hls), DownloadType::Default),
                None,
                "{hls}"
            );
        }
        assert_eq!(derived_url(r#"{"uid":"x"}"#, DownloadType::Default), None);
        assert_eq!(derived_url("not json", DownloadType::Default), None);
    }
}
