//! The API inventory and the JSON Schemas of the wire types, pinned.
//!
//! A spec change shows up here as a small diff: review it with
//! `cargo insta review`.

use cloudflare_stream_downloads::types::{
    AudioTracksResponse, CaptionResponse, CaptionsResponse, DeletedResponse, Download,
    DownloadType, DownloadsResponse, FailureResponse, Message, NewSigningKeyResponse,
    SigningKeysResponse, TokenResponse, Video, VideoResponse, VideoStateFilter, VideosResponse,
    WatermarksResponse,
};
use cloudflare_stream_downloads::{
    AudioTrackStatus, CaptionStatus, DownloadStatus, Downloads, VideoList, VideoState,
};
use serde_json::Value;
use xtask::codegen::{Paths, patched_spec};

#[test]
fn api_inventory() {
    let paths = Paths::workspace();
    let generated = std::fs::read_to_string(&paths.output).unwrap();
    let spec = patched_spec(&paths).unwrap();
    let inventory = workspace_tests::inventory(&generated, &spec).unwrap();
    insta::assert_snapshot!(inventory);
}

/// One document holding the schema of every public response type, each
/// defined once, in name order.
#[test]
fn json_schemas_of_response_types() {
    let mut generator = schemars::r#gen::SchemaSettings::draft07().into_generator();
    generator.subschema_for::<DownloadsResponse>();
    generator.subschema_for::<DeletedResponse>();
    generator.subschema_for::<FailureResponse>();
    generator.subschema_for::<Downloads>();
    generator.subschema_for::<Download>();
    generator.subschema_for::<DownloadStatus>();
    generator.subschema_for::<DownloadType>();
    generator.subschema_for::<Message>();
    generator.subschema_for::<VideosResponse>();
    generator.subschema_for::<VideoList>();
    generator.subschema_for::<Video>();
    generator.subschema_for::<VideoState>();
    generator.subschema_for::<VideoResponse>();
    generator.subschema_for::<TokenResponse>();
    generator.subschema_for::<NewSigningKeyResponse>();
    generator.subschema_for::<SigningKeysResponse>();
    generator.subschema_for::<CaptionsResponse>();
    generator.subschema_for::<CaptionResponse>();
    generator.subschema_for::<AudioTracksResponse>();
    generator.subschema_for::<WatermarksResponse>();
    let definitions = generator.take_definitions();
    insta::assert_json_snapshot!(definitions);
}

/// The open enums are hand-written (unknown values must decode); their
/// known values must be exactly the spec's, in its order, and the closed
/// request copy must match the response enum.
#[test]
fn open_enums_know_exactly_the_spec_values() {
    let spec = patched_spec(&Paths::workspace()).unwrap();
    let values = |component: &str| -> Vec<String> {
        spec.pointer(&format!("/components/schemas/{component}/enum"))
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{component} has no enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(values("stream_download_status"), DownloadStatus::KNOWN);
    assert_eq!(values("stream_media_state"), VideoState::KNOWN);
    assert_eq!(values("stream_caption_status"), CaptionStatus::KNOWN);
    assert_eq!(values("stream_audio_state"), AudioTrackStatus::KNOWN);
    let filter: Vec<String> = values("stream_media_state_filter");
    assert_eq!(filter, VideoState::KNOWN);
    // The request enum is closed: every value parses, nothing else does.
    for v in &filter {
        assert_eq!(v.parse::<VideoStateFilter>().unwrap().to_string(), *v);
    }
    assert!("live-finished".parse::<VideoStateFilter>().is_err());
}
