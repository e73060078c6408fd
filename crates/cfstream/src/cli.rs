//! The command line, exactly as scripts rely on it.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use cloudflare_stream_downloads::VideoState;
use cloudflare_stream_downloads::types::DownloadType;

const ENVIRONMENT: &str = "\
Environment (flags win over it):
  CLOUDFLARE_API_TOKEN             API token (preferred)
  CLOUDFLARE_EMAIL + CLOUDFLARE_API_KEY
                                   global API key and its account e-mail
  CLOUDFLARE_API_USER_SERVICE_KEY  user service key
  CLOUDFLARE_ACCOUNT_ID            the account to act on
  CLOUDFLARE_BASE_URL              API base URL (default https://api.cloudflare.com/client/v4)
  CLOUDFLARE_STREAM_SIGNING_KEY_ID + CLOUDFLARE_STREAM_SIGNING_KEY_PEM
                                   a signing key (id, and base64 pem as Cloudflare
                                   gives it), instead of --signing-key FILE

Exit status: 0 ok, 1 the API answered with an error, 2 usage or invalid input,
3 network/timeout/unexpected answer, 4 the download ended in status `error`.";

/// `cfstream --version`: the crate's version and the commit it was built
/// from (crates/cfstream/build.rs; "unknown" outside a git checkout unless
/// `CFSTREAM_COMMIT` was set for the build).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CFSTREAM_COMMIT"),
    ")"
);

/// Cloudflare Stream downloads (MP4 and M4A files of a video) from the shell.
#[derive(Parser, Debug)]
#[command(name = "cfstream", version = VERSION, about, after_help = ENVIRONMENT)]
pub struct Args {
    #[command(flatten)]
    pub global: Global,
    /// The first spelling of --request-timeout, before the subcommand only
    /// (`downloads wait --timeout` is the wait's own deadline).
    #[arg(long = "timeout", hide = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after the subcommand.
#[derive(ClapArgs, Debug, Clone)]
pub struct Global {
    /// Account id.
    #[arg(long, global = true, env = "CLOUDFLARE_ACCOUNT_ID", value_name = "ID")]
    pub account_id: Option<String>,
    /// API token (sent as `Authorization: Bearer`).
    #[arg(
        long,
        global = true,
        env = "CLOUDFLARE_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub api_token: Option<String>,
    /// E-mail of the global API key.
    #[arg(long, global = true, env = "CLOUDFLARE_EMAIL", value_name = "EMAIL")]
    pub api_email: Option<String>,
    /// Global API key (with --api-email).
    #[arg(
        long,
        global = true,
        env = "CLOUDFLARE_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// User service key.
    #[arg(
        long,
        global = true,
        env = "CLOUDFLARE_API_USER_SERVICE_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub user_service_key: Option<String>,
    /// API base URL (https, or http on loopback).
    #[arg(long, global = true, env = "CLOUDFLARE_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,
    /// Print the result as one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Never show progress: no bars (drawn only when stderr is a
    /// terminal), no progress lines (elsewhere, every 30 s).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Log to stderr: -v info, -vv every request, -vvv trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How stderr is written: text, or json (one JSON object per line, for
    /// log pipelines; progress bars then give way to a progress line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "CFSTREAM_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: crate::log::LogFormat,
    /// Retries of a failed request (default 2).
    #[arg(long, global = true, value_name = "N")]
    pub retries: Option<u32>,
    /// Timeout of one API request (default 60s), e.g. 30s.
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub request_timeout: Option<Duration>,
    /// A Stream signing key: a JSON file with at least `id` and `pem` (as
    /// `cfstream keys create --save` writes it, or as the API returns it).
    /// Videos that require signed URLs then get tokens signed locally,
    /// with no API request.
    #[arg(long, global = true, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    /// Ids of the credential options given as flags (set after parsing).
    #[arg(skip)]
    pub credentials_from_flags: Vec<&'static str>,
}

/// What to do.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, list, delete, wait for and fetch the downloads of a video.
    #[command(subcommand, after_help = ENVIRONMENT)]
    Downloads(DownloadsCommand),
    /// List the account's videos.
    #[command(subcommand, after_help = ENVIRONMENT)]
    Videos(VideosCommand),
    /// Export the files of many videos (or all) to a directory: resumable,
    /// inside the API's rate limit, one run per directory.
    #[command(after_help = EXPORT_HELP)]
    Export(Box<ExportArgs>),
    /// Check an export's archive against its sidecars: every file there,
    /// its size, SHA-256 and structure; captions WebVTT; strays named. No
    /// Stream request (no credentials needed), unless --against-account.
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Create, list and delete the account's Stream signing keys (for
    /// videos that require signed URLs).
    #[command(subcommand, after_help = ENVIRONMENT)]
    Keys(KeysCommand),
    /// Show create -> wait -> fetch against a built-in fake API (no account, no network).
    #[command(
        after_help = "The demo starts stream-fake on 127.0.0.1 inside this process and uses its \
own credentials: CLOUDFLARE_* variables and credential flags are not used (only --retries is)."
    )]
    Demo {
        /// Size of the demo file.
        #[arg(long, default_value = "64MiB")]
        size: bytesize::ByteSize,
        /// Where to save it (default: the system's temporary directory).
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Print a shell completion script (see docs/cli.md for where to put it).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The `keys` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a signing key. Its private key is shown this once: without
    /// --save it is printed on stdout.
    Create {
        /// Write {"id","pem","jwk","created"} to FILE (mode 0600; an
        /// existing FILE is refused before the key is created).
        #[arg(long, value_name = "FILE")]
        save: Option<PathBuf>,
    },
    /// List the signing keys: id and creation time (never a private key).
    List,
    /// Delete a signing key: every token signed with it stops working.
    Delete {
        /// The key's id.
        key_id: String,
    },
}

/// The `downloads` subcommands.
#[derive(Subcommand, Debug)]
pub enum DownloadsCommand {
    /// Create downloads (without --type: the API's default operation, which creates `default`).
    #[command(after_help = ENVIRONMENT)]
    Create {
        /// The video.
        video_id: String,
        /// Create only this type (uses the typed operation).
        #[arg(long = "type", value_enum)]
        kind: Option<KindArg>,
    },
    /// List the downloads of a video.
    #[command(after_help = ENVIRONMENT)]
    List {
        /// The video.
        video_id: String,
    },
    /// Delete downloads (without --type: all of them).
    #[command(after_help = ENVIRONMENT)]
    Delete {
        /// The video.
        video_id: String,
        /// Delete only this type (uses the typed operation).
        #[arg(long = "type", value_enum)]
        kind: Option<KindArg>,
    },
    /// Wait until a download is ready (it must exist).
    #[command(after_help = ENVIRONMENT)]
    Wait {
        /// The video.
        video_id: String,
        /// Which download (default: default).
        #[arg(long = "type", value_enum)]
        kind: Option<KindArg>,
        /// Give up after this long.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Create the download if needed, wait for it, then save its file.
    #[command(after_help = ENVIRONMENT)]
    Fetch {
        /// The video.
        video_id: String,
        /// Which download (default: default).
        #[arg(long = "type", value_enum)]
        kind: Option<KindArg>,
        /// Where to save it: a file, or a directory (an existing one, or a
        /// path ending in `/`) to save <VIDEO_ID>.mp4 or .m4a in. Default:
        /// <VIDEO_ID>.mp4 or .m4a here.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
}

/// The `videos` subcommands.
#[derive(Subcommand, Debug)]
pub enum VideosCommand {
    /// List every video matching the filters, newest first, page by page
    /// (1000 per request): a table, or with --json one video object per
    /// line (JSON Lines, as the API sent it), printed as pages arrive.
    #[command(after_help = ENVIRONMENT)]
    List(VideoFilters),
}

const EXPORT_HELP: &str = "\
DIR receives <uid>.mp4 / <uid>.m4a; <uid>.<language>.vtt for each ready
caption (en, pt-BR, zh-Hant: as Stream tags it); <uid>.json (the video as
listed; per type the download's url, size and sha256; its captions and
additional audio tracks, which Stream cannot download); account.json (the
archive and the account's watermark profiles); and cfstream-export.sqlite
(the run's state: run again to resume; `sqlite3` can read it). A caption
still generating is recorded, and written by a later run once ready.

With --dest, the bucket receives the same objects (PREFIX/<uid>.mp4, .m4a,
.<language>.vtt, .json, and PREFIX/account.json) and nothing else; the state lives in a local file (--state). The
bucket is the truth: a run on a fresh machine reads it back first and
downloads nothing that is complete there. Credentials: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL (s3://;
r2:// takes R2's key pair there, and its endpoint from the account id);
GOOGLE_SERVICE_ACCOUNT (gs://); AZURE_STORAGE_ACCOUNT_NAME and
AZURE_STORAGE_ACCOUNT_KEY (az://).

API requests are spent only where the API alone can answer: a file already
on the download host (at the URL the listing implies) is fetched with no
create, and whether a created download is ready is asked of the download
host (no API request), the API only to learn of an error or a download
silent past 30 s (--wait-timeout bounds the wait). A video's captions are
learned from its HLS manifest on the download host (no API request): only
a video that has captions or additional audio tracks costs API requests
(its list, and one per caption).

The API budget is per user: with N shards each process takes 1/N of --rate's
default (1000/5m); an explicit --rate is this process's own.

Exit status: 0 every selected file is on disk and verified, 1 some files
failed (listed in the summary), 2 usage or invalid input (checked before any
request), 3 the run as a whole failed (network, listing), 130 interrupted
(Ctrl-C: the first lets transfers in flight finish, a second exits at once).

Environment: the CLOUDFLARE_* variables of `cfstream --help`.";

const VERIFY_HELP: &str = "\
Exit status: 0 every check passed, 1 problems (each named), 2 usage,
3 the archive could not be read. --json prints one document: `problems`
(kind, name, video_id, detail) and the counts.

Kinds of problem: missing (a file its sidecar names is not there), size,
digest (another SHA-256), media (not a whole MP4/M4A), caption (not
WebVTT), sidecar (does not parse), stray (a file no sidecar names; run
reports under .cfstream/ and account.json are not), not-archived (with
--against-account: in the account, not in the archive).";

/// `verify`.
#[derive(ClapArgs, Debug, Clone)]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["dir", "dest"])))]
pub struct VerifyArgs {
    /// The export directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The export's bucket and prefix (as export's --dest).
    #[arg(long, value_name = "URL")]
    pub dest: Option<String>,
    /// Check a random share of the videos (percent), for a quick look;
    /// strays are looked for in the whole listing either way.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub sample: Option<f64>,
    /// Videos checked at once.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Also list the account (credentials needed: one API request per
    /// 1,000 videos) and report the videos the archive lacks.
    #[arg(long)]
    pub against_account: bool,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    let p: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|e| format!("{e}"))?;
    if p > 0.0 && p <= 100.0 {
        Ok(p)
    } else {
        Err("must be in (0, 100]".into())
    }
}

/// `export status`.
#[derive(ClapArgs, Debug, Clone)]
#[command(group(clap::ArgGroup::new("status_destination").required(true).args(["dir", "dest"])))]
pub struct StatusArgs {
    /// The export directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The export's bucket and prefix (as export's --dest).
    #[arg(long, value_name = "URL")]
    pub dest: Option<String>,
}

/// `export`'s subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum ExportCommand {
    /// Where an export stands: the archive against the account (videos
    /// done, partly done, missing; bytes), each shard's last run and the
    /// failures of the last runs, grouped. Without credentials, the
    /// archive and its run reports alone.
    Status(StatusArgs),
}

/// `export`.
#[derive(ClapArgs, Debug, Clone)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["video_ids", "from_file", "all"])))]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["dir", "dest"])))]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ExportArgs {
    /// `status`: where an export stands (see `cfstream export status --help`).
    #[command(subcommand)]
    pub command: Option<ExportCommand>,
    /// The export directory (created if needed).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// An object store instead: s3://BUCKET/PREFIX, r2://BUCKET/PREFIX,
    /// gs://BUCKET/PREFIX, az://CONTAINER/PREFIX (or file:///DIR, the same
    /// as --dir). Credentials from the environment (see below).
    #[arg(long, value_name = "URL")]
    pub dest: Option<String>,
    /// With --dest: the run's state database (default: under
    /// $XDG_STATE_HOME/cfstream, named from the URL). The bucket is the
    /// truth: a new, empty state is rebuilt from it.
    #[arg(long, requires = "dest", value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The videos to export.
    #[arg(value_name = "VIDEO_ID")]
    pub video_ids: Vec<String>,
    /// Read the ids from FILE (`-`: stdin), one per line; blank lines and
    /// lines starting with `#` are ignored.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// Every video of the account (the listing), narrowed by the filters below.
    #[arg(long)]
    pub all: bool,
    /// Which files: default (MP4), audio (M4A) or both.
    #[arg(long = "type", value_enum, default_value = "default")]
    pub kind: ExportKind,
    /// With --all: only videos in this processing state.
    #[arg(long, requires = "all", value_name = "STATE", value_parser = clap::builder::PossibleValuesParser::new(VideoState::KNOWN))]
    pub status: Option<String>,
    /// With --all: only videos created after this time (RFC 3339, or a date).
    #[arg(long, requires = "all", value_name = "TIME", value_parser = parse_time)]
    pub created_after: Option<DateTime<Utc>>,
    /// With --all: only videos created before this time (RFC 3339, or a date).
    #[arg(long, requires = "all", value_name = "TIME", value_parser = parse_time)]
    pub created_before: Option<DateTime<Utc>>,
    /// With --all: partial match on the video's name.
    #[arg(long, requires = "all", value_name = "TEXT")]
    pub search: Option<String>,
    /// Concurrent file downloads (1-64).
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub transfers: u16,
    /// API requests allowed to this process (all of them: listing, creates,
    /// polls), e.g. 1000/5m [default: 1000/5m divided by the number of
    /// shards: the budget is the account's].
    #[arg(long, value_name = "N/DURATION")]
    pub rate: Option<cfstream_export::Rate>,
    /// This machine's share of the selection, 1-based, e.g. 2/3; or `auto`:
    /// from the batch engine's environment (Kubernetes Indexed Job, AWS
    /// Batch array job, Cloud Run job, Google Batch).
    #[arg(long, default_value = "1/1", value_name = "K/N|auto")]
    pub shard: String,
    /// With --shard auto: the number of shards, for engines that do not
    /// give it (Kubernetes: the Job's completions).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: Option<u32>,
    /// Try again the files that failed in an earlier run (else they are skipped).
    #[arg(long)]
    pub retry_failed: bool,
    /// Show what would be done: no request but the listing, nothing written
    /// (an existing state is read read-only).
    #[arg(long)]
    pub dry_run: bool,
    /// How downloads are polled: adaptive (default), fixed:DURATION or
    /// doubling:DURATION (the baselines of docs/performance.md).
    #[arg(long, hide = true, default_value = "adaptive", value_parser = parse_poll)]
    pub poll: cfstream_export::PollPolicy,
    /// Who is asked whether a download is ready: host (the download host,
    /// the API only to learn of errors; default) or api (every poll; the
    /// baseline of docs/performance.md).
    #[arg(long, hide = true, default_value = "host", value_parser = parse_readiness)]
    pub readiness: cfstream_export::Readiness,
    /// A download not ready after this long fails (the run goes on).
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait_timeout: std::time::Duration,
    /// A probe of the download host (is a file there?) not answered within
    /// this is abandoned; 3 failures in a row stop that host's probes for
    /// 30 s, doubling (its files are created and polled through the API).
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_probe_timeout)]
    pub probe_timeout: std::time::Duration,
    /// The earliest API poll of a download the download host does not
    /// have yet (for tests: the default leaves that question to the host).
    #[arg(long, hide = true, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub first_api_poll: std::time::Duration,
    /// Do not archive captions (by default every ready caption is written
    /// as UID.LANGUAGE.vtt beside its video) nor record additional
    /// audio tracks: the media and their details only, with no manifest
    /// read.
    #[arg(long)]
    pub no_captions: bool,
    /// How the export learns which captions and additional audio tracks a
    /// video has: manifest (its HLS manifest on the download host, no API
    /// request; the API only for videos that have some) or api (two API
    /// requests a video, also for captions still generating).
    #[arg(
        long,
        value_enum,
        default_value = "manifest",
        value_name = "FROM",
        conflicts_with = "no_captions"
    )]
    pub captions_from: CaptionsFrom,
    /// When stderr is not a terminal: a progress line this often (for
    /// tests; the default suits a pod's log).
    #[arg(long, hide = true, default_value = "30s", value_name = "DURATION", value_parser = parse_probe_timeout)]
    pub progress_interval: std::time::Duration,
    /// How often a running export rewrites its report under
    /// .cfstream/runs/ (for tests; default 3m).
    #[arg(long, hide = true, default_value = "3m", value_name = "DURATION", value_parser = parse_probe_timeout)]
    pub report_interval: std::time::Duration,
}

/// `--captions-from` of export.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionsFrom {
    /// The video's HLS manifest on the download host.
    Manifest,
    /// The API, for every video.
    Api,
}

fn parse_probe_timeout(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

/// `--type` of export.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// MP4 video.
    Default,
    /// M4A audio.
    Audio,
    /// Both files.
    Both,
}

impl ExportKind {
    /// The download types.
    pub fn types(self) -> Vec<DownloadType> {
        match self {
            ExportKind::Default => vec![DownloadType::Default],
            ExportKind::Audio => vec![DownloadType::Audio],
            ExportKind::Both => vec![DownloadType::Default, DownloadType::Audio],
        }
    }
}

/// `adaptive`, `fixed:1s`, `doubling:1s`.
fn parse_readiness(text: &str) -> Result<cfstream_export::Readiness, String> {
    match text {
        "host" => Ok(cfstream_export::Readiness::Host),
        "api" => Ok(cfstream_export::Readiness::Api),
        other => Err(format!("{other:?}: expected host or api")),
    }
}

fn parse_poll(text: &str) -> Result<cfstream_export::PollPolicy, String> {
    use cfstream_export::PollPolicy;
    let (name, arg) = text.split_once(':').unwrap_or((text, "1s"));
    let d = humantime::parse_duration(arg).map_err(|e| format!("{text:?}: {e}"))?;
    match name {
        "adaptive" => Ok(PollPolicy::default()),
        "fixed" => Ok(PollPolicy::Fixed { interval: d }),
        "doubling" => Ok(PollPolicy::Doubling {
            first: d,
            max: Duration::from_secs(60),
        }),
        _ => Err(format!(
            "{text:?}: adaptive, fixed:DURATION or doubling:DURATION"
        )),
    }
}

/// Which videos (`videos list`).
#[derive(ClapArgs, Debug, Clone)]
pub struct VideoFilters {
    /// Only videos in this processing state.
    #[arg(long, value_name = "STATE", value_parser = clap::builder::PossibleValuesParser::new(VideoState::KNOWN))]
    pub status: Option<String>,
    /// Only videos created after this time (RFC 3339, or a date: 2024-05-01).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub created_after: Option<DateTime<Utc>>,
    /// Only videos created before this time (RFC 3339, or a date).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub created_before: Option<DateTime<Utc>>,
    /// Partial match on the video's name (`meta.name`); slow on large libraries.
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Only videos with this creator id.
    #[arg(long, value_name = "ID")]
    pub creator: Option<String>,
    /// Exact match on the video's name (`meta.name`).
    #[arg(long, value_name = "NAME")]
    pub video_name: Option<String>,
    /// Stop after N videos.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
    /// Oldest first.
    #[arg(long)]
    pub asc: bool,
}

/// RFC 3339 (`2024-05-01T12:00:00Z`), or a date (`2024-05-01`, midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            format!(
                "{text:?} is not an RFC 3339 time (2024-05-01T12:00:00Z) or a date (2024-05-01)"
            )
        })
}

/// `--type`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindArg {
    /// MP4 video.
    Default,
    /// M4A audio.
    Audio,
}

impl From<KindArg> for DownloadType {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Default => DownloadType::Default,
            KindArg::Audio => DownloadType::Audio,
        }
    }
}
