//! How one file of an export goes, as a pure state machine.
//!
//! ```text
//! selected ──Created──▶ created ──Ready──▶ ready ──Fetched──▶ fetched ──Verified──▶ done
//!     │  └────────────Ready (the create answer said ready)──▶ ready
//!     └─ any state but done ──Failed──▶ failed ──Retry──▶ selected
//! done ──Vanished (the file is gone or has another size)──▶ selected
//! ```
//!
//! The store ([`crate::state::Store`]) applies every change through
//! [`FileState::apply`], so the rules below hold for the database too:
//! `done` is reached only from `fetched` by `Verified` of the same size, and
//! a done file leaves `done` only when the file on disk is not what was
//! recorded (`Vanished`). Nothing else (a failure, a retry, a second create)
//! can undo a done file.

use std::fmt;

/// Where one file (a video × a download type) of an export stands.
#[derive(Debug, Clone, PartialEq)]
pub enum FileState {
    /// In the selection; nothing asked of the API yet.
    Selected,
    /// The download is created and generating.
    Created {
        /// Its last reported `percentComplete`.
        percent: f64,
    },
    /// The download is ready at `url`.
    Ready {
        /// The download URL.
        url: String,
    },
    /// The whole file is in place (its size matched `Content-Length`),
    /// not verified yet.
    Fetched {
        /// The download URL.
        url: String,
        /// Its size.
        size: u64,
    },
    /// Verified and recorded.
    Done {
        /// The download URL.
        url: String,
        /// Its size.
        size: u64,
        /// SHA-256 of the file as written, lowercase hex.
        sha256: String,
    },
    /// Given up on, for this run, for `reason`.
    Failed {
        /// Why, for people.
        reason: String,
    },
}

/// What can happen to a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The download was created (or polled) and is generating.
    Created {
        /// `percentComplete`.
        percent: f64,
    },
    /// The download is ready.
    Ready {
        /// Its URL.
        url: String,
    },
    /// The file is in place with this size.
    Fetched {
        /// Its size.
        size: u64,
    },
    /// The file in place passed verification.
    Verified {
        /// Its size as verified.
        size: u64,
        /// SHA-256, lowercase hex.
        sha256: String,
    },
    /// This file failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// `--retry-failed`: a failed file goes back to the start.
    Retry,
    /// A done file is missing on disk or has another size.
    Vanished,
}

/// An event that does not apply to a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Illegal {
    /// The state's name.
    pub state: &'static str,
    /// The event.
    pub event: String,
}

impl fmt::Display for Illegal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} does not apply to a {} file", self.event, self.state)
    }
}

impl std::error::Error for Illegal {}

impl FileState {
    /// The state's name, as stored in the `files.state` column.
    pub fn name(&self) -> &'static str {
        match self {
            FileState::Selected => "selected",
            FileState::Created { .. } => "created",
            FileState::Ready { .. } => "ready",
            FileState::Fetched { .. } => "fetched",
            FileState::Done { .. } => "done",
            FileState::Failed { .. } => "failed",
        }
    }

    /// Whether the file is done.
    pub fn is_done(&self) -> bool {
        matches!(self, FileState::Done { .. })
    }

    /// The state after `event`, or why it does not apply.
    pub fn apply(&self, event: &Event) -> Result<FileState, Illegal> {
        use FileState as S;
        let next = match (self, event) {
            // A download is (re)created from the start, or polled while it
            // generates; a download URL can only be learnt before the file
            // is fetched.
            (S::Selected | S::Created { .. }, Event::Created { percent }) => {
                S::Created { percent: *percent }
            }
            (S::Selected | S::Created { .. } | S::Ready { .. }, Event::Ready { url }) => {
                S::Ready { url: url.clone() }
            }
            (S::Ready { url }, Event::Fetched { size }) => S::Fetched {
                url: url.clone(),
                size: *size,
            },
            (S::Fetched { url, size }, Event::Verified { size: v, sha256 }) if size == v => {
                S::Done {
                    url: url.clone(),
                    size: *size,
                    sha256: sha256.clone(),
                }
            }
            (s, Event::Failed { reason }) if !s.is_done() => S::Failed {
                reason: reason.clone(),
            },
            (S::Failed { .. }, Event::Retry) => S::Selected,
            (S::Done { .. }, Event::Vanished) => S::Selected,
            // A crash after the rename and before the verification: the
            // file is fetched again only if it is gone.
            (S::Fetched { .. }, Event::Vanished) => S::Selected,
            _ => {
                return Err(Illegal {
                    state: self.name(),
                    event: format!("{event:?}"),
                });
            }
        };
        Ok(next)
    }
}
