//! The module layering of the client and export crates (ARCHITECTURE.md),
//! and the checker itself on small crates made to break it.

use std::path::Path;

use xtask::modgraph::{self, Layering, Violation};

#[test]
fn the_client_and_export_crates_import_downward_only() {
    let root = xtask::workspace_root();
    for layering in modgraph::LAYERS {
        let graph = modgraph::graph(&root.join(layering.src)).unwrap();
        // Every module was read (a crate without edges would pass anything).
        assert!(graph.edges.len() > 10, "{}: {graph:?}", layering.src);
        let violations = modgraph::check(&graph, layering);
        assert!(
            violations.is_empty(),
            "{}:\n{}\n{}",
            layering.src,
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            modgraph::render(&graph, layering)
        );
    }
}

#[test]
fn the_client_keeps_only_progenitors_circle_and_fetch_sits_above_client() {
    let root = xtask::workspace_root();
    let client = &modgraph::LAYERS[0];
    let graph = modgraph::graph(&root.join(client.src)).unwrap();
    let circles = modgraph::circles(&graph);
    assert_eq!(
        circles,
        [["downloads", "generated", "hooks", "listed"]],
        "{graph:?}"
    );
    // `use crate::Client` (a re-export of lib.rs) is an edge to `client`.
    assert!(graph.edges["fetch"].contains("client"));
    assert!(!graph.edges["client"].contains("fetch"));
    assert!(!graph.edges["signing"].contains("client"));
}

/// A crate in a temporary directory: (file, text) pairs.
fn krate(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const TWO_LAYERS: Layering = Layering {
    src: "",
    layers: &[&["low"], &["high"]],
    allowed_circles: &[],
};

fn violations(dir: &Path, layering: &Layering) -> Vec<Violation> {
    modgraph::check(&modgraph::graph(dir).unwrap(), layering)
}

#[test]
fn an_upward_import_through_a_reexport_is_caught() {
    let dir = krate(&[
        ("lib.rs", "mod low;\nmod high;\npub use high::Top;\n"),
        ("low.rs", "use crate::Top;\npub fn f(_: Top) {}\n"),
        ("high.rs", "pub struct Top;\n"),
    ]);
    assert_eq!(
        violations(dir.path(), &TWO_LAYERS),
        [Violation::Upward {
            from: "low".into(),
            to: "high".into(),
            from_layer: 0,
            to_layer: 1,
        }]
    );
}

#[test]
fn a_circle_is_caught_even_inside_one_layer_and_a_path_in_code_counts() {
    let dir = krate(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "pub fn f() { crate::b::g() }\n"),
        ("b.rs", "use crate::a;\npub fn g() { a::f() }\n"),
    ]);
    let one_layer = Layering {
        src: "",
        layers: &[&["a", "b"]],
        allowed_circles: &[],
    };
    assert_eq!(
        violations(dir.path(), &one_layer),
        [Violation::Circle(vec!["a".into(), "b".into()])]
    );
    let allowed = Layering {
        allowed_circles: &[&["b", "a"]],
        ..one_layer
    };
    assert_eq!(violations(dir.path(), &allowed), []);
}

#[test]
fn doc_links_tests_and_inline_modules_are_not_upward_edges() {
    let dir = krate(&[
        ("lib.rs", "mod low;\nmod high;\n"),
        (
            "low.rs",
            "//! See [`crate::high`].\n\
             /// Like [`crate::high::Top`].\n\
             pub struct Low;\n\
             mod inner { pub use super::Low as Again; }\n\
             #[cfg(test)]\nmod tests { use crate::high::Top; }\n",
        ),
        ("high.rs", "pub struct Top(crate::low::Low);\n"),
    ]);
    assert_eq!(violations(dir.path(), &TWO_LAYERS), []);
}

#[test]
fn a_module_in_no_layer_and_a_nested_module_are_reported() {
    let dir = krate(&[
        ("lib.rs", "mod low;\nmod high;\nmod stray;\n"),
        ("low.rs", "pub struct Low;\n"),
        ("high/mod.rs", "mod part;\n"),
        (
            "high/part.rs",
            "use crate::low::Low;\npub fn f(_: Low) {}\n",
        ),
        ("stray.rs", "use crate::high;\n"),
    ]);
    let graph = modgraph::graph(dir.path()).unwrap();
    assert!(graph.edges["high::part"].contains("low"), "{graph:?}");
    assert_eq!(
        modgraph::check(&graph, &TWO_LAYERS),
        [Violation::Unlayered("stray".into())]
    );
}
