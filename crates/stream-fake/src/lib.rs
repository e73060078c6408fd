//! `stream-fake`: a local fake of Cloudflare Stream's downloads API and of
//! its download host, for tests, demos and benchmarks.
//!
//! * The five downloads operations under `http://127.0.0.1:<port>/client/v4`,
//!   with the envelope of the checked-in spec (a contract test validates
//!   every JSON body against it), Cloudflare-style authentication
//!   (API token, e-mail + API key, or user service key) and failures.
//! * Asynchronous generation: a created download is `inprogress` at 0 %
//!   and advances per list request or with time to `ready` (or `error`).
//! * The files, on a second port (another origin, like
//!   `customer-<code>.cloudflarestream.com`): deterministic, well-formed
//!   MP4/M4A files produced on the fly ([`content`]), `Content-Length`,
//!   `ETag`/`If-Range`, `Range`/206, `?filename=`; no credentials needed,
//!   and any received are recorded.
//! * The listing of the account's videos (`GET …/stream`), over a
//!   deterministic account of any size ([`catalog`]), with the bounds'
//!   inclusivity as a setting ([`Bounds`]). Creating downloads of a video
//!   not ready to stream fails (code 10011); the download host answers 401
//!   for a video that requires signed URLs.
//! * Fault injection per route ([`Fault`], [`FaultRule`]).
//!
//! Built on axum (tokio + hyper), the mainstream Rust HTTP server stack: the
//! fake only routes, so a framework's extractors and streaming bodies beat
//! hand-written hyper services.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let fake = stream_fake::StreamFake::start(stream_fake::FakeConfig::default()).await?;
//! println!("API at {}, token {}", fake.base_url(), fake.config().api_token);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod captions;
pub mod catalog;
pub mod config;
pub mod content;
pub mod faults;
mod server;
mod signed;
pub mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use catalog::{Bounds, CatalogVideo};
pub use config::{FakeConfig, Progress, RateLimit};
pub use faults::{Fault, FaultRule, RetryAfter, Route};
pub use server::{AUTH_ERROR, BAD_QUERY, INVALID_ID, NO_ROUTE, NOT_FOUND, NOT_READY, RATE_LIMITED};
pub use state::{DownloadView, FileRequest, Kind, VideoOptions};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running fake. Stops when dropped (or with [`shutdown`](Self::shutdown)).
pub struct StreamFake {
    api: SocketAddr,
    files: SocketAddr,
    world: server::Shared,
    config: FakeConfig,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for StreamFake {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl StreamFake {
    /// Bind both servers on 127.0.0.1 and start serving.
    pub async fn start(config: FakeConfig) -> std::io::Result<Self> {
        let api = TcpListener::bind(("127.0.0.1", config.port)).await?;
        let files = TcpListener::bind(("127.0.0.1", config.files_port)).await?;
        let (api_addr, files_addr) = (api.local_addr()?, files.local_addr()?);
        let mut world = state::World::new(config.clone());
        world.files_port = files_addr.port();
        let world: server::Shared = Arc::new(Mutex::new(world));
        let api_app = server::api_router(world.clone());
        let files_app = server::files_router(world.clone());
        let tasks = vec![
            tokio::spawn(async move {
                let _ = axum::serve(api, api_app).await;
            }),
            tokio::spawn(async move {
                let _ = axum::serve(files, files_app).await;
            }),
        ];
        Ok(Self {
            api: api_addr,
            files: files_addr,
            world,
            config,
            tasks,
        })
    }

    /// The API base URL, e.g. `http://127.0.0.1:8787/client/v4`.
    pub fn base_url(&self) -> String {
        format!("http://{}/client/v4", self.api)
    }

    /// The download host's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn files_base_url(&self) -> String {
        format!("http://{}", self.files)
    }

    /// The configuration it was started with (credentials, account, videos).
    pub fn config(&self) -> &FakeConfig {
        &self.config
    }

    /// Make a video known (`options.fails_at` makes its downloads fail).
    pub fn add_video(&self, id: &str, options: VideoOptions) {
        self.world.lock().unwrap().add_video(id, options);
    }

    /// Give a known video these captions (replacing its list).
    pub fn set_captions(&self, id: &str, captions: Vec<captions::FakeCaption>) {
        self.world.lock().unwrap().set_captions(id, captions);
    }

    /// Give a known video these additional audio tracks.
    pub fn set_audio_tracks(&self, id: &str, tracks: Vec<captions::FakeAudioTrack>) {
        self.world.lock().unwrap().set_audio_tracks(id, tracks);
    }

    /// Add (or replace) a listed video.
    pub fn add_listed_video(&self, video: CatalogVideo) {
        self.world.lock().unwrap().add_listed(video);
    }

    /// Delete a video: it leaves the listing, and its operations answer 404.
    pub fn delete_video(&self, id: &str) {
        self.world.lock().unwrap().remove_video(id);
    }

    /// The listed videos, oldest first (ties by `uid`).
    pub fn catalog(&self) -> Vec<CatalogVideo> {
        self.world.lock().unwrap().catalog.clone()
    }

    /// Arm a fault.
    pub fn inject(&self, route: Route, fault: Fault, times: Option<u32>) {
        self.world.lock().unwrap().push_fault(FaultRule {
            route,
            fault,
            times,
            share: None,
        });
    }

    /// Arm a fault rule (for a share of the requests: [`FaultRule::share`]).
    pub fn inject_rule(&self, rule: FaultRule) {
        self.world.lock().unwrap().push_fault(rule);
    }

    /// Disarm every fault.
    pub fn clear_faults(&self) {
        self.world.lock().unwrap().clear_faults();
    }

    /// Every request the download host received, in order.
    pub fn file_requests(&self) -> Vec<FileRequest> {
        self.world.lock().unwrap().file_requests.clone()
    }

    /// Body bytes the download host has sent, all requests together
    /// (counted per 64 KiB chunk as a connection takes it: a transfer cut
    /// short counts what it got, give or take a chunk).
    pub fn file_bytes_sent(&self) -> u64 {
        self.world
            .lock()
            .unwrap()
            .file_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many API requests arrived (all routes, faults included).
    pub fn api_request_count(&self) -> u64 {
        self.world.lock().unwrap().api_requests
    }

    /// How many API requests arrived on `route` (faults and 429s included;
    /// [`Route::Any`] counts them all).
    pub fn api_requests_on(&self, route: Route) -> u64 {
        let w = self.world.lock().unwrap();
        if route == Route::Any {
            return w.api_requests;
        }
        w.route_requests.get(&route).copied().unwrap_or(0)
    }

    /// How many API requests the rate limit ([`FakeConfig::rate_limit`])
    /// refused with 429.
    pub fn rate_limited_count(&self) -> u64 {
        self.world.lock().unwrap().rate_limited
    }

    /// How many lockouts the rate limit ([`FakeConfig::rate_limit`]) started.
    pub fn lockout_count(&self) -> u64 {
        self.world.lock().unwrap().lockouts
    }

    /// The download of `kind` as the API would show it now (not a poll).
    pub fn download(&self, video: &str, kind: Kind) -> Option<DownloadView> {
        self.world
            .lock()
            .unwrap()
            .view(video)
            .into_iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v)
    }

    /// Stop both servers.
    pub async fn shutdown(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}
