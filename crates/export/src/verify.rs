//! `cfstream verify`: an archive read back and checked against its
//! sidecars, with no Stream request (no credentials needed).
//!
//! For every video with a sidecar (`<uid>.json`), each file it records
//! must be there with its size and SHA-256; a media file must pass the
//! export's structure check (its top-level boxes tile it); a caption must
//! start with `WEBVTT`. A sidecar that does not parse is a problem (its
//! files are then not strays: they are named by it). A file of the archive
//! that no sidecar names is a stray (run reports under `.cfstream/` and
//! `account.json` are not). Each problem is reported by name, as found.
//!
//! Files are read streaming (bounded memory: one buffer per file being
//! read), [`VerifyOptions::parallel`] videos at a time. With
//! [`VerifyOptions::sample`], a random share of the videos is checked;
//! strays are looked for in the whole listing either way.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::account::ACCOUNT_FILE;
use crate::dest::Destination;
use crate::error::ExportError;
use crate::extras::CaptionEntry;
use crate::readback::{Listed, owner};

/// What `verify` does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerifyOptions {
    /// Check only this share of the videos (percent, 0-100].
    pub sample: Option<f64>,
    /// Videos checked at once.
    pub parallel: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            sample: None,
            parallel: 8,
        }
    }
}

/// One thing wrong with the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `missing` (a file its sidecar names is not there), `size`,
    /// `digest` (another SHA-256), `media` (not a whole MP4/M4A), `caption`
    /// (not WebVTT), `sidecar` (does not parse), `stray` (no sidecar names
    /// it), `not-archived` (in the account, not in the archive).
    pub kind: &'static str,
    /// The file (or, for `not-archived`, the video id).
    pub name: String,
    /// The video it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    /// What is wrong, for people.
    pub detail: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Videos with a sidecar.
    pub videos: u64,
    /// Of them, checked (all, or the sample).
    pub videos_checked: u64,
    /// Files checked (media and captions).
    pub files_checked: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Files of the archive.
    pub files_listed: u64,
    /// Problems found.
    pub problems: u64,
    /// The share asked for, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<f64>,
    /// Wall time.
    pub elapsed_seconds: f64,
}

impl VerifyReport {
    /// Bytes read per second.
    pub fn throughput(&self) -> f64 {
        self.bytes_read as f64 / self.elapsed_seconds.max(0.001)
    }
}

/// What a sidecar names.
#[derive(serde::Deserialize)]
struct Sidecar {
    #[serde(default)]
    downloads: HashMap<String, Download>,
    #[serde(default)]
    captions: Option<Vec<CaptionEntry>>,
}

#[derive(serde::Deserialize)]
struct Download {
    file: String,
    size: u64,
    sha256: String,
}

/// Checks the archive at `dest`; `problem` hears of each problem as it is
/// found, `progress` of each video checked (done, of total).
/// With `account` (the ids of the account's videos), each video of it
/// without a sidecar is a `not-archived` problem.
pub async fn verify(
    dest: &Destination,
    options: VerifyOptions,
    account: Option<&HashSet<String>>,
    mut problem: impl FnMut(Problem),
    progress: impl Fn(u64, u64),
) -> Result<VerifyReport, ExportError> {
    let started = Instant::now();
    let listed = dest.list_archive().await?;
    let sizes: HashMap<&str, u64> = listed.iter().map(|l| (l.name.as_str(), l.size)).collect();
    let with_sidecar: HashSet<&str> = listed
        .iter()
        .filter(|l| l.name != ACCOUNT_FILE)
        .filter_map(|l| {
            let uid = l.name.strip_suffix(".json")?;
            owner(&l.name).filter(|o| *o == uid)
        })
        .collect();
    let mut report = VerifyReport {
        videos: with_sidecar.len() as u64,
        files_listed: listed.len() as u64,
        sample: options.sample,
        ..VerifyReport::default()
    };
    let mut videos: Vec<&str> = with_sidecar.iter().copied().collect();
    videos.sort_unstable();
    if let Some(percent) = options.sample {
        videos.retain(|_| fastrand::f64() * 100.0 < percent);
    }
    let total = videos.len() as u64;
    let checked = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let files = AtomicU64::new(0);
    // Videos whose sidecar was read, and the files it names.
    let mut read: HashSet<String> = HashSet::new();
    let mut named: HashSet<String> = HashSet::new();
    let mut checks = futures_util::stream::iter(videos.iter().map(|uid| {
        let (sizes, bytes, files) = (&sizes, &bytes, &files);
        async move { (uid, check_video(dest, uid, sizes, bytes, files).await) }
    }))
    .buffer_unordered(options.parallel.max(1));
    while let Some((uid, result)) = checks.next().await {
        let (problems, names) = result?;
        for p in problems {
            report.problems += 1;
            problem(p);
        }
        if let Some(names) = names {
            read.insert((*uid).to_owned());
            named.extend(names);
        }
        progress(checked.fetch_add(1, Ordering::Relaxed) + 1, total);
    }
    drop(checks);
    // Strays: files no sidecar names. The files of a video whose sidecar
    // was not read (not in the sample, or it does not parse) are that
    // video's, not strays.
    let mut strays: Vec<&Listed> = listed
        .iter()
        .filter(|l| {
            let name = l.name.as_str();
            if name == ACCOUNT_FILE || named.contains(name) {
                return false;
            }
            match owner(name) {
                Some(uid) if with_sidecar.contains(uid) => read.contains(uid),
                _ => true,
            }
        })
        .collect();
    strays.sort_by(|a, b| a.name.cmp(&b.name));
    for s in strays {
        report.problems += 1;
        problem(Problem {
            kind: "stray",
            name: s.name.clone(),
            video_id: owner(&s.name).map(str::to_owned),
            detail: format!("{} bytes that no sidecar names", s.size),
        });
    }
    if let Some(account) = account {
        let mut lacking: Vec<&String> = account
            .iter()
            .filter(|uid| !with_sidecar.contains(uid.as_str()))
            .collect();
        lacking.sort();
        for uid in lacking {
            report.problems += 1;
            problem(Problem {
                kind: "not-archived",
                name: uid.clone(),
                video_id: Some(uid.clone()),
                detail: "in the account, no sidecar in the archive".into(),
            });
        }
    }
    report.videos_checked = checked.load(Ordering::Relaxed);
    report.bytes_read = bytes.load(Ordering::Relaxed);
    report.files_checked = files.load(Ordering::Relaxed);
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Checks one video against its sidecar: its problems, and the names of
/// the files its sidecar names (not strays, whatever their state); `None`
/// when the sidecar could not be read.
async fn check_video(
    dest: &Destination,
    uid: &str,
    sizes: &HashMap<&str, u64>,
    bytes: &AtomicU64,
    files: &AtomicU64,
) -> Result<(Vec<Problem>, Option<Vec<String>>), ExportError> {
    let sidecar_name = format!("{uid}.json");
    let mut problems = Vec::new();
    let problem = |kind, name: &str, detail: String| Problem {
        kind,
        name: name.to_owned(),
        video_id: Some(uid.to_owned()),
        detail,
    };
    let Some(text) = dest.read_whole(&sidecar_name).await? else {
        problems.push(problem(
            "missing",
            &sidecar_name,
            "listed, then gone".into(),
        ));
        return Ok((problems, None));
    };
    let sidecar: Sidecar = match serde_json::from_slice(&text) {
        Ok(s) => s,
        Err(e) => {
            problems.push(problem(
                "sidecar",
                &sidecar_name,
                format!("does not parse ({e}): truncated or not ours"),
            ));
            return Ok((problems, None));
        }
    };
    let mut names = vec![sidecar_name];
    let mut downloads: Vec<(&String, &Download)> = sidecar.downloads.iter().collect();
    downloads.sort_by_key(|(kind, _)| kind.as_str());
    for (_, d) in downloads {
        names.push(d.file.clone());
        let Some(&size) = sizes.get(d.file.as_str()) else {
            problems.push(problem("missing", &d.file, "named by its sidecar".into()));
            continue;
        };
        if size != d.size {
            problems.push(problem(
                "size",
                &d.file,
                format!("{size} bytes, its sidecar says {}", d.size),
            ));
            continue;
        }
        files.fetch_add(1, Ordering::Relaxed);
        match dest.check_media(&d.file, size).await? {
            Ok(sha256) => {
                bytes.fetch_add(size, Ordering::Relaxed);
                if sha256 != d.sha256 {
                    problems.push(problem(
                        "digest",
                        &d.file,
                        format!("SHA-256 {sha256}, its sidecar says {}", d.sha256),
                    ));
                }
            }
            Err(why) => problems.push(problem("media", &d.file, why)),
        }
    }
    for c in sidecar.captions.unwrap_or_default() {
        let (Some(file), Some(size), Some(sha)) = (&c.file, c.size, &c.sha256) else {
            continue;
        };
        names.push(file.clone());
        let Some(&listed) = sizes.get(file.as_str()) else {
            problems.push(problem("missing", file, "named by its sidecar".into()));
            continue;
        };
        if listed != size {
            problems.push(problem(
                "size",
                file,
                format!("{listed} bytes, its sidecar says {size}"),
            ));
            continue;
        }
        files.fetch_add(1, Ordering::Relaxed);
        let Some(body) = dest.read_whole(file).await? else {
            problems.push(problem("missing", file, "listed, then gone".into()));
            continue;
        };
        bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        let text = String::from_utf8_lossy(&body);
        if !text.trim_start_matches('\u{feff}').starts_with("WEBVTT") {
            problems.push(problem(
                "caption",
                file,
                "does not start with WEBVTT".into(),
            ));
        } else if crate::store::hex(&Sha256::digest(&body)) != *sha {
            problems.push(problem(
                "digest",
                file,
                "another SHA-256 than its sidecar's".into(),
            ));
        }
    }
    Ok((problems, Some(names)))
}
