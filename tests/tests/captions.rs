//! Captions, audio tracks and watermarks through the client, against
//! stream-fake over real HTTP: several languages (a region, a script), a
//! caption still generating, the WebVTT byte for byte, and what is not
//! WebVTT (an HTML page, a JSON envelope, a body over the size cap)
//! refused with the content type named; and the video's HLS manifest on
//! the download host, with its failures (404, 5xx, 429, not a playlist, a
//! cut body, a host that is not there).

use std::time::Duration;

use cloudflare_stream_downloads::archive::MAX_CAPTION_BYTES;
use cloudflare_stream_downloads::{
    AudioTrackStatus, CaptionStatus, Client, Error, RetryPolicy, Signing,
};
use stream_fake::captions::{FakeAudioTrack, FakeCaption};
use stream_fake::{FakeConfig, Fault, Route, StreamFake, VideoOptions};

const VIDEO: &str = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";

fn client(fake: &StreamFake) -> Client {
    Client::builder()
        .base_url(fake.base_url())
        .account_id(&fake.config().account_id)
        .api_token(&fake.config().api_token)
        .retry_policy(RetryPolicy {
            max_retries: 0,
            initial_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap()
}

fn languages() -> Vec<FakeCaption> {
    vec![
        FakeCaption::ready(VIDEO, "en", "English"),
        FakeCaption::ready(VIDEO, "pt-BR", "Português (Brasil)"),
        FakeCaption::ready(VIDEO, "zh-Hant", "中文（繁體）"),
        FakeCaption::generating(VIDEO, "de", "Deutsch"),
    ]
}

async fn fake_with_captions() -> StreamFake {
    let fake = StreamFake::start(FakeConfig::default()).await.unwrap();
    fake.add_video(VIDEO, VideoOptions::default());
    fake.set_captions(VIDEO, languages());
    fake
}

#[tokio::test]
async fn every_language_is_listed_and_each_webvtt_is_served_byte_for_byte() {
    let fake = fake_with_captions().await;
    let client = client(&fake);
    let listed = client.captions(VIDEO).await.unwrap();
    let tags: Vec<&str> = listed
        .iter()
        .map(|c| c.language.as_deref().unwrap())
        .collect();
    assert_eq!(tags, ["en", "pt-BR", "zh-Hant", "de"]);
    let de = &listed[3];
    assert_eq!(de.status, Some(CaptionStatus::Inprogress));
    assert_eq!(de.generated, Some(true));
    for expected in languages().iter().filter(|c| c.status == "ready") {
        let vtt = client.caption_vtt(VIDEO, &expected.language).await.unwrap();
        assert_eq!(vtt, expected.vtt, "{}", expected.language);
        let one = client.caption(VIDEO, &expected.language).await.unwrap();
        assert_eq!(one.label.as_deref(), Some(expected.label.as_str()));
    }
    // Still generating: no WebVTT yet, the API's 404 envelope.
    let generating = client.caption_vtt(VIDEO, "de").await.unwrap_err();
    assert!(
        matches!(&generating, Error::Api { status, .. } if status.as_u16() == 404),
        "{generating:?}"
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn what_is_not_webvtt_is_refused_naming_its_content_type() {
    let fake = fake_with_captions().await;
    let client = client(&fake);
    // An HTML page at 200 (a portal, a misrouted proxy).
    fake.inject(Route::Vtt, Fault::OkHtml, Some(1));
    let html = client.caption_vtt(VIDEO, "en").await.unwrap_err();
    match &html {
        Error::UnexpectedResponse {
            content_type,
            body_snippet,
            ..
        } => {
            assert!(
                content_type.as_deref().unwrap().starts_with("text/html"),
                "{html}"
            );
            assert!(body_snippet.contains("expected WebVTT"), "{html}");
        }
        other => panic!("{other:?}"),
    }
    assert!(html.to_string().contains("text/html"), "{html}");
    // A JSON envelope where WebVTT was expected.
    fake.inject(Route::Vtt, Fault::SuccessFalse, Some(1));
    let json = client.caption_vtt(VIDEO, "en").await.unwrap_err();
    assert!(json.to_string().contains("application/json"), "{json}");
    // Cut half-way: not a caption, and a transport failure (the caller
    // tries again), not a wrong answer.
    fake.inject(Route::Vtt, Fault::CutMidBody, Some(1));
    let cut = client.caption_vtt(VIDEO, "en").await.unwrap_err();
    assert!(
        matches!(cut, Error::Connection { .. } | Error::Timeout { .. }),
        "{cut:?}"
    );
    // And then the same caption is fine.
    assert!(
        client
            .caption_vtt(VIDEO, "en")
            .await
            .unwrap()
            .starts_with("WEBVTT")
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn a_caption_over_the_size_cap_or_without_its_header_is_refused() {
    let fake = StreamFake::start(FakeConfig::default()).await.unwrap();
    fake.add_video(VIDEO, VideoOptions::default());
    let mut big = FakeCaption::ready(VIDEO, "en", "English");
    big.vtt = format!(
        "WEBVTT\n\n{}",
        "00:00:00.000 --> 00:00:01.000\nx\n\n".repeat((MAX_CAPTION_BYTES / 30) as usize + 10)
    );
    assert!(big.vtt.len() as u64 > MAX_CAPTION_BYTES);
    let mut headless = FakeCaption::ready(VIDEO, "fr", "Français");
    headless.vtt = "'WEBVTT\n 00:00:00.000 --> 00:00:02.480\n quoted'\n".into();
    fake.set_captions(VIDEO, vec![big, headless]);
    let client = client(&fake);
    let too_big = client.caption_vtt(VIDEO, "en").await.unwrap_err();
    assert!(
        too_big.to_string().contains("larger than a caption"),
        "{too_big}"
    );
    let no_header = client.caption_vtt(VIDEO, "fr").await.unwrap_err();
    assert!(
        no_header.to_string().contains("does not start with WEBVTT"),
        "{no_header}"
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn audio_tracks_watermarks_and_a_bad_language_tag() {
    let fake = StreamFake::start(FakeConfig::default()).await.unwrap();
    fake.add_video(VIDEO, VideoOptions::default());
    fake.set_audio_tracks(
        VIDEO,
        vec![
            FakeAudioTrack {
                uid: "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1".into(),
                label: "Director's commentary".into(),
                default: false,
                status: "ready".into(),
            },
            FakeAudioTrack {
                uid: "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2".into(),
                label: "Español".into(),
                default: true,
                status: "queued".into(),
            },
        ],
    );
    let client = client(&fake);
    let tracks = client.audio_tracks(VIDEO).await.unwrap();
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0].status, Some(AudioTrackStatus::Ready));
    assert_eq!(tracks[1].default, Some(true));
    assert_eq!(tracks[1].label.as_deref(), Some("Español"));
    let watermarks = client.watermarks().await.unwrap();
    assert_eq!(watermarks.len(), 1);
    assert_eq!(watermarks[0].name.as_deref(), Some("Marketing Videos"));
    // A tag that would change the request path: refused, no request.
    let before = fake.api_request_count();
    for bad in ["en/../x", "en?x", ""] {
        assert!(matches!(
            client.caption_vtt(VIDEO, bad).await,
            Err(Error::InvalidInput { .. })
        ));
    }
    assert_eq!(fake.api_request_count(), before);
    // A video without captions or tracks: empty lists, not errors.
    fake.add_video("d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0", VideoOptions::default());
    assert!(
        client
            .captions("d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        client
            .audio_tracks("d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0")
            .await
            .unwrap()
            .is_empty()
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn the_manifest_lists_the_ready_captions_and_its_failures_keep_their_status() {
    let fake = fake_with_captions().await;
    fake.set_audio_tracks(
        VIDEO,
        vec![FakeAudioTrack {
            uid: "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1".into(),
            label: "Director".into(),
            default: false,
            status: "ready".into(),
        }],
    );
    let client = client(&fake);
    let url = |id: &str| format!("{}/{id}/manifest/video.m3u8", fake.files_base_url());
    let manifest = client
        .video_manifest(VIDEO, &url(VIDEO), Signing::Never)
        .await
        .unwrap()
        .expect("a manifest");
    let tags: Vec<&str> = manifest
        .subtitles
        .iter()
        .map(|r| r.language.as_deref().unwrap())
        .collect();
    assert_eq!(tags, ["en", "pt-BR", "zh-Hant"], "the ready ones only");
    assert_eq!(manifest.subtitles[2].name.as_deref(), Some("中文（繁體）"));
    assert_eq!(manifest.audio.len(), 2, "the upload's own and the track");
    // No manifest there: None.
    let unknown = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";
    assert_eq!(
        client
            .video_manifest(unknown, &url(unknown), Signing::Never)
            .await
            .unwrap(),
        None
    );
    // A 5xx keeps its status; a 429 its Retry-After.
    fake.inject(Route::Manifest, Fault::ServerErrorHtml(503), Some(1));
    let e = client
        .video_manifest(VIDEO, &url(VIDEO), Signing::Never)
        .await
        .unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(503), "{e:?}");
    fake.inject(
        Route::Manifest,
        Fault::RateLimited(stream_fake::RetryAfter::Seconds(7)),
        Some(1),
    );
    let e = client
        .video_manifest(VIDEO, &url(VIDEO), Signing::Never)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    // A 200 that is not a playlist.
    fake.inject(Route::Manifest, Fault::OkHtml, Some(1));
    let e = client
        .video_manifest(VIDEO, &url(VIDEO), Signing::Never)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("#EXTM3U"), "{e}");
    // Cut half-way: a transport failure.
    fake.inject(Route::Manifest, Fault::CutMidBody, Some(1));
    let e = client
        .video_manifest(VIDEO, &url(VIDEO), Signing::Never)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Connection { .. } | Error::Timeout { .. }),
        "{e:?}"
    );
    // A host that is not there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = client
        .video_manifest(
            VIDEO,
            &format!("http://127.0.0.1:{closed}/{VIDEO}/manifest/video.m3u8"),
            Signing::Never,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connection { .. }), "{e:?}");
    // And then it is fine again; no API request was made for any of it.
    assert!(
        client
            .video_manifest(VIDEO, &url(VIDEO), Signing::Never)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(fake.api_request_count(), 0);
    fake.shutdown().await;
}
