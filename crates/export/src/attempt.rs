//! What a failed step does: every error of the client classified (wait
//! out a 429, try a transient failure again, fail the file, stop the run),
//! and the retry loop of an API call. Shared by the steps (selection,
//! driver, transfer).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cloudflare_stream_downloads::Error;

use crate::error::ExportError;
use crate::report::Progress;
use crate::run::Run;

/// How many times a step that failed for a transient reason (a 5xx, a cut
/// connection, a timeout, after the client's own retries) is tried again
/// before the file is recorded as failed.
pub(crate) const STEP_ATTEMPTS: u32 = 3;

/// Transport failures in a row (no request succeeding in between) after
/// which the API is taken as unreachable and the run stops (exit 3).
const UNREACHABLE_AFTER: u32 = 12;

/// How a failed step goes on.
#[derive(Debug)]
pub(crate) enum Class {
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
pub(crate) const NOT_READY: &str = "not ready to stream";
/// Why a file fails when the API does not know its video (404).
pub(crate) const NOT_FOUND: &str = "video not found (deleted?)";

/// Which request a step made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Api,
    File,
}

pub(crate) fn classify(error: &Error, step: Step) -> Class {
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

pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << attempt.min(6))
}

impl Run {
    /// An API call, tried again by [`on_error`](Self::on_error):
    /// `Ok(Err(reason))` when the files it was for fail.
    pub(crate) async fn api_call<T, F, Fut>(
        &self,
        call: F,
    ) -> Result<Result<T, String>, ExportError>
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
    pub(crate) async fn on_error(
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
}
