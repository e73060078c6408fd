//! What an archive of a video needs beside its MP4 and M4A files: its
//! captions (the list, one language, and the WebVTT text), its additional
//! audio tracks (listed only: Stream has no download of them), and the
//! account's watermark profiles (their settings: the images cannot be
//! downloaded).

use futures_util::TryStreamExt;

use crate::client::Client;
use crate::envelope::Envelope;
use crate::error::Error;
use crate::types::{AudioTrack, AudioTracksResponse, Caption, Message, Watermark};

/// The largest caption Stream stores (10 MB): a larger answer to
/// [`Client::caption_vtt`] is refused before it is read whole.
pub const MAX_CAPTION_BYTES: u64 = 10 * 1000 * 1000;

impl Envelope for AudioTracksResponse {
    type Result = Vec<AudioTrack>;
    fn parts(self) -> (bool, Vec<Message>, Vec<Message>, Option<Vec<AudioTrack>>) {
        (
            self.success,
            self.errors.0,
            self.messages.0,
            Some(self.result.map(|r| r.audio).unwrap_or_default()),
        )
    }
}

/// A BCP 47 language tag as a path segment: letters, digits and `-`, at
/// most 35 characters (checked before any request, so that nothing can
/// change the request path).
fn check_language(language: &str) -> Result<(), Error> {
    let ok = !language.is_empty()
        && language.len() <= 35
        && language
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            what: "caption language",
            reason: format!("{language:?}: a BCP 47 tag (letters, digits and '-', e.g. pt-BR)"),
        })
    }
}

impl Client {
    /// The captions of a video (`GET …/stream/{id}/captions`): uploaded
    /// and generated ones, every language, with their status (a generated
    /// caption is listed while it is still generating, or after it
    /// failed). One API request.
    pub async fn captions(&self, video_id: &str) -> Result<Vec<Caption>, Error> {
        let account = self.account()?;
        let video = crate::ids::video_id(video_id)?;
        let call = self.generated();
        let result = call.list_captions(&account, &video).await;
        self.finish_with_result(
            &call,
            self.account_path("GET", &format!("{video_id}/captions")),
            result,
        )
        .await
    }

    /// One caption of a video (`GET …/stream/{id}/captions/{language}`).
    pub async fn caption(&self, video_id: &str, language: &str) -> Result<Caption, Error> {
        let account = self.account()?;
        let video = crate::ids::video_id(video_id)?;
        check_language(language)?;
        let call = self.generated();
        let result = call
            .get_caption(&account, &video, &language.to_owned())
            .await;
        let request = self.account_path("GET", &format!("{video_id}/captions/{language}"));
        self.finish_with_result(&call, request, result).await
    }

    /// The WebVTT text of a video's caption in `language`
    /// (`GET …/stream/{id}/captions/{language}/vtt`), exactly as served.
    ///
    /// The answer must be `text/vtt` (an HTML page or a JSON envelope in
    /// its place is [`Error::UnexpectedResponse`] naming the content type),
    /// at most [`MAX_CAPTION_BYTES`] (a larger one is refused as it
    /// arrives), UTF-8, and start with `WEBVTT` (after an optional byte
    /// order mark). A failure envelope (404 for a language the video does
    /// not have) is [`Error::Api`]; a body cut half-way is
    /// [`Error::Connection`] (or [`Error::Timeout`]), as for any request.
    /// One API request.
    pub async fn caption_vtt(&self, video_id: &str, language: &str) -> Result<String, Error> {
        let account = self.account()?;
        let video = crate::ids::video_id(video_id)?;
        check_language(language)?;
        let request = self.account_path("GET", &format!("{video_id}/captions/{language}/vtt"));
        let call = self.generated();
        let result = call
            .get_caption_vtt(&account, &video, &language.to_owned())
            .await;
        let response = match result {
            Ok(response) => response,
            Err(e) => return Err(self.failed(&call, request, e).await),
        };
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let unexpected = |why: String| Error::UnexpectedResponse {
            request: request.clone(),
            status,
            content_type: content_type.clone(),
            body_snippet: why,
        };
        let is_vtt = content_type.as_deref().is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/vtt"))
        });
        let mut body = Vec::new();
        let mut stream = response.into_inner();
        // A body cut half-way is a transport failure (worth a retry), not
        // a wrong answer.
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| crate::fetch::transport_error(&request, 1, e))?
        {
            if (body.len() + chunk.len()) as u64 > MAX_CAPTION_BYTES {
                return Err(unexpected(format!(
                    "larger than a caption can be ({MAX_CAPTION_BYTES} bytes)"
                )));
            }
            body.extend_from_slice(&chunk);
            if !is_vtt && body.len() >= 512 {
                break;
            }
        }
        if !is_vtt {
            return Err(unexpected(format!(
                "expected WebVTT (text/vtt): {}",
                crate::http::snippet(&body)
            )));
        }
        let text = String::from_utf8(body)
            .map_err(|e| unexpected(format!("WebVTT that is not UTF-8: {e}")))?;
        if !text.trim_start_matches('\u{feff}').starts_with("WEBVTT") {
            return Err(unexpected(format!(
                "text/vtt that does not start with WEBVTT: {}",
                crate::http::snippet(text.as_bytes())
            )));
        }
        Ok(text)
    }

    /// The additional audio tracks of a video (`GET …/stream/{id}/audio`),
    /// with their status. The audio of the upload itself is not listed,
    /// and Stream offers no download of these tracks (they play as HLS and
    /// DASH renditions only). One API request.
    pub async fn audio_tracks(&self, video_id: &str) -> Result<Vec<AudioTrack>, Error> {
        let account = self.account()?;
        let video = crate::ids::video_id(video_id)?;
        let call = self.generated();
        let result = call.list_audio_tracks(&account, &video).await;
        self.finish_with_result(
            &call,
            self.account_path("GET", &format!("{video_id}/audio")),
            result,
        )
        .await
    }

    /// The account's watermark profiles (`GET …/stream/watermarks`): their
    /// settings (the images cannot be downloaded). One API request.
    pub async fn watermarks(&self) -> Result<Vec<Watermark>, Error> {
        let account = self.account()?;
        let call = self.generated();
        let result = call.list_watermarks(&account).await;
        self.finish_with_result(&call, self.account_path("GET", "watermarks"), result)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_are_checked_before_any_request() {
        for ok in ["en", "pt-BR", "zh-Hant", "es-419"] {
            assert!(check_language(ok).is_ok(), "{ok}");
        }
        for bad in ["", "en/../x", "en?x=1", "fr%2F", "a b", &"x".repeat(36)] {
            assert!(check_language(bad).is_err(), "{bad}");
        }
    }
}
