//! `cfstream export status`: where an export stands, across its shards.
//!
//! What the archive holds (its listing: one pass, no file read) against
//! what the account holds (the video listing, about one API request per
//! 1,000 videos, when credentials are given): videos done (their sidecar is
//! there: it is written only when every selected file is), partly done
//! (files of theirs, no sidecar yet), missing (in the account, nothing in
//! the archive); bytes. And from the run reports (`.cfstream/runs/`): each
//! shard's last run (when, how far, how it ended; a run killed mid-way
//! still says how far it got and when it was last heard of), and the
//! failures of those last runs grouped by reason.
//!
//! Memory: one entry per video of the archive (a few dozen bytes) and,
//! with credentials, one id per video of the account.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::dest::Destination;
use crate::error::ExportError;
use crate::readback::owner;
use crate::report::{FailureGroup, group_failures};
use crate::runs::{self, RunReport};

/// What `status` tells.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Status {
    /// Videos whose sidecar is in the archive.
    pub done: u64,
    /// Videos with files in the archive but no sidecar yet.
    pub partly_done: u64,
    /// Videos of the account with nothing in the archive (`None` without
    /// the account's listing).
    pub missing: Option<u64>,
    /// Videos in the account (`None` without its listing).
    pub account_videos: Option<u64>,
    /// Videos in the archive that the account no longer lists.
    pub not_in_account: Option<u64>,
    /// Files of the archive.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The last run of each shard.
    pub shards: Vec<ShardRun>,
    /// The failures of those runs, grouped by reason, largest first.
    pub failures: Vec<FailureGroup>,
}

/// A shard's last run, from its report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardRun {
    /// `K/N`.
    pub shard: String,
    /// The report.
    pub report: String,
    /// When it started.
    pub started_at: String,
    /// When it was last heard of.
    pub updated_at: String,
    /// When it ended (`None`: still running, or killed).
    pub ended_at: Option<String>,
    /// How it ended (`running` for one still running or killed).
    pub outcome: String,
    /// Files of its selection.
    pub selected: u64,
    /// Done by it, or before it.
    pub done: u64,
    /// Failed.
    pub failed: u64,
    /// Bytes it wrote.
    pub bytes: u64,
}

/// Reads the archive and its run reports; `account`: the ids of the
/// account's videos, when listed.
pub async fn status(
    dest: &Destination,
    account: Option<HashSet<String>>,
) -> Result<Status, ExportError> {
    let listed = dest.list_archive().await?;
    // Per video: whether its sidecar is there.
    let mut videos: HashMap<String, bool> = HashMap::new();
    let mut out = Status::default();
    for l in &listed {
        out.files += 1;
        out.bytes += l.size;
        let Some(uid) = owner(&l.name) else { continue };
        if l.name == crate::account::ACCOUNT_FILE {
            continue;
        }
        let sidecar = l.name == format!("{uid}.json");
        *videos.entry(uid.to_owned()).or_default() |= sidecar;
    }
    out.done = videos.values().filter(|s| **s).count() as u64;
    out.partly_done = videos.len() as u64 - out.done;
    if let Some(account) = &account {
        out.account_videos = Some(account.len() as u64);
        out.missing = Some(
            account
                .iter()
                .filter(|uid| !videos.contains_key(*uid))
                .count() as u64,
        );
        out.not_in_account =
            Some(videos.keys().filter(|uid| !account.contains(*uid)).count() as u64);
    }
    let reports = runs::read_all(dest).await?;
    let last = runs::last_per_shard(&reports);
    let failures: Vec<_> = last
        .iter()
        .flat_map(|r| r.failures.iter().map(|f| f.to_failure()))
        .collect();
    out.failures = group_failures(&failures);
    out.shards = last.into_iter().map(shard_run).collect();
    Ok(out)
}

fn shard_run(r: &RunReport) -> ShardRun {
    ShardRun {
        shard: r.shard.clone(),
        report: format!("{}/{}.json", runs::RUNS_DIR, r.id),
        started_at: r.started_at.clone(),
        updated_at: r.updated_at.clone(),
        ended_at: r.ended_at.clone(),
        outcome: r.outcome.clone(),
        selected: r.counts.selected,
        done: r.counts.done + r.counts.skipped,
        failed: r.counts.failed,
        bytes: r.counts.bytes,
    }
}
