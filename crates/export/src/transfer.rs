//! The transfer of a ready file to its destination, its verification,
//! and the `<uid>.json` sidecar.

use std::path::Path;
use std::sync::atomic::Ordering;

use cloudflare_stream_downloads::types::DownloadType;
use cloudflare_stream_downloads::{Signing, media};
use serde::Serialize;

use crate::attempt::Step;
use crate::dest::{Destination, ObjectDest, file_name, sha256_file, write_atomically};
use crate::error::ExportError;
use crate::extras::Extras;
use crate::machine::{Event, FileState};
use crate::report::Progress;
use crate::run::{Outcome, Run};
use crate::state::{VideoRow, type_name};
use crate::store::UploadError;

impl Run {
    /// Takes a ready (or fetched) file to done, or failed, through the
    /// destination.
    pub(crate) async fn transfer(
        &self,
        uid: &str,
        kind: DownloadType,
        mut state: FileState,
        signing: Signing,
    ) -> Result<FileState, ExportError> {
        match &self.options.dest {
            Destination::Dir(dir) => {
                if let FileState::Ready { url } = state.clone() {
                    state = self.fetch(dir, uid, kind, &url, signing).await?;
                }
                if let FileState::Fetched { size, .. } = state.clone() {
                    state = self.verify(dir, uid, kind, size).await?;
                }
            }
            Destination::Store(dest) => {
                let mut sha256 = None;
                if let FileState::Ready { url } = state.clone() {
                    (state, sha256) = self.upload(dest, uid, kind, &url, signing).await?;
                }
                if let FileState::Fetched { size, .. } = state.clone() {
                    state = self.verify_object(dest, uid, kind, size, sha256).await?;
                }
            }
        }
        Ok(state)
    }

    /// Streams a ready file into the bucket ([`ObjectDest::upload`]),
    /// trying again as a local fetch does; returns its state and, when
    /// known, its SHA-256.
    async fn upload(
        &self,
        dest: &ObjectDest,
        uid: &str,
        kind: DownloadType,
        url: &str,
        signing: Signing,
    ) -> Result<(FileState, Option<String>), ExportError> {
        let name = file_name(uid, kind);
        let mut attempts = 0;
        loop {
            // A transfer slot per attempt (as a local fetch's).
            let permit = self.transfers.acquire().await;
            (self.observer)(Progress::TransferStarted {
                video_id: uid.to_owned(),
                kind,
            });
            let observer = self.observer.clone();
            let mut progress = |bytes, total| {
                observer(Progress::Transfer {
                    video_id: uid.to_owned(),
                    kind,
                    bytes,
                    total,
                })
            };
            let source = crate::store::Source {
                client: &self.client,
                video_id: uid,
                url,
                signing,
            };
            let result = dest
                .upload(&source, &self.store, &name, &mut progress)
                .await;
            drop(permit);
            (self.observer)(Progress::TransferEnded {
                video_id: uid.to_owned(),
                kind,
            });
            match result {
                Ok(uploaded) => {
                    self.unreachable.store(0, Ordering::Relaxed);
                    self.bytes.fetch_add(uploaded.fetched, Ordering::Relaxed);
                    let state = self.store.apply(
                        uid,
                        kind,
                        &Event::Fetched {
                            size: uploaded.size,
                        },
                    )?;
                    return Ok((state, uploaded.sha256));
                }
                Err(UploadError::Store(e)) => return Err(e),
                // (upload() starts over once itself and reports a second
                // disappearance as a store error: not seen here.)
                Err(UploadError::Gone) => {
                    return Err(dest.error(
                        format!("uploading {name}"),
                        object_store::Error::Generic {
                            store: "cfstream",
                            source: "the multipart upload vanished".into(),
                        },
                    ));
                }
                Err(UploadError::Source(e)) => {
                    if let Some(reason) = self.on_error(e, Step::File, &mut attempts).await? {
                        self.fail(uid, kind, reason.clone())?;
                        return Ok((FileState::Failed { reason }, None));
                    }
                }
            }
        }
    }

    /// Checks an uploaded object ([`ObjectDest::check_object`]); a wrong
    /// one is deleted and its file fails.
    async fn verify_object(
        &self,
        dest: &ObjectDest,
        uid: &str,
        kind: DownloadType,
        size: u64,
        sha256: Option<String>,
    ) -> Result<FileState, ExportError> {
        let name = file_name(uid, kind);
        match dest.check_object(&name, size, sha256).await? {
            Ok(sha256) => self.verified(uid, kind, size, sha256),
            Err(why) => {
                dest.delete(&self.store, &name).await?;
                let reason = format!("verification failed: {why}");
                self.fail(uid, kind, reason.clone())?;
                Ok(FileState::Failed { reason })
            }
        }
    }

    fn verified(
        &self,
        uid: &str,
        kind: DownloadType,
        size: u64,
        sha256: String,
    ) -> Result<FileState, ExportError> {
        let state = self
            .store
            .apply(uid, kind, &Event::Verified { size, sha256 })?;
        self.done.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            video = uid,
            kind = type_name(kind),
            bytes = size,
            "file done"
        );
        (self.observer)(Progress::Done {
            video_id: uid.to_owned(),
            kind,
            bytes: size,
        });
        Ok(state)
    }

    async fn fetch(
        &self,
        dir: &Path,
        uid: &str,
        kind: DownloadType,
        url: &str,
        signing: Signing,
    ) -> Result<FileState, ExportError> {
        let path = dir.join(file_name(uid, kind));
        let mut attempts = 0;
        loop {
            // A transfer slot per attempt: the backoff after a failure
            // (a flaky host) is waited out without one.
            let permit = self.transfers.acquire().await;
            (self.observer)(Progress::TransferStarted {
                video_id: uid.to_owned(),
                kind,
            });
            let observer = self.observer.clone();
            let id = uid.to_owned();
            let result = self
                .client
                .fetch_video_url(uid, url, signing, &path, move |bytes, total| {
                    observer(Progress::Transfer {
                        video_id: id.clone(),
                        kind,
                        bytes,
                        total,
                    });
                })
                .await;
            drop(permit);
            (self.observer)(Progress::TransferEnded {
                video_id: uid.to_owned(),
                kind,
            });
            match result {
                Ok(report) => {
                    self.unreachable.store(0, Ordering::Relaxed);
                    self.bytes
                        .fetch_add(report.bytes - report.resumed_from, Ordering::Relaxed);
                    return self
                        .store
                        .apply(uid, kind, &Event::Fetched { size: report.bytes });
                }
                Err(e) => {
                    if let Some(reason) = self.on_error(e, Step::File, &mut attempts).await? {
                        self.fail(uid, kind, reason.clone())?;
                        return Ok(FileState::Failed { reason });
                    }
                }
            }
        }
    }

    async fn verify(
        &self,
        dir: &Path,
        uid: &str,
        kind: DownloadType,
        size: u64,
    ) -> Result<FileState, ExportError> {
        let path = dir.join(file_name(uid, kind));
        let checked = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> Result<String, String> {
                let len = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
                if len != size {
                    return Err(format!("{len} bytes on disk, {size} fetched"));
                }
                media::check_file(&path).map_err(|e| e.to_string())?;
                sha256_file(&path).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(format!("verifier panicked: {e}")))
        };
        match checked {
            Ok(sha256) => self.verified(uid, kind, size, sha256),
            Err(why) => {
                // The file is not what it should be: it goes, so that a
                // retry fetches it whole.
                let _ = std::fs::remove_file(&path);
                let reason = format!("verification failed: {why}");
                self.fail(uid, kind, reason.clone())?;
                Ok(FileState::Failed { reason })
            }
        }
    }

    /// Writes `<uid>.json` when every selected type of the video is done:
    /// in a directory atomically (a temporary file, fsynced, renamed), in a
    /// bucket by a conditional create (see [`crate::store`]).
    pub(crate) async fn write_metadata(&self, uid: &str) -> Outcome {
        match self.store.video(uid)? {
            Some(row) => self.write_metadata_of(&row, false).await,
            None => Ok(()),
        }
    }

    /// [`write_metadata`](Self::write_metadata) of a row. `settled`: the
    /// video was done before this run; a bucket's listed sidecar is then
    /// left as it is (no request per video on a re-run).
    pub(crate) async fn write_metadata_of(&self, row: &VideoRow, settled: bool) -> Outcome {
        let uid = row.uid.as_str();
        let done: Vec<_> = row
            .files
            .iter()
            .filter(|(k, _)| self.options.types.contains(k))
            .collect();
        if done.is_empty() || !done.iter().all(|(_, s)| s.is_done()) {
            return Ok(());
        }
        let text = metadata_json(row);
        let dir = match &self.options.dest {
            Destination::Dir(dir) => dir,
            Destination::Store(dest) => {
                let key = dest.key(&format!("{uid}.json"));
                if settled && self.store.object_size(key.as_ref())?.is_some() {
                    return Ok(());
                }
                let doc: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                dest.write_sidecar(uid, &doc).await?;
                return self
                    .store
                    .add_objects(&[(key.to_string(), text.len() as u64)]);
            }
        };
        let name = format!("{uid}.json");
        if std::fs::read_to_string(dir.join(&name)).is_ok_and(|t| t == text) {
            return Ok(());
        }
        write_atomically(dir, &name, text.as_bytes())
    }
}

/// `<uid>.json`: the video as listed (for a video given by id, its details
/// from `GET …/stream/{id}`; `null` only when they could not be had), per
/// type the download's URL (unsigned: never a token), file, size and
/// SHA-256, and, once known, its `captions` (language, label, generated,
/// status; for a written one its file, size and SHA-256) and
/// `audio_tracks` (uid, label, default, status) ([`Extras`]).
pub fn metadata_json(row: &VideoRow) -> String {
    let video = row
        .listed
        .as_deref()
        .and_then(|j| serde_json::value::RawValue::from_string(j.to_owned()).ok());
    let mut downloads = serde_json::Map::new();
    for (kind, state) in &row.files {
        if let FileState::Done { url, size, sha256 } = state {
            downloads.insert(
                type_name(*kind).to_owned(),
                serde_json::json!({
                    "file": file_name(&row.uid, *kind),
                    "url": url,
                    "size": size,
                    "sha256": sha256,
                }),
            );
        }
    }
    #[derive(Serialize)]
    struct Doc<'a> {
        uid: &'a str,
        video: Option<Box<serde_json::value::RawValue>>,
        downloads: serde_json::Map<String, serde_json::Value>,
        #[serde(flatten)]
        extras: Extras,
    }
    let mut text = serde_json::to_string_pretty(&Doc {
        uid: &row.uid,
        video,
        downloads,
        extras: Extras::parse(row.extras.as_deref()),
    })
    .unwrap_or_default();
    text.push('\n');
    text
}
