//! `platform model add|remove`: edit `environments/<env>/config.yaml` in place (comments and
//! layout kept: [`crate::config::edit`]), validate the result exactly as `platform lint` does, and
//! only then write it (atomically). On any error nothing is written.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::edit::{self, EditError, NewValue};
pub mod error;

pub use error::ModelEditError;

use crate::diag::{Diagnostic, Diagnostics};
use crate::lint::{lint, LintOptions};
use crate::report::Reporter;

/// A model to add: the fields written, in this order, after `name:`.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    pub name: String,
    pub source: String,
    pub layer: String,
    pub runtime: Option<String>,
    /// Default: `<runtime>-gpu` with GPUs, else `<runtime>-cpu` (catalog/presets.yaml).
    pub preset: Option<String>,
    pub gpus: Option<u32>,
    pub served_name: Option<String>,
    pub revision: Option<String>,
    pub replicas: Option<u32>,
    pub max_model_len: Option<u32>,
    /// `resources.requests.cpu` / `.memory`.
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

impl AddOptions {
    /// The entry's fields after `name:`.
    pub fn fields(&self) -> Vec<(String, NewValue)> {
        let s = |v: &str| NewValue::Str(v.to_string());
        let mut f = vec![
            ("layer".to_string(), s(&self.layer)),
            ("source".to_string(), s(&self.source)),
        ];
        if let Some(r) = &self.runtime {
            f.push(("runtime".into(), s(r)));
        }
        if let Some(r) = &self.revision {
            f.push(("revision".into(), s(r)));
        }
        if let Some(n) = &self.served_name {
            f.push(("servedName".into(), s(n)));
        }
        let runtime = self.runtime.as_deref().unwrap_or("vllm");
        let gpus = self.gpus.unwrap_or(0);
        let preset = match &self.preset {
            Some(p) => p.clone(),
            None if gpus > 0 => format!("{runtime}-gpu"),
            None => format!("{runtime}-cpu"),
        };
        f.push(("preset".into(), NewValue::Str(preset)));
        if let Some(g) = self.gpus {
            f.push(("gpus".into(), NewValue::Num(g.into())));
        }
        if let Some(r) = self.replicas {
            f.push(("replicas".into(), NewValue::Num(r.into())));
        }
        if let Some(m) = self.max_model_len {
            f.push(("maxModelLen".into(), NewValue::Num(m.into())));
        }
        let mut requests = Vec::new();
        if let Some(c) = &self.cpu {
            requests.push(("cpu".to_string(), s(c)));
        }
        if let Some(m) = &self.memory {
            requests.push(("memory".to_string(), s(m)));
        }
        if !requests.is_empty() {
            f.push((
                "resources".into(),
                NewValue::Map(vec![("requests".into(), NewValue::Map(requests))]),
            ));
        }
        f
    }
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub model: String,
    /// `added` or `removed`.
    pub action: &'static str,
    /// The config file, repo-relative.
    pub file: String,
    /// The models of the config after the edit.
    pub models: Vec<String>,
    /// Lint's warnings about the model (nothing stops on them).
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
}

/// Add a model entry (see the module docs).
pub fn add(
    repo: &Path,
    env: &str,
    opts: &AddOptions,
    reporter: &dyn Reporter,
) -> Result<Outcome, ModelEditError> {
    let name = opts.name.clone();
    let fields = opts.fields();
    change(repo, env, &name, "added", reporter, |text| {
        edit::add_model(text, &name, &fields)
    })
}

/// Remove a model entry (see the module docs). An unknown name is refused with the list.
pub fn remove(
    repo: &Path,
    env: &str,
    name: &str,
    reporter: &dyn Reporter,
) -> Result<Outcome, ModelEditError> {
    change(repo, env, name, "removed", reporter, |text| {
        edit::remove_model(text, name)
    })
}

/// The model names of a config text (unparsable: none).
fn names_of(text: &str) -> Vec<String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).unwrap_or_default();
    doc.get("models")
        .and_then(serde_yaml::Value::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(|m| m.get("name")?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn change(
    repo: &Path,
    env: &str,
    model: &str,
    action: &'static str,
    reporter: &dyn Reporter,
    edit: impl Fn(&str) -> Result<String, EditError>,
) -> Result<Outcome, ModelEditError> {
    let _lock = crate::gitops::lock_tree(repo, env, "model")?;
    let path = crate::config::config_path(repo, env);
    let rel = crate::config::config_rel_path(env);
    let text = crate::fsread::read_text(&path, crate::fsread::MAX_INPUT_BYTES, "config file")
        .map_err(|e| ModelEditError::Read {
            path: PathBuf::from(&rel),
            reason: e.reason(),
        })?;
    let before = names_of(&text);
    if action == "removed" && !before.iter().any(|n| n == model) {
        let hint = crate::diag::did_you_mean(model, before.iter().map(String::as_str))
            .map(|s| format!(": did you mean `{s}`?"))
            .unwrap_or_else(|| ": check the name".into());
        return Err(ModelEditError::Unknown {
            model: model.to_string(),
            path: rel,
            names: if before.is_empty() {
                "none".into()
            } else {
                before.join(", ")
            },
            hint,
        });
    }
    let new = edit(&text).map_err(|source| ModelEditError::Edit {
        path: rel.clone(),
        source,
    })?;
    // Exactly lint's checks, on the text about to be written.
    let report = lint(
        &LintOptions {
            repo,
            env,
            profile: None,
            schemas: None,
            config_text: Some(&new),
        },
        &|c| crate::pipeline::defaults_from_git(repo, c, reporter),
    );
    let (errors, warnings): (Vec<_>, Vec<_>) = report
        .diagnostics
        .into_iter()
        .partition(Diagnostic::is_error);
    if !errors.is_empty() {
        return Err(ModelEditError::Invalid(Diagnostics(errors)));
    }
    let mine = format!("models[{model}]");
    let warnings = warnings
        .into_iter()
        .filter(|d| d.field.as_deref().is_some_and(|f| f.starts_with(&mine)))
        .collect();
    write_atomic(&path, &new)?;
    Ok(Outcome {
        model: model.to_string(),
        action,
        file: rel,
        models: names_of(&new),
        warnings,
    })
}

/// Write through a temporary file beside `path` (its permissions kept), renamed over it.
fn write_atomic(path: &Path, text: &str) -> Result<(), ModelEditError> {
    let fail = |source| ModelEditError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(fail)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(fail)?;
    }
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
