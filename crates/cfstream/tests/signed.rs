//! Videos that require signed URLs, end to end: the real binary against
//! stream-fake, whose download host checks tokens (RS256 with the key's
//! public part, `sub`, `exp`, `nbf`, `downloadable`, deleted keys).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Finished, finish};

use stream_fake::catalog::{CatalogVideo, epoch};
use stream_fake::content::FileContent;
use stream_fake::{FakeConfig, Progress, Route, StreamFake};

const TOKEN: &str = "signed-test-api-token-never-printed";
/// The start of every JWT (`{"alg"` in base64url): no token may appear.
const JWT: &str = "eyJhbGci";

/// `videos` ready videos, every other one requiring signed URLs.
async fn fake(videos: usize, file_size: u64, chunk_delay: Duration) -> StreamFake {
    let catalog = (0..videos)
        .map(|i| {
            let mut v = CatalogVideo::ready(
                &format!("{i:032x}"),
                epoch() + chrono::Duration::seconds(i as i64),
            );
            v.require_signed_urls = i % 2 == 0;
            v
        })
        .collect();
    StreamFake::start(FakeConfig {
        videos: Vec::new(),
        catalog,
        file_size,
        file_chunk_delay: chunk_delay,
        progress: Progress::PerPoll { step: 50.0 },
        api_token: TOKEN.into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap()
}

fn cfstream(fake: &StreamFake, args: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("cfstream"));
    cmd.env_clear()
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn run(fake: &StreamFake, args: &[&str]) -> Finished {
    finish(
        cfstream(fake, args).spawn().unwrap(),
        Duration::from_secs(120),
    )
    .await
}

/// `cfstream keys create --save DIR/key.json`; returns the path.
async fn saved_key(fake: &StreamFake, dir: &Path) -> std::path::PathBuf {
    let path = dir.join("key.json");
    let made = run(fake, &["keys", "create", "--save", path.to_str().unwrap()]).await;
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(
        made.stdout.contains("created signing key"),
        "{}",
        made.stdout
    );
    path
}

/// Every file of the export is what the fake serves for its video.
fn assert_files(dir: &Path, fake: &StreamFake, size: u64, kinds: &[&str]) {
    for v in fake.catalog() {
        for kind in kinds {
            let ext = if *kind == "audio" { "m4a" } else { "mp4" };
            let bytes = std::fs::read(dir.join(format!("{}.{ext}", v.uid)))
                .unwrap_or_else(|e| panic!("{} {kind}: {e}", v.uid));
            let expected = FileContent::new(&v.uid, &format!("{kind}.{ext}"), size);
            assert_eq!(bytes.len() as u64, size);
            assert_eq!(expected.first_mismatch(0, &bytes), None, "{} {kind}", v.uid);
        }
    }
}

/// No file under `dir` (the SQLite state and its WAL included, `.part`
/// sidecars included) holds any of `secrets`.
fn assert_no_secret_in_files(dir: &Path, secrets: &[&str]) {
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret ({}…)",
                entry.display(),
                &secret[..8]
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The key file's pem, in chunks that must appear nowhere.
fn pem_pieces(key_file: &Path) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(key_file).unwrap()).unwrap();
    let pem = doc["pem"].as_str().unwrap();
    vec![pem[100..140].to_owned(), pem[pem.len() - 60..].to_owned()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_with_a_signing_key_signs_locally_and_asks_the_api_for_no_token() {
    let size = 40 * 1024;
    let fake = fake(12, size, Duration::ZERO).await;
    let keys = tempfile::tempdir().unwrap();
    let key = saved_key(&fake, keys.path()).await;
    // The key file: owner-only, and never overwritten (refused before a
    // key is created).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = std::fs::read(&key).unwrap();
    let creates = fake.api_requests_on(Route::CreateKey);
    let again = run(&fake, &["keys", "create", "--save", key.to_str().unwrap()]).await;
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("refusing to overwrite"),
        "{}",
        again.stderr
    );
    assert_eq!(fake.api_requests_on(Route::CreateKey), creates);
    assert_eq!(std::fs::read(&key).unwrap(), before);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let k = key.to_str().unwrap();
    let args = [
        "--signing-key",
        k,
        "export",
        "--dir",
        d,
        "--all",
        "--type",
        "both",
        "--json",
        "-vvv",
        "--rate",
        "2000/1s",
    ];
    let out = run(&fake, &args).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(summary["done"], 24);
    assert_eq!(summary["signed_videos"], 6);
    // One local token per request of a signed video to the download host:
    // the fetches (6 videos × 2 types), the probes asking whether a file
    // is there, and each video's manifest (no API request either).
    let signed_requests = fake.file_requests().iter().filter(|r| r.signed).count();
    assert_eq!(summary["tokens_signed_locally"], signed_requests as u64);
    assert!(signed_requests >= 12, "6 signed videos × 2 types fetched");
    assert_eq!(summary["tokens_requested"], 0);
    assert_eq!(fake.api_requests_on(Route::Token), 0);
    assert!(out.stderr.contains("signed locally"), "{}", out.stderr);
    assert_files(dir.path(), &fake, size, &["default", "audio"]);
    // Signed videos were fetched with a token at once (known from the
    // listing: no refused unsigned request first).
    // (probes, `Range: bytes=0-0`, and manifests aside)
    let manifests: Vec<_> = fake
        .file_requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/manifest/video.m3u8"))
        .collect();
    assert_eq!(manifests.len(), 12, "one manifest per video");
    assert_eq!(manifests.iter().filter(|r| r.signed).count(), 6);
    let requests: Vec<_> = fake
        .file_requests()
        .into_iter()
        .filter(|r| {
            r.range.as_deref() != Some("bytes=0-0") && !r.path.ends_with("/manifest/video.m3u8")
        })
        .collect();
    assert_eq!(requests.iter().filter(|r| r.signed).count(), 12);
    assert_eq!(requests.len(), 24);
    assert!(
        fake.file_requests()
            .iter()
            .all(|r| r.credential_headers.is_empty())
    );
    // Neither the pem nor any token in the output (-vvv) or a file.
    let mut secrets = pem_pieces(&key);
    secrets.push(JWT.to_owned());
    for secret in &secrets {
        assert!(!out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()));
    }
    assert_no_secret_in_files(
        dir.path(),
        &secrets.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(!out.stderr.contains(TOKEN));
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_fetch_of_a_signed_video_with_and_without_a_key() {
    let size = 30 * 1024;
    let fake = fake(2, size, Duration::ZERO).await;
    let signed = fake.catalog()[0].clone();
    assert!(signed.require_signed_urls);
    let dir = tempfile::tempdir().unwrap();
    // Without a key: one /token request.
    let plain = dir.path().join("plain.mp4");
    let out = run(
        &fake,
        &[
            "downloads",
            "fetch",
            &signed.uid,
            "-o",
            plain.to_str().unwrap(),
            "-vvv",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fake.api_requests_on(Route::Token), 1);
    assert!(!out.stderr.contains(JWT) && !out.stdout.contains(JWT));
    // With the key from the environment (id + base64 pem): none more.
    let keys = tempfile::tempdir().unwrap();
    let key = saved_key(&fake, keys.path()).await;
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
    let local = dir.path().join("local.mp4");
    let out = cfstream(
        &fake,
        &[
            "downloads",
            "fetch",
            &signed.uid,
            "-o",
            local.to_str().unwrap(),
        ],
    )
    .env(
        "CLOUDFLARE_STREAM_SIGNING_KEY_ID",
        doc["id"].as_str().unwrap(),
    )
    .env(
        "CLOUDFLARE_STREAM_SIGNING_KEY_PEM",
        doc["pem"].as_str().unwrap(),
    )
    .spawn()
    .unwrap();
    let out = finish(out, Duration::from_secs(120)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fake.api_requests_on(Route::Token), 1);
    let expected = FileContent::new(&signed.uid, "default.mp4", size);
    for path in [&plain, &local] {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(expected.first_mismatch(0, &bytes), None);
    }
    // Each fetch: one refused unsigned request (the host's 401 tells the
    // video is signed), then the signed one.
    let requests = fake.file_requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests.iter().filter(|r| r.signed).count(), 2);
    assert_no_secret_in_files(dir.path(), &[JWT]);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_key_fails_the_signed_files_with_a_clear_reason_and_few_requests() {
    let size = 16 * 1024;
    let fake = fake(6, size, Duration::ZERO).await;
    let keys = tempfile::tempdir().unwrap();
    let key = saved_key(&fake, keys.path()).await;
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
    let id = doc["id"].as_str().unwrap();
    let deleted = run(&fake, &["keys", "delete", id]).await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(
        deleted.stdout.contains("no longer works"),
        "{}",
        deleted.stdout
    );
    let listed = run(&fake, &["keys", "list"]).await;
    assert!(!listed.stdout.contains(id), "{}", listed.stdout);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let args = [
        "--signing-key",
        key.to_str().unwrap(),
        "export",
        "--dir",
        d,
        "--all",
        "--json",
        "--rate",
        "2000/1s",
    ];
    let out = run(&fake, &args).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(summary["done"], 3, "the unsigned videos");
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 3);
    for f in failed {
        let reason = f["reason"].as_str().unwrap();
        assert!(
            reason.contains("refused the signed URL") && reason.contains("deleted"),
            "{reason}"
        );
        assert!(!reason.contains(JWT), "{reason}");
    }
    // Bounded: each signed file was fetched twice (a token, then a fresh
    // one), never in a loop; its video was probed once (a token and a
    // fresh one, then no more probes of it); no token was asked of the
    // API.
    let refused: Vec<_> = fake
        .file_requests()
        .into_iter()
        .filter(|r| r.signed && r.path.contains("refused token"))
        .collect();
    let fetches = refused.iter().filter(|r| r.range.is_none()).count();
    let probes = refused.len() - fetches;
    assert_eq!(fetches, 2 * failed.len());
    assert_eq!(probes, 2 * failed.len(), "one refused probe pair per video");
    assert_eq!(fake.api_requests_on(Route::Token), 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_transfer_killed_mid_file_resumes_with_a_new_token() {
    // 4 MiB in 64 KiB chunks 10 ms apart: a transfer takes ~650 ms.
    let size = 4 * 1024 * 1024;
    let fake = fake(1, size, Duration::from_millis(10)).await;
    let uid = fake.catalog()[0].uid.clone();
    let keys = tempfile::tempdir().unwrap();
    let key = saved_key(&fake, keys.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let args = [
        "--signing-key",
        key.to_str().unwrap(),
        "export",
        "--dir",
        d,
        "--all",
        "--json",
    ];
    let mut child = cfstream(&fake, &args).spawn().unwrap();
    let part = dir.path().join(format!("{uid}.mp4.part"));
    let started = Instant::now();
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 1024 * 1024 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no data reached the .part"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The sidecar keeps the unsigned URL: no token on disk.
    let source =
        std::fs::read_to_string(dir.path().join(format!("{uid}.mp4.part.source"))).unwrap();
    assert!(
        source.contains(&format!("/{uid}/downloads/default.mp4")),
        "{source}"
    );
    let mut secrets = pem_pieces(&key);
    secrets.push(JWT.to_owned());
    assert_no_secret_in_files(
        dir.path(),
        &secrets.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    let out = run(&fake, &args).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        summary["tokens_signed_locally"], 2,
        "a fresh token for the resume, and one for the manifest"
    );
    assert_files(dir.path(), &fake, size, &["default"]);
    // Two signed fetches: the first from 0, the second a Range from what
    // the .part held (the same file, though the token differs). (The
    // probes before the first, `Range: bytes=0-0`, and the manifest after
    // the file, aside.)
    let requests: Vec<_> = fake
        .file_requests()
        .into_iter()
        .filter(|r| {
            r.range.as_deref() != Some("bytes=0-0") && !r.path.ends_with("/manifest/video.m3u8")
        })
        .collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests.iter().all(|r| r.signed));
    assert!(requests[0].range.is_none());
    let range = requests[1].range.as_deref().unwrap();
    let from: u64 = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(from >= 512 * 1024, "{range}");
    fake.shutdown().await;
}
