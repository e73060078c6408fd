//! The video listing walk against stream-fake over loopback: every video
//! exactly once, whatever the server does with its bounds and however many
//! videos share a creation time at a page boundary; filters; the count;
//! what the walk refuses instead of skipping.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use cloudflare_stream_downloads::types::VideoStateFilter;
use cloudflare_stream_downloads::{Client, Error, VideoQuery, VideoState};
use futures_util::TryStreamExt;
use stream_fake::catalog::{self, Bounds, CatalogVideo};
use stream_fake::{FakeConfig, StreamFake};

async fn fake(generated: usize, catalog: Vec<CatalogVideo>, bounds: Bounds) -> StreamFake {
    StreamFake::start(FakeConfig {
        videos: Vec::new(),
        generated_videos: generated,
        catalog,
        bounds,
        ..FakeConfig::default()
    })
    .await
    .unwrap()
}

fn client(fake: &StreamFake) -> Client {
    Client::builder()
        .api_token(fake.config().api_token.clone())
        .account_id(fake.config().account_id.clone())
        .base_url(fake.base_url())
        .build()
        .unwrap()
}

async fn walk(client: &Client, query: VideoQuery) -> Result<Vec<String>, Error> {
    client
        .videos(query)
        .map_ok(|v| v.uid().unwrap().to_owned())
        .try_collect()
        .await
}

/// What the walk must yield: the fake's catalog in the walk's order.
fn expected(catalog: &[CatalogVideo], ascending: bool) -> Vec<String> {
    let mut ids: Vec<String> = catalog.iter().map(|v| v.uid.clone()).collect();
    if !ascending {
        ids.reverse();
    }
    ids
}

fn assert_each_once(got: &[String], want: &[String], case: &str) {
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "{case}: a video was repeated");
    assert_eq!(got.len(), want.len(), "{case}: count");
    assert_eq!(got, want, "{case}: not every video, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walks_of_every_size_in_both_orders_and_both_bound_kinds() {
    for n in [0, 1, 999, 1000, 1001, 2500] {
        for bounds in [Bounds::Exclusive, Bounds::Inclusive] {
            let fake = fake(n, Vec::new(), bounds).await;
            let client = client(&fake);
            let catalog = fake.catalog();
            assert_eq!(catalog.len(), n);
            for ascending in [false, true] {
                let before = fake.api_request_count();
                let got = walk(&client, VideoQuery::all().ascending(ascending))
                    .await
                    .unwrap();
                let case = format!("{n} videos, {bounds:?}, ascending {ascending}");
                assert_each_once(&got, &expected(&catalog, ascending), &case);
                // One page per 999 new videos, plus the page that ends it.
                let requests = fake.api_request_count() - before;
                assert!(
                    requests <= (n as u64).div_ceil(999) + 1,
                    "{case}: {requests} requests"
                );
            }
        }
    }
}

/// `n` videos at one second apart, except `ties` of them sharing one
/// instant, starting at position `at` (oldest first).
fn layout(n: usize, at: usize, ties: usize) -> Vec<CatalogVideo> {
    let t0 = catalog::epoch();
    let mut offset = 0i64;
    (0..n)
        .map(|i| {
            if !(i > at && i < at + ties) {
                offset += 1;
            }
            CatalogVideo::ready(
                &catalog::generated_uid(i as u64),
                t0 + Duration::seconds(offset),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ties_across_page_boundaries() {
    // Page size 100; groups of ties straddling the boundaries of both
    // orders, up to a full page's worth.
    let cases = [
        (350, 95, 10),
        (350, 240, 40),
        (350, 150, 100),
        (350, 0, 100),
    ];
    for (n, at, ties) in cases {
        for bounds in [Bounds::Exclusive, Bounds::Inclusive] {
            let fake = fake(0, layout(n, at, ties), bounds).await;
            let client = client(&fake);
            let catalog = fake.catalog();
            for ascending in [false, true] {
                let got = walk(
                    &client,
                    VideoQuery::all().ascending(ascending).page_size(100),
                )
                .await
                .unwrap();
                let case = format!("{ties} ties at {at} of {n}, {bounds:?}, ascending {ascending}");
                assert_each_once(&got, &expected(&catalog, ascending), &case);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_ties_than_a_page_is_an_error_not_a_silent_skip() {
    for bounds in [Bounds::Exclusive, Bounds::Inclusive] {
        let fake = fake(0, layout(300, 50, 150), bounds).await;
        let client = client(&fake);
        let err = walk(&client, VideoQuery::all().page_size(100))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("share the creation time") && text.contains("cannot page past them"),
            "{bounds:?}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_bounds_and_max() {
    let fake = fake(2500, Vec::new(), Bounds::Inclusive).await;
    let client = client(&fake);
    let catalog = fake.catalog();
    let t = |i: usize| catalog[i].created;
    let (after, before): (DateTime<Utc>, DateTime<Utc>) = (t(400), t(2100));

    type Keep = Box<dyn Fn(&CatalogVideo) -> bool>;
    let cases: Vec<(VideoQuery, Keep)> = vec![
        (
            VideoQuery::all().status(VideoStateFilter::Inprogress),
            Box::new(|v| v.state == "inprogress"),
        ),
        (
            VideoQuery::all().creator("creator-2"),
            Box::new(|v| v.creator.as_deref() == Some("creator-2")),
        ),
        (
            VideoQuery::all().search("VIDEO-0012"),
            Box::new(|v| v.name.starts_with("video-0012")),
        ),
        (
            VideoQuery::all().video_name("video-000042.mp4"),
            Box::new(|v| v.name == "video-000042.mp4"),
        ),
        // The fake is inclusive here: the user's own bounds keep the
        // server's semantics, and the walk never widens them.
        (
            VideoQuery::all()
                .created_after(after)
                .created_before(before),
            Box::new(move |v| v.created >= after && v.created <= before),
        ),
        (
            VideoQuery::all()
                .created_after(after)
                .created_before(before)
                .page_size(250)
                .ascending(true),
            Box::new(move |v| v.created >= after && v.created <= before),
        ),
    ];
    for (query, keep) in cases {
        let want: Vec<CatalogVideo> = catalog.iter().filter(|v| keep(v)).cloned().collect();
        assert!(!want.is_empty(), "{query:?} selects nothing in the fixture");
        let got = walk(&client, query.clone()).await.unwrap();
        assert_each_once(
            &got,
            &expected(&want, query.ascending),
            &format!("{query:?}"),
        );
        let count = client.video_count(&query).await.unwrap();
        assert_eq!(count, want.len() as u64, "count of {query:?}");
    }

    // max stops the walk, and the request count with it.
    let before_requests = fake.api_request_count();
    let got = walk(&client, VideoQuery::all().max(1500)).await.unwrap();
    assert_eq!(got, expected(&catalog, false)[..1500]);
    assert_eq!(fake.api_request_count() - before_requests, 2);
    assert_eq!(client.video_count(&VideoQuery::all()).await.unwrap(), 2500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_video_state_decodes_and_keeps_its_value() {
    let mut odd = CatalogVideo::ready(&catalog::generated_uid(100), catalog::epoch());
    odd.state = "live-finished".into();
    let fake = fake(3, vec![odd], Bounds::Exclusive).await;
    let client = client(&fake);
    let videos: Vec<_> = client
        .videos(VideoQuery::all())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(videos.len(), 4);
    let odd = videos
        .iter()
        .find(|v| v.uid() == Some(catalog::generated_uid(100).as_str()))
        .unwrap();
    let state = odd.status.as_ref().unwrap().state.clone().unwrap();
    assert_eq!(state, VideoState::Unknown("live-finished".into()));
    // The JSON as the API sent it, field for field.
    let raw: serde_json::Value = serde_json::from_str(odd.raw_json()).unwrap();
    assert_eq!(raw["status"]["state"], "live-finished");
    assert_eq!(raw["meta"]["name"], odd.meta.as_ref().unwrap()["name"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_refused_before_any_request() {
    let fake = fake(10, Vec::new(), Bounds::Exclusive).await;
    let client = client(&fake);
    let t = catalog::epoch();
    for query in [
        VideoQuery::all().page_size(0),
        VideoQuery::all().page_size(1001),
        VideoQuery::all().creator("c".repeat(65)),
        VideoQuery::all().created_after(t).created_before(t),
    ] {
        let err = walk(&client, query.clone()).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { .. }),
            "{query:?}: {err}"
        );
        let err = client.video_count(&query).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { .. }),
            "{query:?}: {err}"
        );
    }
    assert_eq!(fake.api_request_count(), 0);
}
