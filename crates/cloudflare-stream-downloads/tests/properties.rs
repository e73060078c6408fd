//! Properties of the pure parts: `Retry-After` parsing and id validation.

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
