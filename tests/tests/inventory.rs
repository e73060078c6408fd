//! The API inventory and the JSON Schemas of the wire types, pinned.
//!
//! A spec change shows up here as a small diff: review it with
//! `cargo insta review`.

use cloudflare_stream_downloads::Downloads;
use cloudflare_stream_downloads::types::{
    DeletedResponse, Download, DownloadStatus, DownloadType, DownloadsResponse, FailureResponse,
    Message,
};
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
    let definitions = generator.take_definitions();
    insta::assert_json_snapshot!(definitions);
}
