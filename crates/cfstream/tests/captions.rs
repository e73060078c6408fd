//! Captions, additional audio tracks and `account.json`, end to end: the
//! real binary against stream-fake (its API serves the caption lists and
//! WebVTT, its download host the HLS manifests, signed like the files),
//! into a directory and into SeaweedFS (`weed mini`, as in `bucket.rs`).
//!
//! The fixture: six listed videos,
//! - `0`: captions `en`, `pt-BR` (a region) and `zh-Hant` (a script,
//!   generated), all ready;
//! - `1`: `fr` ready and `de` still generating;
//! - `2`: no caption, two additional audio tracks (one ready, one queued);
//! - `3`: signed, caption `es` ready;
//! - `4`: nothing;
//! - `5`: signed, nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Finished, bucket_objects, finish, sha256_hex, with_bucket};

use serde_json::{Value, json};
use stream_fake::captions::{FakeAudioTrack, FakeCaption};
use stream_fake::catalog::{CatalogVideo, epoch};
use stream_fake::{FakeConfig, Fault, Progress, Route, StreamFake};
use testkit::seaweed::{BUCKET, Seaweed};

const TOKEN: &str = "captions-test-api-token-never-printed";
const SIZE: u64 = 48 * 1024;

fn uid(i: usize) -> String {
    format!("{i:032x}")
}

/// Every caption of the fixture, by video.
fn captions() -> BTreeMap<String, Vec<FakeCaption>> {
    let zh = FakeCaption {
        generated: true,
        ..FakeCaption::ready(&uid(0), "zh-Hant", "中文（繁體）")
    };
    BTreeMap::from([
        (
            uid(0),
            vec![
                FakeCaption::ready(&uid(0), "en", "English"),
                FakeCaption::ready(&uid(0), "pt-BR", "Português (Brasil)"),
                zh,
            ],
        ),
        (
            uid(1),
            vec![
                FakeCaption::ready(&uid(1), "fr", "Français"),
                FakeCaption::generating(&uid(1), "de", "Deutsch"),
            ],
        ),
        (uid(3), vec![FakeCaption::ready(&uid(3), "es", "Español")]),
    ])
}

fn audio_tracks() -> Vec<FakeAudioTrack> {
    vec![
        FakeAudioTrack {
            uid: "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1".into(),
            label: "Director's commentary".into(),
            default: false,
            status: "ready".into(),
        },
        FakeAudioTrack {
            uid: "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2".into(),
            label: "Español".into(),
            default: false,
            status: "queued".into(),
        },
    ]
}

async fn fake() -> StreamFake {
    let catalog = (0..6)
        .map(|i| {
            let mut v = CatalogVideo::ready(&uid(i), epoch() + chrono::Duration::seconds(i as i64));
            v.require_signed_urls = i == 3 || i == 5;
            v
        })
        .collect();
    let fake = StreamFake::start(FakeConfig {
        videos: Vec::new(),
        catalog,
        file_size: SIZE,
        // Ready soon after their create: the download host's probes find
        // them (this file is about captions, not waiting).
        progress: Progress::OverTime {
            duration: Duration::from_millis(200),
        },
        api_token: TOKEN.into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    for (video, list) in captions() {
        fake.set_captions(&video, list);
    }
    fake.set_audio_tracks(&uid(2), audio_tracks());
    fake
}

/// The second caption of video 1 is now ready.
fn finish_generating(fake: &StreamFake) {
    let mut list = captions()[&uid(1)].clone();
    list[1] = FakeCaption {
        generated: true,
        ..FakeCaption::ready(&uid(1), "de", "Deutsch")
    };
    fake.set_captions(&uid(1), list);
}

fn cfstream(fake: &StreamFake, global: &[&str], args: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("cfstream"));
    cmd.env_clear()
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args(global)
        .arg("export")
        .args(["--all", "--json", "--first-api-poll", "1s"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn run(cmd: &mut Command) -> Finished {
    finish(cmd.spawn().unwrap(), Duration::from_secs(120)).await
}

/// API requests on `route` since `before` (a map of earlier counts).
struct Counts(BTreeMap<&'static str, u64>);

const ROUTES: &[(&str, Route)] = &[
    ("captions", Route::Captions),
    ("vtt", Route::Vtt),
    ("audio", Route::Audio),
    ("watermarks", Route::Watermarks),
    ("token", Route::Token),
    ("any", Route::Any),
];

impl Counts {
    fn now(fake: &StreamFake) -> Self {
        Self(
            ROUTES
                .iter()
                .map(|(name, route)| (*name, fake.api_requests_on(*route)))
                .collect(),
        )
    }
    fn since(fake: &StreamFake, before: &Counts) -> BTreeMap<&'static str, u64> {
        let now = Self::now(fake);
        now.0.iter().map(|(k, v)| (*k, v - before.0[k])).collect()
    }
}

fn counts(pairs: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    pairs.iter().copied().collect()
}

/// What the archive holds, by file name (a directory or a prefix).
type Archive = BTreeMap<String, Vec<u8>>;

fn read_dir(dir: &Path) -> Archive {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// Checks every video's captions and audio tracks in the archive, and
/// `account.json`. `written`: the captions expected as files (video,
/// language); the others must be recorded and have no file.
fn assert_archive(fake: &StreamFake, archive: &Archive, written: &[(usize, &str)]) {
    assert_archive_from(fake, archive, written, "manifest");
}

/// [`assert_archive`], `account.json` naming `captions_from`.
fn assert_archive_from(
    fake: &StreamFake,
    archive: &Archive,
    written: &[(usize, &str)],
    captions_from: &str,
) {
    let all = captions();
    for i in 0..6 {
        let uid = uid(i);
        let media = &archive[&format!("{uid}.mp4")];
        assert_eq!(media.len() as u64, SIZE, "{uid}.mp4");
        let sidecar: Value = serde_json::from_slice(&archive[&format!("{uid}.json")]).unwrap();
        let listed = all.get(&uid).cloned().unwrap_or_default();
        let recorded = sidecar["captions"].as_array().unwrap_or_else(|| {
            panic!("{uid}: no captions recorded: {sidecar}");
        });
        assert_eq!(recorded.len(), listed.len(), "{sidecar}");
        for c in &listed {
            let entry = recorded
                .iter()
                .find(|e| e["language"] == c.language.as_str())
                .unwrap_or_else(|| panic!("{uid} {}: not recorded", c.language));
            assert_eq!(entry["label"], c.label.as_str());
            assert_eq!(entry["generated"], c.generated);
            let name = format!("{uid}.{}.vtt", c.language);
            if written.contains(&(i, c.language.as_str())) {
                let bytes = archive
                    .get(&name)
                    .unwrap_or_else(|| panic!("{name} missing"));
                // Byte-identical to what the API serves once ready.
                let served = FakeCaption::ready(&uid, &c.language, &c.label).vtt;
                assert_eq!(bytes, served.as_bytes(), "{name}");
                assert!(bytes.starts_with(b"WEBVTT"));
                assert_eq!(entry["status"], "ready");
                assert_eq!(entry["file"], name.as_str());
                assert_eq!(entry["size"], bytes.len() as u64);
                assert_eq!(entry["sha256"], sha256_hex(bytes).as_str());
            } else {
                assert!(!archive.contains_key(&name), "{name} written");
                assert!(entry.get("file").is_none(), "{entry}");
            }
        }
        let tracks = sidecar["audio_tracks"].as_array().unwrap();
        if i == 2 {
            let expected: Vec<Value> = audio_tracks().iter().map(|t| t.to_json()).collect();
            assert_eq!(tracks, &expected, "{sidecar}");
        } else {
            assert!(tracks.is_empty(), "{sidecar}");
        }
    }
    let account: Value = serde_json::from_slice(&archive["account.json"]).unwrap();
    assert_eq!(account["account_id"], fake.config().account_id.as_str());
    assert_eq!(account["archive"]["tool"], "cfstream");
    assert_eq!(account["archive"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(account["archive"]["captions"], captions_from);
    // The profiles as the API gave them (compared as the typed model: the
    // spec's `number` sizes come back as floats).
    type Profiles = Vec<cloudflare_stream_downloads::types::Watermark>;
    let recorded: Profiles = serde_json::from_value(account["watermarks"].clone()).unwrap();
    let served: Profiles = serde_json::from_value(stream_fake::captions::watermarks()).unwrap();
    assert_eq!(recorded, served, "{account}");
    assert_eq!(recorded.len(), 1);
    // Nothing else: media, sidecars, captions, the account record (and the
    // directory's state).
    for name in archive.keys() {
        assert!(
            name.ends_with(".mp4")
                || name.ends_with(".json")
                || name.ends_with(".vtt")
                || name.starts_with("cfstream-export."),
            "{name}"
        );
    }
    assert_eq!(
        archive.keys().filter(|n| n.ends_with(".vtt")).count(),
        written.len()
    );
}

const FIRST_RUN: &[(usize, &str)] = &[
    (0, "en"),
    (0, "pt-BR"),
    (0, "zh-Hant"),
    (1, "fr"),
    (3, "es"),
];
const AFTER_GENERATION: &[(usize, &str)] = &[
    (0, "en"),
    (0, "pt-BR"),
    (0, "zh-Hant"),
    (1, "fr"),
    (1, "de"),
    (3, "es"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captions_audio_tracks_and_the_account_into_a_directory_then_a_caption_generated_later() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let before = Counts::now(&fake);
    let first = run(&mut cfstream(&fake, &[], &["--dir", d])).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let s = first.summary();
    assert_eq!(s["done"], 6, "{s}");
    assert_eq!(
        (
            &s["captions_written"],
            &s["captions_pending"],
            &s["audio_tracks"]
        ),
        (&json!(5), &json!(1), &json!(2)),
        "{s}"
    );
    assert_archive(&fake, &read_dir(dir.path()), FIRST_RUN);
    // The budget: a caption list only for the videos whose manifest lists
    // subtitles (0, 1, 3); a WebVTT per ready caption; the audio tracks
    // for video 2 (its manifest lists a second audio rendition); the
    // watermarks once. Without a signing key, the signed videos (3, 5)
    // cost a token from the API for their file, and one for their
    // manifest.
    let spent = Counts::since(&fake, &before);
    assert_eq!(
        spent,
        counts(&[
            ("captions", 3),
            ("vtt", 5),
            ("audio", 1),
            ("watermarks", 1),
            ("token", 4),
            ("any", spent["any"]),
        ])
    );
    assert_eq!(s["manifests"], 6, "one per video: {s}");
    let signed_manifests = fake
        .file_requests()
        .iter()
        .filter(|r| r.path.ends_with("/manifest/video.m3u8") && r.signed)
        .count();
    assert_eq!(signed_manifests, 2);
    assert_eq!(s["api_requests"], spent["any"]);

    // The generated caption is ready: the next run asks video 1's list
    // again, writes it, and nothing else.
    finish_generating(&fake);
    let before = Counts::now(&fake);
    let second = run(&mut cfstream(&fake, &[], &["--dir", d])).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let s = second.summary();
    assert_eq!((&s["done"], &s["skipped"]), (&json!(0), &json!(6)), "{s}");
    assert_eq!(s["captions_written"], 1, "{s}");
    assert_eq!(s["manifests"], 0, "{s}");
    assert_archive(&fake, &read_dir(dir.path()), AFTER_GENERATION);
    let spent = Counts::since(&fake, &before);
    assert_eq!(
        spent,
        counts(&[
            ("captions", 1),
            ("vtt", 1),
            ("audio", 0),
            ("watermarks", 1),
            ("token", 0),
            // The listing, the list, the WebVTT, the watermarks.
            ("any", 4),
        ])
    );

    // A complete archive: the listing alone, no manifest.
    let before = Counts::now(&fake);
    let third = run(&mut cfstream(&fake, &[], &["--dir", d])).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    let s = third.summary();
    assert_eq!(
        (&s["skipped"], &s["manifests"]),
        (&json!(6), &json!(0)),
        "{s}"
    );
    assert_eq!(Counts::since(&fake, &before)["any"], 1);
    assert_archive(&fake, &read_dir(dir.path()), AFTER_GENERATION);
    // A caption file deleted by hand is fetched again, alone.
    std::fs::remove_file(dir.path().join(format!("{}.pt-BR.vtt", uid(0)))).unwrap();
    let before = Counts::now(&fake);
    let fourth = run(&mut cfstream(&fake, &[], &["--dir", d])).await;
    assert_eq!(fourth.code, 0, "{}", fourth.stderr);
    let spent = Counts::since(&fake, &before);
    assert_eq!((spent["vtt"], spent["captions"]), (1, 0), "{spent:?}");
    assert_archive(&fake, &read_dir(dir.path()), AFTER_GENERATION);
    assert!(!first.stderr.contains(TOKEN) && !first.stdout.contains(TOKEN));
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_reads_signed_manifests_and_no_captions_writes_none() {
    let fake = fake().await;
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key.json");
    let made = run(Command::new(assert_cmd::cargo::cargo_bin("cfstream"))
        .env_clear()
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args(["keys", "create", "--save", key.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()))
    .await;
    assert_eq!(made.code, 0, "{}", made.stderr);
    let dir = tempfile::tempdir().unwrap();
    let before = Counts::now(&fake);
    let out = run(&mut cfstream(
        &fake,
        &["--signing-key", key.to_str().unwrap()],
        &["--dir", dir.path().to_str().unwrap()],
    ))
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_archive(&fake, &read_dir(dir.path()), FIRST_RUN);
    // Every manifest read from the download host, the signed ones with a
    // local token: the API is asked only for what only it gives (videos
    // 0, 1 and 3 have captions; 2 has audio tracks; 5 has nothing).
    let spent = Counts::since(&fake, &before);
    assert_eq!(
        (
            spent["captions"],
            spent["vtt"],
            spent["audio"],
            spent["token"]
        ),
        (3, 5, 1, 0),
        "{spent:?}"
    );
    let manifests: Vec<_> = fake
        .file_requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/manifest/video.m3u8"))
        .collect();
    assert_eq!(manifests.len(), 6);
    assert_eq!(
        manifests.iter().filter(|r| r.signed).count(),
        2,
        "videos 3 and 5"
    );
    assert!(!out.stderr.contains("eyJhbGci") && !out.stdout.contains("eyJhbGci"));

    // --no-captions: media, sidecars and the account record; no caption
    // file, no caption or audio request, no manifest.
    let bare = tempfile::tempdir().unwrap();
    let before = Counts::now(&fake);
    let out = run(&mut cfstream(
        &fake,
        &[],
        &["--dir", bare.path().to_str().unwrap(), "--no-captions"],
    ))
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let spent = Counts::since(&fake, &before);
    assert_eq!(
        (spent["captions"], spent["vtt"], spent["audio"]),
        (0, 0, 0),
        "{spent:?}"
    );
    assert_eq!(out.summary()["manifests"], 0);
    let archive = read_dir(bare.path());
    assert!(!archive.keys().any(|n| n.ends_with(".vtt")));
    let sidecar: Value = serde_json::from_slice(&archive[&format!("{}.json", uid(2))]).unwrap();
    assert!(sidecar.get("captions").is_none(), "{sidecar}");
    assert!(sidecar.get("audio_tracks").is_none(), "{sidecar}");
    let account: Value = serde_json::from_slice(&archive["account.json"]).unwrap();
    assert_eq!(account["archive"]["captions"], "off");

    // --captions-from api: both lists for every video, no manifest; the
    // same archive.
    let asked = tempfile::tempdir().unwrap();
    let before = Counts::now(&fake);
    let out = run(&mut cfstream(
        &fake,
        &[],
        &[
            "--dir",
            asked.path().to_str().unwrap(),
            "--captions-from",
            "api",
        ],
    ))
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let spent = Counts::since(&fake, &before);
    assert_eq!(
        (spent["captions"], spent["vtt"], spent["audio"]),
        (6, 5, 6),
        "{spent:?}"
    );
    assert_eq!(out.summary()["manifests"], 0);
    assert_archive_from(&fake, &read_dir(asked.path()), FIRST_RUN, "api");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webvtt_answer_that_is_html_or_json_fails_that_caption_alone() {
    let fake = fake().await;
    // The first WebVTT asked is answered with an HTML page, the second
    // with a JSON envelope (200, success: false).
    fake.inject(Route::Vtt, Fault::OkHtml, Some(1));
    fake.inject(Route::Vtt, Fault::SuccessFalse, Some(1));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&mut cfstream(&fake, &[], &["--dir", d, "--transfers", "1"])).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let s = out.summary();
    // Every media file is there; two captions failed, each named.
    assert_eq!(s["done"], 6, "{s}");
    let failed = s["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{s}");
    assert!(failed.iter().all(|f| f["type"] == "caption"), "{s}");
    let reasons: Vec<&str> = failed
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("text/html")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("application/json")),
        "{reasons:?}"
    );
    assert_eq!(s["captions_written"], 3, "{s}");
    let archive = read_dir(dir.path());
    for f in failed {
        let (video, language) = (
            f["video_id"].as_str().unwrap(),
            f["language"].as_str().unwrap(),
        );
        assert!(!archive.contains_key(&format!("{video}.{language}.vtt")));
        let sidecar: Value = serde_json::from_slice(&archive[&format!("{video}.json")]).unwrap();
        let entry = sidecar["captions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["language"] == language)
            .unwrap()
            .clone();
        assert!(
            entry["error"].as_str().unwrap().contains("WebVTT"),
            "{entry}"
        );
    }
    // A run without --retry-failed reports them again and asks nothing;
    // with it, they are written.
    let before = Counts::now(&fake);
    let again = run(&mut cfstream(&fake, &[], &["--dir", d])).await;
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert_eq!(again.summary()["failed"].as_array().unwrap().len(), 2);
    assert!(again.stdout.contains("earlier run"), "{}", again.stdout);
    assert_eq!(Counts::since(&fake, &before)["vtt"], 0);
    let retried = run(&mut cfstream(&fake, &[], &["--dir", d, "--retry-failed"])).await;
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    assert_archive(&fake, &read_dir(dir.path()), FIRST_RUN);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_that_hangs_or_fails_leaves_captions_to_the_next_run_at_no_api_cost() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // Every manifest hangs (the files of the same host answer): each is
    // abandoned at the probe timeout, or skipped once the host's breaker
    // opens; the media go on.
    fake.inject(Route::Manifest, Fault::Slow(Duration::from_secs(30)), None);
    let before = Counts::now(&fake);
    let hung = run(&mut cfstream(
        &fake,
        &[],
        &["--dir", d, "--probe-timeout", "300ms"],
    ))
    .await;
    assert_eq!(hung.code, 0, "{}", hung.stderr);
    let s = hung.summary();
    assert_eq!(
        (&s["done"], &s["extras_deferred"]),
        (&json!(6), &json!(6)),
        "{s}"
    );
    assert_eq!(s["captions_written"], 0, "{s}");
    let spent = Counts::since(&fake, &before);
    assert_eq!(
        (spent["captions"], spent["vtt"], spent["audio"]),
        (0, 0, 0),
        "no list asked in their place: {spent:?}"
    );
    let archive = read_dir(dir.path());
    let sidecar: Value = serde_json::from_slice(&archive[&format!("{}.json", uid(0))]).unwrap();
    assert!(
        sidecar.get("captions").is_none(),
        "not known yet: {sidecar}"
    );
    // Then 5xx and 429 answers: those videos are left for the next run,
    // the others are archived.
    fake.clear_faults();
    fake.inject(Route::Manifest, Fault::ServerErrorHtml(503), Some(3));
    fake.inject(
        Route::Manifest,
        Fault::RateLimited(stream_fake::RetryAfter::Seconds(60)),
        Some(1),
    );
    let throttled = run(&mut cfstream(&fake, &[], &["--dir", d])).await;
    assert_eq!(throttled.code, 0, "{}", throttled.stderr);
    let s = throttled.summary();
    assert_eq!(s["done"], 0, "{s}");
    // Each manifest answered 503 or 429, or skipped while the host asked
    // to slow down (which of them depends on their order), is deferred.
    let host = &s["hosts"][0];
    let unanswered = ["throttled", "skipped", "failed"]
        .iter()
        .map(|k| host[k].as_u64().unwrap())
        .sum::<u64>();
    assert!(unanswered >= 4, "{s}");
    assert_eq!(s["extras_deferred"], unanswered, "{s}");
    let written_then = s["captions_written"].as_u64().unwrap();
    // The host is well again: the next run archives the rest.
    fake.clear_faults();
    let well = run(&mut cfstream(&fake, &[], &["--dir", d])).await;
    assert_eq!(well.code, 0, "{}", well.stderr);
    let s = well.summary();
    assert_eq!(s["extras_deferred"], 0, "{s}");
    assert_eq!(
        written_then + s["captions_written"].as_u64().unwrap(),
        5,
        "{s}"
    );
    assert_archive(&fake, &read_dir(dir.path()), FIRST_RUN);
    fake.shutdown().await;
}

fn into_bucket(fake: &StreamFake, weed: &Seaweed, state: &Path, args: &[&str]) -> Command {
    let mut cmd = cfstream(fake, &[], args);
    with_bucket(&mut cmd, weed)
        .args(["--dest", &format!("s3://{BUCKET}/archive")])
        .arg("--state")
        .arg(state);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captions_into_a_bucket_resume_from_the_bucket_alone() {
    let weed = Seaweed::start().await.unwrap_or_else(|e| panic!("{e}"));
    let fake = fake().await;
    let states = tempfile::tempdir().unwrap();
    // The first WebVTT asked fails (an HTML page): that caption alone.
    fake.inject(Route::Vtt, Fault::OkHtml, Some(1));
    let first = run(&mut into_bucket(
        &fake,
        &weed,
        &states.path().join("a.sqlite"),
        &[],
    ))
    .await;
    assert_eq!(first.code, 1, "{}", first.stderr);
    let s = first.summary();
    assert_eq!(
        (&s["done"], &s["captions_written"]),
        (&json!(6), &json!(4)),
        "{s}"
    );
    let failed = &s["failed"].as_array().unwrap()[0];
    let lost = (
        failed["video_id"].as_str().unwrap().to_owned(),
        failed["language"].as_str().unwrap().to_owned(),
    );
    assert!(
        failed["reason"].as_str().unwrap().contains("text/html"),
        "{s}"
    );
    let archive = bucket_objects(&weed, "archive").await;
    assert!(!archive.contains_key(&format!("{}.{}.vtt", lost.0, lost.1)));
    assert_eq!(archive.keys().filter(|n| n.ends_with(".vtt")).count(), 4);

    // A fresh state (another machine): the bucket's sidecars tell what is
    // there; the generated caption is now ready and the failed one is
    // tried again. Only those two WebVTT are fetched, no media.
    finish_generating(&fake);
    let before = Counts::now(&fake);
    let second = run(&mut into_bucket(
        &fake,
        &weed,
        &states.path().join("b.sqlite"),
        &["--retry-failed"],
    ))
    .await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let s = second.summary();
    assert_eq!((&s["done"], &s["skipped"]), (&json!(0), &json!(6)), "{s}");
    assert_eq!(s["captions_written"], 2, "{s}");
    let spent = Counts::since(&fake, &before);
    assert_eq!(spent["vtt"], 2, "{spent:?}");
    assert_eq!(spent["audio"], 0, "{spent:?}");
    assert_archive(
        &fake,
        &bucket_objects(&weed, "archive").await,
        AFTER_GENERATION,
    );

    // A third machine over the complete archive: the listing alone, no
    // manifest, nothing written.
    let before = Counts::now(&fake);
    let third = run(&mut into_bucket(
        &fake,
        &weed,
        &states.path().join("c.sqlite"),
        &[],
    ))
    .await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    let s = third.summary();
    assert_eq!(
        (&s["skipped"], &s["manifests"]),
        (&json!(6), &json!(0)),
        "{s}"
    );
    assert_eq!(Counts::since(&fake, &before)["any"], 1);
    assert_archive(
        &fake,
        &bucket_objects(&weed, "archive").await,
        AFTER_GENERATION,
    );
    fake.shutdown().await;
}
