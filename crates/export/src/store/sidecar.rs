//! The `<uid>.json` sidecars in the bucket: read, and written with a
//! conditional create (a sidecar already there is merged, the other type's
//! entry kept, and replaced only if unchanged since it was read).

use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::dest::ObjectDest;
use crate::error::ExportError;

impl ObjectDest {
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
}

/// Adds to `doc`'s `downloads` those of `existing` it does not have, and
/// keeps `existing`'s `captions` and `audio_tracks` when `doc` has none
/// (a run with `--no-captions` does not erase what another recorded).
fn merge_downloads(doc: &mut serde_json::Value, existing: &serde_json::Value) {
    if let Some(doc) = doc.as_object_mut() {
        for key in ["captions", "audio_tracks"] {
            if !doc.contains_key(key)
                && let Some(theirs) = existing.get(key)
            {
                doc.insert(key.to_owned(), theirs.clone());
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_merge_the_types_of_both() {
        let mut ours = serde_json::json!({"uid": "a", "downloads": {"audio": {"size": 1}}});
        let theirs = serde_json::json!({"uid": "a", "downloads": {"default": {"size": 2}, "audio": {"size": 9}}});
        merge_downloads(&mut ours, &theirs);
        assert_eq!(
            ours,
            serde_json::json!({"uid": "a", "downloads": {"audio": {"size": 1}, "default": {"size": 2}}})
        );
        // Captions and audio tracks: ours when we have them, else theirs.
        let mut ours = serde_json::json!({"uid": "a", "downloads": {}, "captions": []});
        let theirs = serde_json::json!({"uid": "a", "downloads": {},
            "captions": [{"language": "en"}], "audio_tracks": [{"uid": "t"}]});
        merge_downloads(&mut ours, &theirs);
        assert_eq!(ours["captions"], serde_json::json!([]));
        assert_eq!(ours["audio_tracks"], serde_json::json!([{"uid": "t"}]));
    }
}
