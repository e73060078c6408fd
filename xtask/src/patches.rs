//! Local deviations from the upstream spec, kept as data.
//!
//! Each file in `openapi/patches/` is `{"reason": "...", "patch": [...]}` where
//! `patch` is an RFC 6902 JSON Patch applied with the `json-patch` crate.
//! Files apply in name order. A patch that no longer applies (a `test`
//! operation fails, a target vanished) is reported with its file, the index
//! and pointer of the failing operation, and the reason.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Error;

/// One patch file.
#[derive(Debug, Clone)]
pub struct SpecPatch {
    /// Where it was read from.
    pub file: PathBuf,
    /// Why the deviation exists (shown in `openapi/README.md`).
    pub reason: String,
    /// The RFC 6902 operations.
    pub operations: json_patch::Patch,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchFile {
    reason: String,
    patch: json_patch::Patch,
}

/// Read every `*.json` file of `dir`, sorted by name. A missing directory
/// means no patches.
pub fn load_dir(dir: &Path) -> Result<Vec<SpecPatch>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                file: dir.to_path_buf(),
                action: "cannot list patches",
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            file: dir.to_path_buf(),
            action: "cannot list patches",
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    files.iter().map(|f| load_file(f)).collect()
}

/// Read one patch file.
pub fn load_file(file: &Path) -> Result<SpecPatch, Error> {
    let value = crate::spec::load(file)?;
    let parsed: PatchFile = serde_path_to_error::deserialize(&value).map_err(|e| {
        Error::spec(
            file,
            format!("/{}", e.path().to_string().replace('.', "/")),
            format!(
                "not a patch file ({{\"reason\": string, \"patch\": RFC 6902 operations}}): {}",
                e.inner()
            ),
        )
    })?;
    Ok(SpecPatch {
        file: file.to_path_buf(),
        reason: parsed.reason,
        operations: parsed.patch,
    })
}

/// Apply `patches` in order. On failure `doc` is left as it was before the
/// failing patch (json-patch undoes a partly applied patch).
pub fn apply(doc: &mut Value, patches: &[SpecPatch]) -> Result<(), Error> {
    for p in patches {
        json_patch::patch(doc, &p.operations).map_err(|e| {
            let op = p.operations.get(e.operation);
            let name = op
                .and_then(|op| serde_json::to_value(op).ok())
                .and_then(|v| v.get("op").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "?".into());
            Error::Patch {
                patch: p.file.clone(),
                index: e.operation,
                op: name,
                pointer: e.path.to_string(),
                message: format!("{} (the patch's reason: {})", e.kind, p.reason),
            }
        })?;
    }
    Ok(())
}
