//! The streamed multipart upload: the download host's body into parts of
//! one size (each with its SHA-256), at most [`PARTS_IN_FLIGHT`] uploading
//! per transfer, each recorded in the state before it is counted on, and
//! continued from the first missing part by a later run with that state.

use bytes::{Bytes, BytesMut};
use cloudflare_stream_downloads::{Error, RequestSummary};
use object_store::PutPayload;
use object_store::multipart::PartId;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::hex;
use super::source::{SOURCE_RETRIES, Source, source_backoff};
use crate::dest::ObjectDest;
use crate::error::ExportError;
use crate::state::{Part, Store, Upload};

/// Parts uploading at once per transfer. With the part being filled,
/// a transfer holds at most `PARTS_IN_FLIGHT + 1` parts in memory.
pub const PARTS_IN_FLIGHT: usize = 2;

/// The smallest part (S3 and R2 refuse smaller parts but the last).
pub const MIN_PART: u64 = 8 << 20;

/// The most parts an upload may have (S3, R2).
pub const MAX_PARTS: u64 = 10_000;

/// The part size for a file of `total` bytes: [`MIN_PART`], or larger (a
/// whole number of MiB) so that the file fits in [`MAX_PARTS`] parts; a
/// 5 TiB file gets 525 MiB parts. Unknown size: `MIN_PART` (files to
/// 78 GiB).
pub fn part_size_for(total: Option<u64>) -> u64 {
    let mib = 1u64 << 20;
    let needed = total.unwrap_or(0).div_ceil(MAX_PARTS).div_ceil(mib) * mib;
    needed.max(MIN_PART)
}

/// A finished upload.
#[derive(Debug)]
pub(crate) struct Uploaded {
    /// The object's size.
    pub size: u64,
    /// SHA-256 of the file, when this upload streamed all of it (a
    /// continued upload did not: the object is read back for it).
    pub sha256: Option<String>,
    /// Bytes asked of the download host by this call.
    pub fetched: u64,
}

/// Why an upload stopped.
#[derive(Debug)]
pub(crate) enum UploadError {
    /// The download host's side (classified like a local fetch's errors).
    Source(Error),
    /// The store: the run cannot go on.
    Store(ExportError),
    /// The upload the state recorded is no longer in the store (completed
    /// or aborted after the state last saw it: a kill in between).
    Gone,
}

impl From<ExportError> for UploadError {
    fn from(e: ExportError) -> Self {
        UploadError::Store(e)
    }
}

impl ObjectDest {
    /// Streams `source`'s file into the object `name`, as the module
    /// documentation says; continues the state's upload of it if there is
    /// one.
    pub(crate) async fn upload(
        &self,
        source: &Source<'_>,
        state: &Store,
        name: &str,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<Uploaded, UploadError> {
        let mut started_over = false;
        loop {
            match self.upload_attempt(source, state, name, progress).await {
                // The recorded upload is gone: forget it, start a new one.
                Err(UploadError::Gone) if !started_over => {
                    tracing::info!(
                        object = name,
                        "the recorded upload no longer exists; starting over"
                    );
                    state.end_upload(self.key(name).as_ref())?;
                    started_over = true;
                }
                Err(UploadError::Gone) => {
                    return Err(UploadError::Store(self.error(
                        format!("uploading {name}"),
                        object_store::Error::Generic {
                            store: "cfstream",
                            source: "a new multipart upload vanished while in use".into(),
                        },
                    )));
                }
                other => return other,
            }
        }
    }

    async fn upload_attempt(
        &self,
        source: &Source<'_>,
        state: &Store,
        name: &str,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<Uploaded, UploadError> {
        let Source { video_id, url, .. } = *source;
        let key = self.key(name);
        let key_text = key.to_string();
        let (mut upload, mut parts) = match state.upload(&key_text)? {
            Some((u, p)) => (Some(u), p),
            None => (None, Vec::new()),
        };
        let contiguous = parts
            .iter()
            .enumerate()
            .take_while(|(i, p)| p.idx == *i as u64)
            .count();
        // Kept: the whole parts before the first missing one, but never the
        // file's end: the last part is sent again (a taken-over upload does
        // not know the file's size, so its last whole part may end it).
        let keep = match &upload {
            None => 0,
            Some(u) => {
                let full = parts[..contiguous]
                    .iter()
                    .take_while(|p| p.size == u.part_size)
                    .count();
                match u.total {
                    Some(total) if (full as u64) * u.part_size < total => full,
                    _ => full.saturating_sub(1),
                }
            }
        };
        parts.truncate(keep);
        let from = upload.as_ref().map_or(0, |u| keep as u64 * u.part_size);
        let validator = upload.as_ref().and_then(|u| u.validator.clone());
        let mut retries = SOURCE_RETRIES;
        let mut body = source
            .open(from, validator.as_deref(), &mut retries)
            .await
            .map_err(UploadError::Source)?;
        // An upload taken over from another run has no recorded size or
        // validator: its part size must be the one this file gets.
        let mismatch = |u: &Upload| match u.total {
            Some(_) => body.total != u.total,
            None => part_size_for(body.total) != u.part_size,
        };
        if let Some(u) = &upload
            && (body.start != from || mismatch(u))
        {
            // The file changed (If-Range sent it whole) or is another
            // size: the upload cannot be continued.
            tracing::info!(key = %key_text, "the download changed; starting the upload over");
            self.abort(state, u).await?;
            upload = None;
            if body.start != 0 {
                drop(body);
                body = source
                    .open(0, None, &mut retries)
                    .await
                    .map_err(UploadError::Source)?;
            }
        }
        let upload = match upload {
            Some(mut u) => {
                u.total = u.total.or(body.total);
                u
            }
            None => {
                let upload_id = self
                    .multipart
                    .create_multipart(&key)
                    .await
                    .map_err(|e| self.error(format!("starting the upload of {key}"), e))?;
                let u = Upload {
                    key: key_text.clone(),
                    upload_id,
                    part_size: part_size_for(body.total),
                    total: body.total,
                    validator: body.validator().map(str::to_owned),
                };
                state.begin_upload(&u)?;
                u
            }
        };
        let part_size = upload.part_size as usize;
        let mut hasher = (body.start == 0).then(Sha256::new);
        let mut offset = body.start;
        let mut idx = offset / upload.part_size;
        let mut buf = BytesMut::with_capacity(part_size);
        let mut in_flight: JoinSet<Result<Part, object_store::Error>> = JoinSet::new();
        progress(offset, upload.total);
        let ended = loop {
            match body.chunk().await {
                Ok(Some(chunk)) => {
                    if let Some(h) = &mut hasher {
                        h.update(&chunk);
                    }
                    offset += chunk.len() as u64;
                    progress(offset, upload.total);
                    // Each part is one allocation of exactly the part size
                    // (a buffer never grows past it, so none doubles).
                    let mut rest = &chunk[..];
                    while !rest.is_empty() {
                        let take = rest.len().min(part_size - buf.len());
                        buf.extend_from_slice(&rest[..take]);
                        rest = &rest[take..];
                        if buf.len() < part_size {
                            continue;
                        }
                        let part = std::mem::replace(&mut buf, BytesMut::with_capacity(part_size));
                        while in_flight.len() >= PARTS_IN_FLIGHT {
                            self.record_next(state, &key_text, &mut in_flight).await?;
                        }
                        self.spawn_part(
                            &mut in_flight,
                            &key,
                            &upload.upload_id,
                            idx,
                            part.freeze(),
                        );
                        idx += 1;
                    }
                }
                Ok(None) => break Ok(()),
                // Cut short: ask for the rest, from the byte where it
                // stopped, of the same file (If-Range with its validator;
                // without one, or when the answer is not that range, the
                // attempt ends and the next continues from its parts).
                Err(e) => {
                    let same_file = upload.validator.as_deref();
                    if retries == 0 || same_file.is_none() {
                        break Err(e);
                    }
                    tracing::info!(video = video_id, error = %e, at = offset, "the download was cut; asking for the rest");
                    tokio::time::sleep(source_backoff(SOURCE_RETRIES - retries)).await;
                    retries -= 1;
                    match source.open(offset, same_file, &mut retries).await {
                        Ok(rest) if rest.start == offset && rest.total == upload.total => {
                            body = rest;
                        }
                        Ok(_) => break Err(e),
                        Err(again) => break Err(again),
                    }
                }
            }
        };
        drop(body);
        let fetched = offset - from;
        if let Err(e) = ended {
            // Keep the parts that finish: the next attempt continues after them.
            while !in_flight.is_empty() {
                self.record_next(state, &key_text, &mut in_flight).await?;
            }
            return Err(UploadError::Source(e));
        }
        if let Some(total) = upload.total
            && offset != total
        {
            while !in_flight.is_empty() {
                self.record_next(state, &key_text, &mut in_flight).await?;
            }
            return Err(UploadError::Source(Error::IncompleteFile {
                request: RequestSummary {
                    method: "GET".into(),
                    path: reqwest::Url::parse(url)
                        .map(|u| u.path().to_owned())
                        .unwrap_or_default(),
                },
                reason: format!("received {offset} of {total} bytes"),
            }));
        }
        if !buf.is_empty() || idx == 0 {
            self.spawn_part(&mut in_flight, &key, &upload.upload_id, idx, buf.freeze());
            idx += 1;
        }
        while !in_flight.is_empty() {
            self.record_next(state, &key_text, &mut in_flight).await?;
        }
        let parts = state
            .upload(&key_text)?
            .map(|(_, parts)| parts)
            .unwrap_or_default();
        let complete =
            parts.len() as u64 == idx && parts.iter().enumerate().all(|(i, p)| p.idx == i as u64);
        if !complete {
            return Err(UploadError::Store(self.error(
                format!("completing {key}"),
                object_store::Error::Generic {
                    store: "cfstream",
                    source: format!("{} parts recorded, {idx} expected", parts.len()).into(),
                },
            )));
        }
        let ids = parts
            .into_iter()
            .map(|p| PartId {
                content_id: p.content_id,
            })
            .collect();
        match self
            .multipart
            .complete_multipart(&key, &upload.upload_id, ids)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Err(UploadError::Gone),
            Err(e) => {
                return Err(UploadError::Store(
                    self.error(format!("completing the upload of {key}"), e),
                ));
            }
        }
        state.end_upload(&key_text)?;
        state.add_objects(&[(key_text, offset)])?;
        Ok(Uploaded {
            size: offset,
            sha256: hasher.map(|h| hex(&h.finalize())),
            fetched,
        })
    }

    fn spawn_part(
        &self,
        in_flight: &mut JoinSet<Result<Part, object_store::Error>>,
        key: &ObjectPath,
        upload_id: &str,
        idx: u64,
        bytes: Bytes,
    ) {
        let multipart = self.multipart.clone();
        let key = key.clone();
        let upload_id = upload_id.to_owned();
        in_flight.spawn(async move {
            let size = bytes.len() as u64;
            let id = multipart
                .put_part(&key, &upload_id, idx as usize, PutPayload::from(bytes))
                .await?;
            Ok(Part {
                idx,
                content_id: id.content_id,
                size,
            })
        });
    }

    /// Waits for the next part to finish and records it.
    async fn record_next(
        &self,
        state: &Store,
        key: &str,
        in_flight: &mut JoinSet<Result<Part, object_store::Error>>,
    ) -> Result<(), UploadError> {
        match in_flight.join_next().await {
            Some(Ok(Ok(part))) => Ok(state.add_part(key, &part)?),
            Some(Ok(Err(object_store::Error::NotFound { .. }))) => Err(UploadError::Gone),
            Some(Ok(Err(e))) => Err(UploadError::Store(
                self.error(format!("uploading a part of {key}"), e),
            )),
            Some(Err(e)) => Err(UploadError::Store(self.error(
                format!("uploading a part of {key}"),
                object_store::Error::JoinError { source: e },
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_equal_at_least_the_minimum_and_never_more_than_the_limit() {
        assert_eq!(part_size_for(None), MIN_PART);
        assert_eq!(part_size_for(Some(0)), MIN_PART);
        assert_eq!(part_size_for(Some(1 << 30)), MIN_PART);
        for total in [80u64 << 30, 1 << 40, 5 << 40, (5 << 40) + 12345] {
            let size = part_size_for(Some(total));
            assert!(size >= MIN_PART && size.is_multiple_of(1 << 20));
            assert!(total.div_ceil(size) <= MAX_PARTS, "{total}: {size}");
        }
        assert_eq!(part_size_for(Some(5 << 40)), 525 << 20);
    }
}
