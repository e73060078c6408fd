//! The export run: select, then create → wait → fetch → verify each file,
//! with every state change committed to the [`Store`] first.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cloudflare_stream_downloads::{Client, ClientBuilder, Error, RequestGate, Signing, check_id};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::dest::{Destination, default_state_path, file_has_size, file_name};
use crate::error::ExportError;
use crate::host::HostProbes;
use crate::limiter::{Limiter, counted};
use crate::listed::requires_signed_urls;
use crate::lock::DirLock;
use crate::machine::{Event, FileState};
use crate::options::{ExportOptions, Selection};
use crate::poll::Pace;
use crate::report::{Failure, Observer, Planned, Progress, Summary};
use crate::run::{ExtraCounts, Outcome, Run};
use crate::runs::{self, ReportedFailure, RunCounts, RunReport};
use crate::select::{Batch, walk_selection};
use crate::state::{STATE_FILE, Store, VideoRow, type_name};

/// Ids read from the selection per page of the state database.
const SELECTION_PAGE: u32 = 256;

/// An export: build it, give its [`gate`](Exporter::gate) to the client,
/// then [`run`](Exporter::run).
#[derive(Debug)]
pub struct Exporter {
    options: ExportOptions,
    limiter: Arc<Limiter>,
}

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
            extra_counts: ExtraCounts::default(),
            selected_videos: AtomicU64::new(0),
            observer,
        });
        let report = RunReport {
            id: runs::new_id(&self.options.shard),
            shard: self.options.shard.to_string(),
            options: serde_json::from_str(&self.describe()).unwrap_or_default(),
            started_at: runs::now(),
            updated_at: runs::now(),
            ended_at: None,
            outcome: "running".into(),
            counts: RunCounts::default(),
            failures: Vec::new(),
        };
        self.write_report(&report).await;
        // Rewritten every few minutes while the run goes (a killed pod's
        // report says how far it got).
        let refresher = {
            let run = run.clone();
            let base = report.clone();
            let every = self.options.report_every;
            let dest = self.options.dest.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tick.tick().await;
                    let now = run.report_now(&base, "running", None);
                    if let Err(e) = runs::write(&dest, &now).await {
                        tracing::warn!(error = %e, "the run report could not be written");
                    }
                }
            })
        };
        let tokens_before = run.client.token_counts();
        let videos = match run.select(run_id).await {
            Ok(videos) => videos,
            Err(e) => {
                refresher.abort();
                let mut last = run.report_now(&report, &format!("error: {e}"), Some(runs::now()));
                last.updated_at = runs::now();
                self.write_report(&last).await;
                return Err(e);
            }
        };
        run.selected_videos.store(videos, Ordering::Relaxed);
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
        if result.is_ok() {
            let worked = run.done.load(Ordering::Relaxed)
                + run.extra_counts.captions_written.load(Ordering::Relaxed)
                > 0;
            result = run.write_account_record(worked).await;
        }
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
            captions_written: run.extra_counts.captions_written.load(Ordering::Relaxed),
            captions_present: run.extra_counts.captions_present.load(Ordering::Relaxed),
            captions_pending: run.extra_counts.captions_pending.load(Ordering::Relaxed),
            audio_tracks: run.extra_counts.audio_tracks.load(Ordering::Relaxed),
            manifests: run.host.manifests.load(Ordering::Relaxed),
            extras_deferred: run.extra_counts.deferred.load(Ordering::Relaxed),
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
        refresher.abort();
        let outcome = match &result {
            Err(e) => format!("error: {e}"),
            Ok(()) if summary.interrupted => "interrupted".into(),
            Ok(()) if summary.complete() => "complete".into(),
            Ok(()) => "failures".into(),
        };
        let mut last = report.clone();
        last.outcome = outcome;
        last.updated_at = runs::now();
        last.ended_at = Some(last.updated_at.clone());
        last.counts = RunCounts {
            videos: summary.videos,
            selected: summary.selected,
            done: summary.done,
            skipped: summary.skipped,
            failed: summary.failed.len() as u64,
            bytes: summary.bytes,
            api_requests: summary.api_requests,
            captions_written: summary.captions_written,
        };
        last.failures = summary.failed.iter().map(ReportedFailure::from).collect();
        self.write_report(&last).await;
        result.map(|()| summary)
    }

    /// Writes a run report; a failure to is logged, not fatal (the report
    /// is not the archive).
    async fn write_report(&self, report: &RunReport) {
        if let Err(e) = runs::write(&self.options.dest, report).await {
            tracing::warn!(error = %e, "the run report could not be written");
        }
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
            "selection": o.selection.describe(),
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
                                    language: None,
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
        // Its captions and audio tracks recorded, every caption file there.
        let extras = self.extras_needs(row)?;
        if !extras.idle() {
            return Ok(false);
        }
        self.report_failed_before(&row.uid, &extras);
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
        let mut signing = match row.listed.as_deref().map(requires_signed_urls) {
            Some(true) => Signing::Required,
            _ => Signing::Auto,
        };
        if !pending.is_empty() {
            let Some((how, listed)) = self.signing_of(row, &pending).await? else {
                return self.write_metadata(uid).await;
            };
            signing = how;
            self.advance(uid, pending, signing, listed.as_deref())
                .await?;
        }
        // Captions and audio tracks, once the media files are done.
        if let Some(row) = self.store.video(uid)?
            && self.media_done(&row)
        {
            self.extras(&row, signing).await?;
        }
        self.write_metadata(uid).await
    }

    /// Whether every selected media file of the video is done.
    fn media_done(&self, row: &VideoRow) -> bool {
        let mut selected = row
            .files
            .iter()
            .filter(|(k, _)| self.options.types.contains(k))
            .peekable();
        selected.peek().is_some() && selected.all(|(_, s)| s.is_done())
    }
}

fn flatten(joined: Result<Outcome, tokio::task::JoinError>) -> Outcome {
    match joined {
        Ok(outcome) => outcome,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl Run {
    /// The report of this run as it stands.
    fn report_now(&self, base: &RunReport, outcome: &str, ended: Option<String>) -> RunReport {
        let failures: Vec<ReportedFailure> = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(ReportedFailure::from)
            .collect();
        RunReport {
            updated_at: runs::now(),
            ended_at: ended,
            outcome: outcome.to_owned(),
            counts: RunCounts {
                videos: self.selected_videos.load(Ordering::Relaxed),
                selected: self.selected_videos.load(Ordering::Relaxed)
                    * self.options.types.len() as u64,
                done: self.done.load(Ordering::Relaxed),
                skipped: self.skipped.load(Ordering::Relaxed),
                failed: failures.len() as u64,
                bytes: self.bytes.load(Ordering::Relaxed),
                api_requests: self.limiter.requests(),
                captions_written: self.extra_counts.captions_written.load(Ordering::Relaxed),
            },
            failures,
            ..base.clone()
        }
    }
}
