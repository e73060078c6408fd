//! How the fake behaves.

use std::time::Duration;

use crate::catalog::{Bounds, CatalogVideo};
use crate::faults::FaultRule;

/// The API token the fake accepts by default.
pub const DEFAULT_TOKEN: &str = "stream-fake-token";
/// The e-mail of the global API key the fake accepts by default.
pub const DEFAULT_EMAIL: &str = "fake@example.com";
/// The global API key the fake accepts by default.
pub const DEFAULT_API_KEY: &str = "stream-fake-api-key";
/// The user service key the fake accepts by default.
pub const DEFAULT_SERVICE_KEY: &str = "stream-fake-service-key";
/// The account the fake serves by default.
pub const DEFAULT_ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
/// A video the fake knows by default (the API reference's example id).
pub const DEFAULT_VIDEO: &str = "ea95132c15732412d22c1476fa83f27a";

/// How a download's `percentComplete` advances after it is created.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress {
    /// By `step` percentage points on every list request (deterministic).
    PerPoll {
        /// Points per poll; 100 makes a download ready at the first poll.
        step: f64,
    },
    /// Linearly from 0 to 100 over `duration` of wall time.
    OverTime {
        /// Time from creation to ready.
        duration: Duration,
    },
}

/// Everything configurable at start.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Port of the API (0: any free port).
    pub port: u16,
    /// Port of the download host (0: any free port).
    pub files_port: u16,
    /// The account id the API answers for; other accounts get 403.
    pub account_id: String,
    /// Accepted API token.
    pub api_token: String,
    /// Accepted global API key: (e-mail, key).
    pub api_key: (String, String),
    /// Accepted user service key.
    pub user_service_key: String,
    /// Known videos (ready, listed with creation times before the
    /// generated ones).
    pub videos: Vec<String>,
    /// How many more videos to generate ([`crate::catalog::generate`]).
    pub generated_videos: usize,
    /// Listed videos given one by one (exact creation-time layouts).
    pub catalog: Vec<CatalogVideo>,
    /// Whether the listing's `after`/`before` bounds are inclusive.
    pub bounds: Bounds,
    /// Size of every served file, in bytes.
    pub file_size: u64,
    /// How generation progresses.
    pub progress: Progress,
    /// Faults armed from the start.
    pub faults: Vec<FaultRule>,
    /// Cloudflare's per-user rate limit, when set: past `requests` API
    /// requests in any `window`, every API request gets 429 for `lockout`.
    pub rate_limit: Option<RateLimit>,
    /// A pause before each 64 KiB chunk of a served file (slow transfers,
    /// for tests that interrupt them).
    pub file_chunk_delay: Duration,
    /// Videos whose downloads (default and audio) exist, ready, from the
    /// start (someone enabled downloads before): every `n`-th listed video
    /// that is ready to stream, counting from the first (0: none, 1: all).
    pub existing_downloads: usize,
    /// The base URL of the listing's `playback`, `thumbnail` and `preview`
    /// URLs (`None`: the download host). Another host puts the URL the
    /// listing implies for a download (which clients probe) where the
    /// download host is not: one that does not resolve, refuses, or never
    /// answers. Downloads' own `url`s stay on the download host.
    pub playback_base: Option<String>,
}

/// A rate limit with a lockout, as Cloudflare's (1200 requests per 5
/// minutes per user, then 429 for 5 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in any `window`.
    pub requests: u32,
    /// The sliding window.
    pub window: Duration,
    /// How long every request is refused once the limit is passed.
    pub lockout: Duration,
}

impl std::str::FromStr for RateLimit {
    type Err = String;
    /// `N/WINDOW[:LOCKOUT]`, e.g. `1200/5m:5m` (the lockout defaults to the window).
    fn from_str(s: &str) -> Result<Self, String> {
        let (rate, lockout) = s.split_once(':').map_or((s, None), |(r, l)| (r, Some(l)));
        let (n, window) = rate
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected N/WINDOW[:LOCKOUT], e.g. 1200/5m"))?;
        let requests = n
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{s:?}: N must be a positive whole number"))?;
        let window = humantime::parse_duration(window).map_err(|e| format!("{s:?}: {e}"))?;
        let lockout = match lockout {
            Some(l) => humantime::parse_duration(l).map_err(|e| format!("{s:?}: {e}"))?,
            None => window,
        };
        Ok(Self {
            requests,
            window,
            lockout,
        })
    }
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            port: 0,
            files_port: 0,
            account_id: DEFAULT_ACCOUNT.into(),
            api_token: DEFAULT_TOKEN.into(),
            api_key: (DEFAULT_EMAIL.into(), DEFAULT_API_KEY.into()),
            user_service_key: DEFAULT_SERVICE_KEY.into(),
            videos: vec![DEFAULT_VIDEO.into()],
            generated_videos: 0,
            catalog: Vec::new(),
            bounds: Bounds::default(),
            file_size: 1024 * 1024,
            progress: Progress::PerPoll { step: 25.0 },
            faults: Vec::new(),
            rate_limit: None,
            file_chunk_delay: Duration::ZERO,
            existing_downloads: 0,
            playback_base: None,
        }
    }
}
