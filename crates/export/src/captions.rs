//! The step that archives what a video has beside its media files (see
//! [`crate::extras`]): learn whether it has captions or additional audio
//! tracks, ask the API for what only the API gives, write each ready
//! caption as `<uid>.<language>.vtt`, and record it all.
//!
//! **The API budget.** A video's HLS master manifest on the download host
//! lists its ready captions (`TYPE=SUBTITLES`) and its audio renditions at
//! no API cost ([`HostProbes::manifest`](crate::host::HostProbes::manifest),
//! signed with a local token for a signed video; without a signing key, one
//! token from the API, which still costs less than the two lists it
//! spares). So, by default
//! ([`Captions::FromManifest`]):
//! - a video whose manifest lists no subtitles and one audio rendition (its
//!   own) costs no API request;
//! - one that lists subtitles costs one request for its caption list
//!   (language, label, generated, status: the record) and one per ready
//!   caption not yet in the archive (its WebVTT);
//! - one that lists more than one audio rendition costs one request for
//!   its additional audio tracks;
//! - a signed video without a signing key costs one more request (a token
//!   from the API) for its manifest;
//! - a video whose manifest cannot be had (no playback URL in its JSON, a
//!   401/403 or 404 from the host, no token) costs both lists (two
//!   requests), as with [`Captions::FromApi`];
//! - a video whose manifest the host could not give this time (no answer
//!   within the probe timeout, its breaker open, a 429 or 5xx) costs
//!   nothing now: its captions and audio tracks are left for the next run
//!   (counted in the summary as `extras_deferred`), rather than two API
//!   requests for every video of a host that is down.
//!
//! A caption still generating is recorded, not written; the video's list is
//! asked again by the next run, which writes it once ready. A caption that
//! cannot be written (the API answered HTML or JSON where WebVTT was due)
//! fails alone: the video's media and its other captions stand, and the
//! failure is reported (tried again with `--retry-failed`).

use std::sync::atomic::Ordering;

use cloudflare_stream_downloads::Signing;
use sha2::{Digest, Sha256};

use crate::attempt::NOT_FOUND;
use crate::dest::{Destination, file_has_size, write_atomically};
use crate::error::ExportError;
use crate::extras::{AudioEntry, CaptionEntry, Extras, Needs, caption_file_name};
use crate::host::{self, Asked};
use crate::options::Captions;
use crate::report::{Failure, Progress};
use crate::run::{Outcome, Run};
use crate::state::VideoRow;

impl Run {
    /// What the video's extras still need in this run.
    pub(crate) fn extras_needs(&self, row: &VideoRow) -> Result<Needs, ExportError> {
        let extras = Extras::parse(row.extras.as_deref());
        let failed = std::cell::RefCell::new(None);
        let needs = extras.needs(
            self.options.captions != Captions::Off,
            self.options.retry_failed,
            |file, size| match self.has_named(file, size) {
                Ok(there) => there,
                Err(e) => {
                    failed.borrow_mut().get_or_insert(e);
                    false
                }
            },
        );
        match failed.into_inner() {
            Some(e) => Err(e),
            None => Ok(needs),
        }
    }

    /// Reports the captions that failed in an earlier run (not tried
    /// again without `--retry-failed`).
    pub(crate) fn report_failed_before(&self, uid: &str, needs: &Needs) {
        for (language, reason) in &needs.failed_before {
            self.caption_failed(
                uid,
                Some(language),
                format!("{reason} (earlier run; --retry-failed to try again)"),
            );
        }
    }

    /// Archives the extras of a video whose media files are done; records
    /// them in the state (the sidecar is written after).
    pub(crate) async fn extras(&self, row: &VideoRow, signing: Signing) -> Outcome {
        let uid = row.uid.as_str();
        let needs = self.extras_needs(row)?;
        self.report_failed_before(uid, &needs);
        if needs.idle() {
            return Ok(());
        }
        let mut extras = Extras::parse(row.extras.as_deref());
        let (mut ask_captions, mut ask_audio) =
            (needs.learn_captions || needs.relist, needs.learn_audio);
        if (needs.learn_captions || needs.learn_audio) && self.options.captions != Captions::FromApi
        {
            match self.read_manifest(row, signing).await {
                Read::Manifest(manifest) => {
                    if needs.learn_captions && manifest.subtitles.is_empty() {
                        ask_captions = false;
                        extras.captions = Some(Vec::new());
                    }
                    // The first audio rendition is the upload's own.
                    if needs.learn_audio && manifest.audio.len() <= 1 {
                        ask_audio = false;
                        extras.audio_tracks = Some(Vec::new());
                    }
                }
                Read::AskTheApi => {}
                Read::Later => {
                    // The host could not say (its breaker is open, it
                    // failed, it asked to slow down): the media of its
                    // videos went the API's way; their extras wait for the
                    // next run rather than cost two API requests each.
                    self.extra_counts.deferred.fetch_add(1, Ordering::Relaxed);
                    if needs.learn_captions {
                        ask_captions = false;
                    }
                    ask_audio = false;
                }
            }
        }
        if ask_captions {
            match self.api_call(|| self.client.captions(uid)).await? {
                Ok(list) => {
                    let previous = extras.captions.take().unwrap_or_default();
                    extras.captions = Some(
                        list.into_iter()
                            .filter_map(|c| {
                                let language = c.language?;
                                // A caption already written stays as it is;
                                // one that failed stays failed (unless
                                // --retry-failed).
                                let before = previous.iter().find(|p| p.language == language);
                                let kept = before.filter(|p| p.file.is_some());
                                let error = before
                                    .filter(|_| !self.options.retry_failed)
                                    .and_then(|p| p.error.clone());
                                let status = c
                                    .status
                                    .map_or_else(|| "ready".to_owned(), |s| s.to_string());
                                Some(CaptionEntry {
                                    label: c.label.unwrap_or_default(),
                                    generated: c.generated.unwrap_or(false),
                                    file: kept.and_then(|k| k.file.clone()),
                                    size: kept.and_then(|k| k.size),
                                    sha256: kept.and_then(|k| k.sha256.clone()),
                                    error,
                                    status,
                                    language,
                                })
                            })
                            .collect(),
                    );
                }
                Err(reason) => self.caption_failed(uid, None, list_reason(reason)),
            }
        }
        if ask_audio {
            match self.api_call(|| self.client.audio_tracks(uid)).await? {
                Ok(list) => {
                    self.extra_counts
                        .audio_tracks
                        .fetch_add(list.len() as u64, Ordering::Relaxed);
                    extras.audio_tracks = Some(
                        list.into_iter()
                            .filter_map(|a| {
                                Some(AudioEntry {
                                    uid: a.uid?.to_string(),
                                    label: a.label.unwrap_or_default(),
                                    default: a.default.unwrap_or(false),
                                    status: a.status.map_or_else(String::new, |s| s.to_string()),
                                })
                            })
                            .collect(),
                    );
                }
                Err(reason) => self.caption_failed(
                    uid,
                    None,
                    format!("additional audio tracks: {}", list_reason(reason)),
                ),
            }
        }
        if let Some(captions) = &mut extras.captions {
            for c in captions.iter_mut() {
                self.write_caption(uid, c).await?;
            }
        }
        self.store.set_extras(uid, &extras.to_json())
    }

    /// The video's manifest, when it can be read for no API request.
    async fn read_manifest(&self, row: &VideoRow, signing: Signing) -> Read {
        let Some(url) = row.listed.as_deref().and_then(host::manifest_url) else {
            return Read::AskTheApi;
        };
        // As the download host's probes: a signed video is asked with a
        // local token; without a signing key, one token from the API reads
        // its manifest (cheaper than the two lists it spares).
        let how = match (signing, self.client.signing_key().is_some()) {
            (_, true) => signing,
            (Signing::Required, false) => {
                let token = match self.api_call(|| self.client.token(&row.uid)).await {
                    Ok(Ok(token)) => token,
                    _ => return Read::AskTheApi,
                };
                let asked = self
                    .host
                    .manifest_with_token(&self.client, &row.uid, &url, &token)
                    .await;
                return read(asked);
            }
            (_, false) => Signing::Never,
        };
        read(self.host.manifest(&self.client, &row.uid, &url, how).await)
    }

    /// Writes one ready caption not yet in the archive (or whose file is
    /// not what was recorded); counts the others.
    async fn write_caption(&self, uid: &str, c: &mut CaptionEntry) -> Outcome {
        match c.status.as_str() {
            "ready" => {}
            "inprogress" => {
                self.extra_counts
                    .captions_pending
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            _ => return Ok(()),
        }
        if let (Some(file), Some(size), None) = (&c.file, c.size, &c.error)
            && self.has_named(file, size)?
        {
            self.extra_counts
                .captions_present
                .fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if c.error.is_some() && !self.options.retry_failed {
            return Ok(());
        }
        let language = c.language.clone();
        let text = match self
            .api_call(|| self.client.caption_vtt(uid, &language))
            .await?
        {
            Ok(text) => text,
            Err(reason) => {
                let reason = if reason == NOT_FOUND {
                    "caption not found (removed since it was listed?)".to_owned()
                } else {
                    reason
                };
                (c.file, c.size, c.sha256) = (None, None, None);
                c.error = Some(reason.clone());
                self.caption_failed(uid, Some(&language), reason);
                return Ok(());
            }
        };
        let name = caption_file_name(uid, &language);
        let bytes = text.into_bytes();
        let sha256 = crate::store::hex(&Sha256::digest(&bytes));
        match &self.options.dest {
            Destination::Dir(dir) => write_atomically(dir, &name, &bytes)?,
            Destination::Store(dest) => dest.put_small(&self.store, &name, bytes.clone()).await?,
        }
        (c.file, c.size, c.sha256, c.error) =
            (Some(name), Some(bytes.len() as u64), Some(sha256), None);
        self.extra_counts
            .captions_written
            .fetch_add(1, Ordering::Relaxed);
        (self.observer)(Progress::CaptionWritten {
            video_id: uid.to_owned(),
            language,
            bytes: bytes.len() as u64,
        });
        Ok(())
    }

    /// Whether the destination holds `name` with `size` bytes.
    pub(crate) fn has_named(&self, name: &str, size: u64) -> Result<bool, ExportError> {
        Ok(match &self.options.dest {
            Destination::Dir(dir) => file_has_size(&dir.join(name), size),
            Destination::Store(dest) => {
                self.store.object_size(dest.key(name).as_ref())? == Some(size)
            }
        })
    }

    /// Reports a caption (or a video's caption or audio list) that failed.
    fn caption_failed(&self, uid: &str, language: Option<&str>, reason: String) {
        self.record_failure(Failure {
            video_id: uid.to_owned(),
            kind: if language.is_some() {
                "caption"
            } else {
                "captions"
            },
            language: language.map(str::to_owned),
            reason,
        });
    }
}

/// What reading a video's manifest gave.
enum Read {
    /// Its renditions.
    Manifest(cloudflare_stream_downloads::Manifest),
    /// None can be had for it (no manifest URL, a signed video without a
    /// signing key, no manifest there): the API is asked.
    AskTheApi,
    /// The host could not say this time: the next run looks again.
    Later,
}

/// What a manifest request gave, for the extras.
fn read(asked: Asked<Option<cloudflare_stream_downloads::Manifest>>) -> Read {
    match asked {
        Asked::Answered(Some(manifest)) => Read::Manifest(manifest),
        // No manifest (404), or the host refused the video (a token it
        // wants, or refused).
        Asked::Answered(None) | Asked::Refused => Read::AskTheApi,
        Asked::Unknown => Read::Later,
    }
}

/// A list's failure, named for what it was.
fn list_reason(reason: String) -> String {
    if reason == NOT_FOUND {
        reason
    } else {
        format!("listing: {reason}")
    }
}
