//! The counts and tasks the docs name are today's: every "N operations, M
//! types" and "<Number> operations are generated" in the README and
//! `docs/` is what `cargo xtask codegen` generates now, and every
//! `cargo xtask TASK` they show is a task the xtask has.

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::codegen::{Paths, render};

const NUMBERS: [&str; 31] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "twenty-one",
    "twenty-two",
    "twenty-three",
    "twenty-four",
    "twenty-five",
    "twenty-six",
    "twenty-seven",
    "twenty-eight",
    "twenty-nine",
    "thirty",
];

fn documents(root: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    docs.sort();
    files.extend(docs);
    files.push(root.join("openapi/README.md"));
    files.push(root.join("crates/cloudflare-stream-downloads/README.md"));
    files
        .into_iter()
        .map(|p| {
            let shown = p.strip_prefix(root).unwrap().display().to_string();
            (shown, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Each `marker` in `text`: its line number, the word before it and the
/// rest of the line after it.
fn words_around<'a>(text: &'a str, marker: &str) -> Vec<(usize, &'a str, &'a str)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(i) = line[from..].find(marker) {
            let at = from + i;
            let before = line[..at]
                .trim_end()
                .rsplit([' ', '`', '('])
                .next()
                .unwrap_or("");
            found.push((n + 1, before, &line[at + marker.len()..]));
            from = at + marker.len();
        }
    }
    found
}

#[test]
fn the_operation_and_type_counts_in_the_docs_are_todays() {
    let paths = Paths::workspace();
    let rendered = render(&paths).unwrap();
    let mut seen = 0;
    let mut wrong = Vec::new();
    for (file, text) in documents(&paths.root) {
        for (line, ops, rest) in words_around(&text, " operations, ") {
            // "N operations, M types": a count, not prose such as
            // "an object store's operations, one concern a file".
            if !ops.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            seen += 1;
            if ops.parse::<usize>().ok() != Some(rendered.operations) {
                wrong.push(format!(
                    "{file}:{line}: {ops} operations (generated: {})",
                    rendered.operations
                ));
            }
            let mut words = rest.split_whitespace();
            let (types, unit) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            if unit.starts_with("types") && types.parse::<usize>().ok() != Some(rendered.types) {
                wrong.push(format!(
                    "{file}:{line}: {types} types (generated: {})",
                    rendered.types
                ));
            }
        }
        for (line, word, _) in words_around(&text, " operations are generated") {
            seen += 1;
            let n = NUMBERS.iter().position(|w| w.eq_ignore_ascii_case(word));
            if n != Some(rendered.operations) {
                wrong.push(format!(
                    "{file}:{line}: \"{word} operations are generated\" (generated: {})",
                    rendered.operations
                ));
            }
        }
    }
    assert!(seen >= 2, "the README states the counts; found {seen}");
    assert!(wrong.is_empty(), "stale counts:\n{}", wrong.join("\n"));
}

#[test]
fn every_xtask_the_docs_show_exists() {
    let paths = Paths::workspace();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("help")
        .output()
        .unwrap();
    let usage = String::from_utf8(out.stdout).unwrap();
    let mut seen = 0;
    let mut unknown = Vec::new();
    for (file, text) in documents(&paths.root) {
        for (line, _, rest) in words_around(&text, "cargo xtask ") {
            let task = rest.split([' ', '`']).next().unwrap_or("");
            let task = task.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            if task.is_empty() || task.starts_with(['-', '<', '[']) || task == "TASK" {
                continue;
            }
            seen += 1;
            if !usage.contains(&format!("cargo xtask {task}")) {
                unknown.push(format!("{file}:{line}: cargo xtask {task}"));
            }
        }
    }
    assert!(seen >= 5, "found only {seen} xtask commands in the docs");
    assert!(
        unknown.is_empty(),
        "the docs show tasks the xtask does not have:\n{}",
        unknown.join("\n")
    );
    assert!(!usage.contains("cargo xtask frobnicate"));
}

/// GitHub's anchor of a heading: lower case, punctuation dropped but `-`
/// and `_`, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.push(slug(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn every_relative_link_in_the_docs_leads_somewhere() {
    let paths = Paths::workspace();
    let mut seen = 0;
    let mut broken = Vec::new();
    for (file, text) in documents(&paths.root) {
        let here = paths.root.join(&file);
        let dir = here.parent().unwrap();
        for (line, _, rest) in words_around(&text, "](") {
            let target = rest.split(')').next().unwrap_or("");
            if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                continue;
            }
            seen += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let linked = if path.is_empty() {
                here.clone()
            } else {
                dir.join(path)
            };
            if !linked.exists() {
                broken.push(format!("{file}:{line}: {target}: no such file"));
                continue;
            }
            if !anchor.is_empty() {
                let text = std::fs::read_to_string(&linked).unwrap_or_default();
                if !anchors(&text).iter().any(|a| a == anchor) {
                    broken.push(format!("{file}:{line}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(seen >= 20, "found only {seen} relative links");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert_eq!(slug("The newcomer's path"), "the-newcomers-path");
}
