//! The engine as a library, in process, against stream-fake: what a Rust
//! program embedding it sees (the CLI's end-to-end tests are in
//! crates/cfstream/tests/export.rs).

use std::sync::{Arc, Mutex};

use cfstream_export::{ExportOptions, Exporter, Progress, Selection};
use cloudflare_stream_downloads::{Client, VideoQuery};
use stream_fake::{FakeConfig, StreamFake};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_exporter_run_twice_reports_each_run_and_the_progress() {
    let fake = StreamFake::start(FakeConfig {
        videos: Vec::new(),
        generated_videos: 40,
        file_size: 8 * 1024,
        progress: stream_fake::Progress::PerPoll { step: 100.0 },
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = ExportOptions::new(dir.path(), Selection::All(VideoQuery::all()));
    options.rate = "1000/1s".parse().unwrap();
    let exporter = Exporter::new(options).unwrap();
    let client = exporter
        .client(
            Client::builder()
                .api_token(&fake.config().api_token)
                .account_id(&fake.config().account_id)
                .base_url(fake.base_url()),
        )
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let observer: cfstream_export::Observer = Arc::new(move |p| seen.lock().unwrap().push(p));
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);

    let first = exporter
        .run(client.clone(), observer.clone(), stop.clone())
        .await
        .unwrap();
    assert_eq!(first.selected, 40);
    assert_eq!(first.done + first.failed.len() as u64, 40);
    assert_eq!(first.api_requests, fake.api_request_count());
    {
        let events = events.lock().unwrap();
        assert!(matches!(events[0], Progress::Listing { videos: 40 }));
        assert!(events.contains(&Progress::Selected {
            videos: 40,
            files: 40
        }));
        let done = events
            .iter()
            .filter(|e| matches!(e, Progress::Done { .. }))
            .count();
        let ended = events
            .iter()
            .filter(|e| matches!(e, Progress::TransferEnded { .. }))
            .count();
        assert_eq!(done as u64, first.done);
        assert!(ended >= done, "every done file was a transfer that ended");
    }

    let before = fake.api_request_count();
    let second = exporter.run(client, observer, stop).await.unwrap();
    assert_eq!(second.skipped, first.done);
    assert_eq!(second.done, 0);
    // This run's requests only: the listing.
    assert_eq!(second.api_requests, fake.api_request_count() - before);
    assert_eq!(second.api_requests, 1);
    fake.shutdown().await;
}
