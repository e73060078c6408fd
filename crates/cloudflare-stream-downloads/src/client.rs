//! `Client`: the hand-written API over the generated one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::credentials::{
    Credentials, ENV_ACCOUNT_ID, ENV_API_KEY, ENV_API_TOKEN, ENV_BASE_URL, ENV_EMAIL,
    ENV_USER_SERVICE_KEY,
};
use crate::downloads::Downloads;
use crate::envelope::Envelope;
use crate::error::{Error, RequestSummary};
use crate::gate::RequestGate;
use crate::hooks::{CallRecord, Inner};
use crate::retry::RetryPolicy;
use crate::signing::{SigningKey, TokenCounters};
use crate::types::{DownloadType, FailureResponse, Message};
use crate::{generated, ids};

/// The Cloudflare API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
/// Default total time for one API request (Cloudflare's SDKs use 60 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default read timeout of file downloads (no total timeout: files are big).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on an API answer's body: a page of 1000 videos is a few MB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;
/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("cloudflare-stream-downloads/", env!("CARGO_PKG_VERSION"));

/// A client for the Stream downloads API. Cheap to clone; clones share
/// connections.
///
/// Every call checks its ids before sending anything, sends the credentials
/// only to the API's base URL (never to the download host, and never across
/// a redirect: API redirects are not followed), retries by
/// [`RetryPolicy`], and unwraps Cloudflare's envelope: `success: false` is
/// an [`Error::Api`] whatever the HTTP status.
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    pub(crate) retry: RetryPolicy,
    pub(crate) account_id: Option<String>,
}

pub(crate) struct Shared {
    pub(crate) api: reqwest::Client,
    pub(crate) files: reqwest::Client,
    pub(crate) base_url: String,
    /// The path part of `base_url` (e.g. `/client/v4`), for error messages.
    pub(crate) base_path: String,
    pub(crate) auth: Arc<HeaderMap>,
    pub(crate) credentials: Credentials,
    pub(crate) max_response_bytes: u64,
    pub(crate) gate: Option<Arc<dyn RequestGate>>,
    pub(crate) signing_key: Option<SigningKey>,
    pub(crate) tokens: TokenCounters,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.shared.base_url)
            .field("account_id", &self.account_id)
            .field("credentials", &self.shared.credentials)
            .field("signing_key", &self.shared.signing_key)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Reads an environment variable (or anything that stands for one).
type EnvLookup = Box<dyn Fn(&str) -> Option<String>>;

/// Builds a [`Client`]. Explicit settings beat the environment.
pub struct ClientBuilder {
    credentials: Option<Credentials>,
    base_url: Option<String>,
    account_id: Option<String>,
    request_timeout: Duration,
    connect_timeout: Duration,
    read_timeout: Duration,
    retry: RetryPolicy,
    max_response_bytes: u64,
    gate: Option<Arc<dyn RequestGate>>,
    signing_key: Option<SigningKey>,
    env: Option<EnvLookup>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("credentials", &self.credentials)
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("gate", &self.gate)
            .field("signing_key", &self.signing_key)
            .field("reads_environment", &self.env.is_some())
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            credentials: None,
            base_url: None,
            account_id: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            retry: RetryPolicy::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            gate: None,
            signing_key: None,
            env: None,
        }
    }
}

impl ClientBuilder {
    /// Use these credentials (beats the environment).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Authenticate with an API token (beats the environment).
    pub fn api_token(self, token: impl Into<String>) -> Self {
        self.credentials(Credentials::ApiToken(token.into()))
    }

    /// Use another base URL (beats `CLOUDFLARE_BASE_URL`). `http://` is
    /// accepted only for loopback hosts.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The account the operations act on (beats `CLOUDFLARE_ACCOUNT_ID`).
    pub fn account_id(mut self, id: impl Into<String>) -> Self {
        self.account_id = Some(id.into());
        self
    }

    /// Total time for one API request attempt (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Time to establish a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest pause between two reads of a file download (default 60 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 2).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    /// Pass every API request through `gate` (a shared rate limiter, a
    /// counter): see [`RequestGate`]. Clones of the client share it.
    pub fn request_gate(mut self, gate: Arc<dyn RequestGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Sign download tokens of videos that require signed URLs with this
    /// key, locally, instead of asking the API for each (see
    /// [`Client::token`]). Not read from the environment by
    /// [`from_env`](Self::from_env): load it with [`SigningKey::from_lookup`].
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// Largest API answer body read (default 32 MiB). A larger answer is
    /// an [`Error::UnexpectedResponse`] and is never buffered whole. (File
    /// downloads stream to disk and have no such cap.)
    pub fn max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The whole retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Fill unset values from the process environment: credentials
    /// (`CLOUDFLARE_API_TOKEN`, else `CLOUDFLARE_EMAIL` + `CLOUDFLARE_API_KEY`,
    /// else `CLOUDFLARE_API_USER_SERVICE_KEY`), `CLOUDFLARE_BASE_URL` and
    /// `CLOUDFLARE_ACCOUNT_ID`.
    pub fn from_env(self) -> Self {
        self.from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables with `lookup`.
    pub fn from_lookup(mut self, lookup: impl Fn(&str) -> Option<String> + 'static) -> Self {
        self.env = Some(Box::new(lookup));
        self
    }

    /// Check the settings and build the client.
    pub fn build(self) -> Result<Client, Error> {
        let env = |name: &str| {
            self.env
                .as_ref()
                .and_then(|lookup| lookup(name))
                .filter(|v| !v.is_empty())
        };
        let credentials = match self.credentials {
            Some(c) => c,
            None => match &self.env {
                Some(lookup) => Credentials::from_lookup(lookup)?,
                None => None,
            }
            .ok_or_else(|| {
                Error::Config(format!(
                    "no credentials: set {ENV_API_TOKEN}, or {ENV_EMAIL} and {ENV_API_KEY}, \
                     or {ENV_USER_SERVICE_KEY} (or pass them to the builder)"
                ))
            })?,
        };
        let base_url = self
            .base_url
            .or_else(|| env(ENV_BASE_URL))
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let (base_url, base_path) = check_base_url(&base_url)?;
        let account_id = self.account_id.or_else(|| env(ENV_ACCOUNT_ID));

        let tls = || {
            crate::tls::client_config()
                .map_err(|e| Error::Config(format!("cannot set up TLS: {e}")))
        };
        let api = reqwest::Client::builder()
            .tls_backend_preconfigured(tls()?)
            .user_agent(USER_AGENT)
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            // The API does not redirect; following one would carry the
            // X-Auth-* headers (which reqwest does not strip) to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let files = reqwest::Client::builder()
            .tls_backend_preconfigured(tls()?)
            .user_agent(USER_AGENT)
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let auth = Arc::new(credentials.headers()?);
        Ok(Client {
            shared: Arc::new(Shared {
                api,
                files,
                base_url,
                base_path,
                auth,
                credentials,
                max_response_bytes: self.max_response_bytes,
                gate: self.gate,
                signing_key: self.signing_key,
                tokens: TokenCounters::default(),
            }),
            retry: self.retry,
            account_id,
        })
    }
}

/// Parse the base URL; refuse clear-text HTTP to anything but loopback.
/// Returns the URL without a trailing slash, and its path.
fn check_base_url(url: &str) -> Result<(String, String), Error> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::Config(format!("invalid base URL {url:?}: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if crate::http::is_loopback(&parsed) => {}
        "http" => {
            return Err(Error::Config(format!(
                "refusing base URL {url:?}: plain http would send the credentials in clear \
                 text (http is allowed for loopback hosts only)"
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "invalid base URL {url:?}: scheme {other:?} is not http(s)"
            )));
        }
    }
    if parsed.query().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::Config(format!(
            "invalid base URL {url:?}: no query string or user info allowed"
        )));
    }
    let path = parsed.path().trim_end_matches('/').to_owned();
    Ok((url.trim_end_matches('/').to_owned(), path))
}

pub(crate) type GeneratedResult<T> =
    Result<progenitor_client::ResponseValue<T>, progenitor_client::Error<FailureResponse>>;

impl Client {
    /// A builder with the defaults and nothing read from the environment.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from the environment only (see
    /// [`ClientBuilder::from_env`]).
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::default().from_env().build()
    }

    /// The same client acting on another account.
    pub fn with_account_id(&self, account_id: impl Into<String>) -> Self {
        Self {
            account_id: Some(account_id.into()),
            ..self.clone()
        }
    }

    /// The same client with another retry count, e.g. `with_max_retries(0)`
    /// for one call that must not be retried.
    pub fn with_max_retries(&self, retries: u32) -> Self {
        let mut retry = self.retry;
        retry.max_retries = retries;
        Self {
            retry,
            ..self.clone()
        }
    }

    /// The account the operations act on, if configured.
    pub fn account_id(&self) -> Option<&str> {
        self.account_id.as_deref()
    }

    /// The API base URL.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// Lists the downloads of a video (`GET …/downloads`).
    pub async fn list_downloads(&self, video_id: &str) -> Result<Downloads, Error> {
        let (account, video) = self.ids(video_id)?;
        let request = self.summary("GET", &account, &video, None);
        let call = self.generated();
        let result = call.list_downloads(&account, &video).await;
        self.finish_with_result(&call, request, result).await
    }

    /// Creates the default (MP4) download of a video (`POST …/downloads`).
    pub async fn create_downloads(&self, video_id: &str) -> Result<Downloads, Error> {
        let (account, video) = self.ids(video_id)?;
        let request = self.summary("POST", &account, &video, None);
        let call = self.generated();
        let result = call.create_downloads(&account, &video).await;
        self.finish_with_result(&call, request, result).await
    }

    /// Creates the download of one type (`POST …/downloads/{type}`).
    pub async fn create_download(
        &self,
        video_id: &str,
        kind: DownloadType,
    ) -> Result<Downloads, Error> {
        let (account, video) = self.ids(video_id)?;
        let request = self.summary("POST", &account, &video, Some(kind));
        let call = self.generated();
        let result = call.create_download(&account, &video, kind).await;
        self.finish_with_result(&call, request, result).await
    }

    /// Deletes the downloads of a video (`DELETE …/downloads`).
    pub async fn delete_downloads(&self, video_id: &str) -> Result<(), Error> {
        let (account, video) = self.ids(video_id)?;
        let request = self.summary("DELETE", &account, &video, None);
        let call = self.generated();
        let result = call.delete_downloads(&account, &video).await;
        self.finish(&call, request, result).await.map(drop)
    }

    /// Deletes the download of one type (`DELETE …/downloads/{type}`).
    pub async fn delete_download(&self, video_id: &str, kind: DownloadType) -> Result<(), Error> {
        let (account, video) = self.ids(video_id)?;
        let request = self.summary("DELETE", &account, &video, Some(kind));
        let call = self.generated();
        let result = call.delete_download(&account, &video, kind).await;
        self.finish(&call, request, result).await.map(drop)
    }

    fn ids(
        &self,
        video_id: &str,
    ) -> Result<(crate::types::AccountId, crate::types::VideoId), Error> {
        Ok((self.account()?, ids::video_id(video_id)?))
    }

    /// The configured account id, checked.
    pub(crate) fn account(&self) -> Result<crate::types::AccountId, Error> {
        let account = self.account_id.as_deref().ok_or_else(|| {
            Error::Config(format!(
                "no account id: set {ENV_ACCOUNT_ID} or ClientBuilder::account_id"
            ))
        })?;
        ids::account_id(account)
    }

    fn summary(
        &self,
        method: &str,
        account: &str,
        video: &str,
        kind: Option<DownloadType>,
    ) -> RequestSummary {
        let mut path = format!(
            "{}/accounts/{account}/stream/{video}/downloads",
            self.shared.base_path
        );
        if let Some(kind) = kind {
            path.push('/');
            path.push_str(&kind.to_string());
        }
        RequestSummary {
            method: method.to_owned(),
            path,
        }
    }

    /// A generated client for one call, with its own call record.
    /// What a call on `…/accounts/{account}/stream/{rest}` is, for errors.
    pub(crate) fn account_path(&self, method: &str, rest: &str) -> RequestSummary {
        RequestSummary {
            method: method.to_owned(),
            path: format!(
                "{}/accounts/{}/stream/{rest}",
                self.shared.base_path,
                self.account_id.as_deref().unwrap_or("")
            ),
        }
    }
    pub(crate) fn generated(&self) -> generated::Client {
        generated::Client::new_with_client(
            &self.shared.base_url,
            self.shared.api.clone(),
            Inner::new(
                self.shared.auth.clone(),
                self.retry,
                self.shared.max_response_bytes,
                self.shared.gate.clone(),
            ),
        )
    }

    pub(crate) async fn finish_with_result<T: Envelope>(
        &self,
        call: &generated::Client,
        request: RequestSummary,
        result: GeneratedResult<T>,
    ) -> Result<T::Result, Error> {
        let status = result.as_ref().map(|r| r.status()).ok();
        let summary = request.clone();
        match self.finish(call, request, result).await? {
            Some(value) => Ok(value),
            None => Err(Error::UnexpectedResponse {
                request: summary,
                status: status.unwrap_or(StatusCode::OK),
                content_type: Some("application/json".into()),
                body_snippet: "a success envelope without `result`".into(),
            }),
        }
    }

    /// Unwrap the envelope, or turn whatever went wrong into an [`Error`].
    /// A failed generated call (no envelope to decode) as our [`Error`].
    pub(crate) async fn failed(
        &self,
        call: &generated::Client,
        request: RequestSummary,
        error: progenitor_client::Error<FailureResponse>,
    ) -> Error {
        let record = progenitor_client::ClientInfo::inner(call).record();
        convert_error(request, &record, self.shared.max_response_bytes, error).await
    }

    async fn finish<T: Envelope>(
        &self,
        call: &generated::Client,
        request: RequestSummary,
        result: GeneratedResult<T>,
    ) -> Result<Option<T::Result>, Error> {
        let record = progenitor_client::ClientInfo::inner(call).record();
        match result {
            Ok(response) => {
                let status = response.status();
                let (success, errors, messages, result) = response.into_inner().parts();
                if !success {
                    return Err(Error::Api {
                        request,
                        status,
                        errors,
                        messages,
                    });
                }
                for m in &messages {
                    tracing::info!(code = m.code, message = %m.message, "cloudflare api message");
                }
                Ok(result)
            }
            Err(e) => Err(convert_error(request, &record, self.shared.max_response_bytes, e).await),
        }
    }
}

/// progenitor's error plus what the hooks recorded -> our [`Error`].
async fn convert_error(
    request: RequestSummary,
    record: &CallRecord,
    max_body: u64,
    error: progenitor_client::Error<FailureResponse>,
) -> Error {
    use progenitor_client::Error as P;
    let attempts = record.attempts.max(1);
    let rate_limited = |errors: Vec<Message>| Error::RateLimited {
        request: request.clone(),
        retry_after: record.retry_after,
        attempts,
        errors,
    };
    match error {
        P::ErrorResponse(response) => {
            let status = response.status();
            let body = response.into_inner();
            if status == StatusCode::TOO_MANY_REQUESTS {
                return rate_limited(body.errors.0);
            }
            Error::Api {
                request,
                status,
                errors: body.errors.0,
                messages: body.messages.0,
            }
        }
        P::InvalidResponsePayload(bytes, e) => {
            let status = record.status.unwrap_or(StatusCode::OK);
            if status == StatusCode::TOO_MANY_REQUESTS {
                return rate_limited(Vec::new());
            }
            Error::UnexpectedResponse {
                request,
                status,
                content_type: record.content_type.clone(),
                body_snippet: format!(
                    "{} (not the expected JSON: {e})",
                    crate::http::snippet(&bytes)
                ),
            }
        }
        P::UnexpectedResponse(response) => {
            let status = response.status();
            let content_type = crate::http::content_type(&response);
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(e) if crate::hooks::is_over_cap(&e) => {
                    return over_cap(request, status, content_type, max_body);
                }
                Err(_) => Default::default(),
            };
            // A 5xx may still carry a failure envelope.
            if let Ok(failure) = serde_json::from_slice::<FailureResponse>(&bytes)
                && !failure.success
            {
                return Error::Api {
                    request,
                    status,
                    errors: failure.errors.0,
                    messages: failure.messages.0,
                };
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                return rate_limited(Vec::new());
            }
            Error::UnexpectedResponse {
                request,
                status,
                content_type,
                body_snippet: crate::http::snippet(&bytes),
            }
        }
        P::ResponseBodyError(e) if crate::hooks::is_over_cap(&e) => over_cap(
            request,
            record.status.unwrap_or(StatusCode::OK),
            record.content_type.clone(),
            max_body,
        ),
        P::CommunicationError(e) | P::ResponseBodyError(e) | P::InvalidUpgrade(e) => {
            if e.is_timeout() || record.timed_out {
                Error::Timeout { request, attempts }
            } else {
                Error::Connection {
                    request,
                    attempts,
                    source: e.without_url(),
                }
            }
        }
        P::InvalidRequest(reason) => Error::InvalidInput {
            what: "request",
            reason,
        },
        P::Custom(reason) => Error::Config(reason),
    }
}

/// An answer larger than the cap: never read past it.
fn over_cap(
    request: RequestSummary,
    status: StatusCode,
    content_type: Option<String>,
    max_body: u64,
) -> Error {
    Error::UnexpectedResponse {
        request,
        status,
        content_type,
        body_snippet: format!(
            "the answer is larger than {max_body} bytes (ClientBuilder::max_response_bytes); \
             stopped reading it"
        ),
    }
}
