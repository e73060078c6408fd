//! The run's shared context: [`Run`], what every worker of one export
//! holds (client, state, options, limiter, counters, probes), and the few
//! things every step does with it (record a failure, ask whether to stop,
//! whether the destination has a file). The steps add their own `impl Run`
//! blocks above it; the top of the run is [`crate::engine`].

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};

use cloudflare_stream_downloads::Client;
use cloudflare_stream_downloads::types::DownloadType;
use tokio::sync::{Semaphore, watch};

use crate::dest::{Destination, file_has_size, file_name};
use crate::error::ExportError;
use crate::host::HostProbes;
use crate::limiter::Limiter;
use crate::machine::Event;
use crate::options::ExportOptions;
use crate::poll::Pace;
use crate::report::{Failure, Observer, Progress};
use crate::state::{Store, type_name};

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
    /// What was done with captions and audio tracks.
    pub(crate) extra_counts: ExtraCounts,
    /// Videos selected (known once the selection is stored).
    pub(crate) selected_videos: AtomicU64,
}

/// Counts of the run's captions and audio tracks (see
/// [`crate::report::Summary`]).
#[derive(Debug, Default)]
pub(crate) struct ExtraCounts {
    pub(crate) captions_written: AtomicU64,
    pub(crate) captions_present: AtomicU64,
    pub(crate) captions_pending: AtomicU64,
    pub(crate) audio_tracks: AtomicU64,
    pub(crate) deferred: AtomicU64,
}

/// A worker's result: `Err` stops the run.
pub(crate) type Outcome = Result<(), ExportError>;

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
        self.record_failure(Failure {
            video_id: uid.to_owned(),
            kind: type_name(kind),
            language: None,
            reason,
        });
    }

    /// Logs a failure, tells the observer, and keeps it for the summary.
    pub(crate) fn record_failure(&self, failure: Failure) {
        tracing::warn!(video = %failure.video_id, what = %failure.what(), reason = %failure.reason, "failed");
        (self.observer)(Progress::Failed(failure.clone()));
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(failure);
    }
}
