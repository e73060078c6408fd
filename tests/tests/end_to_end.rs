//! The whole flow through the public client against stream-fake:
//! create -> wait (with progress) -> fetch a 64 MiB file, bytes verified,
//! and no credential ever seen by the download host.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudflare_stream_downloads::DownloadStatus;
use cloudflare_stream_downloads::types::DownloadType;
use cloudflare_stream_downloads::{Client, WaitOptions};
use stream_fake::{FakeConfig, Progress, StreamFake, content};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_wait_fetch_64_mib() {
    let size: u64 = 64 * 1024 * 1024;
    let fake = StreamFake::start(FakeConfig {
        file_size: size,
        progress: Progress::PerPoll { step: 25.0 },
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let config = fake.config().clone();
    let base_url = fake.base_url();
    // Configured the way users do: from the environment.
    let client = Client::builder()
        .from_lookup(move |name| match name {
            "CLOUDFLARE_API_TOKEN" => Some(config.api_token.clone()),
            "CLOUDFLARE_ACCOUNT_ID" => Some(config.account_id.clone()),
            "CLOUDFLARE_BASE_URL" => Some(base_url.clone()),
            _ => None,
        })
        .build()
        .unwrap();
    let video = stream_fake::config::DEFAULT_VIDEO;

    let created = client
        .create_download(video, DownloadType::Default)
        .await
        .unwrap();
    let first = created.default().unwrap();
    assert_eq!(first.status, DownloadStatus::Inprogress);
    assert_eq!(first.percent_complete, 0.0);

    let progress = Arc::new(Mutex::new(Vec::new()));
    let sink = progress.clone();
    let ready = client
        .wait_until_ready(
            video,
            DownloadType::Default,
            WaitOptions::default()
                .intervals(Duration::from_millis(10), Duration::from_millis(50))
                .on_progress(move |d| sink.lock().unwrap().push(d.percent_complete)),
        )
        .await
        .unwrap();
    assert_eq!(*progress.lock().unwrap(), [25.0, 50.0, 75.0, 100.0]);

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("video.mp4");
    let mut updates = 0u64;
    let report = client
        .fetch(&ready, &target, |_, _| updates += 1)
        .await
        .unwrap();
    assert_eq!(report.bytes, size);
    assert!(updates > 1, "no progress during the fetch");

    // Verify every byte, a block at a time.
    let mut file = std::fs::File::open(&target).unwrap();
    let mut block = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = file.read(&mut block).unwrap();
        if n == 0 {
            break;
        }
        assert_eq!(
            content::FileContent::new(video, "default.mp4", size)
                .first_mismatch(offset, &block[..n]),
            None,
            "wrong byte in the block at {offset}"
        );
        offset += n as u64;
    }
    assert_eq!(offset, size);
    // A whole MP4, as Stream serves them: its boxes tile the file.
    let boxes = cloudflare_stream_downloads::media::check_file(&target).unwrap();
    let kinds: Vec<String> = boxes.iter().map(|b| b.kind_str()).collect();
    assert_eq!(kinds, ["ftyp", "moov", "mdat"]);

    let file_requests = fake.file_requests();
    assert_eq!(file_requests.len(), 1);
    assert!(
        file_requests
            .iter()
            .all(|r| r.credential_headers.is_empty()),
        "credentials reached the download host: {file_requests:?}"
    );
}
