//! Server-side apply and `managedFields`: which manager owns which field, conflicts, and the
//! merge of an applied configuration into the live object.
//!
//! Fields are tracked at leaf granularity: map entries recursively, lists of keyed items (see
//! [`patch::merge_key`]) item by item, other lists as one atomic field.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::errors::{ApiError, ApiResult};
use super::patch;
use super::resources::ResourceType;
use super::util;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Elem {
    /// A map field.
    F(String),
    /// A list item, identified by its key fields (compact JSON object).
    K(String),
}

pub type Path = Vec<Elem>;
pub type FieldSet = BTreeSet<Path>;

/// A managedFields entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: FieldSet,
}

const META_SKIP: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The fields set in `obj` (leaves and keyed-item markers). `status` is skipped unless
/// `with_status`; server-owned metadata always is.
pub fn fields_of(obj: &Value, with_status: bool, only_status: bool) -> FieldSet {
    let mut out = FieldSet::new();
    if let Some(m) = obj.as_object() {
        for (k, v) in m {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            if k == "status" && !with_status {
                continue;
            }
            if only_status && k != "status" {
                continue;
            }
            let mut path = vec![Elem::F(k.clone())];
            if k == "metadata" {
                if let Some(meta) = v.as_object() {
                    for (mk, mv) in meta {
                        if META_SKIP.contains(&mk.as_str()) {
                            continue;
                        }
                        path.push(Elem::F(mk.clone()));
                        walk(mv, mk, &mut path, &mut out);
                        path.pop();
                    }
                }
                continue;
            }
            walk(v, k, &mut path, &mut out);
        }
    }
    out
}

fn walk(v: &Value, field: &str, path: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(Elem::F(k.clone()));
                walk(child, k, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            let refs: Vec<&Value> = items.iter().collect();
            match patch::merge_key(field, &refs) {
                Some(key) => {
                    for item in items {
                        let id = key_json(key, item);
                        path.push(Elem::K(id));
                        out.insert(path.clone());
                        if let Some(m) = item.as_object() {
                            for (k, child) in m {
                                path.push(Elem::F(k.clone()));
                                walk(child, k, path, out);
                                path.pop();
                            }
                        }
                        path.pop();
                    }
                }
                None => {
                    out.insert(path.clone());
                }
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

fn key_json(key: &str, item: &Value) -> String {
    let mut m = Map::new();
    m.insert(
        key.to_string(),
        item.get(key).cloned().unwrap_or(Value::Null),
    );
    Value::Object(m).to_string()
}

fn matches_key(item: &Value, id: &str) -> bool {
    match serde_json::from_str::<Value>(id) {
        Ok(Value::Object(k)) => k.iter().all(|(f, v)| item.get(f) == Some(v)),
        _ => false,
    }
}

/// The value at `path`.
pub fn get_path<'a>(v: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, e| match e {
        Elem::F(k) => cur.get(k),
        Elem::K(id) => cur.as_array()?.iter().find(|i| matches_key(i, id)),
    })
}

/// Sets `path` to `value` (a keyed item: makes sure it exists).
fn set_path(target: &mut Value, path: &[Elem], value: Option<&Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = target;
    for (i, e) in parents.iter().enumerate() {
        let next_is_key = matches!(path.get(i + 1), Some(Elem::K(_)));
        cur = match e {
            Elem::F(k) => {
                if !cur.is_object() {
                    *cur = json!({});
                }
                let Some(m) = cur.as_object_mut() else { return };
                let slot = m.entry(k.clone()).or_insert_with(|| {
                    if next_is_key {
                        json!([])
                    } else {
                        json!({})
                    }
                });
                if next_is_key && !slot.is_array() {
                    *slot = json!([]);
                }
                slot
            }
            Elem::K(id) => match ensure_item(cur, id) {
                Some(item) => item,
                None => return,
            },
        };
    }
    match last {
        Elem::F(k) => {
            if !cur.is_object() {
                *cur = json!({});
            }
            let Some(m) = cur.as_object_mut() else { return };
            match value {
                Some(Value::Object(o)) if o.is_empty() => {
                    m.entry(k.clone()).or_insert_with(|| json!({}));
                }
                Some(v) => {
                    m.insert(k.clone(), v.clone());
                }
                None => {}
            }
        }
        Elem::K(id) => {
            let _ = ensure_item(cur, id);
        }
    }
}

fn ensure_item<'a>(list: &'a mut Value, id: &str) -> Option<&'a mut Value> {
    if !list.is_array() {
        *list = json!([]);
    }
    let arr = list.as_array_mut()?;
    let pos = match arr.iter().position(|i| matches_key(i, id)) {
        Some(p) => p,
        None => {
            let seed = serde_json::from_str::<Value>(id).unwrap_or_else(|_| json!({}));
            arr.push(seed);
            arr.len() - 1
        }
    };
    arr.get_mut(pos)
}

fn remove_path(target: &mut Value, path: &[Elem]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = target;
    for e in parents {
        let next = match e {
            Elem::F(k) => cur.get_mut(k),
            Elem::K(id) => cur
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| matches_key(i, id))),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last {
        Elem::F(k) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(k);
            }
        }
        Elem::K(id) => {
            if let Some(a) = cur.as_array_mut() {
                a.retain(|i| !matches_key(i, id));
            }
        }
    }
}

fn is_prefix(a: &[Elem], b: &[Elem]) -> bool {
    a.len() < b.len() && b.starts_with(a)
}

fn overlaps(a: &[Elem], b: &[Elem]) -> bool {
    a == b || is_prefix(a, b) || is_prefix(b, a)
}

fn is_marker(p: &[Elem]) -> bool {
    matches!(p.last(), Some(Elem::K(_)))
}

/// `.spec.replicas`, `.spec.containers[name="x"].image`: how conflicts name fields.
pub fn path_string(p: &[Elem]) -> String {
    let mut s = String::new();
    for e in p {
        match e {
            Elem::F(k) => {
                s.push('.');
                s.push_str(k);
            }
            Elem::K(id) => {
                let inner = match serde_json::from_str::<Value>(id) {
                    Ok(Value::Object(m)) => m
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => id.clone(),
                };
                s.push('[');
                s.push_str(&inner);
                s.push(']');
            }
        }
    }
    s
}

/// Reads `metadata.managedFields`.
pub fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let mut fields = FieldSet::new();
            if let Some(tree) = e.get("fieldsV1") {
                decode(tree, &mut Vec::new(), &mut fields);
            }
            Entry {
                manager: util::str_at(e, "/manager").to_string(),
                operation: util::str_at(e, "/operation").to_string(),
                api_version: util::str_at(e, "/apiVersion").to_string(),
                time: util::str_at(e, "/time").to_string(),
                subresource: util::str_at(e, "/subresource").to_string(),
                fields,
            }
        })
        .collect()
}

fn decode(tree: &Value, path: &mut Path, out: &mut FieldSet) {
    let Some(m) = tree.as_object() else { return };
    if m.is_empty() && !path.is_empty() {
        out.insert(path.clone());
        return;
    }
    for (k, child) in m {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        let elem = if let Some(f) = k.strip_prefix("f:") {
            Elem::F(f.to_string())
        } else if let Some(id) = k.strip_prefix("k:") {
            Elem::K(id.to_string())
        } else {
            continue;
        };
        path.push(elem);
        decode(child, path, out);
        path.pop();
    }
}

fn encode(fields: &FieldSet) -> Value {
    let mut root = Map::new();
    for p in fields {
        insert_path(&mut root, p, is_marker(p));
    }
    Value::Object(root)
}

fn insert_path(node: &mut Map<String, Value>, path: &[Elem], marker: bool) {
    let Some((first, rest)) = path.split_first() else {
        if marker {
            node.insert(".".into(), json!({}));
        }
        return;
    };
    let k = match first {
        Elem::F(f) => format!("f:{f}"),
        Elem::K(id) => format!("k:{id}"),
    };
    let slot = node.entry(k).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    if let Some(child) = slot.as_object_mut() {
        insert_path(child, rest, marker);
    }
}

/// Writes `entries` into `metadata.managedFields` (removing empty ones).
pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": encode(&e.fields),
            });
            if !e.subresource.is_empty() {
                if let Some(m) = v.as_object_mut() {
                    m.insert("subresource".into(), json!(e.subresource));
                }
            }
            v
        })
        .collect();
    if let Some(meta) = util::metadata_mut(obj) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Records a non-apply write (create, update, patch) by `manager`: the fields it changed
/// become its own and leave other managers.
pub fn record_update(
    rt: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
) {
    let only_status = subresource == "status";
    let with_status = only_status || !rt.has("status");
    let new_fields = fields_of(new, with_status, only_status);
    let old_fields = old
        .map(|o| fields_of(o, with_status, only_status))
        .unwrap_or_default();
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| match old {
            Some(o) => {
                is_marker(p) && !old_fields.contains(*p) || get_path(o, p) != get_path(new, p)
            }
            None => true,
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_fields.difference(&new_fields).cloned().collect();
    let mut entries = old.map(read_entries).unwrap_or_default();
    if changed.is_empty() && removed.is_empty() {
        write_entries(new, &entries);
        return;
    }
    for e in entries.iter_mut() {
        e.fields
            .retain(|q| !removed.contains(q) && !changed.iter().any(|p| q == p || is_prefix(q, p)));
    }
    let now = util::now();
    let api_version = rt.api_version();
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == subresource)
    {
        Some(e) => {
            e.fields.extend(changed);
            e.time = now;
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version,
            time: now,
            subresource: subresource.to_string(),
            fields: changed,
        }),
    }
    write_entries(new, &entries);
}

/// The result of a server-side apply.
pub struct Applied {
    pub object: Value,
}

/// Server-side apply of `applied` onto `live` (None: the object does not exist yet) by
/// `manager`. Conflicts (another manager owns a field whose value would change) give 409
/// unless `force`, in which case ownership moves to `manager`.
pub fn apply(
    rt: &ResourceType,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: &str,
) -> ApiResult<Applied> {
    let only_status = subresource == "status";
    let with_status = only_status || !rt.has("status");
    let applied_fields = fields_of(applied, with_status, only_status);
    let base = live.cloned().unwrap_or_else(|| {
        json!({"metadata": {
            "name": util::str_at(applied, "/metadata/name"),
            "namespace": util::str_at(applied, "/metadata/namespace"),
        }})
    });
    let mut entries = read_entries(&base);
    let mine_idx = entries.iter().position(|e| {
        e.manager == manager && e.operation == "Apply" && e.subresource == subresource
    });
    let mine_old: FieldSet = mine_idx
        .and_then(|i| entries.get(i))
        .map(|e| e.fields.clone())
        .unwrap_or_default();

    // Conflicts: another manager owns an overlapping field whose value would change.
    let mut conflicts: BTreeMap<(String, String), Vec<Path>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == mine_idx {
            continue;
        }
        for p in applied_fields.iter().filter(|p| !is_marker(p)) {
            if !e.fields.iter().any(|q| !is_marker(q) && overlaps(p, q)) {
                continue;
            }
            if get_path(&base, p) != get_path(applied, p) {
                conflicts
                    .entry((e.manager.clone(), e.api_version.clone()))
                    .or_default()
                    .push(p.clone());
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let count: usize = conflicts.values().map(Vec::len).sum();
        let mut lines = Vec::new();
        let mut causes = Vec::new();
        for ((mgr, api_version), paths) in &conflicts {
            for p in paths {
                let field = path_string(p);
                lines.push(format!(
                    "conflict with \"{mgr}\" using {api_version}: {field}"
                ));
                causes.push(json!({
                    "type": "FieldManagerConflict",
                    "message": format!("conflict with \"{mgr}\" using {api_version}"),
                    "field": field,
                }));
            }
        }
        let noun = if count == 1 { "conflict" } else { "conflicts" };
        let message = if lines.len() == 1 {
            format!("Apply failed with 1 conflict: {}", lines[0])
        } else {
            format!("Apply failed with {count} {noun}: {}", lines.join("\n"))
        };
        let mut err = ApiError::new(409, "Conflict", message);
        err.details = Some(json!({
            "name": util::str_at(applied, "/metadata/name"),
            "group": rt.group,
            "kind": rt.plural,
            "causes": causes,
        }));
        return Err(err);
    }

    let mut object = base.clone();
    // Fields this manager applied before and no longer applies: removed unless co-owned.
    for p in mine_old.difference(&applied_fields) {
        let co_owned = entries
            .iter()
            .enumerate()
            .any(|(i, e)| Some(i) != mine_idx && e.fields.iter().any(|q| overlaps(p, q)));
        if !co_owned {
            remove_path(&mut object, p);
        }
    }
    for p in &applied_fields {
        set_path(&mut object, p, get_path(applied, p));
    }

    // Ownership: this manager owns what it applied; forced fields leave the others.
    if force {
        for (i, e) in entries.iter_mut().enumerate() {
            if Some(i) == mine_idx {
                continue;
            }
            if let Some(lost) = conflicts.get(&(e.manager.clone(), e.api_version.clone())) {
                e.fields.retain(|q| !lost.iter().any(|p| overlaps(p, q)));
            }
        }
    }
    let now = util::now();
    match mine_idx.and_then(|i| entries.get_mut(i)) {
        Some(e) => {
            e.fields = applied_fields;
            e.time = now;
            e.api_version = rt.api_version();
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: rt.api_version(),
            time: now,
            subresource: subresource.to_string(),
            fields: applied_fields,
        }),
    }
    write_entries(&mut object, &entries);
    Ok(Applied { object })
}
