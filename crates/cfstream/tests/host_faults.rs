//! `cfstream export` when the download host misbehaves, end to end
//! against stream-fake: the listing's playback host (where existing
//! downloads are probed) unresolvable, refusing, or accepting and never
//! answering; the download host answering 503 to a share of requests and
//! cutting a share of bodies. Every export completes, exit 0, with every
//! file byte-identical; a host that cannot answer is given up on after a
//! few probes (its breaker), not waited for.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use stream_fake::content::FileContent;
use stream_fake::{FakeConfig, Fault, FaultRule, Progress, Route, StreamFake};

use crate::common::{Finished, finish, sha256_hex};

const TOKEN: &str = "host-faults-test-token-never-printed";
const VIDEOS: usize = 40;
const SIZE: u64 = 256 * 1024;

/// `VIDEOS` ready, unsigned videos whose downloads are ready 0.6 s after
/// their create; the listing's playback URLs on `playback` (the download
/// host when `None`).
fn config(playback: Option<String>) -> FakeConfig {
    FakeConfig {
        videos: (1..=VIDEOS).map(|i| format!("{i:032x}")).collect(),
        generated_videos: 0,
        file_size: SIZE,
        progress: Progress::OverTime {
            duration: Duration::from_millis(600),
        },
        api_token: TOKEN.into(),
        playback_base: playback,
        ..FakeConfig::default()
    }
}

async fn export(fake: &StreamFake, dir: &Path, args: &[&str]) -> Finished {
    let child = Command::new(assert_cmd::cargo::cargo_bin("cfstream"))
        .env_clear()
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args(["--json", "export", "--all", "--dir"])
        .arg(dir)
        .args(["--rate", "5000/1s", "--probe-timeout", "1s"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, Duration::from_secs(120)).await
}

/// Every video's `kind` file is in `dir`, byte-identical to what the fake
/// serves, and its sidecar records its SHA-256.
fn assert_all_files(fake: &StreamFake, dir: &Path, kinds: &[&str]) {
    for uid in &fake.config().videos {
        let sidecar: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{uid}.json"))).unwrap())
                .unwrap();
        for kind in kinds {
            let (ext, served) = match *kind {
                "audio" => ("m4a", "audio.m4a"),
                _ => ("mp4", "default.mp4"),
            };
            let bytes = std::fs::read(dir.join(format!("{uid}.{ext}")))
                .unwrap_or_else(|e| panic!("{uid}.{ext}: {e}"));
            assert_eq!(bytes.len() as u64, SIZE, "{uid}.{ext}");
            assert_eq!(
                FileContent::new(uid, served, SIZE).first_mismatch(0, &bytes),
                None,
                "{uid}.{ext} is not what the fake serves"
            );
            assert_eq!(
                sidecar["downloads"][kind]["sha256"].as_str(),
                Some(sha256_hex(&bytes).as_str()),
                "{uid} {kind}"
            );
        }
    }
}

/// The summary's entry for `host` (scheme://name:port).
fn host_stats(summary: &Value, host: &str) -> Value {
    summary["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("no {host} in {summary}"))
        .clone()
}

/// What a run against a playback host that cannot answer must show: exit
/// 0, every file, one create per file, and the host given up on at its
/// first failure (it never answered): only the probes in flight then (at
/// most 16 per host) were sent, every other probe of it was skipped, and
/// the breaker's opening was said once.
fn assert_host_given_up(fake: &StreamFake, dir: &Path, run: &Finished, bad_host: &str) {
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = run.summary();
    assert_eq!(s["done"], VIDEOS as u64, "{s}");
    assert_eq!(s["failed"].as_array().unwrap().len(), 0, "{s}");
    assert_all_files(fake, dir, &["default"]);
    assert_eq!(fake.api_requests_on(Route::CreateType), VIDEOS as u64);
    let bad = host_stats(&s, bad_host);
    assert_eq!(bad["opened"], 1, "{bad}");
    let failed = bad["failed"].as_u64().unwrap();
    assert!((1..=16).contains(&failed), "{bad}");
    assert_eq!(bad["probes"], bad["failed"], "{bad}");
    assert_eq!(
        bad["probes"].as_u64().unwrap() + bad["skipped"].as_u64().unwrap(),
        2 * VIDEOS as u64,
        "one probe asked per video at its derived URL, and its manifest: {bad}"
    );
    // Their manifests could not be had: captions wait for the next run
    // (no API request for them now).
    assert_eq!(s["manifests"], VIDEOS as u64, "{s}");
    assert_eq!(s["extras_deferred"], VIDEOS as u64, "{s}");
    // The download host (the API's URLs) was probed for readiness as
    // usual, and is healthy.
    let good = host_stats(&s, &fake.files_base_url());
    assert_eq!(good["failed"], 0, "{good}");
    assert_eq!(good["opened"], 0, "{good}");
    assert_eq!(
        run.stderr.matches("does not answer").count(),
        1,
        "one notice: {}",
        run.stderr
    );
    assert!(!run.stderr.contains(TOKEN));
}

/// An export whose listing's playback URLs are on `bad`: the host is given
/// up on ([`assert_host_given_up`]); returns the run.
async fn export_with_playback_on(bad: &str) -> Finished {
    let fake = StreamFake::start(config(Some(bad.to_owned())))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = export(&fake, dir.path(), &[]).await;
    assert_host_given_up(&fake, dir.path(), &run, bad);
    fake.shutdown().await;
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playback_host_that_refuses_connections_is_given_up_on() {
    export_with_playback_on(&testkit::hosts::refusing_host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playback_host_that_never_answers_costs_one_probe_timeout() {
    let run = export_with_playback_on(&testkit::hosts::silent_host().unwrap()).await;
    assert!(run.stderr.contains("no answer within 1s"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playback_host_that_does_not_resolve_is_given_up_on() {
    // Stream's own form of delivery host (the only https form probed), on
    // a name that does not exist. These machines resolve nothing outside;
    // on one that reaches the internet the name may resolve, and the case
    // is not this test's: it says so and ends.
    let name = "customer-cfstream-test-nxdomain.cloudflarestream.com";
    if tokio::net::lookup_host((name, 443)).await.is_ok() {
        eprintln!(
            "{name} resolves on this machine: the unresolvable-host case cannot be made here"
        );
        return;
    }
    export_with_playback_on(&format!("https://{name}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_download_host_still_gives_every_file_byte_identical() {
    let fake = StreamFake::start(config(None)).await.unwrap();
    // 15 % of the download host's requests answer 503 (probes included),
    // 10 % of the bodies it starts are cut half-way.
    fake.inject_rule(FaultRule::share(
        Route::File,
        Fault::ServerErrorHtml(503),
        15,
    ));
    fake.inject_rule(FaultRule::share(Route::File, Fault::CutMidBody, 10));
    let dir = tempfile::tempdir().unwrap();
    let run = export(&fake, dir.path(), &["--type", "both"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = run.summary();
    assert_eq!(s["done"], 2 * VIDEOS as u64, "{s}");
    assert_all_files(&fake, dir.path(), &["default", "audio"]);
    // The faults happened, and cut transfers were resumed with a Range
    // from where they stopped (not only from byte 0).
    let host = host_stats(&s, &fake.files_base_url());
    assert!(host["throttled"].as_u64().unwrap() > 0, "{host}");
    assert_eq!(
        host["opened"], 0,
        "503s slow a host down, they do not open its breaker: {host}"
    );
    let resumed = fake
        .file_requests()
        .iter()
        .filter(|r| {
            r.range
                .as_deref()
                .is_some_and(|r| r != "bytes=0-0" && !r.starts_with("bytes=0-"))
        })
        .count();
    assert!(resumed > 0, "no transfer resumed with a Range");
    fake.shutdown().await;
}
