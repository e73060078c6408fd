//! One run per export directory.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::ExportError;

/// Name of the lock file inside the export directory.
pub const LOCK_FILE: &str = "cfstream-export.lock";

/// An exclusive lock on an export directory, held until dropped (or the
/// process dies: the operating system releases it, so a killed run never
/// leaves a stale lock). The holder's pid is written into the file for the
/// error message of a second run.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Locks `dir`, or fails at once with [`ExportError::Busy`].
    pub fn acquire(dir: &Path) -> Result<Self, ExportError> {
        Self::acquire_at(dir.join(LOCK_FILE), dir)
    }

    /// Locks the state database `state` of an object-store destination
    /// (`<state>.lock`): one run per state.
    pub fn acquire_for(state: &Path) -> Result<Self, ExportError> {
        let mut name = state.as_os_str().to_owned();
        name.push(".lock");
        Self::acquire_at(name.into(), state)
    }

    fn acquire_at(path: std::path::PathBuf, dir: &Path) -> Result<Self, ExportError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(ExportError::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(ExportError::Busy {
                    dir: dir.to_owned(),
                    lock: path,
                    holder: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(ExportError::io(&path)(e)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(ExportError::io(&path))?;
        Ok(Self { _file: file })
    }
}
