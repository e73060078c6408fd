//! The import graph of a crate's modules, and the layering rule that keeps
//! it readable top-down (ARCHITECTURE.md): `cargo xtask modgraph`.
//!
//! A module's edges are the `crate::…` and `super::…` paths of its items
//! (`use` declarations and paths anywhere in its code), resolved through
//! the re-exports (`pub use`) of the module they name, so that
//! `use crate::Client` counts as an edge to `client`. Comments and doc
//! links are not edges (they are attributes, not paths), and neither is
//! code under `#[cfg(test)]`. A method called on a type of another module
//! is not an edge either: it needs no path.
//!
//! The rule: each crate lists its modules in layers, bottom first
//! ([`LAYERS`]); a module may import modules of its own layer or below,
//! never above, and the graph has no circle but the one a crate declares
//! inherent: progenitor's output names `hooks::Inner` (its inner type) and
//! the hand-written wire types that replace its own (`Downloads`,
//! `ListedVideo`, `VideoList`), which wrap its types, and `hooks`
//! implements the hooks for `generated::Client`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;

/// A crate's layers, bottom first, and the circles it may keep.
#[derive(Debug, Clone, Copy)]
pub struct Layering {
    /// The crate's `src` directory, relative to the workspace root.
    pub src: &'static str,
    /// Layers, bottom first; each a list of top-level modules.
    pub layers: &'static [&'static [&'static str]],
    /// Circles allowed (each the set of its modules).
    pub allowed_circles: &'static [&'static [&'static str]],
}

/// The workspace's two layered crates.
pub const LAYERS: &[Layering] = &[
    Layering {
        src: "crates/cloudflare-stream-downloads/src",
        layers: &[
            // No dependency inside the crate.
            &[
                "gate",
                "retry",
                "tls",
                "secret",
                "http",
                "media",
                "open_enum",
            ],
            // progenitor's output, its hooks, and the hand-written wire
            // types it names in place of its own (one inherent circle).
            &["generated", "hooks", "downloads", "listed"],
            // The wire types made usable: errors, ids, the envelope.
            &["error", "ids", "credentials", "envelope"],
            // Signing keys and tokens, without a client.
            &["signing"],
            // The client.
            &["client"],
            // What the client does: files, tokens, the listing, waiting.
            &["fetch", "tokens", "videos", "wait", "archive", "manifest"],
        ],
        allowed_circles: &[&["downloads", "generated", "hooks", "listed"]],
    },
    Layering {
        src: "crates/export/src",
        layers: &[
            // What every layer uses.
            &["error"],
            &["machine"],
            &["state"],
            &[
                "limiter", "poll", "shard", "lock", "host", "dest", "listed", "extras",
            ],
            // Destinations' operations.
            &["store", "readback"],
            // The run's shared types and context.
            &["options", "report", "runs"],
            &["run"],
            &["attempt"],
            // The steps.
            &[
                "select",
                "driver",
                "transfer",
                "reconcile",
                "captions",
                "account",
            ],
            // The run on top.
            &["engine", "verify", "status"],
        ],
        allowed_circles: &[],
    },
];

/// A module path inside a crate: `[]` is the crate root, `["store",
/// "upload"]` is `crate::store::upload`.
pub type ModPath = Vec<String>;

/// One module: its file and what it re-exports.
#[derive(Debug)]
struct Module {
    /// `pub use` / `pub(crate) use` names: name -> the path it stands for
    /// (absolute, from the crate root).
    reexports: BTreeMap<String, Vec<String>>,
    /// The paths its non-test code names (absolute), before resolution.
    paths: Vec<Vec<String>>,
}

/// A crate's module graph: module -> the modules it imports.
#[derive(Debug, Default)]
pub struct Graph {
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

/// What breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A module in no layer.
    Unlayered(String),
    /// `from` (layer `from_layer`) imports `to` (a higher layer).
    Upward {
        from: String,
        to: String,
        from_layer: usize,
        to_layer: usize,
    },
    /// A circle not declared inherent.
    Circle(Vec<String>),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Unlayered(m) => write!(
                f,
                "module `{m}` is in no layer (add it to xtask/src/modgraph.rs and ARCHITECTURE.md)"
            ),
            Violation::Upward {
                from,
                to,
                from_layer,
                to_layer,
            } => write!(
                f,
                "`{from}` (layer {from_layer}) imports `{to}` (layer {to_layer}, above it)"
            ),
            Violation::Circle(c) => write!(f, "a circle: {}", c.join(" -> ")),
        }
    }
}

fn name(path: &[String]) -> String {
    if path.is_empty() {
        "lib".to_owned()
    } else {
        path.join("::")
    }
}

/// Reads the modules of the crate whose sources are in `src` (`lib.rs` or
/// `main.rs` at the root; `x.rs` or `x/mod.rs` for `crate::x`; `x/y.rs`
/// for `crate::x::y`).
fn read_modules(src: &Path) -> Result<BTreeMap<ModPath, Module>, String> {
    let mut modules = BTreeMap::new();
    let root = if src.join("lib.rs").exists() {
        src.join("lib.rs")
    } else {
        src.join("main.rs")
    };
    read_module(&root, Vec::new(), src, &mut modules)?;
    Ok(modules)
}

fn read_module(
    file: &Path,
    path: ModPath,
    dir: &Path,
    modules: &mut BTreeMap<ModPath, Module>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let syntax = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut module = Module {
        reexports: BTreeMap::new(),
        paths: Vec::new(),
    };
    let mut children = Vec::new();
    scan_items(&syntax.items, &path, true, &mut module, &mut children);
    modules.insert(path.clone(), module);
    // Children live beside a `mod.rs`/`lib.rs`, or in a directory named
    // after the module file.
    let child_dir = if path.is_empty() || file.file_name().is_some_and(|n| n == "mod.rs") {
        dir.to_owned()
    } else {
        dir.join(path.last().map(String::as_str).unwrap_or_default())
    };
    for child in children {
        let flat = child_dir.join(format!("{child}.rs"));
        let nested = child_dir.join(&child).join("mod.rs");
        let (child_file, grand_dir) = if flat.exists() {
            (flat, child_dir.clone())
        } else if nested.exists() {
            (nested, child_dir.join(&child))
        } else {
            return Err(format!(
                "{}: mod {child}: no {child}.rs or {child}/mod.rs",
                file.display()
            ));
        };
        let mut child_path = path.clone();
        child_path.push(child);
        read_module(&child_file, child_path, &grand_dir, modules)?;
    }
    Ok(())
}

/// The paths and re-exports of `items`, seen from `at` (the file's module,
/// or an inline module inside it: its paths count as the file's).
fn scan_items(
    items: &[syn::Item],
    at: &ModPath,
    file_level: bool,
    module: &mut Module,
    children: &mut Vec<String>,
) {
    for item in items {
        if is_test_only(item_attrs(item)) {
            continue;
        }
        match item {
            syn::Item::Mod(m) => match &m.content {
                None if file_level => children.push(m.ident.to_string()),
                None => {}
                Some((_, inner)) => {
                    let mut inner_at = at.clone();
                    inner_at.push(m.ident.to_string());
                    scan_items(inner, &inner_at, false, module, children);
                }
            },
            syn::Item::Use(u) => {
                let exported = file_level && !matches!(u.vis, syn::Visibility::Inherited);
                let mut uses = Vec::new();
                flatten_use(&u.tree, Vec::new(), &mut uses);
                for (full, alias) in uses {
                    // In an inline module, a plain first segment is not one
                    // of the file's modules.
                    if !file_level && !matches!(full[0].as_str(), "crate" | "super" | "self") {
                        continue;
                    }
                    let Some(abs) = absolute(&full, at) else {
                        continue;
                    };
                    if exported && alias != "*" {
                        module.reexports.insert(alias, abs.clone());
                    }
                    module.paths.push(abs);
                }
            }
            other => collect_paths(other.to_token_stream(), at, &mut module.paths),
        }
    }
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]` (the tests beside the code may use anything).
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta
                .require_list()
                .is_ok_and(|l| l.tokens.to_string().trim() == "test")
    })
}

/// Every leaf of a `use` tree: (path segments, the name it binds).
fn flatten_use(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    match tree {
        syn::UseTree::Path(p) => {
            let mut next = prefix;
            next.push(p.ident.to_string());
            flatten_use(&p.tree, next, out);
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut full = prefix;
            if name == "self" {
                let bound = full.last().cloned().unwrap_or_default();
                out.push((full, bound));
            } else {
                full.push(name.clone());
                out.push((full, name));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix;
            full.push(r.ident.to_string());
            out.push((full, r.rename.to_string()));
        }
        syn::UseTree::Glob(_) => out.push((prefix, "*".to_owned())),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten_use(t, prefix.clone(), out);
            }
        }
    }
}

/// A path as seen from module `at`, made absolute: `crate::a::b` and
/// `super::x`, or (in the crate root, where `use a::B` names the child
/// module `a`) a first segment that is a module of the root. `None` for
/// another crate's path.
fn absolute(path: &[String], at: &ModPath) -> Option<Vec<String>> {
    match path.first().map(String::as_str) {
        Some("crate") => Some(path[1..].to_vec()),
        Some("super") => {
            let mut base = at.clone();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            Some(base)
        }
        Some("self") => {
            let mut base = at.clone();
            base.extend(path[1..].iter().cloned());
            Some(base)
        }
        // `pub use client::Client;` in lib.rs: relative to the module.
        Some(first) if first.chars().next().is_some_and(char::is_lowercase) => {
            let mut base = at.clone();
            base.extend(path.iter().cloned());
            Some(base).filter(|_| !path.is_empty())
        }
        _ => None,
    }
}

/// Every `crate :: a :: b …` and `super :: …` run of tokens.
fn collect_paths(tokens: TokenStream, at: &ModPath, out: &mut Vec<Vec<String>>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(g) => collect_paths(g.stream(), at, out),
            TokenTree::Ident(id) if id == "crate" || id == "super" => {
                let mut segments = vec![id.to_string()];
                let mut j = i + 1;
                while j + 2 < tokens.len() + 1 {
                    let colons = matches!(
                        (tokens.get(j), tokens.get(j + 1)),
                        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                            if a.as_char() == ':' && b.as_char() == ':'
                    );
                    match (colons, tokens.get(j + 2)) {
                        (true, Some(TokenTree::Ident(next))) => {
                            segments.push(next.to_string());
                            j += 3;
                        }
                        _ => break,
                    }
                }
                if segments.len() > 1
                    && let Some(abs) = absolute(&segments, at)
                {
                    out.push(abs);
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// The module an absolute path names: the longest module prefix, then
/// through that module's re-exports.
fn resolve(path: &[String], modules: &BTreeMap<ModPath, Module>, depth: usize) -> ModPath {
    let mut module: ModPath = Vec::new();
    let mut rest = path;
    while let Some(first) = rest.first() {
        let mut next = module.clone();
        next.push(first.clone());
        if modules.contains_key(&next) {
            module = next;
            rest = &rest[1..];
        } else {
            break;
        }
    }
    if let (Some(first), Some(m)) = (rest.first(), modules.get(&module))
        && let Some(target) = m.reexports.get(first)
        && depth < 8
        && target.as_slice() != path
    {
        let mut through = target.clone();
        through.extend(rest[1..].iter().cloned());
        return resolve(&through, modules, depth + 1);
    }
    module
}

/// The import graph of the crate in `src`: edges between modules (the
/// crate root, which only declares and re-exports, is left out).
pub fn graph(src: &Path) -> Result<Graph, String> {
    let modules = read_modules(src)?;
    let mut graph = Graph::default();
    for (path, module) in &modules {
        if path.is_empty() {
            continue;
        }
        let from = name(path);
        let edges = graph.edges.entry(from.clone()).or_default();
        for used in &module.paths {
            let to = resolve(used, &modules, 0);
            // A module's own children and itself are not edges; nor is the
            // root (macros, the crate's docs).
            if to.is_empty() || to.starts_with(path) {
                continue;
            }
            edges.insert(name(&to));
        }
    }
    Ok(graph)
}

/// The circles of `graph` (strongly connected parts of two or more).
pub fn circles(graph: &Graph) -> Vec<Vec<String>> {
    // Tarjan, iteratively small enough to be recursive here.
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        w.index.insert(v, w.next);
        w.low.insert(v, w.next);
        w.next += 1;
        w.stack.push(v);
        w.on_stack.insert(v);
        let targets: Vec<&'a str> = w
            .graph
            .edges
            .get(v)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default();
        for t in targets {
            if !w.index.contains_key(t) {
                visit(w, t);
                let low = w.low[v].min(w.low[t]);
                w.low.insert(v, low);
            } else if w.on_stack.contains(t) {
                let low = w.low[v].min(w.index[t]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut part = Vec::new();
            while let Some(x) = w.stack.pop() {
                w.on_stack.remove(x);
                part.push(x.to_owned());
                if x == v {
                    break;
                }
            }
            if part.len() > 1 {
                part.sort();
                w.found.push(part);
            }
        }
    }
    let mut w = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.edges.keys() {
        if !w.index.contains_key(v.as_str()) {
            visit(&mut w, v);
        }
    }
    w.found
}

/// What breaks `layering` in `graph`.
pub fn check(graph: &Graph, layering: &Layering) -> Vec<Violation> {
    let layer_of = |module: &str| {
        let top = module.split("::").next().unwrap_or(module);
        layering.layers.iter().position(|l| l.contains(&top))
    };
    let mut violations = Vec::new();
    for (from, tos) in &graph.edges {
        let Some(from_layer) = layer_of(from) else {
            violations.push(Violation::Unlayered(from.clone()));
            continue;
        };
        for to in tos {
            match layer_of(to) {
                None => {}
                Some(to_layer) if to_layer > from_layer => violations.push(Violation::Upward {
                    from: from.clone(),
                    to: to.clone(),
                    from_layer,
                    to_layer,
                }),
                Some(_) => {}
            }
        }
    }
    for circle in circles(graph) {
        let allowed = layering.allowed_circles.iter().any(|a| {
            let mut a: Vec<&str> = a.to_vec();
            a.sort_unstable();
            a == circle.iter().map(String::as_str).collect::<Vec<_>>()
        });
        if !allowed {
            violations.push(Violation::Circle(circle));
        }
    }
    violations
}

/// A readable form of the graph, layer by layer, top first: each module
/// (submodules on their own line) and what it imports.
pub fn render(graph: &Graph, layering: &Layering) -> String {
    let mut out = format!("{}\n", layering.src);
    for (i, layer) in layering.layers.iter().enumerate().rev() {
        for module in *layer {
            for (node, tos) in &graph.edges {
                if node.split("::").next() != Some(module) {
                    continue;
                }
                let tos: Vec<&str> = tos.iter().map(String::as_str).collect();
                out.push_str(&format!("  {i:>2} {node:<16} -> {}\n", tos.join(", ")));
            }
        }
    }
    out
}
