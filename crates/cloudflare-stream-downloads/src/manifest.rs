//! A video's HLS master manifest on the download host
//! (`…/<uid>/manifest/video.m3u8`, the listing's `playback.hls`): what it
//! says of the video's subtitle and audio renditions (RFC 8216
//! `EXT-X-MEDIA`), read for no API request.
//!
//! Cloudflare's documentation says a video's captions appear in its
//! manifest; it does not document the exact `LANGUAGE` and `NAME` values,
//! nor whether captions still generating are listed. So the manifest is a
//! cheap signal (no subtitles listed: nothing to ask the API), never the
//! record: the tags and labels come from the API's caption list.

use reqwest::StatusCode;

use crate::client::Client;
use crate::error::{Error, RequestSummary};
use crate::fetch::{Signing, file_request};
use crate::secret::Secret;

/// The largest manifest read (a master manifest is a few kilobytes).
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// One `EXT-X-MEDIA` rendition of a master manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendition {
    /// `LANGUAGE`, as written (compare tags case-insensitively).
    pub language: Option<String>,
    /// `NAME`.
    pub name: Option<String>,
    /// `DEFAULT=YES`.
    pub default: bool,
}

/// What a master manifest lists beside its video variants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// `TYPE=SUBTITLES` renditions (captions).
    pub subtitles: Vec<Rendition>,
    /// `TYPE=AUDIO` renditions: the upload's own audio, when Stream serves
    /// it as a rendition, and the additional audio tracks.
    pub audio: Vec<Rendition>,
}

impl Manifest {
    /// Parses a master manifest's text. It must start with `#EXTM3U`;
    /// lines other than `EXT-X-MEDIA` are ignored, as are renditions of
    /// other types. An attribute list that does not parse is an error
    /// naming its line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim_start_matches('\u{feff}');
        if !text.starts_with("#EXTM3U") {
            return Err("not an HLS playlist (no #EXTM3U)".into());
        }
        let mut manifest = Manifest::default();
        for (n, line) in text.lines().enumerate() {
            let Some(attributes) = line.trim_end().strip_prefix("#EXT-X-MEDIA:") else {
                continue;
            };
            let attributes =
                parse_attributes(attributes).map_err(|why| format!("line {}: {why}", n + 1))?;
            let get = |name: &str| {
                attributes
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let rendition = Rendition {
                language: get("LANGUAGE"),
                name: get("NAME"),
                default: get("DEFAULT").is_some_and(|d| d == "YES"),
            };
            match get("TYPE").as_deref() {
                Some("SUBTITLES") => manifest.subtitles.push(rendition),
                Some("AUDIO") => manifest.audio.push(rendition),
                _ => {}
            }
        }
        Ok(manifest)
    }
}

/// An RFC 8216 attribute list: `NAME=value` pairs separated by commas,
/// a value quoted (`"…"`, commas allowed inside) or not. Quotes are
/// removed.
fn parse_attributes(list: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("attribute without '=': {rest:?}"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("bad attribute name {name:?}"));
        }
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| format!("unterminated quoted value of {name}"))?;
            let after = &quoted[end + 1..];
            let after = match after.strip_prefix(',') {
                Some(a) => a,
                None if after.trim().is_empty() => "",
                None => return Err(format!("text after the quoted value of {name}")),
            };
            (&quoted[..end], after)
        } else {
            match after.split_once(',') {
                Some((v, a)) => (v, a),
                None => (after, ""),
            }
        };
        out.push((name.to_owned(), value.trim().to_owned()));
        rest = after;
    }
    Ok(out)
}

impl Client {
    /// `video_id`'s master manifest at `url` (the listing's
    /// `playback.hls`), signed as [`fetch_video_url`](Self::fetch_video_url)
    /// signs (a signed video's token replaces the uid; playback needs no
    /// `downloadable` claim, so a download token serves). No API request,
    /// but a token from the API for a signed video without a signing key:
    /// pass [`Signing::Never`] to avoid it (a 401 then comes back as an
    /// error with its status).
    ///
    /// `Ok(None)` when the host answers 404 or 410. A 429 is
    /// [`Error::RateLimited`] with the host's `Retry-After`; any other
    /// status, a body over [`MAX_MANIFEST_BYTES`], or a body that is not a
    /// playlist is [`Error::UnexpectedResponse`]; a body cut half-way is
    /// [`Error::Connection`] (or [`Error::Timeout`]). Sent once, no retry, no
    /// time limit of its own beyond the file client's timeouts.
    pub async fn video_manifest(
        &self,
        video_id: &str,
        url: &str,
        signing: Signing,
    ) -> Result<Option<Manifest>, Error> {
        let (url, request) = file_request(video_id, url, signing)?;
        let response = self
            .signed_get(video_id, &url, &request, signing, |get| get)
            .await?;
        read_manifest(response, request).await
    }

    /// [`video_manifest`](Self::video_manifest) of a signed video with
    /// `token` in place of its uid (a token the caller already has, for
    /// example one asked of the API once for the video). One `GET`: a 401
    /// or 403 comes back as an error with its status, with no new token.
    /// The token appears in no error.
    pub async fn video_manifest_with_token(
        &self,
        video_id: &str,
        url: &str,
        token: &Secret,
    ) -> Result<Option<Manifest>, Error> {
        let (url, request) = file_request(video_id, url, Signing::Required)?;
        let signed = crate::signing::signed_url(&url, token)?;
        let response = self
            .shared
            .files
            .get(signed)
            .send()
            .await
            .map_err(|e| crate::fetch::transport_error(&request, 1, e))?;
        read_manifest(response, request).await
    }
}

/// The manifest in an answer of the download host (see
/// [`Client::video_manifest`]).
async fn read_manifest(
    mut response: reqwest::Response,
    request: RequestSummary,
) -> Result<Option<Manifest>, Error> {
    let status = response.status();
    let content_type = crate::http::content_type(&response);
    let unexpected = |why: String| Error::UnexpectedResponse {
        request: request.clone(),
        status,
        content_type: content_type.clone(),
        body_snippet: why,
    };
    match status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(None),
        StatusCode::TOO_MANY_REQUESTS => {
            return Err(Error::RateLimited {
                retry_after: crate::retry::retry_after(
                    response.headers(),
                    std::time::SystemTime::now(),
                ),
                request: request.clone(),
                attempts: 1,
                errors: Vec::new(),
            });
        }
        _ => {
            let body = response.bytes().await.unwrap_or_default();
            return Err(unexpected(crate::http::snippet(&body)));
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| crate::fetch::transport_error(&request, 1, e))?
    {
        if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err(unexpected(format!(
                "larger than a manifest should be ({MAX_MANIFEST_BYTES} bytes)"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body)
        .map_err(|e| unexpected(format!("a manifest that is not UTF-8: {e}")))?;
    Manifest::parse(&text)
        .map(Some)
        .map_err(|why| unexpected(format!("{why}: {}", crate::http::snippet(text.as_bytes()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtitles_and_audio_are_read_from_ext_x_media() {
        let text = "#EXTM3U\n#EXT-X-VERSION:6\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"original\",DEFAULT=YES,URI=\"a.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Director, commentary\",DEFAULT=NO,URI=\"b.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Português\",LANGUAGE=\"pt-BR\",AUTOSELECT=YES,URI=\"c.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"cc\",INSTREAM-ID=\"CC1\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"audio\",SUBTITLES=\"subs\"\nv.m3u8\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.subtitles.len(), 1);
        assert_eq!(m.subtitles[0].language.as_deref(), Some("pt-BR"));
        assert_eq!(m.subtitles[0].name.as_deref(), Some("Português"));
        assert_eq!(m.audio.len(), 2);
        assert!(m.audio[0].default && !m.audio[1].default);
        assert_eq!(m.audio[1].name.as_deref(), Some("Director, commentary"));
        let none = Manifest::parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n").unwrap();
        assert_eq!(none, Manifest::default());
    }

    #[test]
    fn what_is_not_a_playlist_is_an_error() {
        assert!(
            Manifest::parse("<html>nope</html>")
                .unwrap_err()
                .contains("#EXTM3U")
        );
        let bad =
            Manifest::parse("#EXTM3U\n#EXT-X-MEDIA:TYPE=SUBTITLES,NAME=\"open\n").unwrap_err();
        assert!(
            bad.contains("line 2") && bad.contains("unterminated"),
            "{bad}"
        );
        assert!(Manifest::parse("#EXTM3U\n#EXT-X-MEDIA:TYPE\n").is_err());
        assert!(Manifest::parse("#EXTM3U\n#EXT-X-MEDIA:type=AUDIO\n").is_err());
    }
}
