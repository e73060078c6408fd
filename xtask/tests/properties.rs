//! Generation never panics: the patches applied to arbitrary documents, and
//! the whole pipeline (validate -> typed model -> progenitor) on the real
//! spec with one subtree replaced by arbitrary JSON. Each gives a clear
//! error or valid output.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{Value, json};
use xtask::codegen::{Paths, patched_spec};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("#/components/schemas/stream_downloads".to_owned()),
            Just("#/components/schemas/nope".to_owned()),
            Just("object".to_owned()),
            Just("string".to_owned()),
            Just("3.0.3".to_owned()),
            ".{0,8}"
        ]
        .prop_map(Value::String),
    ];
    let key = prop_oneof![
        Just("$ref".to_owned()),
        Just("type".to_owned()),
        Just("properties".to_owned()),
        Just("allOf".to_owned()),
        Just("oneOf".to_owned()),
        Just("items".to_owned()),
        Just("enum".to_owned()),
        Just("required".to_owned()),
        Just("content".to_owned()),
        Just("schema".to_owned()),
        Just("nullable".to_owned()),
        "[a-z]{1,5}"
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

fn pipeline(doc: &Value) -> Result<(), xtask::Error> {
    let file = Path::new("spec.json");
    xtask::validate::validate(file, doc)?;
    let openapi = xtask::spec::to_openapi(file, doc)?;
    xtask::generate::generate(file, doc, &openapi).map(drop)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn patches_on_arbitrary_documents_never_panic(doc in json_value()) {
        let patches = xtask::patches::load_dir(&Paths::workspace().patches).unwrap();
        let mut doc = doc;
        if let Err(e) = xtask::patches::apply(&mut doc, &patches) {
            let text = e.to_string();
            prop_assert!(text.contains("patches/0") && text.contains("does not apply"), "{}", text);
        }
    }

    #[test]
    fn the_pipeline_on_a_mutated_spec_never_panics(choice in any::<prop::sample::Index>(), replacement in json_value(), delete in any::<bool>()) {
        let mut doc = patched_spec(&Paths::workspace()).unwrap();
        let mut all = Vec::new();
        pointers(&doc, String::new(), &mut all);
        let target = &all[choice.index(all.len())];
        let (parent, last) = target.rsplit_once('/').unwrap();
        let key = last.replace("~1", "/").replace("~0", "~");
        match doc.pointer_mut(parent).unwrap() {
            Value::Object(m) if delete => { m.remove(&key); }
            Value::Array(a) if delete => { a.remove(key.parse::<usize>().unwrap()); }
            _ => *doc.pointer_mut(target).unwrap() = replacement,
        }
        match pipeline(&doc) {
            Ok(()) => {}
            Err(e) => {
                let text = e.to_string();
                prop_assert!(!text.is_empty());
                prop_assert!(text.starts_with("spec.json") || text.starts_with("xtask/src/generate.rs"), "{}", text);
            }
        }
    }
}
