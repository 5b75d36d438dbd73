//! Every shape error of a config.yaml at once. serde stops at the first wrong key or type
//! (`replicas: x` hid `gpus: -1`, issue 19 Low 8); once the typed load failed, this second pass
//! reads the text as plain YAML and deserializes the top-level settings and each model on its own,
//! dropping each bad field and trying again, so one run reports every wrong field of every model.
//! The diagnostics name fields by path; their line and column are found from the text when they
//! are printed ([`crate::diag::Diagnostic::located`]).

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::{EnvConfig, Model};
use crate::diag::{yaml_diagnostic, Diagnostic};

/// At most this many errors per part (the top-level settings, one model): a bound, not a limit
/// anyone meets.
const MAX_PER_PART: usize = 64;

/// The shape errors of `text` after the first one (`first`, from the typed load), in order: the
/// top-level settings, then each model. Empty when the text is not YAML (a syntax error is one).
pub fn more_errors(text: &str, file: &Path, first: &Diagnostic) -> Vec<Diagnostic> {
    let Ok(Value::Mapping(mut top)) = serde_yaml::from_str::<Value>(text) else {
        return Vec::new();
    };
    let models = match top.get_mut("models") {
        Some(v @ Value::Sequence(_)) => std::mem::replace(v, Value::Sequence(Vec::new())),
        _ => Value::Sequence(Vec::new()),
    };
    let mut out = errors_of::<EnvConfig>(Value::Mapping(top), "", file);
    if let Value::Sequence(items) = models {
        for (i, item) in items.into_iter().enumerate() {
            out.extend(errors_of::<Model>(item, &format!("models[{i}]"), file));
        }
    }
    out.retain(|d| !(d.field == first.field && d.message == first.message));
    out
}

/// Deserialize `value` as `T` again and again, dropping the field each error names, until it
/// deserializes or an error names no field that can be dropped. `prefix` is the field path of
/// `value` in the file (`models[3]`).
fn errors_of<T: DeserializeOwned>(mut value: Value, prefix: &str, file: &Path) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    for _ in 0..MAX_PER_PART {
        let Ok(text) = serde_yaml::to_string(&value) else {
            break;
        };
        let Err(e) = serde_yaml::from_str::<T>(&text) else {
            break;
        };
        let d = yaml_diagnostic(&e, file);
        let at = d.field.clone().unwrap_or_default();
        let missing = quoted(&d.message, "missing field `").map(|name| join(&at, name));
        let drop = match &missing {
            // A required field this pass dropped: the mapping holding it goes too (its other
            // fields were read already: serde names a missing field at the mapping's end).
            Some(m) if dropped.contains(m) => {
                if at.is_empty() {
                    break;
                }
                at.clone()
            }
            _ => {
                let unknown = quoted(&d.message, "unknown field `").map(|name| join(&at, name));
                out.push(relocated(d, prefix, unknown.as_deref()));
                match unknown {
                    Some(u) => u,
                    None if at.is_empty() => break,
                    // A wrong value, or a missing field in a nested mapping (the mapping goes).
                    None => at,
                }
            }
        };
        if !remove(&mut value, &drop) {
            break;
        }
        dropped.push(drop);
    }
    out
}

/// A diagnostic of a part re-read on its own: its path in the whole file, and no line or column
/// (they were the part's; the field's place in the file is found when it is printed). An unknown
/// key is pointed at itself.
fn relocated(mut d: Diagnostic, prefix: &str, unknown: Option<&str>) -> Diagnostic {
    d.line = None;
    d.column = None;
    let field = join(prefix, d.field.as_deref().unwrap_or_default());
    d.field = (!field.is_empty()).then_some(field);
    if let Some(u) = unknown {
        d.pointer = Some(join(prefix, u));
    }
    d
}

/// `a.b` (or `a[0]`, or either alone).
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ if b.starts_with('[') => format!("{a}{b}"),
        _ => format!("{a}.{b}"),
    }
}

/// The name in backquotes after `lead` in `message`.
fn quoted<'m>(message: &'m str, lead: &str) -> Option<&'m str> {
    let rest = &message[message.find(lead)? + lead.len()..];
    rest.split('`').next()
}

/// Remove the field at `path` (`resources.limits.cpu`, `args[2]`) from `value`: the key itself,
/// or, below a list item (removing it would renumber the others), the key holding the list.
/// Keys may hold dots (`nvidia.com/gpu`): the longest key that fits is taken.
fn remove(value: &mut Value, path: &str) -> bool {
    match value {
        Value::Mapping(m) => {
            let key = m
                .keys()
                .filter_map(Value::as_str)
                .filter(|k| {
                    path.strip_prefix(*k)
                        .is_some_and(|r| r.is_empty() || r.starts_with(['.', '[']))
                })
                .max_by_key(|k| k.len())
                .map(str::to_string);
            let Some(key) = key else {
                return false;
            };
            let rest = &path[key.len()..];
            let rest = rest.strip_prefix('.').unwrap_or(rest);
            let deeper =
                !rest.is_empty() && m.get_mut(key.as_str()).is_some_and(|c| remove(c, rest));
            if !deeper {
                m.shift_remove(key.as_str());
            }
            true
        }
        Value::Sequence(items) => {
            let Some((index, rest)) = path.strip_prefix('[').and_then(|p| p.split_once(']')) else {
                return false;
            };
            let rest = rest.strip_prefix('.').unwrap_or(rest);
            match (index.parse::<usize>().ok(), rest.is_empty()) {
                (Some(i), false) => items.get_mut(i).is_some_and(|c| remove(c, rest)),
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        let file = Path::new("c.yaml");
        let first = match serde_yaml::from_str::<EnvConfig>(text) {
            Ok(_) => return Vec::new(),
            Err(e) => yaml_diagnostic(&e, file),
        };
        std::iter::once(first.clone())
            .chain(more_errors(text, file, &first))
            .map(|d| format!("{}: {}", d.field.unwrap_or_default(), d.message))
            .collect()
    }

    const MODEL: &str = "layer: kserve, source: hf://a/b, preset: p";

    #[test]
    fn every_bad_field_of_every_model_is_reported() {
        let text = format!(
            "cluster: {{name: a}}\nmodels:\n- {{name: m, {MODEL}, replicas: x, gpus: -1}}\n- {{name: n, {MODEL}, foo: 1, resources: {{limits: {{nvidia.com/gpu: z, cpu: 2}}}}}}\n"
        );
        let got = all(&text);
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(
            got[0].starts_with("models[0].replicas: invalid type"),
            "{got:#?}"
        );
        assert!(
            got[1].starts_with("models[0].gpus: invalid type: integer `-1`"),
            "{got:#?}"
        );
        assert!(
            got[2].starts_with("models[1]: unknown field `foo`"),
            "{got:#?}"
        );
        assert!(
            // The quantity's own key (an untagged enum named only the map it was in).
            got[3].starts_with(
                "models[1].resources.limits.nvidia.com/gpu: `z` is not a Kubernetes quantity"
            ),
            "{got:#?}"
        );
    }

    #[test]
    fn top_level_errors_and_a_dropped_required_field_do_not_hide_the_rest() {
        let text = "cluster: {name: [a], kubeconfig: [3]}\nfeaturs: {}\nfeatures: {kserve: yes, llm-d: 1}\nmodels:\n- {name: m, layer: kserv, source: hf://a/b, preset: p, args: [a, {b: 1}], replicas: -2}\n";
        let got = all(text);
        let fields: Vec<&str> = got.iter().map(|g| g.split(": ").next().unwrap()).collect();
        assert_eq!(
            fields,
            [
                "cluster.name",
                "cluster.kubeconfig",
                "",
                "features.kserve",
                "features.llm-d",
                "models[0].layer",
                "models[0].args[1]",
                "models[0].replicas"
            ],
            "{got:#?}"
        );
    }

    #[test]
    fn a_dotted_key_is_removed_whole_and_a_list_item_by_its_list() {
        let mut v: Value =
            serde_yaml::from_str("l: {nvidia.com/gpu: 1, nvidia: {com: 2}}\nargs: [a, b]\nk: 1\n")
                .unwrap();
        assert!(remove(&mut v, "l.nvidia.com/gpu"));
        assert!(remove(&mut v, "args[1]"));
        assert!(!remove(&mut v, "nothere"));
        assert_eq!(
            serde_yaml::to_string(&v).unwrap(),
            "l:\n  nvidia:\n    com: 2\nk: 1\n"
        );
    }

    #[test]
    fn a_missing_field_in_a_nested_mapping_hides_nothing_after_it() {
        let got = all("cluster: {kubeconfig: k}\nfeatures: {kserve: 1}\n");
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].starts_with("cluster: missing field `name`"),
            "{got:#?}"
        );
        assert!(
            got[1].starts_with("features.kserve: invalid type"),
            "{got:#?}"
        );
    }

    #[test]
    fn a_syntax_error_is_one_error() {
        assert_eq!(all("cluster: [a\n").len(), 1);
        assert_eq!(all("cluster: {name: a}\nmodels: 3\n").len(), 1);
    }
}
