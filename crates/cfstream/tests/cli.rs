//! `cfstream` as a user runs it, against stream-fake and wiremock on
//! 127.0.0.1: every subcommand in human and JSON form, every exit code, and
//! no secret in any output.

use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use stream_fake::{FakeConfig, Fault, Progress, Route, StreamFake, VideoOptions};

const VIDEO: &str = stream_fake::config::DEFAULT_VIDEO;
const SECRET: &str = "s3cr3t-t0k3n-that-must-never-be-printed";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
        }
    }
}

/// `cfstream` with a clean environment (no CLOUDFLARE_* from the host).
fn cfstream() -> Command {
    let mut cmd = Command::cargo_bin("cfstream").unwrap();
    cmd.env_clear();
    cmd
}

async fn fake() -> StreamFake {
    StreamFake::start(FakeConfig {
        file_size: 256 * 1024,
        progress: Progress::PerPoll { step: 100.0 },
        api_token: SECRET.into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap()
}

/// Run against `fake`, credentials from the environment.
fn run(fake: &StreamFake, args: &[&str]) -> Run {
    cfstream()
        .env("CLOUDFLARE_API_TOKEN", SECRET)
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args(args)
        .output()
        .unwrap()
        .into()
}

fn json(run: &Run) -> Value {
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", run.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_in_human_form() {
    let fake = fake().await;
    let r = run(&fake, &["downloads", "create", VIDEO]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("default  inprogress"), "{}", r.stdout);
    let r = run(&fake, &["downloads", "create", VIDEO, "--type", "audio"]);
    assert!(r.stdout.contains("audio    inprogress"), "{}", r.stdout);
    let r = run(&fake, &["downloads", "list", VIDEO]);
    assert!(
        r.stdout
            .contains("default  ready      100.0%  http://127.0.0.1:"),
        "{}",
        r.stdout
    );
    let r = run(&fake, &["downloads", "wait", VIDEO, "--type", "audio"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("the audio download of video"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("is ready: http://127.0.0.1:"),
        "{}",
        r.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    let r: Run = cfstream()
        .current_dir(dir.path())
        .env("CLOUDFLARE_API_TOKEN", SECRET)
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args(["downloads", "fetch", VIDEO, "--type", "audio"])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let saved = dir.path().join(format!("{VIDEO}.m4a"));
    assert_eq!(std::fs::metadata(&saved).unwrap().len(), 256 * 1024);
    assert!(
        r.stdout
            .starts_with(&format!("saved {VIDEO}.m4a (262144 bytes")),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("==> downloading to"), "{}", r.stderr);

    let r = run(&fake, &["downloads", "delete", VIDEO, "--type", "audio"]);
    assert_eq!(
        r.stdout.trim(),
        format!("deleted the audio download of video {VIDEO}")
    );
    let r = run(&fake, &["downloads", "delete", VIDEO]);
    assert_eq!(
        r.stdout.trim(),
        format!("deleted the downloads of video {VIDEO}")
    );
    let r = run(&fake, &["downloads", "list", VIDEO]);
    assert_eq!(r.stdout.trim(), format!("video {VIDEO} has no downloads"));
    assert!(
        fake.file_requests()
            .iter()
            .all(|f| f.credential_headers.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_in_json_form() {
    let fake = fake().await;
    let created = json(&run(&fake, &["--json", "downloads", "create", VIDEO]));
    assert_eq!(created["default"]["status"], "inprogress");
    let created = json(&run(
        &fake,
        &["--json", "downloads", "create", VIDEO, "--type", "audio"],
    ));
    assert_eq!(created["audio"]["percentComplete"], 0.0);
    let listed = json(&run(&fake, &["--json", "downloads", "list", VIDEO]));
    assert_eq!(listed["default"]["status"], "ready");
    assert_eq!(listed["audio"]["status"], "ready");
    let ready = json(&run(&fake, &["--json", "downloads", "wait", VIDEO]));
    assert_eq!(ready["status"], "ready");
    assert!(ready["url"].as_str().unwrap().ends_with("default.mp4"));

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.mp4");
    let fetched = json(&run(
        &fake,
        &[
            "--json",
            "downloads",
            "fetch",
            VIDEO,
            "-o",
            target.to_str().unwrap(),
        ],
    ));
    assert_eq!(fetched["bytes"], 256 * 1024);
    assert_eq!(fetched["path"], target.to_str().unwrap());
    assert!(fetched["seconds"].as_f64().unwrap() >= 0.0);

    assert_eq!(
        json(&run(
            &fake,
            &["--json", "downloads", "delete", VIDEO, "--type", "default"]
        )),
        "ok"
    );
    assert_eq!(
        json(&run(&fake, &["--json", "downloads", "delete", VIDEO])),
        "ok"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_1_when_the_api_answers_with_an_error() {
    let fake = fake().await;
    let r = run(
        &fake,
        &["downloads", "list", "0123456789abcdef0123456789abcdef"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let first = r.stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: GET /client/v4/accounts/"),
        "{first}"
    );
    assert!(first.contains("404 Not Found"), "{first}");
    assert!(r.stderr.contains("  10003: Not Found"), "{}", r.stderr);

    fake.inject(Route::List, Fault::SuccessFalse, None);
    let r = run(&fake, &["downloads", "list", VIDEO]);
    assert_eq!(r.code, 1, "success: false at 200 is an error: {}", r.stderr);
    assert!(r.stderr.contains("HTTP 200 OK"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_2_for_usage_and_invalid_input_before_any_request() {
    let fake = fake().await;
    let long = "a".repeat(33);
    for bad in ["a/b", "..", "%2e", long.as_str()] {
        let r = run(&fake, &["downloads", "list", bad]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("error: invalid video id"),
            "{}",
            r.stderr
        );
    }
    // Missing credentials.
    let r: Run = cfstream()
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args(["downloads", "list", VIDEO])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("CLOUDFLARE_API_TOKEN"), "{}", r.stderr);
    // Missing account id.
    let r: Run = cfstream()
        .env("CLOUDFLARE_API_TOKEN", SECRET)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args(["downloads", "list", VIDEO])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("CLOUDFLARE_ACCOUNT_ID"), "{}", r.stderr);
    // A key without its e-mail.
    let r: Run = cfstream()
        .args([
            "--api-key",
            SECRET,
            "--account-id",
            "a",
            "downloads",
            "list",
            VIDEO,
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("e-mail"), "{}", r.stderr);
    // Usage errors.
    for args in [
        &["downloads", "list"][..],
        &["downloads", "create", VIDEO, "--type", "hls"],
        &["downloads", "wait", VIDEO, "--timeout", "soon"],
        &["nothing"],
    ] {
        let r: Run = cfstream().args(args).output().unwrap().into();
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    assert_eq!(fake.api_request_count(), 0, "a request was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_3_for_network_timeout_and_unexpected_answers() {
    let fake = fake().await;
    fake.inject(Route::Any, Fault::ServerErrorHtml(502), None);
    let r = run(&fake, &["--retries", "0", "downloads", "list", VIDEO]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("HTTP 502 Bad Gateway"), "{}", r.stderr);
    fake.clear_faults();

    fake.inject(
        Route::Any,
        Fault::Slow(std::time::Duration::from_secs(3)),
        None,
    );
    let r = run(
        &fake,
        &[
            "--retries",
            "0",
            "--timeout",
            "300ms",
            "downloads",
            "list",
            VIDEO,
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r: Run = cfstream()
        .env("CLOUDFLARE_API_TOKEN", SECRET)
        .args(["--account-id", "acc", "--retries", "0"])
        .args(["--base-url", &format!("http://127.0.0.1:{port}/client/v4")])
        .args(["downloads", "list", VIDEO])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("connection failed"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_4_when_the_download_ends_in_error() {
    let fake = fake().await;
    let failing = "fa11fa11fa11fa11fa11fa11fa11fa11";
    fake.add_video(
        failing,
        VideoOptions {
            fails_at: Some(40.0),
            ..VideoOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.mp4");
    let r = run(
        &fake,
        &[
            "downloads",
            "fetch",
            failing,
            "-o",
            target.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("failed (status `error` at 40%)"),
        "{}",
        r.stderr
    );
    assert!(!target.exists());
    let r = run(&fake, &["downloads", "wait", failing]);
    assert_eq!(r.code, 4, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_output_even_at_vv() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.mp4");
    let target = target.to_str().unwrap();
    let mut outputs = Vec::new();
    // Secret from the environment.
    for args in [
        &["-vv", "downloads", "fetch", VIDEO, "-o", target][..],
        &["-vvv", "--json", "downloads", "list", VIDEO],
        &[
            "-vv",
            "downloads",
            "list",
            "0123456789abcdef0123456789abcdef",
        ],
    ] {
        outputs.push(run(&fake, args));
    }
    // Secret by flag, including a failing call and a rejected one.
    for token in [SECRET, "wrong-but-still-secret-value"] {
        outputs.push(
            cfstream()
                .args([
                    "-vv",
                    "--api-token",
                    token,
                    "--account-id",
                    &fake.config().account_id,
                ])
                .args(["--base-url", &fake.base_url(), "downloads", "list", VIDEO])
                .output()
                .unwrap()
                .into(),
        );
    }
    // A key by flag, refused by the fake.
    outputs.push(
        cfstream()
            .args(["-vv", "--api-email", "a@b.c", "--api-key", SECRET])
            .args([
                "--account-id",
                &fake.config().account_id,
                "--base-url",
                &fake.base_url(),
            ])
            .args(["downloads", "list", VIDEO])
            .output()
            .unwrap()
            .into(),
    );
    assert!(
        outputs[0].stderr.contains("cloudflare api request"),
        "-vv logs requests"
    );
    for (i, r) in outputs.iter().enumerate() {
        for secret in [SECRET, "wrong-but-still-secret-value"] {
            assert!(
                !r.stdout.contains(secret) && !r.stderr.contains(secret),
                "output {i} shows a secret:\n{}\n{}",
                r.stdout,
                r.stderr
            );
        }
    }
    assert_eq!(outputs[3].code, 0);
    assert_eq!(outputs[4].code, 1, "a wrong token is an API error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_beats_the_environment() {
    let fake = fake().await;
    // A wrong token in the environment, the right one by flag.
    let r: Run = cfstream()
        .env("CLOUDFLARE_API_TOKEN", "wrong")
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args(["--user-service-key", &fake.config().user_service_key])
        .args(["downloads", "list", VIDEO])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn help_explains_the_environment() {
    let r: Run = cfstream().args(["demo", "--help"]).output().unwrap().into();
    assert!(r.stdout.contains("CLOUDFLARE_* variables"), "{}", r.stdout);
    for args in [
        &["--help"][..],
        &["downloads", "--help"],
        &["downloads", "create", "--help"],
        &["downloads", "list", "--help"],
        &["downloads", "delete", "--help"],
        &["downloads", "wait", "--help"],
        &["downloads", "fetch", "--help"],
        &["videos", "--help"],
        &["videos", "list", "--help"],
    ] {
        let r: Run = cfstream().args(args).output().unwrap().into();
        assert_eq!(r.code, 0);
        assert!(
            r.stdout.contains("CLOUDFLARE_API_TOKEN"),
            "{args:?}: {}",
            r.stdout
        );
    }
    let r: Run = cfstream().arg("--help").output().unwrap().into();
    for var in [
        "CLOUDFLARE_ACCOUNT_ID",
        "CLOUDFLARE_EMAIL",
        "CLOUDFLARE_API_KEY",
        "CLOUDFLARE_API_USER_SERVICE_KEY",
        "CLOUDFLARE_BASE_URL",
    ] {
        assert!(r.stdout.contains(var), "{var}");
    }
    // Secret values from the environment are never echoed by --help.
    let r: Run = cfstream()
        .env("CLOUDFLARE_API_TOKEN", SECRET)
        .arg("--help")
        .output()
        .unwrap()
        .into();
    assert!(!r.stdout.contains(SECRET));
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let r: Run = cfstream().arg("--version").output().unwrap().into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The commit of this checkout, as git gives it; a copy of the workspace
    // without `.git` (a source archive) says "unknown".
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8(out.stdout).unwrap().trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    assert_eq!(
        r.stdout.trim(),
        format!("cfstream {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn demo_runs_without_credentials_or_network() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("demo.mp4");
    let r: Run = cfstream()
        .args(["demo", "--size", "2MiB", "-o", target.to_str().unwrap()])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::metadata(&target).unwrap().len(), 2 * 1024 * 1024);
    for step in [
        "started a fake Stream API",
        "creating the default",
        "waiting for",
        "downloading to",
        "received no credentials",
    ] {
        assert!(r.stderr.contains(step), "{step}: {}", r.stderr);
    }
    assert!(r.stdout.starts_with("saved "), "{}", r.stdout);
}

async fn account(videos: usize) -> StreamFake {
    StreamFake::start(FakeConfig {
        videos: Vec::new(),
        generated_videos: videos,
        api_token: SECRET.into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_list_prints_a_table_or_json_lines_of_every_video() {
    let fake = account(2100).await;
    let catalog = fake.catalog();

    // JSON Lines: one object per line, as the API sent it, every video once.
    let r = run(&fake, &["--json", "videos", "list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2100);
    let mut uids: Vec<&str> = lines.iter().map(|v| v["uid"].as_str().unwrap()).collect();
    assert_eq!(uids[0], catalog.last().unwrap().uid, "newest first");
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), 2100);
    assert_eq!(lines[0]["meta"]["name"], catalog.last().unwrap().name);
    assert!(
        lines[0]["playback"]["hls"].is_string(),
        "fields kept: {}",
        lines[0]
    );

    // The table: a header, then uid, created, duration, size, state, name.
    let r = run(
        &fake,
        &[
            "videos", "list", "--status", "queued", "--max", "3", "--asc",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(rows.len(), 4, "{}", r.stdout);
    assert!(
        rows[0].starts_with("UID") && rows[0].ends_with("NAME"),
        "{}",
        rows[0]
    );
    let first = catalog.iter().find(|v| v.state == "queued").unwrap();
    assert!(rows[1].starts_with(&first.uid), "{}", rows[1]);
    assert!(
        rows[1].contains("queued") && rows[1].ends_with(&first.name),
        "{}",
        rows[1]
    );

    // Filters reach the API.
    let r = run(
        &fake,
        &[
            "--json",
            "videos",
            "list",
            "--video-name",
            "video-000042.mp4",
        ],
    );
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    let r = run(
        &fake,
        &[
            "--json",
            "videos",
            "list",
            "--creator",
            "creator-1",
            "--search",
            "video-00",
        ],
    );
    let want = catalog
        .iter()
        .filter(|v| v.creator.as_deref() == Some("creator-1") && v.name.starts_with("video-00"))
        .count();
    assert_eq!(r.stdout.lines().count(), want);
    let after = catalog[1000].created.to_rfc3339();
    let before = catalog[1500].created.to_rfc3339();
    let r = run(
        &fake,
        &[
            "--json",
            "videos",
            "list",
            "--created-after",
            &after,
            "--created-before",
            &before,
        ],
    );
    let want = catalog
        .iter()
        .filter(|v| v.created > catalog[1000].created && v.created < catalog[1500].created)
        .count();
    assert_eq!(r.stdout.lines().count(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_list_exit_codes() {
    let fake = account(10).await;
    // 2: invalid input, before any request.
    for args in [
        &["videos", "list", "--status", "bogus"][..],
        &["videos", "list", "--created-after", "yesterday"],
        &["videos", "list", "--creator", &"c".repeat(65)],
        &[
            "videos",
            "list",
            "--created-after",
            "2024-02-01",
            "--created-before",
            "2024-01-01",
        ],
    ] {
        let r = run(&fake, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    assert_eq!(fake.api_request_count(), 0);
    // 1: the API's failure envelope.
    fake.inject(Route::ListVideos, Fault::SuccessFalse, None);
    let r = run(&fake, &["videos", "list"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    fake.clear_faults();
    // 3: an unexpected answer.
    fake.inject(Route::ListVideos, Fault::ServerErrorHtml(502), None);
    let r = run(&fake, &["--retries", "0", "videos", "list"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("HTTP 502"), "{}", r.stderr);
}

/// Cloudflare adds download statuses without notice: `queued` is not an
/// unexpected answer, and `wait` keeps waiting through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_download_status_is_not_an_error() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let body = |status: &str| {
        serde_json::json!({
            "success": true, "errors": [], "messages": [],
            "result": { "default": { "status": status, "percentComplete": 0, "url": "https://x/d.mp4" } }
        })
    };
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body("queued")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body("queued")))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body("ready")))
        .mount(&server)
        .await;
    let cmd = |args: &[&str]| -> Run {
        cfstream()
            .env("CLOUDFLARE_API_TOKEN", SECRET)
            .env("CLOUDFLARE_ACCOUNT_ID", "023e105f4ecef8ad9ca31a8372d0c353")
            .env("CLOUDFLARE_BASE_URL", format!("{}/client/v4", server.uri()))
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let r = cmd(&["downloads", "create", VIDEO]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("default  queued"), "{}", r.stdout);
    let r = cmd(&["downloads", "wait", VIDEO]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("is ready"), "{}", r.stdout);
}

/// Global options after the subcommand, as cargo, git and kubectl take them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_options_are_accepted_after_the_subcommand() {
    let fake = fake().await;
    let before = json(&run(&fake, &["--json", "downloads", "list", VIDEO]));
    let after = json(&run(&fake, &["downloads", "list", VIDEO, "--json"]));
    assert_eq!(before, after);
    // Credentials and base URL after the subcommand too, with no environment.
    let r: Run = cfstream()
        .args(["downloads", "list", VIDEO, "--json", "--retries", "0"])
        .args([
            "--api-token",
            SECRET,
            "--account-id",
            &fake.config().account_id,
        ])
        .args([
            "--base-url",
            &fake.base_url(),
            "--request-timeout",
            "5s",
            "-v",
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str::<Value>(r.stdout.trim()).unwrap();
    // The old spelling of the request timeout, before the subcommand.
    let r = run(&fake, &["--timeout", "5s", "downloads", "list", VIDEO]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("demo.mp4");
    let r: Run = cfstream()
        .args([
            "demo",
            "--size",
            "1MiB",
            "-o",
            target.to_str().unwrap(),
            "--no-progress",
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_into_a_directory() {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    // An existing directory.
    let r = run(
        &fake,
        &[
            "downloads",
            "fetch",
            VIDEO,
            "-o",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::metadata(dir.path().join(format!("{VIDEO}.mp4")))
            .unwrap()
            .len(),
        256 * 1024
    );
    // A path ending in `/`, created.
    let new = format!("{}/new/sub/", dir.path().display());
    let r = run(
        &fake,
        &["downloads", "fetch", VIDEO, "--type", "audio", "-o", &new],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(dir.path().join(format!("new/sub/{VIDEO}.m4a")).is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_checks_the_destination_before_anything_is_created() {
    let fake = fake().await;
    let r = run(
        &fake,
        &[
            "downloads",
            "fetch",
            VIDEO,
            "-o",
            "/nonexistent-dir/x/v.mp4",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("invalid destination") && r.stderr.contains("/nonexistent-dir/x/v.mp4"),
        "{}",
        r.stderr
    );
    assert_eq!(fake.api_request_count(), 0, "a request was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_refuses_a_file_the_disk_cannot_hold() {
    // 1 PiB, served lazily by the fake: no test machine has that free.
    let fake = StreamFake::start(FakeConfig {
        file_size: 1 << 50,
        progress: Progress::PerPoll { step: 100.0 },
        api_token: SECRET.into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("big.mp4");
    let r = run(
        &fake,
        &["downloads", "fetch", VIDEO, "-o", target.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "big.mp4.part: the file needs 1125899906842624 more bytes but its filesystem has"
        ),
        "{}",
        r.stderr
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "files left behind"
    );
}

/// Two terminals, one destination: one saves the file, the other is
/// refused clearly; never an exit 0 beside a wrong file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_fetches_of_one_video_to_one_path() {
    let size: u64 = 4 * 1024 * 1024;
    let fake = StreamFake::start(FakeConfig {
        file_size: size,
        progress: Progress::PerPoll { step: 100.0 },
        api_token: SECRET.into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    // Whoever gets the file first holds it for 3 s.
    fake.inject(
        Route::File,
        Fault::Slow(std::time::Duration::from_secs(3)),
        Some(1),
    );
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("same.mp4");
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cfstream"))
            .env_clear()
            .env("CLOUDFLARE_API_TOKEN", SECRET)
            .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
            .env("CLOUDFLARE_BASE_URL", fake.base_url())
            .args(["downloads", "fetch", VIDEO, "-o", target.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (one, two) = (spawn(), spawn());
    let runs: Vec<Run> = tokio::task::spawn_blocking(move || {
        vec![
            one.wait_with_output().unwrap().into(),
            two.wait_with_output().unwrap().into(),
        ]
    })
    .await
    .unwrap();
    let ok: Vec<&Run> = runs.iter().filter(|r| r.code == 0).collect();
    let refused: Vec<&Run> = runs.iter().filter(|r| r.code != 0).collect();
    assert_eq!(
        (ok.len(), refused.len()),
        (1, 1),
        "{:?}",
        runs.iter()
            .map(|r| (&r.code, &r.stderr))
            .collect::<Vec<_>>()
    );
    assert_eq!(refused[0].code, 2);
    assert!(
        refused[0]
            .stderr
            .contains("same.mp4.part: another fetch is writing this file (pid "),
        "{}",
        refused[0].stderr
    );
    assert!(
        ok[0].stdout.contains(&format!("({size} bytes")),
        "{}",
        ok[0].stdout
    );
    let bytes = std::fs::read(&target).unwrap();
    assert_eq!(bytes.len() as u64, size);
    let file = stream_fake::content::FileContent::new(VIDEO, "default.mp4", size);
    assert_eq!(file.first_mismatch(0, &bytes), None);
}

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "_cfstream()"),
        ("zsh", "#compdef cfstream"),
        ("fish", "complete -c cfstream"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let r: Run = cfstream()
            .args(["completions", shell])
            .output()
            .unwrap()
            .into();
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(
            r.stdout.contains(marker),
            "{shell}: {}",
            &r.stdout[..r.stdout.len().min(300)]
        );
        assert!(
            r.stdout.contains("videos") && r.stdout.contains("downloads"),
            "{shell}"
        );
    }
    let r: Run = cfstream()
        .args(["completions", "tcsh"])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2);
}
