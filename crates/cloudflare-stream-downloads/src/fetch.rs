//! `fetch`: stream a finished download's file to disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use std::io::SeekFrom;

use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

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
    suffixed(path, ".part")
}

/// `<path>.part.source`: where the `.part` came from (see [`PartSource`]).
pub fn source_path(path: &Path) -> PathBuf {
    suffixed(path, ".part.source")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// What is recorded beside a `.part` so that it is resumed only from the
/// same file: the URL (without its query) and the server's validator.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartSource {
    /// Scheme, host and path of the download URL.
    pub url: String,
    /// The server's `ETag`, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The server's `Last-Modified`, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The process writing the `.part` (to name it to a second writer).
    #[serde(default)]
    pub pid: u32,
}

impl PartSource {
    /// The `If-Range` value: the strong `ETag`, else `Last-Modified`.
    fn validator(&self) -> Option<&str> {
        self.etag
            .as_deref()
            .filter(|e| !e.starts_with("W/"))
            .or(self.last_modified.as_deref())
    }
}

/// How many bytes before the resume point are read again and compared.
pub const RESUME_OVERLAP: u64 = 64 * 1024;

/// One attempt's failure: may another attempt (resuming) help?
struct AttemptError {
    error: Error,
    retryable: bool,
}

/// The locked `.part` of one fetch.
struct Part {
    file: tokio::fs::File,
    path: PathBuf,
    source_path: PathBuf,
    source: PartSource,
    /// Bytes kept from before this call (set by the first attempt).
    resumed_from: Option<u64>,
}

/// Check, before anything is created or waited for, that `path` can be
/// written: its directory exists and takes a new file, `path` is not a
/// directory, and no other fetch is writing it (its `.part` is not locked).
/// Creates an empty `<path>.part` (or leaves an existing one as it is).
pub fn check_destination(path: &Path) -> Result<(), Error> {
    if path.is_dir() {
        return Err(Error::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory (give a file name, or the directory ending in `/`)",
            ),
        });
    }
    let part = part_path(path);
    let existed = part.exists();
    let file = open_part(&part)?;
    let locked = lock(&file, path);
    // Only a check: leave nothing behind, but only while holding the lock.
    // Without it, the `.part` may be another fetch's that appeared since
    // `exists()` (its writer took the lock in between): removing it would
    // pull the file from under that writer.
    if !existed && locked.is_ok() {
        let _ = std::fs::remove_file(&part);
    }
    locked
}

fn open_part(part: &Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(part)
        .map_err(|source| Error::Io {
            path: part.to_owned(),
            source,
        })
}

/// Take the exclusive lock on an open `.part`, or name who holds it.
/// How long a refused writer waits for the holder's pid: 25 × 10 ms.
const HOLDER_POLLS: u32 = 25;
const HOLDER_POLL: Duration = Duration::from_millis(10);

fn lock(file: &std::fs::File, path: &Path) -> Result<(), Error> {
    let part = part_path(path);
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => {
            // The holder writes its pid into the sidecar right after it
            // takes the lock: a holder that has just taken it may not have
            // yet, so its pid is waited for briefly (this is the error path
            // only; a holder without a pid is still reported).
            let mut holder = None;
            for _ in 0..HOLDER_POLLS {
                holder = read_source(&source_path(path)).filter(|s| s.pid != 0);
                if holder.is_some() {
                    break;
                }
                std::thread::sleep(HOLDER_POLL);
            }
            let holder = holder.map_or_else(
                || "another process or task".to_owned(),
                |s| format!("pid {}", s.pid),
            );
            Err(Error::FileBusy { path: part, holder })
        }
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io { path: part, source }),
    }
}

fn read_source(path: &Path) -> Option<PartSource> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn url_key(url: &reqwest::Url) -> String {
    let mut key = url.clone();
    key.set_query(None);
    key.set_fragment(None);
    key.to_string()
}

impl Client {
    /// Stream a `ready` download's file to `path`.
    ///
    /// The file is written to `<path>.part`, synced, checked against the
    /// expected size, then renamed to `path`, so `path` never holds a
    /// partial file and no `Ok` is ever returned for a file of the wrong
    /// size. **One writer per file**: the `.part` is locked for the whole
    /// transfer; a second fetch to the same path fails at once with
    /// [`Error::FileBusy`] naming the other writer. The request goes to the
    /// download host with **no Cloudflare credentials** on a separate HTTP
    /// client with connect and read timeouts but no total timeout.
    ///
    /// **Resuming**: `<path>.part.source` records the URL and the server's
    /// validator (`ETag` or `Last-Modified`). A `.part` is resumed only from
    /// the same URL, with `If-Range`, and only after the last
    /// [`RESUME_OVERLAP`] bytes before the resume point, read again from the
    /// server, match the `.part` (a power cut can leave garbage in unsynced
    /// pages); on any mismatch, a `.part` from another file, or one longer
    /// than the file, it starts over; a server that sends neither `ETag` nor
    /// `Last-Modified` is never resumed from (nothing proves the bytes are
    /// the same file). A cut connection is resumed the same way up to the
    /// client's retry count. As soon as the size is known,
    /// the filesystem must have room for it ([`Error::NoSpace`]). Memory use
    /// does not depend on the file size (one 1 MiB write buffer).
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

    /// [`fetch`](Self::fetch) from a download URL, with [`Signing::Auto`]
    /// for the video named by the URL's first path segment.
    pub async fn fetch_url(
        &self,
        url: &str,
        path: impl AsRef<Path>,
        progress: impl FnMut(u64, Option<u64>) + Send,
    ) -> Result<FetchReport, Error> {
        let video_id = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.path_segments()?.next().map(str::to_owned))
            .filter(|id| crate::ids::check_id("video id", id).is_ok());
        let signing = if video_id.is_some() {
            Signing::Auto
        } else {
            Signing::Never
        };
        self.fetch_video_url(
            video_id.as_deref().unwrap_or(""),
            url,
            signing,
            path,
            progress,
        )
        .await
    }

    /// [`fetch`](Self::fetch) of `video_id`'s download at `url` (the
    /// unsigned URL the API returned), signing it as `signing` says.
    ///
    /// **Signed URLs**: when the video requires them ([`Signing::Required`],
    /// or [`Signing::Auto`] and the download host answered 401 or 403), a
    /// fresh token ([`Client::token`]: local with a signing key, else one
    /// API request) replaces the URL's first path segment just before each
    /// attempt, so a resumed transfer gets a new one. A signed URL the host
    /// refuses is made once more, then the fetch fails with
    /// [`Error::SignedUrlRefused`]. The signed URL goes to the download
    /// host only and appears in no error, log line or file: the `.part`'s
    /// sidecar keeps the unsigned URL, so a transfer resumed with another
    /// token is still the same file.
    pub async fn fetch_video_url(
        &self,
        video_id: &str,
        url: &str,
        signing: Signing,
        path: impl AsRef<Path>,
        mut progress: impl FnMut(u64, Option<u64>) + Send,
    ) -> Result<FetchReport, Error> {
        let path = path.as_ref();
        let (url, request) = file_request(video_id, url, signing)?;
        let started = Instant::now();
        let mut part = self.open_locked_part(&url, path).await?;
        let mut retries_done = 0;
        let mut signed = signing == Signing::Required;
        let mut refusals = 0u32;
        loop {
            let get_url = if signed {
                let token = match self.token(video_id).await {
                    Ok(token) => token,
                    Err(e) => {
                        drop_if_empty(&part).await;
                        return Err(e);
                    }
                };
                crate::signing::signed_url(&url, &token)?
            } else {
                url.clone()
            };
            let attempt = self
                .fetch_attempt(
                    &get_url,
                    &request,
                    &mut part,
                    retries_done + 1,
                    &mut progress,
                )
                .await;
            drop(get_url);
            if let Err(AttemptError { error, .. }) = &attempt
                && let Some(status) = error
                    .status()
                    .filter(|s| matches!(*s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN))
                && signing != Signing::Never
            {
                if !signed {
                    tracing::info!(
                        status = status.as_u16(),
                        "the download host wants a signed URL; making a token"
                    );
                    signed = true;
                    continue;
                }
                refusals += 1;
                if refusals < 2 {
                    tracing::info!(
                        status = status.as_u16(),
                        "the download host refused the signed URL; making a new token"
                    );
                    continue;
                }
                drop_if_empty(&part).await;
                return Err(Error::SignedUrlRefused {
                    request: request.clone(),
                    status,
                    video_id: video_id.to_owned(),
                    key_id: self.signing_key().map(|k| k.id().to_owned()),
                });
            }
            match attempt {
                Ok(bytes) => {
                    // The lock is held until the file is in place.
                    tokio::fs::rename(&part.path, path)
                        .await
                        .map_err(|source| Error::Io {
                            path: path.to_owned(),
                            source,
                        })?;
                    sync_parent(path).await;
                    let _ = tokio::fs::remove_file(&part.source_path).await;
                    let resumed_from = part.resumed_from.unwrap_or(0);
                    drop(part);
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
                        drop_if_empty(&part).await;
                        return Err(error);
                    }
                    part.resumed_from.get_or_insert(0);
                    let wait = self.retry.backoff_with_jitter(retries_done);
                    tracing::info!(error = %error, wait_ms = wait.as_millis() as u64, "resuming file download");
                    tokio::time::sleep(wait).await;
                    retries_done += 1;
                }
            }
        }
    }

    /// Open and lock `<path>.part`; keep what it holds only when its
    /// recorded source is this URL with a validator.
    async fn open_locked_part(&self, url: &reqwest::Url, path: &Path) -> Result<Part, Error> {
        let part_path = part_path(path);
        let source_path = source_path(path);
        let file = open_part(&part_path)?;
        lock(&file, path)?;
        let io = |source| Error::Io {
            path: part_path.clone(),
            source,
        };
        let previous = read_source(&source_path);
        let len = file.metadata().map_err(io)?.len();
        let same_file = previous
            .as_ref()
            .is_some_and(|p| p.url == url_key(url) && p.validator().is_some());
        let mut source = PartSource {
            url: url_key(url),
            pid: std::process::id(),
            ..PartSource::default()
        };
        if same_file && len > 0 {
            if let Some(p) = previous {
                source.etag = p.etag;
                source.last_modified = p.last_modified;
            }
        } else if len > 0 {
            tracing::info!(path = %part_path.display(), "the .part is not from this URL (or has no validator); starting over");
            file.set_len(0).map_err(io)?;
        }
        write_source(&source_path, &source).map_err(|source| Error::Io {
            path: source_path.clone(),
            source,
        })?;
        Ok(Part {
            file: tokio::fs::File::from_std(file),
            path: part_path,
            source_path,
            source,
            resumed_from: None,
        })
    }

    /// One GET (the `attempt`-th, from 1), resuming from what the `.part`
    /// holds. Returns the final size.
    async fn fetch_attempt(
        &self,
        get_url: &reqwest::Url,
        request: &RequestSummary,
        part: &mut Part,
        attempt: u32,
        progress: FetchProgress<'_>,
    ) -> Result<u64, AttemptError> {
        let io_path = part.path.clone();
        let io = move |source| AttemptError {
            retryable: false,
            error: Error::Io {
                path: io_path.clone(),
                source,
            },
        };
        let have = part.file.metadata().await.map_err(&io)?.len();
        let validator = part.source.validator().map(str::to_owned);
        let overlap = match &validator {
            Some(_) => have.min(RESUME_OVERLAP),
            None => 0,
        };
        let from = if validator.is_some() {
            have - overlap
        } else {
            0
        };
        let mut get = self.shared.files.get(get_url.clone());
        if let (true, Some(v)) = (have > 0, &validator) {
            get = get
                .header(RANGE, format!("bytes={from}-"))
                .header(IF_RANGE, v.as_str());
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
        let restart = |why: &str, response: &reqwest::Response| AttemptError {
            retryable: true,
            error: unexpected(request, response, why),
        };
        let (start, total) = match status {
            StatusCode::OK => {
                let len = header_u64(&response, CONTENT_LENGTH);
                (0, len)
            }
            StatusCode::PARTIAL_CONTENT if have > 0 => {
                let Some((start, total)) = content_range(&response) else {
                    return Err(AttemptError {
                        retryable: false,
                        error: unexpected(request, &response, "206 without a valid Content-Range"),
                    });
                };
                if start != from || total.is_some_and(|t| t < have) {
                    forget(part).await.map_err(&io)?;
                    return Err(restart(
                        "206 from another offset or a shorter file; restarting",
                        &response,
                    ));
                }
                (start, total)
            }
            StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
                // The .part is longer than the file, or not a prefix the
                // server can continue: start over.
                forget(part).await.map_err(&io)?;
                return Err(restart("range not satisfiable; restarting", &response));
            }
            _ => {
                let retryable = crate::retry::is_retryable_status(status);
                return Err(AttemptError {
                    retryable,
                    error: Error::UnexpectedResponse {
                        request: request.clone(),
                        status,
                        content_type: crate::http::content_type(&response),
                        body_snippet: crate::http::snippet(
                            &response.bytes().await.unwrap_or_default(),
                        ),
                    },
                });
            }
        };
        // Record where the bytes come from before writing any of them.
        let etag = header_text(&response, ETAG);
        let last_modified = header_text(&response, LAST_MODIFIED);
        if start == 0 || etag.is_some() || last_modified.is_some() {
            part.source.etag = etag;
            part.source.last_modified = last_modified;
        }
        write_source(&part.source_path, &part.source).map_err(|source| AttemptError {
            retryable: false,
            error: Error::Io {
                path: part.source_path.clone(),
                source,
            },
        })?;
        if let Some(total) = total {
            let needed = total.saturating_sub(if start == 0 { 0 } else { have });
            check_space(&part.path, needed).map_err(|error| AttemptError {
                retryable: false,
                error,
            })?;
        }

        // Position the file: from 0 (a whole file), or at `have` after the
        // overlap has been compared with what the .part holds.
        let mut pending: Option<bytes::Bytes> = None;
        let mut written = if start == 0 {
            part.file.set_len(0).await.map_err(&io)?;
            part.file.seek(SeekFrom::Start(0)).await.map_err(&io)?;
            0
        } else {
            let mut theirs = Vec::with_capacity(overlap as usize);
            while (theirs.len() as u64) < overlap {
                let Some(chunk) = response.chunk().await.map_err(transport)? else {
                    // Cut before the overlap was read: try again, keeping
                    // the .part.
                    return Err(AttemptError {
                        retryable: true,
                        error: Error::IncompleteFile {
                            request: request.clone(),
                            reason: "the answer ended before the resume point".into(),
                        },
                    });
                };
                let take = (overlap as usize - theirs.len()).min(chunk.len());
                theirs.extend_from_slice(&chunk[..take]);
                if take < chunk.len() {
                    pending = Some(chunk.slice(take..));
                }
            }
            let mut ours = vec![0u8; overlap as usize];
            part.file.seek(SeekFrom::Start(from)).await.map_err(&io)?;
            part.file.read_exact(&mut ours).await.map_err(&io)?;
            if theirs != ours {
                tracing::info!(path = %part.path.display(), at = from, "the .part differs from the server's bytes before the resume point; starting over");
                forget(part).await.map_err(&io)?;
                return Err(restart(
                    "the .part does not match the file; restarting",
                    &response,
                ));
            }
            part.file.seek(SeekFrom::Start(have)).await.map_err(&io)?;
            have
        };
        part.resumed_from.get_or_insert(written);
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, &mut part.file);
        // The rest of the chunk that held the end of the overlap.
        if let Some(rest) = pending {
            out.write_all(&rest).await.map_err(&io)?;
            written += rest.len() as u64;
        }
        progress(written, total);
        let body_result = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    out.write_all(&chunk).await.map_err(&io)?;
                    written += chunk.len() as u64;
                    progress(written, total);
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        // Keep what arrived, for the next attempt to resume from.
        out.flush().await.map_err(&io)?;
        drop(out);
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
        part.file.sync_all().await.map_err(&io)?;
        // After the last sync, before the rename: the file on disk must
        // have exactly the expected size.
        let on_disk = part.file.metadata().await.map_err(&io)?.len();
        let expected = total.unwrap_or(written);
        if on_disk != expected {
            forget(part).await.map_err(&io)?;
            return Err(AttemptError {
                retryable: true,
                error: Error::IncompleteFile {
                    request: request.clone(),
                    reason: format!("the file on disk holds {on_disk} bytes, not {expected}"),
                },
            });
        }
        Ok(on_disk)
    }
}

/// Whether a download URL needs a signed token (videos with
/// `requireSignedURLs`); see [`Client::fetch_video_url`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signing {
    /// Not known: fetch unsigned; a 401 or 403 from the download host means
    /// the video requires signed URLs, and the fetch goes on with a token.
    /// (Costs one refused request per file of a signed video; when the
    /// listing or [`Client::video`] says so, use `Required`.)
    #[default]
    Auto,
    /// The video requires signed URLs: a token from the first request.
    Required,
    /// Never sign: a 401 or 403 is an error.
    Never,
}

/// A failed fetch that kept nothing leaves no empty `.part` behind.
async fn drop_if_empty(part: &Part) {
    if part.file.metadata().await.is_ok_and(|m| m.len() == 0) {
        let _ = tokio::fs::remove_file(&part.path).await;
        let _ = tokio::fs::remove_file(&part.source_path).await;
    }
}

/// Start the `.part` over: empty, and no validator to resume with.
async fn forget(part: &mut Part) -> std::io::Result<()> {
    part.file.set_len(0).await?;
    part.source.etag = None;
    part.source.last_modified = None;
    write_source(&part.source_path, &part.source)
}

/// Write the sidecar atomically (temporary file, rename).
fn write_source(path: &Path, source: &PartSource) -> std::io::Result<()> {
    let tmp = suffixed(path, ".tmp");
    std::fs::write(&tmp, serde_json::to_vec(source).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}

/// Room for `needed` more bytes where `part` lives?
fn check_space(part: &Path, needed: u64) -> Result<(), Error> {
    let dir = part
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match fs4::available_space(dir) {
        Ok(available) if available < needed => Err(Error::NoSpace {
            path: part.to_owned(),
            needed,
            available,
        }),
        // Unknown free space (some filesystems cannot tell): go on.
        _ => Ok(()),
    }
}

fn header_text(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn header_u64(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<u64> {
    header_text(response, name).and_then(|v| v.trim().parse().ok())
}

fn unexpected(request: &RequestSummary, response: &reqwest::Response, why: &str) -> Error {
    Error::UnexpectedResponse {
        request: request.clone(),
        status: response.status(),
        content_type: crate::http::content_type(response),
        body_snippet: why.to_owned(),
    }
}

/// `Content-Range: bytes START-END/TOTAL` -> (START, TOTAL if known).
fn content_range(response: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (start, _) = span.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// The checked URL of a file request and its summary for errors (the
/// video id checked too when the URL may be signed for it).
pub(crate) fn file_request(
    video_id: &str,
    url: &str,
    signing: Signing,
) -> Result<(reqwest::Url, RequestSummary), Error> {
    let url = check_file_url(url)?;
    if signing != Signing::Never {
        crate::ids::check_id("video id", video_id)?;
    }
    let request = RequestSummary {
        method: "GET".into(),
        path: url.path().to_owned(),
    };
    Ok((url, request))
}

/// Download URLs must be https (or http on loopback, for local servers).
fn check_file_url(url: &str) -> Result<reqwest::Url, Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::InvalidInput {
        what: "download url",
        reason: format!("{url:?}: {e}"),
    })?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if crate::http::is_loopback(&parsed) => Ok(parsed),
        other => Err(Error::InvalidInput {
            what: "download url",
            reason: format!("scheme {other:?} refused; https only (http for loopback hosts)"),
        }),
    }
}

/// Make the rename durable (best effort: not every platform can sync a directory).
async fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = tokio::fs::File::open(dir).await
    {
        let _ = dir.sync_all().await;
    }
}

/// An open answer of the download host (see [`Client::open_video_url`]):
/// the body is read chunk by chunk, so memory does not depend on the file's
/// size. Its `Debug` shows no URL (a signed one carries a token).
pub struct FileStream {
    response: reqwest::Response,
    request: RequestSummary,
    /// Offset in the file of the body's first byte (`from` of the call, or
    /// 0 when the host sent the whole file instead).
    pub start: u64,
    /// The whole file's size, when the host said it (`Content-Length` of a
    /// 200, the total of a 206's `Content-Range`).
    pub total: Option<u64>,
    /// The host's `ETag`, if any.
    pub etag: Option<String>,
    /// The host's `Last-Modified`, if any.
    pub last_modified: Option<String>,
}

impl std::fmt::Debug for FileStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStream")
            .field("request", &self.request)
            .field("start", &self.start)
            .field("total", &self.total)
            .field("etag", &self.etag)
            .field("last_modified", &self.last_modified)
            .finish_non_exhaustive()
    }
}

impl FileStream {
    /// The next piece of the body; `None` at its end. A cut connection or
    /// a read timeout is [`Error::Connection`] or [`Error::Timeout`].
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, Error> {
        self.response
            .chunk()
            .await
            .map_err(|e| transport_error(&self.request, 1, e))
    }

    /// The value to resume this file with (`If-Range`): the strong `ETag`,
    /// else `Last-Modified`.
    pub fn validator(&self) -> Option<&str> {
        self.etag
            .as_deref()
            .filter(|e| !e.starts_with("W/"))
            .or(self.last_modified.as_deref())
    }
}

pub(crate) fn transport_error(request: &RequestSummary, attempts: u32, e: reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::Timeout {
            request: request.clone(),
            attempts,
        }
    } else {
        Error::Connection {
            request: request.clone(),
            attempts,
            source: e.without_url(),
        }
    }
}

impl Client {
    /// Opens `video_id`'s download at `url` (the unsigned URL the API
    /// returned) from byte `from`, for a caller that streams the body
    /// somewhere else than a local file (an object store). Signing works as
    /// in [`fetch_video_url`](Self::fetch_video_url): a fresh token per
    /// call, one new token after a refusal, then
    /// [`Error::SignedUrlRefused`].
    ///
    /// With `from > 0` it asks for `Range: bytes=from-`, with `If-Range:
    /// if_range` when given: the answer is a 206 from `from`, or a 200 with
    /// the whole file (`start == 0`) when the file changed; the caller
    /// starts over then. One request, no retry: the caller resumes from
    /// what it kept (its own retry loop). Any other status is
    /// [`Error::UnexpectedResponse`] with a snippet of the body.
    pub async fn open_video_url(
        &self,
        video_id: &str,
        url: &str,
        signing: Signing,
        from: u64,
        if_range: Option<&str>,
    ) -> Result<FileStream, Error> {
        let (url, request) = file_request(video_id, url, signing)?;
        let response = self
            .signed_get(video_id, &url, &request, signing, |mut get| {
                if from > 0 {
                    get = get.header(RANGE, format!("bytes={from}-"));
                    if let Some(v) = if_range {
                        get = get.header(IF_RANGE, v);
                    }
                }
                get
            })
            .await?;
        let status = response.status();
        let (start, total) = match status {
            StatusCode::OK => (0, header_u64(&response, CONTENT_LENGTH)),
            StatusCode::PARTIAL_CONTENT if from > 0 => match content_range(&response) {
                Some((start, total)) if start == from => (start, total),
                _ => {
                    return Err(unexpected(
                        &request,
                        &response,
                        "206 without a Content-Range from the offset asked",
                    ));
                }
            },
            _ => {
                return Err(Error::UnexpectedResponse {
                    request,
                    status,
                    content_type: crate::http::content_type(&response),
                    body_snippet: crate::http::snippet(&response.bytes().await.unwrap_or_default()),
                });
            }
        };
        Ok(FileStream {
            etag: header_text(&response, ETAG),
            last_modified: header_text(&response, LAST_MODIFIED),
            response,
            request,
            start,
            total,
        })
    }
}

impl Client {
    /// Asks the download host whether `video_id`'s file at `url` is there,
    /// without its body: a `GET` of its first byte (`Range: bytes=0-0`),
    /// signed as [`fetch_video_url`](Self::fetch_video_url) signs. No API
    /// request (but a token from the API for a signed video without a
    /// signing key).
    ///
    /// `Ok(Some(size))` when the file is served (its size from
    /// `Content-Range`, 0 when the host did not say), `Ok(None)` when the
    /// host answers 404 or 410 (not generated, or not yet ready), and any
    /// other answer is an error with its status: a 429 is
    /// [`Error::RateLimited`] with the host's `Retry-After` (the caller
    /// backs off as long), anything else [`Error::UnexpectedResponse`].
    /// The probe is sent once (no retry) and has no time limit of its own
    /// beyond the file client's timeouts: a caller that wants one wraps it
    /// in `tokio::time::timeout`.
    pub async fn probe_video_url(
        &self,
        video_id: &str,
        url: &str,
        signing: Signing,
    ) -> Result<Option<u64>, Error> {
        let (url, request) = file_request(video_id, url, signing)?;
        let response = self
            .signed_get(video_id, &url, &request, signing, |get| {
                get.header(RANGE, "bytes=0-0")
            })
            .await?;
        let status = response.status();
        match status {
            StatusCode::PARTIAL_CONTENT => Ok(Some(
                content_range(&response).and_then(|(_, t)| t).unwrap_or(0),
            )),
            StatusCode::OK => Ok(Some(header_u64(&response, CONTENT_LENGTH).unwrap_or(0))),
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            StatusCode::TOO_MANY_REQUESTS => Err(Error::RateLimited {
                retry_after: crate::retry::retry_after(
                    response.headers(),
                    std::time::SystemTime::now(),
                ),
                request,
                attempts: 1,
                errors: Vec::new(),
            }),
            _ => Err(Error::UnexpectedResponse {
                request,
                status,
                content_type: crate::http::content_type(&response),
                body_snippet: crate::http::snippet(&response.bytes().await.unwrap_or_default()),
            }),
        }
    }

    /// A `GET` of a file URL (`headers` adds to it), signed as `signing`
    /// says: a fresh token when the video needs one (from the start with
    /// `Required`, after a 401 or 403 with `Auto`), one new token after a
    /// refusal, then [`Error::SignedUrlRefused`]. Returns the answer with
    /// any other status.
    pub(crate) async fn signed_get(
        &self,
        video_id: &str,
        url: &reqwest::Url,
        request: &RequestSummary,
        signing: Signing,
        headers: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let mut signed = signing == Signing::Required;
        let mut refusals = 0u32;
        loop {
            let get_url = if signed {
                crate::signing::signed_url(url, &self.token(video_id).await?)?
            } else {
                url.clone()
            };
            let response = headers(self.shared.files.get(get_url))
                .send()
                .await
                .map_err(|e| transport_error(request, 1, e))?;
            let status = response.status();
            if !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                || signing == Signing::Never
            {
                return Ok(response);
            }
            if signed {
                refusals += 1;
            }
            if refusals >= 2 {
                return Err(Error::SignedUrlRefused {
                    request: request.clone(),
                    status,
                    video_id: video_id.to_owned(),
                    key_id: self.signing_key().map(|k| k.id().to_owned()),
                });
            }
            tracing::info!(
                status = status.as_u16(),
                "the download host wants a (new) signed URL; making a token"
            );
            signed = true;
        }
    }
}
