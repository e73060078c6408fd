//! The export run: select, then create → wait → fetch → verify each file,
//! with every state change committed to the [`Store`] first.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudflare_stream_downloads::types::DownloadType;
use cloudflare_stream_downloads::videos::{PageRequest, VideoWalk};
use cloudflare_stream_downloads::{
    Client, ClientBuilder, DownloadStatus, Downloads, Error, RequestGate, Signing, VideoQuery,
    check_id, media,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::error::ExportError;
use crate::limiter::{Limiter, Rate, counted};
use crate::lock::DirLock;
use crate::machine::{Event, FileState};
use crate::poll::{Pace, PollPolicy, Poller};
use crate::shard::Shard;
use crate::state::{STATE_FILE, Store, VideoRow, type_name};

/// Videos being created or waited for at once (their downloads generate on
/// Cloudflare's side in parallel). Generation, not our requests, takes the
/// time of a single video, so this is what lets a run reach the rate
/// limit's floor; each one costs a few hundred bytes.
pub const DEFAULT_IN_FLIGHT: usize = 256;

/// How many times a step that failed for a transient reason (a 5xx, a cut
/// connection, a timeout, after the client's own retries) is tried again
/// before the file is recorded as failed.
const STEP_ATTEMPTS: u32 = 3;

/// Transport failures in a row (no request succeeding in between) after
/// which the API is taken as unreachable and the run stops (exit 3).
const UNREACHABLE_AFTER: u32 = 12;

/// Ids read from the selection per page of the state database.
const SELECTION_PAGE: u32 = 256;

/// A page of the selection: ids, with the video's JSON when listed.
type Batch = Vec<(String, Option<String>)>;

/// Which videos.
#[derive(Debug, Clone)]
pub enum Selection {
    /// These ids (checked before any request).
    Ids(Vec<String>),
    /// Every video the listing returns for this query.
    All(VideoQuery),
}

/// What a run does. [`ExportOptions::new`] has the defaults of `cfstream
/// export`.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The export directory.
    pub dir: PathBuf,
    /// Which videos.
    pub selection: Selection,
    /// Which files of each video.
    pub types: Vec<DownloadType>,
    /// Concurrent file transfers.
    pub transfers: usize,
    /// The API budget.
    pub rate: Rate,
    /// This machine's share.
    pub shard: Shard,
    /// Try files that failed in an earlier run again.
    pub retry_failed: bool,
    /// Plan only: no request that changes anything, no file written.
    pub dry_run: bool,
    /// How downloads are polled.
    pub poll: PollPolicy,
    /// Videos created or waited for at once.
    pub in_flight: usize,
}

impl ExportOptions {
    /// `default` files of `selection` into `dir`, 4 transfers, 1000/5m.
    pub fn new(dir: impl Into<PathBuf>, selection: Selection) -> Self {
        Self {
            dir: dir.into(),
            selection,
            types: vec![DownloadType::Default],
            transfers: 4,
            rate: Rate::DEFAULT,
            shard: Shard::ALL,
            retry_failed: false,
            dry_run: false,
            poll: PollPolicy::default(),
            in_flight: DEFAULT_IN_FLIGHT,
        }
    }
}

/// The file name of a video's download of `kind`.
pub fn file_name(uid: &str, kind: DownloadType) -> String {
    match kind {
        DownloadType::Default => format!("{uid}.mp4"),
        DownloadType::Audio => format!("{uid}.m4a"),
    }
}

/// A file that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The video.
    pub video_id: String,
    /// The download type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Why.
    pub reason: String,
}

/// What a dry run would do with one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    /// The video.
    pub video_id: String,
    /// The download type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `skip` (done), `create`, `poll`, `fetch`, `verify`, `retry`, or
    /// `skip-failed`.
    pub action: &'static str,
}

/// The outcome of a run (`cfstream export --json` prints it). Counts are of
/// files: with `--type both` a video counts twice.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Files in the selection.
    pub selected: u64,
    /// Files fetched and verified by this run.
    pub done: u64,
    /// Files already done by an earlier run (no request made for them).
    pub skipped: u64,
    /// Files that failed, with reasons (including failures of earlier runs
    /// not retried: `--retry-failed`).
    pub failed: Vec<Failure>,
    /// Bytes written by this run.
    pub bytes: u64,
    /// API requests made by this run (listing included).
    pub api_requests: u64,
    /// Wall time.
    pub elapsed_seconds: f64,
    /// Videos in the selection.
    pub videos: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Tokens for signed URLs signed with the signing key (no API request).
    pub tokens_signed_locally: u64,
    /// Tokens for signed URLs asked of the API (`POST …/token`: one API
    /// request each, counted in `api_requests`).
    pub tokens_requested: u64,
    /// Videos of the selection known, from the listing, to require signed
    /// URLs (videos given by id are learned one by one, and not counted).
    pub signed_videos: u64,
    /// The run stopped early (Ctrl-C): files not reached are in none of
    /// the counts.
    pub interrupted: bool,
    /// With `--dry-run`: what would be done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<Planned>>,
}

impl Summary {
    /// Every selected file is on disk and verified.
    pub fn complete(&self) -> bool {
        !self.interrupted && self.failed.is_empty() && self.done + self.skipped == self.selected
    }
}

/// What a run reports as it goes (for progress bars).
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The listing has found this many videos so far (in this shard).
    Listing {
        /// Videos so far.
        videos: u64,
    },
    /// The selection is known.
    Selected {
        /// Videos.
        videos: u64,
        /// Files.
        files: u64,
    },
    /// A file was already done.
    Skipped {
        /// The video.
        video_id: String,
        /// Size of the file.
        bytes: u64,
    },
    /// A transfer started.
    TransferStarted {
        /// The video.
        video_id: String,
        /// Which file.
        kind: DownloadType,
    },
    /// Bytes of a transfer on disk.
    Transfer {
        /// The video.
        video_id: String,
        /// Which file.
        kind: DownloadType,
        /// Bytes so far.
        bytes: u64,
        /// The size, when known.
        total: Option<u64>,
    },
    /// A transfer ended (the file is in place, or the transfer failed);
    /// verification follows.
    TransferEnded {
        /// The video.
        video_id: String,
        /// Which file.
        kind: DownloadType,
    },
    /// A file is done.
    Done {
        /// The video.
        video_id: String,
        /// Which file.
        kind: DownloadType,
        /// Its size.
        bytes: u64,
    },
    /// A file failed.
    Failed(Failure),
    /// Videos of the selection that require signed URLs (from the
    /// listing), and whether the run signs their tokens locally.
    SignedVideos {
        /// How many.
        videos: u64,
        /// A signing key is configured (no API request per token).
        signing_key: bool,
    },
    /// Every worker pauses after a 429.
    Paused {
        /// For how long.
        wait: Duration,
    },
}

/// Receives [`Progress`].
pub type Observer = Arc<dyn Fn(Progress) + Send + Sync>;

/// An export: build it, give its [`gate`](Exporter::gate) to the client,
/// then [`run`](Exporter::run).
#[derive(Debug)]
pub struct Exporter {
    options: ExportOptions,
    limiter: Arc<Limiter>,
}

/// How a failed step goes on.
#[derive(Debug)]
enum Class {
    /// A 429: wait for the shared pause, then again (not counted).
    Pause,
    /// Worth trying again (5xx, cut connection, timeout).
    Transient { transport: bool },
    /// This file failed, for this reason.
    Failed(String),
    /// The run cannot go on (disk full, the state unwritable).
    Fatal,
}

/// Why a file fails when its video is not ready to stream (code 10011).
const NOT_READY: &str = "not ready to stream";
/// Why a file fails when the API does not know its video (404).
const NOT_FOUND: &str = "video not found (deleted?)";

/// Which request a step made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Api,
    File,
}

fn classify(error: &Error, step: Step) -> Class {
    use reqwest::StatusCode as S;
    match error {
        Error::RateLimited { .. } => Class::Pause,
        Error::Timeout { .. } | Error::Connection { .. } => Class::Transient { transport: true },
        Error::IncompleteFile { .. } => Class::Transient { transport: true },
        Error::Api { status, errors, .. } => {
            if *status == S::NOT_FOUND {
                Class::Failed(NOT_FOUND.into())
            } else if errors.iter().any(|m| m.code == 10011) {
                Class::Failed(NOT_READY.into())
            } else if status.is_server_error() {
                Class::Transient { transport: false }
            } else {
                Class::Failed(error.to_string())
            }
        }
        Error::UnexpectedResponse { status, .. } => match (step, status.as_u16()) {
            (Step::File, 401 | 403) => {
                Class::Failed(format!("requires signed URLs (HTTP {})", status.as_u16()))
            }
            (Step::File, 404 | 410) => Class::Failed(format!(
                "download not found (HTTP {}; video deleted?)",
                status.as_u16()
            )),
            (_, 408 | 409 | 500..=599) => Class::Transient { transport: false },
            _ => Class::Failed(error.to_string()),
        },
        Error::DownloadFailed { .. }
        | Error::WaitTimeout { .. }
        | Error::InvalidInput { .. }
        | Error::SignedUrlRefused { .. } => Class::Failed(error.to_string()),
        Error::NoSpace { .. } | Error::Io { .. } | Error::FileBusy { .. } | Error::Config(_) => {
            Class::Fatal
        }
        _ => Class::Failed(error.to_string()),
    }
}

/// Everything the workers of one run share.
struct Run {
    client: Client,
    store: Store,
    options: ExportOptions,
    limiter: Arc<Limiter>,
    transfers: Semaphore,
    /// How fast this run's downloads generate.
    pace: Pace,
    observer: Observer,
    stop: watch::Receiver<bool>,
    /// Transport failures in a row.
    unreachable: AtomicU32,
    done: AtomicU64,
    skipped: AtomicU64,
    bytes: AtomicU64,
    failed: Mutex<Vec<Failure>>,
    interrupted: AtomicBool,
    /// Videos of the selection that require signed URLs (from the listing).
    signed_videos: AtomicU64,
}

/// A worker's result: `Err` stops the run.
type Outcome = Result<(), ExportError>;

impl Exporter {
    /// An export with these options; checks them (and every id) before
    /// anything else happens.
    pub fn new(options: ExportOptions) -> Result<Self, ExportError> {
        let invalid = |what, reason: String| ExportError::InvalidInput { what, reason };
        if options.types.is_empty() {
            return Err(invalid("--type", "no download type".into()));
        }
        if options.transfers == 0 || options.transfers > 64 {
            return Err(invalid("--transfers", "must be 1..=64".into()));
        }
        if options.in_flight == 0 {
            return Err(invalid("in-flight", "must be at least 1".into()));
        }
        match &options.selection {
            Selection::Ids(ids) => {
                if ids.is_empty() {
                    return Err(invalid("selection", "no video id".into()));
                }
                for id in ids {
                    check_id("video id", id).map_err(|e| {
                        let why = match e {
                            Error::InvalidInput { reason, .. } => reason,
                            other => other.to_string(),
                        };
                        invalid("video id", format!("{id:?}: {why}"))
                    })?;
                }
            }
            Selection::All(query) => {
                query
                    .validate()
                    .map_err(|e| invalid("filter", e.to_string()))?;
            }
        }
        let limiter = Arc::new(Limiter::new(options.rate));
        Ok(Self { options, limiter })
    }

    /// The gate every API request of the run must pass: give it to the
    /// client ([`ClientBuilder::request_gate`]), or use
    /// [`client`](Self::client).
    pub fn gate(&self) -> Arc<dyn RequestGate> {
        self.limiter.clone()
    }

    /// Builds the run's client from `builder`, with the run's gate.
    pub fn client(&self, builder: ClientBuilder) -> Result<Client, Error> {
        builder.request_gate(self.gate()).build()
    }

    /// Runs the export. `client` must have been built with
    /// [`gate`](Self::gate) (else requests are neither limited nor counted).
    /// `stop` becoming `true` stops new work (the first Ctrl-C): videos
    /// waiting stop at their next poll, transfers in flight finish, and the
    /// summary says `interrupted`.
    pub async fn run(
        &self,
        client: Client,
        observer: Observer,
        stop: watch::Receiver<bool>,
    ) -> Result<Summary, ExportError> {
        let started = Instant::now();
        // Counts of this run only (an exporter can run more than once).
        let (requests_before, limited_before) =
            (self.limiter.requests(), self.limiter.rate_limited());
        let dir = &self.options.dir;
        if self.options.dry_run {
            let mut summary = self.dry_run(&client, observer, stop, started).await?;
            summary.api_requests -= requests_before;
            return Ok(summary);
        }
        std::fs::create_dir_all(dir).map_err(ExportError::io(dir))?;
        let _lock = DirLock::acquire(dir)?;
        let store = Store::open(&dir.join(STATE_FILE))?;
        let run_id = store.begin_run(&self.describe())?;
        let run = Arc::new(Run {
            client,
            store,
            options: self.options.clone(),
            limiter: self.limiter.clone(),
            transfers: Semaphore::new(self.options.transfers),
            pace: Pace::default(),
            observer,
            stop,
            unreachable: AtomicU32::new(0),
            done: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failed: Mutex::new(Vec::new()),
            interrupted: AtomicBool::new(false),
            signed_videos: AtomicU64::new(0),
        });
        let tokens_before = run.client.token_counts();
        let videos = run.select(run_id).await?;
        let files = videos * self.options.types.len() as u64;
        (run.observer)(Progress::Selected { videos, files });
        let signed_videos = run.signed_videos.load(Ordering::Relaxed);
        if signed_videos > 0 {
            (run.observer)(Progress::SignedVideos {
                videos: signed_videos,
                signing_key: run.client.signing_key().is_some(),
            });
        }
        let result = run.clone().process(run_id).await;
        let mut failed = std::mem::take(&mut *run.failed.lock().unwrap_or_else(|p| p.into_inner()));
        failed.sort_by(|a, b| (&a.video_id, a.kind).cmp(&(&b.video_id, b.kind)));
        let summary = Summary {
            selected: files,
            done: run.done.load(Ordering::Relaxed),
            skipped: run.skipped.load(Ordering::Relaxed),
            failed,
            bytes: run.bytes.load(Ordering::Relaxed),
            api_requests: self.limiter.requests() - requests_before,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            videos,
            rate_limited: self.limiter.rate_limited() - limited_before,
            tokens_signed_locally: run.client.token_counts().signed_locally
                - tokens_before.signed_locally,
            tokens_requested: run.client.token_counts().requested - tokens_before.requested,
            signed_videos,
            interrupted: run.interrupted.load(Ordering::Relaxed) || *run.stop.borrow(),
            plan: None,
        };
        let json = serde_json::to_string(&summary).unwrap_or_default();
        run.store.finish_run(run_id, &json)?;
        result.map(|()| summary)
    }

    fn describe(&self) -> String {
        let o = &self.options;
        serde_json::json!({
            "selection": match &o.selection {
                Selection::Ids(ids) => serde_json::json!({ "ids": ids.len() }),
                Selection::All(q) => serde_json::json!({ "all": format!("{q:?}") }),
            },
            "types": o.types.iter().map(|k| type_name(*k)).collect::<Vec<_>>(),
            "transfers": o.transfers,
            "rate": o.rate.to_string(),
            "shard": o.shard.to_string(),
            "retry_failed": o.retry_failed,
            "pid": std::process::id(),
        })
        .to_string()
    }

    /// Walks the selection without writing anything: the listing (a read)
    /// is the only request.
    async fn dry_run(
        &self,
        client: &Client,
        observer: Observer,
        stop: watch::Receiver<bool>,
        started: Instant,
    ) -> Result<Summary, ExportError> {
        let store = Store::open_read_only(&self.options.dir.join(STATE_FILE))?;
        let mut summary = Summary {
            plan: Some(Vec::new()),
            ..Summary::default()
        };
        // (the walk repeats the request it gave last until an answer is accepted)
        let mut plan_page = |uids: Batch| -> Result<(), ExportError> {
            for (uid, _) in uids {
                summary.videos += 1;
                let row = match &store {
                    Some(s) => s.video(&uid)?,
                    None => None,
                };
                for kind in &self.options.types {
                    summary.selected += 1;
                    let state = row
                        .as_ref()
                        .and_then(|r| r.files.iter().find(|(k, _)| k == kind))
                        .map(|(_, s)| s.clone())
                        .unwrap_or(FileState::Selected);
                    let action = match state {
                        FileState::Done { size, .. } => {
                            if file_has_size(&self.options.dir.join(file_name(&uid, *kind)), size) {
                                summary.skipped += 1;
                                "skip"
                            } else {
                                "create"
                            }
                        }
                        FileState::Selected => "create",
                        FileState::Created { .. } => "poll",
                        FileState::Ready { .. } => "fetch",
                        FileState::Fetched { .. } => "verify",
                        FileState::Failed { reason } => {
                            if self.options.retry_failed {
                                "retry"
                            } else {
                                summary.failed.push(Failure {
                                    video_id: uid.clone(),
                                    kind: type_name(*kind),
                                    reason,
                                });
                                "skip-failed"
                            }
                        }
                    };
                    if let Some(plan) = &mut summary.plan {
                        plan.push(Planned {
                            video_id: uid.clone(),
                            kind: type_name(*kind),
                            action,
                        });
                    }
                }
            }
            Ok(())
        };
        walk_selection(
            client,
            &self.options,
            &self.limiter,
            &observer,
            &stop,
            &mut plan_page,
        )
        .await?;
        summary.api_requests = self.limiter.requests();
        summary.elapsed_seconds = started.elapsed().as_secs_f64();
        summary.interrupted = *stop.borrow();
        Ok(summary)
    }
}

/// Feeds the selection to `page` in pages (ids deduplicated, shard
/// applied): the given ids, or the listing, retried on 429 and transient
/// failures page by page.
async fn walk_selection(
    client: &Client,
    options: &ExportOptions,
    limiter: &Limiter,
    observer: &Observer,
    stop: &watch::Receiver<bool>,
    page: &mut dyn FnMut(Batch) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let mut count = 0u64;
    match &options.selection {
        Selection::Ids(ids) => {
            let mut seen = HashSet::new();
            let mut batch = Vec::new();
            for id in ids {
                if options.shard.contains(id) && seen.insert(id.as_str()) {
                    batch.push((id.clone(), None));
                }
                if batch.len() == 1000 {
                    page(std::mem::take(&mut batch))?;
                }
            }
            page(batch)?;
        }
        Selection::All(query) => {
            let mut walk = VideoWalk::new(query);
            let mut failures = 0u32;
            while let Some(request) = walk.next_request() {
                // Ctrl-C during the listing: the run stops with what it has
                // (the next run lists again).
                if *stop.borrow() {
                    break;
                }
                let answer = list_page(client, query, request).await;
                let videos = match answer {
                    Ok(p) => {
                        failures = 0;
                        walk.accept(p).map_err(|why| ExportError::Api {
                            context: "listing the videos".into(),
                            source: Box::new(Error::InvalidInput {
                                what: "listing",
                                reason: why,
                            }),
                        })?
                    }
                    Err(e) => {
                        match classify(&e, Step::Api) {
                            Class::Pause => {
                                limiter.wait_pause().await;
                                continue;
                            }
                            Class::Transient { .. } if failures + 1 < STEP_ATTEMPTS => {
                                failures += 1;
                                tokio::time::sleep(backoff(failures)).await;
                                continue;
                            }
                            _ => {}
                        }
                        return Err(ExportError::Api {
                            context: "listing the videos".into(),
                            source: Box::new(e),
                        });
                    }
                };
                let batch: Vec<_> = videos
                    .into_iter()
                    .filter_map(|v| {
                        let uid = v.uid()?.to_owned();
                        options
                            .shard
                            .contains(&uid)
                            .then(|| (uid, Some(v.raw_json().to_owned())))
                    })
                    .collect();
                count += batch.len() as u64;
                page(batch)?;
                observer(Progress::Listing { videos: count });
            }
        }
    }
    Ok(())
}

async fn list_page(
    client: &Client,
    query: &VideoQuery,
    request: PageRequest,
) -> Result<cloudflare_stream_downloads::VideosPage, Error> {
    client.list_videos(query, request).await
}

/// `requireSignedURLs` of a video's JSON (false when absent or unreadable).
fn requires_signed_urls(json: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Flag {
        #[serde(rename = "requireSignedURLs")]
        signed: Option<bool>,
    }
    serde_json::from_str::<Flag>(json).is_ok_and(|f| f.signed == Some(true))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << attempt.min(6))
}

fn file_has_size(path: &Path, size: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// SHA-256 of a file, lowercase hex (1 MiB reads).
fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl Run {
    fn path(&self, uid: &str, kind: DownloadType) -> PathBuf {
        self.options.dir.join(file_name(uid, kind))
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Stores the selection; returns the number of videos.
    async fn select(&self, run_id: i64) -> Result<u64, ExportError> {
        let types = self.options.types.clone();
        let store = &self.store;
        let signed = &self.signed_videos;
        let mut page = |batch: Batch| {
            let n = batch
                .iter()
                .filter(|(_, json)| json.as_deref().is_some_and(requires_signed_urls))
                .count();
            signed.fetch_add(n as u64, Ordering::Relaxed);
            store.select(run_id, &batch, &types)
        };
        walk_selection(
            &self.client,
            &self.options,
            &self.limiter,
            &self.observer,
            &self.stop,
            &mut page,
        )
        .await?;
        self.store.selection_count(run_id)
    }

    /// Walks the selection, `in_flight` videos at a time.
    async fn process(self: Arc<Self>, run_id: i64) -> Outcome {
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        let mut after: Option<String> = None;
        let mut result = Ok(());
        'pages: loop {
            let page = self
                .store
                .selection_page(run_id, after.as_deref(), SELECTION_PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.uid.clone());
            for row in page {
                // Done videos are settled here, without a task: a re-run
                // of a finished export of 100,000 videos is 100,000 stats.
                if self.settle_done(&row)? {
                    continue;
                }
                while tasks.len() >= self.options.in_flight {
                    if let Some(Err(e)) = tasks.join_next().await.map(flatten) {
                        result = Err(e);
                        break 'pages;
                    }
                }
                if self.stopped() {
                    self.interrupted.store(true, Ordering::Relaxed);
                    break 'pages;
                }
                let run = self.clone();
                tasks.spawn(async move {
                    let counter = Arc::new(AtomicU64::new(0));
                    let outcome = counted(counter.clone(), run.video(&row)).await;
                    run.store
                        .add_requests(&row.uid, counter.load(Ordering::Relaxed))?;
                    outcome
                });
            }
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = flatten(joined)
                && result.is_ok()
            {
                result = Err(e);
                // Stop the others at their next step.
                tasks.abort_all();
            }
        }
        result
    }

    fn fail(&self, uid: &str, kind: DownloadType, reason: String) -> Outcome {
        // A done file cannot fail; the store refuses it.
        self.store.apply(
            uid,
            kind,
            &Event::Failed {
                reason: reason.clone(),
            },
        )?;
        self.failed_without_change(uid, kind, reason);
        Ok(())
    }

    fn failed_without_change(&self, uid: &str, kind: DownloadType, reason: String) {
        let failure = Failure {
            video_id: uid.to_owned(),
            kind: type_name(kind),
            reason,
        };
        tracing::warn!(video = uid, kind = failure.kind, reason = %failure.reason, "file failed");
        (self.observer)(Progress::Failed(failure.clone()));
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(failure);
    }

    /// Whether every selected file of the video is done and on disk with
    /// its recorded size; if so, counts them as skipped and makes sure the
    /// `.json` is there and current. No request, no task.
    fn settle_done(&self, row: &VideoRow) -> Result<bool, ExportError> {
        let selected = || {
            row.files
                .iter()
                .filter(|(k, _)| self.options.types.contains(k))
        };
        if selected().next().is_none() {
            return Ok(false);
        }
        for (kind, state) in selected() {
            match state {
                FileState::Done { size, .. }
                    if file_has_size(&self.path(&row.uid, *kind), *size) => {}
                _ => return Ok(false),
            }
        }
        for (_, state) in selected() {
            if let FileState::Done { size, .. } = state {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                (self.observer)(Progress::Skipped {
                    video_id: row.uid.clone(),
                    bytes: *size,
                });
            }
        }
        self.write_metadata_of(row)?;
        Ok(true)
    }

    /// One video, all its selected types.
    async fn video(&self, row: &VideoRow) -> Outcome {
        let uid = row.uid.as_str();
        let mut pending = Vec::new();
        for (kind, state) in row
            .files
            .iter()
            .filter(|(k, _)| self.options.types.contains(k))
        {
            let path = self.path(uid, *kind);
            let state = match state {
                FileState::Done { size, .. } if file_has_size(&path, *size) => {
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                    (self.observer)(Progress::Skipped {
                        video_id: uid.to_owned(),
                        bytes: *size,
                    });
                    continue;
                }
                FileState::Done { .. } => self.store.apply(uid, *kind, &Event::Vanished)?,
                FileState::Fetched { size, .. } if !file_has_size(&path, *size) => {
                    self.store.apply(uid, *kind, &Event::Vanished)?
                }
                FileState::Failed { reason } if !self.options.retry_failed => {
                    self.failed_without_change(
                        uid,
                        *kind,
                        format!("{reason} (earlier run; --retry-failed to try again)"),
                    );
                    continue;
                }
                FileState::Failed { .. } => self.store.apply(uid, *kind, &Event::Retry)?,
                other => other.clone(),
            };
            pending.push((*kind, state));
        }
        if !pending.is_empty() {
            let Some(signing) = self.signing_of(row, &pending).await? else {
                return self.write_metadata(uid);
            };
            self.advance(uid, pending, signing).await?;
        }
        self.write_metadata(uid)
    }

    /// Takes each pending file of a video as far as it goes.
    /// Whether the video's download URLs need a token: from its listed
    /// JSON, or, for a video given by id, from its details (one API
    /// request, also recorded for `<uid>.json`). `None` when the video is
    /// gone: its pending files have failed.
    async fn signing_of(
        &self,
        row: &VideoRow,
        pending: &[(DownloadType, FileState)],
    ) -> Result<Option<Signing>, ExportError> {
        let uid = row.uid.as_str();
        let listed = match &row.listed {
            Some(json) => Some(json.clone()),
            None => match self.api_call(|| self.client.video(uid)).await? {
                Ok(video) => {
                    let json = video.raw_json().to_owned();
                    self.store.set_listed(uid, &json)?;
                    Some(json)
                }
                Err(reason) if reason == NOT_FOUND => {
                    for (kind, _) in pending {
                        self.fail(uid, *kind, reason.clone())?;
                    }
                    return Ok(None);
                }
                // Details unavailable: the download host's 401 will tell.
                Err(_) => None,
            },
        };
        Ok(Some(match listed.as_deref().map(requires_signed_urls) {
            Some(true) => Signing::Required,
            _ => Signing::Auto,
        }))
    }

    async fn advance(
        &self,
        uid: &str,
        mut files: Vec<(DownloadType, FileState)>,
        signing: Signing,
    ) -> Outcome {
        // Create. A reason that is the video's, not the download's (not
        // ready to stream, gone), fails its other types without a request.
        let mut video_failed: Option<String> = None;
        for (kind, state) in files.iter_mut() {
            if *state != FileState::Selected {
                continue;
            }
            if let Some(reason) = &video_failed {
                self.fail(uid, *kind, reason.clone())?;
                *state = FileState::Failed {
                    reason: reason.clone(),
                };
                continue;
            }
            if self.stopped() {
                return Ok(());
            }
            *state = match self
                .api_call(|| self.client.create_download(uid, *kind))
                .await?
            {
                Ok(downloads) => self.record_download(uid, *kind, &downloads, true)?,
                Err(reason) => {
                    if reason == NOT_READY || reason == NOT_FOUND {
                        video_failed = Some(reason.clone());
                    }
                    self.fail(uid, *kind, reason.clone())?;
                    FileState::Failed { reason }
                }
            };
        }
        // Wait: one listing of the video's downloads answers for every type.
        let mut poller = Poller::with_pace(self.options.poll, self.pace.get());
        let waiting_since = Instant::now();
        let first_percent = files
            .iter()
            .filter_map(|(_, s)| match s {
                FileState::Created { percent } => Some(*percent),
                _ => None,
            })
            .reduce(f64::min);
        loop {
            let generating: Vec<f64> = files
                .iter()
                .filter_map(|(_, s)| match s {
                    FileState::Created { percent } => Some(*percent),
                    _ => None,
                })
                .collect();
            let Some(least) = generating.iter().copied().reduce(f64::min) else {
                break;
            };
            let wait = poller.observe(Instant::now(), least);
            let mut stop = self.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
            let downloads = match self.api_call(|| self.client.list_downloads(uid)).await? {
                Ok(downloads) => downloads,
                Err(reason) => {
                    // One poll answers for every waiting file: each fails.
                    for (kind, state) in files.iter_mut() {
                        if matches!(state, FileState::Created { .. }) {
                            self.fail(uid, *kind, reason.clone())?;
                            *state = FileState::Failed {
                                reason: reason.clone(),
                            };
                        }
                    }
                    continue;
                }
            };
            for (kind, state) in files.iter_mut() {
                if matches!(state, FileState::Created { .. }) {
                    *state = self.record_download(uid, *kind, &downloads, false)?;
                    if let (FileState::Ready { .. }, Some(from)) = (&*state, first_percent) {
                        self.pace.record(from, waiting_since.elapsed());
                    }
                }
            }
        }
        // Fetch and verify.
        for (kind, state) in files.iter_mut() {
            if let FileState::Ready { url } = state.clone() {
                *state = self.fetch(uid, *kind, &url, signing).await?;
            }
            if let FileState::Fetched { size, .. } = state.clone() {
                *state = self.verify(uid, *kind, size).await?;
            }
        }
        Ok(())
    }

    /// The state after an answer that shows a download of `kind`.
    fn record_download(
        &self,
        uid: &str,
        kind: DownloadType,
        downloads: &Downloads,
        created: bool,
    ) -> Result<FileState, ExportError> {
        let Some(d) = downloads.get(kind) else {
            let why = if created {
                "the create answer has no such download"
            } else {
                "the download disappeared while generating"
            };
            self.fail(uid, kind, why.into())?;
            return Ok(FileState::Failed { reason: why.into() });
        };
        match (&d.status, &d.url) {
            (DownloadStatus::Ready, Some(url)) => {
                self.store
                    .apply(uid, kind, &Event::Ready { url: url.clone() })
            }
            (DownloadStatus::Error, _) => {
                let reason = format!(
                    "generation failed (status error at {}%)",
                    d.percent_complete
                );
                self.fail(uid, kind, reason.clone())?;
                Ok(FileState::Failed { reason })
            }
            // In progress, ready without a URL, or a status this version
            // does not know: keep waiting.
            _ => self.store.apply(
                uid,
                kind,
                &Event::Created {
                    percent: d.percent_complete,
                },
            ),
        }
    }

    /// An API call, tried again by [`on_error`](Self::on_error):
    /// `Ok(Err(reason))` when the files it was for fail.
    async fn api_call<T, F, Fut>(&self, call: F) -> Result<Result<T, String>, ExportError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempts = 0;
        loop {
            match call().await {
                Ok(v) => {
                    self.unreachable.store(0, Ordering::Relaxed);
                    return Ok(Ok(v));
                }
                Err(e) => {
                    if let Some(reason) = self.on_error(e, Step::Api, &mut attempts).await? {
                        return Ok(Err(reason));
                    }
                }
            }
        }
    }

    /// Decides what a failed step does: `Ok(None)` to try again (after
    /// waiting), `Ok(Some(reason))` when the file fails, `Err` to stop the
    /// run.
    async fn on_error(
        &self,
        error: Error,
        step: Step,
        attempts: &mut u32,
    ) -> Result<Option<String>, ExportError> {
        match classify(&error, step) {
            Class::Pause => {
                if let Some(until) = self.limiter.paused_until() {
                    (self.observer)(Progress::Paused {
                        wait: until.saturating_duration_since(Instant::now()),
                    });
                }
                self.limiter.wait_pause().await;
                Ok(None)
            }
            Class::Transient { transport } => {
                if transport {
                    let n = self.unreachable.fetch_add(1, Ordering::Relaxed) + 1;
                    if n >= UNREACHABLE_AFTER {
                        return Err(ExportError::Api {
                            context: format!(
                                "{n} transport failures in a row, the API or the download host is unreachable"
                            ),
                            source: Box::new(error),
                        });
                    }
                }
                *attempts += 1;
                if *attempts >= STEP_ATTEMPTS {
                    return Ok(Some(format!("{error} ({} tries)", *attempts)));
                }
                tokio::time::sleep(backoff(*attempts)).await;
                Ok(None)
            }
            Class::Failed(reason) => Ok(Some(reason)),
            Class::Fatal => Err(ExportError::Api {
                context: "cannot go on".into(),
                source: Box::new(error),
            }),
        }
    }

    async fn fetch(
        &self,
        uid: &str,
        kind: DownloadType,
        url: &str,
        signing: Signing,
    ) -> Result<FileState, ExportError> {
        let path = self.path(uid, kind);
        let _permit = self.transfers.acquire().await;
        (self.observer)(Progress::TransferStarted {
            video_id: uid.to_owned(),
            kind,
        });
        let mut attempts = 0;
        loop {
            let observer = self.observer.clone();
            let id = uid.to_owned();
            let result = self
                .client
                .fetch_video_url(uid, url, signing, &path, move |bytes, total| {
                    observer(Progress::Transfer {
                        video_id: id.clone(),
                        kind,
                        bytes,
                        total,
                    });
                })
                .await;
            (self.observer)(Progress::TransferEnded {
                video_id: uid.to_owned(),
                kind,
            });
            match result {
                Ok(report) => {
                    self.unreachable.store(0, Ordering::Relaxed);
                    self.bytes
                        .fetch_add(report.bytes - report.resumed_from, Ordering::Relaxed);
                    return self
                        .store
                        .apply(uid, kind, &Event::Fetched { size: report.bytes });
                }
                Err(e) => {
                    if let Some(reason) = self.on_error(e, Step::File, &mut attempts).await? {
                        self.fail(uid, kind, reason.clone())?;
                        return Ok(FileState::Failed { reason });
                    }
                }
            }
        }
    }

    async fn verify(
        &self,
        uid: &str,
        kind: DownloadType,
        size: u64,
    ) -> Result<FileState, ExportError> {
        let path = self.path(uid, kind);
        let checked = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> Result<String, String> {
                let len = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
                if len != size {
                    return Err(format!("{len} bytes on disk, {size} fetched"));
                }
                media::check_file(&path).map_err(|e| e.to_string())?;
                sha256_file(&path).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(format!("verifier panicked: {e}")))
        };
        match checked {
            Ok(sha256) => {
                let state = self
                    .store
                    .apply(uid, kind, &Event::Verified { size, sha256 })?;
                self.done.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    video = uid,
                    kind = type_name(kind),
                    bytes = size,
                    "file done"
                );
                (self.observer)(Progress::Done {
                    video_id: uid.to_owned(),
                    kind,
                    bytes: size,
                });
                Ok(state)
            }
            Err(why) => {
                // The file is not what it should be: it goes, so that a
                // retry fetches it whole.
                let _ = std::fs::remove_file(&path);
                let reason = format!("verification failed: {why}");
                self.fail(uid, kind, reason.clone())?;
                Ok(FileState::Failed { reason })
            }
        }
    }

    /// Writes `<uid>.json` when every selected type of the video is done
    /// (atomically: a temporary file, fsynced, renamed).
    fn write_metadata(&self, uid: &str) -> Outcome {
        match self.store.video(uid)? {
            Some(row) => self.write_metadata_of(&row),
            None => Ok(()),
        }
    }

    fn write_metadata_of(&self, row: &VideoRow) -> Outcome {
        let uid = row.uid.as_str();
        let done: Vec<_> = row
            .files
            .iter()
            .filter(|(k, _)| self.options.types.contains(k))
            .collect();
        if done.is_empty() || !done.iter().all(|(_, s)| s.is_done()) {
            return Ok(());
        }
        let path = self.options.dir.join(format!("{uid}.json"));
        let text = metadata_json(row);
        if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
            return Ok(());
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.options.dir)
            .map_err(ExportError::io(&self.options.dir))?;
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(ExportError::io(tmp.path()))?;
        tmp.persist(&path)
            .map_err(|e| ExportError::io(&path)(e.error))?;
        Ok(())
    }
}

/// `<uid>.json`: the video as listed (for a video given by id, its details
/// from `GET …/stream/{id}`; `null` only when they could not be had), and
/// per type the download's URL (unsigned: never a token), file, size and
/// SHA-256.
pub fn metadata_json(row: &VideoRow) -> String {
    let video = row
        .listed
        .as_deref()
        .and_then(|j| serde_json::value::RawValue::from_string(j.to_owned()).ok());
    let mut downloads = serde_json::Map::new();
    for (kind, state) in &row.files {
        if let FileState::Done { url, size, sha256 } = state {
            downloads.insert(
                type_name(*kind).to_owned(),
                serde_json::json!({
                    "file": file_name(&row.uid, *kind),
                    "url": url,
                    "size": size,
                    "sha256": sha256,
                }),
            );
        }
    }
    #[derive(Serialize)]
    struct Doc<'a> {
        uid: &'a str,
        video: Option<Box<serde_json::value::RawValue>>,
        downloads: serde_json::Map<String, serde_json::Value>,
    }
    let mut text = serde_json::to_string_pretty(&Doc {
        uid: &row.uid,
        video,
        downloads,
    })
    .unwrap_or_default();
    text.push('\n');
    text
}

fn flatten(joined: Result<Outcome, tokio::task::JoinError>) -> Outcome {
    match joined {
        Ok(outcome) => outcome,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
