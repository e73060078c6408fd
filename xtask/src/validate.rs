//! Checks run before progenitor sees the document.
//!
//! progenitor 0.15 panics (instead of returning an error) on several shapes;
//! each of them is refused here first with the file and the JSON pointer of
//! the offending place, so no user ever sees a panic backtrace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::{Error, escape_pointer_segment as esc};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Validate the (patched) document. Returns the first problem found, in
/// document order.
pub fn validate(file: &Path, doc: &Value) -> Result<(), Error> {
    check_structure(file, doc)?;
    check_operations(file, doc)
}

/// The document-level rules only: OpenAPI 3.0.x, every `$ref` local and
/// resolvable. (The rest of `validate` is about what progenitor can
/// generate.)
pub fn check_structure(file: &Path, doc: &Value) -> Result<(), Error> {
    check_version(file, doc)?;
    check_refs(file, doc, doc, &mut String::new())
}

fn check_version(file: &Path, doc: &Value) -> Result<(), Error> {
    match doc.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0.") => Ok(()),
        Some(v) => Err(Error::spec(
            file,
            "/openapi",
            format!("OpenAPI {v} is not supported: progenitor reads OpenAPI 3.0.x only"),
        )),
        None if doc.get("swagger").is_some() => Err(Error::spec(
            file,
            "/swagger",
            "Swagger 2.0 is not supported: convert the document to OpenAPI 3.0.x",
        )),
        None => Err(Error::spec(
            file,
            "/openapi",
            "missing `openapi` version string: not an OpenAPI 3.0.x document",
        )),
    }
}

/// Every `$ref` must be local (`#/...`) and resolve.
fn check_refs(file: &Path, root: &Value, value: &Value, at: &mut String) -> Result<(), Error> {
    match value {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref") {
                let pointer = format!("{at}/$ref");
                let Some(target) = r.as_str() else {
                    return Err(Error::spec(file, pointer, "`$ref` must be a string"));
                };
                let Some(local) = target.strip_prefix('#') else {
                    return Err(Error::spec(
                        file,
                        pointer,
                        format!("external reference `{target}` is not supported; inline it"),
                    ));
                };
                if root.pointer(local).is_none() {
                    return Err(Error::spec(
                        file,
                        pointer,
                        format!("dangling reference: `{target}` does not exist"),
                    ));
                }
            }
            for (key, child) in map {
                let len = at.len();
                at.push('/');
                at.push_str(&esc(key));
                check_refs(file, root, child, at)?;
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                check_refs(file, root, child, at)?;
                at.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Follow a local `$ref` (already checked by `check_refs`), up to a depth.
fn resolve<'a>(root: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(target) => value = target,
                None => return value,
            },
            None => return value,
        }
    }
    value
}

fn check_operations(file: &Path, doc: &Value) -> Result<(), Error> {
    let Some(paths) = doc.get("paths") else {
        return Err(Error::spec(file, "/paths", "missing `paths`"));
    };
    let Some(paths) = paths.as_object() else {
        return Err(Error::spec(file, "/paths", "`paths` must be an object"));
    };
    let mut seen_ids: BTreeMap<String, String> = BTreeMap::new();
    for (path, item) in paths {
        let item_ptr = format!("/paths/{}", esc(path));
        let item = resolve(doc, item);
        let template: BTreeSet<&str> = template_params(path);
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let op_ptr = format!("{item_ptr}/{method}");

            match op.get("operationId").and_then(Value::as_str) {
                None | Some("") => {
                    return Err(Error::spec(
                        file,
                        format!("{op_ptr}/operationId"),
                        format!(
                            "{} {path} has no operationId; progenitor names the Rust method after it",
                            method.to_uppercase()
                        ),
                    ));
                }
                Some(id) => {
                    if let Some(first) = seen_ids.insert(id.to_owned(), op_ptr.clone()) {
                        return Err(Error::spec(
                            file,
                            format!("{op_ptr}/operationId"),
                            format!("duplicate operationId `{id}` (first used at {first})"),
                        ));
                    }
                }
            }

            check_path_params(file, doc, path, &template, item, &item_ptr, op, &op_ptr)?;
            check_request_body(file, doc, op, &op_ptr)?;
            check_responses(file, doc, op, &op_ptr)?;
        }
    }
    Ok(())
}

/// Names between braces in a path template.
fn template_params(path: &str) -> BTreeSet<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn check_path_params(
    file: &Path,
    doc: &Value,
    path: &str,
    template: &BTreeSet<&str>,
    item: &Value,
    item_ptr: &str,
    op: &Value,
    op_ptr: &str,
) -> Result<(), Error> {
    let mut declared = BTreeSet::new();
    for (owner, owner_ptr) in [(item, item_ptr), (op, op_ptr)] {
        let Some(params) = owner.get("parameters").and_then(Value::as_array) else {
            continue;
        };
        for (i, p) in params.iter().enumerate() {
            let p = resolve(doc, p);
            if p.get("in").and_then(Value::as_str) != Some("path") {
                continue;
            }
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            if !template.contains(name) {
                return Err(Error::spec(
                    file,
                    format!("{owner_ptr}/parameters/{i}"),
                    format!(
                        "path parameter `{name}` does not appear in the path template `{path}`"
                    ),
                ));
            }
            declared.insert(name.to_owned());
        }
    }
    if let Some(missing) = template.iter().find(|t| !declared.contains(**t)) {
        return Err(Error::spec(
            file,
            format!("{op_ptr}/parameters"),
            format!("`{{{missing}}}` in the path template `{path}` has no path parameter"),
        ));
    }
    Ok(())
}

fn check_request_body(file: &Path, doc: &Value, op: &Value, op_ptr: &str) -> Result<(), Error> {
    let Some(body) = op.get("requestBody") else {
        return Ok(());
    };
    let body = resolve(doc, body);
    if let Some(content) = body.get("content").and_then(Value::as_object) {
        for (media, media_obj) in content {
            if media_obj.get("schema").is_none() {
                return Err(Error::spec(
                    file,
                    format!("{op_ptr}/requestBody/content/{}", esc(media)),
                    format!(
                        "request media type `{media}` has no schema (Cloudflare's 2024 documents \
                         have such bodies; give it a schema or remove the body in a patch)"
                    ),
                ));
            }
        }
    }
    if let Some(content) = body.get("content").and_then(Value::as_object)
        && content.len() > 1
    {
        let types: Vec<&str> = content.keys().map(String::as_str).collect();
        return Err(Error::spec(
            file,
            format!("{op_ptr}/requestBody/content"),
            format!(
                "more than one request media type ({}); progenitor supports exactly one",
                types.join(", ")
            ),
        ));
    }
    Ok(())
}

fn check_responses(file: &Path, doc: &Value, op: &Value, op_ptr: &str) -> Result<(), Error> {
    let Some(responses) = op.get("responses").and_then(Value::as_object) else {
        return Err(Error::spec(
            file,
            format!("{op_ptr}/responses"),
            "missing `responses`",
        ));
    };
    // (status key, schema of its body or None for no body)
    let mut success: Vec<(&str, Option<&Value>)> = Vec::new();
    for (status, response) in responses {
        let resp_ptr = format!("{op_ptr}/responses/{}", esc(status));
        let response = resolve(doc, response);
        let mut body_schema = None;
        if let Some(content) = response.get("content").and_then(Value::as_object) {
            for (media, media_obj) in content {
                match media_obj.get("schema") {
                    Some(schema) => body_schema = Some(resolve(doc, schema)),
                    None => {
                        return Err(Error::spec(
                            file,
                            format!("{resp_ptr}/content/{}", esc(media)),
                            format!("response media type `{media}` has no schema"),
                        ));
                    }
                }
            }
        }
        if status.starts_with('2') {
            success.push((status, body_schema));
        }
    }
    if let Some((first_status, first_schema)) = success.first() {
        for (status, schema) in &success[1..] {
            if schema != first_schema {
                return Err(Error::spec(
                    file,
                    format!("{op_ptr}/responses/{}", esc(status)),
                    format!(
                        "success responses {first_status} and {status} have different bodies; \
                         progenitor needs every 2xx response to share one schema"
                    ),
                ));
            }
        }
        if responses.contains_key("default") && first_schema.is_some() {
            return Err(Error::spec(
                file,
                format!("{op_ptr}/responses/default"),
                format!(
                    "a `default` response beside the typed {first_status} response; \
                     progenitor cannot type both (use 4XX/5XX keys for failures)"
                ),
            ));
        }
    }
    Ok(())
}
