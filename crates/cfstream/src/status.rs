//! `cfstream export status`: the front end of `cfstream_export::status`.

use std::collections::HashSet;
use std::io::Write;

use cfstream_export::status::status;
use cloudflare_stream_downloads::{Error, VideoQuery};
use futures_util::TryStreamExt;

use crate::cli::{Global, StatusArgs};
use crate::output::Output;

/// The ids of every video of the account (the listing: one request per
/// 1,000 videos).
pub async fn account_ids(global: &Global) -> Result<HashSet<String>, Error> {
    let client = crate::client(global)?;
    let mut ids = HashSet::new();
    let mut videos = client.videos(VideoQuery::all());
    while let Some(video) = videos.try_next().await? {
        if let Some(uid) = video.uid() {
            ids.insert(uid.to_owned());
        }
    }
    Ok(ids)
}

/// Runs `export status`; returns the exit status (0, or 3 when the
/// archive or the account could not be read).
pub async fn run(global: &Global, args: StatusArgs, out: &Output) -> Result<u8, Error> {
    let dest = crate::export::destination(
        args.dir.as_ref(),
        args.dest.as_deref(),
        global.account_id.as_deref(),
    )?;
    // With credentials (the command line's own choice of them), against
    // the account; without, the archive alone.
    let account = if crate::credentials(global)?.is_some() {
        Some(account_ids(global).await?)
    } else {
        None
    };
    let status = match status(&dest, account).await {
        Ok(status) => status,
        Err(e) => {
            crate::log::error(&format!("error: the archive could not be read: {e}"));
            return Ok(crate::Exit::Transport as u8);
        }
    };
    let mut w = std::io::stdout().lock();
    if out.is_json() {
        let _ = writeln!(w, "{}", serde_json::to_string(&status).unwrap_or_default());
        return Ok(0);
    }
    let _ = write_status(&mut w, &dest.to_string(), &status);
    Ok(0)
}

fn write_status(
    w: &mut impl Write,
    dest: &str,
    s: &cfstream_export::status::Status,
) -> std::io::Result<()> {
    match (s.account_videos, s.missing) {
        (Some(account), Some(missing)) => writeln!(
            w,
            "{dest}: {} of {account} video(s) done, {} partly done, {missing} missing; {} file(s), {}{}",
            s.done,
            s.partly_done,
            s.files,
            bytesize::ByteSize::b(s.bytes).display().iec(),
            match s.not_in_account {
                Some(n) if n > 0 => format!("; {n} in the archive no longer in the account"),
                _ => String::new(),
            }
        )?,
        _ => writeln!(
            w,
            "{dest}: {} video(s) done, {} partly done; {} file(s), {} (no credentials: the account was not listed)",
            s.done,
            s.partly_done,
            s.files,
            bytesize::ByteSize::b(s.bytes).display().iec(),
        )?,
    }
    if s.shards.is_empty() {
        writeln!(w, "no run report (.cfstream/runs/) yet")?;
    }
    for r in &s.shards {
        let how = match &r.ended_at {
            Some(ended) => format!("ended {ended}: {}", r.outcome),
            None => format!(
                "not ended: last heard of at {} (still running, or killed)",
                r.updated_at
            ),
        };
        writeln!(
            w,
            "shard {}: started {}, {how}; {} of {} file(s) done, {} failed, {} written ({})",
            r.shard,
            r.started_at,
            r.done,
            r.selected,
            r.failed,
            bytesize::ByteSize::b(r.bytes).display().iec(),
            r.report,
        )?;
    }
    if !s.failures.is_empty() {
        writeln!(w, "failures of the last runs, by reason:")?;
        crate::export::write_groups(w, &s.failures)?;
    }
    Ok(())
}
