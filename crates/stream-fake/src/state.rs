//! The fake's world: videos, their downloads, faults, and what it has seen.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::catalog::{self, CatalogVideo};
use crate::config::{FakeConfig, Progress};
use crate::faults::{Fault, FaultRule, Route};

/// The two download types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// MP4, `default`.
    Default,
    /// M4A, `audio`.
    Audio,
}

impl Kind {
    /// The API's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Default => "default",
            Kind::Audio => "audio",
        }
    }

    /// The file extension of the download.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Default => "mp4",
            Kind::Audio => "m4a",
        }
    }

    /// Parse the API's name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "default" => Some(Kind::Default),
            "audio" => Some(Kind::Audio),
            _ => None,
        }
    }
}

/// Per-video settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoOptions {
    /// When set, generation stops in status `error` at this percentage.
    pub fails_at: Option<f64>,
    /// `requireSignedURLs`: the download host wants a token.
    pub require_signed_urls: bool,
}

/// Status of a download, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DownloadView {
    /// `ready`, `inprogress` or `error`.
    pub status: &'static str,
    /// 0..=100.
    pub percent: f64,
}

#[derive(Debug, Clone)]
struct DownloadState {
    created: Instant,
    polls: u32,
    /// Generated before the fake started ([`crate::FakeConfig::existing_downloads`]).
    existing: bool,
}

#[derive(Debug, Clone, Default)]
struct Video {
    options: VideoOptions,
    downloads: BTreeMap<Kind, DownloadState>,
    /// False: creating a download fails (not ready to stream).
    ready_to_stream: bool,
    /// True: the download host answers 401.
    require_signed_urls: bool,
    /// Its captions.
    captions: Vec<crate::captions::FakeCaption>,
    /// Its additional audio tracks.
    audio: Vec<crate::captions::FakeAudioTrack>,
}

impl Video {
    fn listed(video: &CatalogVideo) -> Self {
        // (an explicit `VideoOptions` is only for videos added by id)
        Self {
            options: VideoOptions::default(),
            downloads: BTreeMap::new(),
            ready_to_stream: video.ready_to_stream,
            require_signed_urls: video.require_signed_urls,
            captions: Vec::new(),
            audio: Vec::new(),
        }
    }
}

/// A request the download host received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequest {
    /// Path, e.g. `/<video>/downloads/default.mp4`: the video a token was
    /// for in place of the token (`/(refused token)/…` when it was refused),
    /// so that no token is kept.
    pub path: String,
    /// It carried a token in place of the video id.
    pub signed: bool,
    /// `?filename=` if given.
    pub filename: Option<String>,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// Names of credential headers it carried (`authorization`, `x-auth-*`).
    pub credential_headers: Vec<String>,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct World {
    pub(crate) config: FakeConfig,
    videos: HashMap<String, Video>,
    /// Armed faults, each with the requests of its route it has seen (for
    /// its share) and a salt of its own.
    faults: Vec<(FaultRule, u64, u64)>,
    /// Faults armed so far (the next one's salt).
    faults_armed: u64,
    pub(crate) file_requests: Vec<FileRequest>,
    /// Body bytes the download host handed to its connections (counted
    /// per chunk as the connection takes it).
    pub(crate) file_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub(crate) api_requests: u64,
    /// API requests per route (faults and 429s included).
    pub(crate) route_requests: HashMap<Route, u64>,
    /// Arrival times of the API requests inside the rate-limit window.
    window: std::collections::VecDeque<Instant>,
    /// Every API request is refused until then (a rate-limit lockout).
    pub(crate) locked_until: Option<Instant>,
    /// API requests answered 429 by the rate limit (not by injected faults).
    pub(crate) rate_limited: u64,
    /// Lockouts the rate limit started.
    pub(crate) lockouts: u64,
    /// Listed videos, sorted by (`created`, `uid`).
    pub(crate) catalog: Vec<CatalogVideo>,
    /// Port of the download host, for the `url` of each download.
    pub(crate) files_port: u16,
    /// Signing keys, and the download host's token check.
    pub(crate) keys: crate::signed::Keys,
}

impl World {
    pub(crate) fn new(config: FakeConfig) -> Self {
        let mut world = Self {
            videos: HashMap::new(),
            faults: config
                .faults
                .iter()
                .zip(0..)
                .map(|(rule, salt)| (*rule, 0, salt))
                .collect(),
            faults_armed: config.faults.len() as u64,
            file_requests: Vec::new(),
            file_bytes: Default::default(),
            api_requests: 0,
            route_requests: HashMap::new(),
            window: std::collections::VecDeque::new(),
            locked_until: None,
            rate_limited: 0,
            lockouts: 0,
            catalog: Vec::new(),
            files_port: 0,
            keys: crate::signed::Keys::new(),
            config,
        };
        let explicit = world.config.videos.clone();
        let mut listed: Vec<CatalogVideo> = explicit
            .iter()
            .enumerate()
            .map(|(i, id)| {
                CatalogVideo::ready(id, catalog::epoch() - chrono::Duration::days(1 + i as i64))
            })
            .collect();
        listed.extend(catalog::generate(world.config.generated_videos));
        listed.extend(world.config.catalog.clone());
        // One sort for the whole account (adding one by one is quadratic).
        listed.sort_by(|a, b| (a.created, &a.uid).cmp(&(b.created, &b.uid)));
        let every = world.config.existing_downloads;
        for (i, video) in listed.iter().enumerate() {
            let mut v = Video::listed(video);
            if every > 0 && i % every == 0 && video.ready_to_stream {
                for kind in [Kind::Default, Kind::Audio] {
                    v.downloads.insert(
                        kind,
                        DownloadState {
                            created: Instant::now(),
                            polls: 0,
                            existing: true,
                        },
                    );
                }
            }
            world.videos.insert(video.uid.clone(), v);
        }
        world.catalog = listed;
        world
    }

    pub(crate) fn add_video(&mut self, id: &str, options: VideoOptions) {
        let require_signed_urls = options.require_signed_urls;
        self.videos.insert(
            id.to_owned(),
            Video {
                options,
                downloads: BTreeMap::new(),
                ready_to_stream: true,
                require_signed_urls,
                captions: Vec::new(),
                audio: Vec::new(),
            },
        );
    }

    /// Add (or replace) a listed video, keeping the catalog sorted.
    pub(crate) fn add_listed(&mut self, video: CatalogVideo) {
        self.catalog.retain(|v| v.uid != video.uid);
        let at = self
            .catalog
            .partition_point(|v| (v.created, v.uid.as_str()) < (video.created, video.uid.as_str()));
        self.videos.insert(video.uid.clone(), Video::listed(&video));
        self.catalog.insert(at, video);
    }

    pub(crate) fn set_captions(&mut self, id: &str, captions: Vec<crate::captions::FakeCaption>) {
        if let Some(v) = self.videos.get_mut(id) {
            v.captions = captions;
        }
    }

    pub(crate) fn set_audio_tracks(
        &mut self,
        id: &str,
        tracks: Vec<crate::captions::FakeAudioTrack>,
    ) {
        if let Some(v) = self.videos.get_mut(id) {
            v.audio = tracks;
        }
    }

    pub(crate) fn captions(&self, id: &str) -> &[crate::captions::FakeCaption] {
        self.videos.get(id).map_or(&[], |v| &v.captions)
    }

    pub(crate) fn audio_tracks(&self, id: &str) -> &[crate::captions::FakeAudioTrack] {
        self.videos.get(id).map_or(&[], |v| &v.audio)
    }

    /// Forget a video (listed or not): later requests get 404.
    pub(crate) fn remove_video(&mut self, id: &str) {
        self.videos.remove(id);
        self.catalog.retain(|v| v.uid != id);
    }

    pub(crate) fn ready_to_stream(&self, id: &str) -> bool {
        self.videos.get(id).is_some_and(|v| v.ready_to_stream)
    }

    pub(crate) fn requires_signed_urls(&self, id: &str) -> bool {
        self.videos.get(id).is_some_and(|v| v.require_signed_urls)
    }

    pub(crate) fn has_video(&self, id: &str) -> bool {
        self.videos.contains_key(id)
    }

    pub(crate) fn push_fault(&mut self, rule: FaultRule) {
        self.faults.push((rule, 0, self.faults_armed));
        self.faults_armed += 1;
    }

    pub(crate) fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// The first armed fault for `route`, used up by one.
    /// Counts an API request and applies the rate limit: `Some(wait)` when
    /// it must be refused with 429 and `Retry-After: wait`.
    pub(crate) fn admit(&mut self, route: Route) -> Option<std::time::Duration> {
        self.api_requests += 1;
        *self.route_requests.entry(route).or_default() += 1;
        let limit = self.config.rate_limit?;
        let now = Instant::now();
        if let Some(until) = self.locked_until {
            if now < until {
                self.rate_limited += 1;
                return Some(until - now);
            }
            self.locked_until = None;
            self.window.clear();
        }
        while self
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.window)
        {
            self.window.pop_front();
        }
        if self.window.len() >= limit.requests as usize {
            self.locked_until = Some(now + limit.lockout);
            self.lockouts += 1;
            self.rate_limited += 1;
            return Some(limit.lockout);
        }
        self.window.push_back(now);
        None
    }

    pub(crate) fn take_fault(&mut self, route: Route) -> Option<Fault> {
        self.take_fault_where(route, |_| true)
    }

    /// [`take_fault`](Self::take_fault), only if the fault that would be
    /// spent passes `applies` (else it stays armed and nothing is spent).
    /// Faults armed on a share are asked first to last, each picking the
    /// request or not; the first fault armed without a share ends the
    /// search.
    pub(crate) fn take_fault_where(
        &mut self,
        route: Route,
        applies: impl Fn(Fault) -> bool,
    ) -> Option<Fault> {
        let mut index = 0;
        while index < self.faults.len() {
            let (rule, seen, salt) = &mut self.faults[index];
            if !rule.route.covers(route) {
                index += 1;
                continue;
            }
            if !applies(rule.fault) {
                if rule.share.is_some() {
                    index += 1;
                    continue;
                }
                return None;
            }
            *seen += 1;
            if !rule.picks(*seen, *salt) {
                index += 1;
                continue;
            }
            let fault = rule.fault;
            match &mut rule.times {
                Some(n) if *n <= 1 => {
                    self.faults.remove(index);
                }
                Some(n) => *n -= 1,
                None => {}
            }
            return Some(fault);
        }
        None
    }

    /// The base URL of the listing's playback URLs: the download host
    /// unless [`crate::FakeConfig::playback_base`] says otherwise.
    pub(crate) fn playback_base(&self) -> String {
        self.config
            .playback_base
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", self.files_port))
    }

    /// Create a download (idempotent: an existing one is kept).
    pub(crate) fn create(&mut self, video: &str, kind: Kind) {
        if let Some(v) = self.videos.get_mut(video) {
            v.downloads.entry(kind).or_insert(DownloadState {
                created: Instant::now(),
                polls: 0,
                existing: false,
            });
        }
    }

    /// Delete one download, or all of them.
    pub(crate) fn delete(&mut self, video: &str, kind: Option<Kind>) {
        if let Some(v) = self.videos.get_mut(video) {
            match kind {
                Some(kind) => {
                    v.downloads.remove(&kind);
                }
                None => v.downloads.clear(),
            }
        }
    }

    /// A list request, or a download-host request for a file not ready
    /// yet: counts as a poll (progress per poll advances).
    pub(crate) fn poll(&mut self, video: &str) {
        if let Some(v) = self.videos.get_mut(video) {
            for d in v.downloads.values_mut() {
                d.polls += 1;
            }
        }
    }

    /// The downloads of a video as the API shows them.
    pub(crate) fn view(&self, video: &str) -> Vec<(Kind, DownloadView)> {
        let Some(v) = self.videos.get(video) else {
            return Vec::new();
        };
        v.downloads
            .iter()
            .map(|(kind, d)| {
                let raw = match self.config.progress {
                    _ if d.existing => 100.0,
                    Progress::PerPoll { step } => step * f64::from(d.polls),
                    Progress::OverTime { duration } => {
                        100.0 * d.created.elapsed().as_secs_f64()
                            / duration.max(Duration::from_millis(1)).as_secs_f64()
                    }
                };
                let percent = raw.clamp(0.0, 100.0);
                let view = match v.options.fails_at {
                    Some(at) if percent >= at => DownloadView {
                        status: "error",
                        percent: at,
                    },
                    _ if percent >= 100.0 => DownloadView {
                        status: "ready",
                        percent: 100.0,
                    },
                    _ => DownloadView {
                        status: "inprogress",
                        percent,
                    },
                };
                (*kind, view)
            })
            .collect()
    }

    /// Whether the file of a download may be served (it is `ready`).
    pub(crate) fn is_ready(&self, video: &str, kind: Kind) -> bool {
        self.view(video)
            .iter()
            .any(|(k, v)| *k == kind && v.status == "ready")
    }
}
