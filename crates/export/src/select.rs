//! Selection: the videos of a run, from the ids given or the listing,
//! split by shard and stored page by page.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use cloudflare_stream_downloads::videos::{PageRequest, VideoWalk};
use cloudflare_stream_downloads::{Client, Error, VideoQuery};
use tokio::sync::watch;

use crate::attempt::{Class, STEP_ATTEMPTS, Step, backoff, classify};
use crate::error::ExportError;
use crate::limiter::Limiter;
use crate::listed::requires_signed_urls;
use crate::options::{ExportOptions, Selection};
use crate::report::{Observer, Progress};
use crate::run::Run;

/// A page of the selection: ids, with the video's JSON when listed.
pub(crate) type Batch = Vec<(String, Option<String>)>;

/// applied): the given ids, or the listing, retried on 429 and transient
/// failures page by page.
pub(crate) async fn walk_selection(
    client: &Client,
    options: &ExportOptions,
    limiter: &Limiter,
    observer: &Observer,
    stop: &watch::Receiver<bool>,
    page: &mut dyn FnMut(Batch) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let mut count = 0u64;
    match &options.selection {
        Selection::Ids(ids) => {
            let mut seen = HashSet::new();
            let mut batch = Vec::new();
            for id in ids {
                if options.shard.contains(id) && seen.insert(id.as_str()) {
                    batch.push((id.clone(), None));
                }
                if batch.len() == 1000 {
                    page(std::mem::take(&mut batch))?;
                }
            }
            page(batch)?;
        }
        Selection::All(query) => {
            let mut walk = VideoWalk::new(query);
            let mut failures = 0u32;
            while let Some(request) = walk.next_request() {
                // Ctrl-C during the listing: the run stops with what it has
                // (the next run lists again).
                if *stop.borrow() {
                    break;
                }
                let answer = list_page(client, query, request).await;
                let videos = match answer {
                    Ok(p) => {
                        failures = 0;
                        walk.accept(p).map_err(|why| ExportError::Api {
                            context: "listing the videos".into(),
                            source: Box::new(Error::InvalidInput {
                                what: "listing",
                                reason: why,
                            }),
                        })?
                    }
                    Err(e) => {
                        match classify(&e, Step::Api) {
                            Class::Pause => {
                                limiter.wait_pause().await;
                                continue;
                            }
                            Class::Transient { .. } if failures + 1 < STEP_ATTEMPTS => {
                                failures += 1;
                                tokio::time::sleep(backoff(failures)).await;
                                continue;
                            }
                            _ => {}
                        }
                        return Err(ExportError::Api {
                            context: "listing the videos".into(),
                            source: Box::new(e),
                        });
                    }
                };
                let batch: Vec<_> = videos
                    .into_iter()
                    .filter_map(|v| {
                        let uid = v.uid()?.to_owned();
                        options
                            .shard
                            .contains(&uid)
                            .then(|| (uid, Some(v.raw_json().to_owned())))
                    })
                    .collect();
                count += batch.len() as u64;
                page(batch)?;
                observer(Progress::Listing { videos: count });
            }
        }
    }
    Ok(())
}

async fn list_page(
    client: &Client,
    query: &VideoQuery,
    request: PageRequest,
) -> Result<cloudflare_stream_downloads::VideosPage, Error> {
    client.list_videos(query, request).await
}

impl Run {
    /// Stores the selection; returns the number of videos.
    pub(crate) async fn select(&self, run_id: i64) -> Result<u64, ExportError> {
        let types = self.options.types.clone();
        let store = &self.store;
        let signed = &self.signed_videos;
        let mut page = |batch: Batch| {
            let n = batch
                .iter()
                .filter(|(_, json)| json.as_deref().is_some_and(requires_signed_urls))
                .count();
            signed.fetch_add(n as u64, Ordering::Relaxed);
            store.select(run_id, &batch, &types)
        };
        walk_selection(
            &self.client,
            &self.options,
            &self.limiter,
            &self.observer,
            &self.stop,
            &mut page,
        )
        .await?;
        self.store.selection_count(run_id)
    }
}
