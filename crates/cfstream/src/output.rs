//! Everything `cfstream` prints: results on stdout (human lines or one JSON
//! document), steps, progress bars and errors on stderr.

use std::io::IsTerminal;

use cloudflare_stream_downloads::types::{Download, DownloadType};
use cloudflare_stream_downloads::{Downloads, Error, FetchReport};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

/// How to print.
pub struct Output {
    json: bool,
    bars: bool,
}

impl Output {
    /// Bars only when stderr is a terminal and `--no-progress` is absent.
    pub fn new(json: bool, no_progress: bool) -> Self {
        Self {
            json,
            bars: !no_progress
                && std::io::stderr().is_terminal()
                && crate::log::format() == crate::log::LogFormat::Text,
        }
    }

    /// Progress bars are drawn (stderr is a terminal, no `--no-progress`).
    pub fn bars_enabled(&self) -> bool {
        self.bars
    }

    /// `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A spinner counting items (stderr, terminals only).
    pub fn count_spinner(&self, what: &str) -> ProgressBar {
        let bar = self.bar(0, "{spinner} {msg}: {pos} ({per_sec})");
        bar.set_message(what.to_owned());
        bar
    }

    fn print_json(&self, value: &serde_json::Value) {
        println!("{value}");
    }

    /// The result of create or list.
    pub fn downloads(&self, video_id: &str, downloads: &Downloads) {
        if self.json {
            self.print_json(&serde_json::to_value(downloads).unwrap_or_default());
            return;
        }
        if downloads.is_empty() {
            println!("video {video_id} has no downloads");
        }
        for (kind, d) in downloads.iter() {
            println!("{}", line(kind, d));
        }
    }

    /// The result of delete.
    pub fn deleted(&self, video_id: &str, kind: Option<DownloadType>) {
        if self.json {
            self.print_json(&json!("ok"));
            return;
        }
        match kind {
            Some(kind) => println!("deleted the {kind} download of video {video_id}"),
            None => println!("deleted the downloads of video {video_id}"),
        }
    }

    /// The result of wait.
    pub fn ready(&self, video_id: &str, kind: DownloadType, download: &Download) {
        if self.json {
            self.print_json(&serde_json::to_value(download).unwrap_or_default());
            return;
        }
        println!(
            "the {kind} download of video {video_id} is ready: {}",
            download.url.as_deref().unwrap_or("(no url)")
        );
    }

    /// The result of fetch.
    pub fn fetched(&self, report: &FetchReport) {
        let seconds = report.elapsed.as_secs_f64();
        if self.json {
            self.print_json(&json!({
                "path": report.path,
                "bytes": report.bytes,
                "seconds": seconds,
            }));
            return;
        }
        let rate = report.bytes as f64 / seconds.max(1e-9) / (1024.0 * 1024.0);
        println!(
            "saved {} ({} bytes in {seconds:.2} s, {rate:.1} MiB/s{})",
            report.path.display(),
            report.bytes,
            if report.resumed_from > 0 {
                format!(", resumed at byte {}", report.resumed_from)
            } else {
                String::new()
            }
        );
    }

    /// A step of a longer command, on stderr (stdout stays the result).
    pub fn step(&self, text: &str) {
        if !self.json {
            crate::log::say(&format!("==> {text}"));
        }
    }

    /// The error, on stderr: one first line, then each Cloudflare message.
    pub fn error(&self, error: &Error) {
        crate::log::error(&format!("error: {error}"));
        if let Error::Api {
            errors, messages, ..
        } = error
        {
            for m in errors.iter().chain(messages) {
                let mut line = format!("  {}: {}", m.code, m.message);
                if let Some(url) = &m.documentation_url {
                    line.push_str(&format!(" (see {url})"));
                }
                crate::log::error(&line);
            }
        }
        if let Some(wait) = error.retry_after() {
            crate::log::error(&format!(
                "  the API asks to wait {} s before trying again",
                wait.as_secs()
            ));
        }
    }

    fn bar(&self, len: u64, template: &str) -> ProgressBar {
        let target = if self.bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }

    /// A 0..=100 % bar for generation progress.
    pub fn percent_bar(&self, what: &str) -> ProgressBar {
        let bar = self.bar(100, "{spinner} {msg} [{bar:30}] {pos:>3}%");
        bar.set_message(format!("waiting for the {what}"));
        bar
    }

    /// A bytes bar with rate and ETA for the file download.
    pub fn bytes_bar(&self) -> ProgressBar {
        self.bar(
            0,
            "[{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
    }
}

fn line(kind: DownloadType, d: &Download) -> String {
    format!(
        "{:<8} {:<10} {:>5.1}%  {}",
        kind.to_string(),
        d.status.to_string(),
        d.percent_complete,
        d.url.as_deref().unwrap_or("")
    )
}
