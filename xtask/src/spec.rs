//! Loading the OpenAPI document (JSON or YAML) into a `serde_json::Value`.

use std::path::Path;

use serde_json::Value;

use crate::Error;

/// Read `file` and parse it as YAML when its extension is `.yaml`/`.yml`,
/// as JSON otherwise. Syntax errors carry the line and column.
pub fn load(file: &Path) -> Result<Value, Error> {
    let bytes = std::fs::read(file).map_err(|source| Error::Io {
        file: file.to_path_buf(),
        action: "cannot read spec",
        source,
    })?;
    parse(file, &bytes)
}

/// Parse bytes already read from `file` (the name picks the format and is
/// used in messages).
pub fn parse(file: &Path, bytes: &[u8]) -> Result<Value, Error> {
    let is_yaml = matches!(
        file.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    if is_yaml {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let (line, column) = line_column(bytes, e.valid_up_to());
            Error::Syntax {
                file: file.to_path_buf(),
                format: "YAML",
                line,
                column,
                message: "not UTF-8".into(),
            }
        })?;
        serde_norway::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            Error::Syntax {
                file: file.to_path_buf(),
                format: "YAML",
                line,
                column,
                message: e.to_string(),
            }
        })
    } else {
        serde_json::from_slice(bytes).map_err(|e| Error::Syntax {
            file: file.to_path_buf(),
            format: "JSON",
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }
}

/// 1-based line and column of byte `offset`.
fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, column)
}

/// Turn the validated document into progenitor's typed model. A structural
/// mismatch is reported with the deepest JSON pointer we can find: openapiv3
/// flattens some maps, which hides the path from serde, so on failure the
/// operations and components are tried one at a time.
pub fn to_openapi(file: &Path, doc: &Value) -> Result<openapiv3::OpenAPI, Error> {
    typed::<openapiv3::OpenAPI>(doc, "").map_err(|(pointer, message)| {
        let (pointer, message) = locate(doc).unwrap_or((pointer, message));
        Error::spec(
            file,
            pointer,
            format!("not a valid OpenAPI 3.0 document: {message}"),
        )
    })
}

/// Deserialize `value` (found at `at`) into `T`, or say where it broke.
fn typed<T: serde::de::DeserializeOwned>(value: &Value, at: &str) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut pointer = at.to_owned();
        for seg in e.path().iter() {
            let seg = match seg {
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                serde_path_to_error::Segment::Map { key } => crate::escape_pointer_segment(key),
                serde_path_to_error::Segment::Enum { variant } => variant.clone(),
                serde_path_to_error::Segment::Unknown => continue,
            };
            pointer.push('/');
            pointer.push_str(&seg);
        }
        (pointer, e.into_inner().to_string())
    })
}

/// Like `typed`, for a `ReferenceOr<T>`: serde's untagged enums hide the
/// path, so a value without `$ref` is tried as `T` directly.
fn typed_or_ref<T: serde::de::DeserializeOwned>(
    value: &Value,
    at: &str,
) -> Result<(), (String, String)> {
    if value.get("$ref").is_some() {
        typed::<openapiv3::ReferenceOr<T>>(value, at).map(drop)
    } else {
        typed::<T>(value, at).map(drop)
    }
}

/// Find the first operation or component that does not deserialize.
fn locate(doc: &Value) -> Option<(String, String)> {
    use crate::escape_pointer_segment as esc;
    use openapiv3::{Operation, Parameter, RequestBody, Response, Schema};

    let paths = doc.get("paths").and_then(Value::as_object)?;
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            if method.starts_with("x-") || method == "parameters" || !op.is_object() {
                continue;
            }
            let at = format!("/paths/{}/{method}", esc(path));
            if let Err(found) = typed::<Operation>(op, &at) {
                // Responses are a flattened map too: look inside them.
                let responses = op.get("responses").and_then(Value::as_object);
                for (status, response) in responses.into_iter().flatten() {
                    let at = format!("{at}/responses/{}", esc(status));
                    if let Err(deeper) = typed_or_ref::<Response>(response, &at) {
                        return Some(deeper);
                    }
                }
                return Some(found);
            }
        }
    }
    let components = doc.get("components").and_then(Value::as_object)?;
    for (kind, members) in components {
        for (name, member) in members.as_object().into_iter().flatten() {
            let at = format!("/components/{}/{}", esc(kind), esc(name));
            let result = match kind.as_str() {
                "schemas" => typed_or_ref::<Schema>(member, &at),
                "responses" => typed_or_ref::<Response>(member, &at),
                "parameters" => typed_or_ref::<Parameter>(member, &at),
                "requestBodies" => typed_or_ref::<RequestBody>(member, &at),
                _ => Ok(()),
            };
            if let Err(found) = result {
                return Some(found);
            }
        }
    }
    None
}
