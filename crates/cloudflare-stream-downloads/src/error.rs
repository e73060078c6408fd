//! `Error`: everything a call can fail with, without dropping information.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;

use crate::types::{DownloadType, Message};

/// Which request failed: method and URL path. Never holds a credential
/// (ids in the path are not secrets; query strings are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// URL path, e.g. `/client/v4/accounts/…/stream/…/downloads`.
    pub path: String,
}

impl fmt::Display for RequestSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Every way a call of this crate can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with a failure envelope (`success: false`), at any
    /// HTTP status, including 200. Every Cloudflare code is kept.
    #[error("{request}: HTTP {status}: {}", join_messages(errors))]
    Api {
        /// The request that failed.
        request: RequestSummary,
        /// The HTTP status (200 when the API said `success: false` at 200).
        status: StatusCode,
        /// `errors` of the envelope, in order.
        errors: Vec<Message>,
        /// `messages` of the envelope, in order.
        messages: Vec<Message>,
    },

    /// HTTP 429 after the retries were used up, or with a `Retry-After`
    /// too long to wait inside one call (a rate-limit lockout lasts minutes).
    #[error(
        "{request}: HTTP 429 rate limited after {attempts} attempt(s){}{}",
        retry_after.map(|d| format!("; retry after {} s", d.as_secs_f64())).unwrap_or_default(),
        if errors.is_empty() { String::new() } else { format!(": {}", join_messages(errors)) }
    )]
    RateLimited {
        /// The request that failed.
        request: RequestSummary,
        /// How long the server asked to wait, when it said.
        retry_after: Option<Duration>,
        /// How many requests were sent.
        attempts: u32,
        /// `errors` of the envelope, when the 429 had one.
        errors: Vec<Message>,
    },

    /// An answer that is not the API's envelope: an HTML error page, an
    /// empty body, truncated JSON, an unknown enum value. The status is kept.
    #[error(
        "{request}: HTTP {status}: unexpected response ({}): {body_snippet:?}",
        content_type.as_deref().unwrap_or("no content type")
    )]
    UnexpectedResponse {
        /// The request that failed.
        request: RequestSummary,
        /// The HTTP status of the answer.
        status: StatusCode,
        /// Its `Content-Type`, if any.
        content_type: Option<String>,
        /// The start of the body (at most 512 bytes, lossily decoded), or
        /// why it could not be decoded.
        body_snippet: String,
    },

    /// No answer within the request timeout (after the retries).
    #[error("{request}: timed out after {attempts} attempt(s)")]
    Timeout {
        /// The request that failed.
        request: RequestSummary,
        /// How many requests were sent.
        attempts: u32,
    },

    /// The connection failed or broke (after the retries).
    #[error("{request}: connection failed after {attempts} attempt(s): {source}")]
    Connection {
        /// The request that failed.
        request: RequestSummary,
        /// How many requests were sent.
        attempts: u32,
        /// The underlying error (its message holds no credentials).
        #[source]
        source: reqwest::Error,
    },

    /// An argument was refused before any request was sent.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was wrong, e.g. `video id`.
        what: &'static str,
        /// Why.
        reason: String,
    },

    /// The client could not be configured (missing credentials, a base URL
    /// that would send them in clear text, …).
    #[error("configuration: {0}")]
    Config(String),

    /// The download finished in status `error`.
    #[error(
        "the {kind} download of video {video_id} failed (status `error` at {percent_complete}%)"
    )]
    DownloadFailed {
        /// The video.
        video_id: String,
        /// Which download.
        kind: DownloadType,
        /// Its last reported progress.
        percent_complete: f64,
    },

    /// `wait_until_ready` reached its deadline.
    #[error(
        "the {kind} download of video {video_id} was not ready after {} s (last progress {}%)",
        waited.as_secs(),
        last_percent.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
    )]
    WaitTimeout {
        /// The video.
        video_id: String,
        /// Which download.
        kind: DownloadType,
        /// How long it waited.
        waited: Duration,
        /// The last `percentComplete` seen, if any.
        last_percent: Option<f64>,
    },

    /// The download host's answer was cut short or did not match its
    /// `Content-Length`/`Content-Range`.
    #[error("{request}: incomplete file: {reason}")]
    IncompleteFile {
        /// The file request.
        request: RequestSummary,
        /// What did not match.
        reason: String,
    },

    /// Another fetch is writing the same file: it holds the lock on
    /// `<path>.part`. Nothing was written.
    #[error(
        "{}: another fetch is writing this file ({holder}); refusing to write it at the same time",
        path.display()
    )]
    FileBusy {
        /// The `.part` file that is locked.
        path: PathBuf,
        /// Who holds it, as far as its sidecar says (e.g. `pid 1234`).
        holder: String,
    },

    /// The destination's filesystem has not enough free space for the file.
    #[error(
        "{}: the file needs {needed} more bytes but its filesystem has {available} bytes free",
        path.display()
    )]
    NoSpace {
        /// The destination.
        path: PathBuf,
        /// Bytes still to write.
        needed: u64,
        /// Bytes free for this user.
        available: u64,
    },

    /// The download host refused a signed URL twice, with a fresh token
    /// each time: not something another attempt fixes.
    #[error(
        "{request}: HTTP {status}: the download host refused the signed URL of video {video_id} \
         twice, each time with a fresh token ({}); likely causes: the signing key was deleted \
         (that revokes every token signed with it), the key belongs to another account, or \
         this machine's clock is off (a token is valid from its issue to its `exp`)",
        key_id.as_ref().map_or_else(|| "tokens from the API".to_owned(), |k| format!("signed locally with key {k}"))
    )]
    SignedUrlRefused {
        /// The file request (the unsigned URL's path: never the token).
        request: RequestSummary,
        /// 401 or 403.
        status: StatusCode,
        /// The video.
        video_id: String,
        /// The signing key's id when the tokens were signed locally.
        key_id: Option<String>,
    },

    /// A local file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn join_messages(messages: &[Message]) -> String {
    if messages.is_empty() {
        return "no error message in the envelope".into();
    }
    messages
        .iter()
        .map(|m| format!("{}: {}", m.code, m.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// The HTTP status of the answer that caused the error, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. }
            | Error::UnexpectedResponse { status, .. }
            | Error::SignedUrlRefused { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            _ => None,
        }
    }

    /// Every Cloudflare error code carried by the error, in order.
    pub fn codes(&self) -> Vec<i64> {
        match self {
            Error::Api { errors, .. } | Error::RateLimited { errors, .. } => {
                errors.iter().map(|m| m.code).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Whether sending the same request again later may succeed: the
    /// classes the retry policy retries (timeouts, connection failures, 408,
    /// 409, 429, 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Connection { .. } | Error::RateLimited { .. } => true,
            Error::Api { status, .. } | Error::UnexpectedResponse { status, .. } => {
                crate::retry::is_retryable_status(*status)
            }
            _ => false,
        }
    }

    /// How long the server asked to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True for HTTP 404 (an unknown video or account).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}
