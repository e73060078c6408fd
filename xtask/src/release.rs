//! `cargo xtask static` and `cargo xtask image`: the static Linux binary and
//! the container image built from it (deploy/Containerfile).
//!
//! The static binary is the build `dist` makes of the Linux x86_64 archive
//! (profile `dist`, `--target x86_64-unknown-linux-gnu`, glibc linked
//! statically with `-C target-feature=+crt-static`), so after
//! `dist build` this is a no-op for cargo, and the other way round. The
//! explicit `--target` keeps RUSTFLAGS off build scripts and proc macros,
//! which cannot be linked statically.
//!
//! The image is built with buildah (`bud --storage-driver vfs --isolation
//! chroot`, which needs no daemon and no privileges beyond the build
//! machine's) from a context this task stages: the binary, the build
//! machine's CA bundle, and an `/etc/passwd` naming the non-root user. It is
//! written as an OCI archive, which `podman load`, `skopeo copy` and
//! `docker load` (with containerd's image store) take.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The only target this machine and CI can build; the release workflow
/// builds the others on their own runners.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";
/// The cargo profile of the release archives (Cargo.toml, written by `dist init`).
pub const PROFILE: &str = "dist";
pub const RUSTFLAGS: &str = "-C target-feature=+crt-static";
/// The image's user and group: not root, and no name a host is likely to
/// map to something else (distroless' `nonroot`).
pub const UID: u32 = 65532;
/// Where the CA certificates come from (Debian's `ca-certificates`) and
/// where they go in the image: the path rustls-native-certs (through
/// rustls-platform-verifier) reads first on Linux.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("`{command}` failed ({status}){detail}")]
    Command {
        command: String,
        status: String,
        detail: String,
    },
    #[error("{0} is not static: ldd says\n{1}")]
    NotStatic(PathBuf, String),
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Io(what.to_string(), e)
}

fn run(cmd: &mut Command) -> Result<(), Error> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().map_err(io(&shown))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command: shown,
            status: status.to_string(),
            detail: String::new(),
        })
    }
}

/// Where `cargo xtask static` (and `dist build`) put the binary.
pub fn static_binary_path(target_dir: &Path) -> PathBuf {
    target_dir.join(TARGET).join(PROFILE).join("cfstream")
}

/// Builds the static `cfstream` and checks it with `ldd`.
pub fn build_static(root: &Path, target_dir: &Path) -> Result<PathBuf, Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // `cargo xtask` runs this process with xtask's own package variables
    // (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ...). Build scripts such as
    // ring's watch some of them, so the same build under `dist build` (which
    // has none) would be redone each time one follows the other.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix))
        {
            cmd.env_remove(&*key);
        }
    }
    run(cmd
        .current_dir(root)
        .env("RUSTFLAGS", RUSTFLAGS)
        .env("CARGO_TARGET_DIR", target_dir)
        .args([
            "build",
            "--locked",
            "-p",
            "cfstream",
            "--profile",
            PROFILE,
            "--target",
            TARGET,
        ]))?;
    let binary = static_binary_path(target_dir);
    check_static(&binary)?;
    Ok(binary)
}

/// `ldd` of a static executable says so ("not a dynamic executable" from
/// glibc's ldd, "statically linked" from others) and names no library.
pub fn check_static(binary: &Path) -> Result<String, Error> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(io("ldd (from libc-bin)"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_owned();
    let static_ = said.contains("not a dynamic executable") || said.contains("statically linked");
    if static_ && !said.contains("=>") {
        Ok(said)
    } else {
        Err(Error::NotStatic(binary.to_owned(), said))
    }
}

/// What `cargo xtask image` made.
#[derive(Debug)]
pub struct Image {
    pub archive: PathBuf,
    pub tag: String,
}

/// Stages the context and builds the image into `archive` (an OCI archive).
pub fn build_image(
    root: &Path,
    binary: &Path,
    work: &Path,
    archive: &Path,
    tag: &str,
) -> Result<Image, Error> {
    check_static(binary)?;
    let context = work.join("context");
    if context.exists() {
        fs::remove_dir_all(&context).map_err(io(context.display()))?;
    }
    fs::create_dir_all(context.join("etc")).map_err(io(context.display()))?;
    fs::create_dir_all(context.join("home")).map_err(io(context.display()))?;
    // `/tmp`, world-writable and sticky. COPY keeps the modes of what a
    // copied directory holds but gives the directory named in it 0755, so
    // `tmp` is copied as an entry of `rootfs/`, not as the source itself.
    let tmp = context.join("rootfs/tmp");
    fs::create_dir_all(&tmp).map_err(io(tmp.display()))?;
    let mut mode = fs::metadata(&tmp).map_err(io(tmp.display()))?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o1777);
    fs::set_permissions(&tmp, mode).map_err(io(tmp.display()))?;
    fs::copy(binary, context.join("cfstream")).map_err(io(binary.display()))?;
    fs::copy(CA_BUNDLE, context.join("ca-certificates.crt")).map_err(io(format_args!(
        "{CA_BUNDLE} (Debian's ca-certificates package)"
    )))?;
    let mut passwd = String::from("root:x:0:0:root:/root:/sbin/nologin\n");
    writeln!(
        passwd,
        "cfstream:x:{UID}:{UID}:cfstream:/home/cfstream:/sbin/nologin"
    )
    .unwrap();
    fs::write(context.join("etc/passwd"), passwd).map_err(io("etc/passwd"))?;
    fs::write(
        context.join("etc/group"),
        format!("root:x:0:\ncfstream:x:{UID}:\n"),
    )
    .map_err(io("etc/group"))?;
    if let Some(dir) = archive.parent() {
        fs::create_dir_all(dir).map_err(io(dir.display()))?;
    }
    let _ = fs::remove_file(archive);
    let buildah = |args: &[&str]| {
        let mut cmd = Command::new("buildah");
        cmd.args(["--storage-driver", "vfs"]).args(args);
        cmd
    };
    let containerfile = root.join("deploy/Containerfile");
    run(&mut buildah(&[
        "bud",
        "--isolation",
        "chroot",
        "--layers=false",
        "--file",
        &containerfile.to_string_lossy(),
        "--tag",
        tag,
        &context.to_string_lossy(),
    ]))
    .map_err(|e| match e {
        Error::Io(what, err) if err.kind() == std::io::ErrorKind::NotFound => Error::Io(
            format!("{what}: buildah is not installed (Debian: apt-get install buildah)"),
            err,
        ),
        e => e,
    })?;
    // Layers go into the archive gzip-compressed: its size is what a
    // registry stores and a node pulls.
    run(&mut buildah(&[
        "push",
        "--compression-format",
        "gzip",
        tag,
        &format!("oci-archive:{}:{tag}", archive.display()),
    ]))?;
    Ok(Image {
        archive: archive.to_owned(),
        tag: tag.to_owned(),
    })
}
