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
    ("StreamVideos", "Video"),
    ("StreamVideosPublicDetails", "VideoPublicDetails"),
    ("StreamVideoResponseCollection", "VideosResponse"),
    ("StreamMediaStatus", "VideoStatus"),
    ("StreamMediaStateFilter", "VideoStateFilter"),
    ("StreamMediaMetadata", "VideoMeta"),
    ("StreamInput", "VideoInput"),
    ("StreamPlayback", "Playback"),
    ("StreamWatermarks", "Watermark"),
    ("StreamCreator", "Creator"),
    ("StreamLiveInput", "LiveInputId"),
    ("StreamWatermarkIdentifier", "WatermarkId"),
    ("StreamVideoResponseSingle", "VideoResponse"),
    ("StreamSignedTokenRequest", "TokenRequest"),
    ("StreamSignedTokenRequestFlags", "TokenFlags"),
    ("StreamAccessRules", "AccessRule"),
    ("StreamAccessRulesAction", "AccessRuleAction"),
    ("StreamAccessRulesType", "AccessRuleType"),
    ("StreamSignedTokenResponse", "TokenResponse"),
    ("StreamSignedTokenResponseResult", "TokenResult"),
    ("StreamKeyGenerationResponse", "NewSigningKeyResponse"),
    ("StreamKeys", "NewSigningKey"),
    ("StreamKeyResponseCollection", "SigningKeysResponse"),
    ("StreamKeyResponseCollectionResultItem", "SigningKeyInfo"),
    ("StreamCaptions", "Caption"),
    ("StreamLanguageResponseCollection", "CaptionsResponse"),
    ("StreamLanguageResponseSingle", "CaptionResponse"),
    ("StreamAdditionalAudio", "AudioTrack"),
    ("StreamListAudioTrackResponse", "AudioTracksResponse"),
    ("StreamListAudioTrackResponseResult", "AudioTracks"),
    ("StreamWatermarkResponseCollection", "WatermarksResponse"),
];

/// Component schemas replaced by an existing Rust type instead of a
/// generated one. (component name, typify name, Rust type). Scalar aliases
/// are replaced by a rule instead ([`scalar_replacements`]).
pub const REPLACEMENTS: &[(&str, &str, &str)] = &[
    // `result` of list/create: the hand-written `Downloads` accepts both the
    // current map and the older single-Download shape (see the client crate).
    (
        "stream_downloads_by_type",
        "StreamDownloadsByType",
        "crate::Downloads",
    ),
    // `result` of the listing: the hand-written `VideoList` keeps each
    // video's JSON as sent beside the typed `Video`.
    ("stream_video_list", "StreamVideoList", "crate::VideoList"),
    // `result` of one video's details: the same, for one video.
    (
        "stream_video_details",
        "StreamVideoDetails",
        "crate::ListedVideo",
    ),
    // The listing names the account id `stream_account_identifier`, the
    // downloads operations `stream_identifier-2`: the same string (at most
    // 32 characters) under two names. One Rust type for one concept.
    (
        "stream_account_identifier",
        "StreamAccountIdentifier",
        "crate::types::AccountId",
    ),
    // Credentials: a new signing key's private key (PEM and JWK, both
    // base64), a token request's `pem`, and a signed token. `Secret`
    // prints `***` in Debug and Display, so no generated type can leak one
    // (see patch 09 for the two that are named for this).
    ("stream_pem", "StreamPem", "crate::Secret"),
    ("stream_jwk", "StreamJwk", "crate::Secret"),
    (
        "stream_signed_token_request_pem",
        "StreamSignedTokenRequestPem",
        "crate::Secret",
    ),
    ("stream_signed_token", "StreamSignedToken", "crate::Secret"),
];

/// Derives that cost every user build time but only some users need: each
/// is emitted as `#[cfg_attr(feature = FEATURE, derive(PATH))]`, so the
/// client crate's feature decides. (derive path, cargo feature of the
/// client crate.) `schemars::JsonSchema` (schemars, its derive macro and a
/// second `syn`) is needed by the workspace's schema snapshots, not by
/// callers of the API.
pub const OPTIONAL_DERIVES: &[(&str, &str)] = &[("schemars::JsonSchema", "schemars")];

/// Rewrite every derive list of the generated code so that the
/// [`OPTIONAL_DERIVES`] are behind their feature.
pub fn gate_optional_derives(file: &mut syn::File) -> Result<(), String> {
    use syn::parse::Parser;
    fn visit(items: &mut [syn::Item]) -> Result<(), String> {
        for item in items {
            let attrs = match item {
                syn::Item::Struct(s) => &mut s.attrs,
                syn::Item::Enum(e) => &mut e.attrs,
                syn::Item::Mod(m) => {
                    if let Some((_, inner)) = m.content.as_mut() {
                        visit(inner)?;
                    }
                    continue;
                }
                _ => continue,
            };
            let mut added = Vec::new();
            for attr in attrs.iter_mut() {
                let syn::Meta::List(list) = &mut attr.meta else {
                    continue;
                };
                if !list.path.is_ident("derive") {
                    continue;
                }
                let derives: Vec<String> = list
                    .tokens
                    .to_string()
                    .split(',')
                    .map(|d| d.split_whitespace().collect::<String>())
                    .filter(|d| !d.is_empty())
                    .collect();
                let mut kept = Vec::new();
                for derive in derives {
                    match OPTIONAL_DERIVES.iter().find(|(path, _)| *path == derive) {
                        Some((path, feature)) => added.push(format!(
                            "#[cfg_attr(feature = \"{feature}\", derive({path}))]"
                        )),
                        None => kept.push(derive),
                    }
                }
                list.tokens = kept
                    .join(", ")
                    .parse()
                    .map_err(|e| format!("derive list: {e}"))?;
            }
            for text in added {
                let mut parsed = syn::Attribute::parse_outer
                    .parse_str(&text)
                    .map_err(|e| format!("{text}: {e}"))?;
                attrs.append(&mut parsed);
            }
        }
        Ok(())
    }
    visit(&mut file.items)
}

/// Response enums: every string enum a response body can hold is replaced
/// by a hand-written open enum of the client crate (known values as
/// variants, anything else kept as `Unknown(String)`), because Cloudflare
/// adds values without notice. (component name, typify name, Rust type).
/// `check_enums` refuses a response enum missing here, and a request that
/// uses one of these (requests stay closed: a caller cannot send a value
/// the spec does not list).
pub const OPEN_ENUMS: &[(&str, &str, &str)] = &[
    (
        "stream_download_status",
        "StreamDownloadStatus",
        "crate::DownloadStatus",
    ),
    (
        "stream_media_state",
        "StreamMediaState",
        "crate::VideoState",
    ),
    (
        "stream_caption_status",
        "StreamCaptionStatus",
        "crate::CaptionStatus",
    ),
    (
        "stream_audio_state",
        "StreamAudioState",
        "crate::AudioTrackStatus",
    ),
];

/// A component schema that only names a scalar (a string, number, integer
/// or boolean, or an array of plain strings) becomes that Rust type instead
/// of a newtype: typify does not enforce `minimum`/`maximum` or `format`,
/// so the newtype would check nothing and only add `.0` everywhere.
/// `format: date-time` becomes `chrono::DateTime<Utc>` (what typify uses for
/// it anyway). Kept as generated (checked) newtypes: `enum`, `maxLength`,
/// `minLength` and `pattern`, which typify does enforce.
///
/// Note `minimum` on an integer: typify would make `minimum: 1` a
/// `NonZeroU64`, and `stream_maxDurationSeconds` (`minimum: 1`) documents
/// `-1` for "unknown", so a newtype there would fail whole answers.
pub fn scalar_replacements(doc: &Value) -> Vec<(String, String, String)> {
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, schema) in schemas {
        let explicit = REPLACEMENTS
            .iter()
            .chain(OPEN_ENUMS)
            .any(|(component, _, _)| component == name);
        if explicit {
            continue;
        }
        if let Some(rust) = scalar_type(schema) {
            out.push((name.clone(), typify_name(name), rust.to_owned()));
        }
    }
    out
}

fn scalar_type(schema: &Value) -> Option<&'static str> {
    let checked = [
        "enum",
        "maxLength",
        "minLength",
        "pattern",
        "$ref",
        "allOf",
        "oneOf",
        "anyOf",
    ];
    if checked.iter().any(|k| schema.get(*k).is_some()) || schema.get("nullable").is_some() {
        return None;
    }
    match schema.get("type")?.as_str()? {
        "string" if schema.get("format").and_then(Value::as_str) == Some("date-time") => {
            Some("::chrono::DateTime<::chrono::offset::Utc>")
        }
        "string" => Some("::std::string::String"),
        "number" => Some("f64"),
        "integer" => Some("i64"),
        "boolean" => Some("bool"),
        "array" => schema
            .get("items")
            .and_then(scalar_type)
            .filter(|t| *t == "::std::string::String")
            .map(|_| "::std::vec::Vec<::std::string::String>"),
        _ => None,
    }
}

/// The name typify gives a component (`typify-impl`'s `sanitize` with
/// `Case::Pascal`: heck's PascalCase after turning every character that
/// cannot continue an identifier into `-`). `generate` checks afterwards
/// that no replaced name was generated, so a drift here is an error.
fn typify_name(component: &str) -> String {
    use heck::ToPascalCase;
    component
        .replace('\'', "")
        .replace(|c: char| !(c.is_alphanumeric() || c == '_'), "-")
        .to_pascal_case()
}

/// The progenitor settings for this workspace (for the document `doc`,
/// which the scalar rule reads). Every choice has its reason.
pub fn settings(doc: &Value) -> GenerationSettings {
    let mut s = GenerationSettings::new();
    s
        // Positional: one plain async method per operation. The hand-written
        // layer wraps each call (id checks, envelope unwrapping), and builder
        // structs would only add a second public surface to keep stable.
        .with_interface(InterfaceStyle::Positional)
        // Merged: all operations share one tag; one `Client` type.
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
    for (_, from, to) in REPLACEMENTS.iter().chain(OPEN_ENUMS) {
        s.with_replacement(from, to, std::iter::empty());
    }
    for (_, from, to) in scalar_replacements(doc) {
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
    check_enums(file, doc)?;
    let settings = settings(doc);
    let result = quietly(|| {
        let mut generator = Generator::new(&settings);
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
        Ok(Err(e)) => return Err(blame(file, spec, &settings, e.to_string())),
        Err(panic) => return Err(blame(file, spec, &settings, panic)),
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
    let replaced = REPLACEMENTS
        .iter()
        .chain(OPEN_ENUMS)
        .map(|(_, from, _)| (*from).to_owned())
        .chain(
            scalar_replacements(doc)
                .into_iter()
                .map(|(_, from, _)| from),
        );
    for from in replaced {
        if type_names.contains(&from) {
            return Err(Error::Settings {
                message: format!(
                    "replacement of {from} did not apply: typify generated it (its name for the \
                     component differs from the one in xtask/src/generate.rs)"
                ),
            });
        }
    }
    let operations = spec.operations().count();
    Ok(Generated { tokens, operations })
}

fn check_replacements(doc: &Value) -> Result<(), Error> {
    for (component, _, to) in REPLACEMENTS.iter().chain(OPEN_ENUMS) {
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

/// Every string enum a response can hold must be an [`OPEN_ENUMS`]
/// component, and no request may use one. Follows `$ref`s from each
/// operation's responses (and, separately, its parameters and request
/// body); boolean enums (`success: [true]`) are constants, not enums.
fn check_enums(file: &Path, doc: &Value) -> Result<(), Error> {
    let open: Vec<String> = OPEN_ENUMS
        .iter()
        .map(|(c, _, _)| format!("/components/schemas/{}", crate::escape_pointer_segment(c)))
        .collect();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for (method, op) in item.as_object().into_iter().flatten() {
            let Some(op) = op.as_object() else { continue };
            let at = format!("/paths/{}/{method}", crate::escape_pointer_segment(path));
            let mut seen = Vec::new();
            if let Some(responses) = op.get("responses") {
                let mut found = Vec::new();
                string_enums(
                    doc,
                    responses,
                    &format!("{at}/responses"),
                    &mut seen,
                    &mut found,
                );
                if let Some(closed) = found.iter().find(|p| !open.contains(p)) {
                    return Err(Error::spec(
                        file,
                        closed.as_str(),
                        "a string enum in a response must decode values the spec does not list \
                         yet: name it as a component and add it to OPEN_ENUMS in \
                         xtask/src/generate.rs with an open enum in the client crate",
                    ));
                }
            }
            for key in ["parameters", "requestBody"] {
                let Some(part) = op.get(key) else { continue };
                let mut found = Vec::new();
                seen.clear();
                string_enums(doc, part, &format!("{at}/{key}"), &mut seen, &mut found);
                if let Some(opened) = found.iter().find(|p| open.contains(p)) {
                    return Err(Error::spec(
                        file,
                        opened.as_str(),
                        format!(
                            "this enum is open (OPEN_ENUMS) but {at} sends it in its {key}: \
                             requests stay closed, so give the request its own copy of the \
                             schema (a patch) and leave the response one open"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Pointers of the string enums under `value`: a component's own pointer
/// when reached through a `$ref`, else where it sits.
fn string_enums(
    doc: &Value,
    value: &Value,
    at: &str,
    seen: &mut Vec<String>,
    out: &mut Vec<String>,
) {
    match value {
        Value::Object(map) => {
            if let Some(target) = map.get("$ref").and_then(Value::as_str) {
                let pointer = target.trim_start_matches('#').to_owned();
                if !seen.contains(&pointer) {
                    seen.push(pointer.clone());
                    if let Some(resolved) = doc.pointer(&pointer) {
                        string_enums(doc, resolved, &pointer, seen, out);
                    }
                }
            }
            let is_string_enum = map
                .get("enum")
                .and_then(Value::as_array)
                .is_some_and(|values| values.iter().any(Value::is_string));
            if is_string_enum && !out.iter().any(|p| p == at) {
                out.push(at.to_owned());
            }
            for (key, child) in map {
                if key != "example" && key != "enum" && key != "default" {
                    string_enums(
                        doc,
                        child,
                        &format!("{at}/{}", crate::escape_pointer_segment(key)),
                        seen,
                        out,
                    );
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                string_enums(doc, child, &format!("{at}/{i}"), seen, out);
            }
        }
        _ => {}
    }
}

/// Find which operation makes progenitor fail by generating each one alone.
fn blame(
    file: &Path,
    spec: &openapiv3::OpenAPI,
    settings: &GenerationSettings,
    whole_message: String,
) -> Error {
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
        let outcome = quietly(|| Generator::new(settings).generate_tokens(&single).map(drop));
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
