//! What a run tells: [`Progress`] as it goes (for progress bars and
//! notices), and the [`Summary`] at its end, with its [`Failure`]s (and
//! [`Planned`] actions of a dry run).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cloudflare_stream_downloads::types::DownloadType;
use serde::Serialize;

use crate::host::HostStats;

/// A file that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The video.
    pub video_id: String,
    /// What failed: a download type (`default`, `audio`), a `caption`
    /// (with its [`language`](Self::language)), or `captions` (the
    /// video's caption or audio track list).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The caption's language, for a `caption`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Why.
    pub reason: String,
}

impl Failure {
    /// What failed, for people: `default`, `audio`, `caption pt-BR`,
    /// `captions`.
    pub fn what(&self) -> String {
        match &self.language {
            Some(language) => format!("{} {language}", self.kind),
            None => self.kind.to_owned(),
        }
    }

    /// A media file (not a caption or a list): counted in `selected`.
    pub fn is_file(&self) -> bool {
        matches!(self.kind, "default" | "audio")
    }
}

/// Failures that share a reason (see [`group_failures`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureGroup {
    /// The reason, as the failures give it.
    pub reason: String,
    /// How many failures (files, captions) have it.
    pub count: u64,
    /// The videos, each once, in the order of the failures.
    pub videos: Vec<String>,
}

/// Groups failures by reason, largest group first (then by reason).
pub fn group_failures(failures: &[Failure]) -> Vec<FailureGroup> {
    let mut groups: Vec<FailureGroup> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for f in failures {
        let i = *index.entry(f.reason.as_str()).or_insert_with(|| {
            groups.push(FailureGroup {
                reason: f.reason.clone(),
                count: 0,
                videos: Vec::new(),
            });
            groups.len() - 1
        });
        let g = &mut groups[i];
        g.count += 1;
        if g.videos.last() != Some(&f.video_id) && !g.videos.contains(&f.video_id) {
            g.videos.push(f.video_id.clone());
        }
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    groups
}

/// What a dry run would do with one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    /// The video.
    pub video_id: String,
    /// The download type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `skip` (done), `create`, `poll`, `fetch`, `verify`, `retry`, or
    /// `skip-failed`.
    pub action: &'static str,
}

/// The outcome of a run (`cfstream export --json` prints it). Counts are of
/// files: with `--type both` a video counts twice.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Files in the selection.
    pub selected: u64,
    /// Files fetched and verified by this run.
    pub done: u64,
    /// Files already done by an earlier run (no request made for them).
    pub skipped: u64,
    /// Files that failed, with reasons (including failures of earlier runs
    /// not retried: `--retry-failed`).
    pub failed: Vec<Failure>,
    /// Bytes written by this run.
    pub bytes: u64,
    /// API requests made by this run (listing included).
    pub api_requests: u64,
    /// Wall time.
    pub elapsed_seconds: f64,
    /// Videos in the selection.
    pub videos: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Tokens for signed URLs signed with the signing key (no API request).
    pub tokens_signed_locally: u64,
    /// Tokens for signed URLs asked of the API (`POST …/token`: one API
    /// request each, counted in `api_requests`).
    pub tokens_requested: u64,
    /// Videos of the selection known, from the listing, to require signed
    /// URLs (videos given by id are learned one by one, and not counted).
    pub signed_videos: u64,
    /// Files whose download already existed on the download host (found
    /// at the URL the listing implies): no create, no poll.
    pub found_existing: u64,
    /// Requests to the download host asking whether a file is there (no
    /// API request each).
    pub host_probes: u64,
    /// Per download host: probes sent, failed, throttled, skipped while
    /// its breaker was open or it asked to slow down, and breaker
    /// openings.
    pub hosts: Vec<HostStats>,
    /// Captions written by this run (`<uid>.<language>.vtt`).
    pub captions_written: u64,
    /// Captions looked at by this run and already in the archive.
    pub captions_present: u64,
    /// Captions still generating: recorded, written by a later run.
    pub captions_pending: u64,
    /// Additional audio tracks recorded by this run (in the sidecars:
    /// Stream has no download of them).
    pub audio_tracks: u64,
    /// Manifests asked of the download host (no API request each).
    pub manifests: u64,
    /// Videos whose manifest the download host could not give this time
    /// (down, or slowed down): their captions and audio tracks are looked
    /// at by the next run.
    pub extras_deferred: u64,
    /// `api_requests / videos`.
    pub api_requests_per_video: f64,
    /// The run stopped early (Ctrl-C): files not reached are in none of
    /// the counts.
    pub interrupted: bool,
    /// With `--dry-run`: what would be done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<Planned>>,
}

impl Summary {
    /// Every selected file is on disk and verified.
    pub fn complete(&self) -> bool {
        !self.interrupted && self.failed.is_empty() && self.done + self.skipped == self.selected
    }
}

/// What a run reports as it goes (for progress bars).
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The listing has found this many videos so far (in this shard).
    Listing {
        /// Videos so far.
        videos: u64,
    },
    /// The selection is known.
    Selected {
        /// Videos.
        videos: u64,
        /// Files.
        files: u64,
    },
    /// A file was already done.
    Skipped {
        /// The video.
        video_id: String,
        /// Size of the file.
        bytes: u64,
    },
    /// A transfer started.
    TransferStarted {
        /// The video.
        video_id: String,
        /// Which file.
        kind: DownloadType,
    },
    /// Bytes of a transfer on disk.
    Transfer {
        /// The video.
        video_id: String,
        /// Which file.
        kind: DownloadType,
        /// Bytes so far.
        bytes: u64,
        /// The size, when known.
        total: Option<u64>,
    },
    /// A transfer ended (the file is in place, or the transfer failed);
    /// verification follows.
    TransferEnded {
        /// The video.
        video_id: String,
        /// Which file.
        kind: DownloadType,
    },
    /// A file is done.
    Done {
        /// The video.
        video_id: String,
        /// Which file.
        kind: DownloadType,
        /// Its size.
        bytes: u64,
    },
    /// A file failed.
    Failed(Failure),
    /// Videos of the selection that require signed URLs (from the
    /// listing), and whether the run signs their tokens locally.
    SignedVideos {
        /// How many.
        videos: u64,
        /// A signing key is configured (no API request per token).
        signing_key: bool,
    },
    /// An object-store destination was read back before the run (its
    /// state may be new: a fresh machine).
    Destination {
        /// The state database used.
        state: PathBuf,
        /// Objects listed under the prefix.
        objects: u64,
        /// Files found complete there (their sidecars) that the state did
        /// not have as done.
        adopted: u64,
        /// Multipart uploads of this shard left open by another run, taken
        /// over.
        continued: u64,
        /// Multipart uploads of this shard left open by another run, aborted.
        aborted: u64,
    },
    /// A caption was written.
    CaptionWritten {
        /// The video.
        video_id: String,
        /// Its language.
        language: String,
        /// Its size.
        bytes: u64,
    },
    /// Every worker pauses after a 429.
    Paused {
        /// For how long.
        wait: Duration,
    },
    /// A download host stopped answering: its breaker opened, and its
    /// files are created and polled through the API for a while.
    HostUnavailable {
        /// The host (scheme, name, port).
        host: String,
        /// The last failure.
        reason: String,
        /// How long its probes stop.
        retry_in: Duration,
        /// The first time in this run (later openings are logged only).
        first: bool,
    },
}

/// Receives [`Progress`].
pub type Observer = Arc<dyn Fn(Progress) + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(video: &str, kind: &'static str, reason: &str) -> Failure {
        Failure {
            video_id: video.into(),
            kind,
            language: None,
            reason: reason.into(),
        }
    }

    #[test]
    fn failures_group_by_reason_largest_first() {
        let groups = group_failures(&[
            failure("a", "default", "timeout"),
            failure("b", "default", "not ready to stream"),
            failure("b", "audio", "not ready to stream"),
            failure("c", "default", "not ready to stream"),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            (groups[0].reason.as_str(), groups[0].count),
            ("not ready to stream", 3)
        );
        assert_eq!(groups[0].videos, ["b", "c"]);
        assert_eq!((groups[1].reason.as_str(), groups[1].count), ("timeout", 1));
        assert!(group_failures(&[]).is_empty());
    }
}
