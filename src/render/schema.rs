//! Validation of rendered custom resources against upstream CRD JSON Schemas
//! (`<group>/<kind>_<version>.json`, as in the schemas folder CI has beside the checkout).
//! Like the API server with strict field validation, a field absent from the schema is an error: every
//! object schema that lists `properties` and neither allows additional properties nor preserves
//! unknown fields is closed before validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::check::RenderedObject;
use crate::diag::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("schema folder {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read schema {path}: {message}")]
    Read { path: PathBuf, message: String },
}

pub struct SchemaSet {
    dir: PathBuf,
    validators: BTreeMap<(String, String), jsonschema::Validator>,
}

impl SchemaSet {
    pub fn load(dir: &Path) -> Result<SchemaSet, SchemaError> {
        if !dir.is_dir() {
            return Err(SchemaError::Missing(dir.to_path_buf()));
        }
        Ok(SchemaSet {
            dir: dir.to_path_buf(),
            validators: BTreeMap::new(),
        })
    }

    /// The schema file for an object's apiVersion/kind, when it is a group the folder covers.
    pub fn path_for(&self, api_version: &str, kind: &str) -> Option<PathBuf> {
        let (group, version) = api_version.split_once('/')?;
        let p = self
            .dir
            .join(group)
            .join(format!("{}_{version}.json", kind.to_lowercase()));
        p.is_file().then_some(p)
    }

    /// Whether the folder has any schema of this API group.
    fn covers_group(&self, api_version: &str) -> bool {
        api_version
            .split_once('/')
            .is_some_and(|(g, _)| self.dir.join(g).is_dir())
    }

    fn validator(
        &mut self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<&jsonschema::Validator>, SchemaError> {
        let key = (api_version.to_string(), kind.to_string());
        if !self.validators.contains_key(&key) {
            let Some(path) = self.path_for(api_version, kind) else {
                return Ok(None);
            };
            let text = std::fs::read_to_string(&path).map_err(|e| SchemaError::Read {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let mut schema: Value = serde_json::from_str(&text).map_err(|e| SchemaError::Read {
                path: path.clone(),
                message: e.to_string(),
            })?;
            close_objects(&mut schema);
            let v = jsonschema::validator_for(&schema).map_err(|e| SchemaError::Read {
                path: path.clone(),
                message: e.to_string(),
            })?;
            self.validators.insert(key.clone(), v);
        }
        Ok(self.validators.get(&key))
    }

    /// Validate every object whose API group the folder covers; one diagnostic per violation.
    pub fn validate(&mut self, objs: &[RenderedObject]) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for o in objs {
            let covered = self.covers_group(&o.api_version);
            let at = |msg: String| {
                Diagnostic::error(msg)
                    .file(&o.path)
                    .field(format!("{} {}", o.kind, o.name))
            };
            match self.validator(&o.api_version, &o.kind) {
                Err(e) => out.push(at(e.to_string())),
                Ok(None) if covered => out.push(at(format!(
                    "no schema for {} {} in {}: the version is not served upstream",
                    o.api_version,
                    o.kind,
                    self.dir.display()
                ))),
                Ok(None) => {}
                Ok(Some(v)) => {
                    for err in v.iter_errors(&o.value) {
                        let path = err.instance_path().to_string();
                        out.push(at(format!("{}: {err}", if path.is_empty() { "/".into() } else { path }))
                            .help("the upstream CRD schema rejects this (or the API server would prune it)"));
                    }
                }
            }
        }
        out
    }
}

/// Close every object schema that lists properties (the API server prunes unknown fields there).
pub fn close_objects(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let preserves = m
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            if m.contains_key("properties") && !m.contains_key("additionalProperties") && !preserves
            {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            for child in m.values_mut() {
                close_objects(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(close_objects),
        _ => {}
    }
}
