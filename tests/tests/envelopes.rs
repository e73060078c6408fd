//! Envelope fixtures decoded with the generated types, and the two shapes of
//! `result`.

use cloudflare_stream_downloads::DownloadStatus;
use cloudflare_stream_downloads::Downloads;
use cloudflare_stream_downloads::types::{
    DeletedResponse, Download, DownloadType, DownloadsResponse, FailureResponse,
};
use serde_json::{Value, json};

/// Decode `body` with the type the API uses for it, and re-serialise it.
fn decode_and_reserialise(body: &Value) -> (&'static str, Value) {
    let text = body.to_string();
    if body["success"] == json!(false) {
        let decoded: FailureResponse = serde_json::from_str(&text).unwrap();
        ("FailureResponse", serde_json::to_value(decoded).unwrap())
    } else if body["result"].is_string() {
        let decoded: DeletedResponse = serde_json::from_str(&text).unwrap();
        ("DeletedResponse", serde_json::to_value(decoded).unwrap())
    } else {
        let decoded: DownloadsResponse = serde_json::from_str(&text).unwrap();
        ("DownloadsResponse", serde_json::to_value(decoded).unwrap())
    }
}

#[test]
fn fixtures_decode_and_reserialise() {
    insta::glob!("../fixtures", "*.json", |path| {
        let body: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let (type_name, reserialised) = decode_and_reserialise(&body);
        insta::assert_json_snapshot!(json!({ "type": type_name, "value": reserialised }));
    });
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(workspace_tests::fixtures_dir().join(name)).unwrap()
}

#[test]
fn single_download_and_map_decode_to_the_same_value() {
    // The reference page's example: `result` is one Download (older API).
    let single: DownloadsResponse =
        serde_json::from_str(&fixture("reference-create-single.json")).unwrap();
    // The same download in today's shape.
    let mut body: Value = serde_json::from_str(&fixture("reference-create-single.json")).unwrap();
    let download = body["result"].take();
    body["result"] = json!({ "default": download });
    let map: DownloadsResponse = serde_json::from_value(body).unwrap();

    let single = single.result.unwrap();
    assert_eq!(single, map.result.unwrap());
    assert!(
        !single.is_empty(),
        "a single Download decoded as an empty map"
    );
    let default = single.default().unwrap();
    assert_eq!(default.status, DownloadStatus::Ready);
    assert_eq!(default.percent_complete, 0.0);
    assert_eq!(
        default.url.as_deref(),
        Some(
            "https://customer-m033z5x00ks6nunl.cloudflarestream.com/ea95132c15732412d22c1476fa83f27a/downloads/default.mp4"
        )
    );
    assert_eq!(single.audio(), None);
    assert_eq!(single.get(DownloadType::Default), Some(default));
}

#[test]
fn a_malformed_single_download_is_an_error_not_an_empty_map() {
    for result in [
        json!({ "status": "ready" }),
        json!({ "percentComplete": 50 }),
        json!({ "status": 7, "percentComplete": 10 }),
        json!({ "status": "ready", "percentComplete": "100" }),
    ] {
        let err = serde_json::from_value::<Downloads>(result.clone())
            .expect_err(&format!("{result} decoded"));
        assert!(
            err.to_string().contains("invalid single-download result"),
            "{result}: {err}"
        );
    }
}

/// Cloudflare adds status values without notice: an unknown one decodes,
/// keeps its text, and is not ready.
#[test]
fn an_unknown_download_status_decodes_and_keeps_its_value() {
    let downloads: Downloads = serde_json::from_value(json!({
        "default": { "status": "queued", "percentComplete": 0 },
        "audio": { "status": "ready", "percentComplete": 100, "url": "https://x/a.m4a" }
    }))
    .unwrap();
    let default = downloads.default().unwrap();
    assert_eq!(default.status, DownloadStatus::Unknown("queued".into()));
    assert!(!default.status.is_known() && !default.status.is_final());
    assert_eq!(
        serde_json::to_value(&downloads).unwrap()["default"]["status"],
        "queued"
    );
    // The older single shape too.
    let single: Downloads =
        serde_json::from_value(json!({ "status": "queued", "percentComplete": 10 })).unwrap();
    assert_eq!(single.default().unwrap().status.as_str(), "queued");
}

#[test]
fn map_shape_keeps_both_types_and_ignores_unknown_ones() {
    let ready = json!({ "status": "ready", "percentComplete": 100 });
    let downloads: Downloads = serde_json::from_value(json!({
        "default": ready,
        "audio": { "status": "inprogress", "percentComplete": 12.5 },
        "hls": ready,
    }))
    .unwrap();
    let audio = downloads.audio().unwrap();
    assert_eq!(audio.status, DownloadStatus::Inprogress);
    assert_eq!(audio.percent_complete, 12.5);
    let kinds: Vec<DownloadType> = downloads.iter().map(|(kind, _)| kind).collect();
    assert_eq!(kinds, [DownloadType::Default, DownloadType::Audio]);

    let empty: Downloads = serde_json::from_value(json!({})).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty, Downloads::none());
}

#[test]
fn downloads_serialise_as_the_map() {
    let download: Download =
        serde_json::from_value(json!({ "status": "error", "percentComplete": 3 })).unwrap();
    let downloads = Downloads::none().with(DownloadType::Audio, download);
    assert_eq!(
        serde_json::to_value(&downloads).unwrap(),
        json!({ "audio": { "status": "error", "percentComplete": 3.0 } })
    );
}

#[test]
fn failure_envelope_keeps_every_code_and_tolerates_a_missing_result() {
    let failure: FailureResponse =
        serde_json::from_str(&fixture("failure-documented-with-source.json")).unwrap();
    let codes: Vec<i64> = failure.errors.iter().map(|m| m.code).collect();
    assert_eq!(codes, [10005, 10000]);
    assert_eq!(
        failure.errors[0]
            .source
            .as_ref()
            .and_then(|s| s.pointer.as_deref()),
        Some("/download_type")
    );

    // Seen in the wild: no `result` at all, and codes beyond u16.
    let bare: FailureResponse = serde_json::from_value(json!({
        "success": false,
        "errors": [{ "code": 1_000_000, "message": "big code" }],
        "messages": [],
    }))
    .unwrap();
    assert_eq!(bare.errors[0].code, 1_000_000);
    assert_eq!(bare.result, None);
}
