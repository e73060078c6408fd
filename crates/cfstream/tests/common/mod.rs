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

/// SHA-256, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
