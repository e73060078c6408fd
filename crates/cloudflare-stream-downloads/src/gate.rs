//! [`RequestGate`]: one place every API request of a client passes through.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reqwest::StatusCode;

/// What [`RequestGate::admit`] returns.
pub type Admission<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A gate that every API request (every attempt, retries included) of a
/// [`Client`](crate::Client) passes through, set with
/// [`ClientBuilder::request_gate`](crate::ClientBuilder::request_gate).
///
/// It is how a caller that makes many calls at once keeps them inside a
/// rate limit shared by all of them (Cloudflare allows 1200 requests per 5
/// minutes per user) and counts them: the client waits on
/// [`admit`](Self::admit) before sending, and reports each answer's status
/// to [`answered`](Self::answered), so a 429 seen by one call can pause
/// every other. File downloads from the download host do not pass through
/// it (they are not API requests). The client itself stays free of any
/// rate-limiting dependency; `cfstream-export` implements one with
/// `governor`.
pub trait RequestGate: Send + Sync + fmt::Debug {
    /// Resolves when the next request may be sent.
    fn admit(&self) -> Admission<'_>;

    /// The answer to a request: its status and the wait it asked for
    /// (`Retry-After`), if any.
    fn answered(&self, status: StatusCode, retry_after: Option<Duration>);
}
