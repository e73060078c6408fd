//! What a run is asked to do: [`ExportOptions`] (destination, selection,
//! types, budget, shard, polling, probes) with the defaults of `cfstream
//! export`.

use std::path::PathBuf;
use std::time::Duration;

use cloudflare_stream_downloads::VideoQuery;
use cloudflare_stream_downloads::types::DownloadType;

use crate::dest::Destination;
use crate::host::ProbePolicy;
use crate::limiter::Rate;
use crate::poll::PollPolicy;
use crate::shard::Shard;

/// Videos being created or waited for at once (their downloads generate on
/// Cloudflare's side in parallel). Generation, not our requests, takes the
/// time of a single video, so this is what lets a run reach the rate
/// limit's floor; each one costs a few hundred bytes.
pub const DEFAULT_IN_FLIGHT: usize = 256;

/// The earliest API poll of a download the download host does not have
/// yet (see [`ExportOptions::first_api_poll`]).
pub const DEFAULT_FIRST_API_POLL: Duration = Duration::from_secs(30);

/// How long a download may take to be ready before its file fails.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Which videos.
#[derive(Debug, Clone)]
pub enum Selection {
    /// These ids (checked before any request).
    Ids(Vec<String>),
    /// Every video the listing returns for this query.
    All(VideoQuery),
}

impl Selection {
    /// The selection as run reports and `account.json` record it (the
    /// number of ids, or the listing's query).
    pub fn describe(&self) -> serde_json::Value {
        match self {
            Selection::Ids(ids) => serde_json::json!({ "ids": ids.len() }),
            Selection::All(q) => serde_json::json!({ "all": format!("{q:?}") }),
        }
    }
}

/// What a run does. [`ExportOptions::new`] has the defaults of `cfstream
/// export`.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Where the files go: a directory, or an object store.
    pub dest: Destination,
    /// Where the run's state lives, for an object-store destination
    /// (default: [`default_state_path`](crate::dest::default_state_path) of its URL). A directory keeps its
    /// state inside it (`cfstream-export.sqlite`); this is ignored then.
    pub state: Option<PathBuf>,
    /// Which videos.
    pub selection: Selection,
    /// Which files of each video.
    pub types: Vec<DownloadType>,
    /// Concurrent file transfers.
    pub transfers: usize,
    /// The API budget.
    pub rate: Rate,
    /// This machine's share.
    pub shard: Shard,
    /// Try files that failed in an earlier run again.
    pub retry_failed: bool,
    /// Plan only: no request that changes anything, no file written.
    pub dry_run: bool,
    /// How downloads are polled.
    pub poll: PollPolicy,
    /// Videos created or waited for at once.
    pub in_flight: usize,
    /// Who is asked whether a download is ready.
    pub readiness: Readiness,
    /// A download not ready after this long fails (`not ready after …
    /// (timeout)`); the run goes on.
    pub wait_timeout: Duration,
    /// How the download host is probed: time limit, circuit breaker.
    pub probes: ProbePolicy,
    /// The earliest API poll of a download the download host does not
    /// have yet (then at least 3x the first wait, doubling): the API is
    /// asked only when the host stays silent well past the expected time
    /// ([`DEFAULT_FIRST_API_POLL`]; shorter in tests).
    pub first_api_poll: Duration,
    /// Whether each video's captions are archived, and how the export
    /// learns which captions and additional audio tracks a video has.
    pub captions: Captions,
    /// How often a running export rewrites its run report
    /// ([`crate::runs`]; [`DEFAULT_REPORT_EVERY`](crate::runs::DEFAULT_REPORT_EVERY), shorter in tests).
    pub report_every: Duration,
}

/// Captions and additional audio tracks (see [`crate::extras`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Captions {
    /// Every ready caption is written as `<uid>.<language>.vtt`; the
    /// video's HLS manifest on the download host (no API request) says
    /// whether it has captions or additional audio tracks, and the API is
    /// asked only for those that do (and for videos whose manifest cannot
    /// be read: a signed video without a signing key, a host that does not
    /// answer).
    #[default]
    FromManifest,
    /// As [`FromManifest`](Self::FromManifest), but the API is asked for
    /// every video's captions and audio tracks (two requests a video):
    /// certainty over budget, for captions the manifest may not list yet
    /// (still generating).
    FromApi,
    /// No caption is read or written, and no manifest read
    /// (`--no-captions`): the media-only archive, at its API cost. The
    /// sidecars then say nothing of captions or additional audio tracks
    /// (not known, rather than none).
    Off,
}

/// Who is asked whether a download is ready (see [`crate::host`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readiness {
    /// The download host, on the poll schedule (no API request), and the
    /// API only to learn of an `error` or when the host stays silent well
    /// past the expected time; existing downloads are found on the host
    /// before any create.
    #[default]
    Host,
    /// The API alone, every poll (the policy before; a baseline of
    /// docs/performance.md).
    Api,
}

impl ExportOptions {
    /// `default` files of `selection` into `dir`, 4 transfers, 1000/5m.
    pub fn new(dir: impl Into<PathBuf>, selection: Selection) -> Self {
        Self::to(Destination::Dir(dir.into()), selection)
    }

    /// [`new`](Self::new), into `dest`.
    pub fn to(dest: Destination, selection: Selection) -> Self {
        Self {
            dest,
            state: None,
            selection,
            types: vec![DownloadType::Default],
            transfers: 4,
            rate: Rate::DEFAULT,
            shard: Shard::ALL,
            retry_failed: false,
            dry_run: false,
            poll: PollPolicy::default(),
            in_flight: DEFAULT_IN_FLIGHT,
            readiness: Readiness::Host,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            probes: ProbePolicy::default(),
            first_api_poll: DEFAULT_FIRST_API_POLL,
            captions: Captions::FromManifest,
            report_every: crate::runs::DEFAULT_REPORT_EVERY,
        }
    }
}
