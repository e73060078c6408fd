//! `cfstream verify`: the front end of `cfstream_export::verify`.

use std::io::Write;

use cfstream_export::verify::{Problem, VerifyOptions, verify};
use cloudflare_stream_downloads::Error;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{Global, VerifyArgs};
use crate::output::Output;

/// Runs `verify`; returns the exit status (0 clean, 1 problems, 2 usage,
/// 3 the archive could not be read).
pub async fn run(global: &Global, args: VerifyArgs, out: &Output) -> Result<u8, Error> {
    let dest = crate::export::destination(
        args.dir.as_ref(),
        args.dest.as_deref(),
        global.account_id.as_deref(),
    )?;
    let account = if args.against_account {
        Some(crate::status::account_ids(global).await?)
    } else {
        None
    };
    let bar = if out.bars_enabled() {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} verifying [{bar:30}] {pos}/{len} videos ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut problems: Vec<Problem> = Vec::new();
    let json = out.is_json();
    let options = VerifyOptions {
        sample: args.sample,
        parallel: usize::from(args.parallel),
    };
    let result = verify(
        &dest,
        options,
        account.as_ref(),
        |p| {
            if !json {
                bar.suspend(|| println!("{:<12} {}: {}", p.kind, p.name, p.detail));
            }
            problems.push(p);
        },
        |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )
    .await;
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        // The destination was parsed before: what fails now is reading it.
        Err(e) => {
            crate::log::error(&format!("error: the archive could not be read: {e}"));
            return Ok(crate::Exit::Transport as u8);
        }
    };
    let mut stdout = std::io::stdout().lock();
    if json {
        let mut doc = serde_json::to_value(&report).unwrap_or_default();
        doc["problems_found"] = serde_json::to_value(&problems).unwrap_or_default();
        let _ = writeln!(stdout, "{doc}");
    } else {
        let _ = writeln!(
            stdout,
            "{}: {} of {} video(s) checked{}, {} file(s), {} read ({}/s), {} file(s) listed; {}",
            dest,
            report.videos_checked,
            report.videos,
            report
                .sample
                .map(|p| format!(" (a {p} % sample)"))
                .unwrap_or_default(),
            report.files_checked,
            bytesize::ByteSize::b(report.bytes_read).display().iec(),
            bytesize::ByteSize::b(report.throughput() as u64)
                .display()
                .iec(),
            report.files_listed,
            if report.problems == 0 {
                "no problem".to_owned()
            } else {
                format!("{} problem(s)", report.problems)
            }
        );
    }
    Ok(u8::from(report.problems > 0))
}
