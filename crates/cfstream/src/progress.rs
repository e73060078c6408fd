//! How `cfstream export` shows its progress on stderr: on a terminal, an
//! overall bar and a bar per transfer; elsewhere (a pod's log, a file, a
//! pipe) a progress line every 30 s (files done of the selection, bytes,
//! rate, ETA: what `kubectl logs` needs to tell how far a shard is), and
//! each failure as it happens. Notices (signed videos, a download host
//! that stopped answering, the bucket read back) are said once either way.
//! Lines go through [`crate::log`], so `--log-format json` makes each one
//! a JSON object.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cfstream_export::Progress;
use cloudflare_stream_downloads::types::DownloadType;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars: one overall, one per active transfer (terminals only).
#[derive(Clone)]
pub struct Bars {
    inner: Option<Arc<BarsInner>>,
    /// The counts of the progress line (kept whatever the display).
    lines: Arc<Lines>,
}

struct BarsInner {
    multi: MultiProgress,
    overall: ProgressBar,
    transfers: Mutex<HashMap<(String, DownloadType), ProgressBar>>,
    /// Bytes of the files done by this run.
    bytes: std::sync::atomic::AtomicU64,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Bars {
    /// Bars when `enabled` (a terminal), else the line every `interval`
    /// (none when `interval` is `None`: a dry run).
    pub fn new(enabled: bool, interval: Option<Duration>) -> Self {
        let lines = Arc::new(Lines::default());
        if !enabled {
            if let Some(every) = interval {
                lines.clone().start(every);
            }
            return Self { inner: None, lines };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(style(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} files {msg} ETA {eta}",
        ));
        overall.set_prefix("listing");
        overall.enable_steady_tick(Duration::from_millis(200));
        Self {
            lines,
            inner: Some(Arc::new(BarsInner {
                multi,
                overall,
                transfers: Mutex::new(HashMap::new()),
                bytes: std::sync::atomic::AtomicU64::new(0),
            })),
        }
    }

    /// The engine's observer.
    pub fn observer(&self, json: bool) -> cfstream_export::Observer {
        let bars = self.clone();
        Arc::new(move |event| bars.on(event, json))
    }

    fn on(&self, event: Progress, json: bool) {
        self.lines.count(&event);
        let notice = match &event {
            Progress::SignedVideos {
                videos,
                signing_key,
            } => Some(signed_notice(*videos, *signing_key)),
            Progress::HostUnavailable {
                host,
                reason,
                retry_in,
                first: true,
            } => Some(format!(
                "download host {host} does not answer ({reason}): its probes stop for {}; its files are created and polled through the API meanwhile",
                humantime::format_duration(*retry_in)
            )),
            Progress::Destination {
                state,
                objects,
                adopted,
                continued,
                aborted,
            } => Some(format!(
                "state: {} ({objects} object(s) under the prefix; {adopted} file(s) found complete there; uploads left by another run: {continued} continued, {aborted} aborted)",
                state.display()
            )),
            _ => None,
        };
        if let Some(text) = notice {
            // Said once, at the start, whatever the output.
            match &self.inner {
                Some(b) => {
                    let _ = b.multi.println(text);
                }
                None => crate::log::say(&text),
            }
            return;
        }
        let Some(b) = &self.inner else {
            // No terminal: failures as they happen, the rest in the summary.
            // (with --json the summary lists them, unless the logs are
            // JSON too: a log pipeline wants each as it happens)
            let logged = !json || crate::log::format() == crate::log::LogFormat::Json;
            if let (Progress::Failed(f), true) = (&event, logged) {
                crate::log::failure(&format!("failed {} {}: {}", f.video_id, f.what(), f.reason));
            }
            return;
        };
        let mut transfers = b.transfers.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Progress::Listing { videos } => {
                b.overall.set_prefix(format!("listing: {videos} videos"));
            }
            Progress::Selected { files, .. } => {
                b.overall.set_length(files);
                b.overall.set_prefix("exporting");
                b.overall.reset_eta();
            }
            Progress::Skipped { .. } => b.overall.inc(1),
            Progress::TransferStarted { video_id, kind } => {
                let bar = b.multi.add(ProgressBar::new(0));
                bar.set_style(style(
                    "  {msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
                ));
                bar.set_message(cfstream_export::file_name(&video_id, kind));
                transfers.insert((video_id, kind), bar);
            }
            Progress::Transfer {
                video_id,
                kind,
                bytes,
                total,
            } => {
                if let Some(bar) = transfers.get(&(video_id, kind)) {
                    if let Some(total) = total {
                        bar.set_length(total);
                    }
                    bar.set_position(bytes);
                }
            }
            Progress::TransferEnded { video_id, kind } => {
                if let Some(bar) = transfers.remove(&(video_id, kind)) {
                    bar.finish_and_clear();
                    b.multi.remove(&bar);
                }
            }
            Progress::Done { bytes, .. } => {
                let total = b
                    .bytes
                    .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed)
                    + bytes;
                let secs = b.overall.elapsed().as_secs_f64().max(0.001);
                let rate = (total as f64 / secs) as u64;
                b.overall.set_message(format!(
                    "{}, {}/s",
                    bytesize::ByteSize::b(total).display().iec(),
                    bytesize::ByteSize::b(rate).display().iec()
                ));
                b.overall.inc(1);
            }
            Progress::Failed(f) => {
                let kind = if f.kind == "audio" {
                    DownloadType::Audio
                } else {
                    DownloadType::Default
                };
                if let Some(bar) = transfers.remove(&(f.video_id.clone(), kind)) {
                    bar.finish_and_clear();
                    b.multi.remove(&bar);
                }
                if f.is_file() {
                    b.overall.inc(1);
                }
                let _ =
                    b.multi
                        .println(format!("failed {} {}: {}", f.video_id, f.what(), f.reason));
            }
            Progress::SignedVideos { .. }
            | Progress::Destination { .. }
            | Progress::HostUnavailable { .. }
            | Progress::CaptionWritten { .. } => {}
            Progress::Paused { wait } => {
                b.overall.set_prefix(format!(
                    "rate limited (429): every worker pauses {} s",
                    wait.as_secs()
                ));
            }
        }
    }

    /// Clears the bars; stops the progress line.
    pub fn finish(&self) {
        self.lines.done.store(true, Ordering::Relaxed);
        if let Some(b) = &self.inner {
            b.overall.finish_and_clear();
            let _ = b.multi.clear();
        }
    }
}

/// What the run says at its start about the videos that require signed
/// URLs: their cost, and how to avoid it.
fn signed_notice(videos: u64, signing_key: bool) -> String {
    if signing_key {
        format!(
            "{videos} videos of the selection require signed URLs: their tokens are signed \
             locally with the signing key (no API request)"
        )
    } else {
        format!(
            "{videos} videos of the selection require signed URLs: without a signing key, each \
             of their files costs one more API request (POST /token). To avoid that: \
             `cfstream keys create --save key.json`, then `--signing-key key.json`"
        )
    }
}

/// The counts of the progress line.
#[derive(Debug, Default)]
struct Lines {
    /// Files of the selection (0 until it is known).
    files: AtomicU64,
    /// Files settled: done, skipped or failed.
    settled: AtomicU64,
    /// Bytes written by this run.
    bytes: AtomicU64,
    /// Videos listed so far (before the selection is known).
    listed: AtomicU64,
    done: AtomicBool,
}

impl Lines {
    fn count(&self, event: &Progress) {
        match event {
            Progress::Listing { videos } => self.listed.store(*videos, Ordering::Relaxed),
            Progress::Selected { files, .. } => self.files.store(*files, Ordering::Relaxed),
            Progress::Skipped { .. } => {
                self.settled.fetch_add(1, Ordering::Relaxed);
            }
            Progress::Done { bytes, .. } => {
                self.settled.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(*bytes, Ordering::Relaxed);
            }
            Progress::Failed(f) if f.is_file() => {
                self.settled.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Says the line every `every` until [`Bars::finish`].
    fn start(self: Arc<Self>, every: Duration) {
        let started = Instant::now();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                if self.done.load(Ordering::Relaxed) {
                    break;
                }
                crate::log::say(&self.line(started.elapsed()));
            }
        });
    }

    /// `progress: 1200 of 5000 files (24 %), 1.2 GiB, 45.6 MiB/s, ETA 12m 3s`
    fn line(&self, elapsed: Duration) -> String {
        let files = self.files.load(Ordering::Relaxed);
        if files == 0 {
            return format!(
                "progress: listing, {} videos so far",
                self.listed.load(Ordering::Relaxed)
            );
        }
        let settled = self.settled.load(Ordering::Relaxed).min(files);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64().max(0.001);
        let rate = (bytes as f64 / secs) as u64;
        let eta = if settled == 0 {
            "unknown".to_owned()
        } else {
            let left = secs * (files - settled) as f64 / settled as f64;
            humantime::format_duration(Duration::from_secs(left as u64)).to_string()
        };
        format!(
            "progress: {settled} of {files} files ({} %), {} written, {}/s, ETA {eta}",
            settled * 100 / files,
            bytesize::ByteSize::b(bytes).display().iec(),
            bytesize::ByteSize::b(rate).display().iec(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_files_bytes_rate_and_eta() {
        let lines = Lines::default();
        assert_eq!(
            lines.line(Duration::from_secs(1)),
            "progress: listing, 0 videos so far"
        );
        lines.count(&Progress::Selected {
            videos: 4,
            files: 4,
        });
        lines.count(&Progress::Done {
            video_id: "a".into(),
            kind: DownloadType::Default,
            bytes: 1024 * 1024,
        });
        assert_eq!(
            lines.line(Duration::from_secs(2)),
            "progress: 1 of 4 files (25 %), 1.0 MiB written, 512.0 KiB/s, ETA 6s"
        );
    }
}
