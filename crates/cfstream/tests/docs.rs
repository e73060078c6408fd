//! The docs name only commands and flags that exist: every `cfstream ...`
//! command line in the README, `docs/`, ARCHITECTURE.md and `deploy/` (in
//! a code block or an inline code span) is walked down the real binary's
//! subcommands, and each `--flag` on it is offered to that subcommand. A
//! renamed or removed subcommand or flag fails here, naming the file and
//! line.
//!
//! How a flag is checked without running anything: `cfstream PATH --flag
//! --not-a-flag-zz` makes clap stop at the first argument it does not know,
//! so the error names `--flag` only when `--flag` does not exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cfstream() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("cfstream"));
    cmd.env_clear();
    cmd
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The files a user reads.
fn documents() -> Vec<PathBuf> {
    let root = workspace();
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for dir in ["docs", "deploy"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// The subcommand tree, read off `--help` ("Commands:" sections); a node
/// is a group when its usage line requires a `<COMMAND>`.
#[derive(Default, Debug)]
struct Node {
    children: BTreeMap<String, Node>,
    group: bool,
}

fn tree(path: &[String]) -> Node {
    let out = cfstream().args(path).arg("--help").output().unwrap();
    assert!(out.status.success(), "{path:?} --help");
    let help = String::from_utf8(out.stdout).unwrap();
    let mut node = Node {
        group: help
            .lines()
            .any(|l| l.starts_with("Usage:") && l.contains("<COMMAND>")),
        ..Node::default()
    };
    let mut in_commands = false;
    for line in help.lines() {
        if line == "Commands:" {
            in_commands = true;
        } else if in_commands && line.starts_with("  ") && !line.starts_with("   ") {
            let name = line.split_whitespace().next().unwrap().to_owned();
            if name != "help" {
                let mut child = path.to_vec();
                child.push(name.clone());
                node.children.insert(name, tree(&child));
            }
        } else if in_commands && !line.starts_with(' ') {
            in_commands = false;
        }
    }
    node
}

/// One `cfstream` command line found in a document.
#[derive(Debug)]
struct Mention {
    place: String,
    words: Vec<String>,
}

/// The text after each `cfstream` word in code: fenced blocks (a line
/// continued by `\`, or by the indented `[--flag]` lines of a synopsis,
/// belongs to the command above it) and inline code spans.
fn mentions(file: &Path) -> Vec<Mention> {
    let text = std::fs::read_to_string(file).unwrap();
    let shown = file
        .strip_prefix(workspace())
        .unwrap_or(file)
        .display()
        .to_string();
    let yaml = file.extension().is_some_and(|e| e == "yaml" || e == "json");
    let mut found = Vec::new();
    let mut fenced = false;
    let mut current: Option<Mention> = None;
    let mut continued = false;
    for (n, line) in text.lines().enumerate() {
        let place = format!("{shown}:{}", n + 1);
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            found.extend(current.take());
            continue;
        }
        let code: Vec<&str> = if fenced || yaml {
            vec![line]
        } else {
            line.split('`').skip(1).step_by(2).collect()
        };
        let trimmed = line.trim_start();
        let continues = (fenced || yaml)
            && current.is_some()
            && (continued
                || line.starts_with(' ')
                    && (trimmed.starts_with('[') || trimmed.starts_with("--")));
        continued = line.trim_end().ends_with('\\');
        if continues {
            let m = current.as_mut().unwrap();
            m.words.extend(
                uncommented(trimmed)
                    .split_whitespace()
                    .filter(|w| *w != "\\")
                    .map(str::to_owned),
            );
            continue;
        }
        found.extend(current.take());
        for span in code {
            let mut rest = span;
            while let Some(at) = find_word(rest, "cfstream") {
                let after = &rest[at + "cfstream".len()..];
                let words: Vec<String> = uncommented(after)
                    .split_whitespace()
                    .filter(|w| *w != "\\")
                    .map(str::to_owned)
                    .collect();
                let m = Mention {
                    place: place.clone(),
                    words,
                };
                // In a block, the lines below may continue it.
                if fenced || yaml {
                    current = Some(m);
                } else {
                    found.push(m);
                }
                rest = after;
            }
        }
    }
    found.extend(current);
    found
}

/// A line without its shell comment (` # ...`), so that each line of a
/// synopsis can carry one.
fn uncommented(line: &str) -> &str {
    line.find(" #").map_or(line, |at| &line[..at])
}

/// `word` in `text` as a command name: not part of a longer name or path
/// (`cfstream-export`, `crates/cfstream`, `cfstream.oci.tar`).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(word) {
        let at = from + i;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| c == ' ' || c == '(' || c == '"');
        // `cargo build -p cfstream` names the package, not the command.
        let package = ["-p ", "--package ", "--bin "]
            .iter()
            .any(|p| text[..at].ends_with(p));
        if boundary(before) && after.is_none_or(|c| c == ' ') && !package {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Where the command ends: a pipe into another program (a synopsis's
/// `--dir DIR | --dest URL` is not one), a list, a comment, a redirection.
fn command_words(words: &[String]) -> &[String] {
    let end = words
        .iter()
        .enumerate()
        .position(|(i, w)| {
            let pipe = w == "|"
                && words.get(i + 1).is_some_and(|next| {
                    next.starts_with(|c: char| c.is_ascii_lowercase()) && !next.starts_with("--")
                });
            pipe || ["||", "&&", ";", ">", "2>&1", "<"].contains(&w.as_str()) || w.starts_with('#')
        })
        .unwrap_or(words.len());
    &words[..end]
}

/// `--flag` spelled in a word (`[--flag`, `--flag=V`, `(--dir`, `--a|--b`).
fn flags_in(word: &str) -> Vec<String> {
    word.split(['|', '[', ']', '(', ')', ',', '`', '"', '\''])
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            let w = w.split('=').next().unwrap();
            w.trim_end_matches(['.', ':', ';']).to_owned()
        })
        .filter(|w| {
            w[2..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        .collect()
}

#[test]
fn every_command_and_flag_in_the_docs_exists() {
    let root = tree(&[]);
    let mut checks: BTreeMap<(Vec<String>, String), Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut seen = 0;
    for file in documents() {
        for m in mentions(&file) {
            let words = command_words(&m.words);
            // Walk the subcommands (global flags and placeholders such as
            // `[GLOBAL]` may come before them).
            let (mut node, mut path) = (&root, Vec::new());
            let mut flags = Vec::new();
            for word in words {
                let bare = word.trim_matches(['`', '"', '(', ')', ',', '.', ':']);
                if let Some(child) = node.children.get(bare) {
                    node = child;
                    path.push(bare.to_owned());
                    continue;
                }
                let positional = !word.starts_with(['-', '[']);
                if node.group && positional {
                    // A group takes a subcommand and nothing else: a word
                    // spelled like one is a subcommand that does not exist;
                    // anything else (`cfstream 0.1.0`) is prose, not a command.
                    if !bare.is_empty() && bare.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    {
                        problems.push(format!(
                            "{}: `cfstream {} {bare}`: no such subcommand",
                            m.place,
                            path.join(" ")
                        ));
                    }
                    break;
                }
                flags.extend(flags_in(word));
            }
            if !path.is_empty() || !flags.is_empty() {
                seen += 1;
            }
            for flag in flags {
                checks
                    .entry((path.clone(), flag))
                    .or_default()
                    .push(m.place.clone());
            }
        }
    }
    if std::env::var_os("DOCS_DEBUG").is_some() {
        eprintln!("{checks:#?}");
    }
    // The docs do name commands: an extraction that finds nothing is a bug here.
    assert!(
        seen > 30,
        "only {seen} cfstream command lines found in the docs"
    );
    assert!(
        checks.len() > 30,
        "only {} flags found in the docs",
        checks.len()
    );
    for ((path, flag), places) in &checks {
        let out = cfstream()
            .args(path)
            .arg(flag)
            .arg("--not-a-flag-zz")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains(&format!("unexpected argument '{flag}'")) {
            problems.push(format!(
                "{}: `cfstream {} {flag}`: no such flag",
                places.join(", "),
                path.join(" ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the docs name what does not exist:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_catches_a_flag_and_a_subcommand_that_do_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.md");
    std::fs::write(
        &doc,
        "Run `cfstream export --dir out --all --frobnicate` or\n\n```sh\ncfstream downloads purge VIDEO\n$ cfstream export --all \\\n    --dir a --shard 1/2\n```\n",
    )
    .unwrap();
    let found = mentions(&doc);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(flags_in("[--type"), ["--type"]);
    assert_eq!(flags_in("--dest=s3://b/p"), ["--dest"]);
    assert_eq!(flags_in("(--dir|--dest)"), ["--dir", "--dest"]);
    assert!(
        found[2].words.iter().any(|w| w == "--shard"),
        "{:?}",
        found[2]
    );
    let root = tree(&[]);
    assert!(root.children["downloads"].group);
    assert!(!root.children["downloads"].children.contains_key("purge"));
    let out = cfstream()
        .args(["export", "--frobnicate", "--not-a-flag-zz"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--frobnicate'"));
    let out = cfstream()
        .args(["export", "--all", "--not-a-flag-zz"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--all'"));
}
