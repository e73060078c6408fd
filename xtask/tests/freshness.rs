//! Plain `cargo test` fails when `generated.rs` is stale (prost/ruff style):
//! the generator runs in memory and its output is compared with the file.

use xtask::codegen::{Paths, render};
use xtask::files::{Outcome, ensure_file_contents};

#[test]
fn generated_client_is_fresh() {
    let paths = Paths::workspace();
    let rendered = render(&paths).unwrap_or_else(|e| panic!("codegen failed: {e}"));
    let shown = xtask::display_path(&paths.root, &paths.output);
    match ensure_file_contents(&paths.output, &shown, &rendered.text, true).unwrap() {
        Outcome::UpToDate => {}
        Outcome::Stale { diff } => panic!(
            "{} is stale; run `cargo xtask codegen` and review the diff:\n{diff}",
            paths.output.display()
        ),
        Outcome::Written => unreachable!("check mode never writes"),
    }
}

#[test]
fn generation_is_deterministic() {
    let paths = Paths::workspace();
    let first = render(&paths).unwrap().text;
    let second = render(&paths).unwrap().text;
    assert_eq!(first, second);
}

#[test]
fn all_sixteen_operations_are_generated() {
    let rendered = render(&Paths::workspace()).unwrap();
    assert_eq!(rendered.operations, 16);
    for method in [
        "list_videos",
        "get_video",
        "create_token",
        "create_signing_key",
        "list_signing_keys",
        "delete_signing_key",
        "list_downloads",
        "create_downloads",
        "delete_downloads",
        "create_download",
        "delete_download",
        "list_captions",
        "get_caption",
        "get_caption_vtt",
        "list_audio_tracks",
        "list_watermarks",
    ] {
        assert!(
            rendered.text.contains(&format!("pub async fn {method}<")),
            "{method} missing from the generated client"
        );
    }
}

/// Optional derives are behind their feature, never in a plain derive list.
#[test]
fn optional_derives_are_behind_their_feature() {
    let rendered = render(&Paths::workspace()).unwrap();
    let gated = rendered
        .text
        .matches("#[cfg_attr(feature = \"schemars\", derive(schemars::JsonSchema))]")
        .count();
    assert_eq!(gated, rendered.types, "one gated derive per generated type");
    for line in rendered
        .text
        .lines()
        .filter(|l| l.trim_start().starts_with("#[derive("))
    {
        assert!(!line.contains("JsonSchema"), "ungated: {line}");
    }
}
