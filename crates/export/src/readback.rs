//! The archive read back, for `verify` and `status`: what a destination
//! holds (a directory's files, a prefix's objects), each file read whole
//! or checked as the export checks it. Nothing here asks Stream anything.
//!
//! The archive is the files of the videos (`<uid>.mp4`, `.m4a`,
//! `.<language>.vtt`, `.json`) and `account.json`. Not part of it: the run
//! reports (`.cfstream/`), and in a directory the export's state and lock
//! and the `.part` files of transfers in flight.

use futures_util::StreamExt;

use crate::dest::{Destination, sha256_file};
use crate::error::ExportError;
use crate::state::STATE_FILE;

/// A file of the archive: its name (relative to the directory or prefix)
/// and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Whether `name` (top level of a directory) is the export's own, not the
/// archive's.
fn bookkeeping(name: &str) -> bool {
    name.starts_with(STATE_FILE)
        || name == "cfstream-export.lock"
        || name.ends_with(".part")
        || name.ends_with(".part.source")
}

/// The video a file belongs to by its name (`<uid>.…`), if any.
pub fn owner(name: &str) -> Option<&str> {
    let (uid, _) = name.split_once('.')?;
    cloudflare_stream_downloads::check_id("video id", uid)
        .ok()
        .map(|()| uid)
}

impl Destination {
    /// Every file of the archive (see the module documentation).
    pub async fn list_archive(&self) -> Result<Vec<Listed>, ExportError> {
        match self {
            Destination::Dir(dir) => {
                let entries = std::fs::read_dir(dir).map_err(ExportError::io(dir))?;
                let mut out = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(ExportError::io(dir))?;
                    let meta = entry.metadata().map_err(ExportError::io(&entry.path()))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if meta.is_file() && !bookkeeping(&name) {
                        out.push(Listed {
                            name,
                            size: meta.len(),
                        });
                    }
                }
                Ok(out)
            }
            Destination::Store(dest) => {
                let mut listing = dest.store.list(Some(&dest.prefix));
                let mut out = Vec::new();
                while let Some(meta) = listing.next().await {
                    let meta = meta.map_err(|e| dest.error("listing the prefix", e))?;
                    let Some(rest) = meta.location.prefix_match(&dest.prefix) else {
                        continue;
                    };
                    let parts: Vec<String> = rest.map(|p| p.as_ref().to_owned()).collect();
                    if parts.first().is_some_and(|p| p == ".cfstream")
                        || parts
                            .last()
                            .is_some_and(|p| p.starts_with(".cfstream-probe-"))
                    {
                        continue;
                    }
                    out.push(Listed {
                        name: parts.join("/"),
                        size: meta.size,
                    });
                }
                Ok(out)
            }
        }
    }

    /// A small file read whole (a sidecar, a caption); `None` when gone.
    pub async fn read_whole(&self, name: &str) -> Result<Option<Vec<u8>>, ExportError> {
        match self {
            Destination::Dir(dir) => match std::fs::read(dir.join(name)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ExportError::io(&dir.join(name))(e)),
            },
            Destination::Store(dest) => dest.get_small(name).await,
        }
    }

    /// Checks a media file as the export does (its top-level boxes tile
    /// it) and reads it whole for its SHA-256, streaming: the SHA-256, or
    /// what is wrong.
    pub async fn check_media(
        &self,
        name: &str,
        size: u64,
    ) -> Result<Result<String, String>, ExportError> {
        match self {
            Destination::Dir(dir) => {
                let path = dir.join(name);
                let checked = tokio::task::spawn_blocking(move || -> Result<String, String> {
                    cloudflare_stream_downloads::media::check_file(&path)
                        .map_err(|e| e.to_string())?;
                    sha256_file(&path).map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(format!("checker panicked: {e}")));
                Ok(checked)
            }
            Destination::Store(dest) => dest.check_object(name, size, None).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_belong_to_the_video_their_name_starts_with() {
        assert_eq!(owner("abc123.mp4"), Some("abc123"));
        assert_eq!(owner("abc123.pt-BR.vtt"), Some("abc123"));
        assert_eq!(owner("account.json"), Some("account"));
        assert_eq!(owner("no-dot"), None);
        assert_eq!(owner("bad id.mp4"), None);
        assert!(bookkeeping("cfstream-export.sqlite-wal"));
        assert!(bookkeeping("a.mp4.part"));
        assert!(!bookkeeping("a.mp4"));
    }
}
