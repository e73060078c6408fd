//! Signed URLs: tokens for the downloads of videos with `requireSignedURLs`.
//!
//! The download host serves such a video's files only when a token
//! replaces the video id in the URL's path
//! (`https://customer-<code>.cloudflarestream.com/<TOKEN>/downloads/default.mp4`),
//! and only a token made with `downloadable: true`. There are two ways to
//! get one, and they cost very different things:
//!
//! * **locally**, with a [`SigningKey`] (one `POST …/stream/keys` made it,
//!   once): an RS256 JWT signed on this machine, **no API request**;
//! * **by the API** ([`Client::create_token`](crate::Client::create_token), `POST …/stream/{id}/token`):
//!   one rate-limited API request per token.
//!
//! [`Client::token`](crate::Client::token) picks the first when the client has a signing key
//! ([`ClientBuilder::signing_key`](crate::ClientBuilder::signing_key)) and
//! the second otherwise, and counts both ([`Client::token_counts`](crate::Client::token_counts)).
//!
//! Signing uses the crypto provider of the TLS stack ([`crate::tls`]: ring
//! by default, aws-lc-rs under the `aws-lc-rs` feature): no second crypto
//! library, and no `rsa` crate (RUSTSEC-2023-0071). The key's private part
//! is never in `Debug`, `Display`, an error or a log line; tokens are
//! [`Secret`]s.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls::SignatureScheme;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::{PemObject, SectionKind};
use serde::Serialize;

use crate::error::Error;
use crate::ids;
use crate::secret::Secret;
use crate::types::AccessRule;

/// The signing key's id, for [`SigningKey::from_lookup`].
pub const ENV_SIGNING_KEY_ID: &str = "CLOUDFLARE_STREAM_SIGNING_KEY_ID";
/// The signing key's `pem`, base64-encoded as Cloudflare returns it.
pub const ENV_SIGNING_KEY_PEM: &str = "CLOUDFLARE_STREAM_SIGNING_KEY_PEM";

/// Longest a token may be valid: Cloudflare refuses an `exp` more than 24 h
/// after its issue.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long a token is valid unless said otherwise (Cloudflare's default).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A Stream signing key, loaded to sign tokens locally.
///
/// Made from what `POST …/stream/keys` returns ([`Client::create_signing_key`](crate::Client::create_signing_key)):
/// the key `id` and its `pem`, a PKCS#1 RSA private key
/// (`-----BEGIN RSA PRIVATE KEY-----`) that Cloudflare hands out
/// base64-encoded once more. `Debug` shows the id only.
#[derive(Clone)]
pub struct SigningKey {
    id: String,
    signer: Arc<dyn rustls::sign::Signer>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("pem", &"***")
            .finish()
    }
}

/// What a locally signed token allows, besides its video.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOptions {
    /// From now until `exp` (default 1 h, at most 24 h).
    pub lifetime: Duration,
    /// `nbf`: not valid before this Unix time. None by default: a token
    /// valid at once, whatever the clock difference with Cloudflare's.
    pub not_before: Option<i64>,
    /// `accessRules`, evaluated by Cloudflare in order (at most 5).
    pub access_rules: Vec<AccessRule>,
}

impl Default for TokenOptions {
    fn default() -> Self {
        Self {
            lifetime: DEFAULT_TOKEN_LIFETIME,
            not_before: None,
            access_rules: Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    kid: &'a str,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    downloadable: bool,
    #[serde(rename = "accessRules", skip_serializing_if = "<[_]>::is_empty")]
    access_rules: &'a [AccessRule],
}

fn invalid_key(reason: impl Into<String>) -> Error {
    Error::InvalidInput {
        what: "signing key",
        reason: reason.into(),
    }
}

impl SigningKey {
    /// A key from its id and its `pem` as Cloudflare returns it: base64 of
    /// a PKCS#1 PEM. (The decoded PEM text is accepted too.)
    pub fn from_base64_pem(id: &str, pem: &str) -> Result<Self, Error> {
        ids::check_id("signing key id", id)?;
        let pem = pem.trim();
        let decoded = if pem.starts_with("-----BEGIN") {
            pem.as_bytes().to_vec()
        } else {
            let compact: String = pem.split_ascii_whitespace().collect();
            STANDARD.decode(compact.as_bytes()).map_err(|e| {
                invalid_key(format!(
                    "its pem is not base64 ({e}); give it as Cloudflare returns it \
                     (the `pem` of `POST /stream/keys`, or of `cfstream keys create --save`)"
                ))
            })?
        };
        Self::from_pem(id, &decoded)
    }

    /// A key from its id and the PEM text (`-----BEGIN RSA PRIVATE KEY-----`).
    pub fn from_pem(id: &str, pem: &[u8]) -> Result<Self, Error> {
        ids::check_id("signing key id", id)?;
        let mut sections = <(SectionKind, Vec<u8>)>::pem_slice_iter(pem);
        let (kind, der) = match sections.next() {
            Some(Ok(section)) => section,
            Some(Err(e)) => return Err(invalid_key(format!("its pem does not parse: {e}"))),
            None => {
                return Err(invalid_key(
                    "its pem holds no PEM section (no `-----BEGIN RSA PRIVATE KEY-----`)",
                ));
            }
        };
        if kind != SectionKind::RsaPrivateKey {
            return Err(invalid_key(format!(
                "its pem holds a {kind:?} section; a Stream signing key is a PKCS#1 RSA \
                 private key (`-----BEGIN RSA PRIVATE KEY-----`)"
            )));
        }
        let provider = crate::tls::crypto_provider();
        let key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs1(der.into()))
            .map_err(|e| invalid_key(format!("not a usable RSA private key: {e}")))?;
        if key.algorithm() != rustls::SignatureAlgorithm::RSA {
            return Err(invalid_key(format!(
                "not an RSA key ({:?}); Stream tokens are RS256",
                key.algorithm()
            )));
        }
        let signer = key
            .choose_scheme(&[SignatureScheme::RSA_PKCS1_SHA256])
            .ok_or_else(|| invalid_key("this RSA key cannot sign RS256 (RSASSA-PKCS1-v1_5)"))?;
        Ok(Self {
            id: id.to_owned(),
            signer: Arc::from(signer),
        })
    }

    /// A key from a JSON document holding at least `id` and `pem`: what
    /// `cfstream keys create --save` writes, the `result` of
    /// `POST /stream/keys`, or that whole answer.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| invalid_key(format!("not JSON ({e}); expected {{\"id\", \"pem\"}}")))?;
        let key = value
            .get("result")
            .filter(|r| r.is_object())
            .unwrap_or(&value);
        let field = |name: &str| {
            key.get(name)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| invalid_key(format!("the JSON has no string `{name}`")))
        };
        Self::from_base64_pem(field("id")?, field("pem")?)
    }

    /// The key from `CLOUDFLARE_STREAM_SIGNING_KEY_ID` and
    /// `CLOUDFLARE_STREAM_SIGNING_KEY_PEM` read through `lookup`: `None`
    /// when neither is set, an error when only one is.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let get = |name| lookup(name).filter(|v| !v.is_empty());
        match (get(ENV_SIGNING_KEY_ID), get(ENV_SIGNING_KEY_PEM)) {
            (None, None) => Ok(None),
            (Some(id), Some(pem)) => Self::from_base64_pem(&id, &pem).map(Some),
            (Some(_), None) => Err(invalid_key(format!(
                "{ENV_SIGNING_KEY_ID} is set but {ENV_SIGNING_KEY_PEM} is not"
            ))),
            (None, Some(_)) => Err(invalid_key(format!(
                "{ENV_SIGNING_KEY_PEM} is set but {ENV_SIGNING_KEY_ID} is not"
            ))),
        }
    }

    /// The key's id (the token's `kid`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A token for the downloads of `video_id`, valid from now for
    /// `options.lifetime`.
    pub fn sign(&self, video_id: &str, options: &TokenOptions) -> Result<Secret, Error> {
        self.sign_at(video_id, options, unix_now()?)
    }

    /// [`sign`](Self::sign) as if the time were `now` (Unix seconds).
    pub fn sign_at(
        &self,
        video_id: &str,
        options: &TokenOptions,
        now: i64,
    ) -> Result<Secret, Error> {
        ids::check_id("video id", video_id)?;
        if options.lifetime > MAX_TOKEN_LIFETIME || options.lifetime.is_zero() {
            return Err(Error::InvalidInput {
                what: "token lifetime",
                reason: format!(
                    "{} s; Cloudflare accepts an `exp` from 1 s to 24 h ({} s) ahead",
                    options.lifetime.as_secs(),
                    MAX_TOKEN_LIFETIME.as_secs()
                ),
            });
        }
        if options.access_rules.len() > 5 {
            return Err(Error::InvalidInput {
                what: "access rules",
                reason: format!("{} rules; at most 5", options.access_rules.len()),
            });
        }
        let header = b64_json(&Header {
            alg: "RS256",
            kid: &self.id,
        });
        let claims = b64_json(&Claims {
            sub: video_id,
            kid: &self.id,
            exp: now + options.lifetime.as_secs() as i64,
            nbf: options.not_before,
            downloadable: true,
            access_rules: &options.access_rules,
        });
        let signing_input = format!("{header}.{claims}");
        let signature = self
            .signer
            .sign(signing_input.as_bytes())
            .map_err(|e| invalid_key(format!("signing failed: {e}")))?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// Now, in Unix seconds.
pub(crate) fn unix_now() -> Result<i64, Error> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .map_err(|_| Error::Config("the system clock is before 1970".into()))
}

/// A JWT part: base64url (no padding) of the JSON.
fn b64_json<T: Serialize>(value: &T) -> String {
    // Plain structs of strings, integers and rules: serialising cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// The download URL with its first path segment (the video id) replaced by
/// `token`: how Cloudflare wants a signed download URL.
pub(crate) fn signed_url(url: &reqwest::Url, token: &Secret) -> Result<reqwest::Url, Error> {
    let no_id = || Error::InvalidInput {
        what: "download url",
        reason: format!(
            "{}: no video id to replace by a token (expected /<video id>/downloads/…)",
            url.path()
        ),
    };
    let mut segments = url.path_segments().ok_or_else(no_id)?;
    if segments.next().is_none_or(str::is_empty) {
        return Err(no_id());
    }
    let rest: Vec<&str> = segments.collect();
    if rest.is_empty() {
        return Err(no_id());
    }
    let mut signed = url.clone();
    signed
        .path_segments_mut()
        .map_err(|()| no_id())?
        .clear()
        .push(token.expose())
        .extend(rest);
    Ok(signed)
}

/// Tokens made by a client: locally, and by the API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenCounts {
    /// Signed with the client's [`SigningKey`] (no API request).
    pub signed_locally: u64,
    /// Asked of the API (`POST …/token`, one request each).
    pub requested: u64,
}

/// The counts behind [`TokenCounts`], shared by a client's clones.
#[derive(Debug, Default)]
pub(crate) struct TokenCounters {
    pub(crate) signed_locally: AtomicU64,
    pub(crate) requested: AtomicU64,
}

/// A signing key as `POST …/stream/keys` returns it: its private key
/// (`pem`, `jwk`) is shown this once and never again.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedSigningKey {
    /// The key's id (a token's `kid`).
    pub id: String,
    /// When it was created, as the API said.
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    /// Base64 of the PKCS#1 PEM private key.
    pub pem: Secret,
    /// Base64 of the key as a JWK.
    pub jwk: Option<Secret>,
    /// The API's `result` as sent (for `--json` and `--save`). A secret.
    pub raw: Secret,
}

impl CreatedSigningKey {
    /// The key, loaded for signing.
    pub fn signing_key(&self) -> Result<SigningKey, Error> {
        SigningKey::from_base64_pem(&self.id, self.pem.expose())
    }
}
