//! Spec loading and validation: any bytes as a JSON or YAML spec, through
//! the workspace's patches, validation, the typed model, progenitor (whose
//! panics the xtask must catch) and `spec sync`'s slicer. Each step may
//! refuse the input with an error; none may panic.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xtask::patches::SpecPatch;

fn patches() -> &'static [SpecPatch] {
    static PATCHES: OnceLock<Vec<SpecPatch>> = OnceLock::new();
    PATCHES.get_or_init(|| {
        xtask::patches::load_dir(&xtask::workspace_root().join("openapi/patches")).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let yaml = data.first().is_some_and(|b| *b != b'{');
    let file = Path::new(if yaml { "spec.yaml" } else { "spec.json" });
    let Ok(mut doc) = xtask::spec::parse(file, data) else {
        return;
    };
    let selection = xtask::sync::Selection {
        reason: String::new(),
        path_prefixes: vec!["/accounts/{account_id}/stream/{identifier}/downloads".into()],
        operations: vec![xtask::sync::OperationRule {
            path: "/accounts/{account_id}/stream".into(),
            methods: vec!["get".into()],
        }],
    };
    let _ = xtask::sync::slice(file, &doc, &selection);
    let _ = xtask::patches::apply(&mut doc, patches());
    if xtask::validate::validate(file, &doc).is_err() {
        return;
    }
    let Ok(openapi) = xtask::spec::to_openapi(file, &doc) else {
        return;
    };
    let _ = xtask::generate::generate(file, &doc, &openapi);
});
