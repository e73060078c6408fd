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

pub mod dest;
mod driver;
pub mod engine;
pub mod error;
pub mod host;
pub mod limiter;
pub mod lock;
pub mod machine;
pub mod poll;
pub mod reconcile;
mod select;
pub mod shard;
pub mod state;
pub mod store;
pub mod transfer;

pub use dest::{Destination, default_state_path};
pub use engine::{
    ExportOptions, Exporter, Failure, Observer, Planned, Progress, Readiness, Selection, Summary,
    file_name,
};
pub use error::ExportError;
pub use host::{HostStats, ProbePolicy};
pub use limiter::Rate;
pub use poll::PollPolicy;
pub use shard::Shard;
