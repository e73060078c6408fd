//! What can end an export run as a whole (a single video's failure never
//! does: it is recorded and the run goes on).

use std::path::PathBuf;

/// An error that stops the run.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The state database could not be read or written.
    #[error("state database {}: {source}", path.display())]
    State {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },

    /// The state database holds something this build cannot have written.
    #[error("state database {}: {what}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },

    /// The state database has another schema version.
    #[error(
        "state database {}: schema version {found}, this cfstream knows version {known}{}",
        path.display(),
        if *found > *known { " (written by a newer cfstream)" } else { "" }
    )]
    Schema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// [`crate::state::SCHEMA_VERSION`].
        known: i64,
    },

    /// Another export runs in the same directory.
    #[error(
        "another export is running in {}{}: one run per directory (lock {})",
        dir.display(),
        holder.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        lock.display()
    )]
    Busy {
        /// The export directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The pid recorded by the holder, when readable.
        holder: Option<u32>,
    },

    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },

    /// An option or id was refused before any request.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was wrong.
        what: &'static str,
        /// Why.
        reason: String,
    },

    /// The destination (an object store) refused or failed a request,
    /// after the store client's own retries.
    #[error("destination {url}: {doing}: {source}")]
    Destination {
        /// The destination's URL.
        url: String,
        /// What the run was doing.
        doing: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// The selection (the listing) failed, or the API stayed unreachable:
    /// a failure of the run as a whole, not of one video.
    #[error("{context}: {source}")]
    Api {
        /// What the run was doing.
        context: String,
        /// The client's error (boxed: it is large, and rare).
        #[source]
        source: Box<cloudflare_stream_downloads::Error>,
    },
}

impl ExportError {
    /// Whether the error is the destination being unreachable (exit 3),
    /// rather than refused or misconfigured (exit 2).
    pub fn destination_unreachable(&self) -> bool {
        matches!(self, ExportError::Destination { source, .. }
            if matches!(**source, object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }))
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ExportError::Io { path, source }
    }
}
