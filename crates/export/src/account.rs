//! `account.json` at the root of the archive (the directory, or the
//! prefix): what the archive is (the account, when, which selection, the
//! tool and its version) and the account's settings a video's files do
//! not carry: its watermark profiles (their settings; Stream cannot give
//! the images back).
//!
//! Every run (not a dry run) writes it once, at its end. The watermark list
//! costs one API request; a run that wrote nothing (a re-run over a
//! complete archive: no request but the listing) keeps the list the record
//! already has, with the time it was listed (`watermarks_listed_at`).
//! Shards of one export write the same document but for the times: it is
//! written whole (a temporary file renamed, or one `PUT`), so of shards
//! racing the last writer wins and nobody tears it.

use crate::dest::{Destination, write_atomically};
use crate::error::ExportError;
use crate::options::Captions;
use crate::run::Run;
use crate::state::type_name;

/// The name of the account record at the root of the archive.
pub const ACCOUNT_FILE: &str = "account.json";

impl Run {
    /// Writes `account.json`. `worked`: the run wrote something (else the
    /// watermark list already recorded is kept, for no request). The
    /// watermark list failing does not stop the run: the record says why
    /// it has none.
    pub(crate) async fn write_account_record(&self, worked: bool) -> Result<(), ExportError> {
        let now = crate::runs::now();
        let previous = match self.read_account_record().await? {
            Some(doc) if !worked && doc.get("watermarks").is_some_and(|w| w.is_array()) => {
                Some(doc)
            }
            _ => None,
        };
        let (watermarks, listed_at, error) = match previous {
            Some(doc) => (
                doc["watermarks"].clone(),
                doc.get("watermarks_listed_at").cloned().unwrap_or_default(),
                None,
            ),
            None => match self.api_call(|| self.client.watermarks()).await? {
                Ok(list) => (
                    serde_json::to_value(list).unwrap_or_default(),
                    now.clone().into(),
                    None,
                ),
                Err(reason) => {
                    tracing::warn!(reason = %reason, "the account's watermark profiles could not be listed");
                    (
                        serde_json::Value::Null,
                        serde_json::Value::Null,
                        Some(reason),
                    )
                }
            },
        };
        let o = &self.options;
        let mut doc = serde_json::json!({
            "account_id": self.client.account_id(),
            "archive": {
                "tool": "cfstream",
                "version": env!("CARGO_PKG_VERSION"),
                "written_at": now,
                "selection": o.selection.describe(),
                "types": o.types.iter().map(|k| type_name(*k)).collect::<Vec<_>>(),
                "captions": match o.captions {
                    Captions::FromManifest => "manifest",
                    Captions::FromApi => "api",
                    Captions::Off => "off",
                },
            },
            "watermarks": watermarks,
            "watermarks_listed_at": listed_at,
        });
        if let Some(reason) = error {
            doc["watermarks_error"] = reason.into();
        }
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        match &o.dest {
            Destination::Dir(dir) => write_atomically(dir, ACCOUNT_FILE, text.as_bytes()),
            Destination::Store(dest) => {
                dest.put_small(&self.store, ACCOUNT_FILE, text.into_bytes())
                    .await
            }
        }
    }

    /// The record as the destination has it (`None`: none, or not ours).
    async fn read_account_record(&self) -> Result<Option<serde_json::Value>, ExportError> {
        let bytes = match &self.options.dest {
            Destination::Dir(dir) => match std::fs::read(dir.join(ACCOUNT_FILE)) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(ExportError::io(&dir.join(ACCOUNT_FILE))(e)),
            },
            Destination::Store(dest) => {
                let key = dest.key(ACCOUNT_FILE);
                if self.store.object_size(key.as_ref())?.is_none() {
                    return Ok(None);
                }
                match dest.get_small(ACCOUNT_FILE).await? {
                    Some(bytes) => bytes,
                    None => return Ok(None),
                }
            }
        };
        Ok(serde_json::from_slice(&bytes).ok())
    }
}
