//! The listing walk (`VideoWalk`) against a model of the API, over random
//! creation-time layouts (ties, neighbours one microsecond apart, gaps),
//! page sizes, orders, bound kinds and `max`: every video exactly once, in
//! order; or, only when more videos than a page share one instant, an
//! error (never a silent skip). The same walk runs over real HTTP against
//! stream-fake in `tests/tests/video_listing.rs`.

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use cloudflare_stream_downloads::videos::{PageRequest, VideoWalk};
use cloudflare_stream_downloads::{ListedVideo, VideoQuery, VideosPage};
use proptest::prelude::*;

/// A server holding `videos` sorted by (created, uid).
struct Model {
    videos: Vec<(String, DateTime<Utc>)>,
    inclusive: bool,
    ascending: bool,
    /// The server's order among ties: by uid, or by uid reversed.
    ties_reversed: bool,
}

impl Model {
    fn answer(&self, r: &PageRequest) -> VideosPage {
        let inside = |t: DateTime<Utc>| {
            let after = r
                .after
                .is_none_or(|a| if self.inclusive { t >= a } else { t > a });
            let before = r
                .before
                .is_none_or(|b| if self.inclusive { t <= b } else { t < b });
            after && before
        };
        let mut matching: Vec<&(String, DateTime<Utc>)> =
            self.videos.iter().filter(|(_, t)| inside(*t)).collect();
        matching.sort_by(|a, b| {
            let by_time = a.1.cmp(&b.1);
            let by_uid = if self.ties_reversed {
                b.0.cmp(&a.0)
            } else {
                a.0.cmp(&b.0)
            };
            by_time.then(by_uid)
        });
        if !self.ascending {
            matching.sort_by_key(|v| std::cmp::Reverse(v.1)); // stable: keeps the tie order
        }
        let total = matching.len();
        let videos = matching
            .into_iter()
            .take(usize::from(r.limit))
            .map(|(uid, t)| {
                ListedVideo::from_json(&format!(
                    r#"{{"uid":"{uid}","created":"{}","meta":{{"name":"{uid}"}}}}"#,
                    t.to_rfc3339_opts(SecondsFormat::Micros, true)
                ))
                .unwrap()
            })
            .collect();
        VideosPage {
            videos,
            total: r.include_counts.then_some(total as i64),
            range: None,
        }
    }
}

/// Gaps between consecutive creation times, in microseconds: many ties
/// (0) and neighbours (1), some larger steps.
fn gaps() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(0i64),
            2 => Just(1i64),
            1 => 2i64..5,
            2 => 1_000i64..5_000_000,
        ],
        0..300,
    )
}

fn layout(gaps: &[i64]) -> Vec<(String, DateTime<Utc>)> {
    let mut t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    gaps.iter()
        .enumerate()
        .map(|(i, gap)| {
            t += Duration::microseconds(*gap);
            (
                format!("{:032x}", (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                t,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_video_exactly_once_or_a_clear_error(
        gaps in gaps(),
        page_size in 1u16..40,
        inclusive: bool,
        ascending: bool,
        ties_reversed: bool,
        max in prop::option::of(0u64..350),
    ) {
        let mut videos = layout(&gaps);
        videos.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        let model = Model { videos: videos.clone(), inclusive, ascending, ties_reversed };
        let mut query = VideoQuery::all().ascending(ascending).page_size(page_size);
        query.max = max;
        let mut walk = VideoWalk::new(&query);
        let mut got: Vec<String> = Vec::new();
        let mut error = None;
        let mut requests = 0u64;
        while let Some(request) = walk.next_request() {
            requests += 1;
            prop_assert!(requests < 10_000, "the walk does not end");
            match walk.accept(model.answer(&request)) {
                Ok(fresh) => got.extend(fresh.iter().map(|v| v.uid().unwrap().to_owned())),
                Err(e) => { error = Some(e); break; }
            }
        }

        // The longest run of one creation time.
        let mut longest = 0usize;
        let mut run = 0usize;
        for (i, v) in videos.iter().enumerate() {
            run = if i > 0 && videos[i - 1].1 == v.1 { run + 1 } else { 1 };
            longest = longest.max(run);
        }
        let mut want: Vec<(String, DateTime<Utc>)> = videos;
        if !ascending {
            want.reverse();
        }
        let limit = max.map_or(want.len(), |m| (m as usize).min(want.len()));
        match error {
            Some(e) => {
                prop_assert!(longest > usize::from(page_size), "error with {longest} ties at most: {e}");
                prop_assert!(e.contains("cannot page past them"), "{e}");
            }
            None => {
                // Exactly once each, and in creation order (the order among
                // ties is the server's).
                let mut unique = got.clone();
                unique.sort();
                unique.dedup();
                prop_assert_eq!(unique.len(), got.len(), "a video was repeated");
                prop_assert_eq!(got.len(), limit, "not every video was listed");
                let mut expected: Vec<&String> = want.iter().take(limit).map(|v| &v.0).collect();
                let mut listed: Vec<&String> = got.iter().collect();
                if max.is_none() {
                    expected.sort();
                    listed.sort();
                    prop_assert_eq!(listed, expected);
                } else {
                    // With `max`, the first `max` in creation order (ties
                    // may be cut in the server's order).
                    let time = |uid: &String| want.iter().find(|v| &v.0 == uid).unwrap().1;
                    let last = want[..limit].last().map(|v| v.1);
                    for uid in &got {
                        let t = time(uid);
                        let in_order = last.is_none_or(|l| if ascending { t <= l } else { t >= l });
                        prop_assert!(in_order, "{} is past the first {}", uid, limit);
                    }
                }
            }
        }
    }
}
