//! `cfstream export` end to end: the real binary against stream-fake on
//! 127.0.0.1, killed (SIGKILL, SIGINT) mid-run and run again, under
//! faults, sharded; the files compared byte for byte with what the fake
//! serves and the state database read back with SQLite.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Finished, finish, sha256_hex};

use serde_json::Value;
use stream_fake::content::FileContent;
use stream_fake::{FakeConfig, Fault, Progress, RateLimit, Route, StreamFake, VideoOptions};

const TOKEN: &str = "export-test-token-never-printed";

fn fake_config(videos: usize, file_size: u64) -> FakeConfig {
    FakeConfig {
        videos: Vec::new(),
        generated_videos: videos,
        file_size,
        progress: Progress::PerPoll { step: 50.0 },
        api_token: TOKEN.into(),
        ..FakeConfig::default()
    }
}

fn cfstream(fake: &StreamFake, dir: &Path, args: &[&str]) -> Command {
    cfstream_at(&fake.base_url(), &fake.config().account_id, dir, args)
}

/// `cfstream export --dir DIR ARGS` against the API at `base_url`, with a
/// clean environment.
fn cfstream_at(base_url: &str, account: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("cfstream"));
    cmd.env_clear()
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", account)
        .env("CLOUDFLARE_BASE_URL", base_url)
        .arg("export")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn export(fake: &StreamFake, dir: &Path, args: &[&str]) -> Finished {
    let child = cfstream(fake, dir, args).spawn().unwrap();
    finish(child, Duration::from_secs(120)).await
}

fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        dir.join("cfstream-export.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

/// (uid, type) → (state, size, sha256, reason), or empty before the
/// database exists.
type Files = BTreeMap<(String, String), (String, Option<i64>, Option<String>, Option<String>)>;

fn files(dir: &Path) -> Files {
    if !dir.join("cfstream-export.sqlite").exists() {
        return Files::new();
    }
    let conn = db(dir);
    let Ok(mut q) = conn.prepare("SELECT uid, type, state, size, sha256, reason FROM files") else {
        return Files::new();
    };
    q.query_map([], |r| {
        Ok((
            (r.get(0)?, r.get(1)?),
            (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn ext(kind: &str) -> &'static str {
    if kind == "audio" { "m4a" } else { "mp4" }
}

fn served_name(kind: &str) -> String {
    format!("{kind}.{}", ext(kind))
}

/// The state is consistent: SQLite's own check passes; every done file is
/// on disk, byte-identical to what the fake serves, with the recorded size
/// and SHA-256, and its `.json` names them; nothing but done files has a
/// final file whose state claims more than it is.
fn assert_consistent(dir: &Path, file_size: u64) -> Files {
    let conn = db(dir);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let files = files(dir);
    for ((uid, kind), (state, size, sha, _)) in &files {
        let path = dir.join(format!("{uid}.{}", ext(kind)));
        if state == "done" {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{uid} {kind} done: {e}"));
            assert_eq!(bytes.len() as i64, size.unwrap(), "{uid} {kind}");
            let expected = FileContent::new(uid, &served_name(kind), file_size);
            assert_eq!(
                expected.first_mismatch(0, &bytes),
                None,
                "{uid} {kind} is not what the fake serves"
            );
            assert_eq!(Some(sha256_hex(&bytes)), *sha, "{uid} {kind}");
            assert!(!dir.join(format!("{uid}.{}.part", ext(kind))).exists());
        }
    }
    // Every .json describes done files only, with their digests.
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json")
            && !path.ends_with(cfstream_export::account::ACCOUNT_FILE)
        {
            let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let uid = doc["uid"].as_str().unwrap();
            for (kind, d) in doc["downloads"].as_object().unwrap() {
                let (state, size, sha, _) = &files[&(uid.to_owned(), kind.clone())];
                assert_eq!(state, "done");
                assert_eq!(d["size"].as_i64(), *size);
                assert_eq!(d["sha256"].as_str(), sha.as_deref());
            }
        }
    }
    files
}

/// The videos the fake's catalog makes exportable, and why the others fail.
fn expected(fake: &StreamFake) -> (BTreeSet<String>, BTreeMap<String, &'static str>) {
    let mut ok = BTreeSet::new();
    let mut failing = BTreeMap::new();
    for v in fake.catalog() {
        // Videos that require signed URLs are exported too (with tokens).
        if !v.ready_to_stream {
            failing.insert(v.uid, "not ready to stream");
        } else {
            ok.insert(v.uid);
        }
    }
    (ok, failing)
}

fn failed_of(summary: &Value) -> BTreeMap<String, String> {
    summary["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["video_id"].as_str().unwrap().to_owned(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_then_a_second_run_costs_only_the_listing() {
    let size = 48 * 1024;
    let fake = StreamFake::start(fake_config(240, size)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = export(
        &fake,
        dir.path(),
        &["--all", "--type", "both", "--json", "--rate", "2000/1s"],
    )
    .await;
    assert_eq!(run.code, 1, "failures are expected: {}", run.stderr);
    let summary = run.summary();
    let (ok, failing) = expected(&fake);
    assert!(
        ok.len() > 200 && failing.len() >= 5,
        "{} {}",
        ok.len(),
        failing.len()
    );
    assert_eq!(summary["selected"], 2 * 240);
    assert_eq!(summary["done"], 2 * ok.len() as u64);
    assert_eq!(summary["skipped"], 0);
    // Each failing video fails for its reason, both types.
    let failed: Vec<_> = summary["failed"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 2 * failing.len());
    for f in &failed {
        let want = failing[f["video_id"].as_str().unwrap()];
        assert!(f["reason"].as_str().unwrap().starts_with(want), "{f}");
    }
    assert_eq!(summary["bytes"], 2 * ok.len() as u64 * size);
    let requests = summary["api_requests"].as_u64().unwrap();
    assert_eq!(requests, fake.api_request_count());
    let files = assert_consistent(dir.path(), size);
    assert_eq!(count_done(&files), 2 * ok.len());
    for uid in &ok {
        assert!(dir.path().join(format!("{uid}.json")).exists());
    }
    // A signed video (known from the listing) was asked for once per type,
    // with a token from the first request, and its manifest once (for its
    // captions); without a signing key, each token cost one API request.
    let signed: Vec<String> = fake
        .catalog()
        .into_iter()
        .filter(|v| v.require_signed_urls && v.ready_to_stream)
        .map(|v| v.uid)
        .collect();
    assert!(!signed.is_empty());
    for uid in &signed {
        let asks: Vec<_> = fake
            .file_requests()
            .into_iter()
            .filter(|r| r.path.starts_with(&format!("/{uid}/")))
            .collect();
        assert_eq!(asks.len(), 3, "{uid}");
        assert!(asks.iter().all(|r| r.signed), "{uid}");
        let manifests = asks
            .iter()
            .filter(|r| r.path.ends_with("/manifest/video.m3u8"))
            .count();
        assert_eq!(manifests, 1, "{uid}");
    }
    assert_eq!(summary["tokens_requested"], 3 * signed.len() as u64);
    assert_eq!(summary["tokens_signed_locally"], 0);
    assert_eq!(fake.api_requests_on(Route::Token), 3 * signed.len() as u64);
    assert!(run.stderr.contains("require signed URLs") && run.stderr.contains("--signing-key"));
    // One typed create per file; a video the listing shows not ready to
    // stream costs none (its files fail without a request).
    let not_ready = failing
        .values()
        .filter(|r| **r == "not ready to stream")
        .count();
    let creates = fake.api_requests_on(Route::CreateType) as usize;
    assert_eq!(creates, 2 * (240 - not_ready));
    // No credential ever went to the download host.
    assert!(
        fake.file_requests()
            .iter()
            .all(|r| r.credential_headers.is_empty())
    );
    // Again: only the listing is requested, no file is.
    let before = (fake.api_request_count(), fake.file_requests().len());
    let listing_before = fake.api_requests_on(Route::ListVideos);
    let again = export(&fake, dir.path(), &["--all", "--type", "both", "--json"]).await;
    assert_eq!(again.code, 1);
    let s = again.summary();
    assert_eq!(s["skipped"], 2 * ok.len() as u64);
    assert_eq!(s["done"], 0);
    let listing = fake.api_requests_on(Route::ListVideos) - listing_before;
    assert!(listing >= 1);
    assert_eq!(
        fake.api_request_count() - before.0,
        listing,
        "only the listing"
    );
    assert_eq!(s["api_requests"].as_u64(), Some(listing));
    assert_eq!(fake.file_requests().len(), before.1);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_several_points_and_run_again() {
    // 3 MiB files sent in 64 KiB chunks 3 ms apart: a transfer takes
    // ~150 ms and reaches the disk a MiB at a time (the client's write
    // buffer), so kills land mid-transfer with data in the .part.
    let size = 3 * 1024 * 1024;
    let fake = StreamFake::start(FakeConfig {
        file_chunk_delay: Duration::from_millis(3),
        ..fake_config(90, size)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = ["--all", "--json", "--transfers", "3", "--rate", "2000/1s"];
    // Files that may legitimately be fetched from the start twice: those in
    // flight with nothing on disk at a kill.
    let mut restart_allowed: BTreeSet<(String, String)> = BTreeSet::new();
    // Files done at a kill, and how many file requests had been made then.
    let mut done_at_kill: Vec<(BTreeSet<String>, usize)> = Vec::new();
    // Each point is relative to what the run found done when it started, so
    // that a slow (loaded) test thread, which kills later, still leaves
    // work for the next point.
    let points: [&KillPoint; 4] = [
        // Selection stored, some downloads created.
        &|f, _, _| f.values().any(|s| s.0 == "created" || s.0 == "ready"),
        // A .part with data on disk.
        &|_, d, _| has_part(d),
        // Some more done.
        &|f, _, start| count_done(f) >= start + 8,
        // Some more done, and a .part with data.
        &|f, d, start| count_done(f) >= start + 8 && has_part(d),
    ];
    for (i, point) in points.iter().enumerate() {
        let start = count_done(&files(dir.path()));
        let mut child = cfstream(&fake, dir.path(), &args).spawn().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("run {i} ended before the kill point: {status}");
            }
            let f = files(dir.path());
            if point(&f, dir.path(), start) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "kill point {i} never reached"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let f = assert_consistent(dir.path(), size);
        for ((uid, kind), (state, ..)) in &f {
            let part = dir.path().join(format!("{uid}.{}.part", ext(kind)));
            let on_disk = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
            if state == "ready" && on_disk == 0 {
                restart_allowed.insert((uid.clone(), kind.clone()));
            }
        }
        done_at_kill.push((
            f.iter()
                .filter(|(_, s)| s.0 == "done")
                .map(|((u, _), _)| u.clone())
                .collect(),
            fake.file_requests().len(),
        ));
    }
    let last = export(&fake, dir.path(), &args).await;
    assert_eq!(last.code, 1, "{}", last.stderr); // the catalog's failing videos
    let (ok, failing) = expected(&fake);
    let f = assert_consistent(dir.path(), size);
    let done: BTreeSet<String> = f
        .iter()
        .filter(|(_, s)| s.0 == "done")
        .map(|((u, _), _)| u.clone())
        .collect();
    assert_eq!(done, ok, "every exportable video done after the kills");
    assert_eq!(failed_of(&last.summary()).len(), failing.len());
    // None fetched twice from the start (a request without Range), except
    // a file killed before any byte of it reached the disk.
    let requests = fake.file_requests();
    let mut from_start: HashMap<String, usize> = HashMap::new();
    for r in &requests {
        if r.range.is_none() {
            *from_start.entry(r.path.clone()).or_default() += 1;
        }
    }
    let mut resumed = 0;
    for uid in &ok {
        let path = format!("/{uid}/downloads/default.mp4");
        let n = from_start.get(&path).copied().unwrap_or(0);
        if restart_allowed.contains(&(uid.clone(), "default".into())) {
            assert!(n <= 2, "{path} fetched from the start {n} times");
        } else {
            assert_eq!(n, 1, "{path} fetched from the start {n} times");
        }
        resumed += requests
            .iter()
            .filter(|r| r.path == path && r.range.is_some())
            .count();
    }
    assert!(
        resumed > 0,
        "no transfer was resumed: the kills never landed mid-transfer"
    );
    // A file done at a kill was never asked for again (its video's
    // manifest may be: captions come after the media).
    for (done, count) in &done_at_kill {
        for r in requests[*count..]
            .iter()
            .filter(|r| !r.path.ends_with("/manifest/video.m3u8"))
        {
            let uid = r.path.split('/').nth(1).unwrap();
            assert!(
                !done.contains(uid),
                "{} requested after it was done",
                r.path
            );
        }
    }
    fake.shutdown().await;
}

/// Waits until a transfer has bytes in its `.part`.
async fn wait_for_part(dir: &Path) {
    let started = Instant::now();
    while !has_part(dir) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no transfer started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// SIGINT, as Ctrl-C sends it.
fn interrupt(child: &Child) {
    use rustix::process::{Pid, Signal, kill_process};
    kill_process(Pid::from_child(child), Signal::INT).unwrap();
}

fn count_done(f: &Files) -> usize {
    f.values().filter(|s| s.0 == "done").count()
}

/// When to kill: a look at the state and the directory, given how many
/// files were done when the run started.
type KillPoint = dyn Fn(&Files, &Path, usize) -> bool;

fn has_part(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let e = e.unwrap();
        e.path().extension().is_some_and(|x| x == "part") && e.metadata().is_ok_and(|m| m.len() > 0)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_fail_only_their_videos() {
    let size = 32 * 1024;
    let fake = StreamFake::start(FakeConfig {
        // Cloudflare's lockout, scaled: past 60 requests in 1 s, every
        // request gets 429 for 2 s.
        rate_limit: Some(RateLimit {
            requests: 60,
            window: Duration::from_secs(1),
            lockout: Duration::from_secs(2),
        }),
        ..fake_config(120, size)
    })
    .await
    .unwrap();
    let failing_video = "f00dfa11f00dfa11f00dfa11f00dfa11";
    fake.add_video(
        failing_video,
        VideoOptions {
            fails_at: Some(40.0),
            ..VideoOptions::default()
        },
    );
    fake.inject(Route::File, Fault::CutMidBody, Some(3));
    fake.inject(Route::CreateType, Fault::ServerErrorHtml(502), Some(2));
    fake.inject(Route::List, Fault::ServerErrorHtml(503), Some(2));
    let (ok, failing) = expected(&fake);
    let mut ids: Vec<String> = fake.catalog().into_iter().map(|v| v.uid).collect();
    ids.push(failing_video.into());
    let list = dir_file(&ids);
    let dir = tempfile::tempdir().unwrap();
    let mut child = cfstream(
        &fake,
        dir.path(),
        // Our limit above the server's: the lockout will happen. The
        // failing video's error is the API's to tell, asked once the
        // download host has been silent 2 s (30 s by default).
        &[
            "--from-file",
            list.to_str().unwrap(),
            "--json",
            "--rate",
            "100/1s",
            "--first-api-poll",
            "2s",
        ],
    )
    .spawn()
    .unwrap();
    // Delete a video the run has selected but not created yet.
    let deleted = loop {
        let f = files(dir.path());
        if let Some(((uid, _), _)) = f
            .iter()
            .rev()
            .find(|((u, _), s)| s.0 == "selected" && ok.contains(u))
        {
            fake.delete_video(uid);
            break uid.clone();
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    // The verification fault: a short file whose length the server admits.
    fake.inject(Route::File, Fault::ShortFile, Some(1));
    let run = finish(child, Duration::from_secs(120)).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let summary = run.summary();
    assert!(
        summary["rate_limited"].as_u64().unwrap() >= 1,
        "the lockout never happened"
    );
    // A 429 pauses every worker, not only the one that got it: during a
    // lockout only the requests already on the wire meet it (each of the
    // 121 videos retrying on its own would meet it about once per video).
    let (refused, lockouts) = (fake.rate_limited_count(), fake.lockout_count());
    eprintln!("{refused} requests refused over {lockouts} lockout(s)");
    assert!(lockouts >= 1);
    assert!(
        refused <= 12 * lockouts,
        "{refused} requests refused over {lockouts} lockout(s): the workers did not pause together"
    );
    let failed = failed_of(&summary);
    for (uid, reason) in &failing {
        assert!(failed[uid].starts_with(reason), "{uid}: {}", failed[uid]);
    }
    assert!(
        failed[failing_video].starts_with("generation failed"),
        "{}",
        failed[failing_video]
    );
    assert_eq!(failed[&deleted], "video not found (deleted?)");
    let short: Vec<_> = failed
        .iter()
        .filter(|(_, r)| r.starts_with("verification failed"))
        .collect();
    assert_eq!(short.len(), 1, "{failed:?}");
    // Everything else is done.
    assert_eq!(failed.len(), failing.len() + 3, "{failed:?}");
    let f = assert_consistent(dir.path(), size);
    let done = count_done(&f);
    assert_eq!(done, ok.len() - 2);
    assert!(
        !dir.path().join(format!("{}.mp4", short[0].0)).exists(),
        "a file that failed verification is removed"
    );
    // --retry-failed with the faults gone: the short file now completes;
    // the others fail again for the same reasons.
    fake.clear_faults();
    let again = export(
        &fake,
        dir.path(),
        &[
            "--from-file",
            list.to_str().unwrap(),
            "--json",
            "--first-api-poll",
            "2s",
            "--retry-failed",
        ],
    )
    .await;
    let s = again.summary();
    assert_eq!(s["done"], 1);
    assert_eq!(failed_of(&s).len(), failing.len() + 2);
    assert_consistent(dir.path(), size);
    fake.shutdown().await;
}

fn dir_file(ids: &[String]) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("ids.txt");
    let mut text = String::from("# the selection\n\n");
    for id in ids {
        text.push_str(id);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_cover_the_selection_exactly_once() {
    let size = 8 * 1024;
    let fake = StreamFake::start(fake_config(150, size)).await.unwrap();
    let (ok, _) = expected(&fake);
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut selected = 0;
    for k in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let shard = format!("{k}/3");
        let run = export(
            &fake,
            dir.path(),
            &["--all", "--json", "--shard", &shard, "--rate", "2000/1s"],
        )
        .await;
        let s = run.summary();
        selected += s["selected"].as_u64().unwrap();
        let f = assert_consistent(dir.path(), size);
        assert!(!f.is_empty(), "shard {shard} is empty");
        for (uid, _) in f.keys() {
            *seen.entry(uid.clone()).or_default() += 1;
        }
    }
    assert_eq!(selected, 150);
    let all: BTreeSet<String> = fake.catalog().into_iter().map(|v| v.uid).collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), all);
    assert!(seen.values().all(|n| *n == 1), "a video in two shards");
    assert!(ok.iter().all(|u| seen.contains_key(u)));
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_drains_and_exits_130_then_a_run_finishes() {
    // 64 chunks 10 ms apart: the Ctrl-C lands with most of a transfer to go
    // (the first MiB reaches the .part after ~160 ms of ~640).
    let size = 4 * 1024 * 1024;
    let fake = StreamFake::start(FakeConfig {
        file_chunk_delay: Duration::from_millis(10),
        ..fake_config(24, size)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = cfstream(&fake, dir.path(), &["--all", "--json", "--transfers", "2"])
        .spawn()
        .unwrap();
    wait_for_part(dir.path()).await;
    interrupt(&child);
    let run = finish(child, Duration::from_secs(60)).await;
    assert_eq!(run.code, 130, "{}", run.stderr);
    let s = run.summary();
    assert_eq!(s["interrupted"], true);
    assert!(run.stderr.contains("stopping"), "{}", run.stderr);
    let f = assert_consistent(dir.path(), size);
    // The transfers in flight finished and were recorded: no .part left.
    assert!(!has_part(dir.path()), "a transfer was left half-done");
    assert!(f.values().any(|s| s.0 == "done"));
    assert!(
        f.values().any(|s| s.0 != "done"),
        "the run was not interrupted early enough"
    );
    let again = export(&fake, dir.path(), &["--all", "--json"]).await;
    let s = again.summary();
    let (ok, _) = expected(&fake);
    assert_eq!(
        s["done"].as_u64().unwrap() + s["skipped"].as_u64().unwrap(),
        ok.len() as u64
    );
    assert_consistent(dir.path(), size);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_export_in_the_same_directory_is_refused() {
    let fake = StreamFake::start(FakeConfig {
        file_chunk_delay: Duration::from_millis(20),
        ..fake_config(20, 256 * 1024)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut first = cfstream(&fake, dir.path(), &["--all"]).spawn().unwrap();
    while !dir.path().join("cfstream-export.sqlite").exists() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Once the first run has stored its selection it lists no more.
    while files(dir.path()).is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let listing = fake.api_requests_on(Route::ListVideos);
    let second = export(&fake, dir.path(), &["--all"]).await;
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second.stderr.contains("another export is running")
            && second.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        second.stderr
    );
    // Refused before any request: the second run did not even list.
    assert_eq!(fake.api_requests_on(Route::ListVideos), listing);
    first.kill().unwrap();
    first.wait().unwrap();
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing() {
    let size = 8 * 1024;
    let fake = StreamFake::start(fake_config(30, size)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("export");
    let run = export(
        &fake,
        &target,
        &["--all", "--dry-run", "--json", "--type", "both"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = run.summary();
    assert_eq!(s["selected"], 60);
    let plan = s["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 60);
    assert!(plan.iter().all(|p| p["action"] == "create"));
    assert!(!target.exists(), "a dry run wrote the directory");
    assert_eq!(
        fake.api_request_count(),
        fake.api_requests_on(Route::ListVideos)
    );
    // After a real run, the plan skips what is done.
    export(&fake, &target, &["--all"]).await;
    let creates = fake.api_requests_on(Route::CreateType);
    let run = export(&fake, &target, &["--all", "--dry-run", "--json"]).await;
    let s = run.summary();
    let actions: BTreeSet<&str> = s["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, BTreeSet::from(["skip", "skip-failed"]));
    assert_eq!(fake.api_requests_on(Route::CreateType), creates);
    // Human form: one line per file and a count.
    let human = export(&fake, &target, &["--all", "--dry-run"]).await;
    assert!(
        human.stdout.contains("dry run: 30 file(s) of 30 video(s)"),
        "{}",
        human.stdout
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_any_request() {
    let fake = StreamFake::start(fake_config(5, 1024)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["ea95132c15732412d22c1476fa83f27a", "../etc/passwd"][..],
        &["--all", "--rate", "0/5m"],
        &["--all", "--shard", "4/3"],
        &["--all", "--transfers", "0"],
        &["ea95132c15732412d22c1476fa83f27a", "--status", "ready"],
        &[],
    ] {
        let run = export(&fake, dir.path(), args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains(TOKEN));
    }
    assert_eq!(fake.api_request_count(), 0);
    // --from-file -: comments and blank lines skipped, a bad id refused.
    let mut child = cfstream(&fake, dir.path(), &["--from-file", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"# ids\n\nnot/an id\n")
        .unwrap();
    let run = finish(child, Duration::from_secs(30)).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not/an id"), "{}", run.stderr);
    assert_eq!(fake.api_request_count(), 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_exit_3() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = cfstream_at(
        &format!("http://127.0.0.1:{port}/client/v4"),
        stream_fake::config::DEFAULT_ACCOUNT,
        dir.path(),
        &["--all", "--retries", "0"],
    )
    .spawn()
    .unwrap();
    let run = finish(child, Duration::from_secs(60)).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("listing the videos"), "{}", run.stderr);
    assert!(!run.stderr.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_exits_at_once_and_a_run_resumes() {
    // 64 chunks 30 ms apart: a transfer takes 2 s, far longer than the two
    // signals take; its first MiB (the client's write buffer) reaches the
    // .part after half a second.
    let size = 4 * 1024 * 1024;
    let fake = StreamFake::start(FakeConfig {
        file_chunk_delay: Duration::from_millis(30),
        ..fake_config(12, size)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = cfstream(&fake, dir.path(), &["--all", "--json", "--rate", "2000/1s"])
        .spawn()
        .unwrap();
    wait_for_part(dir.path()).await;
    interrupt(&child);
    tokio::time::sleep(Duration::from_millis(100)).await;
    interrupt(&child);
    let run = finish(child, Duration::from_secs(60)).await;
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(run.stderr.contains("quitting"), "{}", run.stderr);
    // It did not wait for the transfers: a .part is left, and no file done.
    assert!(
        has_part(dir.path()),
        "the second Ctrl-C waited for the transfers"
    );
    let f = assert_consistent(dir.path(), size);
    assert!(f.values().all(|s| s.0 != "done"), "{f:?}");
    // The next run resumes the .part files and finishes.
    let again = finish(
        cfstream(&fake, dir.path(), &["--all", "--json", "--rate", "2000/1s"])
            .spawn()
            .unwrap(),
        Duration::from_secs(120),
    )
    .await;
    let s = again.summary();
    let (ok, _) = expected(&fake);
    assert_eq!(
        s["done"].as_u64(),
        Some(ok.len() as u64),
        "{}",
        again.stderr
    );
    assert!(
        fake.file_requests().iter().any(|r| r.range.is_some()),
        "nothing was resumed"
    );
    assert_consistent(dir.path(), size);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_in_no_output_and_no_file() {
    let fake = StreamFake::start(fake_config(6, 4096)).await.unwrap();
    fake.inject(
        Route::CreateType,
        Fault::RateLimited(stream_fake::RetryAfter::Seconds(1)),
        Some(1),
    );
    let dir = tempfile::tempdir().unwrap();
    let run = export(&fake, dir.path(), &["--all", "-vvv", "--rate", "2000/1s"]).await;
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cfstream_export") && run.stderr.contains("every worker pauses"),
        "-vvv shows the engine's events: {}",
        run.stderr
    );
    assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN));
    // Every file, the run reports under .cfstream/runs/ included.
    let mut dirs = vec![dir.path().to_owned()];
    let mut files = 0;
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "the token is in {}",
                path.display()
            );
        }
    }
    assert!(dir.path().join(".cfstream/runs").is_dir() && files > 3);
    fake.shutdown().await;
}
