//! Fault injection: what can go wrong, on which route, how many times or
//! on what share of the requests.
//!
//! Faults are spent in the order they were armed, one per request. A fault
//! armed on a share (`file=503%15`) hits each request of its route with
//! that probability, drawn from a fixed pseudo-random sequence (the same
//! requests in the same order get the same faults); a request it spares
//! goes on to the next armed fault. On the file route, a fault on the body
//! (`cut`, `truncated`, `ignore-range`, `short-file`) is spent only on a
//! request the host answers with a body of more than one byte: a 401
//! (signed URLs), a 404 or a probe of the first byte (`Range: bytes=0-0`)
//! leaves it armed for the next one.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A route of the fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /accounts/{account}/stream` (the video listing).
    ListVideos,
    /// `GET …/downloads`
    List,
    /// `POST …/downloads`
    Create,
    /// `DELETE …/downloads`
    Delete,
    /// `POST …/downloads/{type}`
    CreateType,
    /// `DELETE …/downloads/{type}`
    DeleteType,
    /// `GET /{video}/downloads/{type}.{ext}` on the download host.
    File,
    /// `GET /accounts/{account}/stream/{video}` (one video's details).
    Video,
    /// `POST …/stream/{video}/token`
    Token,
    /// `POST /accounts/{account}/stream/keys`
    CreateKey,
    /// `GET /accounts/{account}/stream/keys`
    ListKeys,
    /// `DELETE /accounts/{account}/stream/keys/{id}`
    DeleteKey,
    /// `GET …/stream/{video}/captions`
    Captions,
    /// `GET …/stream/{video}/captions/{language}`
    Caption,
    /// `GET …/stream/{video}/captions/{language}/vtt`
    Vtt,
    /// `GET …/stream/{video}/audio`
    Audio,
    /// `GET /accounts/{account}/stream/watermarks`
    Watermarks,
    /// `GET /{video}/manifest/video.m3u8` on the download host.
    Manifest,
    /// Every route.
    Any,
}

impl Route {
    /// Whether a fault registered for `self` applies to a request on `route`.
    pub fn covers(self, route: Route) -> bool {
        self == Route::Any || self == route
    }
}

impl FromStr for Route {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "videos" => Route::ListVideos,
            "list" => Route::List,
            "create" => Route::Create,
            "delete" => Route::Delete,
            "create-type" => Route::CreateType,
            "delete-type" => Route::DeleteType,
            "file" => Route::File,
            "video" => Route::Video,
            "token" => Route::Token,
            "create-key" => Route::CreateKey,
            "list-keys" => Route::ListKeys,
            "delete-key" => Route::DeleteKey,
            "captions" => Route::Captions,
            "caption" => Route::Caption,
            "vtt" => Route::Vtt,
            "audio" => Route::Audio,
            "watermarks" => Route::Watermarks,
            "manifest" => Route::Manifest,
            "any" => Route::Any,
            other => {
                return Err(format!(
                    "unknown route {other:?} (videos, list, create, delete, create-type, delete-type, file, video, token, create-key, list-keys, delete-key, captions, caption, vtt, audio, watermarks, manifest, any)"
                ));
            }
        })
    }
}

/// How a 429 says when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`
    Seconds(u64),
    /// `Retry-After: <HTTP date>` this far in the future.
    HttpDate(Duration),
    /// No `Retry-After` header, and a `null` body (seen in the wild).
    Missing,
}

/// A fault the fake can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with a failure envelope (code 1015), or a bare `null`.
    RateLimited(RetryAfter),
    /// A 5xx with an HTML page, like a Cloudflare edge error.
    ServerErrorHtml(u16),
    /// HTTP 200 with an HTML page (a captive portal, a misrouted proxy).
    OkHtml,
    /// HTTP 200 with `success: false` and a failure envelope.
    SuccessFalse,
    /// The normal answer, after a delay.
    Slow(Duration),
    /// The normal answer, with the connection closed halfway through the body.
    CutMidBody,
    /// HTTP 200 with the first half of the normal JSON body.
    TruncatedJson,
    /// The file route answers 200 with the whole file whatever the `Range`.
    IgnoreRange,
    /// The file route answers 200 with the first half of the file and a
    /// `Content-Length` that says so (a server lying about the length).
    ShortFile,
}

impl FromStr for Fault {
    type Err = String;
    /// `429:SECS`, `429-date:SECS`, `429-bare`, `5xx:STATUS` (or just `502`),
    /// `html`, `success-false`, `slow:DURATION` (e.g. `slow:2s`), `cut`,
    /// `truncated`, `ignore-range`, `short-file`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, arg) = s.split_once(':').map_or((s, None), |(n, a)| (n, Some(a)));
        let secs = |arg: Option<&str>| -> Result<u64, String> {
            arg.unwrap_or("1")
                .parse()
                .map_err(|_| format!("{s:?}: expected whole seconds"))
        };
        Ok(match name {
            "429" => Fault::RateLimited(RetryAfter::Seconds(secs(arg)?)),
            "429-date" => Fault::RateLimited(RetryAfter::HttpDate(Duration::from_secs(secs(arg)?))),
            "429-bare" => Fault::RateLimited(RetryAfter::Missing),
            "5xx" => Fault::ServerErrorHtml(server_status(arg.unwrap_or("502"))?),
            "success-false" => Fault::SuccessFalse,
            "html" => Fault::OkHtml,
            "slow" => Fault::Slow(
                humantime::parse_duration(arg.unwrap_or("1s"))
                    .map_err(|e| format!("{s:?}: {e}"))?,
            ),
            "cut" => Fault::CutMidBody,
            "truncated" => Fault::TruncatedJson,
            "ignore-range" => Fault::IgnoreRange,
            "short-file" => Fault::ShortFile,
            other if other.len() == 3 && other.starts_with('5') => {
                Fault::ServerErrorHtml(server_status(other)?)
            }
            other => {
                return Err(format!(
                    "unknown fault {other:?} (429[:secs], 429-date[:secs], 429-bare, 5xx[:status], \
                     html, success-false, slow[:duration], cut, truncated, ignore-range, short-file)"
                ));
            }
        })
    }
}

fn server_status(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n) if (500..600).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a 5xx status")),
    }
}

/// A fault armed on a route: `ROUTE=FAULT[*TIMES]` or `ROUTE=FAULT%PERCENT`
/// on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRule {
    /// Where it applies.
    pub route: Route,
    /// What happens.
    pub fault: Fault,
    /// How many requests it hits; `None` is every request (or, with
    /// `share`, every request the share picks).
    pub times: Option<u32>,
    /// The percentage of the route's requests it hits (1-100), picked
    /// pseudo-randomly; `None`: every request until `times` is spent.
    pub share: Option<u8>,
}

impl FaultRule {
    /// `fault` on every request of `route`.
    pub fn always(route: Route, fault: Fault) -> Self {
        Self {
            route,
            fault,
            times: None,
            share: None,
        }
    }

    /// `fault` on the next `times` requests of `route`.
    pub fn times(route: Route, fault: Fault, times: u32) -> Self {
        Self {
            times: Some(times),
            ..Self::always(route, fault)
        }
    }

    /// `fault` on `percent` % of the requests of `route`.
    pub fn share(route: Route, fault: Fault, percent: u8) -> Self {
        Self {
            share: Some(percent.clamp(1, 100)),
            ..Self::always(route, fault)
        }
    }

    /// Whether the `n`-th request (from 1) this rule sees is one its share
    /// picks (always, without a share). Rule `salt` keeps two rules with
    /// the same share from picking the same requests.
    pub(crate) fn picks(&self, n: u64, salt: u64) -> bool {
        match self.share {
            None => true,
            Some(p) => crate::catalog::mix(n ^ (salt << 48)) % 100 < u64::from(p),
        }
    }
}

impl FromStr for FaultRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (route, rest) = s.split_once('=').ok_or_else(|| {
            format!("{s:?}: expected ROUTE=FAULT[*TIMES] or ROUTE=FAULT%PERCENT, e.g. list=429:2*3")
        })?;
        if let Some((fault, percent)) = rest.rsplit_once('%') {
            let share = percent
                .parse::<u8>()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| format!("{s:?}: %PERCENT must be 1 to 100"))?;
            return Ok(FaultRule::share(route.parse()?, fault.parse()?, share));
        }
        let (fault, times) = match rest.rsplit_once('*') {
            Some((f, n)) => (
                f,
                Some(
                    n.parse()
                        .map_err(|_| format!("{s:?}: *TIMES must be a number"))?,
                ),
            ),
            None => (rest, None),
        };
        Ok(FaultRule {
            route: route.parse()?,
            fault: fault.parse()?,
            times,
            share: None,
        })
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} on {:?}", self.fault, self.route)?;
        match (self.share, self.times) {
            (Some(p), _) => write!(f, " on {p}% of requests"),
            (None, Some(n)) => write!(f, " for {n} request(s)"),
            (None, None) => write!(f, " always"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_picks_about_its_percentage_and_two_rules_differ() {
        let a = FaultRule::share(Route::File, Fault::CutMidBody, 15);
        let picked: Vec<bool> = (1..=10_000).map(|n| a.picks(n, 0)).collect();
        let count = picked.iter().filter(|p| **p).count();
        assert!((1_300..=1_700).contains(&count), "{count}");
        let other: Vec<bool> = (1..=10_000).map(|n| a.picks(n, 1)).collect();
        assert_ne!(picked, other);
        // Bursts happen (a real flaky host is not evenly spread).
        assert!(picked.windows(2).any(|w| w[0] && w[1]));
        assert!((1..=100).all(|n| FaultRule::always(Route::File, Fault::CutMidBody).picks(n, 0)));
    }

    #[test]
    fn parses_command_line_rules() {
        let rule: FaultRule = "list=429:2*3".parse().unwrap();
        assert_eq!(rule.route, Route::List);
        assert_eq!(rule.fault, Fault::RateLimited(RetryAfter::Seconds(2)));
        assert_eq!(rule.times, Some(3));
        let rule: FaultRule = "any=slow:250ms".parse().unwrap();
        assert_eq!(rule.fault, Fault::Slow(Duration::from_millis(250)));
        assert_eq!(rule.times, None);
        assert_eq!(
            "file=cut".parse::<FaultRule>().unwrap().fault,
            Fault::CutMidBody
        );
        assert_eq!(
            "create=503".parse::<FaultRule>().unwrap().fault,
            Fault::ServerErrorHtml(503)
        );
        let rule: FaultRule = "file=503%15".parse().unwrap();
        assert_eq!(rule.fault, Fault::ServerErrorHtml(503));
        assert_eq!(rule.share, Some(15));
        assert_eq!(rule.times, None);
        assert_eq!(
            rule.to_string(),
            "ServerErrorHtml(503) on File on 15% of requests"
        );
        for bad in [
            "file=cut%0",
            "file=cut%101",
            "file=cut%x",
            "list",
            "nowhere=cut",
            "list=teapot",
            "list=5xx:404",
            "list=cut*x",
        ] {
            assert!(bad.parse::<FaultRule>().is_err(), "{bad}");
        }
    }
}
