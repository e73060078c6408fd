//! `wait_until_ready`: poll a download until its file exists.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::Client;
use crate::DownloadStatus;
use crate::error::Error;
use crate::types::{Download, DownloadType};

/// Called with the download after every poll.
type ProgressFn = Box<dyn FnMut(&Download) + Send>;

/// How [`Client::wait_until_ready`] polls.
pub struct WaitOptions {
    /// Pause after the first poll (default 1 s); each pause doubles…
    pub initial_interval: Duration,
    /// …up to this (default 10 s).
    pub max_interval: Duration,
    /// Give up after this long (default 10 minutes).
    pub timeout: Duration,
    /// Create the download when it does not exist yet (default false).
    pub create_if_missing: bool,
    progress: Option<ProgressFn>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(600),
            create_if_missing: false,
            progress: None,
        }
    }
}

impl fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOptions")
            .field("initial_interval", &self.initial_interval)
            .field("max_interval", &self.max_interval)
            .field("timeout", &self.timeout)
            .field("create_if_missing", &self.create_if_missing)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl WaitOptions {
    /// Call `f` with the download after every poll (its `percent_complete`
    /// is the progress, 0 to 100).
    pub fn on_progress(mut self, f: impl FnMut(&Download) + Send + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Give up after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Create the download first when it does not exist.
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Poll intervals: start at `initial`, double up to `max`.
    pub fn intervals(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_interval = initial;
        self.max_interval = max.max(initial);
        self
    }
}

impl Client {
    /// Poll the video's downloads until the one of `kind` is `ready`, and
    /// return it (with its `url`).
    ///
    /// Fails with [`Error::DownloadFailed`] as soon as the status is
    /// `error`, with [`Error::WaitTimeout`] at the deadline, and with
    /// [`Error::InvalidInput`] when the download does not exist and
    /// `create_if_missing` is off. A rate-limited poll waits the server's
    /// `Retry-After` (within the deadline) instead of failing; other errors
    /// end the wait.
    pub async fn wait_until_ready(
        &self,
        video_id: &str,
        kind: DownloadType,
        mut options: WaitOptions,
    ) -> Result<Download, Error> {
        let started = Instant::now();
        let deadline = started + options.timeout;
        let mut interval = options.initial_interval;
        let mut created = false;
        let mut last_percent = None;
        loop {
            let mut pause = interval;
            match self.list_downloads(video_id).await {
                Ok(downloads) => match downloads.get(kind) {
                    Some(download) => {
                        last_percent = Some(download.percent_complete);
                        if let Some(progress) = options.progress.as_mut() {
                            progress(download);
                        }
                        match download.status {
                            DownloadStatus::Ready => return Ok(download.clone()),
                            DownloadStatus::Error => {
                                return Err(Error::DownloadFailed {
                                    video_id: video_id.to_owned(),
                                    kind,
                                    percent_complete: download.percent_complete,
                                });
                            }
                            // `inprogress`, or a status this version does not
                            // know (Cloudflare adds values without notice):
                            // not ready yet, keep waiting.
                            DownloadStatus::Inprogress | DownloadStatus::Unknown(_) => {}
                        }
                    }
                    None if options.create_if_missing && !created => {
                        tracing::debug!(%kind, "download missing; creating it");
                        self.create_download(video_id, kind).await?;
                        created = true;
                        continue;
                    }
                    None => {
                        return Err(Error::InvalidInput {
                            what: "download",
                            reason: format!(
                                "video {video_id} has no {kind} download{}",
                                if created {
                                    " even after creating it"
                                } else {
                                    "; create it first or set create_if_missing"
                                }
                            ),
                        });
                    }
                },
                Err(e) => match e.retry_after() {
                    Some(wait) => pause = wait,
                    None => return Err(e),
                },
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::WaitTimeout {
                    video_id: video_id.to_owned(),
                    kind,
                    waited: now - started,
                    last_percent,
                });
            }
            // Never sleep past the deadline: poll once more at it.
            tokio::time::sleep_until((now + pause).min(deadline)).await;
            interval = (interval * 2).min(options.max_interval);
        }
    }
}
