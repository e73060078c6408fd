//! What `cfstream` writes on stderr besides progress bars: its notices,
//! failures and errors, and the `tracing` events of `-v`, as readable text
//! (the default) or, with `--log-format json` (`CFSTREAM_LOG_FORMAT=json`),
//! one JSON object per line (tracing's JSON formatter: `timestamp`,
//! `level`, `fields.message`, `target`), for a log pipeline.
//!
//! In JSON, the notices are `info` events of target `cfstream`, failures
//! `warn`, errors `error`; without `-v`, as in text, the engine's and the
//! client's own events are not written (each failure is one line, the
//! command line's).

use std::sync::OnceLock;

/// `--log-format`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The format chosen at start.
pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Installs the subscriber: `-v` this workspace's info events, `-vv`
/// debug (one per request), `-vvv` trace; other crates stay at warnings
/// (their events are not ours to vouch for; no secret is ever in ours).
pub fn init(verbose: u8, format: LogFormat) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let _ = FORMAT.set(format);
    let level = match verbose {
        // As text without -v: the command line's own lines only.
        0 if format == LogFormat::Json => LevelFilter::OFF,
        0 => return,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let targets = Targets::new()
        .with_default(if level == LevelFilter::OFF {
            LevelFilter::OFF
        } else {
            LevelFilter::WARN
        })
        .with_target("cloudflare_stream_downloads", level)
        .with_target("cfstream_export", level)
        .with_target("stream_fake", level)
        // The command line's own notices are always written.
        .with_target("cfstream", level.max(LevelFilter::INFO));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.with_filter(targets))
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().with_filter(targets))
            .try_init(),
    };
}

/// A notice on stderr.
pub fn say(text: &str) {
    match format() {
        LogFormat::Text => eprintln!("{text}"),
        LogFormat::Json => tracing::info!(target: "cfstream", "{text}"),
    }
}

/// A failure (of one file: the run goes on) on stderr.
pub fn failure(text: &str) {
    match format() {
        LogFormat::Text => eprintln!("{text}"),
        LogFormat::Json => tracing::warn!(target: "cfstream", "{text}"),
    }
}

/// An error (the command failed) on stderr.
pub fn error(text: &str) {
    match format() {
        LogFormat::Text => eprintln!("{text}"),
        LogFormat::Json => tracing::error!(target: "cfstream", "{text}"),
    }
}
