//! `fetch`: stream a finished download's file to disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::Client;
use crate::DownloadStatus;
use crate::error::{Error, RequestSummary};
use crate::types::Download;

/// Size of the write buffer between the socket and the file.
const WRITE_BUFFER: usize = 1 << 20;

/// What [`Client::fetch`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchReport {
    /// Where the file now is.
    pub path: PathBuf,
    /// Size of the file.
    pub bytes: u64,
    /// Bytes that were already in `<path>.part` and were not downloaded again.
    pub resumed_from: u64,
    /// Wall time of the whole fetch, retries included.
    pub elapsed: Duration,
}

/// Progress of a fetch: bytes on disk so far, and the total when known.
pub type FetchProgress<'a> = &'a mut (dyn FnMut(u64, Option<u64>) + Send);

/// `<path>.part`.
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// One attempt's failure: may another attempt (resuming) help?
struct AttemptError {
    error: Error,
    retryable: bool,
}

impl Client {
    /// Stream a `ready` download's file to `path`.
    ///
    /// The file is written to `<path>.part`, synced, then renamed to `path`,
    /// so `path` never holds a partial file. The request goes to the
    /// download host with **no Cloudflare credentials** (it needs none) on a
    /// separate HTTP client with connect and read timeouts but no total
    /// timeout. A `.part` left by an earlier attempt is resumed with `Range`
    /// when the server answers 206; a cut connection is resumed the same way
    /// up to the client's retry count. The size is checked against
    /// `Content-Length`/`Content-Range`. Memory use does not depend on the
    /// file size (one 1 MiB write buffer).
    pub async fn fetch(
        &self,
        download: &Download,
        path: impl AsRef<Path>,
        progress: impl FnMut(u64, Option<u64>) + Send,
    ) -> Result<FetchReport, Error> {
        if download.status != DownloadStatus::Ready {
            return Err(Error::InvalidInput {
                what: "download",
                reason: format!("its status is `{}`, not `ready`", download.status),
            });
        }
        let url = download.url.as_deref().ok_or_else(|| Error::InvalidInput {
            what: "download",
            reason: "it has no url".into(),
        })?;
        self.fetch_url(url, path, progress).await
    }

    /// [`fetch`](Self::fetch) from a download URL.
    pub async fn fetch_url(
        &self,
        url: &str,
        path: impl AsRef<Path>,
        mut progress: impl FnMut(u64, Option<u64>) + Send,
    ) -> Result<FetchReport, Error> {
        let path = path.as_ref();
        let url = check_file_url(url)?;
        let request = RequestSummary {
            method: "GET".into(),
            path: url.path().to_owned(),
        };
        let part = part_path(path);
        let started = Instant::now();
        let resumed_from = file_len(&part).await;
        let mut retries_done = 0;
        loop {
            match self
                .fetch_attempt(&url, &request, &part, retries_done + 1, &mut progress)
                .await
            {
                Ok(bytes) => {
                    tokio::fs::rename(&part, path)
                        .await
                        .map_err(|source| Error::Io {
                            path: path.to_owned(),
                            source,
                        })?;
                    sync_parent(path).await;
                    return Ok(FetchReport {
                        path: path.to_owned(),
                        bytes,
                        resumed_from,
                        elapsed: started.elapsed(),
                    });
                }
                Err(AttemptError {
                    mut error,
                    retryable,
                }) => {
                    if !retryable || retries_done >= self.retry.max_retries {
                        if let Error::Timeout { attempts, .. }
                        | Error::Connection { attempts, .. } = &mut error
                        {
                            *attempts = retries_done + 1;
                        }
                        return Err(error);
                    }
                    let wait = self.retry.backoff_with_jitter(retries_done);
                    tracing::info!(error = %error, wait_ms = wait.as_millis() as u64, "resuming file download");
                    tokio::time::sleep(wait).await;
                    retries_done += 1;
                }
            }
        }
    }

    /// One GET (the `attempt`-th, from 1), resuming from what `<path>.part`
    /// holds. Returns the final size.
    async fn fetch_attempt(
        &self,
        url: &reqwest::Url,
        request: &RequestSummary,
        part: &Path,
        attempt: u32,
        progress: FetchProgress<'_>,
    ) -> Result<u64, AttemptError> {
        let have = file_len(part).await;
        let mut get = self.shared.files.get(url.clone());
        if have > 0 {
            get = get.header(RANGE, format!("bytes={have}-"));
        }
        let transport = |e: reqwest::Error| AttemptError {
            retryable: true,
            error: if e.is_timeout() {
                Error::Timeout {
                    request: request.clone(),
                    attempts: attempt,
                }
            } else {
                Error::Connection {
                    request: request.clone(),
                    attempts: attempt,
                    source: e.without_url(),
                }
            },
        };
        let mut response = get.send().await.map_err(transport)?;
        let status = response.status();
        let start = match status {
            StatusCode::OK => 0,
            StatusCode::PARTIAL_CONTENT => {
                content_range_start(&response).ok_or_else(|| AttemptError {
                    retryable: false,
                    error: unexpected(request, &response, "206 without a valid Content-Range"),
                })?
            }
            StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
                // The .part is not a prefix the server can continue: start over.
                remove(part).await;
                return Err(AttemptError {
                    retryable: true,
                    error: unexpected(request, &response, "range not satisfiable; restarting"),
                });
            }
            _ => {
                let retryable = crate::retry::is_retryable_status(status);
                return Err(AttemptError {
                    retryable,
                    error: Error::UnexpectedResponse {
                        request: request.clone(),
                        status,
                        content_type: content_type(&response),
                        body_snippet: crate::client::snippet(
                            &response.bytes().await.unwrap_or_default(),
                        ),
                    },
                });
            }
        };
        if start != 0 && start != have {
            remove(part).await;
            return Err(AttemptError {
                retryable: true,
                error: unexpected(request, &response, "206 from another offset; restarting"),
            });
        }
        let body_len = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let total = body_len.map(|n| n + start);

        let io = |source| AttemptError {
            retryable: false,
            error: Error::Io {
                path: part.to_owned(),
                source,
            },
        };
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(start > 0)
            .truncate(start == 0)
            .open(part)
            .await
            .map_err(io)?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut written = start;
        progress(written, total);
        let body_result = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    out.write_all(&chunk).await.map_err(io)?;
                    written += chunk.len() as u64;
                    progress(written, total);
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        // Keep what arrived, for the next attempt to resume from.
        out.flush().await.map_err(io)?;
        let file = out.into_inner();
        body_result.map_err(transport)?;
        if let Some(total) = total
            && written != total
        {
            return Err(AttemptError {
                retryable: true,
                error: Error::IncompleteFile {
                    request: request.clone(),
                    reason: format!("received {written} of {total} bytes"),
                },
            });
        }
        file.sync_all().await.map_err(io)?;
        Ok(written)
    }
}

fn unexpected(request: &RequestSummary, response: &reqwest::Response, why: &str) -> Error {
    Error::UnexpectedResponse {
        request: request.clone(),
        status: response.status(),
        content_type: content_type(response),
        body_snippet: why.to_owned(),
    }
}

/// The answer's `Content-Type`, if readable.
pub(crate) fn content_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Content-Range: bytes START-END/TOTAL` -> START.
fn content_range_start(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    let (start, _) = range.split_once('-')?;
    start.trim().parse().ok()
}

/// Download URLs must be https (or http on loopback, for local servers).
fn check_file_url(url: &str) -> Result<reqwest::Url, Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::InvalidInput {
        what: "download url",
        reason: format!("{url:?}: {e}"),
    })?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if crate::client::is_loopback(&parsed) => Ok(parsed),
        other => Err(Error::InvalidInput {
            what: "download url",
            reason: format!("scheme {other:?} refused; https only (http for loopback hosts)"),
        }),
    }
}

async fn file_len(path: &Path) -> u64 {
    tokio::fs::metadata(path).await.map_or(0, |m| m.len())
}

async fn remove(path: &Path) {
    let _ = tokio::fs::remove_file(path).await;
}

/// Make the rename durable (best effort: not every platform can sync a directory).
async fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = tokio::fs::File::open(dir).await
    {
        let _ = dir.sync_all().await;
    }
}
