//! The object-store destination's operations: preflight, the bucket read
//! back into the state, the streamed multipart upload, its check, the
//! sidecar, and the clean-up of uploads left open.
//!
//! **The bucket is the truth, the state a cache.** A file is done in the
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

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cloudflare_stream_downloads::{Client, Error, RequestSummary, Signing, media};
use futures_util::StreamExt;
use object_store::multipart::PartId;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::dest::ObjectDest;
use crate::error::ExportError;
use crate::shard::Shard;
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

/// Where an upload's bytes come from: a video's file on the download host.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    /// The client that opens it.
    pub client: &'a Client,
    /// The video.
    pub video_id: &'a str,
    /// Its download URL (unsigned).
    pub url: &'a str,
    /// Whether the URL needs a token.
    pub signing: Signing,
}

/// Times the download host is asked again, inside one upload attempt,
/// after an answer worth retrying (429, 5xx, no connection, a timeout) or
/// a body cut short: each time from the byte where the last one stopped.
pub(crate) const SOURCE_RETRIES: u32 = 3;

/// The wait before the `n`-th retry (from 0): 250 ms, doubling.
fn source_backoff(n: u32) -> std::time::Duration {
    std::time::Duration::from_millis(250 << n.min(4))
}

impl Source<'_> {
    /// The file from byte `from` ([`Client::open_video_url`]), asked again
    /// up to `retries` times (each one spent) while the answer is worth
    /// retrying; a 429's `Retry-After` is waited out when it is short.
    async fn open(
        &self,
        from: u64,
        validator: Option<&str>,
        retries: &mut u32,
    ) -> Result<cloudflare_stream_downloads::FileStream, Error> {
        loop {
            match self
                .client
                .open_video_url(self.video_id, self.url, self.signing, from, validator)
                .await
            {
                Ok(body) => return Ok(body),
                Err(e) if e.is_retryable() && *retries > 0 => {
                    let n = SOURCE_RETRIES - *retries;
                    *retries -= 1;
                    let wait = e
                        .retry_after()
                        .filter(|w| *w <= std::time::Duration::from_secs(10))
                        .unwrap_or_else(|| source_backoff(n));
                    tracing::info!(video = self.video_id, error = %e, from, wait_ms = wait.as_millis() as u64, "the download host failed; asking again");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
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

fn hex(digest: &[u8]) -> String {
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

    /// Checks the destination before any Stream request: the credentials
    /// work and the bucket takes a write (a small probe object, written and
    /// deleted at once).
    pub async fn preflight(&self) -> Result<(), ExportError> {
        let probe = self.key(&format!(
            ".cfstream-probe-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        self.store
            .put(&probe, PutPayload::from_static(b"cfstream preflight\n"))
            .await
            .map_err(|e| self.error("writing a probe object (preflight)", e))?;
        match self.store.delete(&probe).await {
            // (another run's start may have swept it: see `list_into`)
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("deleting the probe object (preflight)", e)),
        }
    }

    /// Lists the prefix into the state's `objects` table; returns the
    /// number of objects.
    pub(crate) async fn list_into(&self, state: &Store) -> Result<u64, ExportError> {
        state.clear_objects()?;
        let mut listing = self.store.list(Some(&self.prefix));
        let mut page = Vec::with_capacity(1000);
        let mut count = 0u64;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.error("listing the prefix", e))?;
            // A probe object left by a run killed during its preflight
            // (nothing else under the prefix is named so): swept.
            if meta
                .location
                .filename()
                .is_some_and(|n| n.starts_with(".cfstream-probe-"))
            {
                match self.store.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.error("deleting a probe object left behind", e)),
                }
                continue;
            }
            page.push((meta.location.to_string(), meta.size));
            if page.len() == 1000 {
                count += page.len() as u64;
                state.add_objects(&std::mem::take(&mut page))?;
            }
        }
        count += page.len() as u64;
        state.add_objects(&page)?;
        Ok(count)
    }

    /// The sidecar `<uid>.json`, parsed, with its version (for a
    /// conditional update); `None` when there is none.
    pub(crate) async fn read_sidecar(
        &self,
        uid: &str,
    ) -> Result<Option<(serde_json::Value, UpdateVersion)>, ExportError> {
        let key = self.key(&format!("{uid}.json"));
        let got = match self.store.get(&key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(format!("reading {key}"), e)),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.error(format!("reading {key}"), e))?;
        // A sidecar that is not ours (or torn by hand) vouches for nothing.
        Ok(serde_json::from_slice(&bytes).ok().map(|v| (v, version)))
    }

    /// Writes the sidecar: a conditional create; when one exists (an
    /// earlier run, another type), its `downloads` are merged with ours and
    /// it is replaced only if unchanged since read (else read again).
    pub(crate) async fn write_sidecar(
        &self,
        uid: &str,
        doc: &serde_json::Value,
    ) -> Result<(), ExportError> {
        let key = self.key(&format!("{uid}.json"));
        let mut mode = PutMode::Create;
        for _ in 0..5 {
            let mut doc = doc.clone();
            if let PutMode::Update(_) = &mode
                && let Some((existing, _)) = self.read_sidecar(uid).await?
            {
                merge_downloads(&mut doc, &existing);
            }
            let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            text.push('\n');
            let put = self
                .store
                .put_opts(
                    &key,
                    PutPayload::from(text.clone()),
                    PutOptions::from(mode.clone()),
                )
                .await;
            match put {
                Ok(_) => return Ok(()),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    let Some((existing, version)) = self.read_sidecar(uid).await? else {
                        mode = PutMode::Create;
                        continue;
                    };
                    let mut merged = doc.clone();
                    merge_downloads(&mut merged, &existing);
                    if merged == existing {
                        return Ok(());
                    }
                    mode = PutMode::Update(version);
                }
                Err(e) => return Err(self.error(format!("writing {key}"), e)),
            }
        }
        Err(ExportError::Destination {
            url: self.url.clone(),
            doing: format!("writing {key}"),
            source: Box::new(object_store::Error::Generic {
                store: "cfstream",
                source: "another writer kept changing it (5 tries)".into(),
            }),
        })
    }

    /// Takes over the multipart uploads in flight under the prefix that
    /// belong to `shard` and that `state` does not know: left by a run
    /// killed on another machine (or with another state). For each key,
    /// the upload with the most parts is recorded in `state` with its
    /// parts (so that this run continues it), and the others are aborted.
    /// S3 and R2 only (`object_store` has no listing of uploads for GCS and
    /// Azure: a lifecycle rule reaps those). Returns (continued, aborted).
    pub(crate) async fn take_over_uploads(
        &self,
        state: &Store,
        shard: Shard,
    ) -> Result<(u64, u64), ExportError> {
        let Some(s3) = &self.s3 else {
            return Ok((0, 0));
        };
        let prefix = format!("{}/", self.prefix);
        let prefix = prefix.trim_start_matches('/');
        let mut by_key: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = vec![
                ("uploads".to_owned(), String::new()),
                ("prefix".to_owned(), prefix.to_owned()),
            ];
            if let Some((key, id)) = &markers {
                query.push(("key-marker".into(), key.clone()));
                query.push(("upload-id-marker".into(), id.clone()));
            }
            let listing = self
                .signed_get(
                    s3,
                    &ObjectPath::from(""),
                    query,
                    "listing the multipart uploads",
                )
                .await?;
            let page = parse_uploads(&listing);
            for (key, id) in page.uploads {
                let Some(uid) = key.rsplit('/').next().and_then(|n| n.split('.').next()) else {
                    continue;
                };
                if shard.contains(uid) {
                    by_key.entry(key).or_default().push(id);
                }
            }
            match page.next {
                Some(next) => markers = Some(next),
                None => break,
            }
        }
        let (mut continued, mut aborted) = (0, 0);
        for (key, ids) in by_key {
            let known = state.upload(&key)?.map(|(u, _)| u.upload_id);
            let mut best: Option<(String, Vec<Part>)> = None;
            let mut drop_ids = Vec::new();
            for id in ids {
                if known.as_deref() == Some(id.as_str()) {
                    continue;
                }
                if known.is_some() {
                    drop_ids.push(id);
                    continue;
                }
                let parts = self.list_parts(s3, &key, &id).await?;
                match &best {
                    Some((_, b)) if b.len() >= parts.len() => drop_ids.push(id),
                    _ => {
                        if let Some((old, _)) = best.take() {
                            drop_ids.push(old);
                        }
                        best = Some((id, parts));
                    }
                }
            }
            if let Some((id, parts)) = best {
                // Continued only if its parts are 0..n, all of one size but
                // the last (ours are), each listed with its checksum: else
                // it goes.
                let size = parts.first().map(|p| p.size).unwrap_or(0);
                let usable = !parts.is_empty()
                    && parts.iter().all(|p| !p.content_id.is_empty())
                    && parts.iter().enumerate().all(|(i, p)| p.idx == i as u64)
                    && parts[..parts.len() - 1].iter().all(|p| p.size == size)
                    && size >= MIN_PART;
                if usable {
                    state.begin_upload(&Upload {
                        key: key.clone(),
                        upload_id: id,
                        part_size: size,
                        total: None,
                        validator: None,
                    })?;
                    for part in &parts {
                        state.add_part(&key, part)?;
                    }
                    tracing::info!(key = %key, parts = parts.len(), "continuing a multipart upload left by another run");
                    continued += 1;
                } else {
                    drop_ids.push(id);
                }
            }
            for id in drop_ids {
                let path = ObjectPath::from(key.as_str());
                match self.multipart.abort_multipart(&path, &id).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.error(format!("aborting an upload of {key}"), e)),
                }
                tracing::info!(key = %key, "aborted a multipart upload left by another run");
                aborted += 1;
            }
        }
        Ok((continued, aborted))
    }

    /// The finished parts of an upload (`ListParts`), as `put_part` would
    /// have returned them.
    async fn list_parts(
        &self,
        s3: &object_store::aws::AmazonS3,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<Part>, ExportError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![("uploadId".to_owned(), upload_id.to_owned())];
            if let Some(m) = &marker {
                query.push(("part-number-marker".into(), m.clone()));
            }
            let listing = self
                .signed_get(
                    s3,
                    &ObjectPath::from(key),
                    query,
                    "listing an upload's parts",
                )
                .await?;
            let page = parse_parts(&listing);
            parts.extend(page.parts);
            match page.next {
                Some(next) => marker = Some(next),
                None => return Ok(parts),
            }
        }
    }

    /// A GET of the bucket (`path` "") or an object with `query`, signed
    /// by `object_store`'s SigV4 signer (a presigned URL): for the calls
    /// `object_store` does not make.
    async fn signed_get(
        &self,
        s3: &object_store::aws::AmazonS3,
        path: &ObjectPath,
        query: Vec<(String, String)>,
        doing: &str,
    ) -> Result<String, ExportError> {
        let options = object_store::signer::SignedUrlOptions::default().with_query(query);
        let url = object_store::signer::Signer::signed_url_opts(
            s3,
            http::Method::GET,
            path,
            std::time::Duration::from_secs(300),
            &options,
        )
        .await
        .map_err(|e| self.error(doing, e))?;
        async {
            let response = self.http.get(url).send().await?.error_for_status()?;
            response.text().await
        }
        .await
        .map_err(|e| {
            self.error(
                doing,
                object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(e.without_url()),
                },
            )
        })
    }

    /// Aborts every upload the state still records (the end of a run: an
    /// upload left is one whose file failed or was interrupted).
    pub(crate) async fn abort_recorded(&self, state: &Store) -> Result<u64, ExportError> {
        let mut aborted = 0;
        for upload in state.uploads()? {
            self.abort(state, &upload).await?;
            aborted += 1;
        }
        Ok(aborted)
    }

    async fn abort(&self, state: &Store, upload: &Upload) -> Result<(), ExportError> {
        let path = ObjectPath::from(upload.key.as_str());
        match self
            .multipart
            .abort_multipart(&path, &upload.upload_id)
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.error(format!("aborting the upload of {}", upload.key), e)),
        }
        state.end_upload(&upload.key)
    }

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

    /// Checks the object `name` after its upload: its size is `size`, its
    /// top-level boxes tile it ([`media::check_boxes`], reading only box
    /// headers and the `moov`), and its SHA-256 (`sha256`, else read back
    /// whole). Returns the SHA-256, or why the object is wrong.
    pub(crate) async fn check_object(
        &self,
        name: &str,
        size: u64,
        sha256: Option<String>,
    ) -> Result<Result<String, String>, ExportError> {
        let key = self.key(name);
        let meta = match self.store.head(&key).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(Err("the object is missing".into()));
            }
            Err(e) => return Err(self.error(format!("reading {key}"), e)),
        };
        if meta.size != size {
            return Ok(Err(format!(
                "the object holds {} bytes, not {size}",
                meta.size
            )));
        }
        let reader = RangeReader {
            store: self.store.clone(),
            key: key.clone(),
            len: size,
            pos: 0,
            buf: Bytes::new(),
            buf_start: 0,
            runtime: tokio::runtime::Handle::current(),
        };
        let boxes = tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            media::check_boxes(&mut reader, size)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("checker panicked: {e}")));
        if let Err(why) = boxes {
            return Ok(Err(why));
        }
        if let Some(sha) = sha256 {
            return Ok(Ok(sha));
        }
        let got = self
            .store
            .get(&key)
            .await
            .map_err(|e| self.error(format!("reading {key}"), e))?;
        let mut stream = got.into_stream();
        let mut hasher = Sha256::new();
        let mut read = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(format!("reading {key}"), e))?;
            read += chunk.len() as u64;
            hasher.update(&chunk);
        }
        if read != size {
            return Ok(Err(format!("read back {read} bytes, not {size}")));
        }
        Ok(Ok(hex(&hasher.finalize())))
    }

    /// Deletes the object `name` (found wrong).
    pub(crate) async fn delete(&self, state: &Store, name: &str) -> Result<(), ExportError> {
        let key = self.key(name);
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.error(format!("deleting {key}"), e)),
        }
        state.remove_object(key.as_ref())
    }
}

/// Adds to `doc`'s `downloads` those of `existing` it does not have.
fn merge_downloads(doc: &mut serde_json::Value, existing: &serde_json::Value) {
    let (Some(ours), Some(theirs)) = (
        doc.get_mut("downloads").and_then(|d| d.as_object_mut()),
        existing.get("downloads").and_then(|d| d.as_object()),
    ) else {
        return;
    };
    for (kind, entry) in theirs {
        if !ours.contains_key(kind) {
            ours.insert(kind.clone(), entry.clone());
        }
    }
    ours.sort_keys();
}

/// A page of `ListMultipartUploads`.
struct UploadsPage {
    uploads: Vec<(String, String)>,
    /// The markers of the next page, when truncated.
    next: Option<(String, String)>,
}

/// Reads the keys and upload ids of a `ListMultipartUploadsResult`.
fn parse_uploads(xml: &str) -> UploadsPage {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Result {
        is_truncated: bool,
        next_key_marker: Option<String>,
        next_upload_id_marker: Option<String>,
        upload: Vec<UploadEntry>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct UploadEntry {
        key: String,
        upload_id: String,
    }
    let parsed: Result = quick_xml::de::from_str(xml).unwrap_or_default();
    let next = match (
        parsed.is_truncated,
        parsed.next_key_marker,
        parsed.next_upload_id_marker,
    ) {
        (true, Some(k), Some(u)) => Some((k, u)),
        _ => None,
    };
    UploadsPage {
        uploads: parsed
            .upload
            .into_iter()
            .map(|u| (u.key, u.upload_id))
            .collect(),
        next,
    }
}

/// A page of `ListParts`.
struct PartsPage {
    parts: Vec<Part>,
    /// The marker of the next page, when truncated.
    next: Option<String>,
}

/// The same shape as `object_store`'s own record of a part uploaded with a
/// checksum (its `PartId::content_id` is this, serialized by quick-xml),
/// so that a part listed by `ListParts` completes like one it uploaded.
#[derive(serde::Serialize)]
struct PartMetadata {
    e_tag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum_crc64nvme: Option<String>,
}

/// Reads a `ListPartsResult`.
fn parse_parts(xml: &str) -> PartsPage {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Result {
        is_truncated: bool,
        next_part_number_marker: Option<String>,
        part: Vec<PartEntry>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct PartEntry {
        part_number: u64,
        #[serde(rename = "ETag")]
        e_tag: String,
        size: u64,
        #[serde(rename = "ChecksumSHA256", default)]
        checksum_sha256: Option<String>,
    }
    let parsed: Result = quick_xml::de::from_str(xml).unwrap_or_default();
    let next = parsed
        .next_part_number_marker
        .filter(|_| parsed.is_truncated);
    let mut parts: Vec<Part> = parsed
        .part
        .into_iter()
        .filter(|p| p.part_number >= 1)
        .map(|p| Part {
            idx: p.part_number - 1,
            // Our uploads carry a SHA-256 per part, which completing them
            // must repeat: a part listed without it (SeaweedFS 4.48 does
            // not list it) cannot be completed, and gets no content id.
            content_id: match p.checksum_sha256 {
                Some(sha) => quick_xml::se::to_string(&PartMetadata {
                    e_tag: p.e_tag,
                    checksum_sha256: Some(sha),
                    checksum_crc64nvme: None,
                })
                .unwrap_or_default(),
                None => String::new(),
            },
            size: p.size,
        })
        .collect();
    parts.sort_by_key(|p| p.idx);
    PartsPage { parts, next }
}

/// `Read + Seek` over an object, by ranged reads of 256 KiB (for the box
/// check, which reads box headers and the `moov` only). Runs on a blocking
/// thread.
struct RangeReader {
    store: Arc<dyn object_store::ObjectStore>,
    key: ObjectPath,
    len: u64,
    pos: u64,
    buf: Bytes,
    buf_start: u64,
    runtime: tokio::runtime::Handle,
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let in_buf =
            self.pos >= self.buf_start && self.pos < self.buf_start + self.buf.len() as u64;
        if !in_buf {
            let end = (self.pos + (256 << 10)).min(self.len);
            let bytes = self
                .runtime
                .block_on(self.store.get_range(&self.key, self.pos..end))
                .map_err(std::io::Error::other)?;
            self.buf = bytes;
            self.buf_start = self.pos;
        }
        let at = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - at);
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
            SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
        };
        Ok(self.pos)
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

    #[test]
    fn a_listing_of_uploads_is_read_with_its_next_page() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><IsTruncated>true</IsTruncated>
  <NextKeyMarker>p/b.mp4</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>
  <Upload><Key>p/a.mp4</Key><UploadId>u1</UploadId></Upload>
  <Upload><Key>p/b.mp4</Key><UploadId>u2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        let page = parse_uploads(xml);
        assert_eq!(
            page.uploads,
            vec![
                ("p/a.mp4".to_owned(), "u1".to_owned()),
                ("p/b.mp4".to_owned(), "u2".to_owned())
            ]
        );
        assert_eq!(page.next, Some(("p/b.mp4".into(), "u2".into())));
        assert!(
            parse_uploads("<ListMultipartUploadsResult/>")
                .uploads
                .is_empty()
        );
    }

    #[test]
    fn sidecars_merge_the_types_of_both() {
        let mut ours = serde_json::json!({"uid": "a", "downloads": {"audio": {"size": 1}}});
        let theirs = serde_json::json!({"uid": "a", "downloads": {"default": {"size": 2}, "audio": {"size": 9}}});
        merge_downloads(&mut ours, &theirs);
        assert_eq!(
            ours,
            serde_json::json!({"uid": "a", "downloads": {"audio": {"size": 1}, "default": {"size": 2}}})
        );
    }
}
