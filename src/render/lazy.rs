//! Template values over the JSON the context module builds, converted only where a template looks
//! inside. Most of a context goes whole to the `yaml` filter, which lays the JSON out directly
//! (issue 24: converting every context into template values, and dropping them again, was about a
//! fifth of a 1000-model re-render).

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use serde_json::Value as Json;

/// `json` as a template value: a scalar as itself, a mapping or list as a [`JsonNode`].
pub fn value(json: Json) -> Value {
    let root = Arc::new(json);
    node_or_scalar(&root, Vec::new, &root)
}

/// A mapping or list inside a JSON document, by its path from the document's root (the document
/// is shared, never copied).
#[derive(Debug)]
pub struct JsonNode {
    root: Arc<Json>,
    path: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonNode {
    /// The JSON this node stands for.
    pub fn json(&self) -> &Json {
        static NULL: Json = Json::Null;
        let mut at = &*self.root;
        for step in &self.path {
            // The document never changes: every step was taken from it.
            at = match (step, at) {
                (Step::Key(k), Json::Object(m)) => m.get(k).unwrap_or(&NULL),
                (Step::Index(i), Json::Array(a)) => a.get(*i).unwrap_or(&NULL),
                _ => &NULL,
            };
        }
        at
    }

    fn child(&self, step: impl FnOnce() -> Step, json: &Json) -> Value {
        node_or_scalar(
            &self.root,
            || [self.path.as_slice(), &[step()]].concat(),
            json,
        )
    }
}

/// A scalar as the template value serde would make of it; a mapping or list as a node at the
/// path `path` makes (only then).
fn node_or_scalar(root: &Arc<Json>, path: impl FnOnce() -> Vec<Step>, json: &Json) -> Value {
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Object(_) | Json::Array(_) => Value::from_object(JsonNode {
            root: root.clone(),
            path: path(),
        }),
    }
}

impl Object for JsonNode {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.json() {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.json() {
            Json::Object(_) => self.get_value_by_str(key.as_str()?),
            Json::Array(a) => {
                let i = key.as_usize()?;
                Some(self.child(|| Step::Index(i), a.get(i)?))
            }
            _ => None,
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let Json::Object(m) = self.json() else {
            return None;
        };
        Some(self.child(|| Step::Key(key.to_string()), m.get(key)?))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.json() {
            Json::Object(m) => {
                Enumerator::Values(m.keys().map(|k| Value::from(k.as_str())).collect())
            }
            Json::Array(a) => Enumerator::Seq(a.len()),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match self.json() {
            Json::Object(m) => Some(m.len()),
            Json::Array(a) => Some(a.len()),
            _ => Some(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A template sees the same through a node as through the converted values: attributes,
    /// indexing, iteration, length, truthiness, none, tests and filters.
    #[test]
    fn templates_see_a_node_as_they_see_converted_values() {
        let json = serde_json::json!({
            "name": "m", "n": 3, "neg": -2, "f": 1.5, "t": true, "z": null, "empty": {},
            "list": [{"a": 1}, {"a": 2}], "none": [], "map": {"k": "v", "j": "w"},
        });
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let src = "{{ x.name }} {{ x.n + x.neg }} {{ x.f }} {{ x.t }} {{ x.z is none }} \
            {{ x.list[1].a }} {% for i in x.list %}{{ i.a }}{% endfor %} {{ x.list | length }} \
            {{ x.map | length }} {% for k in x.map %}{{ k }}={{ x.map[k] }};{% endfor %} \
            {{ x.map | items | list }} {{ x.map | dictsort }} {{ x.empty is mapping }} {{ x.list is sequence }} \
            {% if x.none %}full{% else %}empty{% endif %} {% if x.map %}full{% endif %} \
            {{ x.map }} {{ x.list }} {{ [x.n, 5] | max }} {{ x.list | map(attribute='a') | sum }} \
            {{ x.list[-1].a }} {{ x.list[1:] }} {{ x | tojson }} {{ x.map == x.map }}";
        let t = env.template_from_str(src).unwrap();
        let lazy = t
            .render(minijinja::context! { x => value(json.clone()) })
            .unwrap();
        let converted = t.render(minijinja::context! { x => Value::from_serialize(&json) });
        assert_eq!(lazy, converted.unwrap());
        assert!(
            lazy.starts_with("m 1 1.5 True True 2 12 2 2 k=v;j=w;"),
            "{lazy}"
        );
        let missing = env.template_from_str("{{ x.nope }}").unwrap();
        assert!(missing
            .render(minijinja::context! { x => value(json) })
            .is_err());
    }
}
