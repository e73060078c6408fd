//! `cargo xtask <task>`: see `cargo xtask help`.

use std::path::PathBuf;
use std::process::ExitCode;

use xtask::codegen::{self, Paths};
use xtask::files::Outcome;

const USAGE: &str = "\
usage: cargo xtask codegen [--check] [--spec FILE] [--patches DIR] [--out FILE] [--skip-validation]
       cargo xtask spec sync --from FILE [--date YYYY-MM-DD] [--check] [--json] [--openapi-dir DIR]
       cargo xtask modgraph
       cargo xtask static
       cargo xtask image [--binary FILE] [--out FILE] [--tag TAG]

  codegen      regenerate crates/cloudflare-stream-downloads/src/generated.rs
               from openapi/stream-downloads.openapi.json + openapi/patches/
  --check      write nothing; exit 1 when the generated file is stale
  --spec, --patches, --out
               other inputs/output (for experiments and tests)
  --skip-validation
               hand the document to progenitor unchecked, to diagnose the
               generator (its errors and panics are still reported cleanly)

  spec sync    cut the downloads fragment (rule: openapi/sync.json) out of
               Cloudflare's full OpenAPI document FILE (JSON or YAML, local),
               write openapi/stream-downloads.openapi.json and
               openapi/provenance.json, and report what changed
  --from       the full document
  --date       recorded in openapi/provenance.json
  --check      report only; write nothing; exit 1 when the fragment would change
  --json       print the report as JSON
  --openapi-dir  another directory than openapi/ (for tests)

  modgraph     print the module layers of the client and export crates
               (ARCHITECTURE.md) with each module's imports; exit 1 when a
               module imports one above it, sits in no layer, or closes a
               circle

  static       build the static Linux binary (glibc linked statically; the
               build of dist's Linux x86_64 archive) into
               target/x86_64-unknown-linux-gnu/dist/cfstream; exit 1 when
               `ldd` finds a shared-library dependency
  image        build the container image (deploy/Containerfile: FROM scratch,
               the static binary, CA certificates, a non-root user) with
               buildah into an OCI archive
  --binary     the static binary to put in (default: build it as `static` does)
  --out        the archive (default: target/image/cfstream.oci.tar)
  --tag        the image's name (default: localhost/cfstream:VERSION)

exit status: 0 done or up to date, 1 stale (--check), 2 error";

/// How many lines of a stale diff to print before cutting it short.
const DIFF_LINES: usize = 60;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("codegen") => codegen_task(&args[1..]),
        Some("modgraph") => modgraph_task(),
        Some("static") => static_task(),
        Some("image") => image_task(&args[1..]),
        Some("spec") if args.get(1).map(String::as_str) == Some("sync") => sync_task(&args[2..]),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn target_dir(root: &std::path::Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn static_task() -> ExitCode {
    use xtask::release;
    let root = xtask::workspace_root();
    match release::build_static(&root, &target_dir(&root)) {
        Ok(binary) => {
            let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
            println!("{} ({size} bytes): statically linked", binary.display());
            ExitCode::SUCCESS
        }
        Err(e @ release::Error::NotStatic(..)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn image_task(args: &[String]) -> ExitCode {
    use xtask::release;
    let root = xtask::workspace_root();
    let target = target_dir(&root);
    let (mut binary, mut out, mut tag) = (None, target.join("image/cfstream.oci.tar"), None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = |it: &mut std::slice::Iter<String>| it.next().cloned();
        let slot = match arg.as_str() {
            "--binary" => value(&mut it).map(|v| binary = Some(PathBuf::from(v))),
            "--out" => value(&mut it).map(|v| out = PathBuf::from(v)),
            "--tag" => value(&mut it).map(|v| tag = Some(v)),
            _ => None,
        };
        if slot.is_none() {
            eprintln!("error: unexpected or incomplete argument {arg:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let tag = tag.unwrap_or_else(|| format!("localhost/cfstream:{}", env!("CARGO_PKG_VERSION")));
    let result = match binary {
        Some(binary) => Ok(binary),
        None => release::build_static(&root, &target),
    }
    .and_then(|binary| release::build_image(&root, &binary, &target.join("image"), &out, &tag));
    match result {
        Ok(image) => {
            let size = std::fs::metadata(&image.archive)
                .map(|m| m.len())
                .unwrap_or(0);
            println!("{} ({size} bytes): {}", image.archive.display(), image.tag);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn modgraph_task() -> ExitCode {
    use xtask::modgraph;
    let root = xtask::workspace_root();
    let mut broken = false;
    for layering in modgraph::LAYERS {
        let graph = match modgraph::graph(&root.join(layering.src)) {
            Ok(graph) => graph,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        print!("{}", modgraph::render(&graph, layering));
        for v in modgraph::check(&graph, layering) {
            eprintln!("error: {}: {v}", layering.src);
            broken = true;
        }
    }
    if broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn sync_task(args: &[String]) -> ExitCode {
    let mut dir = xtask::workspace_root().join("openapi");
    let mut from = None;
    let mut date = None;
    let (mut check, mut json) = (false, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--json" => json = true,
            "--from" | "--date" | "--openapi-dir" => {
                let Some(value) = it.next() else {
                    eprintln!("error: `{arg}` needs a value\n\n{USAGE}");
                    return ExitCode::from(2);
                };
                match arg.as_str() {
                    "--from" => from = Some(PathBuf::from(value)),
                    "--date" => date = Some(value.clone()),
                    _ => dir = PathBuf::from(value),
                }
            }
            other => {
                eprintln!("error: unknown argument `{other}`\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(from) = from else {
        eprintln!(
            "error: `spec sync` needs --from FILE (a local copy of Cloudflare's openapi.json)\n\n{USAGE}"
        );
        return ExitCode::from(2);
    };
    let paths = xtask::sync::SyncPaths::in_dir(&dir);
    let options = xtask::sync::SyncOptions {
        from: from.clone(),
        date,
        check,
    };
    let outcome = match xtask::sync::run(&paths, &options) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("{} is unchanged.", dir.display());
            return ExitCode::from(2);
        }
    };
    let root = xtask::workspace_root();
    let fragment = xtask::display_path(&root, &paths.fragment);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "fragment": fragment,
                "changed": outcome.changed,
                "written": outcome.written,
                "operations": outcome.operations,
                "components": outcome.components,
                "report": outcome.report,
            })
        );
    } else {
        print!("{}", outcome.report.render());
        let what = format!(
            "{} ({} operations, {} components)",
            fragment.display(),
            outcome.operations,
            outcome.components
        );
        if outcome.written {
            println!("synced {what} from {}", from.display());
        } else if !outcome.changed {
            println!("up to date: {what}");
        }
    }
    if check && outcome.changed {
        eprintln!(
            "error: {} would change; run `cargo xtask spec sync --from {}` to write it, \
             then `cargo xtask codegen`.",
            fragment.display(),
            from.display()
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn codegen_task(args: &[String]) -> ExitCode {
    let mut paths = Paths::workspace();
    let mut check = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let slot = match arg.as_str() {
            "--check" => {
                check = true;
                continue;
            }
            "--skip-validation" => {
                paths.skip_validation = true;
                continue;
            }
            "--spec" => &mut paths.spec,
            "--patches" => &mut paths.patches,
            "--out" => &mut paths.output,
            other => {
                eprintln!("error: unknown argument `{other}`\n\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        match it.next() {
            Some(value) => *slot = PathBuf::from(value),
            None => {
                eprintln!("error: `{arg}` needs a value\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let report = match codegen::run(&paths, check) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("{} is unchanged.", paths.output.display());
            return ExitCode::from(2);
        }
    };
    let what = format!(
        "{} ({} operations, {} types)",
        report.output.display(),
        report.operations,
        report.types
    );
    match report.outcome {
        Outcome::UpToDate => {
            println!("up to date: {what}");
            ExitCode::SUCCESS
        }
        Outcome::Written => {
            println!("generated {what}");
            ExitCode::SUCCESS
        }
        Outcome::Stale { diff } => {
            eprintln!(
                "error: {} is stale; the spec or the generator changed.",
                report.output.display()
            );
            let lines: Vec<&str> = diff.lines().collect();
            for line in lines.iter().take(DIFF_LINES) {
                eprintln!("{line}");
            }
            if lines.len() > DIFF_LINES {
                eprintln!("... ({} more diff lines)", lines.len() - DIFF_LINES);
            }
            eprintln!(
                "run `cargo xtask codegen` to regenerate it, then review and commit the result."
            );
            ExitCode::from(1)
        }
    }
}
