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
    /// A schema file that is not a readable regular text file of bounded size (names the path).
    #[error("cannot read a schema: {0}")]
    Input(crate::fsread::ReadError),
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
        // Anything at that path (a FIFO, a device, a dangling link) is read and refused by name,
        // not mistaken for a missing schema.
        std::fs::symlink_metadata(&p).is_ok().then_some(p)
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
            let text = crate::fsread::read_text(&path, crate::fsread::MAX_INPUT_BYTES, "schema")
                .map_err(SchemaError::Input)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_that_is_not_a_regular_file_is_reported_by_name_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("argoproj.io")).unwrap();
        let app = dir.path().join("argoproj.io/application_v1alpha1.json");
        std::os::unix::fs::symlink("/dev/zero", &app).unwrap();
        let project = dir.path().join("argoproj.io/appproject_v1alpha1.json");
        let c = std::ffi::CString::new(project.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path that lives across the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let obj = |kind: &str| RenderedObject {
            path: "clusters/e/project.yaml".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: kind.into(),
            name: "a".into(),
            value: serde_json::json!({}),
        };
        let mut set = SchemaSet::load(dir.path()).unwrap();
        let d = set.validate(&[obj("Application"), obj("AppProject")]);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d[0].message
                .contains("application_v1alpha1.json: is a character device"),
            "{}",
            d[0]
        );
        assert!(
            d[1].message.contains("appproject_v1alpha1.json: is a FIFO"),
            "{}",
            d[1]
        );
    }
}
