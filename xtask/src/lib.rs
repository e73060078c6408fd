//! The workspace's code generator: `openapi/` in, `generated.rs` out.
//!
//! `cargo xtask codegen` is the pipeline
//! `load spec -> apply patches -> validate -> generate tokens -> format -> ensure file`;
//! each arrow is one function of this crate with a typed input and output and
//! no global state. The binary (`src/main.rs`) only parses arguments and
//! prints; tests call the same functions.
//!
//! Avoid adding more dependencies to this crate: every one of them is built
//! before anyone can regenerate the client.

pub mod codegen;
pub mod files;
pub mod generate;
pub mod modgraph;
pub mod patches;
pub mod release;
pub mod spec;
pub mod sync;
pub mod validate;

use std::path::{Path, PathBuf};

/// Everything that can stop code generation. Each variant names the file it
/// is about and, for spec problems, the JSON pointer inside it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {action}: {source}", file.display())]
    Io {
        file: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// The file is not valid JSON or YAML.
    #[error("{}:{line}:{column}: invalid {format}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        format: &'static str,
        line: usize,
        column: usize,
        message: String,
    },
    /// The document breaks a rule at a known place.
    #[error("{}#{pointer}: {message}", file.display())]
    Spec {
        file: PathBuf,
        pointer: String,
        message: String,
    },
    /// A patch in `openapi/patches/` no longer applies to the spec.
    #[error("{}: operation {index} (`{op}` at {pointer}) does not apply: {message}", patch.display())]
    Patch {
        patch: PathBuf,
        index: usize,
        op: String,
        pointer: String,
        message: String,
    },
    /// progenitor itself failed (or panicked) after validation passed.
    #[error("{}: progenitor failed on {operation}: {message}", file.display())]
    Generator {
        file: PathBuf,
        operation: String,
        message: String,
    },
    /// A setting in `generate::settings` refers to a type the spec no longer has.
    #[error("xtask/src/generate.rs: {message}")]
    Settings { message: String },
}

impl Error {
    pub(crate) fn spec(
        file: &Path,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Spec {
            file: file.to_path_buf(),
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// Escape one JSON pointer segment (RFC 6901: `~` -> `~0`, `/` -> `~1`).
pub fn escape_pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The workspace root, found from this crate's manifest directory (never the cwd).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Show `path` relative to `root` when it is inside it, for messages.
pub fn display_path(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}
