//! The object-store destination's operations, one concern a file: the
//! preflight and the prefix listed into the state (`objects.rs`), the
//! sidecars (`sidecar.rs`), the streamed multipart upload (`upload.rs`) from
//! the download host (`source.rs`), the check of an uploaded object
//! (`check.rs`), and the uploads left open by other runs, taken over or
//! aborted (`takeover.rs`).
//!
//! **The bucket is the truth, the state a cache.** The objects under a
//! prefix are each video's media, `.vtt` captions and `<uid>.json`
//! sidecar, and `account.json`; beside them, under `.cfstream/runs/`, the
//! run reports ([`crate::runs`]), which the read-back skips. A file is
//! done in the
//! bucket when its object and its `<uid>.json` sidecar (which records its
//! size and SHA-256) agree; the sidecar is written only after the object is
//! complete and checked. A run starts by listing the prefix into the
//! state (`objects`), adopting as done every file a sidecar vouches for,
//! and aborting the multipart uploads in flight under the prefix that its
//! state does not know (S3 and R2: a run killed on another machine).
//!
//! **Uploads.** The download host's body goes into a multipart upload part
//! by part, never through local disk: parts of one size (all but the last
//! equal, as R2 requires; [`part_size_for`]), at most
//! [`PARTS_IN_FLIGHT`] uploading per transfer, each with its SHA-256 for
//! the store to verify (`x-amz-checksum-sha256`). Each finished part is
//! recorded in the state before it is counted on; a later run with that
//! state continues the upload from the first missing part, asking the
//! download host for that range only (`If-Range` with the recorded
//! validator: a changed file starts over); a run with a fresh state takes
//! over the uploads it finds open under the prefix instead
//! (`ObjectDest::take_over_uploads`). The object appears only when the
//! upload completes; its size is checked then.

mod check;
mod objects;
mod sidecar;
mod source;
mod takeover;
mod upload;

use object_store::path::Path as ObjectPath;

use crate::dest::ObjectDest;
use crate::error::ExportError;

pub(crate) use source::Source;
pub(crate) use upload::UploadError;
pub use upload::{MAX_PARTS, MIN_PART, PARTS_IN_FLIGHT, part_size_for};

/// Lowercase hex of a digest.
pub(crate) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl ObjectDest {
    /// The key of `name` under the prefix.
    pub(crate) fn key(&self, name: &str) -> ObjectPath {
        self.prefix.clone().join(name)
    }

    pub(crate) fn error(
        &self,
        doing: impl Into<String>,
        source: object_store::Error,
    ) -> ExportError {
        ExportError::Destination {
            url: self.url.clone(),
            doing: doing.into(),
            source: Box::new(source),
        }
    }
}
