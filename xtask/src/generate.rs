//! progenitor settings (the one place they live) and token generation.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle, TypePatch};
use serde_json::Value;

use crate::Error;

/// Types renamed from typify's spec-derived names to the domain's names.
/// (typify name, our name). A rename whose source type no longer exists is
/// an error, because typify would ignore it silently.
pub const RENAMES: &[(&str, &str)] = &[
    ("StreamDownloads", "Download"),
    ("StreamDownloadStatus", "DownloadStatus"),
    ("StreamDownloadType", "DownloadType"),
    ("StreamDownloadsResponse", "DownloadsResponse"),
    ("StreamDeletedResponse", "DeletedResponse"),
    ("StreamApiResponseCommonFailure", "FailureResponse"),
    ("StreamApiResponseCommon", "ResponseCommon"),
    ("StreamApiResponseSingle", "ResponseSingle"),
    ("StreamMessages", "Messages"),
    ("StreamMessagesItem", "Message"),
    ("StreamMessagesItemSource", "MessageSource"),
    ("StreamIdentifier", "VideoId"),
    ("StreamIdentifier2", "AccountId"),
];

/// Component schemas replaced by an existing Rust type instead of a
/// generated newtype. (component name, typify name, Rust type, why).
pub const REPLACEMENTS: &[(&str, &str, &str)] = &[
    // A newtype around f64 adds nothing: typify does not check minimum/maximum.
    (
        "stream_download_percent_complete",
        "StreamDownloadPercentComplete",
        "f64",
    ),
    // `format: uri` is not checked by typify either; a String is honest.
    (
        "stream_download_url",
        "StreamDownloadUrl",
        "::std::string::String",
    ),
    // `result` of list/create: the hand-written `Downloads` accepts both the
    // current map and the older single-Download shape (see the client crate).
    (
        "stream_downloads_by_type",
        "StreamDownloadsByType",
        "crate::Downloads",
    ),
];

/// The progenitor settings for this workspace. Every choice has its reason.
pub fn settings() -> GenerationSettings {
    let mut s = GenerationSettings::new();
    s
        // Positional: one plain async method per operation. The hand-written
        // layer wraps each call (id checks, envelope unwrapping), and builder
        // structs would only add a second public surface to keep stable.
        .with_interface(InterfaceStyle::Positional)
        // Merged: all five operations share one tag; one `Client` type.
        .with_tag(TagStyle::Merged)
        // JsonSchema: the schema snapshots in tests/ pin the wire types.
        .with_derive("schemars::JsonSchema")
        // PartialEq: lets tests and callers compare decoded values.
        .with_derive("PartialEq")
        // The client layer keeps its per-client state (credentials, retry
        // policy) in this type, reachable from the hooks.
        .with_inner_type(tokens("crate::hooks::Inner"))
        // Expected: the client crate must implement `ClientHooks` itself
        // (`src/hooks.rs`): a missing implementation is a compile error,
        // never a silent fallback to progenitor's bare `execute`.
        .with_hooks(HooksMode::Expected)
        // Only used by the generated `Client::new`; the hand-written layer
        // builds its own reqwest client. 60 s matches Cloudflare's SDKs.
        .with_timeout(60);
    for (from, to) in RENAMES {
        s.with_patch(from, TypePatch::default().with_rename(to));
    }
    for (_, from, to) in REPLACEMENTS {
        s.with_replacement(from, to, std::iter::empty());
    }
    s
}

fn tokens(path: &str) -> proc_macro2::TokenStream {
    path.parse().expect("a literal Rust path parses")
}

/// The generated tokens plus what they contain.
pub struct Generated {
    pub tokens: proc_macro2::TokenStream,
    pub operations: usize,
}

/// Run progenitor once on `spec` (a fresh `Generator` each time: a reused
/// one emits every type twice). Errors and panics become `Error::Generator`
/// naming the operation that caused them.
pub fn generate(file: &Path, doc: &Value, spec: &openapiv3::OpenAPI) -> Result<Generated, Error> {
    check_replacements(doc)?;
    let result = quietly(|| {
        let mut generator = Generator::new(&settings());
        generator.generate_tokens(spec).map(|tokens| {
            let names: Vec<String> = generator
                .get_type_space()
                .iter_types()
                .map(|t| t.name())
                .collect();
            (tokens, names)
        })
    });
    let (tokens, type_names) = match result {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(blame(file, spec, e.to_string())),
        Err(panic) => return Err(blame(file, spec, panic)),
    };
    for (from, to) in RENAMES {
        if !type_names.iter().any(|n| n == to) {
            return Err(Error::Settings {
                message: format!(
                    "rename {from} -> {to} no longer applies: the spec produces no type {from}"
                ),
            });
        }
    }
    let operations = spec.operations().count();
    Ok(Generated { tokens, operations })
}

fn check_replacements(doc: &Value) -> Result<(), Error> {
    for (component, _, to) in REPLACEMENTS {
        if doc
            .pointer(&format!("/components/schemas/{component}"))
            .is_none()
        {
            return Err(Error::Settings {
                message: format!(
                    "replacement of components/schemas/{component} by {to} no longer applies: \
                     the spec has no such schema"
                ),
            });
        }
    }
    Ok(())
}

/// Find which operation makes progenitor fail by generating each one alone.
fn blame(file: &Path, spec: &openapiv3::OpenAPI, whole_message: String) -> Error {
    for (path, method, op) in spec.operations() {
        let mut single = spec.clone();
        single.paths.paths.clear();
        let mut item = openapiv3::PathItem::default();
        match method {
            "get" => item.get = Some(op.clone()),
            "put" => item.put = Some(op.clone()),
            "post" => item.post = Some(op.clone()),
            "delete" => item.delete = Some(op.clone()),
            "options" => item.options = Some(op.clone()),
            "head" => item.head = Some(op.clone()),
            "patch" => item.patch = Some(op.clone()),
            "trace" => item.trace = Some(op.clone()),
            _ => continue,
        }
        single
            .paths
            .paths
            .insert(path.to_owned(), openapiv3::ReferenceOr::Item(item));
        let outcome = quietly(|| {
            Generator::new(&settings())
                .generate_tokens(&single)
                .map(drop)
        });
        let message = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(panic) => panic,
        };
        return Error::Generator {
            file: file.to_path_buf(),
            operation: format!(
                "{} {path} (operationId `{}`, #/paths/{}/{method})",
                method.to_uppercase(),
                op.operation_id.as_deref().unwrap_or("?"),
                crate::escape_pointer_segment(path)
            ),
            message,
        };
    }
    Error::Generator {
        file: file.to_path_buf(),
        operation: "the document as a whole".into(),
        message: whole_message,
    }
}

/// Run `f`, turning a panic into its message, without printing the default
/// `panicked at` report to stderr.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked with a non-string payload".into())
    })
}
