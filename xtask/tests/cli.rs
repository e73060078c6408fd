//! `cargo xtask codegen` as users run it: the real binary on a scratch copy
//! of the inputs. Broken specs must give exit status 2 and one clear message
//! naming the file and JSON pointer, never a panic, and must leave the
//! generated file byte-identical.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use xtask::codegen::{Paths, patched_spec};

const LIST: &str = "/paths/~1accounts~1{account_id}~1stream~1{identifier}~1downloads/get";
const LIST_PTR: &str = "#/paths/~1accounts~1{account_id}~1stream~1{identifier}~1downloads/get";

/// A scratch workspace: the spec, patches and output of one run.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// The workspace's spec with its patches already applied, an empty
    /// patch directory, and a copy of the real generated file.
    fn patched() -> Self {
        let s = Self::empty();
        let doc = patched_spec(&Paths::workspace()).unwrap();
        s.write_spec_json(&doc);
        std::fs::copy(Paths::workspace().output, s.output()).unwrap();
        s
    }

    fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("patches")).unwrap();
        Self { dir }
    }

    fn spec(&self) -> PathBuf {
        self.dir.path().join("spec.json")
    }
    fn output(&self) -> PathBuf {
        self.dir.path().join("generated.rs")
    }
    fn patches(&self) -> PathBuf {
        self.dir.path().join("patches")
    }

    fn write_spec_json(&self, doc: &Value) {
        std::fs::write(self.spec(), serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut doc: Value = serde_json::from_slice(&std::fs::read(self.spec()).unwrap()).unwrap();
        f(&mut doc);
        self.write_spec_json(&doc);
    }

    fn run_with_spec(&self, spec: &Path, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("codegen")
            .args(extra)
            .arg("--spec")
            .arg(spec)
            .arg("--patches")
            .arg(self.patches())
            .arg("--out")
            .arg(self.output())
            .output()
            .unwrap()
    }

    fn run(&self, extra: &[&str]) -> Output {
        self.run_with_spec(&self.spec(), extra)
    }

    /// Run codegen expecting a clean failure; returns stderr.
    fn expect_failure(&self) -> String {
        let before = std::fs::read(self.output()).unwrap();
        let out = self.run(&[]);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
        assert!(
            !stderr.contains("panicked"),
            "a panic reached the user: {stderr}"
        );
        assert!(stderr.starts_with("error: "), "stderr: {stderr}");
        assert_eq!(
            std::fs::read(self.output()).unwrap(),
            before,
            "the generated file changed after a failure"
        );
        stderr
    }
}

fn pointer_mut<'a>(doc: &'a mut Value, pointer: &str) -> &'a mut Value {
    doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} not in the spec"))
}

/// The generated text without its header (which names the input paths).
fn body(text: &str) -> &str {
    let start = text
        .find("\n\n")
        .expect("the header ends with a blank line");
    &text[start..]
}

fn assert_generates_the_workspace_file(s: &Scratch, spec: &Path) {
    std::fs::remove_file(s.output()).unwrap();
    let out = s.run_with_spec(spec, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("generated "));
    let ours = std::fs::read_to_string(s.output()).unwrap();
    let workspace = std::fs::read_to_string(Paths::workspace().output).unwrap();
    assert_eq!(body(&ours), body(&workspace));
}

#[test]
fn patched_copy_generates_the_same_file() {
    let s = Scratch::patched();
    assert_generates_the_workspace_file(&s, &s.spec());
}

#[test]
fn yaml_spec_generates_the_same_file() {
    let s = Scratch::patched();
    let doc = patched_spec(&Paths::workspace()).unwrap();
    let yaml = s.dir.path().join("spec.yaml");
    std::fs::write(&yaml, serde_norway::to_string(&doc).unwrap()).unwrap();
    assert_generates_the_workspace_file(&s, &yaml);
}

#[test]
fn check_reports_a_stale_file_with_diff_and_command() {
    let s = Scratch::patched();
    assert_eq!(s.run(&[]).status.code(), Some(0));
    s.edit(|doc| {
        pointer_mut(doc, "/components/schemas/stream_downloads/properties")
            .as_object_mut()
            .unwrap()
            .insert("size".into(), json!({"type": "integer"}));
    });
    let before = std::fs::read(s.output()).unwrap();
    let out = s.run(&["--check"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is stale"), "{stderr}");
    assert!(stderr.contains("@@"), "no unified diff: {stderr}");
    assert!(
        stderr.contains("+        pub size:"),
        "diff misses the new field: {stderr}"
    );
    assert!(stderr.contains("run `cargo xtask codegen`"), "{stderr}");
    assert_eq!(std::fs::read(s.output()).unwrap(), before, "--check wrote");

    // Without --check the file is written, and a second run has nothing to do.
    let out = s.run(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("generated "));
    assert!(
        std::fs::read_to_string(s.output())
            .unwrap()
            .contains("pub size:")
    );
    let out = s.run(&[]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("up to date: "));
}

#[test]
fn invalid_json_names_line_and_column() {
    let s = Scratch::patched();
    let text = std::fs::read_to_string(s.spec()).unwrap();
    std::fs::write(s.spec(), text.replacen("\"paths\":", "\"paths\" ", 1)).unwrap();
    let err = s.expect_failure();
    assert!(err.contains("spec.json:"), "{err}");
    assert!(err.contains("invalid JSON"), "{err}");
    let line = text.lines().position(|l| l.contains("\"paths\":")).unwrap() + 1;
    assert!(err.contains(&format!("spec.json:{line}:")), "{err}");
}

#[test]
fn invalid_yaml_names_line_and_column() {
    let s = Scratch::patched();
    let yaml = s.dir.path().join("spec.yaml");
    std::fs::write(&yaml, "openapi: 3.0.3\npaths: [unclosed\n").unwrap();
    let before = std::fs::read(s.output()).unwrap();
    let out = s.run_with_spec(&yaml, &[]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("spec.yaml:"), "{err}");
    assert!(err.contains("invalid YAML"), "{err}");
    assert_eq!(std::fs::read(s.output()).unwrap(), before);
}

#[test]
fn dangling_ref_names_its_pointer() {
    let s = Scratch::patched();
    s.edit(|doc| {
        *pointer_mut(
            doc,
            "/components/schemas/stream_downloads/properties/status",
        ) = json!({"$ref": "#/components/schemas/stream_download_state"});
    });
    let err = s.expect_failure();
    assert!(
        err.contains("spec.json#/components/schemas/stream_downloads/properties/status/$ref"),
        "{err}"
    );
    assert!(err.contains("dangling reference"), "{err}");
}

#[test]
fn missing_operation_id_names_the_operation() {
    let s = Scratch::patched();
    s.edit(|doc| {
        pointer_mut(doc, LIST)
            .as_object_mut()
            .unwrap()
            .remove("operationId");
    });
    let err = s.expect_failure();
    assert!(
        err.contains(&format!("spec.json{LIST_PTR}/operationId")),
        "{err}"
    );
    assert!(err.contains("has no operationId"), "{err}");
}

#[test]
fn duplicate_operation_id_is_refused() {
    let s = Scratch::patched();
    s.edit(|doc| {
        *pointer_mut(doc, &format!("{LIST}/operationId")) = json!("create_download");
    });
    let err = s.expect_failure();
    assert!(
        err.contains("duplicate operationId `create_download`"),
        "{err}"
    );
}

/// The list operation gets a `default` response (the failure envelope)
/// beside its typed 200: progenitor cannot type both.
fn add_default_response(doc: &mut Value) {
    let responses = pointer_mut(doc, &format!("{LIST}/responses"));
    let failure = responses["4XX"].clone();
    responses
        .as_object_mut()
        .unwrap()
        .insert("default".into(), failure);
}

#[test]
fn default_response_beside_200_is_refused() {
    let s = Scratch::patched();
    s.edit(add_default_response);
    let err = s.expect_failure();
    assert!(
        err.contains(&format!("spec.json{LIST_PTR}/responses/default")),
        "{err}"
    );
    assert!(
        err.contains("`default` response beside the typed 200"),
        "{err}"
    );
}

#[test]
fn progenitor_panic_is_caught_and_blamed_on_the_operation() {
    // The same shape as above, with validation skipped: progenitor panics on
    // it, and the user still gets one line naming the operation.
    let s = Scratch::patched();
    s.edit(add_default_response);
    let before = std::fs::read(s.output()).unwrap();
    let out = s.run(&["--skip-validation"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("progenitor failed on GET /accounts/{account_id}/stream/{identifier}/downloads (operationId `list_downloads`"),
        "{err}"
    );
    assert_eq!(std::fs::read(s.output()).unwrap(), before);
}

#[test]
fn generator_error_is_blamed_on_the_operation() {
    let s = Scratch::patched();
    s.edit(|doc| {
        pointer_mut(doc, &format!("{LIST}/parameters"))
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "session", "in": "cookie", "schema": {"type": "string"}}));
    });
    let err = s.expect_failure();
    assert!(err.contains("progenitor failed on GET"), "{err}");
    assert!(err.contains("cookie parameters are not supported"), "{err}");
}

#[test]
fn two_success_responses_with_different_bodies_are_refused() {
    let s = Scratch::patched();
    s.edit(|doc| {
        let responses = pointer_mut(doc, &format!("{LIST}/responses"));
        responses
            .as_object_mut()
            .unwrap()
            .insert("204".into(), json!({"description": "No content."}));
    });
    let err = s.expect_failure();
    assert!(
        err.contains(&format!("spec.json{LIST_PTR}/responses/204")),
        "{err}"
    );
    assert!(err.contains("different bodies"), "{err}");
}

#[test]
fn media_type_without_schema_is_refused() {
    let s = Scratch::patched();
    s.edit(|doc| {
        *pointer_mut(
            doc,
            &format!("{LIST}/responses/200/content/application~1json"),
        ) = json!({});
    });
    let err = s.expect_failure();
    assert!(
        err.contains(&format!(
            "spec.json{LIST_PTR}/responses/200/content/application~1json"
        )),
        "{err}"
    );
}

#[test]
fn path_parameter_missing_from_template_is_refused() {
    let s = Scratch::patched();
    s.edit(|doc| {
        *pointer_mut(doc, &format!("{LIST}/parameters/0/name")) = json!("video_id");
    });
    let err = s.expect_failure();
    assert!(
        err.contains(&format!("spec.json{LIST_PTR}/parameters/0")),
        "{err}"
    );
    assert!(err.contains("`video_id` does not appear"), "{err}");
}

#[test]
fn openapi_3_1_is_refused() {
    let s = Scratch::patched();
    s.edit(|doc| doc["openapi"] = json!("3.1.0"));
    let err = s.expect_failure();
    assert!(err.contains("spec.json#/openapi"), "{err}");
    assert!(err.contains("OpenAPI 3.1.0 is not supported"), "{err}");
}

#[test]
fn structural_error_names_its_pointer() {
    let s = Scratch::patched();
    s.edit(|doc| *pointer_mut(doc, &format!("{LIST}/responses/200/description")) = json!(42));
    let err = s.expect_failure();
    assert!(
        err.contains(&format!("spec.json{LIST_PTR}/responses/200/description")),
        "{err}"
    );
}

#[test]
fn patch_that_no_longer_applies_names_the_patch() {
    let s = Scratch::empty();
    // The upstream spec with its list operation renamed upstream, and the
    // workspace's real patches.
    let mut doc = xtask::spec::load(&Paths::workspace().spec).unwrap();
    *pointer_mut(&mut doc, &format!("{LIST}/operationId")) = json!("stream-downloads-list");
    s.write_spec_json(&doc);
    std::fs::remove_dir(s.patches()).unwrap();
    copy_dir(&Paths::workspace().patches, &s.patches());
    std::fs::copy(Paths::workspace().output, s.output()).unwrap();
    let err = s.expect_failure();
    assert!(err.contains("01-operation-ids.json: operation 0"), "{err}");
    assert!(
        err.contains(&format!("`test` at {LIST}/operationId")),
        "{err}"
    );
    assert!(err.contains("value did not match"), "{err}");
}

#[test]
fn missing_spec_file_is_a_clear_error() {
    let s = Scratch::patched();
    std::fs::remove_file(s.spec()).unwrap();
    let err = s.expect_failure();
    assert!(err.contains("spec.json: cannot read spec"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
