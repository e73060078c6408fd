//! What the download host can answer, for no API request: whether a
//! download's file is there.
//!
//! The listing gives each video's delivery host (`playback.hls` is
//! `https://customer-<CODE>.cloudflarestream.com/<uid>/manifest/video.m3u8`)
//! and the download URLs have a documented form on it (`…/<uid>/downloads/
//! default.mp4`, `…/audio.m4a`), so a video whose downloads already exist
//! can be fetched with no create at all ([`derived_url`]). The host is not
//! the API and not under its rate limit, so asking it whether a file is
//! there ([`HostProbes::probe`]: the first byte, not the body) costs the
//! budget nothing. It is still asked politely: at most
//! [`PROBES_IN_FLIGHT`] probes at once per run, and a 429 or 5xx from it
//! pauses every probe (doubling, from 1 s to 60 s) and leaves that round to
//! the API.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloudflare_stream_downloads::types::DownloadType;
use cloudflare_stream_downloads::{Client, Signing};
use tokio::sync::Semaphore;

/// Probes of the download host at once, per run.
pub const PROBES_IN_FLIGHT: usize = 16;

/// The download URL of `kind` that a video's JSON implies: its
/// `playback.hls` on a Stream delivery host (`https://customer-….
/// cloudflarestream.com`, or plain http on a loopback host, for local
/// servers) with the path `/<uid>/manifest/video.m3u8`. `None` for
/// anything else: the caller creates the download as usual.
pub fn derived_url(video_json: &str, kind: DownloadType) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Video {
        uid: String,
        playback: Option<Playback>,
    }
    #[derive(serde::Deserialize)]
    struct Playback {
        hls: Option<String>,
    }
    let video: Video = serde_json::from_str(video_json).ok()?;
    let hls = reqwest::Url::parse(video.playback?.hls.as_deref()?).ok()?;
    let host = hls.host_str()?;
    let delivery = match hls.scheme() {
        "https" => host.starts_with("customer-") && host.ends_with(".cloudflarestream.com"),
        "http" => {
            host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    };
    let expected = format!("/{}/manifest/video.m3u8", video.uid);
    if !delivery || hls.path() != expected || hls.query().is_some() {
        return None;
    }
    cloudflare_stream_downloads::check_id("video id", &video.uid).ok()?;
    let file = match kind {
        DownloadType::Default => "default.mp4",
        DownloadType::Audio => "audio.m4a",
    };
    let mut url = hls;
    url.set_path(&format!("/{}/downloads/{file}", video.uid));
    Some(url.to_string())
}

/// What the download host said of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// It is there (200 or 206).
    There,
    /// It is not (404, 410): not generated, or not ready yet.
    NotThere,
    /// The host could not say (429, 5xx, a cut connection): the API is
    /// asked this round.
    Unknown,
    /// The host refused the video's token twice: the video is not probed
    /// again (the fetch will say why).
    Refused,
}

/// The run's probes of the download host.
#[derive(Debug)]
pub struct HostProbes {
    permits: Semaphore,
    /// Until when every probe waits (after a 429 or 5xx), and the pause.
    paused: Mutex<(Option<Instant>, Duration)>,
    /// Probes made.
    pub probes: AtomicU64,
    /// Files found already there (no create).
    pub found_existing: AtomicU64,
}

impl Default for HostProbes {
    fn default() -> Self {
        Self {
            permits: Semaphore::new(PROBES_IN_FLIGHT),
            paused: Mutex::new((None, Duration::ZERO)),
            probes: AtomicU64::new(0),
            found_existing: AtomicU64::new(0),
        }
    }
}

impl HostProbes {
    /// Whether `video_id`'s file at `url` is there (see [`Probe`]).
    pub async fn probe(
        &self,
        client: &Client,
        video_id: &str,
        url: &str,
        signing: Signing,
    ) -> Probe {
        let Ok(_permit) = self.permits.acquire().await else {
            return Probe::Unknown;
        };
        let until = self.paused.lock().unwrap_or_else(|p| p.into_inner()).0;
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
        self.probes.fetch_add(1, Ordering::Relaxed);
        match client.probe_video_url(video_id, url, signing).await {
            Ok(found) => {
                *self.paused.lock().unwrap_or_else(|p| p.into_inner()) = (None, Duration::ZERO);
                if found.is_some() {
                    Probe::There
                } else {
                    Probe::NotThere
                }
            }
            Err(e @ cloudflare_stream_downloads::Error::SignedUrlRefused { .. }) => {
                tracing::info!(video = video_id, error = %e, "the download host refused the token; no more probes of this video");
                Probe::Refused
            }
            Err(e) => {
                let status = e.status().map(|s| s.as_u16());
                if matches!(status, Some(429 | 500..=599)) || status.is_none() {
                    let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
                    let next =
                        (paused.1 * 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
                    *paused = (Some(Instant::now() + next), next);
                }
                tracing::info!(video = video_id, error = %e, "the download host could not say; asking the API");
                Probe::Unknown
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(uid: &str, hls: &str) -> String {
        serde_json::json!({"uid": uid, "playback": {"hls": hls}}).to_string()
    }

    #[test]
    fn the_download_url_follows_the_playback_host() {
        let uid = "0123456789abcdef0123456789abcdef";
        let json = video(
            uid,
            &format!("https://customer-abc123.cloudflarestream.com/{uid}/manifest/video.m3u8"),
        );
        assert_eq!(
            derived_url(&json, DownloadType::Default).as_deref(),
            Some(
                format!("https://customer-abc123.cloudflarestream.com/{uid}/downloads/default.mp4")
                    .as_str()
            )
        );
        assert_eq!(
            derived_url(&json, DownloadType::Audio).as_deref(),
            Some(
                format!("https://customer-abc123.cloudflarestream.com/{uid}/downloads/audio.m4a")
                    .as_str()
            )
        );
        let local = video(
            uid,
            &format!("http://127.0.0.1:8080/{uid}/manifest/video.m3u8"),
        );
        assert!(derived_url(&local, DownloadType::Default).is_some());
    }

    #[test]
    fn anything_else_is_no_guess() {
        let uid = "0123456789abcdef0123456789abcdef";
        for hls in [
            format!("https://example.com/{uid}/manifest/video.m3u8"),
            format!("https://customer-abc.cloudflarestream.com.evil.net/{uid}/manifest/video.m3u8"),
            format!("http://customer-abc.cloudflarestream.com/{uid}/manifest/video.m3u8"),
            format!("http://10.0.0.1/{uid}/manifest/video.m3u8"),
            format!("https://customer-abc.cloudflarestream.com/{uid}/manifest/video.mpd"),
            "https://customer-abc.cloudflarestream.com/ffffffffffffffffffffffffffffffff/manifest/video.m3u8"
                .to_string(),
            format!("https://customer-abc.cloudflarestream.com/{uid}/manifest/video.m3u8?x=1"),
        ] {
            assert_eq!(
                derived_url(&video(uid, &hls), DownloadType::Default),
                None,
                "{hls}"
            );
        }
        assert_eq!(derived_url(r#"{"uid":"x"}"#, DownloadType::Default), None);
        assert_eq!(derived_url("not json", DownloadType::Default), None);
    }
}
