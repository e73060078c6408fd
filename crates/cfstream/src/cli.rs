//! The command line, exactly as scripts rely on it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use cloudflare_stream_downloads::types::DownloadType;

const ENVIRONMENT: &str = "\
Environment (flags win over it):
  CLOUDFLARE_API_TOKEN             API token (preferred)
  CLOUDFLARE_EMAIL + CLOUDFLARE_API_KEY
                                   global API key and its account e-mail
  CLOUDFLARE_API_USER_SERVICE_KEY  user service key
  CLOUDFLARE_ACCOUNT_ID            the account to act on
  CLOUDFLARE_BASE_URL              API base URL (default https://api.cloudflare.com/client/v4)

Exit status: 0 ok, 1 the API answered with an error, 2 usage or invalid input,
3 network/timeout/unexpected answer, 4 the download ended in status `error`.";

/// Cloudflare Stream downloads (MP4 and M4A files of a video) from the shell.
#[derive(Parser, Debug)]
#[command(name = "cfstream", version, about, after_help = ENVIRONMENT)]
pub struct Args {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options before the subcommand.
#[derive(ClapArgs, Debug, Clone)]
pub struct Global {
    /// Account id.
    #[arg(long, env = "CLOUDFLARE_ACCOUNT_ID", value_name = "ID")]
    pub account_id: Option<String>,
    /// API token (sent as `Authorization: Bearer`).
    #[arg(
        long,
        env = "CLOUDFLARE_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub api_token: Option<String>,
    /// E-mail of the global API key.
    #[arg(long, env = "CLOUDFLARE_EMAIL", value_name = "EMAIL")]
    pub api_email: Option<String>,
    /// Global API key (with --api-email).
    #[arg(
        long,
        env = "CLOUDFLARE_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// User service key.
    #[arg(
        long,
        env = "CLOUDFLARE_API_USER_SERVICE_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub user_service_key: Option<String>,
    /// API base URL (https, or http on loopback).
    #[arg(long, env = "CLOUDFLARE_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,
    /// Print the result as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Never draw progress bars (they are drawn only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Log to stderr: -v info, -vv every request, -vvv trace.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Retries of a failed request (default 2).
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Timeout of one API request (default 60s), e.g. 30s.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
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
        /// Where to save it (default: <VIDEO_ID>.mp4 or .m4a here).
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
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
