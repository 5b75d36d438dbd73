//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and an approximation of
//! strategic merge patch (merge patch where lists of keyed items merge by key).

use serde_json::{Map, Value};

use super::errors::{ApiError, ApiResult};

/// The patch flavours, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Parses a JSON body (400 BadRequest when it isn't JSON).
pub fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))
}

/// Parses a YAML (or JSON) body.
pub fn parse_yaml(body: &[u8]) -> ApiResult<Value> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    serde_yaml::from_slice::<Value>(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

/// Applies a merge, JSON or strategic patch to `target`.
pub fn apply_patch(kind: PatchKind, target: &Value, body: &[u8]) -> ApiResult<Value> {
    let mut out = target.clone();
    match kind {
        PatchKind::Merge => {
            let p = parse_json(body)?;
            if !p.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut out, &p);
        }
        PatchKind::Json => {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut out, &p)
                .map_err(|e| ApiError::unprocessable(format!("the JSON patch failed: {e}")))?;
        }
        PatchKind::Strategic => {
            let p = parse_json(body)?;
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            strategic_merge(&mut out, &p, "");
        }
        PatchKind::Apply => {
            return Err(ApiError::internal("apply patches go through apply::apply"));
        }
    }
    Ok(out)
}

/// The key that identifies items of the list `field` (None: the list is atomic).
pub fn merge_key(field: &str, items: &[&Value]) -> Option<&'static str> {
    if items.is_empty() || !items.iter().all(|i| i.is_object()) {
        return None;
    }
    let all_have = |k: &str| items.iter().all(|i| i.get(k).is_some_and(|v| !v.is_null()));
    let unique = |k: &str| {
        let mut seen: Vec<&Value> = Vec::new();
        items.iter().all(|i| match i.get(k) {
            Some(v) if !seen.contains(&v) => {
                seen.push(v);
                true
            }
            _ => false,
        })
    };
    let candidate = match field {
        "volumeMounts" => "mountPath",
        "conditions" => "type",
        "ports" if !all_have("name") => {
            if all_have("containerPort") {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => "name",
    };
    (all_have(candidate) && unique(candidate)).then_some(candidate)
}

/// Strategic merge: maps merge recursively, `null` deletes, lists of keyed items (by
/// [`merge_key`]) merge item by item; `$patch: delete|replace` directives are honoured.
pub fn strategic_merge(target: &mut Value, patch: &Value, field: &str) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut replaced = p.clone();
                replaced.remove("$patch");
                *t = replaced;
                return;
            }
            for (k, v) in p {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    t.remove(k);
                    continue;
                }
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        strategic_merge(existing, v, k)
                    }
                    Some(existing) if existing.is_array() && v.is_array() => {
                        merge_lists(existing, v, k)
                    }
                    _ => {
                        let mut fresh = v.clone();
                        strip_directives(&mut fresh);
                        t.insert(k.clone(), fresh);
                    }
                }
            }
        }
        _ => {
            let _ = field;
            let mut fresh = patch.clone();
            strip_directives(&mut fresh);
            *target = fresh;
        }
    }
}

fn merge_lists(target: &mut Value, patch: &Value, field: &str) {
    let (Some(t), Some(p)) = (target.as_array_mut(), patch.as_array()) else {
        return;
    };
    if p.iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *t = p
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return;
    }
    let all: Vec<&Value> = t
        .iter()
        .chain(p.iter().filter(|i| i.get("$patch").is_none()))
        .collect();
    let key = merge_key(field, &all).or_else(|| {
        // Items that only carry a delete directive still name their key.
        let patch_items: Vec<&Value> = p.iter().collect();
        merge_key(field, &patch_items)
    });
    let Some(key) = key else {
        let mut fresh = patch.clone();
        strip_directives(&mut fresh);
        *target = fresh;
        return;
    };
    for item in p {
        let id = item.get(key);
        let pos = t.iter().position(|x| x.get(key) == id);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                t.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut t[i], item, field),
            (None, false) => {
                let mut fresh = item.clone();
                strip_directives(&mut fresh);
                t.push(fresh);
            }
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// A map with only the given keys of `m` (helper for Scale and status views).
pub fn pick(m: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| m.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}
