//! `cfstream-export`: every Stream download of an account (or a chosen
//! part) to a directory or a bucket ([`dest`]), resumable, inside
//! Cloudflare's rate limit.
//!
//! The engine behind `cfstream export`. The client crate
//! (`cloudflare-stream-downloads`) does the requests; this crate adds what
//! an export of 100,000 videos needs and a client should not carry: the
//! run's state in SQLite ([`state`]), one rate limiter for every API request
//! ([`limiter`]), polling that spends few requests ([`poll`]), a stable split
//! between machines ([`shard`], `--shard auto` from a batch engine's
//! environment) and one run per directory or state ([`lock`]). Into an
//! object store ([`store`]), parts stream from the download host into a
//! multipart upload, and the bucket, not the state, is the truth
//! ([`reconcile`]).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use cfstream_export::{ExportOptions, Exporter, Selection};
//! use cloudflare_stream_downloads::{Client, VideoQuery};
//!
//! let exporter = Exporter::new(ExportOptions::new("export", Selection::All(VideoQuery::all())))?;
//! let client = exporter.client(Client::builder().from_env())?;
//! let (_stop, stop) = tokio::sync::watch::channel(false);
//! let summary = exporter.run(client, std::sync::Arc::new(|_| {}), stop).await?;
//! println!("{} done, {} failed", summary.done, summary.failed.len());
//! # Ok(()) }
//! ```

// Bottom to top (ARCHITECTURE.md; `cargo xtask modgraph` checks that no
// module imports one above it).
// What every layer uses: errors, the state, the file states, the limiter,
// polling, shards, the lock, the download host's probes, destinations.
pub mod dest;
pub mod error;
pub mod extras;
pub mod host;
pub mod limiter;
pub mod lock;
pub mod machine;
pub mod poll;
pub mod shard;
pub mod state;
pub mod store;
// The run's shared types and context.
mod attempt;
mod listed;
pub mod options;
pub mod report;
mod run;
pub mod runs;
// The steps: select the videos, drive a video's files, transfer one file,
// read a destination back.
pub mod account;
mod captions;
mod driver;
pub mod readback;
pub mod reconcile;
mod select;
pub mod transfer;
// The run on top; and the archive checked (verify) and told (status).
pub mod engine;
pub mod status;
pub mod verify;

pub use dest::{Destination, default_state_path, file_name};
pub use engine::Exporter;
pub use error::ExportError;
pub use host::{HostStats, ProbePolicy};
pub use limiter::Rate;
pub use options::{Captions, ExportOptions, Readiness, Selection};
pub use poll::PollPolicy;
pub use report::{Failure, FailureGroup, Observer, Planned, Progress, Summary, group_failures};
pub use shard::Shard;
