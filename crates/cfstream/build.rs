//! Records the commit `cfstream` is built from, for `cfstream --version`.
//!
//! `CFSTREAM_COMMIT` in the build's environment wins (a build from a source
//! archive has no `.git`); otherwise `git rev-parse` of the checkout, which
//! `cargo install --path` and `cargo install --git` both have; otherwise
//! "unknown". Only HEAD and the branch it names are watched, so a commit
//! rebuilds this one crate and nothing else does. Uncommitted changes are
//! not detected: watching the index would rebuild on every `git status`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo::rerun-if-env-changed=CFSTREAM_COMMIT");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let commit = match std::env::var("CFSTREAM_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_owned(),
        _ => {
            if let Some(git_dir) = git(&dir, &["rev-parse", "--absolute-git-dir"]) {
                let git_dir = PathBuf::from(git_dir);
                let mut watched = vec![git_dir.join("HEAD"), git_dir.join("packed-refs")];
                if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
                    // A packed branch gets a loose file at its next commit.
                    let loose = git_dir.join(branch);
                    watched.push(if loose.exists() {
                        loose
                    } else {
                        git_dir.join("refs/heads")
                    });
                }
                // Only files that exist: cargo reruns a script whose watched
                // file is missing on every build.
                for path in watched.iter().filter(|p| p.exists()) {
                    println!("cargo::rerun-if-changed={}", path.display());
                }
            }
            git(&dir, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
        }
    };
    println!("cargo::rustc-env=CFSTREAM_COMMIT={commit}");
}
