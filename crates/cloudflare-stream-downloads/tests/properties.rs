//! Properties of the pure parts: `Retry-After` parsing, id validation,
//! and the HLS manifest parser.

use std::time::{Duration, SystemTime};

use cloudflare_stream_downloads::check_id;
use cloudflare_stream_downloads::{Decision, RetryPolicy};
use proptest::prelude::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

fn headers(name: &'static str, value: &str) -> Option<HeaderMap> {
    let value = HeaderValue::from_str(value).ok()?;
    let mut map = HeaderMap::new();
    map.insert(name, value);
    Some(map)
}

fn decide(map: &HeaderMap, now: SystemTime) -> Decision {
    RetryPolicy::default().decide(StatusCode::TOO_MANY_REQUESTS, map, 0, now)
}

proptest! {
    /// Any header text: a decision, never a panic; a server wait is never
    /// negative and never silently above the policy's limit.
    #[test]
    fn any_retry_after_text_gives_a_decision(text in ".{0,64}", ms in ".{0,16}") {
        let now = SystemTime::now();
        for (name, value) in [("retry-after", &text), ("retry-after-ms", &ms)] {
            if let Some(map) = headers(name, value) {
                match decide(&map, now) {
                    Decision::RetryAfter(wait) => prop_assert!(wait <= Duration::from_secs(60)),
                    Decision::TooLongToWait(wait) => prop_assert!(wait > Duration::from_secs(60)),
                    Decision::Stop => prop_assert!(false, "a 429 with retries left must not stop"),
                }
            }
        }
    }

    /// Delta-seconds are honoured exactly.
    #[test]
    fn retry_after_seconds_are_exact(secs in 0u64..100_000) {
        let map = headers("retry-after", &secs.to_string()).unwrap();
        let expected = Duration::from_secs(secs);
        let decision = decide(&map, SystemTime::now());
        if secs <= 60 {
            prop_assert_eq!(decision, Decision::RetryAfter(expected));
        } else {
            prop_assert_eq!(decision, Decision::TooLongToWait(expected));
        }
    }

    /// An HTTP date is honoured to the second (its resolution).
    #[test]
    fn retry_after_dates_are_honoured(ahead in 0u64..200, base in 1_000_000_000u64..4_000_000_000) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(base);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(ahead));
        let map = headers("retry-after", &date).unwrap();
        let expected = Duration::from_secs(ahead);
        let decision = decide(&map, now);
        if ahead <= 60 {
            prop_assert_eq!(decision, Decision::RetryAfter(expected));
        } else {
            prop_assert_eq!(decision, Decision::TooLongToWait(expected));
        }
    }

    /// Nothing that passes `check_id` can change the request path: it stays
    /// exactly one path segment, unchanged by URL parsing and encoding.
    #[test]
    fn valid_ids_cannot_change_the_path(id in "\\PC{0,40}") {
        if check_id("video id", &id).is_ok() {
            let url = reqwest::Url::parse(&format!(
                "https://api.example.com/client/v4/accounts/a/stream/{id}/downloads"
            ))
            .unwrap();
            let segments: Vec<&str> = url.path_segments().unwrap().collect();
            prop_assert_eq!(segments, vec!["client", "v4", "accounts", "a", "stream", id.as_str(), "downloads"]);
            prop_assert!(url.query().is_none() && url.fragment().is_none());
            prop_assert!(!id.is_empty() && id.len() <= 32);
        }
    }

    /// Ids shaped like Cloudflare's always pass.
    #[test]
    fn cloudflare_ids_pass(id in "[0-9a-f]{32}") {
        prop_assert!(check_id("video id", &id).is_ok());
    }
}

/// A master manifest listing these subtitle languages and audio names.
fn manifest_text(languages: &[String], audio: &[String]) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:6\n");
    for (i, l) in languages.iter().enumerate() {
        m.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"n{i}, x\",LANGUAGE=\"{l}\",URI=\"s{i}.m3u8\"\n"
        ));
    }
    for a in audio {
        m.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"{a}\",DEFAULT=NO,URI=\"a.m3u8\"\n"
        ));
    }
    m.push_str("#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"audio\"\nv.m3u8\n");
    m
}

proptest! {
    /// Whatever the host sends: a manifest or an error, never a panic.
    #[test]
    fn any_text_parses_or_is_refused(text in "(#EXTM3U\n)?(#EXT-X-MEDIA:[A-Z=\",-]{0,40}\n|.{0,40}\n){0,8}") {
        let _ = cloudflare_stream_downloads::Manifest::parse(&text);
    }

    /// The renditions written are the renditions read, in order, whatever
    /// the tags and names (commas inside quoted values included).
    #[test]
    fn renditions_round_trip(
        languages in proptest::collection::vec("[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})?", 0..5),
        audio in proptest::collection::vec("[a-zA-Z ,']{1,20}", 0..4),
    ) {
        let m = cloudflare_stream_downloads::Manifest::parse(&manifest_text(&languages, &audio)).unwrap();
        let tags: Vec<String> = m.subtitles.iter().map(|r| r.language.clone().unwrap()).collect();
        prop_assert_eq!(tags, languages);
        let names: Vec<String> = m.audio.iter().map(|r| r.name.clone().unwrap().to_string()).collect();
        let trimmed: Vec<String> = audio.iter().map(|a| a.trim().to_owned()).collect();
        prop_assert_eq!(names, trimmed);
    }
}
