//! Support for the workspace's consumer-level tests.
//!
//! [`inventory`] renders the API inventory snapshot: every operation of the
//! generated client (from `generated.rs` itself, joined with the patched
//! spec for the operationId) and every generated type, sorted, as plain text
//! a reviewer can read in a minute.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use quote::ToTokens;
use serde_json::Value;

/// `tests/fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The inventory of `generated` (the text of `generated.rs`), with
/// operationIds looked up in `spec` (the patched OpenAPI document).
pub fn inventory(generated: &str, spec: &Value) -> Result<String, String> {
    let file = syn::parse_file(generated).map_err(|e| format!("generated.rs: {e}"))?;
    let mut out = String::new();

    out.push_str("# operations\n");
    let mut operations = BTreeMap::new();
    for item in &file.items {
        let syn::Item::Impl(imp) = item else { continue };
        if imp.trait_.is_some() || type_name(&imp.self_ty) != "Client" {
            continue;
        }
        for member in &imp.items {
            let syn::ImplItem::Fn(f) = member else {
                continue;
            };
            if f.sig.asyncness.is_none() {
                continue;
            }
            let (method, path) = request_line(&doc_text(&f.attrs))
                .ok_or_else(|| format!("{}: no `Sends a ...` doc line", f.sig.ident))?;
            let operation_id = spec
                .pointer(&format!(
                    "/paths/{}/{}/operationId",
                    path.replace('~', "~0").replace('/', "~1"),
                    method.to_lowercase()
                ))
                .and_then(Value::as_str)
                .unwrap_or("<none in spec>")
                .to_owned();
            let params: Vec<String> = f
                .sig
                .inputs
                .iter()
                .filter_map(|arg| match arg {
                    syn::FnArg::Typed(t) => {
                        Some(format!("{}: {}", t.pat.to_token_stream(), type_name(&t.ty)))
                    }
                    syn::FnArg::Receiver(_) => None,
                })
                .collect();
            let (ok, err) = result_types(&f.sig.output);
            let mut text = String::new();
            let _ = writeln!(text, "{method} {path}");
            let _ = writeln!(text, "  operationId: {operation_id}");
            let _ = writeln!(
                text,
                "  rust: Client::{}({})",
                f.sig.ident,
                params.join(", ")
            );
            let _ = writeln!(text, "  success: {ok}");
            let _ = writeln!(text, "  error: {err}");
            operations.insert((path.clone(), method.clone()), text);
        }
    }
    for text in operations.values() {
        out.push_str(text);
    }

    out.push_str("\n# types\n");
    let types_mod = file
        .items
        .iter()
        .find_map(|item| match item {
            syn::Item::Mod(m) if m.ident == "types" => m.content.as_ref().map(|(_, i)| i),
            _ => None,
        })
        .ok_or("generated.rs has no `types` module")?;
    let mut types = BTreeMap::new();
    for item in types_mod {
        let (name, text) = match item {
            syn::Item::Struct(s) => (s.ident.to_string(), describe_struct(s)),
            syn::Item::Enum(e) => (e.ident.to_string(), describe_enum(e)),
            _ => continue,
        };
        types.insert(name, text);
    }
    for text in types.values() {
        out.push_str(text);
    }
    Ok(out)
}

fn describe_struct(s: &syn::ItemStruct) -> String {
    let mut out = String::new();
    let transparent = serde_flags(&s.attrs).iter().any(|f| f == "transparent");
    match &s.fields {
        syn::Fields::Unnamed(fields) => {
            let inner: Vec<String> = fields.unnamed.iter().map(|f| type_name(&f.ty)).collect();
            let _ = writeln!(
                out,
                "newtype {}({}){}",
                s.ident,
                inner.join(", "),
                if transparent { " transparent" } else { "" }
            );
        }
        syn::Fields::Named(fields) => {
            let _ = writeln!(out, "struct {}", s.ident);
            for f in &fields.named {
                let ident = f
                    .ident
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let flags = serde_flags(&f.attrs);
                let json = flags
                    .iter()
                    .find_map(|f| f.strip_prefix("rename="))
                    .map_or(ident.clone(), str::to_owned);
                let ty = type_name(&f.ty);
                let optional = ty.starts_with("Option<") || flags.iter().any(|f| f == "default");
                let _ = writeln!(
                    out,
                    "  {ident}: {ty}  json \"{json}\" {}",
                    if optional { "optional" } else { "required" }
                );
            }
        }
        syn::Fields::Unit => {
            let _ = writeln!(out, "struct {} (unit)", s.ident);
        }
    }
    out
}

fn describe_enum(e: &syn::ItemEnum) -> String {
    let mut out = String::new();
    let flags = serde_flags(&e.attrs);
    let _ = writeln!(
        out,
        "enum {}{}",
        e.ident,
        if flags.iter().any(|f| f == "untagged") {
            " untagged"
        } else {
            ""
        }
    );
    for v in &e.variants {
        let json = serde_flags(&v.attrs)
            .iter()
            .find_map(|f| f.strip_prefix("rename=").map(str::to_owned))
            .unwrap_or_else(|| v.ident.to_string());
        let payload = match &v.fields {
            syn::Fields::Unnamed(f) => format!(
                "({})",
                f.unnamed
                    .iter()
                    .map(|f| type_name(&f.ty))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {}{payload} = \"{json}\"", v.ident);
    }
    out
}

/// `#[serde(...)]` entries as `name` or `name=value` strings.
fn serde_flags(attrs: &[syn::Attribute]) -> Vec<String> {
    let mut flags = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            let name = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            if meta.input.peek(syn::Token![=]) {
                let value: syn::Expr = meta.value()?.parse()?;
                let value = match value {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => s.value(),
                    other => other.to_token_stream().to_string(),
                };
                flags.push(format!("{name}={value}"));
            } else {
                flags.push(name);
            }
            Ok(())
        });
    }
    flags
}

fn doc_text(attrs: &[syn::Attribute]) -> String {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// progenitor documents each method with "Sends a `GET` request to `/path`".
fn request_line(doc: &str) -> Option<(String, String)> {
    let rest = doc.split("Sends a `").nth(1)?;
    let (method, rest) = rest.split_once('`')?;
    let path = rest.split('`').nth(1)?;
    Some((method.to_owned(), path.to_owned()))
}

/// `Result<ResponseValue<Ok>, Error<Err>>` -> ("Ok", "Err").
fn result_types(output: &syn::ReturnType) -> (String, String) {
    let syn::ReturnType::Type(_, ty) = output else {
        return ("()".into(), "-".into());
    };
    let args = generic_args(ty);
    let unwrap = |t: Option<&syn::Type>| {
        t.map(|t| {
            generic_args(t)
                .first()
                .map_or_else(|| type_name(t), type_name)
        })
        .unwrap_or_else(|| "-".into())
    };
    (unwrap(args.first()), unwrap(args.get(1)))
}

fn generic_args(ty: &syn::Type) -> Vec<syn::Type> {
    let syn::Type::Path(p) = ty else {
        return Vec::new();
    };
    let Some(last) = p.path.segments.last() else {
        return Vec::new();
    };
    match &last.arguments {
        syn::PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|arg| match arg {
                syn::GenericArgument::Type(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A readable type name: std, serde_json and `types::` paths are shortened
/// to their last segment; other paths (`crate::Downloads`) stay whole.
pub fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Reference(r) => format!("&{}", type_name(&r.elem)),
        syn::Type::Tuple(t) if t.elems.is_empty() => "()".into(),
        syn::Type::Path(p) => {
            let segments: Vec<String> = p
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            let short = matches!(
                segments.first().map(String::as_str),
                Some("std" | "serde_json" | "types" | "self")
            ) || segments.len() == 1;
            let base = if short {
                segments.last().cloned().unwrap_or_default()
            } else {
                segments.join("::")
            };
            let args: Vec<String> = generic_args(ty).iter().map(type_name).collect();
            if args.is_empty() {
                base
            } else {
                format!("{base}<{}>", args.join(", "))
            }
        }
        other => other.to_token_stream().to_string(),
    }
}
