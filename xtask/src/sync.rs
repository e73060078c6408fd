//! `cargo xtask spec sync`: cut the downloads fragment out of Cloudflare's
//! full OpenAPI document, and report what changed.
//!
//! `slice -> report -> write`: the fragment keeps the selected paths
//! (rule: `openapi/sync.json`) with `openapi`, `info`, `servers`, the global
//! `security`, and exactly the components they reference, transitively
//! (schemas, parameters, responses, request bodies, headers, examples,
//! security schemes, …), in the source document's own order. Nothing is
//! written until everything has been checked.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Digest;

use crate::files::write_atomically;
use crate::{Error, escape_pointer_segment as esc};

/// The selection rule, `openapi/sync.json`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Why these operations.
    pub reason: String,
    /// A path is kept, with every operation on it, when it equals a prefix
    /// or continues it with `/`.
    #[serde(default)]
    pub path_prefixes: Vec<String>,
    /// Single operations: exactly this path, only these methods (the other
    /// methods of the same path are left out).
    #[serde(default)]
    pub operations: Vec<OperationRule>,
}

/// One path and the methods of it that are kept.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationRule {
    /// The exact path, e.g. `/accounts/{account_id}/stream`.
    pub path: String,
    /// Lower-case HTTP methods, e.g. `["get"]`.
    pub methods: Vec<String>,
}

impl Selection {
    fn selects_whole(&self, path: &str) -> bool {
        self.path_prefixes.iter().any(|p| {
            path == p
                || path
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }

    /// What of `item` (the path item at `path`) is kept: all of it, only
    /// some methods (plus the path item's shared fields such as
    /// `parameters`), or nothing.
    fn select(&self, path: &str, item: &Value) -> Option<Value> {
        if self.selects_whole(path) {
            return Some(item.clone());
        }
        let methods: BTreeSet<&str> = self
            .operations
            .iter()
            .filter(|rule| rule.path == path)
            .flat_map(|rule| rule.methods.iter().map(String::as_str))
            .collect();
        if methods.is_empty() {
            return None;
        }
        let kept: Map<String, Value> = item
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| !METHODS.contains(&key.as_str()) || methods.contains(key.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(Value::Object(kept))
    }

    /// What the rule asks for, for messages.
    fn describe(&self) -> String {
        let mut parts: Vec<String> = self.path_prefixes.clone();
        for rule in &self.operations {
            for method in &rule.methods {
                parts.push(format!("{} {}", method.to_uppercase(), rule.path));
            }
        }
        parts.join(", ")
    }

    /// Every operation rule names a real method: a rule that selects
    /// nothing is a mistake, not a wish.
    fn check(&self, file: &Path) -> Result<(), Error> {
        if self.path_prefixes.is_empty() && self.operations.is_empty() {
            return Err(Error::spec(
                file,
                "",
                "the selection selects nothing: give `path_prefixes` or `operations`",
            ));
        }
        for (i, rule) in self.operations.iter().enumerate() {
            if rule.methods.is_empty() {
                return Err(Error::spec(
                    file,
                    format!("/operations/{i}/methods"),
                    "an operation rule needs at least one method",
                ));
            }
            for (j, method) in rule.methods.iter().enumerate() {
                if !METHODS.contains(&method.as_str()) {
                    return Err(Error::spec(
                        file,
                        format!("/operations/{i}/methods/{j}"),
                        format!(
                            "`{method}` is not a lower-case HTTP method ({})",
                            METHODS.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Where `spec sync` reads its rule and writes its output.
#[derive(Debug, Clone)]
pub struct SyncPaths {
    /// `openapi/sync.json`
    pub selection: PathBuf,
    /// `openapi/stream-downloads.openapi.json`
    pub fragment: PathBuf,
    /// `openapi/provenance.json`
    pub provenance: PathBuf,
}

impl SyncPaths {
    /// The standard files in `dir` (normally `openapi/`).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            selection: dir.join("sync.json"),
            fragment: dir.join("stream-downloads.openapi.json"),
            provenance: dir.join("provenance.json"),
        }
    }
}

/// Where the fragment came from (`openapi/provenance.json`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Provenance {
    /// File name of the full document it was cut from.
    pub source: String,
    /// SHA-256 of that file, hex.
    pub sha256: String,
    /// `--date`, when given.
    pub date: Option<String>,
    /// The source's `info.version`.
    pub version: Option<String>,
    /// The command that wrote the fragment.
    pub written_by: String,
    /// The source's own top-level `x-provenance`, when it had one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_notes: Option<Value>,
}

/// What changed between the previous fragment and the new one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// `METHOD path (operationId)` now present, not before.
    pub operations_added: Vec<String>,
    /// Present before, not now.
    pub operations_removed: Vec<String>,
    /// Component schemas now present, not before.
    pub schemas_added: Vec<String>,
    /// Present before, not now.
    pub schemas_removed: Vec<String>,
    /// Per schema present in both, its changes.
    pub schema_changes: BTreeMap<String, Vec<Change>>,
    /// How many descriptions or summaries changed (not listed).
    pub descriptions_changed: usize,
}

/// One change inside a schema, at a property path such as `result.default`
/// (`[]` stands for array items).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A property appeared.
    PropertyAdded { path: String },
    /// A property disappeared.
    PropertyRemoved { path: String },
    /// Its type (or `$ref`, or composition) changed.
    TypeChanged {
        path: String,
        from: String,
        to: String,
    },
    /// Enum values appeared.
    EnumAdded { path: String, values: Vec<Value> },
    /// Enum values disappeared.
    EnumRemoved { path: String, values: Vec<Value> },
    /// It became required (`required: true`) or optional.
    RequiredChanged { path: String, required: bool },
}

impl Report {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Report::default()
    }

    /// The human form.
    pub fn render(&self) -> String {
        if self.is_empty() {
            return "no changes\n".into();
        }
        let mut out = String::new();
        let mut list = |title: &str, items: &[String]| {
            for item in items {
                out.push_str(&format!("{title} {item}\n"));
            }
        };
        list("operation added:  ", &self.operations_added);
        list("operation removed:", &self.operations_removed);
        list("schema added:     ", &self.schemas_added);
        list("schema removed:   ", &self.schemas_removed);
        for (schema, changes) in &self.schema_changes {
            out.push_str(&format!("schema {schema}:\n"));
            for c in changes {
                let line = match c {
                    Change::PropertyAdded { path } => format!("+ {path}"),
                    Change::PropertyRemoved { path } => format!("- {path}"),
                    Change::TypeChanged { path, from, to } => format!("~ {path}: {from} -> {to}"),
                    Change::EnumAdded { path, values } => {
                        format!("~ {path}: enum + {}", join(values))
                    }
                    Change::EnumRemoved { path, values } => {
                        format!("~ {path}: enum - {}", join(values))
                    }
                    Change::RequiredChanged { path, required } => format!(
                        "~ {path}: now {}",
                        if *required { "required" } else { "optional" }
                    ),
                };
                out.push_str(&format!("    {line}\n"));
            }
        }
        if self.descriptions_changed > 0 {
            out.push_str(&format!(
                "descriptions or summaries changed: {}\n",
                self.descriptions_changed
            ));
        }
        out
    }
}

fn join(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The result of a sync, before or after writing.
#[derive(Debug)]
pub struct Outcome {
    /// What changed.
    pub report: Report,
    /// Whether the fragment's text differs from the file.
    pub changed: bool,
    /// Whether files were written.
    pub written: bool,
    /// Operations and components in the new fragment.
    pub operations: usize,
    pub components: usize,
}

/// Options of one sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The full document.
    pub from: PathBuf,
    /// Recorded in the provenance.
    pub date: Option<String>,
    /// Report only; write nothing.
    pub check: bool,
}

/// Run a sync: slice `options.from`, compare with the current fragment,
/// write the fragment and provenance when it changed (unless `check`).
pub fn run(paths: &SyncPaths, options: &SyncOptions) -> Result<Outcome, Error> {
    let selection = load_selection(&paths.selection)?;
    let bytes = std::fs::read(&options.from).map_err(|source| Error::Io {
        file: options.from.clone(),
        action: "cannot read the source document",
        source,
    })?;
    let source = crate::spec::parse(&options.from, &bytes)?;
    let fragment = slice(&options.from, &source, &selection)?;
    let text = to_text(&fragment);

    let previous_text = std::fs::read_to_string(&paths.fragment).ok();
    let previous = match &previous_text {
        Some(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        None => Value::Null,
    };
    let report = compare(&previous, &fragment);
    let changed = previous_text.as_deref() != Some(text.as_str());
    let operations = count_operations(&fragment);
    let components = fragment
        .get("components")
        .and_then(Value::as_object)
        .map_or(0, |c| {
            c.values().filter_map(Value::as_object).map(Map::len).sum()
        });

    let written = changed && !options.check;
    if written {
        let provenance = Provenance {
            source: options
                .from
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: format!("{:x}", sha2::Sha256::digest(&bytes)),
            date: options.date.clone(),
            version: source
                .pointer("/info/version")
                .and_then(Value::as_str)
                .map(str::to_owned),
            written_by: "cargo xtask spec sync".into(),
            source_notes: source.get("x-provenance").cloned(),
        };
        let mut provenance_text = serde_json::to_string_pretty(&provenance).unwrap_or_default();
        provenance_text.push('\n');
        write_atomically(&paths.fragment, text.as_bytes())?;
        write_atomically(&paths.provenance, provenance_text.as_bytes())?;
    }
    Ok(Outcome {
        report,
        changed,
        written,
        operations,
        components,
    })
}

fn load_selection(file: &Path) -> Result<Selection, Error> {
    let value = crate::spec::load(file)?;
    serde_json::from_value(value)
        .map_err(|e| {
            Error::spec(
                file,
                "",
                format!(
                    "not a selection rule ({{\"reason\", \"path_prefixes\": [...], \
                 \"operations\": [{{\"path\", \"methods\"}}]}}): {e}"
                ),
            )
        })
        .and_then(|selection: Selection| selection.check(file).map(|()| selection))
}

/// The fragment as written: 2-space pretty JSON and a final newline.
pub fn to_text(fragment: &Value) -> String {
    let mut text = serde_json::to_string_pretty(fragment).unwrap_or_default();
    text.push('\n');
    text
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn count_operations(doc: &Value) -> usize {
    doc.get("paths")
        .and_then(Value::as_object)
        .map_or(0, |paths| {
            paths
                .values()
                .map(|item| METHODS.iter().filter(|m| item.get(**m).is_some()).count())
                .sum()
        })
}

/// Cut the selected paths and everything they reference out of `source`.
pub fn slice(file: &Path, source: &Value, selection: &Selection) -> Result<Value, Error> {
    match source.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.") => {}
        _ => {
            return Err(Error::spec(
                file,
                "/openapi",
                "not an OpenAPI 3 document (no `openapi: 3.x` version)",
            ));
        }
    }
    let Some(paths) = source.get("paths").and_then(Value::as_object) else {
        return Err(Error::spec(file, "/paths", "the document has no `paths`"));
    };
    let selected: Map<String, Value> = paths
        .iter()
        .filter_map(|(path, item)| {
            selection
                .select(path, item)
                .map(|kept| (path.clone(), kept))
        })
        .collect();
    if selected.is_empty() {
        return Err(Error::spec(
            file,
            "/paths",
            format!(
                "no path matches the selection ({}); is this the right document?",
                selection.describe()
            ),
        ));
    }
    // A single-operation rule that finds nothing means upstream moved it.
    for rule in &selection.operations {
        for method in &rule.methods {
            if paths
                .get(&rule.path)
                .and_then(|item| item.get(method))
                .is_none()
            {
                return Err(Error::spec(
                    file,
                    format!("/paths/{}/{method}", esc(&rule.path)),
                    format!(
                        "the selection asks for {} {} but the document has no such operation",
                        method.to_uppercase(),
                        rule.path
                    ),
                ));
            }
        }
    }

    // Everything the selection references, transitively.
    let mut wanted: HashSet<String> = HashSet::new(); // "/components/<kind>/<name>"
    let mut queue: Vec<(String, &Value)> = selected
        .iter()
        .map(|(p, item)| (format!("/paths/{}", esc(p)), item))
        .collect();
    // The global security requirements name their schemes directly.
    let global = source.get("security").and_then(Value::as_array);
    for requirement in global.into_iter().flatten() {
        for name in requirement
            .as_object()
            .into_iter()
            .flatten()
            .map(|(n, _)| n)
        {
            let component = format!("/components/securitySchemes/{}", esc(name));
            if source.pointer(&component).is_none() {
                return Err(Error::spec(
                    file,
                    "/security",
                    format!("security scheme `{name}` is not in components/securitySchemes"),
                ));
            }
            wanted.insert(component);
        }
    }
    while let Some((at, value)) = queue.pop() {
        let mut refs = Vec::new();
        collect_refs(value, &at, &mut refs);
        collect_security_schemes(value, &mut refs);
        for (ref_at, target) in refs {
            let Some(pointer) = target.strip_prefix('#') else {
                return Err(Error::spec(
                    file,
                    format!("{ref_at}/$ref"),
                    format!("external reference `{target}` cannot be sliced"),
                ));
            };
            if source.pointer(pointer).is_none() {
                return Err(Error::spec(
                    file,
                    format!("{ref_at}/$ref"),
                    format!("dangling reference upstream: `{target}` does not exist"),
                ));
            }
            let Some(component) = component_of(pointer) else {
                return Err(Error::spec(
                    file,
                    format!("{ref_at}/$ref"),
                    format!("reference `{target}` points outside `components`"),
                ));
            };
            if wanted.insert(component.clone())
                && let Some(whole) = source.pointer(&component)
            {
                queue.push((component, whole));
            }
        }
    }

    let mut out = Map::new();
    for (key, value) in source.as_object().into_iter().flatten() {
        match key.as_str() {
            "openapi" | "info" | "servers" | "security" => {
                out.insert(key.clone(), value.clone());
            }
            "paths" => {
                out.insert(key.clone(), Value::Object(selected.clone()));
            }
            "components" => {
                let mut components = Map::new();
                for (kind, members) in value.as_object().into_iter().flatten() {
                    let kept: Map<String, Value> = members
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(name, _)| {
                            wanted.contains(&format!("/components/{}/{}", esc(kind), esc(name)))
                        })
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect();
                    if !kept.is_empty() {
                        components.insert(kind.clone(), Value::Object(kept));
                    }
                }
                if !components.is_empty() {
                    out.insert(key.clone(), Value::Object(components));
                }
            }
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

/// `/components/<kind>/<name>` of a pointer inside a component.
fn component_of(pointer: &str) -> Option<String> {
    let mut parts = pointer.strip_prefix("/components/")?.splitn(3, '/');
    let kind = parts.next()?;
    let name = parts.next()?;
    Some(format!("/components/{kind}/{name}"))
}

fn collect_refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push((at.to_owned(), r.clone()));
            }
            for (k, v) in map {
                collect_refs(v, &format!("{at}/{}", esc(k)), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_refs(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Security requirements name schemes without `$ref`: each
/// `security: [{name: [...]}]` under `value` references
/// `#/components/securitySchemes/name`.
fn collect_security_schemes(value: &Value, out: &mut Vec<(String, String)>) {
    let mut requirements = Vec::new();
    find_security(value, "", &mut requirements);
    for (at, list) in requirements {
        for (i, requirement) in list.iter().enumerate() {
            for name in requirement
                .as_object()
                .into_iter()
                .flatten()
                .map(|(n, _)| n)
            {
                out.push((
                    format!("{at}/{i}"),
                    format!("#/components/securitySchemes/{}", esc(name)),
                ));
            }
        }
    }
}

fn find_security<'a>(value: &'a Value, at: &str, out: &mut Vec<(String, &'a Vec<Value>)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}/{}", esc(k));
                if k == "security"
                    && let Value::Array(list) = v
                {
                    out.push((here, list));
                } else {
                    find_security(v, &here, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                find_security(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Compare two fragments.
pub fn compare(old: &Value, new: &Value) -> Report {
    let mut report = Report::default();
    let (old_ops, new_ops) = (operations(old), operations(new));
    report.operations_added = new_ops.difference(&old_ops).cloned().collect();
    report.operations_removed = old_ops.difference(&new_ops).cloned().collect();

    let schemas = |doc: &Value| -> BTreeMap<String, Value> {
        doc.pointer("/components/schemas")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let (old_schemas, new_schemas) = (schemas(old), schemas(new));
    for name in new_schemas.keys() {
        if !old_schemas.contains_key(name) {
            report.schemas_added.push(name.clone());
        }
    }
    for (name, old_schema) in &old_schemas {
        let Some(new_schema) = new_schemas.get(name) else {
            report.schemas_removed.push(name.clone());
            continue;
        };
        let changes = schema_changes(old_schema, new_schema);
        if !changes.is_empty() {
            report.schema_changes.insert(name.clone(), changes);
        }
    }
    // Only texts of operations and components present in both count: the
    // descriptions of an added or removed one come with it, and are already
    // reported as that addition or removal.
    let (old_text, new_text) = (descriptions(old), descriptions(new));
    let keys: BTreeSet<&String> = old_text.keys().chain(new_text.keys()).collect();
    report.descriptions_changed = keys
        .into_iter()
        .filter(|k| old_text.get(*k) != new_text.get(*k))
        .filter(|k| {
            owner(k).is_some_and(|o| old.pointer(&o).is_some() && new.pointer(&o).is_some())
        })
        .count();
    report
}

/// The operation (`/paths/<path>/<method>`), path item or component
/// (`/components/<kind>/<name>`) a pointer lies in.
fn owner(pointer: &str) -> Option<String> {
    let parts: Vec<&str> = pointer.split('/').collect();
    match parts.as_slice() {
        ["", "paths", path, method, ..] if METHODS.contains(method) => {
            Some(format!("/paths/{path}/{method}"))
        }
        ["", "paths", path, ..] => Some(format!("/paths/{path}")),
        ["", "components", kind, name, ..] => Some(format!("/components/{kind}/{name}")),
        _ => None,
    }
}

fn operations(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let id = op.get("operationId").and_then(Value::as_str).unwrap_or("?");
                out.insert(format!("{} {path} ({id})", method.to_uppercase()));
            }
        }
    }
    out
}

/// What a schema says at one property path.
#[derive(Debug, Clone, Default, PartialEq)]
struct Facts {
    types: BTreeSet<String>,
    enum_values: Vec<Value>,
    required: bool,
}

fn flatten(schema: &Value, path: &str, required: bool, out: &mut BTreeMap<String, Facts>) {
    let facts = out.entry(path.to_owned()).or_default();
    facts.required |= required;
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        facts
            .types
            .insert(format!("$ref {}", r.rsplit('/').next().unwrap_or(r)));
    }
    if let Some(t) = schema.get("type") {
        facts.types.insert(match t {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    if schema.get("nullable") == Some(&Value::Bool(true)) {
        facts.types.insert("null".into());
    }
    for combinator in ["oneOf", "anyOf"] {
        if schema.get(combinator).is_some() {
            facts.types.insert(combinator.into());
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        for v in values {
            if !facts.enum_values.contains(v) {
                facts.enum_values.push(v.clone());
            }
        }
    }
    let required_here: BTreeSet<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, child) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let child_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        flatten(
            child,
            &child_path,
            required_here.contains(name.as_str()),
            out,
        );
    }
    // A `required` naming properties defined elsewhere (e.g. in an allOf member).
    for name in &required_here {
        let child_path = if path.is_empty() {
            (*name).to_owned()
        } else {
            format!("{path}.{name}")
        };
        out.entry(child_path).or_default().required = true;
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        for member in schema
            .get(combinator)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            flatten(member, path, false, out);
        }
    }
    if let Some(items) = schema.get("items") {
        flatten(items, &format!("{path}[]"), false, out);
    }
}

fn schema_changes(old: &Value, new: &Value) -> Vec<Change> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten(old, "", false, &mut a);
    flatten(new, "", false, &mut b);
    let shown = |p: &str| {
        if p.is_empty() {
            "(the schema itself)".to_owned()
        } else {
            p.to_owned()
        }
    };
    let mut changes = Vec::new();
    for (path, new_facts) in &b {
        let Some(old_facts) = a.get(path) else {
            changes.push(Change::PropertyAdded { path: shown(path) });
            continue;
        };
        if old_facts.types != new_facts.types {
            changes.push(Change::TypeChanged {
                path: shown(path),
                from: types_text(&old_facts.types),
                to: types_text(&new_facts.types),
            });
        }
        let added: Vec<Value> = new_facts
            .enum_values
            .iter()
            .filter(|v| !old_facts.enum_values.contains(v))
            .cloned()
            .collect();
        if !added.is_empty() {
            changes.push(Change::EnumAdded {
                path: shown(path),
                values: added,
            });
        }
        let removed: Vec<Value> = old_facts
            .enum_values
            .iter()
            .filter(|v| !new_facts.enum_values.contains(v))
            .cloned()
            .collect();
        if !removed.is_empty() {
            changes.push(Change::EnumRemoved {
                path: shown(path),
                values: removed,
            });
        }
        if old_facts.required != new_facts.required {
            changes.push(Change::RequiredChanged {
                path: shown(path),
                required: new_facts.required,
            });
        }
    }
    for path in a.keys() {
        if !b.contains_key(path) {
            changes.push(Change::PropertyRemoved { path: shown(path) });
        }
    }
    changes
}

fn types_text(types: &BTreeSet<String>) -> String {
    if types.is_empty() {
        "(untyped)".into()
    } else {
        types.iter().cloned().collect::<Vec<_>>().join(" | ")
    }
}

/// Every `description` and `summary` string, by pointer.
fn descriptions(doc: &Value) -> BTreeMap<String, String> {
    fn walk(v: &Value, at: &str, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let here = format!("{at}/{}", esc(k));
                    match (k.as_str(), child) {
                        ("description" | "summary", Value::String(s)) => {
                            out.insert(here, s.clone());
                        }
                        _ => walk(child, &here, out),
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for key in ["paths", "components"] {
        if let Some(v) = doc.get(key) {
            walk(v, &format!("/{key}"), &mut out);
        }
    }
    out
}
