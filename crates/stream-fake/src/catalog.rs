//! The account's videos, and the listing (`GET /accounts/{account}/stream`).
//!
//! [`generate`] makes a deterministic account of N videos: the same N gives
//! the same ids, creation times, durations, sizes, names and states on
//! every run. About one creation time in four is shared with the previous
//! video (ties, as bulk uploads make them), and there are longer runs of
//! ties too; one video in 41 is not ready to stream (`inprogress`,
//! `queued` or `error`), one in 29 requires signed URLs.
//!
//! The listing follows Cloudflare's rules as far as they are documented
//! (newest first by default, `asc`, `after`/`start`, `before`/`end`,
//! `limit` 1..=1000 defaulting to 1000, the filters, `include_counts`).
//! What is not documented is a setting: whether the bounds are inclusive
//! ([`Bounds`]). Videos with the same `created` are ordered by `uid`
//! (ascending walks) and the reverse (descending ones).

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};

/// Whether `after`/`before` include a video created exactly at the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bounds {
    /// `created > after`, `created < before` (the default).
    #[default]
    Exclusive,
    /// `created >= after`, `created <= before`.
    Inclusive,
}

impl std::str::FromStr for Bounds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exclusive" => Ok(Bounds::Exclusive),
            "inclusive" => Ok(Bounds::Inclusive),
            other => Err(format!("{other:?}: expected inclusive or exclusive")),
        }
    }
}

/// One video of the account, as the listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogVideo {
    /// 32 lower-case hex characters.
    pub uid: String,
    /// Creation time (microsecond precision, as Cloudflare's).
    pub created: DateTime<Utc>,
    /// `meta.name`.
    pub name: String,
    /// `creator`, if any.
    pub creator: Option<String>,
    /// Seconds; -1 while unknown.
    pub duration: f64,
    /// Bytes.
    pub size: u64,
    /// `status.state`.
    pub state: String,
    /// `readyToStream`: downloads can be created only when true.
    pub ready_to_stream: bool,
    /// `requireSignedURLs`: the download host answers 401 without a token.
    pub require_signed_urls: bool,
}

impl CatalogVideo {
    /// A ready, unsigned video.
    pub fn ready(uid: &str, created: DateTime<Utc>) -> Self {
        Self {
            uid: uid.to_owned(),
            created,
            name: format!("{uid}.mp4"),
            creator: None,
            duration: 60.0,
            size: 1_000_000,
            state: "ready".into(),
            ready_to_stream: true,
            require_signed_urls: false,
        }
    }

    /// The listing's JSON object for this video (only fields the spec
    /// allows, no `null` where it does not). `host`: the base URL of its
    /// playback, thumbnail and preview URLs, e.g. `http://127.0.0.1:40123`.
    pub fn to_json(&self, host: &str) -> Value {
        let t = |d: DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Micros, true);
        let base = format!("{}/{}", host.trim_end_matches('/'), self.uid);
        let mut v = json!({
            "uid": self.uid,
            "thumbnail": format!("{base}/thumbnails/thumbnail.jpg"),
            "thumbnailTimestampPct": 0,
            "readyToStream": self.ready_to_stream,
            "status": {
                "state": self.state,
                "pctComplete": if self.ready_to_stream { "100.000000" } else { "42.000000" },
                "errorReasonCode": if self.state == "error" { "ERR_NON_VIDEO" } else { "" },
                "errorReasonText": if self.state == "error" { "The file was not recognized as a valid video file." } else { "" },
            },
            "meta": { "name": self.name },
            "created": t(self.created),
            "modified": t(self.created + Duration::seconds(90)),
            "size": self.size,
            "preview": format!("{base}/watch"),
            "allowedOrigins": [],
            "requireSignedURLs": self.require_signed_urls,
            "uploaded": t(self.created),
            "duration": self.duration,
            "input": { "width": 1920, "height": 1080 },
            "playback": {
                "hls": format!("{base}/manifest/video.m3u8"),
                "dash": format!("{base}/manifest/video.mpd"),
            },
        });
        if self.ready_to_stream {
            v["readyToStreamAt"] = json!(t(self.created + Duration::seconds(60)));
        }
        if let Some(creator) = &self.creator {
            v["creator"] = json!(creator);
        }
        v
    }
}

/// When generated accounts start.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

pub(crate) fn mix(mut x: u64) -> u64 {
    // splitmix64
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The id of generated video `i`: 32 hex characters.
pub fn generated_uid(i: u64) -> String {
    format!("{:016x}{:016x}", mix(i), mix(i ^ 0xA5A5_A5A5))
}

/// A deterministic account of `n` videos, oldest first.
pub fn generate(n: usize) -> Vec<CatalogVideo> {
    let mut out = Vec::with_capacity(n);
    let mut created = epoch();
    for i in 0..n as u64 {
        let h = mix(i.wrapping_mul(7919));
        // Ties: one in four shares the previous instant; every 500th video
        // starts a run of 12 that all share one.
        let in_run = i % 500 < 12 && i % 500 > 0;
        if i > 0 && !in_run && !h.is_multiple_of(4) {
            created += Duration::microseconds(1 + (h >> 8) as i64 % 90_000_000);
        }
        let (state, ready) = match i % 41 {
            7 => ("inprogress", false),
            19 => ("queued", false),
            33 => ("error", false),
            _ => ("ready", true),
        };
        let duration = if ready {
            (5 + (h >> 16) % 3600) as f64 + ((h >> 40) % 1000) as f64 / 1000.0
        } else {
            -1.0
        };
        out.push(CatalogVideo {
            uid: generated_uid(i),
            created,
            name: format!("video-{i:06}.mp4"),
            creator: (i % 3 == 0).then(|| format!("creator-{}", i % 5)),
            duration,
            size: if ready {
                (duration * 250_000.0) as u64
            } else {
                0
            },
            state: state.into(),
            ready_to_stream: ready,
            require_signed_urls: i % 29 == 11,
        });
    }
    out
}

/// The listing's query parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// `after`/`start`.
    pub after: Option<DateTime<Utc>>,
    /// `before`/`end`.
    pub before: Option<DateTime<Utc>>,
    /// `asc`.
    pub asc: bool,
    /// `limit` (1..=1000).
    pub limit: usize,
    /// `include_counts`.
    pub include_counts: bool,
    /// `status`.
    pub status: Option<String>,
    /// `creator`.
    pub creator: Option<String>,
    /// `search`: case-insensitive partial match on `meta.name`.
    pub search: Option<String>,
    /// `video_name`: exact `meta.name`.
    pub video_name: Option<String>,
}

impl ListQuery {
    /// Parse the query string's pairs; `Err` is the reason for a 400.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut q = ListQuery {
            limit: 1000,
            ..Default::default()
        };
        let time = |k: &str, v: &str| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("{k}: not an RFC 3339 date-time: {e}"))
        };
        let boolean = |k: &str, v: &str| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("{k}: expected true or false")),
        };
        for (k, v) in pairs {
            match k {
                "after" | "start" => q.after = Some(time(k, v)?),
                "before" | "end" => q.before = Some(time(k, v)?),
                "asc" => q.asc = boolean(k, v)?,
                "include_counts" => q.include_counts = boolean(k, v)?,
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| format!("limit: {v:?} is not in 1..=1000"))?;
                }
                "status" => q.status = Some(v.to_owned()),
                "creator" => q.creator = Some(v.to_owned()),
                "search" => q.search = Some(v.to_lowercase()),
                "video_name" => q.video_name = Some(v.to_owned()),
                _ => {}
            }
        }
        Ok(q)
    }

    fn matches(&self, v: &CatalogVideo, bounds: Bounds) -> bool {
        let after_ok = self.after.is_none_or(|a| match bounds {
            Bounds::Exclusive => v.created > a,
            Bounds::Inclusive => v.created >= a,
        });
        let before_ok = self.before.is_none_or(|b| match bounds {
            Bounds::Exclusive => v.created < b,
            Bounds::Inclusive => v.created <= b,
        });
        after_ok
            && before_ok
            && self.status.as_ref().is_none_or(|s| *s == v.state)
            && self
                .creator
                .as_ref()
                .is_none_or(|c| v.creator.as_ref() == Some(c))
            && self
                .search
                .as_ref()
                .is_none_or(|s| v.name.to_lowercase().contains(s.as_str()))
            && self.video_name.as_ref().is_none_or(|n| *n == v.name)
    }
}

/// A page of the listing: the videos, and (`total`, `range`) when counts
/// were asked for. `catalog` must be sorted by (`created`, `uid`).
pub fn list<'a>(
    catalog: &'a [CatalogVideo],
    q: &ListQuery,
    bounds: Bounds,
) -> (Vec<&'a CatalogVideo>, Option<(usize, usize)>) {
    let matching = |v: &&CatalogVideo| q.matches(v, bounds);
    let page: Vec<&CatalogVideo> = if q.asc {
        catalog.iter().filter(matching).take(q.limit).collect()
    } else {
        catalog
            .iter()
            .rev()
            .filter(matching)
            .take(q.limit)
            .collect()
    };
    let counts = q.include_counts.then(|| {
        let total = catalog.iter().filter(matching).count();
        (total, total - page.len())
    });
    (page, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_sorted_and_has_ties() {
        let a = generate(2000);
        assert_eq!(a, generate(2000));
        assert!(a.windows(2).all(|w| w[0].created <= w[1].created));
        let ties = a
            .windows(2)
            .filter(|w| w[0].created == w[1].created)
            .count();
        assert!(ties > 400, "{ties}");
        assert!(a.iter().any(|v| !v.ready_to_stream));
        assert!(a.iter().any(|v| v.require_signed_urls));
        let mut ids: Vec<&str> = a.iter().map(|v| v.uid.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 2000);
        assert!(ids.iter().all(|id| id.len() == 32));
    }

    #[test]
    fn bounds_follow_the_setting() {
        let t = epoch();
        let catalog = vec![
            CatalogVideo::ready("a", t),
            CatalogVideo::ready("b", t + Duration::seconds(1)),
        ];
        let q = ListQuery {
            before: Some(t + Duration::seconds(1)),
            limit: 10,
            ..Default::default()
        };
        let (page, _) = list(&catalog, &q, Bounds::Exclusive);
        assert_eq!(page.len(), 1);
        let (page, _) = list(&catalog, &q, Bounds::Inclusive);
        assert_eq!(
            page.iter().map(|v| v.uid.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
    }
}
