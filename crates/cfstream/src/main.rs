//! `cfstream`: Cloudflare Stream downloads from the shell.
//!
//! Built on the `cloudflare-stream-downloads` client (no second HTTP code
//! path). Exit codes: 0 success; 1 the API answered with an error; 2 usage
//! or invalid input; 3 network, timeout or unexpected answer; 4 the
//! download ended in status `error`.

mod cli;
mod demo;
mod export;
mod keys;
mod log;
mod output;
mod progress;
mod status;
mod verify;
mod videos;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
use cloudflare_stream_downloads::types::DownloadType;
use cloudflare_stream_downloads::{Client, Credentials, Error, Signing, WaitOptions};

use crate::cli::{Args, Command, DownloadsCommand, Global, KindArg};
use crate::output::Output;

/// Exit status of a failed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The API answered with an error.
    Api = 1,
    /// Usage or invalid input.
    Usage = 2,
    /// Network, timeout or unexpected answer.
    Transport = 3,
    /// The download ended in status `error`.
    DownloadFailed = 4,
}

/// Which exit status an error gets.
pub fn exit_for(error: &Error) -> Exit {
    match error {
        Error::Api { .. } | Error::RateLimited { .. } | Error::SignedUrlRefused { .. } => Exit::Api,
        Error::InvalidInput { .. }
        | Error::Config(_)
        | Error::FileBusy { .. }
        | Error::NoSpace { .. } => Exit::Usage,
        Error::DownloadFailed { .. } => Exit::DownloadFailed,
        _ => Exit::Transport,
    }
}

fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let mut args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    args.global.credentials_from_flags = from_command_line(&matches);
    if args.global.request_timeout.is_none() {
        args.global.request_timeout = args.timeout;
    }
    log::init(args.global.verbose, args.global.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            log::error(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(Exit::Transport as u8);
        }
    };
    let out = Output::new(args.global.json, args.global.no_progress);
    match runtime.block_on(run(args, &out)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            out.error(&error);
            ExitCode::from(exit_for(&error) as u8)
        }
    }
}

/// Runs the command; `Ok` holds the exit status (export has more than
/// success and failure).
async fn run(args: Args, out: &Output) -> Result<u8, Error> {
    match args.command {
        Command::Export(export) => {
            return match export.command.clone() {
                Some(cli::ExportCommand::Status(status)) => {
                    status::run(&args.global, status, out).await
                }
                None => export::run(&args.global, *export, out).await,
            };
        }
        Command::Verify(verify) => return verify::run(&args.global, verify, out).await,
        _ => {}
    }
    run_command(args, out).await.map(|()| 0)
}

async fn run_command(args: Args, out: &Output) -> Result<(), Error> {
    match args.command {
        Command::Export(_) | Command::Verify(_) => unreachable!("handled by run"),
        Command::Demo { size, output } => demo::run(&args.global, size.as_u64(), output, out).await,
        Command::Completions { shell } => {
            let mut command = Args::command();
            clap_complete::generate(shell, &mut command, "cfstream", &mut std::io::stdout());
            Ok(())
        }
        Command::Downloads(command) => {
            let client = client(&args.global)?;
            downloads(&client, command, out).await
        }
        Command::Keys(command) => {
            let client = client(&args.global)?;
            keys::run(&client, command, out).await
        }
        Command::Videos(cli::VideosCommand::List(filters)) => {
            let query = videos::query(&filters)?;
            let client = client(&args.global)?;
            videos::list(&client, query, out).await
        }
    }
}

/// Which credential options were given as flags (not from the environment).
fn from_command_line(matches: &clap::ArgMatches) -> Vec<&'static str> {
    ["api_token", "api_key", "user_service_key"]
        .into_iter()
        .filter(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
        .collect()
}

/// The credentials to use: one given by flag beats any from the
/// environment; within each source, token, then e-mail + key, then user
/// service key (the order Cloudflare's SDKs use).
fn credentials(global: &Global) -> Result<Option<Credentials>, Error> {
    let flags = &global.credentials_from_flags;
    for from_flags in [true, false] {
        let here = |id: &str| flags.contains(&id) == from_flags;
        if let Some(token) = global.api_token.as_ref().filter(|_| here("api_token")) {
            return Ok(Some(Credentials::ApiToken(token.clone())));
        }
        if let Some(key) = global.api_key.as_ref().filter(|_| here("api_key")) {
            let Some(email) = &global.api_email else {
                return Err(Error::Config(
                    "an API key needs its e-mail: --api-email or CLOUDFLARE_EMAIL".into(),
                ));
            };
            return Ok(Some(Credentials::ApiKey {
                email: email.clone(),
                key: key.clone(),
            }));
        }
        if let Some(key) = global
            .user_service_key
            .as_ref()
            .filter(|_| here("user_service_key"))
        {
            return Ok(Some(Credentials::UserServiceKey(key.clone())));
        }
    }
    Ok(None)
}

/// The client from the global options (clap has already read the
/// environment into them).
pub fn client(global: &Global) -> Result<Client, Error> {
    client_builder(global)?.build()
}

/// The client's builder from the global options (credentials required).
pub fn client_builder(
    global: &Global,
) -> Result<cloudflare_stream_downloads::ClientBuilder, Error> {
    let mut builder = Client::builder();
    match credentials(global)? {
        Some(c) => builder = builder.credentials(c),
        None => {
            return Err(Error::Config(
                "no credentials: give --api-token (or CLOUDFLARE_API_TOKEN), --api-email and \
                 --api-key (CLOUDFLARE_EMAIL, CLOUDFLARE_API_KEY), or --user-service-key \
                 (CLOUDFLARE_API_USER_SERVICE_KEY)"
                    .into(),
            ));
        }
    }
    if let Some(url) = &global.base_url {
        builder = builder.base_url(url);
    }
    if let Some(account) = &global.account_id {
        builder = builder.account_id(account);
    }
    if let Some(retries) = global.retries {
        builder = builder.max_retries(retries);
    }
    if let Some(timeout) = global.request_timeout {
        builder = builder.request_timeout(timeout);
    }
    if let Some(key) = keys::signing_key(global)? {
        builder = builder.signing_key(key);
    }
    Ok(builder)
}

fn kind_of(arg: Option<KindArg>) -> Option<DownloadType> {
    arg.map(DownloadType::from)
}

async fn downloads(client: &Client, command: DownloadsCommand, out: &Output) -> Result<(), Error> {
    match command {
        DownloadsCommand::Create { video_id, kind } => {
            let downloads = match kind_of(kind) {
                Some(kind) => client.create_download(&video_id, kind).await?,
                None => client.create_downloads(&video_id).await?,
            };
            out.downloads(&video_id, &downloads);
        }
        DownloadsCommand::List { video_id } => {
            let downloads = client.list_downloads(&video_id).await?;
            out.downloads(&video_id, &downloads);
        }
        DownloadsCommand::Delete { video_id, kind } => {
            match kind_of(kind) {
                Some(kind) => client.delete_download(&video_id, kind).await?,
                None => client.delete_downloads(&video_id).await?,
            }
            out.deleted(&video_id, kind_of(kind));
        }
        DownloadsCommand::Wait {
            video_id,
            kind,
            timeout,
        } => {
            let kind = kind_of(kind).unwrap_or(DownloadType::Default);
            let ready = wait(client, &video_id, kind, timeout, false, DEFAULT_POLLS, out).await?;
            out.ready(&video_id, kind, &ready);
        }
        DownloadsCommand::Fetch {
            video_id,
            kind,
            output,
        } => {
            let kind = kind_of(kind).unwrap_or(DownloadType::Default);
            let path = destination(output, &video_id, kind)?;
            fetch(client, &video_id, kind, &path, DEFAULT_POLLS, out).await?;
        }
    }
    Ok(())
}

/// Where `fetch` saves: `-o FILE`; `-o DIR` (an existing directory, or a
/// path ending in `/`, created if needed) holds `<VIDEO_ID>.mp4`/`.m4a`;
/// without `-o`, that name here.
pub fn destination(
    output: Option<PathBuf>,
    video_id: &str,
    kind: DownloadType,
) -> Result<PathBuf, Error> {
    let Some(output) = output else {
        return Ok(default_path(video_id, kind));
    };
    let text = output.as_os_str().to_string_lossy();
    let as_dir = text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR);
    if as_dir && !output.exists() {
        std::fs::create_dir_all(&output).map_err(|e| destination_error(&output, e.to_string()))?;
    }
    if output.is_dir() {
        // Ids are checked before any request; this one must not escape DIR.
        cloudflare_stream_downloads::check_id("video id", video_id)?;
        return Ok(output.join(default_path(video_id, kind)));
    }
    Ok(output)
}

/// A destination that cannot be written: usage (exit 2), before any request.
fn destination_error(path: &std::path::Path, reason: String) -> Error {
    Error::InvalidInput {
        what: "destination",
        reason: format!("{}: {reason}", path.display()),
    }
}

/// `<VIDEO_ID>.mp4` or `.m4a` in the current directory.
/// (The export names its files the same way.)
pub fn default_path(video_id: &str, kind: DownloadType) -> PathBuf {
    PathBuf::from(cfstream_export::file_name(video_id, kind))
}

/// Poll intervals of wait and fetch: the client's defaults (1 s doubling to 10 s).
const DEFAULT_POLLS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(10));

async fn wait(
    client: &Client,
    video_id: &str,
    kind: DownloadType,
    timeout: Duration,
    create: bool,
    (first_poll, max_poll): (Duration, Duration),
    out: &Output,
) -> Result<cloudflare_stream_downloads::types::Download, Error> {
    let bar = out.percent_bar(&format!("{kind} download of {video_id}"));
    let updates = bar.clone();
    let options = WaitOptions::default()
        .intervals(first_poll, max_poll)
        .timeout(timeout)
        .create_if_missing(create)
        .on_progress(move |d| updates.set_position(d.percent_complete.round() as u64));
    let result = client.wait_until_ready(video_id, kind, options).await;
    bar.finish_and_clear();
    result
}

/// Create if needed, wait, then stream the file to `path`.
pub async fn fetch(
    client: &Client,
    video_id: &str,
    kind: DownloadType,
    path: &std::path::Path,
    polls: (Duration, Duration),
    out: &Output,
) -> Result<(), Error> {
    // Before anything is created or waited for: can the file be written,
    // and is no other fetch writing it?
    cloudflare_stream_downloads::check_destination(path).map_err(|e| match e {
        Error::Io { path, source } => destination_error(&path, source.to_string()),
        other => other,
    })?;
    out.step(&format!("waiting for the {kind} download of {video_id}"));
    let ready = wait(
        client,
        video_id,
        kind,
        Duration::from_secs(600),
        true,
        polls,
        out,
    )
    .await?;
    out.step(&format!("downloading to {}", path.display()));
    let bar = out.bytes_bar();
    let url = ready.url.as_deref().ok_or_else(|| Error::InvalidInput {
        what: "download",
        reason: "it has no url".into(),
    })?;
    // Signing::Auto: a video that requires signed URLs is learned from the
    // download host's 401 (a request to the host, not to the API).
    let report = client
        .fetch_video_url(video_id, url, Signing::Auto, path, |done, total| {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(done);
        })
        .await;
    bar.finish_and_clear();
    out.fetched(&report?);
    Ok(())
}
