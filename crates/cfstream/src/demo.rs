//! `cfstream demo`: the whole flow against stream-fake, in-process.

use std::path::PathBuf;
use std::time::Duration;

use cloudflare_stream_downloads::types::DownloadType;
use cloudflare_stream_downloads::{Client, Error};
use stream_fake::{FakeConfig, Progress, StreamFake};

use crate::cli::Global;
use crate::output::Output;

/// Start the fake on 127.0.0.1, then run `fetch` against it.
pub async fn run(
    global: &Global,
    size: u64,
    path: Option<PathBuf>,
    out: &Output,
) -> Result<(), Error> {
    let fake = StreamFake::start(FakeConfig {
        file_size: size,
        progress: Progress::PerPoll { step: 25.0 },
        ..FakeConfig::default()
    })
    .await
    .map_err(|e| Error::Config(format!("cannot start the built-in fake API: {e}")))?;
    out.step(&format!(
        "started a fake Stream API at {} (files at {})",
        fake.base_url(),
        fake.files_base_url()
    ));
    let config = fake.config();
    let mut builder = Client::builder()
        .base_url(fake.base_url())
        .account_id(&config.account_id)
        .api_token(&config.api_token);
    if let Some(retries) = global.retries {
        builder = builder.max_retries(retries);
    }
    let client = builder.build()?;
    let video = stream_fake::config::DEFAULT_VIDEO;
    let path =
        path.unwrap_or_else(|| std::env::temp_dir().join(format!("cfstream-demo-{video}.mp4")));
    out.step(&format!(
        "creating the default (MP4) download of video {video}"
    ));
    client.create_download(video, DownloadType::Default).await?;
    let polls = (Duration::from_millis(200), Duration::from_secs(1));
    crate::fetch(&client, video, DownloadType::Default, &path, polls, out).await?;
    let leaked = fake
        .file_requests()
        .iter()
        .any(|r| !r.credential_headers.is_empty());
    out.step(if leaked {
        "WARNING: the download host received credentials"
    } else {
        "the download host received no credentials"
    });
    fake.shutdown().await;
    Ok(())
}
