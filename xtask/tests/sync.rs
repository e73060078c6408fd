//! `cargo xtask spec sync` on real input: Cloudflare's complete 2024-08-06
//! document (`tests/data/`), the current fragment, and broken sources.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use xtask::sync::{Change, SyncOptions, SyncPaths, run};

const DOC_2024: &str = "cloudflare-openapi-2024-08-06.json";

/// A scratch copy of `openapi/`.
fn scratch_openapi() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = xtask::workspace_root().join("openapi");
    for name in [
        "sync.json",
        "stream-downloads.openapi.json",
        "provenance.json",
    ] {
        std::fs::copy(src.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// The 2024 document, uncompressed into `dir`.
fn doc_2024(dir: &Path) -> PathBuf {
    let gz = xtask::workspace_root()
        .join("xtask/tests/data")
        .join(format!("{DOC_2024}.gz"));
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    let path = dir.join(DOC_2024);
    std::fs::write(&path, text).unwrap();
    path
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Every `/components/<kind>/<name>` the document references from its
/// paths and security, transitively.
fn reachable(doc: &Value) -> std::collections::BTreeSet<String> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.trim_start_matches('#').to_owned());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = Vec::new();
    refs(&doc["paths"], &mut todo);
    for req in doc["security"].as_array().unwrap() {
        for name in req.as_object().unwrap().keys() {
            todo.push(format!("/components/securitySchemes/{name}"));
        }
    }
    while let Some(r) = todo.pop() {
        let parts: Vec<&str> = r.split('/').collect();
        let component = parts[..4].join("/");
        if seen.insert(component.clone()) {
            refs(doc.pointer(&component).unwrap(), &mut todo);
        }
    }
    seen
}

#[test]
fn slicing_the_2024_document() {
    let openapi = scratch_openapi();
    let source_dir = tempfile::tempdir().unwrap();
    let from = doc_2024(source_dir.path());
    let paths = SyncPaths::in_dir(openapi.path());
    let outcome = run(
        &paths,
        &SyncOptions {
            from: from.clone(),
            date: Some("2024-08-06".into()),
            check: false,
        },
    )
    .unwrap();
    assert!(outcome.written && outcome.changed);

    // A valid OpenAPI 3.0 document with exactly the three untyped operations.
    let fragment = xtask::spec::load(&paths.fragment).unwrap();
    xtask::validate::check_structure(&paths.fragment, &fragment).unwrap();
    xtask::spec::to_openapi(&paths.fragment, &fragment).unwrap();
    // Valid OpenAPI, but not generatable as it is: its POST has a request
    // body without schema, which codegen refuses with the pointer.
    let refused = xtask::validate::validate(&paths.fragment, &fragment).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("/post/requestBody/content/application~1json"),
        "{refused}"
    );
    let paths_obj = fragment["paths"].as_object().unwrap();
    assert_eq!(
        paths_obj.keys().collect::<Vec<_>>(),
        [
            "/accounts/{account_id}/stream",
            "/accounts/{account_id}/stream/keys",
            "/accounts/{account_id}/stream/keys/{identifier}",
            "/accounts/{account_id}/stream/watermarks",
            "/accounts/{account_id}/stream/{identifier}",
            "/accounts/{account_id}/stream/{identifier}/audio",
            "/accounts/{account_id}/stream/{identifier}/captions",
            "/accounts/{account_id}/stream/{identifier}/captions/{language}",
            "/accounts/{account_id}/stream/{identifier}/captions/{language}/vtt",
            "/accounts/{account_id}/stream/{identifier}/downloads",
            "/accounts/{account_id}/stream/{identifier}/token"
        ]
    );
    // One video's details without the same path item's update and delete.
    let details = paths_obj["/accounts/{account_id}/stream/{identifier}"]
        .as_object()
        .unwrap();
    assert_eq!(details.keys().collect::<Vec<_>>(), ["get"]);
    let item = &paths_obj["/accounts/{account_id}/stream/{identifier}/downloads"];
    let mut methods: Vec<&String> = item.as_object().unwrap().keys().collect();
    methods.sort();
    assert_eq!(methods, ["delete", "get", "post"]);
    // One method of one path: the listing, without the same path's POST
    // (the TUS upload), which the 2024 document has.
    let source = xtask::spec::load(&from).unwrap();
    assert!(source["paths"]["/accounts/{account_id}/stream"]["post"].is_object());
    let listing = paths_obj["/accounts/{account_id}/stream"]
        .as_object()
        .unwrap();
    assert_eq!(listing.keys().collect::<Vec<_>>(), ["get"]);
    assert_eq!(listing["get"]["operationId"], "stream-videos-list-videos");
    for key in ["openapi", "info", "servers", "security"] {
        assert!(fragment.get(key).is_some(), "{key} missing");
    }
    // Only the components they reference, and all of them.
    let mut present = std::collections::BTreeSet::new();
    for (kind, members) in fragment["components"].as_object().unwrap() {
        for name in members.as_object().unwrap().keys() {
            present.insert(format!("/components/{kind}/{name}"));
        }
    }
    assert_eq!(present, reachable(&fragment));
    assert!(
        !present.contains("/components/schemas/stream_tus_resumable"),
        "the upload's schemas leaked in: {present:?}"
    );

    // The report against today's fragment.
    let report = &outcome.report;
    assert_eq!(
        report.operations_removed,
        [
            "DELETE /accounts/{account_id}/stream/{identifier}/downloads/{download_type} (stream-downloads-delete-type-specific-downloads)",
            "POST /accounts/{account_id}/stream/{identifier}/downloads/{download_type} (stream-downloads-create-type-specific-downloads)",
        ]
    );
    assert!(report.operations_added.is_empty());
    let result_changes = &report.schema_changes["stream_downloads_response"];
    for gone in ["result.default", "result.audio"] {
        assert!(
            result_changes.contains(&Change::PropertyRemoved { path: gone.into() }),
            "{result_changes:?}"
        );
    }
    let messages = &report.schema_changes["stream_messages"];
    assert!(messages.contains(&Change::PropertyRemoved {
        path: "[].documentation_url".into()
    }));
    assert!(
        report
            .schemas_removed
            .contains(&"stream_download_status".to_owned())
    );
    assert!(report.descriptions_changed > 0);

    // Provenance names the source, its hash and the date.
    let provenance: Value =
        serde_json::from_slice(&std::fs::read(&paths.provenance).unwrap()).unwrap();
    assert_eq!(provenance["source"], DOC_2024);
    assert_eq!(
        provenance["sha256"],
        "da05a4d1416c7e7e3b4bfbf51dcf6446f7158c670493961ec65261a682d92427"
    );
    assert_eq!(provenance["date"], "2024-08-06");
    assert_eq!(provenance["version"], "4.0.0");

    // Deterministic: a second sync from the same document changes nothing.
    let again = run(
        &paths,
        &SyncOptions {
            from,
            date: Some("2024-08-06".into()),
            check: false,
        },
    )
    .unwrap();
    assert!(!again.changed && again.report.is_empty());
}

#[test]
fn syncing_the_current_fragment_is_a_no_op() {
    let openapi = scratch_openapi();
    let before = snapshot(openapi.path());
    let paths = SyncPaths::in_dir(openapi.path());
    // A document containing the fragment: the fragment itself, plus
    // unrelated paths and components that must not leak in.
    let mut doc = xtask::spec::load(&paths.fragment).unwrap();
    doc["paths"]["/accounts/{account_id}/stream/{identifier}/embed"] = json!({
        "get": { "operationId": "stream-video-embed", "responses": {
            "200": { "description": "ok", "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/stream_video" } } } } } }
    });
    doc["components"]["schemas"]["stream_video"] = json!({ "type": "object" });
    let source_dir = tempfile::tempdir().unwrap();
    let from = source_dir.path().join("openapi.json");
    std::fs::write(&from, serde_json::to_vec(&doc).unwrap()).unwrap();

    let outcome = run(
        &paths,
        &SyncOptions {
            from,
            date: None,
            check: false,
        },
    )
    .unwrap();
    assert!(outcome.report.is_empty(), "{}", outcome.report.render());
    assert!(!outcome.changed && !outcome.written);
    assert_eq!(outcome.report.render(), "no changes\n");
    assert_eq!(snapshot(openapi.path()), before, "openapi/ changed");
}

#[test]
fn a_yaml_source_gives_the_same_fragment() {
    let openapi = scratch_openapi();
    let paths = SyncPaths::in_dir(openapi.path());
    let doc = xtask::spec::load(&paths.fragment).unwrap();
    let source_dir = tempfile::tempdir().unwrap();
    let from = source_dir.path().join("openapi.yaml");
    std::fs::write(&from, serde_norway::to_string(&doc).unwrap()).unwrap();
    let outcome = run(
        &paths,
        &SyncOptions {
            from,
            date: None,
            check: true,
        },
    )
    .unwrap();
    assert!(!outcome.changed, "{}", outcome.report.render());
}

/// Run the real binary against a scratch `openapi/`.
fn xtask_sync(openapi: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["spec", "sync", "--openapi-dir"])
        .arg(openapi)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_reports_and_writes_nothing() {
    let openapi = scratch_openapi();
    let before = snapshot(openapi.path());
    let source_dir = tempfile::tempdir().unwrap();
    let from = doc_2024(source_dir.path());
    let (code, stdout, stderr) = xtask_sync(
        openapi.path(),
        &["--check", "--from", from.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("operation removed: POST /accounts/{account_id}/stream/{identifier}/downloads/{download_type}"), "{stdout}");
    assert!(
        stdout.contains("schema stream_downloads_response:\n"),
        "{stdout}"
    );
    assert!(stdout.contains("    - result.default\n"), "{stdout}");
    assert!(
        stderr.contains("would change; run `cargo xtask spec sync --from"),
        "{stderr}"
    );
    assert_eq!(snapshot(openapi.path()), before, "--check wrote");

    let (code, stdout, _) = xtask_sync(
        openapi.path(),
        &["--check", "--json", "--from", from.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["changed"], true);
    assert_eq!(report["written"], false);
    assert_eq!(report["operations"], 14);
    assert_eq!(
        report["report"]["operations_removed"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        report["report"]["schema_changes"]["stream_downloads_response"]
            .as_array()
            .unwrap()
            .contains(&json!({ "change": "property_removed", "path": "result.audio" }))
    );
}

#[test]
fn broken_sources_are_clear_errors_and_leave_openapi_untouched() {
    let openapi = scratch_openapi();
    let before = snapshot(openapi.path());
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let fragment =
        std::fs::read_to_string(openapi.path().join("stream-downloads.openapi.json")).unwrap();
    let cases = [
        (
            dir.path().join("missing.json"),
            "cannot read the source document",
        ),
        (
            write("broken.json", "{\"openapi\": \"3.0.3\", \"paths\": {"),
            "invalid JSON",
        ),
        (write("broken.yaml", "openapi: [3"), "invalid YAML"),
        (
            write(
                "other.json",
                r#"{"openapi": "3.0.3", "info": {}, "paths": {"/zones": {}}}"#,
            ),
            "no path matches the selection",
        ),
        (
            write("swagger.json", r#"{"swagger": "2.0", "paths": {}}"#),
            "not an OpenAPI 3 document",
        ),
        (
            write(
                "dangling.json",
                &fragment.replace(
                    "\"$ref\": \"#/components/schemas/stream_download_status\"",
                    "\"$ref\": \"#/components/schemas/stream_download_state\"",
                ),
            ),
            "dangling reference upstream: `#/components/schemas/stream_download_state`",
        ),
    ];
    for (from, expected) in cases {
        let (code, _, stderr) = xtask_sync(openapi.path(), &["--from", from.to_str().unwrap()]);
        assert_eq!(code, 2, "{}: {stderr}", from.display());
        assert!(stderr.contains(expected), "{}: {stderr}", from.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(
            snapshot(openapi.path()),
            before,
            "{}: openapi/ changed",
            from.display()
        );
    }
    let (code, _, stderr) = xtask_sync(openapi.path(), &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("needs --from"), "{stderr}");
}

#[test]
fn an_operation_rule_that_finds_nothing_is_an_error() {
    let openapi = scratch_openapi();
    let before = snapshot(openapi.path());
    std::fs::write(
        openapi.path().join("sync.json"),
        r#"{"reason": "r", "operations": [{"path": "/accounts/{account_id}/stream", "methods": ["put"]}]}"#,
    )
    .unwrap();
    let before_fragment =
        std::fs::read(openapi.path().join("stream-downloads.openapi.json")).unwrap();
    let source_dir = tempfile::tempdir().unwrap();
    let from = doc_2024(source_dir.path());
    let (code, _, stderr) = xtask_sync(openapi.path(), &["--from", from.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("#/paths/~1accounts~1{account_id}~1stream/put")
            && stderr.contains("no such operation"),
        "{stderr}"
    );
    // A method that is not one is refused with its pointer in sync.json.
    std::fs::write(
        openapi.path().join("sync.json"),
        r#"{"reason": "r", "operations": [{"path": "/x", "methods": ["GET"]}]}"#,
    )
    .unwrap();
    let (code, _, stderr) = xtask_sync(openapi.path(), &["--from", from.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("sync.json#/operations/0/methods/0"),
        "{stderr}"
    );
    let after = snapshot(openapi.path());
    assert_eq!(
        std::fs::read(openapi.path().join("stream-downloads.openapi.json")).unwrap(),
        before_fragment
    );
    assert_eq!(after.len(), before.len());
}
