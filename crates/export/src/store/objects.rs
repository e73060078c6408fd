//! Plain object operations: the preflight (a probe object written and
//! deleted before any Stream request), the prefix listed into the state,
//! and deleting an object (and its record).

use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

use crate::dest::ObjectDest;
use crate::error::ExportError;
use crate::state::Store;

impl ObjectDest {
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
            // Run reports (`.cfstream/runs/`) are not part of the archive.
            if meta
                .location
                .prefix_match(&self.prefix)
                .and_then(|mut rest| rest.next())
                .is_some_and(|first| first.as_ref() == ".cfstream")
            {
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

    /// Writes a small object `name` (a caption, `account.json`) with one
    /// `PUT`: it appears whole or not at all, and of writers racing the
    /// last one wins. Recorded in the state's listing.
    pub(crate) async fn put_small(
        &self,
        state: &Store,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), ExportError> {
        let key = self.key(name);
        let size = bytes.len() as u64;
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(|e| self.error(format!("writing {key}"), e))?;
        state.add_objects(&[(key.to_string(), size)])
    }

    /// The key of `rel` (a path with `/`) under the prefix.
    pub(crate) fn key_at(&self, rel: &str) -> ObjectPath {
        rel.split('/')
            .filter(|s| !s.is_empty())
            .fold(self.prefix.clone(), |key, part| key.join(part))
    }

    /// Writes a run report at `rel` under the prefix (one `PUT`; not
    /// recorded in the state's listing: not part of the archive).
    pub(crate) async fn put_report(&self, rel: &str, bytes: Vec<u8>) -> Result<(), ExportError> {
        let key = self.key_at(rel);
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map(drop)
            .map_err(|e| self.error(format!("writing {key}"), e))
    }

    /// Every object under `rel` (run reports), read whole.
    pub(crate) async fn read_reports(&self, rel: &str) -> Result<Vec<Vec<u8>>, ExportError> {
        let dir = self.key_at(rel);
        let mut listing = self.store.list(Some(&dir));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.error(format!("listing {dir}"), e))?;
            match self.store.get(&meta.location).await {
                Ok(got) => {
                    let bytes = got
                        .bytes()
                        .await
                        .map_err(|e| self.error(format!("reading {}", meta.location), e))?;
                    out.push(bytes.to_vec());
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error(format!("reading {}", meta.location), e)),
            }
        }
        Ok(out)
    }

    /// Reads a small object `name` whole; `None` when there is none.
    pub(crate) async fn get_small(&self, name: &str) -> Result<Option<Vec<u8>>, ExportError> {
        let key = self.key(name);
        let got = match self.store.get(&key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(format!("reading {key}"), e)),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.error(format!("reading {key}"), e))?;
        Ok(Some(bytes.to_vec()))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::ObjectStore;
    use object_store::memory::InMemory;
    use object_store::path::Path as ObjectPath;

    use super::*;

    fn in_memory(store: Arc<InMemory>) -> ObjectDest {
        ObjectDest {
            url: "s3://bucket/archive".into(),
            store: store.clone(),
            multipart: store,
            s3: None,
            prefix: ObjectPath::from("archive"),
            http: crate::dest::http_client().unwrap(),
        }
    }

    #[tokio::test]
    async fn the_preflight_leaves_nothing_and_the_listing_sweeps_a_probe_left_behind() {
        let store = Arc::new(InMemory::new());
        let dest = in_memory(store.clone());
        dest.preflight().await.unwrap();
        assert_eq!(store.list(None).count().await, 0, "the probe was deleted");
        // A run killed between the probe's write and delete left one; a
        // media file and an object outside the prefix are not the run's.
        for (key, body) in [
            ("archive/.cfstream-probe-1-2", "x"),
            ("archive/a.mp4", "12345"),
            ("elsewhere/b.mp4", "1"),
        ] {
            store
                .put(&ObjectPath::from(key), body.into())
                .await
                .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let state = Store::open(&dir.path().join("s.sqlite")).unwrap();
        assert_eq!(dest.list_into(&state).await.unwrap(), 1);
        assert_eq!(state.object_size("archive/a.mp4").unwrap(), Some(5));
        assert_eq!(state.object_size("elsewhere/b.mp4").unwrap(), None);
        assert!(
            store
                .head(&ObjectPath::from("archive/.cfstream-probe-1-2"))
                .await
                .is_err(),
            "the probe left behind was swept"
        );
        // Deleting an object forgets it in the state too.
        dest.delete(&state, "a.mp4").await.unwrap();
        assert_eq!(state.object_size("archive/a.mp4").unwrap(), None);
        dest.delete(&state, "a.mp4").await.unwrap();
    }
}
