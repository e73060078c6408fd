//! Listing an account's videos: one page ([`Client::list_videos`]), every
//! page ([`Client::videos`], a `Stream`), and the count
//! ([`Client::video_count`]).
//!
//! # How the walk pages
//!
//! The API lists at most 1000 videos per request and has no page token:
//! the next page is asked for with a creation-time bound taken from the
//! last video received (`before` when walking newest first, the default;
//! `after` in ascending order). Cloudflare does not document whether the
//! bounds are inclusive, nor the order of videos that share one `created`
//! instant, and many can (bulk uploads, clips). [`VideoWalk`] therefore:
//!
//! * overlaps: it asks for the bound moved by [`EPSILON`] (1 µs) past the
//!   last `created`, so an exclusive server still returns the videos at
//!   that instant that did not fit on the previous page, and drops the ids
//!   it has already yielded (it remembers only the ids within `EPSILON` of
//!   the bound, so memory does not grow with the number of videos);
//! * when a full page brings nothing new (a page's worth of videos share
//!   one instant, or with an inclusive server the neighbours 1 µs away
//!   filled it), counts the videos at that instant (`include_counts`, one
//!   or two requests of one video) and, if they fit on a page, asks at the
//!   bound itself (which returns the ones not seen yet), then 1 µs short of
//!   it;
//! * stops when a page holds fewer videos than asked for, or at `max`.
//!
//! Every video is yielded exactly once whether the server's bounds are
//! inclusive or exclusive, with up to a full page of videos sharing one
//! `created` value at a page boundary. Limits, stated: more videos than a
//! page (`page_size`) with one identical `created` cannot be paged through
//! by this API at all (the count finds them, and the walk fails with an
//! error instead of skipping silently); and the overlap assumes the server
//! compares bounds at microsecond precision or finer. A page out of creation order, or a
//! video without `uid` or `created`, is an [`Error::UnexpectedResponse`]:
//! paging past it could skip videos.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU64;
use std::pin::Pin;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::{Stream, TryStreamExt, stream};
use reqwest::StatusCode;

use crate::client::Client;
use crate::envelope::Envelope;
use crate::error::{Error, RequestSummary};
pub use crate::listed::{ListedVideo, VideoList};
use crate::types::{Creator, Message, VideoStateFilter, VideosResponse};

/// Most videos the API returns per request.
pub const MAX_PAGE_SIZE: u16 = 1000;

/// How far past the last `created` the next bound is set (see the module
/// documentation).
pub const EPSILON: TimeDelta = TimeDelta::microseconds(1);

/// One page of the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct VideosPage {
    /// The videos, in the order the API sent them.
    pub videos: Vec<ListedVideo>,
    /// `total`: videos matching the filters (with `include_counts`).
    pub total: Option<i64>,
    /// `range`: "the total number of remaining videos based on cursor
    /// position" (not used by the walk: its meaning is not documented
    /// precisely enough to stop on).
    pub range: Option<i64>,
}

impl Envelope for crate::types::VideoResponse {
    type Result = ListedVideo;
    fn parts(self) -> (bool, Vec<Message>, Vec<Message>, Option<ListedVideo>) {
        (self.success, self.errors.0, self.messages.0, self.result)
    }
}

impl Envelope for VideosResponse {
    type Result = VideosPage;
    fn parts(self) -> (bool, Vec<Message>, Vec<Message>, Option<VideosPage>) {
        let page = self.result.map(|list| VideosPage {
            videos: list.0,
            total: self.total,
            range: self.range,
        });
        (self.success, self.errors.0, self.messages.0, page)
    }
}

/// Which videos to list, and how. Filters map to the API's query
/// parameters; everything is checked before any request.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoQuery {
    /// `status`: only videos in this processing state.
    pub status: Option<VideoStateFilter>,
    /// `creator`: only videos with this creator id (at most 64 characters).
    pub creator: Option<String>,
    /// `search`: partial match on `meta.name` (slow on large libraries).
    pub search: Option<String>,
    /// `video_name`: exact match on `meta.name`.
    pub video_name: Option<String>,
    /// `after`: only videos created after this instant (the server's
    /// inclusivity applies).
    pub created_after: Option<DateTime<Utc>>,
    /// `before`: only videos created before this instant.
    pub created_before: Option<DateTime<Utc>>,
    /// `asc`: oldest first (default: newest first, as the API).
    pub ascending: bool,
    /// Stop after this many videos.
    pub max: Option<u64>,
    /// Videos per request, 1..=1000 (default 1000, the API's maximum).
    pub page_size: u16,
}

impl Default for VideoQuery {
    fn default() -> Self {
        Self {
            status: None,
            creator: None,
            search: None,
            video_name: None,
            created_after: None,
            created_before: None,
            ascending: false,
            max: None,
            page_size: MAX_PAGE_SIZE,
        }
    }
}

impl VideoQuery {
    /// Every video of the account, newest first.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only videos in `state`.
    pub fn status(mut self, state: VideoStateFilter) -> Self {
        self.status = Some(state);
        self
    }

    /// Only videos of this creator.
    pub fn creator(mut self, creator: impl Into<String>) -> Self {
        self.creator = Some(creator.into());
        self
    }

    /// Partial match on `meta.name`.
    pub fn search(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }

    /// Exact match on `meta.name`.
    pub fn video_name(mut self, name: impl Into<String>) -> Self {
        self.video_name = Some(name.into());
        self
    }

    /// Only videos created after `t`.
    pub fn created_after(mut self, t: DateTime<Utc>) -> Self {
        self.created_after = Some(t);
        self
    }

    /// Only videos created before `t`.
    pub fn created_before(mut self, t: DateTime<Utc>) -> Self {
        self.created_before = Some(t);
        self
    }

    /// Oldest first.
    pub fn ascending(mut self, ascending: bool) -> Self {
        self.ascending = ascending;
        self
    }

    /// At most `n` videos.
    pub fn max(mut self, n: u64) -> Self {
        self.max = Some(n);
        self
    }

    /// Videos per request (1..=1000).
    pub fn page_size(mut self, n: u16) -> Self {
        self.page_size = n;
        self
    }

    /// Check the query as the client will before any request (page size,
    /// bounds, creator length).
    pub fn validate(&self) -> Result<(), Error> {
        self.check().map(drop)
    }

    fn check(&self) -> Result<Option<Creator>, Error> {
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(Error::InvalidInput {
                what: "page size",
                reason: format!("{} is not in 1..={MAX_PAGE_SIZE}", self.page_size),
            });
        }
        if let (Some(a), Some(b)) = (self.created_after, self.created_before)
            && a >= b
        {
            return Err(Error::InvalidInput {
                what: "created-time bounds",
                reason: format!("created after {a} and before {b} selects nothing"),
            });
        }
        self.creator
            .as_deref()
            .map(|c| {
                Creator::try_from(c).map_err(|e| Error::InvalidInput {
                    what: "creator",
                    reason: e.to_string(),
                })
            })
            .transpose()
    }
}

/// The bounds and size of one request of a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// `after`.
    pub after: Option<DateTime<Utc>>,
    /// `before`.
    pub before: Option<DateTime<Utc>>,
    /// `limit`.
    pub limit: u16,
    /// `include_counts`: this request only counts (see [`VideoWalk`]).
    pub include_counts: bool,
}

/// Where a stuck walk is in checking the videos at its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TieCheck {
    /// Count videos strictly within `EPSILON` of the bound.
    Wide,
    /// Count videos at exactly the bound (`after = before = bound`).
    Narrow { wide: u64 },
}

/// The paging logic of [`Client::videos`], without I/O: ask
/// [`next_request`](Self::next_request) what to send, give the answer to
/// [`accept`](Self::accept), yield what it returns. See the module
/// documentation for why it neither skips nor repeats.
///
/// When a full page brings nothing new, a page's worth of videos share the
/// bound's instant. Before stepping past it, the walk counts them
/// (`include_counts`, one or two requests of one video): exactly a page's
/// worth, all seen, and it moves on; more, and the walk ends with an error
/// instead of skipping the ones the API cannot page to.
#[derive(Debug, Clone)]
pub struct VideoWalk {
    ascending: bool,
    user_after: Option<DateTime<Utc>>,
    user_before: Option<DateTime<Utc>>,
    page_size: u16,
    remaining: Option<u64>,
    /// `created` of the last video of the last full page.
    bound: Option<DateTime<Utc>>,
    /// 0: overlap past the bound; 1: at the bound; 2: one step short of it.
    stage: u8,
    /// A count of the videos at the bound is under way.
    check: Option<TieCheck>,
    /// The bound whose videos were counted and all seen.
    checked: Option<DateTime<Utc>>,
    /// Ids already yielded whose `created` is within `EPSILON` of `bound`.
    window: HashMap<String, DateTime<Utc>>,
    last_request: Option<PageRequest>,
    done: bool,
    requests: u64,
}

impl VideoWalk {
    /// A walk over `query`'s videos.
    pub fn new(query: &VideoQuery) -> Self {
        Self {
            ascending: query.ascending,
            user_after: query.created_after,
            user_before: query.created_before,
            page_size: query.page_size.clamp(1, MAX_PAGE_SIZE),
            remaining: query.max,
            bound: None,
            stage: 0,
            check: None,
            checked: None,
            window: HashMap::new(),
            last_request: None,
            done: query.max == Some(0),
            requests: 0,
        }
    }

    /// Answers accepted so far (pages and counts).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The next request, or `None` when the walk is over.
    pub fn next_request(&mut self) -> Option<PageRequest> {
        if self.done {
            return None;
        }
        let request = match (self.check, self.bound) {
            (Some(TieCheck::Wide), Some(t)) => PageRequest {
                after: Some(t - EPSILON),
                before: Some(t + EPSILON),
                limit: 1,
                include_counts: true,
            },
            (Some(TieCheck::Narrow { .. }), Some(t)) => PageRequest {
                after: Some(t),
                before: Some(t),
                limit: 1,
                include_counts: true,
            },
            (_, bound) => {
                let (mut after, mut before) = (self.user_after, self.user_before);
                if let Some(bound) = bound {
                    let step = match self.stage {
                        0 => EPSILON,
                        1 => TimeDelta::zero(),
                        _ => -EPSILON,
                    };
                    if self.ascending {
                        let b = bound - step;
                        after = Some(self.user_after.map_or(b, |u| u.max(b)));
                    } else {
                        let b = bound + step;
                        before = Some(self.user_before.map_or(b, |u| u.min(b)));
                    }
                }
                PageRequest {
                    after,
                    before,
                    limit: self.page_size,
                    include_counts: false,
                }
            }
        };
        self.last_request = Some(request);
        Some(request)
    }

    /// Take the answer to the last request; returns the videos not yielded
    /// before, in the API's order. An `Err` explains why the walk cannot
    /// go on without risking a skip; the walk is then over.
    pub fn accept(&mut self, page: VideosPage) -> Result<Vec<ListedVideo>, String> {
        let result = match self.last_request.take() {
            None => Err("an answer was accepted without a request".into()),
            Some(request) => {
                self.requests += 1;
                if request.include_counts {
                    self.accept_count(page.total)
                } else {
                    self.accept_page(request, page.videos)
                }
            }
        };
        if result.is_err() {
            self.done = true;
        }
        result
    }

    fn accept_count(&mut self, total: Option<i64>) -> Result<Vec<ListedVideo>, String> {
        let total = total
            .and_then(|t| u64::try_from(t).ok())
            .ok_or("`include_counts=true` was asked, but the answer has no `total`")?;
        let bound = self.bound.unwrap_or_default();
        // Seen videos strictly within EPSILON of the bound (the window).
        let seen_near = self
            .window
            .values()
            .filter(|t| (**t - bound).abs() < EPSILON)
            .count() as u64;
        let too_many = |count: u64| {
            format!(
                "{count} videos share the creation time {}, more than a page ({}): the API \
                 cannot page past them",
                bound.to_rfc3339(),
                self.page_size
            )
        };
        let page = u64::from(self.page_size);
        match self.check.take() {
            Some(TieCheck::Wide) if total <= seen_near => {}
            Some(TieCheck::Wide) => {
                // More than seen: more ties, or (inclusive server) videos
                // one step away. Count the bound's instant alone.
                self.check = Some(TieCheck::Narrow { wide: total });
                return Ok(Vec::new());
            }
            // Exclusive server (`after = before` is empty): the wide count
            // was the bound's instant alone. Its page held every tie it
            // could, so unseen ones mean more than a page.
            Some(TieCheck::Narrow { wide }) if total == 0 => return Err(too_many(wide)),
            // Inclusive server: a page's worth or fewer at the bound are all
            // returned by asking at the bound itself (next, stage 1),
            // without the neighbours one step away that filled the page.
            Some(TieCheck::Narrow { .. }) if total > page => return Err(too_many(total)),
            Some(TieCheck::Narrow { .. }) => {}
            None => return Err("a count was accepted that was not asked for".into()),
        }
        // The videos at the bound fit on a page: ask at the bound, then
        // past it.
        self.checked = self.bound;
        self.stage = 1;
        Ok(Vec::new())
    }

    fn accept_page(
        &mut self,
        request: PageRequest,
        page: Vec<ListedVideo>,
    ) -> Result<Vec<ListedVideo>, String> {
        let full = page.len() >= usize::from(request.limit);
        let mut previous: Option<DateTime<Utc>> = None;
        for (i, v) in page.iter().enumerate() {
            let (Some(_), Some(created)) = (v.uid(), v.created()) else {
                return Err(format!(
                    "video {i} of the page has no `uid` or no `created`: the walk pages by \
                     creation time and cannot place it"
                ));
            };
            if let Some(p) = previous
                && (if self.ascending {
                    created < p
                } else {
                    created > p
                })
            {
                return Err(format!(
                    "the page is not in {} creation order at video {i} ({created} after {p}): \
                     paging on would skip videos",
                    if self.ascending {
                        "ascending"
                    } else {
                        "descending"
                    }
                ));
            }
            previous = Some(created);
        }

        // Where the bound would move, and which of this page's videos lie
        // within EPSILON of it, before the page is consumed.
        let next_bound = page.last().and_then(ListedVideo::created);
        let near = |bound: DateTime<Utc>, t: DateTime<Utc>| {
            if self.ascending {
                t <= bound && t >= bound - EPSILON
            } else {
                t >= bound && t <= bound + EPSILON
            }
        };
        let near_next: Vec<(String, DateTime<Utc>)> = next_bound
            .map(|b| {
                page.iter()
                    .filter_map(|v| Some((v.uid()?.to_owned(), v.created()?)))
                    .filter(|(_, t)| near(b, *t))
                    .collect()
            })
            .unwrap_or_default();

        let mut in_page: HashSet<String> = HashSet::with_capacity(page.len());
        let mut fresh: Vec<ListedVideo> = Vec::with_capacity(page.len());
        for v in page {
            let uid = v.uid().unwrap_or_default().to_owned();
            if self.window.contains_key(&uid) || !in_page.insert(uid) {
                continue;
            }
            fresh.push(v);
        }
        if let Some(remaining) = self.remaining.as_mut() {
            let keep = usize::try_from(*remaining)
                .unwrap_or(usize::MAX)
                .min(fresh.len());
            fresh.truncate(keep);
            *remaining -= keep as u64;
            if *remaining == 0 {
                self.done = true;
            }
        }
        if !full {
            self.done = true;
            return Ok(fresh);
        }
        if fresh.is_empty() {
            // A full page of videos already yielded: a page's worth share
            // the bound's instant. Count them once, then step to the bound
            // and past it.
            if self.checked != self.bound {
                self.check = Some(TieCheck::Wide);
            } else if self.stage < 2 {
                self.stage += 1;
            } else {
                return Err(format!(
                    "the server keeps answering videos already listed around {}; \
                     paging on could skip videos",
                    self.bound.map(|b| b.to_rfc3339()).unwrap_or_default()
                ));
            }
            return Ok(fresh);
        }
        // Progress: the new bound is the last video's `created`; remember
        // what was yielded within EPSILON of it.
        let bound = next_bound.unwrap_or_default();
        self.window.retain(|_, t| near(bound, *t));
        self.window.extend(near_next);
        self.bound = Some(bound);
        self.stage = 0;
        Ok(fresh)
    }
}

/// The videos of a walk, as they arrive.
pub type VideoStream = Pin<Box<dyn Stream<Item = Result<ListedVideo, Error>> + Send>>;

impl Client {
    /// One video's details (`GET /accounts/{account_id}/stream/{id}`): the
    /// same object the listing returns, with its JSON as sent. Tells, for
    /// instance, whether the video requires signed URLs
    /// (`require_signed_urls`).
    pub async fn video(&self, video_id: &str) -> Result<ListedVideo, Error> {
        let account = self.account()?;
        let video = crate::ids::video_id(video_id)?;
        let request = RequestSummary {
            method: "GET".into(),
            path: format!(
                "{}/accounts/{}/stream/{video_id}",
                self.shared.base_path, *account
            ),
        };
        let call = self.generated();
        let result = call.get_video(&account, &video).await;
        self.finish_with_result(&call, request, result).await
    }

    /// One request of the listing (`GET /accounts/{account_id}/stream`):
    /// the filters of `query` (its bounds, order and page size are
    /// replaced by `page`'s).
    pub async fn list_videos(
        &self,
        query: &VideoQuery,
        page: PageRequest,
    ) -> Result<VideosPage, Error> {
        let creator = query.check()?;
        let account = self.account()?;
        let request = self.listing_request();
        let limit = NonZeroU64::new(u64::from(page.limit)).ok_or_else(|| Error::InvalidInput {
            what: "page size",
            reason: "0 is not in 1..=1000".into(),
        })?;
        let call = self.generated();
        let result = call
            .list_videos(
                &account,
                page.after.as_ref(),
                query.ascending.then_some(&true),
                page.before.as_ref(),
                creator.as_ref(),
                None,
                None,
                page.include_counts.then_some(&true),
                Some(limit),
                None,
                None,
                query.search.as_ref(),
                None,
                query.status,
                None,
                query.video_name.as_ref(),
            )
            .await;
        self.finish_with_result(&call, request, result).await
    }

    /// Every video matching `query`, page by page (at most 1000 per
    /// request), as a `Stream`: each video exactly once, memory flat in the
    /// number of videos (one page at a time). See the [module
    /// documentation](crate::videos) for how the walk pages. The query is
    /// checked before any request; an error ends the stream.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// use cloudflare_stream_downloads::{Client, VideoQuery};
    /// # async fn run() -> Result<(), cloudflare_stream_downloads::Error> {
    /// let client = Client::from_env()?;
    /// let mut videos = client.videos(VideoQuery::all());
    /// while let Some(v) = videos.try_next().await? {
    ///     println!("{} {:?}", v.uid().unwrap_or("?"), v.created());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn videos(&self, query: VideoQuery) -> VideoStream {
        let client = self.clone();
        let walk = VideoWalk::new(&query);
        let pages = stream::try_unfold(
            (client, query, walk, false),
            |(client, query, mut walk, checked)| async move {
                if !checked {
                    query.check()?;
                    client.account()?;
                }
                let Some(request) = walk.next_request() else {
                    return Ok(None);
                };
                let page = client.list_videos(&query, request).await?;
                let fresh = walk
                    .accept(page)
                    .map_err(|reason| client.unusable_listing(reason))?;
                Ok(Some((fresh, (client, query, walk, true))))
            },
        );
        Box::pin(
            pages
                .map_ok(|fresh| stream::iter(fresh.into_iter().map(Ok)))
                .try_flatten(),
        )
    }

    /// How many videos match `query`'s filters and bounds (`total` of
    /// `include_counts`; one request of one video).
    pub async fn video_count(&self, query: &VideoQuery) -> Result<u64, Error> {
        let page = PageRequest {
            after: query.created_after,
            before: query.created_before,
            limit: 1,
            include_counts: true,
        };
        let answer = self.list_videos(query, page).await?;
        let total = answer.total.ok_or_else(|| {
            self.unusable_listing(
                "`include_counts=true` was asked, but the answer has no `total`".into(),
            )
        })?;
        u64::try_from(total)
            .map_err(|_| self.unusable_listing(format!("a negative `total`: {total}")))
    }

    fn listing_request(&self) -> RequestSummary {
        RequestSummary {
            method: "GET".into(),
            path: format!(
                "{}/accounts/{}/stream",
                self.shared.base_path,
                self.account_id().unwrap_or_default()
            ),
        }
    }

    /// A listing answer that decoded but cannot be used as it is.
    fn unusable_listing(&self, reason: String) -> Error {
        Error::UnexpectedResponse {
            request: self.listing_request(),
            status: StatusCode::OK,
            content_type: Some("application/json".into()),
            body_snippet: reason,
        }
    }
}
