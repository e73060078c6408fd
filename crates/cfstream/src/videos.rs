//! `cfstream videos list`: the account's videos, streamed as pages arrive.

use std::io::Write;

use cloudflare_stream_downloads::types::VideoStateFilter;
use cloudflare_stream_downloads::{Client, Error, ListedVideo, VideoQuery};
use futures_util::TryStreamExt;

use crate::cli::VideoFilters;
use crate::output::Output;

/// The query of the flags, checked before any request.
pub fn query(filters: &VideoFilters) -> Result<VideoQuery, Error> {
    let mut q = VideoQuery::all().ascending(filters.asc);
    if let Some(state) = &filters.status {
        q = q.status(
            state
                .parse::<VideoStateFilter>()
                .map_err(|e| Error::InvalidInput {
                    what: "status",
                    reason: e.to_string(),
                })?,
        );
    }
    if let Some(t) = filters.created_after {
        q = q.created_after(t);
    }
    if let Some(t) = filters.created_before {
        q = q.created_before(t);
    }
    if let Some(text) = &filters.search {
        q = q.search(text);
    }
    if let Some(creator) = &filters.creator {
        q = q.creator(creator);
    }
    if let Some(name) = &filters.video_name {
        q = q.video_name(name);
    }
    if let Some(max) = filters.max {
        q = q.max(max);
    }
    q.validate()?;
    Ok(q)
}

/// Print every video of the walk: one table row, or one JSON line, each as
/// it arrives (stdout is buffered, not held: memory stays one page). A
/// closed stdout (`| head`) ends the listing quietly.
pub async fn list(client: &Client, query: VideoQuery, out: &Output) -> Result<(), Error> {
    let mut videos = client.videos(query);
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let counter = out.count_spinner("listing videos");
    let mut result = Ok(());
    if !out.is_json() {
        result = writeln!(
            w,
            "{:<32}  {:<20}  {:>9}  {:>10}  {:<15}  NAME",
            "UID", "CREATED", "DURATION", "SIZE", "STATE"
        );
    }
    let mut listed = 0u64;
    while result.is_ok() {
        let Some(video) = videos.try_next().await? else {
            break;
        };
        listed += 1;
        counter.set_position(listed);
        result = if out.is_json() {
            writeln!(w, "{}", video.raw_json())
        } else {
            writeln!(w, "{}", row(&video))
        };
    }
    result = result.and_then(|()| w.flush());
    counter.finish_and_clear();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Io {
            path: "<stdout>".into(),
            source: e,
        }),
        Ok(()) => {
            out.step(&format!("{listed} videos"));
            Ok(())
        }
    }
}

fn row(v: &ListedVideo) -> String {
    let created = v
        .created()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let duration = match v.duration {
        Some(d) if d >= 0.0 => {
            let s = d.round() as u64;
            format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
        _ => "-".into(),
    };
    let size = match v.size {
        Some(s) if s >= 0.0 => bytesize::ByteSize::b(s as u64).display().iec().to_string(),
        _ => "-".into(),
    };
    let state = v
        .status
        .as_ref()
        .and_then(|s| s.state.as_ref())
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
    let name = v
        .meta
        .as_ref()
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("");
    format!(
        "{:<32}  {:<20}  {:>9}  {:>10}  {:<15}  {}",
        v.uid().unwrap_or("-"),
        created,
        duration,
        size,
        state,
        name.replace(['\n', '\r', '\t'], " ")
    )
}
