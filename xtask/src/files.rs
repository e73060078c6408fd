//! Writing generated files: only when they differ, and atomically.

use std::io::Write;
use std::path::Path;

use crate::Error;

/// What `ensure_file_contents` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file already had exactly these contents.
    UpToDate,
    /// The file was (re)written.
    Written,
    /// Check mode: the file differs. Holds a unified diff (old -> new).
    Stale { diff: String },
}

/// Make `path` hold `contents` (line endings normalised to `\n` on both
/// sides). With `check`, write nothing and report a diff instead, headed
/// with `shown_as` (the path as the user knows it).
pub fn ensure_file_contents(
    path: &Path,
    shown_as: &Path,
    contents: &str,
    check: bool,
) -> Result<Outcome, Error> {
    let current = match std::fs::read_to_string(path) {
        Ok(text) => Some(text.replace("\r\n", "\n")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Io {
                file: path.to_path_buf(),
                action: "cannot read",
                source,
            });
        }
    };
    let contents = contents.replace("\r\n", "\n");
    if current.as_deref() == Some(contents.as_str()) {
        return Ok(Outcome::UpToDate);
    }
    if check {
        let old = current.unwrap_or_default();
        let name = shown_as.display().to_string();
        let diff = similar::TextDiff::from_lines(&old, &contents)
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{name}"), &format!("b/{name}"))
            .to_string();
        return Ok(Outcome::Stale { diff });
    }
    write_atomically(path, contents.as_bytes())?;
    Ok(Outcome::Written)
}

/// Write to a temporary file beside `path`, flush it to disk, then rename it
/// over `path`: readers see the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |action: &'static str| {
        let file = path.to_path_buf();
        move |source| Error::Io {
            file,
            action,
            source,
        }
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(io("cannot create directory"))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io("cannot write"))
}
