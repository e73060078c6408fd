//! The export run: select, then create → wait → fetch → verify each file,
//! with every state change committed to the [`Store`] first.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudflare_stream_downloads::types::DownloadType;
use cloudflare_stream_downloads::{
    Client, ClientBuilder, Error, RequestGate, VideoQuery, check_id,
};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::dest::{Destination, default_state_path};
use crate::error::ExportError;
use crate::host::{HostProbes, HostStats, ProbePolicy};
use crate::limiter::{Limiter, Rate, counted};
use crate::lock::DirLock;
use crate::machine::{Event, FileState};
use crate::poll::{Pace, PollPolicy};
use crate::select::{Batch, walk_selection};
use crate::shard::Shard;
use crate::state::{STATE_FILE, Store, VideoRow, type_name};
use crate::transfer::file_has_size;

/// Ids read from the selection per page of the state database.
const SELECTION_PAGE: u32 = 256;

/// Videos being created or waited for at once (their downloads generate on
/// Cloudflare's side in parallel). Generation, not our requests, takes the
/// time of a single video, so this is what lets a run reach the rate
/// limit's floor; each one costs a few hundred bytes.
pub const DEFAULT_IN_FLIGHT: usize = 256;

/// How long a download may take to be ready before its file fails.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(3600);

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
    /// Where the files go: a directory, or an object store.
    pub dest: Destination,
    /// Where the run's state lives, for an object-store destination
    /// (default: [`default_state_path`] of its URL). A directory keeps its
    /// state inside it (`cfstream-export.sqlite`); this is ignored then.
    pub state: Option<PathBuf>,
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
    /// Who is asked whether a download is ready.
    pub readiness: Readiness,
    /// A download not ready after this long fails (`not ready after …
    /// (timeout)`); the run goes on.
    pub wait_timeout: Duration,
    /// How the download host is probed: time limit, circuit breaker.
    pub probes: ProbePolicy,
}

/// Who is asked whether a download is ready (see [`crate::host`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readiness {
    /// The download host, on the poll schedule (no API request), and the
    /// API only to learn of an `error` or when the host stays silent well
    /// past the expected time; existing downloads are found on the host
    /// before any create.
    #[default]
    Host,
    /// The API alone, every poll (the policy before; a baseline of
    /// docs/performance.md).
    Api,
}

impl ExportOptions {
    /// `default` files of `selection` into `dir`, 4 transfers, 1000/5m.
    pub fn new(dir: impl Into<PathBuf>, selection: Selection) -> Self {
        Self::to(Destination::Dir(dir.into()), selection)
    }

    /// [`new`](Self::new), into `dest`.
    pub fn to(dest: Destination, selection: Selection) -> Self {
        Self {
            dest,
            state: None,
            selection,
            types: vec![DownloadType::Default],
            transfers: 4,
            rate: Rate::DEFAULT,
            shard: Shard::ALL,
            retry_failed: false,
            dry_run: false,
            poll: PollPolicy::default(),
            in_flight: DEFAULT_IN_FLIGHT,
            readiness: Readiness::Host,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            probes: ProbePolicy::default(),
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
    /// Files whose download already existed on the download host (found
    /// at the URL the listing implies): no create, no poll.
    pub found_existing: u64,
    /// Requests to the download host asking whether a file is there (no
    /// API request each).
    pub host_probes: u64,
    /// Per download host: probes sent, failed, throttled, skipped while
    /// its breaker was open or it asked to slow down, and breaker
    /// openings.
    pub hosts: Vec<HostStats>,
    /// `api_requests / videos`.
    pub api_requests_per_video: f64,
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
    /// An object-store destination was read back before the run (its
    /// state may be new: a fresh machine).
    Destination {
        /// The state database used.
        state: PathBuf,
        /// Objects listed under the prefix.
        objects: u64,
        /// Files found complete there (their sidecars) that the state did
        /// not have as done.
        adopted: u64,
        /// Multipart uploads of this shard left open by another run, taken
        /// over.
        continued: u64,
        /// Multipart uploads of this shard left open by another run, aborted.
        aborted: u64,
    },
    /// Every worker pauses after a 429.
    Paused {
        /// For how long.
        wait: Duration,
    },
    /// A download host stopped answering: its breaker opened, and its
    /// files are created and polled through the API for a while.
    HostUnavailable {
        /// The host (scheme, name, port).
        host: String,
        /// The last failure.
        reason: String,
        /// How long its probes stop.
        retry_in: Duration,
        /// The first time in this run (later openings are logged only).
        first: bool,
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

/// Everything the workers of one run share.
pub(crate) struct Run {
    pub(crate) client: Client,
    pub(crate) store: Store,
    pub(crate) options: ExportOptions,
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) transfers: Semaphore,
    /// How fast this run's downloads generate.
    pub(crate) pace: Pace,
    pub(crate) observer: Observer,
    pub(crate) stop: watch::Receiver<bool>,
    /// Transport failures in a row.
    pub(crate) unreachable: AtomicU32,
    pub(crate) done: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) failed: Mutex<Vec<Failure>>,
    pub(crate) interrupted: AtomicBool,
    /// Videos of the selection that require signed URLs (from the listing).
    pub(crate) signed_videos: AtomicU64,
    /// The download host's probes.
    pub(crate) host: HostProbes,
}

/// A worker's result: `Err` stops the run.
pub(crate) type Outcome = Result<(), ExportError>;

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
        if self.options.dry_run {
            let mut summary = self.dry_run(&client, observer, stop, started).await?;
            summary.api_requests -= requests_before;
            return Ok(summary);
        }
        let state_path = self.state_path();
        let _lock = match &self.options.dest {
            Destination::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(ExportError::io(dir))?;
                DirLock::acquire(dir)?
            }
            Destination::Store(dest) => {
                // Before any Stream request: the bucket takes a write.
                dest.preflight().await?;
                let parent = state_path.parent().unwrap_or(std::path::Path::new("."));
                std::fs::create_dir_all(parent).map_err(ExportError::io(parent))?;
                DirLock::acquire_for(&state_path)?
            }
        };
        let store = Store::open(&state_path)?;
        let run_id = store.begin_run(&self.describe())?;
        if let Destination::Store(dest) = &self.options.dest {
            let found =
                crate::reconcile::from_destination(dest, &store, run_id, self.options.shard)
                    .await?;
            (observer)(Progress::Destination {
                state: state_path.clone(),
                objects: found.objects,
                adopted: found.adopted,
                continued: found.continued,
                aborted: found.aborted,
            });
        }
        let run = Arc::new(Run {
            client,
            store,
            options: self.options.clone(),
            limiter: self.limiter.clone(),
            transfers: Semaphore::new(self.options.transfers),
            pace: Pace::default(),
            stop,
            unreachable: AtomicU32::new(0),
            done: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failed: Mutex::new(Vec::new()),
            interrupted: AtomicBool::new(false),
            signed_videos: AtomicU64::new(0),
            host: HostProbes::new(self.options.probes, {
                let observer = observer.clone();
                move |opened| {
                    observer(Progress::HostUnavailable {
                        host: opened.host,
                        reason: opened.reason,
                        retry_in: opened.open_for,
                        first: opened.first,
                    })
                }
            }),
            observer,
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
        let mut result = run.clone().process(run_id).await;
        if let Destination::Store(dest) = &self.options.dest {
            // A run ends with none of its uploads open (incomplete uploads
            // cost storage): those left are of failed or interrupted files.
            if let Err(e) = dest.abort_recorded(&run.store).await
                && result.is_ok()
            {
                result = Err(e);
            }
        }
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
            found_existing: run.host.found_existing.load(Ordering::Relaxed),
            host_probes: run.host.probes.load(Ordering::Relaxed),
            hosts: run.host.stats(),
            api_requests_per_video: 0.0,
            interrupted: run.interrupted.load(Ordering::Relaxed) || *run.stop.borrow(),
            plan: None,
        };
        let mut summary = summary;
        summary.api_requests_per_video = if videos > 0 {
            summary.api_requests as f64 / videos as f64
        } else {
            0.0
        };
        let json = serde_json::to_string(&summary).unwrap_or_default();
        run.store.finish_run(run_id, &json)?;
        result.map(|()| summary)
    }

    /// The state database's path.
    pub fn state_path(&self) -> PathBuf {
        match &self.options.dest {
            Destination::Dir(dir) => dir.join(STATE_FILE),
            Destination::Store(dest) => self
                .options
                .state
                .clone()
                .unwrap_or_else(|| default_state_path(&dest.url)),
        }
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
            "dest": o.dest.to_string(),
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
        let store = Store::open_read_only(&self.state_path())?;
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
                            let there = match (&self.options.dest, &store) {
                                (Destination::Dir(dir), _) => {
                                    file_has_size(&dir.join(file_name(&uid, *kind)), size)
                                }
                                // The state's last listing of the bucket.
                                (Destination::Store(dest), Some(s)) => {
                                    let key = dest.key(&file_name(&uid, *kind));
                                    s.object_size(key.as_ref())? == Some(size)
                                }
                                (Destination::Store(_), None) => false,
                            };
                            if there {
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

impl Run {
    /// Whether the destination holds `uid`'s file of `kind` with `size`
    /// bytes: on disk, or in the bucket (as listed at the start of the run,
    /// and written since).
    pub(crate) fn has_file(
        &self,
        uid: &str,
        kind: DownloadType,
        size: u64,
    ) -> Result<bool, ExportError> {
        Ok(match &self.options.dest {
            Destination::Dir(dir) => file_has_size(&dir.join(file_name(uid, kind)), size),
            Destination::Store(dest) => {
                let key = dest.key(&file_name(uid, kind));
                self.store.object_size(key.as_ref())? == Some(size)
            }
        })
    }

    pub(crate) fn stopped(&self) -> bool {
        *self.stop.borrow()
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
                if self.settle_done(&row).await? {
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

    pub(crate) fn fail(&self, uid: &str, kind: DownloadType, reason: String) -> Outcome {
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

    pub(crate) fn failed_without_change(&self, uid: &str, kind: DownloadType, reason: String) {
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
    async fn settle_done(&self, row: &VideoRow) -> Result<bool, ExportError> {
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
                FileState::Done { size, .. } if self.has_file(&row.uid, *kind, *size)? => {}
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
        self.write_metadata_of(row, true).await?;
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
            let state = match state {
                FileState::Done { size, .. } if self.has_file(uid, *kind, *size)? => {
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                    (self.observer)(Progress::Skipped {
                        video_id: uid.to_owned(),
                        bytes: *size,
                    });
                    continue;
                }
                FileState::Done { .. } => self.store.apply(uid, *kind, &Event::Vanished)?,
                FileState::Fetched { size, .. } if !self.has_file(uid, *kind, *size)? => {
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
            let Some((signing, listed)) = self.signing_of(row, &pending).await? else {
                return self.write_metadata(uid).await;
            };
            self.advance(uid, pending, signing, listed.as_deref())
                .await?;
        }
        self.write_metadata(uid).await
    }
}

fn flatten(joined: Result<Outcome, tokio::task::JoinError>) -> Outcome {
    match joined {
        Ok(outcome) => outcome,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
