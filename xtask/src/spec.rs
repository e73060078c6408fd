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
/// mismatch is reported with the JSON pointer serde stopped at.
pub fn to_openapi(file: &Path, doc: &Value) -> Result<openapiv3::OpenAPI, Error> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let pointer = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Map { key } => {
                    Some(crate::escape_pointer_segment(key))
                }
                serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
                serde_path_to_error::Segment::Unknown => None,
            })
            .fold(String::new(), |acc, seg| acc + "/" + &seg);
        Error::spec(
            file,
            pointer,
            format!("not a valid OpenAPI 3.0 document: {}", e.inner()),
        )
    })
}
