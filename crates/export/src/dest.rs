//! Where an export writes: a local directory, or an object store (S3, R2,
//! GCS, Azure) through Apache Arrow's `object_store`.
//!
//! `--dir DIR` (or `--dest file:///DIR`) is the directory destination of
//! [`crate::transfer`]: `.part`, lock, resume, fsync, rename, and the state
//! in `DIR/cfstream-export.sqlite`. `--dest URL` names a bucket and a
//! prefix; [`ObjectDest`] writes `PREFIX/<uid>.mp4`, `PREFIX/<uid>.m4a` and
//! `PREFIX/<uid>.json`, the captions `PREFIX/<uid>.<language>.vtt`
//! and `PREFIX/account.json` there and nothing else, and keeps its state in a
//! local file ([`default_state_path`] unless `--state`).
//!
//! | URL | store | configuration (environment) |
//! |---|---|---|
//! | `s3://BUCKET/PREFIX` | S3 or S3-compatible | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP` |
//! | `r2://BUCKET/PREFIX` | Cloudflare R2 | R2's key pair in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`; endpoint `https://<account id>.r2.cloudflarestorage.com` (`AWS_ENDPOINT_URL` overrides), region `auto` |
//! | `gs://BUCKET/PREFIX` | Google Cloud Storage | `GOOGLE_SERVICE_ACCOUNT` (a key file), `GOOGLE_SERVICE_ACCOUNT_KEY`, or the instance's credentials |
//! | `az://CONTAINER/PREFIX` | Azure Blob Storage | `AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY`, a SAS (`AZURE_STORAGE_SAS_KEY`), or a service principal (`AZURE_CLIENT_ID`, …) |
//!
//! An `http://` endpoint is accepted on a loopback host, or anywhere with
//! `AWS_ALLOW_HTTP=true`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cloudflare_stream_downloads::types::DownloadType;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder, Checksum, S3ConditionalPut};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjectPath;

use crate::error::ExportError;

/// Where an export writes.
#[derive(Clone)]
pub enum Destination {
    /// A local directory (created if needed); the state lives in it.
    Dir(PathBuf),
    /// A bucket and prefix of an object store.
    Store(Arc<ObjectDest>),
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Dir(dir) => f.debug_tuple("Dir").field(dir).finish(),
            Destination::Store(store) => f.debug_tuple("Store").field(&store.url).finish(),
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Dir(dir) => write!(f, "{}", dir.display()),
            Destination::Store(store) => f.write_str(&store.url),
        }
    }
}

/// An object-store destination: a store, and the prefix every key of the
/// export is under.
pub struct ObjectDest {
    /// The URL as given (`s3://bucket/prefix`): no secret in it.
    pub url: String,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) multipart: Arc<dyn MultipartStore>,
    /// The S3 client, for what `object_store` has no call for (the
    /// multipart uploads in flight under the prefix).
    pub(crate) s3: Option<AmazonS3>,
    pub(crate) prefix: ObjectPath,
    /// Requests of `ListMultipartUploads` (presigned URLs).
    pub(crate) http: reqwest::Client,
}

impl std::fmt::Debug for ObjectDest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectDest")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The connector `object_store` builds its HTTP clients with: the
/// workspace's reqwest with rustls and ring, as the API client uses (not
/// reqwest's default provider, which is aws-lc-rs, absent from this
/// build). Give it to a store builder's `with_http_connector` to talk to
/// the same stores outside an export (tests, benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct Connector;

impl object_store::client::HttpConnector for Connector {
    fn connect(
        &self,
        _options: &object_store::ClientOptions,
    ) -> object_store::Result<object_store::client::HttpClient> {
        let client = http_client().map_err(|e| object_store::Error::Generic {
            store: "cfstream",
            source: e.into(),
        })?;
        Ok(object_store::client::HttpClient::new(client))
    }
}

pub(crate) fn http_client() -> Result<reqwest::Client, String> {
    let tls = cloudflare_stream_downloads::tls::client_config().map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(60))
        .user_agent(cloudflare_stream_downloads::USER_AGENT)
        .build()
        .map_err(|e| e.to_string())
}

fn invalid(reason: String) -> ExportError {
    ExportError::InvalidInput {
        what: "--dest",
        reason,
    }
}

/// Whether `url`'s host is the loopback (http is allowed there).
fn loopback(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| match u.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    })
}

impl Destination {
    /// The destination of `--dest URL`: `file://`, `s3://`, `r2://`,
    /// `gs://` or `az://` (see the module documentation). `account_id` is
    /// the Cloudflare account (R2's endpoint). Reads the store's
    /// configuration from the environment; makes no request.
    pub fn parse(url: &str, account_id: Option<&str>) -> Result<Self, ExportError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(format!("{url:?}: {e}")))?;
        if parsed.scheme() == "file" {
            let path = parsed
                .to_file_path()
                .map_err(|()| invalid(format!("{url:?}: not a local path")))?;
            return Ok(Destination::Dir(path));
        }
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                invalid(format!(
                    "{url:?}: no bucket (expected SCHEME://BUCKET/PREFIX)"
                ))
            })?
            .to_owned();
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid(format!("{url:?}: no query or fragment expected")));
        }
        let prefix = ObjectPath::parse(parsed.path().trim_matches('/'))
            .map_err(|e| invalid(format!("{url:?}: prefix: {e}")))?;
        let (store, multipart, s3): (Arc<dyn ObjectStore>, Arc<dyn MultipartStore>, _) =
            match parsed.scheme() {
                "s3" | "r2" => {
                    let mut builder = AmazonS3Builder::from_env()
                        .with_bucket_name(&bucket)
                        .with_checksum_algorithm(Checksum::SHA256)
                        .with_conditional_put(S3ConditionalPut::ETagMatch)
                        .with_http_connector(Connector);
                    let env_endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
                    if parsed.scheme() == "r2" {
                        let endpoint = match &env_endpoint {
                            Some(e) => e.clone(),
                            None => {
                                let account = account_id.filter(|a| !a.is_empty()).ok_or_else(|| {
                                    invalid(format!(
                                        "{url:?}: R2's endpoint needs the account id (--account-id or CLOUDFLARE_ACCOUNT_ID), or AWS_ENDPOINT_URL"
                                    ))
                                })?;
                                cloudflare_stream_downloads::check_id("account id", account)
                                    .map_err(|e| invalid(e.to_string()))?;
                                format!("https://{account}.r2.cloudflarestorage.com")
                            }
                        };
                        builder = builder.with_endpoint(endpoint).with_region("auto");
                    }
                    let endpoint = env_endpoint.unwrap_or_default();
                    if endpoint.starts_with("http://") {
                        let allowed = std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true");
                        if !allowed && !loopback(&endpoint) {
                            return Err(invalid(format!(
                                "endpoint {endpoint:?} is plain http: only on a loopback host, or with AWS_ALLOW_HTTP=true"
                            )));
                        }
                        builder = builder.with_allow_http(true);
                    }
                    let s3 = builder.build().map_err(|e| invalid(e.to_string()))?;
                    (Arc::new(s3.clone()), Arc::new(s3.clone()), Some(s3))
                }
                "gs" => {
                    let gcs = GoogleCloudStorageBuilder::from_env()
                        .with_bucket_name(&bucket)
                        .with_http_connector(Connector)
                        .build()
                        .map_err(|e| invalid(e.to_string()))?;
                    let gcs = Arc::new(gcs);
                    (gcs.clone(), gcs, None)
                }
                "az" | "azure" => {
                    let azure = MicrosoftAzureBuilder::from_env()
                        .with_container_name(&bucket)
                        .with_http_connector(Connector)
                        .build()
                        .map_err(|e| invalid(e.to_string()))?;
                    let azure = Arc::new(azure);
                    (azure.clone(), azure, None)
                }
                other => {
                    return Err(invalid(format!(
                        "{url:?}: scheme {other:?}; expected file, s3, r2, gs or az"
                    )));
                }
            };
        Ok(Destination::Store(Arc::new(ObjectDest {
            url: url.to_owned(),
            store,
            multipart,
            s3,
            prefix,
            http: http_client().map_err(invalid)?,
        })))
    }
}

/// Where the state of an export into `url` lives unless `--state` says:
/// `$XDG_STATE_HOME/cfstream/` (else `~/.local/state/cfstream/`), in a
/// file named from the URL (its characters other than letters, digits,
/// `-`, `_` and `.` become `_`).
pub fn default_state_path(url: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    let name: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    base.join("cfstream").join(format!("{name}.sqlite"))
}

/// The file name of a video's download of `kind`.
pub fn file_name(uid: &str, kind: DownloadType) -> String {
    match kind {
        DownloadType::Default => format!("{uid}.mp4"),
        DownloadType::Audio => format!("{uid}.m4a"),
    }
}

/// Writes `dir/name` whole or not at all: a temporary file in `dir`,
/// fsynced, renamed over it (a reader sees the old file or the new one;
/// writers racing leave the last one, never a mix).
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
    use std::io::Write;
    let path = dir.join(name);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(ExportError::io(dir))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(ExportError::io(tmp.path()))?;
    tmp.persist(&path)
        .map_err(|e| ExportError::io(&path)(e.error))?;
    Ok(())
}

/// SHA-256 of a file, lowercase hex (1 MiB reads).
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Whether `path` is a file of `size` bytes.
pub(crate) fn file_has_size(path: &Path, size: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_state_is_named_from_the_url() {
        let path = default_state_path("s3://bucket/videos/2026");
        assert!(
            path.ends_with("cfstream/s3___bucket_videos_2026.sqlite"),
            "{path:?}"
        );
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let err = |url: &str| match Destination::parse(url, None) {
            Err(e) => e.to_string(),
            Ok(d) => panic!("{url}: accepted as {d:?}"),
        };
        assert!(err("ftp://host/x").contains("scheme \"ftp\""));
        assert!(err("s3:///prefix").contains("no bucket"));
        assert!(err("s3://bucket/p?x=1").contains("no query"));
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            assert!(err("r2://bucket/p").contains("account id"));
        }
        assert!(err("not a url").contains("--dest"));
        assert!(matches!(
            Destination::parse("file:///tmp/export", None),
            Ok(Destination::Dir(d)) if d == std::path::Path::new("/tmp/export")
        ));
    }

    #[test]
    fn plain_http_is_for_loopback() {
        assert!(loopback("http://127.0.0.1:9000"));
        assert!(loopback("http://[::1]:9000"));
        assert!(loopback("http://localhost:9000"));
        assert!(!loopback("http://s3.example.com"));
        assert!(!loopback("http://10.0.0.1"));
    }
}
