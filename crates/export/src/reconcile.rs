//! The start of a run into an object store: the bucket read back into the
//! state (see [`crate::store`]), so that a run on a fresh machine, with an
//! empty state, downloads nothing that is complete in the bucket.

use futures_util::StreamExt;

use crate::dest::ObjectDest;
use crate::error::ExportError;
use crate::extras::Extras;
use crate::machine::FileState;
use crate::shard::Shard;
use crate::state::Store;

/// Sidecars read at once.
const SIDECAR_READS: usize = 16;

/// What the bucket told.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Objects under the prefix.
    pub objects: u64,
    /// Files vouched for by a sidecar, with an object of the recorded
    /// size, that the state did not have as done.
    pub adopted: u64,
    /// Uploads of this shard left open by another run, taken over (this
    /// run continues them).
    pub continued: u64,
    /// Uploads of this shard left open by another run, aborted (another of
    /// the same key went further, or they cannot be continued).
    pub aborted: u64,
}

/// Lists the prefix into `state`, adopts the files the sidecars of this
/// shard vouch for, and takes over this shard's uploads the state does not
/// know.
pub async fn from_destination(
    dest: &ObjectDest,
    state: &Store,
    run: i64,
    shard: Shard,
) -> Result<Found, ExportError> {
    let mut found = Found {
        objects: dest.list_into(state).await?,
        ..Found::default()
    };
    let mut after = String::new();
    loop {
        let page = state.objects_page(".json", &after, 256)?;
        let Some(last) = page.last() else { break };
        after = last.clone();
        let uids: Vec<String> = page
            .iter()
            .filter_map(|key| key.rsplit('/').next()?.strip_suffix(".json"))
            .filter(|uid| cloudflare_stream_downloads::check_id("video id", uid).is_ok())
            .filter(|uid| shard.contains(uid))
            .map(str::to_owned)
            .collect();
        let mut reads = futures_util::stream::iter(uids.into_iter().map(|uid| async move {
            let sidecar = dest.read_sidecar(&uid).await;
            (uid, sidecar)
        }))
        .buffer_unordered(SIDECAR_READS);
        while let Some((uid, sidecar)) = reads.next().await {
            let Some((doc, _)) = sidecar? else { continue };
            found.adopted += adopt(dest, state, run, &uid, &doc)?;
        }
    }
    (found.continued, found.aborted) = dest.take_over_uploads(state, shard).await?;
    Ok(found)
}

/// Adopts the files of one sidecar whose objects have the recorded size,
/// and its captions and audio tracks; returns how many files were not done
/// in the state. (A caption is adopted with its record: whether its
/// object is there is checked when the video comes up.)
fn adopt(
    dest: &ObjectDest,
    state: &Store,
    run: i64,
    uid: &str,
    doc: &serde_json::Value,
) -> Result<u64, ExportError> {
    let Some(downloads) = doc.get("downloads").and_then(|d| d.as_object()) else {
        return Ok(0);
    };
    // Its captions and audio tracks: the bucket's record is the truth.
    let extras = Extras {
        captions: doc
            .get("captions")
            .and_then(|c| serde_json::from_value(c.clone()).ok()),
        audio_tracks: doc
            .get("audio_tracks")
            .and_then(|a| serde_json::from_value(a.clone()).ok()),
    };
    let known = state.video(uid)?;
    let listed = doc
        .get("video")
        .filter(|v| !v.is_null())
        .map(|v| v.to_string());
    let mut adopted = 0;
    for (kind, entry) in downloads {
        let kind = match kind.as_str() {
            "default" => cloudflare_stream_downloads::types::DownloadType::Default,
            "audio" => cloudflare_stream_downloads::types::DownloadType::Audio,
            _ => continue,
        };
        let (Some(size), Some(sha256)) = (
            entry.get("size").and_then(|s| s.as_u64()),
            entry.get("sha256").and_then(|s| s.as_str()),
        ) else {
            continue;
        };
        let url = entry
            .get("url")
            .and_then(|u| u.as_str())
            .unwrap_or_default();
        let key = dest.key(&crate::dest::file_name(uid, kind));
        if state.object_size(key.as_ref())? != Some(size) {
            continue;
        }
        let done = FileState::Done {
            url: url.to_owned(),
            size,
            sha256: sha256.to_owned(),
        };
        let already = known
            .as_ref()
            .and_then(|v| v.files.iter().find(|(k, _)| *k == kind))
            .is_some_and(|(_, s)| *s == done);
        if !already {
            state.adopt_done(run, uid, listed.as_deref(), kind, &done)?;
            adopted += 1;
        }
    }
    let recorded = Extras::parse(known.as_ref().and_then(|v| v.extras.as_deref()));
    if extras != Extras::default() && extras != recorded && state.video(uid)?.is_some() {
        state.set_extras(uid, &extras.to_json())?;
    }
    Ok(adopted)
}
