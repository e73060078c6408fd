//! Run reports: every run leaves one in the destination, under
//! `.cfstream/runs/` (a directory beside the videos, or that prefix in the
//! bucket), so that `cfstream export status` can tell, across shards and
//! machines that come and go, how each shard's last run went.
//!
//! A report is one JSON document ([`RunReport`]): the run's shard, its
//! options (never a secret: no credential, no token, no URL of a signed
//! file), when it started, when it was last updated and when it ended, its
//! counts, and its failures with their reasons. It is written when the run
//! starts, rewritten every [`DEFAULT_REPORT_EVERY`] while it runs (so a
//! killed pod's report still says how far it got), and at its end; each
//! write is whole (a temporary file renamed, or one `PUT`). Its name
//! (`<started>-<shard>-<random>.json`) is the run's own: shards never write
//! the same report. `verify` and the bucket's read-back skip this prefix.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dest::{Destination, write_atomically};
use crate::error::ExportError;
use crate::report::Failure;

/// Where the reports are, under the destination.
pub const RUNS_DIR: &str = ".cfstream/runs";

/// How often a running export rewrites its report.
pub const DEFAULT_REPORT_EVERY: Duration = Duration::from_secs(180);

/// A run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The report's name (and the run's id): `<started>-<shard>-<random>`.
    pub id: String,
    /// The shard, `K/N`.
    pub shard: String,
    /// What it was asked (no secret).
    pub options: serde_json::Value,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// The last time the report was written.
    pub updated_at: String,
    /// When it ended; `None` while it runs, or if it was killed.
    pub ended_at: Option<String>,
    /// `running`, `complete`, `failures` (some files failed),
    /// `interrupted`, or `error: …` (the run as a whole failed).
    pub outcome: String,
    /// Its counts so far.
    pub counts: RunCounts,
    /// Its failures so far, with their reasons.
    pub failures: Vec<ReportedFailure>,
}

/// A run's counts (files, as in the summary).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Videos selected.
    pub videos: u64,
    /// Files selected.
    pub selected: u64,
    /// Files done by the run.
    pub done: u64,
    /// Files already done.
    pub skipped: u64,
    /// Failures.
    pub failed: u64,
    /// Bytes written.
    pub bytes: u64,
    /// API requests.
    pub api_requests: u64,
    /// Captions written.
    #[serde(default)]
    pub captions_written: u64,
}

/// A failure as a report keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedFailure {
    /// The video.
    pub video_id: String,
    /// What failed (`default`, `audio`, `caption`, `captions`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The caption's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Why.
    pub reason: String,
}

impl From<&Failure> for ReportedFailure {
    fn from(f: &Failure) -> Self {
        Self {
            video_id: f.video_id.clone(),
            kind: f.kind.to_owned(),
            language: f.language.clone(),
            reason: f.reason.clone(),
        }
    }
}

impl ReportedFailure {
    /// As the summary's failure type (for grouping).
    pub fn to_failure(&self) -> Failure {
        let kind = match self.kind.as_str() {
            "default" => "default",
            "audio" => "audio",
            "caption" => "caption",
            "captions" => "captions",
            _ => "other",
        };
        Failure {
            video_id: self.video_id.clone(),
            kind,
            language: self.language.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// Now, RFC 3339 UTC to the second.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A new run's id: its start (`20261204T203000Z`), its shard (`2of3`) and
/// 8 random hex digits.
pub fn new_id(shard: &crate::shard::Shard) -> String {
    format!(
        "{}-shard{}of{}-{:08x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        shard.k,
        shard.n,
        fastrand::u32(..)
    )
}

/// Writes `report` whole into the destination.
pub async fn write(dest: &Destination, report: &RunReport) -> Result<(), ExportError> {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
    text.push('\n');
    let name = format!("{RUNS_DIR}/{}.json", report.id);
    match dest {
        Destination::Dir(dir) => {
            let runs = dir.join(RUNS_DIR);
            std::fs::create_dir_all(&runs).map_err(ExportError::io(&runs))?;
            write_atomically(&runs, &format!("{}.json", report.id), text.as_bytes())
        }
        Destination::Store(store) => store.put_report(&name, text.into_bytes()).await,
    }
}

/// Every report in the destination, oldest first (by start, then id).
/// Reports that do not parse are skipped.
pub async fn read_all(dest: &Destination) -> Result<Vec<RunReport>, ExportError> {
    let mut reports: Vec<RunReport> = Vec::new();
    match dest {
        Destination::Dir(dir) => {
            let runs = dir.join(RUNS_DIR);
            let entries = match std::fs::read_dir(&runs) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(reports),
                Err(e) => return Err(ExportError::io(&runs)(e)),
            };
            for entry in entries {
                let path = entry.map_err(ExportError::io(&runs))?.path();
                if path.extension().is_some_and(|e| e == "json")
                    && let Ok(bytes) = std::fs::read(&path)
                    && let Ok(report) = serde_json::from_slice(&bytes)
                {
                    reports.push(report);
                }
            }
        }
        Destination::Store(store) => {
            for bytes in store.read_reports(RUNS_DIR).await? {
                if let Ok(report) = serde_json::from_slice(&bytes) {
                    reports.push(report);
                }
            }
        }
    }
    reports.sort_by(|a, b| (&a.started_at, &a.id).cmp(&(&b.started_at, &b.id)));
    Ok(reports)
}

/// The last report of each shard (by start), in shard order.
pub fn last_per_shard(reports: &[RunReport]) -> Vec<&RunReport> {
    let mut last: std::collections::BTreeMap<(u32, u32, &str), &RunReport> =
        std::collections::BTreeMap::new();
    for r in reports {
        let (k, n) = r
            .shard
            .split_once('/')
            .and_then(|(k, n)| Some((k.parse().ok()?, n.parse().ok()?)))
            .unwrap_or((0, 0));
        let key = (n, k, r.shard.as_str());
        match last.get(&key) {
            Some(seen) if seen.started_at > r.started_at => {}
            _ => {
                last.insert(key, r);
            }
        }
    }
    last.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(shard: &str, started: &str) -> RunReport {
        RunReport {
            id: format!("{started}-{shard}"),
            shard: shard.into(),
            options: serde_json::json!({}),
            started_at: started.into(),
            updated_at: started.into(),
            ended_at: None,
            outcome: "running".into(),
            counts: RunCounts::default(),
            failures: Vec::new(),
        }
    }

    #[test]
    fn the_last_report_of_each_shard() {
        let reports = [
            report("1/2", "2026-12-04T10:00:00Z"),
            report("2/2", "2026-12-04T10:00:00Z"),
            report("1/2", "2026-12-04T11:00:00Z"),
        ];
        let last = last_per_shard(&reports);
        assert_eq!(last.len(), 2);
        assert_eq!(
            (last[0].shard.as_str(), last[0].started_at.as_str()),
            ("1/2", "2026-12-04T11:00:00Z")
        );
        assert_eq!(last[1].shard, "2/2");
    }

    #[test]
    fn ids_name_the_shard_and_differ() {
        let shard = crate::shard::Shard { k: 2, n: 3 };
        let (a, b) = (new_id(&shard), new_id(&shard));
        assert!(a.contains("-shard2of3-"), "{a}");
        assert_ne!(a, b);
    }
}
