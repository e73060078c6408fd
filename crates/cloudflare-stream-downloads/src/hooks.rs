//! The seam between progenitor's generated `Client` and the hand-written layer.
//!
//! The generator is configured (`xtask/src/generate.rs`) with
//! `HooksMode::Expected` and [`Inner`] as the client's inner type, so every
//! generated call passes through the `ClientHooks` implementation below:
//! `pre` sets the credentials, `exec` sends with retries, and both record
//! what the hand-written layer needs to build a precise [`Error`](crate::Error)
//! (progenitor's own error loses the HTTP status of a non-JSON 4xx body).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::LengthLimitError;
use progenitor_client::{ClientHooks, ClientInfo, Error, OperationInfo};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::gate::RequestGate;
use crate::generated::Client;
use crate::retry::{Decision, RetryPolicy};

/// Per-call state carried by the generated `Client`. The hand-written
/// [`Client`](crate::Client) makes a fresh generated client (cheap: an `Arc`
/// and a `reqwest::Client` handle) for every call, so this record belongs to
/// exactly one call.
#[derive(Clone, Default)]
pub struct Inner {
    /// Credential headers, already marked sensitive.
    pub(crate) auth: Arc<HeaderMap>,
    /// Retry policy of this call.
    pub(crate) retry: RetryPolicy,
    /// What happened on the wire.
    pub(crate) record: Arc<Mutex<CallRecord>>,
    /// Largest answer body read (see [`ClientBuilder::max_response_bytes`](crate::ClientBuilder::max_response_bytes)).
    pub(crate) max_body: u64,
    /// Every attempt waits on it and reports its answer to it.
    pub(crate) gate: Option<Arc<dyn RequestGate>>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("auth", &format_args!("{} header(s), ***", self.auth.len()))
            .field("retry", &self.retry)
            .field("max_body", &self.max_body)
            .finish()
    }
}

/// What the hooks saw during one call.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallRecord {
    /// Requests sent.
    pub attempts: u32,
    /// Status of the last answer.
    pub status: Option<StatusCode>,
    /// The wait the last answer asked for (`retry-after-ms`/`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The last failure was a timeout.
    pub timed_out: bool,
    /// `Content-Type` of the last answer.
    pub content_type: Option<String>,
}

impl Inner {
    pub(crate) fn new(
        auth: Arc<HeaderMap>,
        retry: RetryPolicy,
        max_body: u64,
        gate: Option<Arc<dyn RequestGate>>,
    ) -> Self {
        Self {
            auth,
            retry,
            record: Arc::default(),
            max_body,
            gate,
        }
    }

    pub(crate) fn record(&self) -> CallRecord {
        self.record.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut CallRecord)) {
        if let Ok(mut r) = self.record.lock() {
            f(&mut r);
        }
    }
}

impl ClientHooks<Inner> for Client {
    /// Adds the credentials. Also removes the `api-version` header that
    /// progenitor adds from `info.version` ("4.0.0"): Cloudflare versions its
    /// API in the URL (`/client/v4`) and defines no such header, and we send
    /// only headers the API defines.
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), Error<E>> {
        let headers = request.headers_mut();
        headers.remove("api-version");
        for (name, value) in self.inner().auth.iter() {
            headers.insert(name.clone(), value.clone());
        }
        Ok(())
    }

    /// Sends the request, retrying by [`RetryPolicy`] (see `retry.rs`).
    /// Each attempt is a `tracing` event: operation, attempt, status or
    /// error kind, duration. No header is ever logged.
    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let inner = self.inner();
        let policy = inner.retry;
        let mut request = request;
        let mut retries_done = 0;
        loop {
            let spare = request.try_clone();
            let attempt = retries_done + 1;
            if let Some(gate) = &inner.gate {
                gate.admit().await;
            }
            let started = std::time::Instant::now();
            let result = self.client().execute(request).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let decision = match &result {
                Ok(response) => {
                    let status = response.status();
                    let retry_after =
                        crate::retry::retry_after(response.headers(), SystemTime::now());
                    tracing::debug!(
                        operation = info.operation_id,
                        attempt,
                        status = status.as_u16(),
                        elapsed_ms,
                        "cloudflare api request"
                    );
                    if let Some(gate) = &inner.gate {
                        gate.answered(status, retry_after);
                    }
                    inner.update(|r| {
                        r.attempts = attempt;
                        r.status = Some(status);
                        r.retry_after = retry_after;
                        r.timed_out = false;
                        r.content_type = crate::http::content_type(response);
                    });
                    policy.decide_parsed(status, response.headers(), retry_after, retries_done)
                }
                Err(e) => {
                    let transient = e.is_timeout() || e.is_connect() || e.is_request();
                    tracing::debug!(
                        operation = info.operation_id,
                        attempt,
                        error = if e.is_timeout() {
                            "timeout"
                        } else if e.is_connect() {
                            "connect"
                        } else {
                            "transport"
                        },
                        elapsed_ms,
                        "cloudflare api request failed"
                    );
                    inner.update(|r| {
                        r.attempts = attempt;
                        r.status = None;
                        r.retry_after = None;
                        r.timed_out = e.is_timeout();
                        r.content_type = None;
                    });
                    if transient {
                        policy.decide_transport(retries_done)
                    } else {
                        Decision::Stop
                    }
                }
            };
            match (decision, spare) {
                (Decision::RetryAfter(wait), Some(next)) => {
                    tracing::info!(
                        operation = info.operation_id,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "retrying cloudflare api request"
                    );
                    drop(result);
                    tokio::time::sleep(wait).await;
                    request = next;
                    retries_done += 1;
                }
                (Decision::TooLongToWait(wait), _) => {
                    inner.update(|r| r.retry_after = Some(wait));
                    return result.map(|r| capped(r, inner.max_body));
                }
                _ => return result.map(|r| capped(r, inner.max_body)),
            }
        }
    }
}

/// The same response, whose body fails with [`LengthLimitError`] once it
/// passes `max` bytes: progenitor reads whole bodies into memory, and a
/// broken proxy or hostile server must not make it buffer hundreds of MB.
/// Nothing past `max` (plus one network frame) is ever held.
fn capped(response: reqwest::Response, max: u64) -> reqwest::Response {
    // A declared length over the cap fails at the first frame: nothing is
    // buffered at all.
    let declared_over = response.content_length().is_some_and(|n| n > max);
    let response: http::Response<reqwest::Body> = response.into();
    let (parts, body) = response.into_parts();
    let limit = if declared_over {
        0
    } else {
        usize::try_from(max).unwrap_or(usize::MAX)
    };
    let body = reqwest::Body::wrap(http_body_util::Limited::new(body, limit));
    reqwest::Response::from(http::Response::from_parts(parts, body))
}

/// Whether `error` (a failed body read) is the size cap of [`capped`].
pub(crate) fn is_over_cap(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}
