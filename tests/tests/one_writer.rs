//! One writer per file, and a `.part` resumed only when it is the same
//! file, against stream-fake over loopback (whose files differ per video
//! and type, and carry an `ETag`).

use std::time::Duration;

use cloudflare_stream_downloads::types::{Download, DownloadType};
use cloudflare_stream_downloads::{
    Client, Error, RESUME_OVERLAP, RetryPolicy, WaitOptions, part_path, source_path,
};
use stream_fake::{FakeConfig, Fault, Progress, Route, StreamFake, content};

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

async fn fake(size: u64) -> StreamFake {
    StreamFake::start(FakeConfig {
        videos: vec![A.into(), B.into()],
        file_size: size,
        progress: Progress::PerPoll { step: 100.0 },
        ..FakeConfig::default()
    })
    .await
    .unwrap()
}

fn client(fake: &StreamFake, retries: u32) -> Client {
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

async fn ready(client: &Client, video: &str) -> Download {
    client
        .wait_until_ready(
            video,
            DownloadType::Default,
            WaitOptions::default()
                .intervals(Duration::from_millis(10), Duration::from_millis(20))
                .create_if_missing(true),
        )
        .await
        .unwrap()
}

/// `path` holds exactly `video`'s MP4.
fn assert_is(path: &std::path::Path, video: &str, size: u64) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() as u64, size, "size of {}", path.display());
    let served = content::FileContent::new(video, "default.mp4", size);
    assert_eq!(
        served.first_mismatch(0, &bytes),
        None,
        "{} is not {video}'s file",
        path.display()
    );
}

/// A fetch of `video` to `path` cut halfway, with no retries: leaves half
/// of the file in the `.part`.
async fn cut_halfway(fake: &StreamFake, video: &str, path: &std::path::Path) -> u64 {
    let client = client(fake, 0);
    let download = ready(&client, video).await;
    fake.inject(Route::File, Fault::CutMidBody, Some(1));
    client.fetch(&download, path, |_, _| {}).await.unwrap_err();
    std::fs::metadata(part_path(path)).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_fetches_to_one_path_one_succeeds_the_other_is_refused() {
    let size = 2 * 1024 * 1024;
    let fake = fake(size).await;
    let client = client(&fake, 0);
    let download = ready(&client, A).await;
    // The first transfer holds the lock for a while.
    fake.inject(
        Route::File,
        Fault::Slow(Duration::from_millis(600)),
        Some(1),
    );
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.mp4");
    let first = {
        let (client, download, target) = (client.clone(), download.clone(), target.clone());
        tokio::spawn(async move { client.fetch(&download, &target, |_, _| {}).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = client.fetch(&download, &target, |_, _| {}).await;
    let err = second.unwrap_err();
    match &err {
        Error::FileBusy { path, holder } => {
            assert_eq!(path, &part_path(&target));
            assert_eq!(holder, &format!("pid {}", std::process::id()));
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("out.mp4.part") && text.contains("another fetch is writing"),
        "{text}"
    );
    let report = first.await.unwrap().unwrap();
    assert_eq!(report.bytes, size);
    assert_is(&target, A, size);
    // Only the first one talked to the download host.
    assert_eq!(fake.file_requests().len(), 1);
    // The lock is gone with the first fetch: a third one may write.
    client.fetch(&download, &target, |_, _| {}).await.unwrap();
    assert_is(&target, A, size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_from_another_video_is_not_resumed() {
    let size = 1024 * 1024;
    let fake = fake(size).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.mp4");
    let kept = cut_halfway(&fake, A, &target).await;
    assert_eq!(kept, size / 2);
    let client = client(&fake, 0);
    let b = ready(&client, B).await;
    let report = client.fetch(&b, &target, |_, _| {}).await.unwrap();
    assert_eq!(report.resumed_from, 0);
    assert_is(&target, B, size);
    // B was asked for from the start, with no Range.
    assert_eq!(fake.file_requests().last().unwrap().range, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_with_a_garbage_tail_starts_over() {
    let size = 1024 * 1024;
    let fake = fake(size).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.mp4");
    let kept = cut_halfway(&fake, A, &target).await;
    // A power cut: the last unsynced pages hold zeros.
    let part = part_path(&target);
    let mut bytes = std::fs::read(&part).unwrap();
    let len = bytes.len();
    bytes[len - 4096..].fill(0);
    std::fs::write(&part, &bytes).unwrap();

    let client = client(&fake, 2);
    let a = ready(&client, A).await;
    let report = client.fetch(&a, &target, |_, _| {}).await.unwrap();
    assert_eq!(report.resumed_from, 0, "the garbage was kept");
    assert_is(&target, A, size);
    // It asked from before the resume point, saw the mismatch, started over.
    let ranges: Vec<Option<String>> = fake
        .file_requests()
        .iter()
        .map(|r| r.range.clone())
        .collect();
    assert_eq!(
        ranges[1..],
        [Some(format!("bytes={}-", kept - RESUME_OVERLAP)), None]
    );
    assert!(!part.exists() && !source_path(&target).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_longer_than_the_file_starts_over() {
    let size = 256 * 1024;
    let fake = fake(size).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.mp4");
    cut_halfway(&fake, A, &target).await;
    // Longer than the whole file, by a lot and by a little.
    for extra in [size, 1000] {
        let part = part_path(&target);
        let mut bytes = std::fs::read(&part).unwrap_or_default();
        bytes.resize((size + extra) as usize, 7);
        std::fs::write(&part, &bytes).unwrap();
        if !source_path(&target).exists() {
            cut_halfway(&fake, A, &target).await;
            let mut bytes = std::fs::read(&part).unwrap();
            bytes.resize((size + extra) as usize, 7);
            std::fs::write(&part, &bytes).unwrap();
        }
        let client = client(&fake, 2);
        let a = ready(&client, A).await;
        let report = client.fetch(&a, &target, |_, _| {}).await.unwrap();
        assert_eq!(report.resumed_from, 0);
        assert_is(&target, A, size);
        std::fs::remove_file(&target).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_of_the_same_file_is_resumed_after_its_overlap_matches() {
    let size = 1024 * 1024;
    let fake = fake(size).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.mp4");
    let kept = cut_halfway(&fake, A, &target).await;
    let client = client(&fake, 0);
    let a = ready(&client, A).await;
    let report = client.fetch(&a, &target, |_, _| {}).await.unwrap();
    assert_eq!(report.resumed_from, kept);
    assert_is(&target, A, size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_too_big_for_the_disk_is_refused_before_writing() {
    // 1 PiB: no test machine has that free.
    let size = 1u64 << 50;
    let fake = fake(size).await;
    let client = client(&fake, 0);
    let a = ready(&client, A).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.mp4");
    let err = client.fetch(&a, &target, |_, _| {}).await.unwrap_err();
    match &err {
        Error::NoSpace {
            path,
            needed,
            available,
        } => {
            assert_eq!(path, &part_path(&target));
            assert_eq!(*needed, size);
            assert!(*available < size);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("needs {size} more bytes")),
        "{err}"
    );
    // Nothing left behind.
    assert!(!part_path(&target).exists() && !target.exists());
}
