//! `stream-fake`: run the fake Stream downloads API from the shell.

use std::time::Duration;

use clap::Parser;
use stream_fake::{FakeConfig, FaultRule, Progress, RateLimit, StreamFake, VideoOptions};

/// A local fake of Cloudflare Stream's downloads API and download host.
#[derive(Parser, Debug)]
#[command(version, about, after_help = AFTER_HELP)]
struct Args {
    /// Port of the API (0: any free port).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Port of the download host (0: any free port).
    #[arg(long, default_value_t = 0)]
    files_port: u16,
    /// Account id the API answers for.
    #[arg(long, default_value = stream_fake::config::DEFAULT_ACCOUNT)]
    account_id: String,
    /// Accepted API token.
    #[arg(long, default_value = stream_fake::config::DEFAULT_TOKEN)]
    api_token: String,
    /// Accepted e-mail (with --api-key).
    #[arg(long, default_value = stream_fake::config::DEFAULT_EMAIL)]
    api_email: String,
    /// Accepted global API key (with --api-email).
    #[arg(long, default_value = stream_fake::config::DEFAULT_API_KEY)]
    api_key: String,
    /// Accepted user service key.
    #[arg(long, default_value = stream_fake::config::DEFAULT_SERVICE_KEY)]
    user_service_key: String,
    /// A known video id (repeatable).
    #[arg(long = "video", default_values_t = [stream_fake::config::DEFAULT_VIDEO.to_owned()])]
    videos: Vec<String>,
    /// Also serve a deterministic account of N more videos in the listing
    /// (ids, creation times with ties, durations, sizes, names, a mix of
    /// states, some not ready to stream, some requiring signed URLs).
    #[arg(long = "videos", default_value_t = 0)]
    generated_videos: usize,
    /// Whether the listing's after/before bounds include a video created
    /// exactly at the bound (Cloudflare does not document it).
    #[arg(long, default_value = "exclusive", value_parser = ["exclusive", "inclusive"])]
    bounds: String,
    /// A known video whose downloads end in status `error` at 40 % (repeatable).
    #[arg(long = "failing-video")]
    failing_videos: Vec<String>,
    /// Size of every served file, e.g. 64MiB.
    #[arg(long, default_value = "64MiB")]
    file_size: bytesize::ByteSize,
    /// Percentage points a download advances per list request.
    #[arg(long, default_value_t = 25.0, conflicts_with = "ready_after")]
    progress_step: f64,
    /// Advance with time instead: ready this long after creation, e.g. 10s.
    #[arg(long, value_parser = humantime::parse_duration)]
    ready_after: Option<Duration>,
    /// Inject a fault: ROUTE=FAULT[*TIMES] (repeatable). See below.
    #[arg(long = "fault")]
    faults: Vec<FaultRule>,
    /// Enforce a rate limit with a lockout: N/WINDOW[:LOCKOUT], e.g.
    /// 1200/5m:5m (Cloudflare's per-user limit).
    #[arg(long)]
    rate_limit: Option<RateLimit>,
    /// Pause before each 64 KiB chunk of a served file, e.g. 20ms.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    file_chunk_delay: Duration,
    /// Every N-th listed video (ready to stream) has its downloads, ready,
    /// from the start (0: none, 1: all).
    #[arg(long, default_value_t = 0, value_name = "N")]
    existing_downloads: usize,
    /// Base URL of the listing's playback URLs (default: the download
    /// host), e.g. http://127.0.0.1:9 (refused) or
    /// https://customer-x.cloudflarestream.com (does not resolve offline).
    #[arg(long, value_name = "URL")]
    playback_base: Option<String>,
}

const AFTER_HELP: &str = "\
Faults (ROUTE=FAULT[*TIMES] or ROUTE=FAULT%PERCENT; without either, every request):
  routes: videos, list, create, delete, create-type, delete-type, file, video, token,
          create-key, list-keys, delete-key, captions, caption, vtt, audio, watermarks,
          manifest, any
  faults: 429[:SECS]  429-date[:SECS]  429-bare  5xx[:STATUS] (or 502, 503…)
          html  success-false  slow[:DURATION]  cut  truncated  ignore-range  short-file
  e.g.    --fault list=429:2*3  --fault file=cut*1  --fault any=slow:500ms
          --fault file=503%15 --fault file=cut%10  (a flaky download host)";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = FakeConfig {
        port: args.port,
        files_port: args.files_port,
        account_id: args.account_id,
        api_token: args.api_token,
        api_key: (args.api_email, args.api_key),
        user_service_key: args.user_service_key,
        videos: args.videos,
        generated_videos: args.generated_videos,
        catalog: Vec::new(),
        bounds: args.bounds.parse().map_err(std::io::Error::other)?,
        file_size: args.file_size.as_u64(),
        progress: match args.ready_after {
            Some(duration) => Progress::OverTime { duration },
            None => Progress::PerPoll {
                step: args.progress_step,
            },
        },
        faults: args.faults,
        rate_limit: args.rate_limit,
        file_chunk_delay: args.file_chunk_delay,
        existing_downloads: args.existing_downloads,
        playback_base: args.playback_base,
    };
    let fake = StreamFake::start(config).await?;
    for id in &args.failing_videos {
        fake.add_video(
            id,
            VideoOptions {
                fails_at: Some(40.0),
                ..VideoOptions::default()
            },
        );
    }
    let c = fake.config();
    println!("stream-fake listening");
    println!("  CLOUDFLARE_BASE_URL={}", fake.base_url());
    println!("  CLOUDFLARE_ACCOUNT_ID={}", c.account_id);
    println!("  CLOUDFLARE_API_TOKEN={}", c.api_token);
    println!(
        "  or CLOUDFLARE_EMAIL={} CLOUDFLARE_API_KEY={}",
        c.api_key.0, c.api_key.1
    );
    println!(
        "  or CLOUDFLARE_API_USER_SERVICE_KEY={}",
        c.user_service_key
    );
    println!("  download host: {}", fake.files_base_url());
    println!("  videos: {}", c.videos.join(", "));
    if c.generated_videos > 0 {
        println!(
            "  listing: {} more generated videos, {:?} bounds",
            c.generated_videos, c.bounds
        );
    }
    for rule in &c.faults {
        println!("  fault: {rule}");
    }
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    // What each host was asked, for whoever ran a client against it.
    println!(
        "summary: API {} request(s) ({} answered 429); download host {} request(s), {} body byte(s) sent",
        fake.api_request_count(),
        fake.rate_limited_count(),
        fake.file_requests().len(),
        fake.file_bytes_sent()
    );
    fake.shutdown().await;
    Ok(())
}
