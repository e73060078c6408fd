//! Trusting and following an archive, end to end: `cfstream verify` (a
//! clean archive, then each kind of damage named; a sample; no
//! credentials), `cfstream export status` across three shards with one
//! killed, failures grouped in the human summary, the progress line of a
//! non-terminal stderr, and `--log-format json`. Into a directory and into
//! SeaweedFS (`weed mini`, as in `bucket.rs`), against stream-fake.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Finished, finish};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::Value;
use stream_fake::captions::FakeCaption;
use stream_fake::catalog::{CatalogVideo, epoch};
use stream_fake::{FakeConfig, Progress, StreamFake, VideoOptions};
use testkit::seaweed::{BUCKET, Seaweed};

const TOKEN: &str = "archive-test-api-token-never-printed";
const SIZE: u64 = 64 * 1024;

fn uid(i: usize) -> String {
    format!("{i:032x}")
}

/// `videos` ready videos of `SIZE`; video 0 has an English caption.
async fn fake(videos: usize, chunk_delay: Duration) -> StreamFake {
    fake_of(videos, SIZE, chunk_delay).await
}

/// [`fake`] with files of `size` bytes.
async fn fake_of(videos: usize, size: u64, chunk_delay: Duration) -> StreamFake {
    let catalog = (0..videos)
        .map(|i| CatalogVideo::ready(&uid(i), epoch() + chrono::Duration::seconds(i as i64)))
        .collect();
    let fake = StreamFake::start(FakeConfig {
        videos: Vec::new(),
        catalog,
        file_size: size,
        file_chunk_delay: chunk_delay,
        progress: Progress::OverTime {
            duration: Duration::from_millis(200),
        },
        api_token: TOKEN.into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    fake.set_captions(&uid(0), vec![FakeCaption::ready(&uid(0), "en", "English")]);
    fake
}

/// Borrowed views of owned arguments, for [`cfstream`].
fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `cfstream ARGS` with the fake's credentials (or none), a clean
/// environment otherwise, and stdin closed.
fn cfstream(fake: Option<&StreamFake>, args: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("cfstream"));
    cmd.env_clear();
    if let Some(fake) = fake {
        cmd.env("CLOUDFLARE_API_TOKEN", TOKEN)
            .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
            .env("CLOUDFLARE_BASE_URL", fake.base_url());
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `cmd` with SeaweedFS's endpoint and credentials.
fn into_bucket(mut cmd: Command, weed: &Seaweed) -> Command {
    crate::common::with_bucket(&mut cmd, weed);
    cmd
}

async fn run(mut cmd: Command) -> Finished {
    finish(cmd.spawn().unwrap(), Duration::from_secs(120)).await
}

/// The problems of a `--json` verify: (kind, name).
fn problems(run: &Finished) -> BTreeSet<(String, String)> {
    run.summary()["problems_found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The damage every verify test does, and what it must find.
fn expected_damage() -> BTreeSet<(String, String)> {
    [
        ("digest", format!("{}.mp4", uid(1))),
        ("missing", format!("{}.en.vtt", uid(0))),
        ("sidecar", format!("{}.json", uid(2))),
        ("stray", "stray.bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_verifies_clean_then_each_damage_is_named_with_no_credentials() {
    let fake = fake(40, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let export = run(cfstream(
        Some(&fake),
        &["export", "--all", "--dir", d, "--first-api-poll", "1s"],
    ))
    .await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    // No credentials at all: verify reads the archive alone.
    let clean = run(cfstream(None, &["--json", "verify", "--dir", d])).await;
    assert_eq!(clean.code, 0, "{}\n{}", clean.stdout, clean.stderr);
    let s = clean.summary();
    assert_eq!(
        (&s["videos"], &s["videos_checked"]),
        (&40.into(), &40.into()),
        "{s}"
    );
    assert_eq!(s["files_checked"], 41, "40 MP4 and a caption: {s}");
    assert_eq!(s["problems"], 0, "{s}");
    let requests = fake.api_request_count();

    // One flipped byte in a media file, a caption deleted, a sidecar
    // truncated, a file nobody names.
    let mp4 = dir.path().join(format!("{}.mp4", uid(1)));
    let mut bytes = std::fs::read(&mp4).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&mp4, &bytes).unwrap();
    std::fs::remove_file(dir.path().join(format!("{}.en.vtt", uid(0)))).unwrap();
    let sidecar = dir.path().join(format!("{}.json", uid(2)));
    let text = std::fs::read(&sidecar).unwrap();
    std::fs::write(&sidecar, &text[..text.len() / 2]).unwrap();
    std::fs::write(dir.path().join("stray.bin"), b"not ours").unwrap();
    let damaged = run(cfstream(None, &["--json", "verify", "--dir", d])).await;
    assert_eq!(damaged.code, 1, "{}", damaged.stderr);
    assert_eq!(problems(&damaged), expected_damage());
    // The human output names each one too.
    let human = run(cfstream(None, &["verify", "--dir", d])).await;
    assert_eq!(human.code, 1);
    for (kind, name) in expected_damage() {
        assert!(
            human
                .stdout
                .lines()
                .any(|l| l.starts_with(&kind) && l.contains(&name)),
            "{kind} {name}: {}",
            human.stdout
        );
    }
    // A sample checks about the share asked (strays are found anyway).
    let sampled = run(cfstream(
        None,
        &["--json", "verify", "--dir", d, "--sample", "25"],
    ))
    .await;
    let s = sampled.summary();
    let checked = s["videos_checked"].as_u64().unwrap();
    assert!((1..=25).contains(&checked), "{checked} of 40 for 25 %: {s}");
    assert!(problems(&sampled).contains(&("stray".into(), "stray.bin".into())));
    // Against the account: the video whose sidecar no longer parses is
    // not counted as archived... it has a sidecar; none is lacking.
    let against = run(cfstream(
        Some(&fake),
        &["--json", "verify", "--dir", d, "--against-account"],
    ))
    .await;
    assert_eq!(against.code, 1);
    assert!(!problems(&against).iter().any(|(k, _)| k == "not-archived"));
    // Verify made no API request but the one listing asked for.
    assert_eq!(fake.api_request_count(), requests + 1);
    // A directory that is not there cannot be read: exit 3.
    let gone = run(cfstream(None, &["verify", "--dir", "/nonexistent/archive"])).await;
    assert_eq!(gone.code, 3, "{}", gone.stderr);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_verifies_clean_then_each_damage_is_named() {
    let weed = Seaweed::start().await.unwrap_or_else(|e| panic!("{e}"));
    let fake = fake(12, Duration::ZERO).await;
    let states = tempfile::tempdir().unwrap();
    let dest = format!("s3://{BUCKET}/verified");
    let export = run(into_bucket(
        cfstream(
            Some(&fake),
            &[
                "export",
                "--all",
                "--dest",
                &dest,
                "--state",
                states.path().join("s.sqlite").to_str().unwrap(),
                "--first-api-poll",
                "1s",
            ],
        ),
        &weed,
    ))
    .await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    let verify = || {
        into_bucket(
            cfstream(None, &["--json", "verify", "--dest", &dest]),
            &weed,
        )
    };
    let clean = run(verify()).await;
    assert_eq!(clean.code, 0, "{}\n{}", clean.stdout, clean.stderr);
    assert_eq!(clean.summary()["files_checked"], 13);

    let store = weed.bucket().build().unwrap();
    let key = |name: &str| ObjectPath::from(format!("verified/{name}"));
    let mp4 = key(&format!("{}.mp4", uid(1)));
    let mut bytes = store
        .get(&mp4)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    store.put(&mp4, PutPayload::from(bytes)).await.unwrap();
    store
        .delete(&key(&format!("{}.en.vtt", uid(0))))
        .await
        .unwrap();
    let sidecar = key(&format!("{}.json", uid(2)));
    let text = store.get(&sidecar).await.unwrap().bytes().await.unwrap();
    store
        .put(&sidecar, PutPayload::from(text.slice(..text.len() / 2)))
        .await
        .unwrap();
    store
        .put(&key("stray.bin"), PutPayload::from_static(b"not ours"))
        .await
        .unwrap();
    let damaged = run(verify()).await;
    assert_eq!(damaged.code, 1, "{}", damaged.stderr);
    assert_eq!(problems(&damaged), expected_damage());
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_three_shards_one_killed_tells_each_shards_last_run() {
    let weed = Seaweed::start().await.unwrap_or_else(|e| panic!("{e}"));
    // 30 videos of 1 MiB, sent in 64 KiB chunks 30 ms apart (about 0.5 s
    // a file): slowly enough to kill shard 2 mid-run.
    let fake = fake_of(30, 1024 * 1024, Duration::from_millis(30)).await;
    let states = tempfile::tempdir().unwrap();
    let dest = format!("s3://{BUCKET}/sharded");
    let spawn = |k: u32| {
        into_bucket(
            cfstream(
                Some(&fake),
                &[
                    "--json",
                    "export",
                    "--all",
                    "--dest",
                    &dest,
                    "--state",
                    states.path().join(format!("s{k}.sqlite")).to_str().unwrap(),
                    "--shard",
                    &format!("{k}/3"),
                    "--first-api-poll",
                    "1s",
                    "--report-interval",
                    "200ms",
                ],
            ),
            &weed,
        )
        .spawn()
        .unwrap()
    };
    let one = spawn(1);
    let mut two = spawn(2);
    let three = spawn(3);
    // Kill shard 2 once its report says it has done a file.
    let started = Instant::now();
    let store = weed.bucket().build().unwrap();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "shard 2 never got going"
        );
        if shard_report(&store, "2/3")
            .await
            .is_some_and(|r| r["counts"]["done"].as_u64() > Some(0))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    two.kill().unwrap();
    two.wait().unwrap();
    for child in [one, three] {
        let run = finish(child, Duration::from_secs(120)).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    // What the bucket holds, counted by the test.
    let mut sidecars = BTreeSet::new();
    let mut listing = store.list(Some(&ObjectPath::from("sharded")));
    while let Some(meta) = futures_util::StreamExt::next(&mut listing).await {
        let name = meta.unwrap().location.filename().unwrap().to_owned();
        if let Some(uid) = name.strip_suffix(".json")
            && uid.len() == 32
        {
            sidecars.insert(uid.to_owned());
        }
    }
    let status = run(into_bucket(
        cfstream(
            Some(&fake),
            &["--json", "export", "status", "--dest", &dest],
        ),
        &weed,
    ))
    .await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    let s = status.summary();
    assert_eq!(s["done"], sidecars.len() as u64, "{s}");
    assert_eq!(s["account_videos"], 30, "{s}");
    assert_eq!(
        s["missing"].as_u64().unwrap()
            + s["done"].as_u64().unwrap()
            + s["partly_done"].as_u64().unwrap(),
        30,
        "{s}"
    );
    let shards = s["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3, "{s}");
    for shard in shards {
        match shard["shard"].as_str().unwrap() {
            "2/3" => {
                assert!(shard["ended_at"].is_null(), "killed: {shard}");
                assert_eq!(shard["outcome"], "running", "{shard}");
                assert!(shard["done"].as_u64().unwrap() >= 1, "{shard}");
            }
            _ => {
                assert!(shard["ended_at"].is_string(), "{shard}");
                assert_eq!(shard["outcome"], "complete", "{shard}");
                assert_eq!(shard["done"], shard["selected"], "{shard}");
            }
        }
    }
    // The human form says the same.
    let human = run(into_bucket(
        cfstream(Some(&fake), &["export", "status", "--dest", &dest]),
        &weed,
    ))
    .await;
    assert!(
        human.stdout.contains("shard 2/3") && human.stdout.contains("still running, or killed"),
        "{}",
        human.stdout
    );
    fake.shutdown().await;
}

/// The last report of `shard` in the bucket's `sharded/.cfstream/runs/`.
async fn shard_report(store: &impl ObjectStore, shard: &str) -> Option<Value> {
    let mut listing = store.list(Some(&ObjectPath::from("sharded/.cfstream/runs")));
    let mut found = None;
    while let Some(meta) = futures_util::StreamExt::next(&mut listing).await {
        let meta = meta.ok()?;
        let bytes = store.get(&meta.location).await.ok()?.bytes().await.ok()?;
        let report: Value = serde_json::from_slice(&bytes).ok()?;
        if report["shard"] == shard {
            found = Some(report);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_grouped_by_reason_and_logs_can_be_json_lines() {
    let mut catalog: Vec<CatalogVideo> = (0..8)
        .map(|i| CatalogVideo::ready(&uid(i), epoch() + chrono::Duration::seconds(i as i64)))
        .collect();
    // Three not ready to stream.
    for v in catalog.iter_mut().take(3) {
        v.ready_to_stream = false;
    }
    let fake = StreamFake::start(FakeConfig {
        videos: Vec::new(),
        catalog,
        file_size: SIZE,
        file_chunk_delay: Duration::from_millis(5),
        progress: Progress::OverTime {
            duration: Duration::from_millis(200),
        },
        api_token: TOKEN.into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    // Two whose generation ends in error.
    for i in [8, 9] {
        fake.add_video(
            &uid(i),
            VideoOptions {
                fails_at: Some(40.0),
                ..VideoOptions::default()
            },
        );
    }
    let ids: Vec<String> = (0..10).map(uid).collect();
    // `OPTIONS... export --dir DIR --first-api-poll 1s --progress-interval
    // EVERY` and the ten ids.
    let export = |options: &[&str], dir: &std::path::Path, every: &str| -> Vec<String> {
        let dir = dir.to_str().unwrap();
        let command = [
            "export",
            "--dir",
            dir,
            "--first-api-poll",
            "1s",
            "--progress-interval",
            every,
        ];
        options
            .iter()
            .chain(&command)
            .map(|s| s.to_string())
            .chain(ids.iter().cloned())
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let args = export(&[], dir.path(), "100ms");
    let out = run(cfstream(Some(&fake), &as_strs(&args))).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    // Largest group first, with its count and a few ids.
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "failures, by reason:")
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        lines[at + 1].starts_with("  3 × not ready to stream: "),
        "{}",
        out.stdout
    );
    assert!(
        lines[at + 2].starts_with("  2 × generation failed"),
        "{}",
        out.stdout
    );
    assert!(lines[at + 3].contains("--json"), "{}", out.stdout);
    // stderr is not a terminal: the progress line, every 100 ms here.
    assert!(
        out.stderr.lines().any(|l| l.starts_with("progress: ")),
        "{}",
        out.stderr
    );
    // --no-progress: no progress line either.
    let quiet = tempfile::tempdir().unwrap();
    let quiet_args = export(&["--no-progress"], quiet.path(), "10ms");
    let silent = run(cfstream(Some(&fake), &as_strs(&quiet_args))).await;
    assert_eq!(silent.code, 1, "{}", silent.stderr);
    assert!(!silent.stderr.contains("progress: "), "{}", silent.stderr);
    // The run's report holds every failure.
    let runs = dir.path().join(".cfstream/runs");
    let report: Value = serde_json::from_slice(
        &std::fs::read(
            std::fs::read_dir(&runs)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(report["failures"].as_array().unwrap().len(), 5, "{report}");
    assert_eq!(report["outcome"], "failures");

    // --log-format json (and CFSTREAM_LOG_FORMAT): every stderr line is a
    // JSON object, the progress lines and failures included.
    for how in ["flag", "env"] {
        let again = tempfile::tempdir().unwrap();
        let options: &[&str] = if how == "flag" {
            &["--json", "--log-format", "json"]
        } else {
            &["--json"]
        };
        let args = export(options, again.path(), "10ms");
        let mut cmd = cfstream(Some(&fake), &as_strs(&args));
        if how == "env" {
            cmd.env("CFSTREAM_LOG_FORMAT", "json");
        }
        let out = run(cmd).await;
        assert_eq!(out.code, 1, "{}", out.stderr);
        let lines: Vec<Value> = out
            .stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{how}: {l:?}: {e}")))
            .collect();
        assert!(
            lines.iter().any(|l| l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("progress: "))),
            "{how}: {}",
            out.stderr
        );
        assert_eq!(
            lines.iter().filter(|l| l["level"] == "WARN").count(),
            5,
            "each of the 5 failures once, as it happens ({how}): {}",
            out.stderr
        );
        assert!(!out.stderr.contains(TOKEN));
    }
    fake.shutdown().await;
}
