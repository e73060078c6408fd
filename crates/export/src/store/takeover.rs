//! The uploads left open: a run whose state does not know them takes over,
//! for each key of its shard, the one that went furthest
//! (`ListMultipartUploads`, `ListParts`, through `object_store`'s SigV4
//! signer, parsed with quick-xml) and aborts the others; a run ends by
//! aborting every upload it still records.

use object_store::path::Path as ObjectPath;

use super::upload::MIN_PART;
use crate::dest::ObjectDest;
use crate::error::ExportError;
use crate::shard::Shard;
use crate::state::{Part, Store, Upload};

impl ObjectDest {
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

    pub(super) async fn abort(&self, state: &Store, upload: &Upload) -> Result<(), ExportError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
