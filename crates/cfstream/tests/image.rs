//! The container image (deploy/Containerfile, built by `cargo xtask image`)
//! runs an export from its own file system: the OCI archive is unpacked
//! (index → manifest → config and layers), and the image's entrypoint runs
//! under `chroot` into that root, as the image's user, with the image's
//! environment, against stream-fake on 127.0.0.1. Every file it writes is
//! byte-identical to what the fake serves.
//!
//! The archive is `$CFSTREAM_IMAGE`. `.ci/run` builds it before the tests
//! and sets that variable; without it the test says it is skipped, except
//! under `CI`, where a missing image fails. `chroot` needs root (CI runs as
//! root); elsewhere the same rule applies.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{finish, sha256_hex};

use serde_json::Value;
use stream_fake::content::FileContent;
use stream_fake::{FakeConfig, Progress, StreamFake};

const TOKEN: &str = "image-test-token";

/// The archive to test, or None when this machine cannot (then the reason
/// is printed; under CI it is a failure).
fn image() -> Option<PathBuf> {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let why = match std::env::var_os("CFSTREAM_IMAGE") {
        None => "CFSTREAM_IMAGE is not set (cargo xtask image builds the archive)".to_owned(),
        Some(path) if !rustix::process::geteuid().is_root() => {
            format!("chroot needs root to test {}", Path::new(&path).display())
        }
        Some(path) => return Some(PathBuf::from(path)),
    };
    assert!(!ci, "the image test cannot run under CI: {why}");
    eprintln!("skipped: {why}");
    None
}

fn tar(args: &[&str], dir: &Path) {
    let status = Command::new("tar")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "tar {args:?} failed");
}

fn blob(dir: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').unwrap();
    let path = dir.join("blobs").join(algorithm).join(hex);
    // The archive is content-addressed: each blob is what its digest says.
    assert_eq!(sha256_hex(&std::fs::read(&path).unwrap()), hex, "{digest}");
    path
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Unpacks the OCI archive's one image into `root`; returns its config.
fn unpack(archive: &Path, oci: &Path, root: &Path) -> Value {
    tar(&["-xf", archive.to_str().unwrap()], oci);
    let index = json(&oci.join("index.json"));
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    let manifest = json(&blob(oci, manifests[0]["digest"].as_str().unwrap()));
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "layers are gzip-compressed"
        );
        let path = blob(oci, layer["digest"].as_str().unwrap());
        tar(&["-xzpf", path.to_str().unwrap(), "--same-owner"], root);
    }
    json(&blob(oci, manifest["config"]["digest"].as_str().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_exports_an_account_from_its_own_root() {
    let Some(archive) = image() else { return };
    let work = tempfile::tempdir().unwrap();
    let (oci, root) = (work.path().join("oci"), work.path().join("root"));
    std::fs::create_dir_all(&oci).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    let config = unpack(&archive, &oci, &root);

    // What the image says it is: a non-root user, cfstream as entrypoint,
    // and a root with nothing but the binary, the CA certificates and the
    // user's files (no shell, no libc to fall back on).
    let image = &config["config"];
    let user = image["User"].as_str().unwrap();
    assert!(
        !user.is_empty() && !user.starts_with("0") && !user.starts_with("root"),
        "{user}"
    );
    let entrypoint: Vec<&str> = image["Entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(entrypoint, ["/usr/local/bin/cfstream"]);
    assert!(root.join("etc/ssl/certs/ca-certificates.crt").is_file());
    for absent in ["bin/sh", "lib", "lib64", "usr/lib"] {
        assert!(
            !root.join(absent).exists(),
            "{absent} in an image FROM scratch"
        );
    }

    // `/tmp` is there for the user: world-writable and sticky (the demo
    // writes its file there, as would anything using the temp directory).
    let tmp = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(root.join("tmp")).unwrap().permissions(),
    );
    assert_eq!(tmp & 0o7777, 0o1777, "/tmp is {tmp:o}");

    let fake = StreamFake::start(FakeConfig {
        videos: Vec::new(),
        generated_videos: 6,
        file_size: 96 * 1024,
        progress: Progress::PerPoll { step: 100.0 },
        api_token: TOKEN.into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();

    // The export's directory, inside the image's root, owned by its user
    // (as a mounted volume would be).
    let out = root.join("export");
    std::fs::create_dir(&out).unwrap();
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    std::os::unix::fs::chown(&out, Some(uid.parse().unwrap()), Some(gid.parse().unwrap())).unwrap();

    // The image's entrypoint, in its root, as its user, with its
    // environment and nothing else.
    let in_image = || {
        let mut cmd = Command::new("chroot");
        cmd.arg(format!("--userspec={uid}:{gid}"))
            .arg(&root)
            .args(&entrypoint)
            .env_clear();
        for pair in image["Env"].as_array().into_iter().flatten() {
            let (key, value) = pair.as_str().unwrap().split_once('=').unwrap();
            cmd.env(key, value);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };

    // The built-in demo (its own fake on loopback, its file under /tmp).
    let demo = finish(
        in_image()
            .args(["demo", "--size", "64KiB"])
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(demo.code, 0, "{}", demo.stderr);
    assert!(demo.stdout.starts_with("saved /tmp/"), "{}", demo.stdout);

    let mut cmd = in_image();
    cmd.env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", &fake.config().account_id)
        .env("CLOUDFLARE_BASE_URL", fake.base_url())
        .args([
            "export", "--all", "--type", "both", "--dir", "/export", "--json",
        ])
        .args(["--first-api-poll", "100ms"]);
    let run = finish(cmd.spawn().unwrap(), Duration::from_secs(120)).await;
    let summary = run.summary();

    // The generated account has videos still processing: they fail alone
    // (exit 1), the others are exported.
    let (catalog, processing): (Vec<_>, Vec<_>) =
        fake.catalog().into_iter().partition(|v| v.ready_to_stream);
    assert!(!catalog.is_empty());
    let failed: std::collections::BTreeSet<&str> = summary["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["video_id"].as_str().unwrap())
        .collect();
    let expected: std::collections::BTreeSet<&str> =
        processing.iter().map(|v| v.uid.as_str()).collect();
    assert_eq!(failed, expected, "{}", run.stderr);
    let code = if processing.is_empty() { 0 } else { 1 };
    assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);

    // Every media file the fake serves, byte for byte.
    for video in &catalog {
        for (kind, ext) in [("default", "mp4"), ("audio", "m4a")] {
            let path = out.join(format!("{}.{ext}", video.uid));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let served = FileContent::new(&video.uid, &format!("{kind}.{ext}"), 96 * 1024);
            assert_eq!(served.first_mismatch(0, &bytes), None, "{}", path.display());
            assert_eq!(bytes.len() as u64, 96 * 1024);
        }
        let sidecar = json(&out.join(format!("{}.json", video.uid)));
        assert_eq!(sidecar["uid"], video.uid.as_str());
    }
    assert_eq!(
        summary["done"].as_u64(),
        Some(2 * catalog.len() as u64),
        "{summary}"
    );
    // Written as the image's user, not as root.
    let meta = std::fs::metadata(out.join(format!("{}.mp4", catalog[0].uid))).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta).to_string(), uid);
}
