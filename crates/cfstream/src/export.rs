//! `cfstream export`: the front end of the `cfstream-export` engine.

use std::io::{BufRead, Write};
use std::path::Path;

use cfstream_export::{
    Destination, ExportError, ExportOptions, Exporter, Selection, Shard, Summary,
};
use cloudflare_stream_downloads::{Error, VideoQuery};

use crate::cli::{CaptionsFrom, ExportArgs, Global, VideoFilters};
use crate::output::Output;
use crate::progress::Bars;

/// Exit status after Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// Reads ids from `path` (`-`: stdin): one per line, blank lines and `#`
/// comments ignored.
fn read_ids(path: &Path) -> Result<Vec<String>, Error> {
    let invalid = |reason: String| Error::InvalidInput {
        what: "--from-file",
        reason,
    };
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file =
            std::fs::File::open(path).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut ids = Vec::new();
    for line in reader.lines() {
        let line = line.map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        let id = line.trim();
        if !id.is_empty() && !id.starts_with('#') {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// `--shard K/N`, or `auto` from the batch engine's environment.
fn shard(args: &ExportArgs) -> Result<Shard, Error> {
    let invalid = |reason: String| Error::InvalidInput {
        what: "--shard",
        reason,
    };
    if args.shard == "auto" {
        return Shard::from_batch_env(|name| std::env::var(name).ok(), args.shards)
            .map_err(invalid);
    }
    if args.shards.is_some() {
        return Err(invalid("--shards goes with --shard auto".into()));
    }
    args.shard.parse().map_err(invalid)
}

fn options(args: &ExportArgs, account_id: Option<&str>) -> Result<ExportOptions, Error> {
    // (clap's `requires` counts the flag's default value as present.)
    let filtered = args.status.is_some()
        || args.created_after.is_some()
        || args.created_before.is_some()
        || args.search.is_some();
    if filtered && !args.all {
        return Err(Error::InvalidInput {
            what: "selection",
            reason: "--status, --created-after, --created-before and --search filter the \
                     listing: they need --all"
                .into(),
        });
    }
    let selection = if args.all {
        let filters = VideoFilters {
            status: args.status.clone(),
            created_after: args.created_after,
            created_before: args.created_before,
            search: args.search.clone(),
            creator: None,
            video_name: None,
            max: None,
            asc: false,
        };
        let query: VideoQuery = crate::videos::query(&filters)?;
        Selection::All(query)
    } else if let Some(path) = &args.from_file {
        Selection::Ids(read_ids(path)?)
    } else {
        Selection::Ids(args.video_ids.clone())
    };
    let shard = shard(args)?;
    let dest = destination(args.dir.as_ref(), args.dest.as_deref(), account_id)?;
    let mut options = ExportOptions::to(dest, selection);
    options.state = args.state.clone();
    options.types = args.kind.types();
    options.transfers = usize::from(args.transfers);
    // The budget is the account's: each of N shards takes 1/N of the
    // default; an explicit --rate is this process's.
    options.rate = args.rate.unwrap_or(cfstream_export::Rate {
        requests: (cfstream_export::Rate::DEFAULT.requests / shard.n).max(1),
        per: cfstream_export::Rate::DEFAULT.per,
    });
    options.shard = shard;
    options.retry_failed = args.retry_failed;
    options.dry_run = args.dry_run;
    options.poll = args.poll;
    options.readiness = args.readiness;
    options.wait_timeout = args.wait_timeout;
    options.probes.timeout = args.probe_timeout;
    options.first_api_poll = args.first_api_poll;
    options.report_every = args.report_interval;
    options.captions = match (args.no_captions, args.captions_from) {
        (true, _) => cfstream_export::Captions::Off,
        (false, CaptionsFrom::Manifest) => cfstream_export::Captions::FromManifest,
        (false, CaptionsFrom::Api) => cfstream_export::Captions::FromApi,
    };
    Ok(options)
}

/// The destination of `--dir DIR` or `--dest URL` (checked, no request).
pub fn destination(
    dir: Option<&std::path::PathBuf>,
    dest: Option<&str>,
    account_id: Option<&str>,
) -> Result<Destination, Error> {
    match (dir, dest) {
        (Some(dir), _) => Ok(Destination::Dir(dir.clone())),
        (None, Some(url)) => Destination::parse(url, account_id).map_err(|e| match e {
            ExportError::InvalidInput { what, reason } => Error::InvalidInput { what, reason },
            other => Error::InvalidInput {
                what: "--dest",
                reason: other.to_string(),
            },
        }),
        (None, None) => Err(Error::InvalidInput {
            what: "destination",
            reason: "--dir or --dest is required".into(),
        }),
    }
}

/// Runs the export; returns the exit status.
pub async fn run(global: &Global, args: ExportArgs, out: &Output) -> Result<u8, Error> {
    let options = options(&args, global.account_id.as_deref())?;
    let exporter = match Exporter::new(options) {
        Ok(exporter) => exporter,
        Err(e) => return Ok(failed(&e)),
    };
    let builder = crate::client_builder(global)?;
    let client = exporter.client(builder)?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let json = out.is_json();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
            crate::log::say(
                "stopping: no new work; transfers in flight finish and are recorded (Ctrl-C again to quit now)",
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                crate::log::say("quitting: the state is consistent; run again to resume");
                std::process::exit(i32::from(INTERRUPTED));
            }
        }
    });
    let bars = Bars::new(
        out.bars_enabled() && !args.dry_run,
        (!args.dry_run && !global.no_progress).then_some(args.progress_interval),
    );
    let observer = bars.observer(json);
    let result = exporter.run(client, observer, stop).await;
    bars.finish();
    match result {
        Ok(summary) => {
            report(&summary, &args, out);
            Ok(if summary.interrupted {
                INTERRUPTED
            } else if summary.complete() || (args.dry_run && summary.failed.is_empty()) {
                0
            } else {
                1
            })
        }
        Err(e) => Ok(failed(&e)),
    }
}

/// Prints a run-level error the way the other commands print theirs, and
/// gives its exit status.
fn failed(e: &ExportError) -> u8 {
    crate::log::error(&format!("error: {e}"));
    if let ExportError::Api { source, .. } = e
        && let Some(wait) = source.retry_after()
    {
        crate::log::error(&format!(
            "  the API asks to wait {} s before trying again",
            wait.as_secs()
        ));
    }
    exit_for(e)
}

/// Exit status of a run that could not finish: the client's own code for an
/// API or network error (1 the API said no, 3 the network, 2 a local
/// problem such as a full disk), 2 for everything local (a busy directory,
/// the state database, an option).
fn exit_for(e: &ExportError) -> u8 {
    match e {
        ExportError::Api { source, .. } => crate::exit_for(source) as u8,
        e if e.destination_unreachable() => crate::Exit::Transport as u8,
        _ => crate::Exit::Usage as u8,
    }
}

/// Prints the summary (stdout). A closed pipe (`| head`) ends it quietly.
fn report(summary: &Summary, args: &ExportArgs, out: &Output) {
    let _ = write_report(&mut std::io::stdout().lock(), summary, args, out);
}

fn write_report(
    w: &mut impl Write,
    summary: &Summary,
    args: &ExportArgs,
    out: &Output,
) -> std::io::Result<()> {
    if out.is_json() {
        writeln!(w, "{}", serde_json::to_string(summary).unwrap_or_default())?;
        return Ok(());
    }
    if let Some(plan) = &summary.plan {
        for p in plan {
            writeln!(w, "{:<12} {} {}", p.action, p.video_id, p.kind)?;
        }
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for p in plan {
            match counts.iter_mut().find(|(a, _)| *a == p.action) {
                Some((_, n)) => *n += 1,
                None => counts.push((p.action, 1)),
            }
        }
        let counts: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
        writeln!(
            w,
            "dry run: {} file(s) of {} video(s) selected: {}; {} API request(s) (the listing only)",
            summary.selected,
            summary.videos,
            if counts.is_empty() {
                "nothing".into()
            } else {
                counts.join(", ")
            },
            summary.api_requests
        )?;
        return Ok(());
    }
    let per_video = if summary.videos > 0 {
        summary.api_requests as f64 / summary.videos as f64
    } else {
        0.0
    };
    writeln!(
        w,
        "{}: {} done, {} skipped (already done), {} failed of {} file(s); {} written; {} API request(s) ({per_video:.2} per video{}); {:.1} s",
        args.dir
            .as_ref()
            .map(|d| d.display().to_string())
            .or_else(|| args.dest.clone())
            .unwrap_or_default(),
        summary.done,
        summary.skipped,
        summary.failed.len(),
        summary.selected,
        bytesize::ByteSize::b(summary.bytes).display().iec(),
        summary.api_requests,
        if summary.rate_limited > 0 {
            format!(", {} answered 429", summary.rate_limited)
        } else {
            String::new()
        },
        summary.elapsed_seconds,
    )?;
    if summary.found_existing + summary.host_probes > 0 {
        writeln!(
            w,
            "download host: {} file(s) found already there (no create), {} probe(s) (no API request each)",
            summary.found_existing, summary.host_probes
        )?;
    }
    for h in &summary.hosts {
        // A healthy host is in the line above; one that misbehaved gets its own.
        if h.failed + h.throttled + h.skipped + h.opened == 0 {
            continue;
        }
        writeln!(
            w,
            "  {}: {} probe(s), {} failed, {} answered 429/5xx, {} skipped (breaker open or slowed down){}",
            h.host,
            h.probes,
            h.failed,
            h.throttled,
            h.skipped,
            if h.opened > 0 {
                format!("; breaker opened {} time(s)", h.opened)
            } else {
                String::new()
            }
        )?;
    }
    if summary.captions_written + summary.captions_present + summary.captions_pending > 0
        || summary.audio_tracks > 0
    {
        writeln!(
            w,
            "captions: {} written, {} already there, {} still generating (a later run writes them); {} additional audio track(s) recorded (Stream has no download of them); {} manifest(s) read (no API request each)",
            summary.captions_written,
            summary.captions_present,
            summary.captions_pending,
            summary.audio_tracks,
            summary.manifests,
        )?;
    }
    if summary.extras_deferred > 0 {
        writeln!(
            w,
            "captions: {} video(s) not looked at (the download host could not give their manifest): run again to archive their captions",
            summary.extras_deferred
        )?;
    }
    if summary.tokens_signed_locally + summary.tokens_requested > 0 {
        writeln!(
            w,
            "signed URLs: {} token(s) signed locally, {} requested from the API",
            summary.tokens_signed_locally, summary.tokens_requested
        )?;
    }
    write_failure_groups(w, &summary.failed)?;
    if summary.interrupted {
        writeln!(w, "interrupted: run the same command again to resume")?;
    }
    Ok(())
}

/// How many video ids a failure group shows.
const IDS_SHOWN: usize = 3;

/// Failures grouped by reason, largest group first, a few video ids each
/// (`412 × not ready to stream: 5e3a1f0c…, 8b1c42d7…, …`), and where the
/// full list is.
pub fn write_failure_groups(
    w: &mut impl Write,
    failed: &[cfstream_export::Failure],
) -> std::io::Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    writeln!(w, "failures, by reason:")?;
    write_groups(w, &cfstream_export::group_failures(failed))?;
    writeln!(
        w,
        "  (every failure with its video: --json, or the run's report under .cfstream/runs/)"
    )
}

/// One line per group.
pub fn write_groups(
    w: &mut impl Write,
    groups: &[cfstream_export::FailureGroup],
) -> std::io::Result<()> {
    for g in groups {
        let mut ids: Vec<String> = g
            .videos
            .iter()
            .take(IDS_SHOWN)
            .map(|id| format!("{}…", id.chars().take(8).collect::<String>()))
            .collect();
        if g.videos.len() > IDS_SHOWN {
            ids.push("…".into());
        }
        writeln!(w, "  {} × {}: {}", g.count, g.reason, ids.join(", "))?;
    }
    Ok(())
}
