//! The per-file state machine driver: create, wait, then hand the file
//! to the transfer (each step's failure goes through [`crate::attempt`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cloudflare_stream_downloads::types::DownloadType;
use cloudflare_stream_downloads::{DownloadStatus, Downloads, Signing};

use crate::attempt::{NOT_FOUND, NOT_READY};
use crate::error::ExportError;
use crate::host::{self, Probe};
use crate::listed::{not_ready_to_stream, requires_signed_urls};
use crate::machine::{Event, FileState};
use crate::options::Readiness;
use crate::poll::Poller;
use crate::run::{Outcome, Run};
use crate::state::VideoRow;

impl Run {
    /// Whether the video's download URLs need a token: from its listed
    /// JSON, or, for a video given by id, from its details (one API
    /// request, also recorded for `<uid>.json`). `None` when the video is
    /// gone: its pending files have failed.
    pub(crate) async fn signing_of(
        &self,
        row: &VideoRow,
        pending: &[(DownloadType, FileState)],
    ) -> Result<Option<(Signing, Option<String>)>, ExportError> {
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
        let signing = match listed.as_deref().map(requires_signed_urls) {
            Some(true) => Signing::Required,
            _ => Signing::Auto,
        };
        Ok(Some((signing, listed)))
    }

    /// Takes each pending file of a video as far as it goes. `listed`: the
    /// video's JSON (its playback URL gives the download host).
    pub(crate) async fn advance(
        &self,
        uid: &str,
        mut files: Vec<(DownloadType, FileState)>,
        signing: Signing,
        listed: Option<&str>,
    ) -> Outcome {
        // A video the listing shows not ready to stream cannot have
        // downloads (the API would answer 10011): its files fail with no
        // request (`--retry-failed` tries them again later).
        if listed.is_some_and(not_ready_to_stream) {
            for (kind, state) in files.iter_mut() {
                if *state == FileState::Selected {
                    self.fail(uid, *kind, NOT_READY.into())?;
                    *state = FileState::Failed {
                        reason: NOT_READY.into(),
                    };
                }
            }
        }
        // How the download host is asked: with the video's tokens when they
        // are signed locally; a video that needs a token from the API (no
        // signing key) is not asked at all (a token per probe would cost
        // what a poll costs), and a video of unknown needs is asked
        // unsigned (a 401 then leaves the round to the API).
        let mut probe_signing = match (signing, self.client.signing_key().is_some()) {
            (_, true) => Some(signing),
            (Signing::Required, false) => None,
            (_, false) => Some(Signing::Never),
        };
        // Existing downloads first: the URL the listing implies, asked of
        // the download host (no API request). Found: no create, no poll.
        let mut urls: HashMap<DownloadType, String> = HashMap::new();
        for (kind, state) in files.iter_mut() {
            let Some(url) = listed.and_then(|l| host::derived_url(l, *kind)) else {
                continue;
            };
            let existing_first = self.options.readiness == Readiness::Host;
            if let (FileState::Selected, Some(how), true) = (&*state, probe_signing, existing_first)
            {
                if self.stopped() {
                    return Ok(());
                }
                match self.host.probe(&self.client, uid, &url, how).await {
                    Probe::There => {
                        *state =
                            self.store
                                .apply(uid, *kind, &Event::Ready { url: url.clone() })?;
                        self.store.set_found(uid, *kind, "existing")?;
                        self.host.found_existing.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Probe::Refused => probe_signing = None,
                    Probe::NotThere | Probe::Unknown => {}
                }
            }
            urls.insert(*kind, url);
        }
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
                Ok(downloads) => {
                    if let Some(url) = downloads.get(*kind).and_then(|d| d.url.clone()) {
                        urls.insert(*kind, url);
                    }
                    self.store.set_found(uid, *kind, "created")?;
                    self.record_download(uid, *kind, &downloads, true)?
                }
                Err(reason) => {
                    if reason == NOT_READY || reason == NOT_FOUND {
                        video_failed = Some(reason.clone());
                    }
                    self.fail(uid, *kind, reason.clone())?;
                    FileState::Failed { reason }
                }
            };
        }
        // Wait. The download host answers "is it there?" for no API
        // request: it is asked on the poll schedule, and the API only where
        // only it can answer (a download that ended in `error`, or one not
        // there well past its expected time): first after three times the
        // first wait or `ExportOptions::first_api_poll`, whichever is later, then at
        // doubling gaps. A file with no known URL is
        // polled through the API alone, as before.
        let mut poller = Poller::with_pace(self.options.poll, self.pace.get());
        let waiting_since = Instant::now();
        let first_percent = files
            .iter()
            .filter_map(|(_, s)| match s {
                FileState::Created { percent } => Some(*percent),
                _ => None,
            })
            .reduce(f64::min);
        let mut api_gap: Option<Duration> = None;
        let mut last_api = waiting_since;
        // A new `percentComplete` since the last wait (the API was asked):
        // the poller extrapolates; else the host's miss only lengthens it.
        let mut observed = true;
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
            let waited = waiting_since.elapsed();
            if waited >= self.options.wait_timeout {
                let reason = format!(
                    "not ready after {} (timeout; at {least}% when last asked)",
                    humantime::format_duration(Duration::from_secs(waited.as_secs()))
                );
                for (kind, state) in files.iter_mut() {
                    if matches!(state, FileState::Created { .. }) {
                        self.fail(uid, *kind, reason.clone())?;
                        *state = FileState::Failed {
                            reason: reason.clone(),
                        };
                    }
                }
                break;
            }
            let next = if observed || self.options.readiness == Readiness::Api {
                poller.observe(Instant::now(), least)
            } else {
                poller.missed()
            };
            observed = false;
            let wait = next.min(self.options.wait_timeout - waited);
            let gap = *api_gap.get_or_insert((wait * 3).max(self.options.first_api_poll));
            let mut stop = self.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
            let host_first = self.options.readiness == Readiness::Host && probe_signing.is_some();
            let mut unsure = !host_first;
            if host_first {
                for (kind, state) in files.iter_mut() {
                    if !matches!(state, FileState::Created { .. }) {
                        continue;
                    }
                    let Some(url) = urls.get(kind) else {
                        unsure = true;
                        continue;
                    };
                    let Some(how) = probe_signing else {
                        unsure = true;
                        continue;
                    };
                    match self.host.probe(&self.client, uid, url, how).await {
                        Probe::There => {
                            *state =
                                self.store
                                    .apply(uid, *kind, &Event::Ready { url: url.clone() })?;
                            if let Some(from) = first_percent {
                                self.pace.record(from, waiting_since.elapsed());
                            }
                        }
                        Probe::NotThere => {}
                        // 429, 5xx, a cut: the API decides this round.
                        Probe::Unknown => unsure = true,
                        Probe::Refused => {
                            probe_signing = None;
                            unsure = true;
                        }
                    }
                }
            }
            let still = files
                .iter()
                .any(|(_, s)| matches!(s, FileState::Created { .. }));
            if !still || (!unsure && last_api.elapsed() < gap) {
                continue;
            }
            last_api = Instant::now();
            api_gap = Some(gap * 2);
            observed = true;
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
                    if let Some(url) = downloads.get(*kind).and_then(|d| d.url.clone()) {
                        urls.insert(*kind, url);
                    }
                    *state = self.record_download(uid, *kind, &downloads, false)?;
                    if let (FileState::Ready { .. }, Some(from)) = (&*state, first_percent) {
                        self.pace.record(from, waiting_since.elapsed());
                    }
                }
            }
        }
        // Transfer and verify.
        for (kind, state) in files.iter_mut() {
            if matches!(state, FileState::Ready { .. } | FileState::Fetched { .. }) {
                *state = self.transfer(uid, *kind, state.clone(), signing).await?;
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
}
