//! Plain object operations: the preflight (a probe object written and
//! deleted before any Stream request), the prefix listed into the state,
//! and deleting an object (and its record).

use futures_util::StreamExt;
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
