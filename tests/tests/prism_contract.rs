//! Contract test against Prism serving the checked-in (patched) spec on
//! 127.0.0.1, the way Cloudflare tests its own SDKs: every operation through
//! the public client must get a 2xx that the client decodes (the listing
//! with every filter the client sends, which Prism validates).
//!
//! Needs `npm` (Node 20) to run `@stainless-api/prism-cli@5.15.0`; `.ci/run`
//! installs it ahead of the tests. Without npm the test fails under CI and,
//! elsewhere, says loudly that it did not run.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cloudflare_stream_downloads::types::{DownloadType, VideoStateFilter};
use cloudflare_stream_downloads::videos::PageRequest;
use cloudflare_stream_downloads::{Client, VideoQuery};
use futures_util::TryStreamExt;
use xtask::codegen::{Paths, patched_spec};

const PRISM: &str = "@stainless-api/prism-cli@5.15.0";

/// Kills Prism's whole process group (npm exec -> node) when dropped.
struct PrismProcess(Child);

impl Drop for PrismProcess {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        for signal in ["TERM", "KILL"] {
            let _ = Command::new("kill")
                .args(["-s", signal, "--", &group])
                .stderr(Stdio::null())
                .status();
            for _ in 0..50 {
                if self.0.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn npm_available() -> bool {
    Command::new("npm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_gets_a_2xx_from_prism() {
    if !npm_available() {
        let message = format!(
            "PRISM CONTRACT TEST DID NOT RUN: `npm` is not on PATH; install Node 20 + npm \
             (the test runs `npm exec --package={PRISM}`)"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        eprintln!("\n!!!!!!!!\n{message}\n!!!!!!!!\n");
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("stream-downloads.patched.json");
    let doc = patched_spec(&Paths::workspace()).unwrap();
    std::fs::write(&spec, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prism.log")).unwrap();
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new("npm")
            .args([
                "exec",
                "--yes",
                &format!("--package={PRISM}"),
                "--",
                "prism",
                "mock",
            ])
            .arg(&spec)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("cannot start npm")
    };
    let mut prism = PrismProcess(child);
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = prism.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.path().join("prism.log")).unwrap_or_default();
            panic!("prism exited with {status} before listening:\n{log}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "prism did not listen on {port} within 180 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let client = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .account_id("023e105f4ecef8ad9ca31a8372d0c353")
        .api_token("prism-accepts-any-bearer-token")
        .max_retries(0)
        .build()
        .unwrap();
    let video = "ea95132c15732412d22c1476fa83f27a";
    let listed = client.list_downloads(video).await.expect("list");
    assert!(listed.default().is_some(), "{listed:?}");
    client.create_downloads(video).await.expect("create all");
    client.delete_downloads(video).await.expect("delete all");
    for kind in [DownloadType::Default, DownloadType::Audio] {
        let created = client
            .create_download(video, kind)
            .await
            .expect("create one");
        assert!(created.get(kind).is_some(), "{created:?}");
        client
            .delete_download(video, kind)
            .await
            .expect("delete one");
    }

    // The listing: Prism validates every query parameter against the spec
    // (formats, enum, limit range) and answers its example page.
    let query = VideoQuery::all()
        .status(VideoStateFilter::Ready)
        .creator("creator-id_abcde12345")
        .search("puppy")
        .video_name("puppy.mp4")
        .created_after("2014-01-01T00:00:00Z".parse().unwrap())
        .created_before("2024-01-01T00:00:00.5Z".parse().unwrap())
        .ascending(true)
        .page_size(10);
    let videos: Vec<_> = client
        .videos(query.clone())
        .try_collect()
        .await
        .expect("list videos");
    assert!(
        !videos.is_empty() && videos[0].uid().is_some(),
        "{videos:?}"
    );
    let page = client
        .list_videos(
            &query,
            PageRequest {
                after: query.created_after,
                before: query.created_before,
                limit: 1000,
                include_counts: true,
            },
        )
        .await
        .expect("one page with counts");
    assert!(page.total.is_some(), "{page:?}");
    client.video_count(&VideoQuery::all()).await.expect("count");

    // Signed URLs: one video's details, a token (Prism checks the body
    // against the schema), the signing keys (no body: patch 07; Prism
    // answers 415 to a body on an operation without one).
    let details = client.video(video).await.expect("video details");
    assert!(details.uid().is_some(), "{details:?}");
    let request = cloudflare_stream_downloads::types::TokenRequest {
        downloadable: true,
        exp: Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
                + 3600,
        ),
        ..Default::default()
    };
    let token = client.create_token(video, &request).await.expect("token");
    assert!(!token.expose().is_empty());
    let key = client.create_signing_key().await.expect("create key");
    assert!(
        !key.pem.expose().is_empty() && !key.id.is_empty(),
        "{key:?}"
    );
    let keys = client.signing_keys().await.expect("list keys");
    assert!(!keys.is_empty(), "{keys:?}");
    client
        .delete_signing_key(&key.id)
        .await
        .expect("delete key");

    // What an archive needs beside the media: captions (the WebVTT from
    // the example, valid after patch 11), audio tracks, watermarks.
    let captions = client.captions(video).await.expect("captions");
    assert!(
        captions.iter().all(|c| c.language.is_some()),
        "{captions:?}"
    );
    let one = client.caption(video, "tr").await.expect("one caption");
    assert!(one.language.is_some(), "{one:?}");
    let vtt = client.caption_vtt(video, "tr").await.expect("webvtt");
    assert!(vtt.starts_with("WEBVTT"), "{vtt:?}");
    client.audio_tracks(video).await.expect("audio tracks");
    client.watermarks().await.expect("watermarks");

    // Prism enforces the spec's security; after patch 02 any one scheme is
    // enough, as with the real API.
    let other_scheme = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .account_id("023e105f4ecef8ad9ca31a8372d0c353")
        .credentials(cloudflare_stream_downloads::Credentials::UserServiceKey(
            "k".into(),
        ))
        .max_retries(0)
        .build()
        .unwrap();
    other_scheme
        .list_downloads(video)
        .await
        .expect("any one scheme is accepted");
    drop(prism);
}
