//! The asynchronous flow over loopback HTTP: wait until ready (wiremock),
//! then fetch the file (stream-fake, which can cut connections and ignore
//! `Range`, which wiremock cannot).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudflare_stream_downloads::DownloadStatus;
use cloudflare_stream_downloads::types::{Download, DownloadType};
use cloudflare_stream_downloads::{
    Client, Error, RESUME_OVERLAP, RetryPolicy, WaitOptions, part_path, source_path,
};
use serde_json::{Value, json};
use stream_fake::{FakeConfig, Fault, Progress, Route, StreamFake, content};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const VIDEO: &str = "ea95132c15732412d22c1476fa83f27a";
const TOKEN: &str = "Sn3lZJTBX6kkg7OdcBUAxOO963GEIyGQqnFTOFYY";

fn client(base: &str, retries: u32) -> Client {
    Client::builder()
        .base_url(format!("{base}/client/v4"))
        .account_id(ACCOUNT)
        .api_token(TOKEN)
        .retry_policy(RetryPolicy {
            max_retries: retries,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap()
}

fn list_body(kind: &str, status: &str, percent: f64) -> Value {
    json!({
        "success": true, "errors": [], "messages": [],
        "result": { kind: { "status": status, "percentComplete": percent, "url": "https://example.com/f" } }
    })
}

/// Fast polling for tests; the defaults start at 1 s.
fn fast_wait() -> WaitOptions {
    WaitOptions::default().intervals(Duration::from_millis(10), Duration::from_millis(20))
}

async fn mount_once(server: &MockServer, verb: &str, body: Value) {
    Mock::given(method(verb))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .up_to_n_times(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn wait_reports_each_progress_value_until_ready() {
    let server = MockServer::start().await;
    mount_once(&server, "GET", list_body("audio", "inprogress", 10.0)).await;
    mount_once(&server, "GET", list_body("audio", "inprogress", 50.0)).await;
    mount_once(&server, "GET", list_body("audio", "ready", 100.0)).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let ready = client(&server.uri(), 0)
        .wait_until_ready(
            VIDEO,
            DownloadType::Audio,
            fast_wait()
                .on_progress(move |d: &Download| sink.lock().unwrap().push(d.percent_complete)),
        )
        .await
        .unwrap();
    assert_eq!(ready.status, DownloadStatus::Ready);
    assert_eq!(*seen.lock().unwrap(), [10.0, 50.0, 100.0]);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn wait_fails_fast_on_error_status() {
    let server = MockServer::start().await;
    mount_once(&server, "GET", list_body("default", "inprogress", 20.0)).await;
    mount_once(&server, "GET", list_body("default", "error", 35.0)).await;
    mount_once(&server, "GET", list_body("default", "ready", 100.0)).await;
    let err = client(&server.uri(), 0)
        .wait_until_ready(VIDEO, DownloadType::Default, fast_wait())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DownloadFailed { percent_complete, .. } if percent_complete == 35.0),
        "{err:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn wait_times_out_at_the_deadline() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list_body(
            "default",
            "inprogress",
            5.0,
        )))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let err = client(&server.uri(), 0)
        .wait_until_ready(
            VIDEO,
            DownloadType::Default,
            fast_wait().timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err, Error::WaitTimeout { last_percent: Some(p), .. } if p == 5.0),
        "{err:?}"
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(err.to_string().contains("not ready after"), "{err}");
}

#[tokio::test]
async fn wait_backs_off_between_polls() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list_body(
            "default",
            "inprogress",
            5.0,
        )))
        .mount(&server)
        .await;
    // 20, 40, 80, 160 ms…: within 700 ms about 5-6 polls, where a fixed
    // 20 ms interval would make about 35.
    let _ = client(&server.uri(), 0)
        .wait_until_ready(
            VIDEO,
            DownloadType::Default,
            WaitOptions::default()
                .intervals(Duration::from_millis(20), Duration::from_secs(10))
                .timeout(Duration::from_millis(700)),
        )
        .await
        .unwrap_err();
    let polls = server.received_requests().await.unwrap().len();
    assert!((2..=8).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn wait_can_create_the_missing_download_first() {
    let server = MockServer::start().await;
    let base = format!("/client/v4/accounts/{ACCOUNT}/stream/{VIDEO}/downloads");
    mount_once(
        &server,
        "GET",
        json!({ "success": true, "errors": [], "messages": [], "result": {} }),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(format!("{base}/audio")))
        .respond_with(ResponseTemplate::new(200).set_body_json(list_body(
            "audio",
            "inprogress",
            0.0,
        )))
        .expect(1)
        .mount(&server)
        .await;
    mount_once(&server, "GET", list_body("audio", "ready", 100.0)).await;

    // Without the option, a missing download is an error, not a hang.
    let empty = MockServer::start().await;
    mount_once(
        &empty,
        "GET",
        json!({ "success": true, "errors": [], "messages": [], "result": {} }),
    )
    .await;
    let err = client(&empty.uri(), 0)
        .wait_until_ready(VIDEO, DownloadType::Audio, fast_wait())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");

    let client = client(&server.uri(), 0);
    let ready = client
        .wait_until_ready(
            VIDEO,
            DownloadType::Audio,
            fast_wait().create_if_missing(true),
        )
        .await
        .unwrap();
    assert_eq!(ready.status, DownloadStatus::Ready);
}

fn ready_download(url: String) -> Download {
    serde_json::from_value(json!({ "status": "ready", "percentComplete": 100, "url": url }))
        .unwrap()
}

/// A fake serving files of `size` bytes, and a client for it.
async fn fake(size: u64) -> (StreamFake, Client) {
    let fake = StreamFake::start(FakeConfig {
        file_size: size,
        progress: Progress::PerPoll { step: 100.0 },
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let client = fake_client(&fake, 0);
    (fake, client)
}

fn fake_client(fake: &StreamFake, retries: u32) -> Client {
    Client::builder()
        .base_url(fake.base_url())
        .account_id(&fake.config().account_id)
        .api_token(&fake.config().api_token)
        .retry_policy(RetryPolicy {
            max_retries: retries,
            initial_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap()
}

/// Create the download and wait until it is ready.
async fn ready(client: &Client, kind: DownloadType) -> Download {
    let video = stream_fake::config::DEFAULT_VIDEO;
    client
        .wait_until_ready(video, kind, fast_wait().create_if_missing(true))
        .await
        .unwrap()
}

fn assert_file_is_served_content(path: &std::path::Path, size: u64) {
    assert_file_is(path, size, "default.mp4");
}

/// `path` holds exactly the fake's `file` (`default.mp4`, `audio.m4a`) of VIDEO.
fn assert_file_is(path: &std::path::Path, size: u64, file: &str) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() as u64, size);
    let served = content::FileContent::new(VIDEO, file, size);
    assert_eq!(served.first_mismatch(0, &bytes), None, "bytes differ");
}

#[tokio::test]
async fn fetch_streams_the_exact_bytes_without_credentials() {
    let size = 3 * 1024 * 1024 + 17;
    let (fake, client) = fake(size).await;
    let download = ready(&client, DownloadType::Default).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("video.mp4");
    let mut last = (0, None);
    let report = client
        .fetch(&download, &target, |done, total| last = (done, total))
        .await
        .unwrap();
    assert_eq!(report.bytes, size);
    assert_eq!(report.resumed_from, 0);
    assert_eq!(last, (size, Some(size)));
    assert_file_is_served_content(&target, size);
    assert!(!part_path(&target).exists());
    let requests = fake.file_requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].credential_headers.is_empty(), "{requests:?}");
}

#[tokio::test]
async fn a_cut_connection_leaves_nothing_at_path_and_the_part_resumes() {
    let size = 1024 * 1024;
    let (fake, client) = fake(size).await;
    let download = ready(&client, DownloadType::Audio).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("audio.m4a");

    // No retries: the cut is an error, and nothing is at `path`.
    fake.inject(Route::File, Fault::CutMidBody, Some(1));
    let err = client
        .fetch(&download, &target, |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::IncompleteFile { .. } | Error::Connection { .. }),
        "{err:?}"
    );
    assert!(!target.exists(), "a partial file is at the target path");
    let part = part_path(&target);
    let kept = std::fs::metadata(&part).unwrap().len();
    assert_eq!(kept, size / 2);

    // The next fetch resumes from the .part with a Range request that
    // re-reads the 64 KiB before the resume point to compare them.
    let report = client.fetch(&download, &target, |_, _| {}).await.unwrap();
    assert_eq!(report.resumed_from, kept);
    assert_eq!(report.bytes, size);
    assert_file_is(&target, size, "audio.m4a");
    let requests = fake.file_requests();
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={}-", kept - RESUME_OVERLAP).as_str())
    );
    assert!(!part.exists());
    assert!(!source_path(&target).exists());
}

#[tokio::test]
async fn a_cut_connection_is_resumed_within_the_retries() {
    let size = 512 * 1024;
    let (fake, _) = fake(size).await;
    let client = fake_client(&fake, 2);
    let download = ready(&client, DownloadType::Default).await;
    fake.inject(Route::File, Fault::CutMidBody, Some(2));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("v.mp4");
    let report = client.fetch(&download, &target, |_, _| {}).await.unwrap();
    assert_eq!(report.bytes, size);
    assert_file_is_served_content(&target, size);
    let ranges: Vec<Option<String>> = fake.file_requests().into_iter().map(|r| r.range).collect();
    // Each cut keeps half of what was asked (256 KiB, then 160 KiB more);
    // each resume asks from 64 KiB before what it has, to compare them.
    assert_eq!(
        ranges,
        [
            None,
            Some("bytes=196608-".into()),
            Some("bytes=294912-".into())
        ]
    );
}

#[tokio::test]
async fn a_connection_cut_every_time_reports_every_attempt() {
    let size = 256 * 1024;
    let (fake, _) = fake(size).await;
    let client = fake_client(&fake, 2);
    let download = ready(&client, DownloadType::Default).await;
    fake.inject(Route::File, Fault::CutMidBody, None);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("v.mp4");
    let err = client
        .fetch(&download, &target, |_, _| {})
        .await
        .unwrap_err();
    // A cut body is a transport error from hyper; the count covers every try.
    assert!(
        matches!(err, Error::Connection { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(fake.file_requests().len(), 3, "1 attempt + 2 resumptions");
    assert!(!target.exists());
}

#[tokio::test]
async fn a_server_ignoring_range_restarts_the_file() {
    let size = 200_000;
    let (fake, client) = fake(size).await;
    let download = ready(&client, DownloadType::Default).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("v.mp4");
    // A stale .part from elsewhere.
    std::fs::write(part_path(&target), vec![0xAA; 5000]).unwrap();
    fake.inject(Route::File, Fault::IgnoreRange, Some(1));
    let report = client.fetch(&download, &target, |_, _| {}).await.unwrap();
    assert_eq!(report.bytes, size);
    assert_file_is_served_content(&target, size);
}

#[tokio::test]
async fn fetch_refuses_what_it_cannot_fetch_safely() {
    let client = client("http://127.0.0.1:9", 0);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.mp4");
    let not_ready: Download = serde_json::from_value(
        json!({ "status": "inprogress", "percentComplete": 40, "url": "https://example.com/x.mp4" }),
    )
    .unwrap();
    let clear_text = ready_download("http://customer-x.cloudflarestream.com/x.mp4".into());
    for download in [not_ready, clear_text] {
        let err = client
            .fetch(&download, &target, |_, _| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
    assert!(!target.exists());
}

/// Cloudflare adds status values without notice: `queued` is not ready
/// yet, and the wait goes on until `ready`.
#[tokio::test]
async fn wait_keeps_waiting_through_an_unknown_status() {
    let server = MockServer::start().await;
    mount_once(&server, "GET", list_body("default", "queued", 0.0)).await;
    mount_once(&server, "GET", list_body("default", "queued", 0.0)).await;
    mount_once(&server, "GET", list_body("default", "ready", 100.0)).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let ready = client(&server.uri(), 0)
        .wait_until_ready(
            VIDEO,
            DownloadType::Default,
            fast_wait()
                .on_progress(move |d: &Download| sink.lock().unwrap().push(d.status.clone())),
        )
        .await
        .unwrap();
    assert_eq!(ready.status, DownloadStatus::Ready);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            DownloadStatus::Unknown("queued".into()),
            DownloadStatus::Unknown("queued".into()),
            DownloadStatus::Ready
        ]
    );
}
