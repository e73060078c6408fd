//! `cfstream export` at the floor of the API budget, end to end against
//! stream-fake: existing downloads found on the download host with no
//! create, readiness asked of the download host, and the API asked only
//! where it alone can answer.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use stream_fake::{FakeConfig, Fault, Progress, Route, StreamFake, VideoOptions};

use crate::common::{Finished, finish};

const TOKEN: &str = "readiness-test-token-never-printed";

fn config(videos: usize, existing_downloads: usize) -> FakeConfig {
    FakeConfig {
        videos: Vec::new(),
        generated_videos: videos,
        file_size: 64 * 1024,
        progress: Progress::OverTime {
            duration: Duration::from_millis(1500),
        },
        existing_downloads,
        api_token: TOKEN.into(),
        ..FakeConfig::default()
    }
}

async fn export(fake: &StreamFake, dir: &Path, args: &[&str]) -> Finished {
    let child = Command::new(assert_cmd::cargo::cargo_bin("cfstream"))
        .env_clear()
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args(["--json", "export", "--dir"])
        .arg(dir)
        .args(["--rate", "5000/1s"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, Duration::from_secs(120)).await
}

fn found_column(dir: &Path) -> Vec<(String, Option<String>)> {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("cfstream-export.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut q = conn
        .prepare("SELECT uid, found FROM files WHERE state = 'done' ORDER BY uid")
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_downloads_cost_no_api_request_but_the_listing() {
    let fake = StreamFake::start(config(60, 1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = export(&fake, dir.path(), &["--all"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr); // the catalog's not-ready videos
    let s = run.summary();
    let catalog = fake.catalog();
    let ready = catalog.iter().filter(|v| v.ready_to_stream).count() as u64;
    let unsigned: Vec<&str> = catalog
        .iter()
        .filter(|v| v.ready_to_stream && !v.require_signed_urls)
        .map(|v| v.uid.as_str())
        .collect();
    assert_eq!(s["done"], ready, "{s}");
    // Every unsigned video's file was found on the download host: no API
    // request for it at all (the state counts them per video). A signed
    // video without a signing key is not probed (each probe would cost a
    // token from the API): created as before.
    assert_eq!(s["found_existing"], unsigned.len() as u64);
    let conn = rusqlite::Connection::open_with_flags(
        dir.path().join("cfstream-export.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    for uid in &unsigned {
        let n: i64 = conn
            .query_row(
                "SELECT api_requests FROM videos WHERE uid = ?1",
                [uid],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "{uid}");
    }
    assert_eq!(s["api_requests"], fake.api_request_count());
    let per_video = s["api_requests_per_video"].as_f64().unwrap();
    assert!(per_video < 0.25, "{per_video}");
    let found = found_column(dir.path());
    let existing = found
        .iter()
        .filter(|(_, f)| f.as_deref() == Some("existing"))
        .count();
    assert_eq!(existing, unsigned.len());
    // Nothing but the derived URLs was asked of the download host, with
    // no credential header (probes included).
    let requests = fake.file_requests();
    assert!(requests.iter().all(|r| r.credential_headers.is_empty()));
    assert!(requests.iter().all(|r| {
        r.path.ends_with("/downloads/default.mp4") || r.path.ends_with("/manifest/video.m3u8")
    }));
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_url_that_404s_falls_back_to_create_and_readiness_comes_from_the_host() {
    let fake = StreamFake::start(config(40, 0)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = export(&fake, dir.path(), &["--all"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let s = run.summary();
    let ready = fake.catalog().iter().filter(|v| v.ready_to_stream).count() as u64;
    assert_eq!(s["done"], ready);
    assert_eq!(s["found_existing"], 0);
    // One create per file; readiness from the download host: at most one
    // API poll per download in the common case.
    // (none for the videos the listing shows not ready to stream)
    assert_eq!(fake.api_requests_on(Route::CreateType), ready);
    let polls = fake.api_requests_on(Route::List);
    assert!(
        polls <= ready / 10,
        "{polls} API polls for {ready} downloads"
    );
    // Each unsigned file: one probe at the listing's URL (404), one or
    // more until ready. (A signed video without a signing key is not
    // probed.)
    let unsigned = fake
        .catalog()
        .iter()
        .filter(|v| v.ready_to_stream && !v.require_signed_urls)
        .count() as u64;
    assert!(s["host_probes"].as_u64().unwrap() >= 2 * unsigned, "{s}");
    let found = found_column(dir.path());
    assert!(found.iter().all(|(_, f)| f.as_deref() == Some("created")));
    assert!(
        fake.file_requests()
            .iter()
            .all(|r| r.credential_headers.is_empty())
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_ends_in_error_is_failed_with_its_reason_from_the_api() {
    let fake = StreamFake::start(FakeConfig {
        progress: Progress::PerPoll { step: 25.0 },
        ..config(0, 0)
    })
    .await
    .unwrap();
    let id = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0";
    fake.add_video(
        id,
        VideoOptions {
            fails_at: Some(50.0),
            ..VideoOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    // The API is asked once the host has been silent past the first API
    // poll (30 s by default; shortened here, the rule is the same).
    let run = export(&fake, dir.path(), &[id, "--first-api-poll", "2s"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let s = run.summary();
    let reason = s["failed"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("generation failed (status error at 50%)"),
        "{reason}"
    );
    // The download host could not tell (404 throughout); the API did.
    assert!(fake.api_requests_on(Route::List) >= 1);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_host_that_never_serves_ends_in_a_timeout_not_a_hang() {
    let fake = StreamFake::start(FakeConfig {
        progress: Progress::OverTime {
            duration: Duration::from_secs(3600),
        },
        ..config(0, 0)
    })
    .await
    .unwrap();
    let id = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";
    fake.add_video(id, VideoOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let run = export(&fake, dir.path(), &[id, "--wait-timeout", "4s"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let reason = run.summary()["failed"][0]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("not ready after") && reason.contains("timeout"),
        "{reason}"
    );
    // Bounded API use while waiting: polls at doubling gaps.
    assert!(fake.api_requests_on(Route::List) <= 3);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_url_serving_a_bad_file_is_not_accepted() {
    let id = "abababababababababababababababab".to_owned();
    let fake = StreamFake::start(FakeConfig {
        videos: vec![id.clone()],
        ..config(0, 1)
    })
    .await
    .unwrap();
    // The probe and the fetch: both get the first half of the file, with a
    // Content-Length that says so.
    fake.inject(Route::File, Fault::ShortFile, Some(2));
    let dir = tempfile::tempdir().unwrap();
    let run = export(&fake, dir.path(), &[&id]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let s = run.summary();
    assert_eq!(s["done"], 0);
    let reason = s["failed"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("verification failed"), "{reason}");
    assert!(!dir.path().join(format!("{id}.mp4")).exists());
    fake.shutdown().await;
}
