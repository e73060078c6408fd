//! What the end-to-end tests of `cfstream` share: a finished child
//! process, waited for without blocking the runtime the fake runs on.

#![allow(dead_code)] // each test file uses its part

use std::process::Child;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A `cfstream` process that ended.
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Its `--json` summary (stdout).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Waits for `child` (at most `limit`: then it is killed and the test
/// fails with its stderr).
pub async fn finish(mut child: Child, limit: Duration) -> Finished {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return Finished {
                code: status.code().unwrap_or(-1),
                stdout: String::from_utf8(out.stdout).unwrap(),
                stderr: String::from_utf8(out.stderr).unwrap(),
            };
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "cfstream did not end in {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every object of the archive under `prefix` in SeaweedFS's bucket: file
/// name → bytes (the run reports, under `.cfstream/`, beside the archive,
/// left out).
pub async fn bucket_objects(
    weed: &testkit::seaweed::Seaweed,
    prefix: &str,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    use futures_util::StreamExt;
    use object_store::{ObjectStore, ObjectStoreExt};
    let store = weed.bucket().build().unwrap();
    let mut listing = store.list(Some(&object_store::path::Path::from(prefix)));
    let mut out = std::collections::BTreeMap::new();
    while let Some(meta) = listing.next().await {
        let meta = meta.unwrap();
        if meta.location.as_ref().contains("/.cfstream/") {
            continue;
        }
        let bytes = store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        out.insert(meta.location.filename().unwrap().to_owned(), bytes.to_vec());
    }
    out
}

/// `cmd` with SeaweedFS's endpoint and credentials in its environment.
pub fn with_bucket<'a>(
    cmd: &'a mut std::process::Command,
    weed: &testkit::seaweed::Seaweed,
) -> &'a mut std::process::Command {
    use testkit::seaweed::{ACCESS_KEY, SECRET_KEY};
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", weed.endpoint())
}

/// SHA-256, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
