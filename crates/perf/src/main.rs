//! `perf`: the workspace's benchmarks. Each one runs its baseline in the
//! same process (or the same run, for whole-process figures) and reports a
//! ratio, never an absolute claim. Results and method: docs/performance.md.
//!
//! `cargo run --release -p perf -- all` (or one of the subcommands).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use cloudflare_stream_downloads::types::{DownloadType, DownloadsResponse};
use cloudflare_stream_downloads::{Client, RetryPolicy, WaitOptions};
use stream_fake::{FakeConfig, Progress, StreamFake};

#[derive(Parser)]
#[command(about = "Benchmarks against baselines measured in the same run")]
struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Envelope decoding: generated types vs serde_json::Value.
    Decode,
    /// Per-call overhead of list/create vs raw reqwest + serde_json.
    Overhead,
    /// Requests made by wait_until_ready vs polling at a fixed interval.
    Wait,
    /// Fetch 64 MiB..1 GiB from stream-fake vs curl: throughput and peak RSS.
    Fetch {
        /// Largest file, in MiB.
        #[arg(long, default_value_t = 1024)]
        max_mib: u64,
    },
    /// Warm codegen and slicing the 4.1 MB document vs parsing it.
    Codegen,
    /// Listing an account of 100,000 videos: requests, time vs raw reqwest
    /// fetching the same pages, and peak RSS of `cfstream videos list --json`.
    Listing {
        /// Videos in the account.
        #[arg(long, default_value_t = 100_000)]
        videos: usize,
    },
    /// `cfstream export` of 1,000 videos under a rate limit: API requests
    /// per video and elapsed time, adaptive polling vs polling every second
    /// vs doubling backoff (same fake, same limit); elapsed vs the floor the
    /// rate sets.
    Export {
        /// Videos in the account.
        #[arg(long, default_value_t = 1000)]
        videos: usize,
    },
    /// Peak RSS and time of `cfstream export --all` that finds 100,000
    /// videos done in its state.
    ExportRerun {
        /// Videos in the account and the state.
        #[arg(long, default_value_t = 100_000)]
        videos: usize,
    },
    /// `export` of an account whose videos all require signed URLs:
    /// tokens from the API (no key) against tokens signed locally.
    ExportSigned {
        /// Videos in the account.
        #[arg(long, default_value_t = 300)]
        videos: usize,
    },
    /// `cfstream export` of large files into a bucket (SeaweedFS, a real S3
    /// server) against the same export into a directory: elapsed time,
    /// throughput and peak RSS, whole processes, alternating.
    ExportBucket {
        /// Files (one transfer each).
        #[arg(long, default_value_t = 4)]
        files: usize,
        /// Size of each, in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
    },
    /// `cfstream export` when the download host misbehaves: elapsed and
    /// API requests per video with the listing's playback host healthy,
    /// unresolvable, refusing, hanging, and the download host flaky (503s
    /// and cut bodies), against the API-only readiness (`--readiness api`).
    ExportHostFaults {
        /// Videos in the account.
        #[arg(long, default_value_t = 40)]
        videos: usize,
    },
    /// `cfstream export` of 1,000 videos with captions off, on with none
    /// present, and on with 10 % of the videos having 1-3 languages: API
    /// requests per video, manifests read, captions written.
    ExportCaptions {
        /// Videos in the account.
        #[arg(long, default_value_t = 1000)]
        videos: usize,
    },
    /// `cfstream verify --dest` of an archive in SeaweedFS against
    /// reading the same objects with `object_store` alone (same
    /// parallelism): throughput; and `cfstream export status` of a
    /// directory archive of 100,000 videos (generated sidecars, the
    /// account listed from stream-fake): time and peak RSS.
    Verify {
        /// Media files in the bucket archive.
        #[arg(long, default_value_t = 16)]
        files: usize,
        /// Size of each, in MiB.
        #[arg(long, default_value_t = 64)]
        mib: u64,
        /// Videos of the archive whose status is asked.
        #[arg(long, default_value_t = 100_000)]
        videos: usize,
    },
    /// Everything above.
    All,
    /// (internal) fetch one URL with the client, for whole-process figures.
    #[command(hide = true)]
    FetchChild { url: String, path: PathBuf },
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match args.bench {
        Bench::Decode => decode(),
        Bench::Overhead => rt.block_on(overhead()),
        Bench::Wait => rt.block_on(wait()),
        Bench::Fetch { max_mib } => rt.block_on(fetch(max_mib)),
        Bench::Codegen => codegen(),
        Bench::Listing { videos } => rt.block_on(listing(videos)),
        Bench::Export { videos } => rt.block_on(export(videos)),
        Bench::ExportRerun { videos } => rt.block_on(export_rerun(videos)),
        Bench::ExportSigned { videos } => rt.block_on(export_signed(videos)),
        Bench::ExportBucket { files, mib } => rt.block_on(export_bucket(files, mib)),
        Bench::ExportHostFaults { videos } => rt.block_on(export_host_faults(videos)),
        Bench::ExportCaptions { videos } => rt.block_on(export_captions(videos)),
        Bench::Verify { files, mib, videos } => {
            rt.block_on(verify_bucket(files, mib));
            rt.block_on(status_of(videos));
        }
        Bench::All => {
            decode();
            rt.block_on(overhead());
            rt.block_on(wait());
            rt.block_on(fetch(1024));
            codegen();
            rt.block_on(listing(100_000));
            rt.block_on(export(1000));
            rt.block_on(export_rerun(100_000));
            rt.block_on(export_signed(300));
            rt.block_on(export_bucket(4, 1024));
            rt.block_on(export_host_faults(40));
            rt.block_on(export_captions(1000));
            rt.block_on(verify_bucket(16, 64));
            rt.block_on(status_of(100_000));
        }
        Bench::FetchChild { url, path } => rt.block_on(fetch_child(&url, &path)),
    }
}

/// Median of `runs` timings of `f`, after one warm-up.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn fixture(name: &str) -> String {
    let path = xtask::workspace_root().join("tests/fixtures").join(name);
    std::fs::read_to_string(path).unwrap()
}

fn decode() {
    println!("## decode: envelope decoding throughput");
    for name in [
        "docs-list-audio-and-default.json",
        "reference-create-single.json",
    ] {
        let body = fixture(name);
        let n = 20_000;
        let typed = median(7, || {
            for _ in 0..n {
                let v: DownloadsResponse = serde_json::from_str(&body).unwrap();
                std::hint::black_box(v);
            }
        });
        let value = median(7, || {
            for _ in 0..n {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                std::hint::black_box(v);
            }
        });
        let mbps = |d: Duration| (body.len() * n) as f64 / d.as_secs_f64() / 1e6;
        println!(
            "{name} ({} B): generated types {:.0} MB/s, serde_json::Value {:.0} MB/s, ratio {:.2}",
            body.len(),
            mbps(typed),
            mbps(value),
            mbps(typed) / mbps(value)
        );
    }
}

async fn start_fake(config: FakeConfig) -> StreamFake {
    StreamFake::start(config).await.unwrap()
}

/// A plain reqwest client for the baselines, on the client crate's TLS
/// configuration (reqwest has no default crypto provider here).
fn raw_http() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(cloudflare_stream_downloads::tls::client_config().unwrap())
}

fn client_for(fake: &StreamFake) -> Client {
    Client::builder()
        .base_url(fake.base_url())
        .account_id(&fake.config().account_id)
        .api_token(&fake.config().api_token)
        .build()
        .unwrap()
}

async fn overhead() {
    println!(
        "## overhead: per call, client vs raw reqwest + serde_json (same server, same connection reuse)"
    );
    let fake = start_fake(FakeConfig::default()).await;
    let client = client_for(&fake);
    let video = stream_fake::config::DEFAULT_VIDEO;
    client.create_downloads(video).await.unwrap();
    // The baseline a careful hand-written client would use: the same
    // timeouts as ours (each request then carries a timer, as ours does).
    let raw = raw_http()
        .timeout(cloudflare_stream_downloads::DEFAULT_REQUEST_TIMEOUT)
        .connect_timeout(cloudflare_stream_downloads::DEFAULT_CONNECT_TIMEOUT)
        .build()
        .unwrap();
    let url = format!(
        "{}/accounts/{}/stream/{video}/downloads",
        fake.base_url(),
        fake.config().account_id
    );
    let token = fake.config().api_token.clone();
    let calls: u32 = 1_000;
    for (name, method) in [
        ("list", reqwest::Method::GET),
        ("create", reqwest::Method::POST),
    ] {
        let ours_once = || async {
            let d = if method == reqwest::Method::GET {
                client.list_downloads(video).await.unwrap()
            } else {
                client.create_downloads(video).await.unwrap()
            };
            std::hint::black_box(d);
        };
        let base_once = || async {
            let body = raw
                .request(method.clone(), &url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["success"], true);
            std::hint::black_box(v);
        };
        // Warm both paths (connections, allocator, caches).
        for _ in 0..calls {
            ours_once().await;
            base_once().await;
        }
        // Paired rounds, alternating, so drift hits both sides alike; the
        // figure is the median of the per-round ratios.
        let (mut ratios, mut ours, mut base) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..9 {
            let t = Instant::now();
            for _ in 0..calls {
                ours_once().await;
            }
            let o = t.elapsed() / calls;
            let t = Instant::now();
            for _ in 0..calls {
                base_once().await;
            }
            let b = t.elapsed() / calls;
            ratios.push(o.as_secs_f64() / b.as_secs_f64());
            ours.push(o);
            base.push(b);
        }
        ratios.sort_by(f64::total_cmp);
        ours.sort();
        base.sort();
        println!(
            "{name}: client {:.1} µs/call, raw reqwest {:.1} µs/call (medians of 9 x {calls}); ratio median {:.3}, range {:.3}..{:.3} (target <= 1.10)",
            ours[4].as_secs_f64() * 1e6,
            base[4].as_secs_f64() * 1e6,
            ratios[4],
            ratios[0],
            ratios[8]
        );
    }
}

async fn wait() {
    println!(
        "## wait: requests made until ready (time scaled 1:100: first poll 10 ms, cap 100 ms)"
    );
    println!("ready after | wait_until_ready requests | fixed 10 ms polling would make");
    for ms in [50u64, 200, 1_000, 3_000] {
        let fake = start_fake(FakeConfig {
            progress: Progress::OverTime {
                duration: Duration::from_millis(ms),
            },
            ..FakeConfig::default()
        })
        .await;
        let client = client_for(&fake);
        let video = stream_fake::config::DEFAULT_VIDEO;
        client
            .create_download(video, DownloadType::Default)
            .await
            .unwrap();
        let before = fake.api_request_count();
        let t = Instant::now();
        client
            .wait_until_ready(
                video,
                DownloadType::Default,
                WaitOptions::default()
                    .intervals(Duration::from_millis(10), Duration::from_millis(100)),
            )
            .await
            .unwrap();
        let took = t.elapsed();
        let requests = fake.api_request_count() - before;
        println!(
            "{ms:>6} ms   | {requests:>3} (ready seen after {} ms) | {}",
            took.as_millis(),
            ms / 10 + 1
        );
    }
}

/// Run `cmd` under GNU time; returns (wall seconds, peak RSS KiB).
fn measure(cmd: &mut Command) -> (f64, u64) {
    measure_with(cmd, std::process::Stdio::piped())
}

/// [`measure`], with the command's stdout sent to `stdout`.
fn measure_with(cmd: &mut Command, stdout: std::process::Stdio) -> (f64, u64) {
    let (secs, kib, out) = time_process(cmd, stdout);
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    (secs, kib)
}

/// Runs `cmd` under GNU time, whatever its exit status; returns (wall
/// seconds, peak RSS KiB, its output).
fn time_process(
    cmd: &mut Command,
    stdout: std::process::Stdio,
) -> (f64, u64, std::process::Output) {
    let mut time = Command::new("/usr/bin/time");
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            time.env(key, value);
        }
    }
    let out = time
        .args(["-f", "PERF %e %M"])
        .stdout(stdout)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .output()
        .expect("/usr/bin/time (GNU time) is needed for whole-process figures");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().rfind(|l| l.starts_with("PERF ")).unwrap();
    let mut parts = line.split_whitespace().skip(1);
    let secs: f64 = parts.next().unwrap().parse().unwrap();
    let kib: u64 = parts.next().unwrap().parse().unwrap();
    (secs, kib, out)
}

async fn fetch(max_mib: u64) {
    println!("## fetch: stream-fake file -> disk, whole processes, best of 3 each, alternating");
    println!("The client fsyncs the file before renaming it into place, so the like-for-like");
    println!(
        "baseline is `curl -o F URL && sync F`; plain `curl -o` (no fsync) is shown for context."
    );
    println!(
        "size | client MB/s | curl+sync MB/s | ratio (target >= 0.9) | curl (no fsync) MB/s | client peak RSS | curl peak RSS"
    );
    let me = std::env::current_exe().unwrap();
    let dir = std::env::temp_dir().join(format!("perf-fetch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mib in [64u64, 256, 1024].into_iter().filter(|m| *m <= max_mib) {
        let size = mib * 1024 * 1024;
        let fake = start_fake(FakeConfig {
            file_size: size,
            progress: Progress::PerPoll { step: 100.0 },
            ..FakeConfig::default()
        })
        .await;
        let client = client_for(&fake);
        let video = stream_fake::config::DEFAULT_VIDEO;
        client.create_downloads(video).await.unwrap();
        let url = client
            .list_downloads(video)
            .await
            .unwrap()
            .default()
            .unwrap()
            .url
            .clone()
            .unwrap();
        let target = dir.join("file");
        let t = target.to_str().unwrap().to_owned();
        let (mut ours, mut synced, mut plain) = (Vec::new(), Vec::new(), Vec::new());
        let check = |target: &Path| {
            assert_eq!(std::fs::metadata(target).unwrap().len(), size);
            let _ = std::fs::remove_file(target);
        };
        for _ in 0..3 {
            ours.push(measure(
                Command::new(&me).arg("fetch-child").arg(&url).arg(&target),
            ));
            check(&target);
            synced.push(measure(
                Command::new("sh")
                    .arg("-c")
                    .arg(format!("curl -s -o '{t}' '{url}' && sync '{t}'")),
            ));
            check(&target);
            plain.push(measure(Command::new("curl").args(["-s", "-o", &t, &url])));
            check(&target);
        }
        let best = |v: &[(f64, u64)]| v.iter().map(|(s, _)| *s).fold(f64::MAX, f64::min);
        let peak = |v: &[(f64, u64)]| v.iter().map(|(_, k)| *k).max().unwrap();
        let mbps = |s: f64| size as f64 / s / 1e6;
        println!(
            "{mib} MiB | {:.0} | {:.0} | {:.2} | {:.0} | {:.1} MiB | {:.1} MiB",
            mbps(best(&ours)),
            mbps(best(&synced)),
            best(&synced) / best(&ours),
            mbps(best(&plain)),
            peak(&ours) as f64 / 1024.0,
            peak(&plain) as f64 / 1024.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn fetch_child(url: &str, path: &Path) {
    let client = Client::builder()
        .api_token("unused-by-the-download-host")
        .retry_policy(RetryPolicy::default())
        .build()
        .unwrap();
    client.fetch_url(url, path, |_, _| {}).await.unwrap();
}

fn codegen() {
    println!("## codegen: warm generation and slicing (in process)");
    let paths = xtask::codegen::Paths::workspace();
    let text = std::fs::read_to_string(&paths.spec).unwrap();
    let parse = median(50, || {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        std::hint::black_box(v);
    });
    let render = median(21, || {
        std::hint::black_box(xtask::codegen::render(&paths).unwrap());
    });
    println!(
        "codegen (load, patch, validate, progenitor, prettyplease): {:.1} ms; parsing the spec alone {:.2} ms",
        render.as_secs_f64() * 1e3,
        parse.as_secs_f64() * 1e3
    );

    let gz = xtask::workspace_root().join("xtask/tests/data/cloudflare-openapi-2024-08-06.json.gz");
    let mut doc = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap())
        .read_to_end(&mut doc)
        .unwrap();
    // The workspace's own rule (openapi/sync.json).
    let selection: xtask::sync::Selection = serde_json::from_value(
        xtask::spec::load(&xtask::workspace_root().join("openapi/sync.json")).unwrap(),
    )
    .unwrap();
    let file = Path::new("openapi.json");
    let parse_only = median(9, || {
        let v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        std::hint::black_box(v);
    });
    let slice = median(9, || {
        let v = xtask::spec::parse(file, &doc).unwrap();
        let fragment = xtask::sync::slice(file, &v, &selection).unwrap();
        std::hint::black_box(xtask::sync::to_text(&fragment));
    });
    println!(
        "slicing the {:.1} MB 2024 document (parse + slice + serialise): {:.0} ms; parsing alone {:.0} ms (ratio {:.2})",
        doc.len() as f64 / 1e6,
        slice.as_secs_f64() * 1e3,
        parse_only.as_secs_f64() * 1e3,
        slice.as_secs_f64() / parse_only.as_secs_f64()
    );
}

/// The same pages the walk asks for, fetched the way a hand-written script
/// would: raw reqwest, `serde_json::Value`, next `before` = last `created`
/// plus 1 µs, until a short page. Returns (pages, videos).
async fn raw_listing(http: &reqwest::Client, fake: &StreamFake) -> (u64, u64) {
    let url = format!(
        "{}/accounts/{}/stream",
        fake.base_url(),
        fake.config().account_id
    );
    let (mut pages, mut videos) = (0u64, 0u64);
    let mut before: Option<String> = None;
    loop {
        let mut request = http
            .get(&url)
            .bearer_auth(&fake.config().api_token)
            .query(&[("limit", "1000")]);
        if let Some(b) = &before {
            request = request.query(&[("before", b)]);
        }
        let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(body["success"], true);
        let result = body["result"].as_array().unwrap();
        pages += 1;
        videos += result.len() as u64;
        if result.len() < 1000 {
            return (pages, videos);
        }
        let last = result.last().unwrap()["created"].as_str().unwrap();
        let t = chrono::DateTime::parse_from_rfc3339(last).unwrap()
            + chrono::TimeDelta::microseconds(1);
        before = Some(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    }
}

async fn listing(videos: usize) {
    use futures_util::TryStreamExt;
    println!("## listing: {videos} videos from stream-fake (exclusive bounds, ties)");
    let fake = start_fake(FakeConfig {
        videos: Vec::new(),
        generated_videos: videos,
        ..FakeConfig::default()
    })
    .await;
    let client = client_for(&fake);
    let http = raw_http().build().unwrap();
    let walk = || async {
        let before = fake.api_request_count();
        let n = client
            .videos(cloudflare_stream_downloads::VideoQuery::all())
            .try_fold(0u64, |n, _| async move { Ok(n + 1) })
            .await
            .unwrap();
        (n, fake.api_request_count() - before)
    };
    // Warm up both, then 5 alternating rounds.
    let (n, requests) = walk().await;
    assert_eq!(n, videos as u64, "the walk listed every video once");
    let (raw_pages, raw_videos) = raw_listing(&http, &fake).await;
    let (mut ours, mut base, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        walk().await;
        let o = t.elapsed();
        let t = Instant::now();
        raw_listing(&http, &fake).await;
        let b = t.elapsed();
        ratios.push(o.as_secs_f64() / b.as_secs_f64());
        ours.push(o);
        base.push(b);
    }
    ratios.sort_by(f64::total_cmp);
    ours.sort();
    base.sort();
    println!(
        "client walk: {n} videos in {requests} requests (floor {}); raw reqwest: {raw_videos} listed \
         (with repeats at page edges) in {raw_pages} requests",
        videos.div_ceil(1000)
    );
    println!(
        "time: client {:.2} s, raw reqwest + serde_json::Value {:.2} s (medians of 5); ratio median {:.2}, range {:.2}..{:.2}",
        ours[2].as_secs_f64(),
        base[2].as_secs_f64(),
        ratios[2],
        ratios[0],
        ratios[4]
    );

    // Whole process: cfstream videos list --json > /dev/null.
    let cfstream = std::env::current_exe().unwrap().with_file_name("cfstream");
    println!("peak RSS of `cfstream --json videos list > /dev/null` (best of 3):");
    for n in [10_000usize, videos] {
        let fake = start_fake(FakeConfig {
            videos: Vec::new(),
            generated_videos: n,
            ..FakeConfig::default()
        })
        .await;
        let run = || {
            measure_with(
                Command::new(&cfstream)
                    .env("CLOUDFLARE_API_TOKEN", &fake.config().api_token)
                    .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
                    .env("CLOUDFLARE_BASE_URL", fake.base_url())
                    .args(["--json", "videos", "list"]),
                std::process::Stdio::null(),
            )
        };
        let mut best = (f64::MAX, u64::MAX);
        for _ in 0..3 {
            let (secs, kib) = tokio::task::block_in_place(run);
            best = (best.0.min(secs), best.1.min(kib));
        }
        println!(
            "{n:>7} videos: {:.1} MiB peak RSS, {:.2} s",
            best.1 as f64 / 1024.0,
            best.0
        );
    }
}

/// One export of `videos` videos from a fresh fake with `poll`.
/// Which videos require signed URLs, and how the run gets its tokens.
#[derive(Clone, Copy, PartialEq)]
enum Signed {
    /// The generated catalog (one video in 29 signed), no key.
    Catalog,
    /// Every video signed; tokens from the API.
    AllByApi,
    /// Every video signed; a signing key (made before the run, not counted).
    AllLocally,
    /// The generated catalog, with a signing key.
    CatalogWithKey,
}

async fn export_once_signed(
    videos: usize,
    rate: cfstream_export::Rate,
    generation: Duration,
    poll: cfstream_export::PollPolicy,
    signed: Signed,
) -> (cfstream_export::Summary, u64, u64) {
    export_once_with(
        videos,
        rate,
        generation,
        poll,
        signed,
        Case {
            readiness: cfstream_export::Readiness::Host,
            existing: 0,
            captioned: Captioned::Default,
        },
    )
    .await
}

/// The account and the run's choices in [`export_once_with`].
#[derive(Clone, Copy)]
struct Case {
    readiness: cfstream_export::Readiness,
    /// Every n-th video has its downloads already (0: none).
    existing: usize,
    captioned: Captioned,
}

/// Captions in an export run of [`export_once_with`].
#[derive(Clone, Copy, PartialEq)]
enum Captioned {
    /// The default (`Captions::FromManifest`), no video with captions.
    Default,
    /// `--no-captions`.
    Off,
    /// The default; every `n`-th video has 1-3 ready captions (English,
    /// then Português (Brasil), then 中文（繁體）).
    Every(usize),
}

/// One export run of `case`.
async fn export_once_with(
    videos: usize,
    rate: cfstream_export::Rate,
    generation: Duration,
    poll: cfstream_export::PollPolicy,
    signed: Signed,
    case: Case,
) -> (cfstream_export::Summary, u64, u64) {
    let Case {
        readiness,
        existing,
        captioned,
    } = case;
    use cfstream_export::{ExportOptions, Exporter, Selection};
    let (generated_videos, catalog) = if matches!(signed, Signed::Catalog | Signed::CatalogWithKey)
    {
        (videos, Vec::new())
    } else {
        let mut all = stream_fake::catalog::generate(videos);
        for v in &mut all {
            v.require_signed_urls = true;
        }
        (0, all)
    };
    // The fake enforces 1.2x our rate with a lockout, as Cloudflare's 1200
    // per 5 minutes against our default 1000.
    let fake = start_fake(FakeConfig {
        videos: Vec::new(),
        generated_videos,
        catalog,
        file_size: 32 * 1024,
        progress: Progress::OverTime {
            duration: generation,
        },
        rate_limit: Some(stream_fake::RateLimit {
            requests: rate.requests * 6 / 5,
            window: rate.per,
            lockout: Duration::from_secs(5),
        }),
        existing_downloads: existing,
        ..FakeConfig::default()
    })
    .await;
    if let Captioned::Every(n) = captioned {
        for (i, v) in fake
            .catalog()
            .iter()
            .enumerate()
            .filter(|(i, _)| i % n == 0)
        {
            let languages = [
                ("en", "English"),
                ("pt-BR", "Português (Brasil)"),
                ("zh-Hant", "中文（繁體）"),
            ];
            let captions = languages[..1 + (i / n) % 3]
                .iter()
                .map(|(tag, label)| stream_fake::captions::FakeCaption::ready(&v.uid, tag, label))
                .collect();
            fake.set_captions(&v.uid, captions);
        }
    }
    let dir = tempfile_dir("export");
    let mut options = ExportOptions::new(
        &dir,
        Selection::All(cloudflare_stream_downloads::VideoQuery::all()),
    );
    options.rate = rate;
    options.poll = poll;
    options.readiness = readiness;
    if captioned == Captioned::Off {
        options.captions = cfstream_export::Captions::Off;
    }
    let exporter = Exporter::new(options).unwrap();
    let mut builder = Client::builder()
        .api_token(&fake.config().api_token)
        .account_id(&fake.config().account_id)
        .base_url(fake.base_url());
    if matches!(signed, Signed::AllLocally | Signed::CatalogWithKey) {
        let key = client_for(&fake).create_signing_key().await.unwrap();
        builder = builder.signing_key(key.signing_key().unwrap());
    }
    let client = exporter.client(builder).unwrap();
    let before = fake.api_request_count();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let summary = exporter
        .run(client, std::sync::Arc::new(|_| {}), stop)
        .await
        .unwrap();
    let served = fake.api_request_count() - before;
    let refused = fake.rate_limited_count();
    fake.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    (summary, served, refused)
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("perf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn export(videos: usize) {
    use cfstream_export::PollPolicy;
    // Time scaled down so that three runs take minutes: downloads generate
    // in 8 s (linear percentComplete), the budget is 60 requests/s.
    let rate: cfstream_export::Rate = "60/1s".parse().unwrap();
    let generation = Duration::from_secs(8);
    println!(
        "## export: {videos} videos from stream-fake, --rate {rate}, downloads ready {} s after creation, \
         32 KiB files; the fake refuses past 1.2x the rate (5 s lockout)",
        generation.as_secs()
    );
    use cfstream_export::Readiness;
    println!(
        "account | readiness, poll policy | API requests | per video | elapsed | floor | elapsed / floor | download-host probes per file | found existing | 429s"
    );
    println!("---|---|---|---|---|---|---|---|---|---");
    // The floor without downloads: the listing and one create per file of
    // a video ready to stream (the listing shows the others). With every
    // download existing: the listing alone.
    let fixed = PollPolicy::Fixed {
        interval: Duration::from_secs(1),
    };
    let doubling = PollPolicy::Doubling {
        first: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };
    let adaptive = PollPolicy::default();
    let runs = [
        (
            "no downloads",
            "host, adaptive (ours)",
            adaptive,
            Readiness::Host,
            0,
            Signed::Catalog,
        ),
        (
            "no downloads",
            "API, adaptive (before)",
            adaptive,
            Readiness::Api,
            0,
            Signed::Catalog,
        ),
        (
            "no downloads",
            "API, every 1 s",
            fixed,
            Readiness::Api,
            0,
            Signed::Catalog,
        ),
        (
            "no downloads",
            "API, doubling from 1 s",
            doubling,
            Readiness::Api,
            0,
            Signed::Catalog,
        ),
        (
            "all downloads exist",
            "host, adaptive (ours)",
            adaptive,
            Readiness::Host,
            1,
            Signed::Catalog,
        ),
        (
            "all downloads exist, signing key",
            "host, adaptive (ours)",
            adaptive,
            Readiness::Host,
            1,
            Signed::CatalogWithKey,
        ),
        (
            "all downloads exist",
            "API, adaptive (before)",
            adaptive,
            Readiness::Api,
            1,
            Signed::Catalog,
        ),
    ];
    for (account, name, poll, readiness, existing, signed) in runs {
        let (s, served, refused) = export_once_with(
            videos,
            rate,
            generation,
            poll,
            signed,
            Case {
                readiness,
                existing,
                captioned: Captioned::Default,
            },
        )
        .await;
        assert_eq!(s.api_requests, served, "every request counted");
        let not_ready = s
            .failed
            .iter()
            .filter(|f| f.reason == "not ready to stream")
            .count() as u64;
        let floor_requests = videos.div_ceil(1000) as u64
            + if existing > 0 {
                0
            } else {
                videos as u64 - not_ready
            };
        let floor = rate.floor(floor_requests);
        let files = (s.done + s.failed.len() as u64).max(1);
        // With every download existing the floor is the listing alone: no
        // budget time to compare with.
        let (floor_text, ratio) = if existing > 0 {
            (format!("{floor_requests} request(s)"), "-".to_owned())
        } else {
            (
                format!("{:.1} s ({floor_requests} requests)", floor.as_secs_f64()),
                format!("{:.2}", s.elapsed_seconds / floor.as_secs_f64().max(0.001)),
            )
        };
        println!(
            "{account} | {name} | {} | {:.3} | {:.1} s | {floor_text} | {ratio} | {:.2} | {} | {refused}",
            s.api_requests,
            s.api_requests as f64 / videos as f64,
            s.elapsed_seconds,
            s.host_probes as f64 / files as f64,
            s.found_existing,
        );
        println!(
            "  ({} done, {} failed: the catalog's not-ready videos{})",
            s.done,
            s.failed.len(),
            if signed == Signed::Catalog {
                "; signed videos without a key are created and polled through the API"
            } else {
                ""
            }
        );
    }
}

/// What goes wrong with the download host in one run of
/// [`export_host_faults`].
#[derive(Clone, Copy, PartialEq)]
enum HostFault {
    Healthy,
    Unresolvable,
    Refusing,
    Hanging,
    Flaky,
}

/// One export of `videos` ready videos (downloads ready 0.6 s after their
/// create, 200 KiB files) with `fault`.
async fn export_host_fault(
    videos: usize,
    fault: HostFault,
    readiness: cfstream_export::Readiness,
    rate: cfstream_export::Rate,
) -> cfstream_export::Summary {
    use cfstream_export::{ExportOptions, Exporter, Selection};
    let playback = match fault {
        HostFault::Unresolvable => {
            Some("https://customer-perf-nxdomain.cloudflarestream.com".to_owned())
        }
        HostFault::Refusing => Some(testkit::hosts::refusing_host()),
        HostFault::Hanging => Some(testkit::hosts::silent_host().unwrap()),
        HostFault::Healthy | HostFault::Flaky => None,
    };
    let fake = start_fake(FakeConfig {
        videos: (1..=videos).map(|i| format!("{i:032x}")).collect(),
        generated_videos: 0,
        file_size: 200 * 1024,
        progress: Progress::OverTime {
            duration: Duration::from_millis(600),
        },
        playback_base: playback,
        ..FakeConfig::default()
    })
    .await;
    if fault == HostFault::Flaky {
        use stream_fake::{Fault, FaultRule, Route};
        fake.inject_rule(FaultRule::share(
            Route::File,
            Fault::ServerErrorHtml(503),
            15,
        ));
        fake.inject_rule(FaultRule::share(Route::File, Fault::CutMidBody, 10));
    }
    let dir = tempfile_dir("host-faults");
    let mut options = ExportOptions::new(
        &dir,
        Selection::All(cloudflare_stream_downloads::VideoQuery::all()),
    );
    options.rate = rate;
    options.readiness = readiness;
    let exporter = Exporter::new(options).unwrap();
    let builder = Client::builder()
        .api_token(&fake.config().api_token)
        .account_id(&fake.config().account_id)
        .base_url(fake.base_url());
    let client = exporter.client(builder).unwrap();
    let before = fake.api_request_count();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let summary = exporter
        .run(client, std::sync::Arc::new(|_| {}), stop)
        .await
        .unwrap();
    assert_eq!(summary.api_requests, fake.api_request_count() - before);
    assert_eq!(
        summary.done, videos as u64,
        "every file: {:?}",
        summary.failed
    );
    fake.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    summary
}

async fn export_host_faults(videos: usize) {
    use cfstream_export::Readiness;
    let rate: cfstream_export::Rate = "5000/1s".parse().unwrap();
    let timeout = cfstream_export::ProbePolicy::default().timeout;
    println!(
        "## export with a misbehaving download host: {videos} videos, downloads ready 0.6 s after \
         their create, 200 KiB files, --rate {rate}, probe timeout {} s (the default)",
        timeout.as_secs()
    );
    println!(
        "download host | readiness | elapsed | API requests per video | probes sent / failed / skipped (breaker open, slowed down), all hosts | breaker openings"
    );
    println!("---|---|---|---|---|---");
    let cases = [
        ("healthy", HostFault::Healthy, Readiness::Host),
        ("healthy", HostFault::Healthy, Readiness::Api),
        (
            "playback host unresolvable",
            HostFault::Unresolvable,
            Readiness::Host,
        ),
        (
            "playback host refusing",
            HostFault::Refusing,
            Readiness::Host,
        ),
        ("playback host hanging", HostFault::Hanging, Readiness::Host),
        (
            "flaky: 15 % 503, 10 % bodies cut",
            HostFault::Flaky,
            Readiness::Host,
        ),
        (
            "flaky: 15 % 503, 10 % bodies cut",
            HostFault::Flaky,
            Readiness::Api,
        ),
    ];
    let mut healthy = None;
    let mut api_per_video = Vec::new();
    for (name, fault, readiness) in cases {
        let s = export_host_fault(videos, fault, readiness, rate).await;
        let (sent, failed, skipped, opened) = s.hosts.iter().fold((0, 0, 0, 0), |a, h| {
            (
                a.0 + h.probes,
                a.1 + h.failed,
                a.2 + h.skipped,
                a.3 + h.opened,
            )
        });
        let readiness_name = match readiness {
            Readiness::Host => "host (ours)",
            Readiness::Api => "API (before the probes)",
        };
        println!(
            "{name} | {readiness_name} | {:.1} s | {:.2} | {sent} / {failed} / {skipped} | {opened}",
            s.elapsed_seconds, s.api_requests_per_video,
        );
        match (fault, readiness) {
            (HostFault::Healthy, Readiness::Host) => healthy = Some(s.elapsed_seconds),
            (_, Readiness::Api) => api_per_video.push((name, s.api_requests_per_video)),
            _ => {}
        }
        if let (Some(h), Readiness::Host, false) = (healthy, readiness, fault == HostFault::Healthy)
        {
            println!(
                "  elapsed / (1.5 x healthy + probe timeout) = {:.2}",
                s.elapsed_seconds / (1.5 * h + timeout.as_secs_f64())
            );
        }
    }
    for (name, per_video) in api_per_video {
        println!("  API-only readiness on the {name} host: {per_video:.2} API requests per video");
    }
}

async fn export_signed(videos: usize) {
    use cfstream_export::PollPolicy;
    let rate: cfstream_export::Rate = "60/1s".parse().unwrap();
    let generation = Duration::from_secs(8);
    println!(
        "## export of signed videos: {videos} videos, every one requiring signed URLs, their \
         default (MP4) files, --rate {rate}, downloads ready {} s after creation, 32 KiB files",
        generation.as_secs()
    );
    println!(
        "tokens | API requests | per video | /token requests | tokens signed locally | elapsed | files done"
    );
    println!("---|---|---|---|---|---|---");
    for (name, signed) in [
        ("from the API (no key)", Signed::AllByApi),
        ("signed locally (--signing-key)", Signed::AllLocally),
    ] {
        let (s, served, _) =
            export_once_signed(videos, rate, generation, PollPolicy::default(), signed).await;
        assert_eq!(s.api_requests, served, "every request counted");
        println!(
            "{name} | {} | {:.2} | {} | {} | {:.1} s | {}",
            s.api_requests,
            s.api_requests as f64 / videos as f64,
            s.tokens_requested,
            s.tokens_signed_locally,
            s.elapsed_seconds,
            s.done,
        );
    }
}

async fn export_captions(videos: usize) {
    use cfstream_export::PollPolicy;
    let rate: cfstream_export::Rate = "60/1s".parse().unwrap();
    let generation = Duration::from_secs(8);
    println!(
        "## export with captions: {videos} videos (the generated catalog: one in 29 signed, some not \
         ready to stream), their default (MP4) files, --rate {rate}, downloads ready {} s after creation, \
         32 KiB files",
        generation.as_secs()
    );
    println!(
        "captions | signing key | API requests | per video | more than off, per video | manifests read | captions written | tokens from the API | elapsed"
    );
    println!("---|---|---|---|---|---|---|---|---");
    let mut off: [Option<f64>; 2] = [None, None];
    for (name, captioned, signed) in [
        ("off (--no-captions)", Captioned::Off, Signed::Catalog),
        ("on, none present", Captioned::Default, Signed::Catalog),
        (
            "on, 10 % with 1-3 languages",
            Captioned::Every(10),
            Signed::Catalog,
        ),
        (
            "off (--no-captions)",
            Captioned::Off,
            Signed::CatalogWithKey,
        ),
        (
            "on, none present",
            Captioned::Default,
            Signed::CatalogWithKey,
        ),
        (
            "on, 10 % with 1-3 languages",
            Captioned::Every(10),
            Signed::CatalogWithKey,
        ),
    ] {
        let (s, served, _) = export_once_with(
            videos,
            rate,
            generation,
            PollPolicy::default(),
            signed,
            Case {
                readiness: cfstream_export::Readiness::Host,
                existing: 0,
                captioned,
            },
        )
        .await;
        assert_eq!(s.api_requests, served, "every request counted");
        let keyed = signed == Signed::CatalogWithKey;
        let per_video = s.api_requests as f64 / videos as f64;
        let baseline = off[usize::from(keyed)].get_or_insert(per_video);
        let caption_failures = s.failed.iter().filter(|f| !f.is_file()).count();
        assert_eq!(caption_failures, 0, "{:?}", s.failed);
        println!(
            "{name} | {} | {} | {per_video:.3} | {:+.3} | {} | {} | {} | {:.1} s",
            if keyed { "yes" } else { "no" },
            s.api_requests,
            per_video - *baseline,
            s.manifests,
            s.captions_written,
            s.tokens_requested,
            s.elapsed_seconds,
        );
    }
}

async fn export_rerun(videos: usize) {
    use cfstream_export::state::Store;
    println!("## export re-run: `cfstream export --all` finding {videos} videos done in its state");
    let fake = start_fake(FakeConfig {
        videos: Vec::new(),
        generated_videos: videos,
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile_dir("rerun");
    // The state a finished export leaves: every video selected, its file
    // done with a size and digest, the file on disk with that size.
    let size = 1024u64;
    let filled = Instant::now();
    {
        let store = Store::open(&dir.join(cfstream_export::state::STATE_FILE)).unwrap();
        let run = store.begin_run("{}").unwrap();
        let uids: Vec<(String, Option<String>)> =
            fake.catalog().into_iter().map(|v| (v.uid, None)).collect();
        for batch in uids.chunks(1000) {
            store.select(run, batch, &[DownloadType::Default]).unwrap();
        }
        for (uid, _) in &uids {
            std::fs::write(dir.join(format!("{uid}.mp4")), vec![0u8; size as usize]).unwrap();
        }
    }
    {
        let conn =
            rusqlite::Connection::open(dir.join(cfstream_export::state::STATE_FILE)).unwrap();
        conn.execute(
            "UPDATE files SET state = 'done', url = 'https://example/' || uid, size = ?1,
               sha256 = '00', updated_at = 'now'",
            [size as i64],
        )
        .unwrap();
        // And their captions and audio tracks looked at (none), as this
        // version's export leaves them.
        conn.execute(
            "UPDATE videos SET extras = '{\"captions\":[],\"audio_tracks\":[]}'",
            [],
        )
        .unwrap();
    }
    println!(
        "(state and {videos} files of {size} bytes prepared in {:.1} s)",
        filled.elapsed().as_secs_f64()
    );
    let cfstream = std::env::current_exe().unwrap().with_file_name("cfstream");
    // Exit 0 (every file done); the summary is read from stdout.
    let run = || {
        let (secs, kib, out) = time_process(
            Command::new(&cfstream)
                .env("CLOUDFLARE_API_TOKEN", &fake.config().api_token)
                .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
                .env("CLOUDFLARE_BASE_URL", fake.base_url())
                .args(["--json", "export", "--all", "--dir"])
                .arg(&dir),
            std::process::Stdio::piped(),
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (secs, kib, summary)
    };
    for label in [
        "first re-run (writes each <uid>.json)",
        "second re-run (nothing to do)",
    ] {
        let before = fake.api_request_count();
        let (secs, kib, s) = tokio::task::block_in_place(run);
        assert_eq!(s["skipped"].as_u64(), Some(videos as u64), "{s}");
        println!(
            "{label}: {:.1} s, peak RSS {:.1} MiB, {} API requests (the listing; fake counted {})",
            secs,
            kib as f64 / 1024.0,
            s["api_requests"],
            fake.api_request_count() - before
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn export_bucket(files: usize, mib: u64) {
    use testkit::seaweed::{ACCESS_KEY, BUCKET, SECRET_KEY, Seaweed};
    println!(
        "## export into a bucket: {files} files of {mib} MiB, --transfers {files}, into SeaweedFS (s3://) vs into a directory"
    );
    println!(
        "Whole processes under /usr/bin/time, two rounds, alternating; both sides fsync (the directory its files, SeaweedFS its volumes)."
    );
    let weed = Seaweed::start().await.unwrap();
    let ids: Vec<String> = (0..files)
        .map(|i| format!("{:032x}", 0x00b0_c4e7_u128 + i as u128))
        .collect();
    let fake = start_fake(FakeConfig {
        videos: ids.clone(),
        file_size: mib << 20,
        progress: Progress::PerPoll { step: 100.0 },
        ..FakeConfig::default()
    })
    .await;
    let cfstream = std::env::current_exe().unwrap().with_file_name("cfstream");
    let work = tempfile_dir("bucket");
    let transfers = files.to_string();
    println!("| destination | round | seconds | MiB/s | peak RSS (MiB) |");
    println!("|---|---|---|---|---|");
    let mut rates: Vec<(&str, f64)> = Vec::new();
    for round in 1..=2 {
        for dest in ["dir", "bucket"] {
            let mut cmd = Command::new(&cfstream);
            cmd.env("CLOUDFLARE_API_TOKEN", &fake.config().api_token)
                .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
                .env("CLOUDFLARE_BASE_URL", fake.base_url())
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL", weed.endpoint())
                .args(["--json", "export", "--transfers", &transfers])
                .args(&ids);
            let out_dir = work.join(format!("{dest}-{round}"));
            if dest == "dir" {
                cmd.arg("--dir").arg(&out_dir);
            } else {
                cmd.arg("--dest")
                    .arg(format!("s3://{BUCKET}/round-{round}"))
                    .arg("--state")
                    .arg(work.join(format!("state-{round}.sqlite")));
            }
            let (secs, kib, out) = tokio::task::block_in_place(|| {
                time_process(&mut cmd, std::process::Stdio::piped())
            });
            let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
            assert_eq!(summary["done"].as_u64(), Some(files as u64), "{summary}");
            let rate = (files as u64 * mib) as f64 / secs;
            rates.push((dest, rate));
            println!(
                "| {} | {round} | {secs:.1} | {rate:.0} | {:.1} |",
                if dest == "dir" {
                    "--dir"
                } else {
                    "--dest s3://"
                },
                kib as f64 / 1024.0
            );
            let _ = std::fs::remove_dir_all(&out_dir);
        }
    }
    // The store's own ceiling on this machine: the same bytes (in memory,
    // no download, no verification) uploaded by object_store with the same
    // part size, checksum and concurrency.
    let ceiling = store_ceiling(&weed, files, mib).await;
    rates.push(("ceiling", ceiling));
    println!(
        "| object_store alone (same parts, same checksum, in-memory bytes) | - | {:.1} | {ceiling:.0} | - |",
        (files as u64 * mib) as f64 / ceiling
    );
    let best = |which: &str| {
        rates
            .iter()
            .filter(|(d, _)| *d == which)
            .map(|(_, r)| *r)
            .fold(0.0, f64::max)
    };
    println!(
        "throughput into the bucket / into the directory (best of 2 each): {:.2}; / object_store alone: {:.2}",
        best("bucket") / best("dir"),
        best("bucket") / best("ceiling")
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// MiB/s of `files` concurrent multipart uploads of `mib` MiB each into the
/// bucket, 8 MiB parts with SHA-256, at most 2 parts in flight each: the
/// export's upload side without the download, the verification or the
/// state.
async fn store_ceiling(weed: &testkit::seaweed::Seaweed, files: usize, mib: u64) -> f64 {
    use object_store::multipart::MultipartStore;
    use object_store::path::Path as ObjectPath;
    let s3 = std::sync::Arc::new(
        weed.bucket()
            .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
            .build()
            .unwrap(),
    );
    let part = bytes::Bytes::from(vec![0x5au8; cfstream_export::store::MIN_PART as usize]);
    let parts = (mib << 20).div_ceil(cfstream_export::store::MIN_PART) as usize;
    let started = Instant::now();
    let mut uploads = tokio::task::JoinSet::new();
    for f in 0..files {
        let s3 = s3.clone();
        let part = part.clone();
        uploads.spawn(async move {
            let key = ObjectPath::from(format!("ceiling/{f}.bin"));
            let id = s3.create_multipart(&key).await.unwrap();
            let mut done = Vec::with_capacity(parts);
            for pair in (0..parts).collect::<Vec<_>>().chunks(2) {
                let puts = pair
                    .iter()
                    .map(|i| s3.put_part(&key, &id, *i, part.clone().into()));
                done.extend(futures_util::future::try_join_all(puts).await.unwrap());
            }
            s3.complete_multipart(&key, &id, done).await.unwrap();
        });
    }
    while let Some(r) = uploads.join_next().await {
        r.unwrap();
    }
    (files as u64 * mib) as f64 / started.elapsed().as_secs_f64()
}

/// A bucket archive of `files` MP4s of `mib` MiB (stream-fake's content,
/// which passes the structure check) with their sidecars, then `cfstream
/// verify --dest` against `object_store` alone reading the same objects,
/// 8 at once each, alternating, two rounds.
async fn verify_bucket(files: usize, mib: u64) {
    use object_store::path::Path as ObjectPath;
    use object_store::{ObjectStoreExt, PutPayload};
    use sha2::Digest;
    use testkit::seaweed::{ACCESS_KEY, BUCKET, SECRET_KEY, Seaweed};
    println!(
        "## verify: {files} files of {mib} MiB in SeaweedFS (s3://), `cfstream verify --dest` vs object_store alone reading them, 8 at once each"
    );
    let weed = Seaweed::start().await.unwrap();
    let store = std::sync::Arc::new(weed.bucket().build().unwrap());
    let size = mib << 20;
    for i in 0..files {
        let uid = format!("{i:032x}");
        let content = stream_fake::content::FileContent::new(&uid, "default.mp4", size);
        let bytes = content.chunk(0, size as usize);
        let sha = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let sidecar = serde_json::json!({
            "uid": uid,
            "video": null,
            "downloads": {"default": {"file": format!("{uid}.mp4"), "url": "", "size": size, "sha256": sha}},
        });
        store
            .put(
                &ObjectPath::from(format!("v/{uid}.mp4")),
                PutPayload::from(bytes),
            )
            .await
            .unwrap();
        store
            .put(
                &ObjectPath::from(format!("v/{uid}.json")),
                PutPayload::from(serde_json::to_vec(&sidecar).unwrap()),
            )
            .await
            .unwrap();
    }
    let cfstream = std::env::current_exe().unwrap().with_file_name("cfstream");
    let total = (files as u64 * size) as f64 / (1 << 20) as f64;
    println!(
        "round | cfstream verify | MiB/s | peak RSS | object_store alone | MiB/s | ratio | object_store + SHA-256 | MiB/s | ratio"
    );
    println!("---|---|---|---|---|---|---|---|---|---");
    for round in 1..=2 {
        let (secs, kib, out) = time_process(
            Command::new(&cfstream)
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL", weed.endpoint())
                .args(["--json", "verify", "--parallel", "8", "--dest"])
                .arg(format!("s3://{BUCKET}/v")),
            std::process::Stdio::piped(),
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["problems"], 0, "{report}");
        assert_eq!(report["files_checked"], files as u64);
        let mut baselines = Vec::new();
        for hash in [false, true] {
            let started = Instant::now();
            let reads = futures_util::stream::iter((0..files).map(|i| {
                let store = store.clone();
                async move {
                    let key = ObjectPath::from(format!("v/{i:032x}.mp4"));
                    let mut stream = store.get(&key).await.unwrap().into_stream();
                    let mut hasher = sha2::Sha256::new();
                    let mut n = 0u64;
                    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
                        let chunk = chunk.unwrap();
                        if hash {
                            hasher.update(&chunk);
                        }
                        n += chunk.len() as u64;
                    }
                    std::hint::black_box(hasher.finalize());
                    n
                }
            }));
            let read: u64 = futures_util::StreamExt::collect::<Vec<u64>>(
                futures_util::StreamExt::buffer_unordered(reads, 8),
            )
            .await
            .iter()
            .sum();
            assert_eq!(read, files as u64 * size);
            baselines.push(started.elapsed().as_secs_f64());
        }
        let (alone, hashed) = (baselines[0], baselines[1]);
        println!(
            "{round} | {secs:.2} s | {:.0} | {:.1} MiB | {alone:.2} s | {:.0} | {:.2} | {hashed:.2} s | {:.0} | {:.2}",
            total / secs,
            kib as f64 / 1024.0,
            total / alone,
            alone / secs,
            total / hashed,
            hashed / secs,
        );
    }
}

/// `cfstream export status --dir` of an archive of `videos` videos: a
/// sidecar and a media file each (generated, 1 byte: status reads the
/// listing, not the files), three run reports, and the account listed
/// from stream-fake.
async fn status_of(videos: usize) {
    println!(
        "## export status: an archive of {videos} videos (generated), the account listed from stream-fake"
    );
    let fake = start_fake(FakeConfig {
        videos: Vec::new(),
        generated_videos: videos,
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile_dir("status");
    let made = Instant::now();
    for v in fake.catalog() {
        std::fs::write(dir.join(format!("{}.mp4", v.uid)), b"x").unwrap();
        std::fs::write(dir.join(format!("{}.json", v.uid)), b"{}").unwrap();
    }
    let runs = dir.join(cfstream_export::runs::RUNS_DIR);
    std::fs::create_dir_all(&runs).unwrap();
    for k in 1..=3 {
        let report = cfstream_export::runs::RunReport {
            id: format!("20261204T000000Z-shard{k}of3-0000000{k}"),
            shard: format!("{k}/3"),
            options: serde_json::json!({}),
            started_at: "2026-12-04T00:00:00Z".into(),
            updated_at: "2026-12-04T01:00:00Z".into(),
            ended_at: Some("2026-12-04T01:00:00Z".into()),
            outcome: "complete".into(),
            counts: cfstream_export::runs::RunCounts::default(),
            failures: Vec::new(),
        };
        std::fs::write(
            runs.join(format!("{}.json", report.id)),
            serde_json::to_vec(&report).unwrap(),
        )
        .unwrap();
    }
    println!(
        "({} files made in {:.1} s)",
        2 * videos,
        made.elapsed().as_secs_f64()
    );
    let cfstream = std::env::current_exe().unwrap().with_file_name("cfstream");
    for label in ["first", "second"] {
        let (secs, kib, out) = time_process(
            Command::new(&cfstream)
                .env("CLOUDFLARE_API_TOKEN", &fake.config().api_token)
                .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
                .env("CLOUDFLARE_BASE_URL", fake.base_url())
                .args(["--json", "export", "status", "--dir"])
                .arg(&dir),
            std::process::Stdio::piped(),
        );
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["done"], videos as u64, "{status}");
        println!(
            "{label} run: {secs:.1} s, peak RSS {:.1} MiB; {} done of {} in the account, {} shards",
            kib as f64 / 1024.0,
            status["done"],
            status["account_videos"],
            status["shards"].as_array().map_or(0, Vec::len)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
