//! `environments/<env>/config.yaml`: typed load with file:line:column errors, then semantic checks.

mod quantity;
mod types;
pub mod validate;

use std::path::{Path, PathBuf};

pub use quantity::Quantity;
pub use types::*;

use crate::consts;
use crate::diag::{did_you_mean, display_path, yaml_diagnostic, Diagnostic, Diagnostics};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A single problem that stops loading (missing file, YAML syntax, wrong type, unknown key).
    #[error("{0}")]
    Input(Box<Diagnostic>),
    /// Semantic problems found after the file parsed.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Path of an environment's config file under `repo`.
pub fn config_path(repo: &Path, env: &str) -> PathBuf {
    repo.join(consts::ENVIRONMENTS_DIR)
        .join(env)
        .join(consts::CONFIG_FILE)
}

/// Environments present under `repo/environments/` (folders holding a config.yaml), sorted.
pub fn list_envs(repo: &Path) -> Vec<String> {
    let mut envs: Vec<String> = std::fs::read_dir(repo.join(consts::ENVIRONMENTS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(consts::CONFIG_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    envs.sort();
    envs
}

/// Read and parse `environments/<env>/config.yaml` (shape only; see [`validate`] for semantics).
pub fn load(repo: &Path, env: &str) -> Result<(PathBuf, EnvConfig), ConfigError> {
    let path = config_path(repo, env);
    let rel = display_path(repo, &path);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let envs = list_envs(repo);
            let mut d = Diagnostic::error(format!("environment `{env}` not found")).file(&rel);
            d = match did_you_mean(env, envs.iter().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `--env {s}`?")),
                None if envs.is_empty() => d.help(format!(
                    "no environments under {}/ in {} (pass --repo DIR to point at the GitOps repository)",
                    consts::ENVIRONMENTS_DIR,
                    repo.display()
                )),
                None => d.help(format!("available environments: {}", envs.join(", "))),
            };
            return Err(ConfigError::Input(Box::new(d)));
        }
        Err(e) => {
            return Err(ConfigError::Input(Box::new(
                Diagnostic::error(format!("cannot read the file: {e}")).file(&rel),
            )))
        }
    };
    let cfg = parse(&text, &rel).map_err(ConfigError::Input)?;
    Ok((rel, cfg))
}

/// Parse config text; `file` is only used in the diagnostic.
pub fn parse(text: &str, file: &Path) -> Result<EnvConfig, Box<Diagnostic>> {
    serde_yaml::from_str::<EnvConfig>(text).map_err(|e| Box::new(yaml_diagnostic(&e, file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> Diagnostic {
        *parse(text, Path::new("c.yaml")).unwrap_err()
    }

    #[test]
    fn unknown_top_level_key_has_location_and_suggestion() {
        let d = err("cluster: {name: a}\nfeaturs: {}\n");
        assert_eq!((d.line, d.column), (Some(2), Some(1)));
        assert!(d.message.contains("unknown field `featurs`"), "{d}");
        assert_eq!(d.help.as_deref(), Some("did you mean `features`?"));
    }

    #[test]
    fn feature_value_must_be_a_boolean() {
        let d = err("cluster: {name: a}\nfeatures:\n  kserve: yes\n");
        assert_eq!(d.line, Some(3), "{d}");
        assert_eq!(d.field.as_deref(), Some("features.kserve"), "{d}");
        assert!(d.help.unwrap().contains("true or false"));
    }

    #[test]
    fn trailing_comments_are_fine() {
        let c = parse(
            "cluster: {name: a}\nfeatures:\n  guardrails: true   # guardrails: on\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        assert_eq!(c.features.get("guardrails"), Some(&true));
    }

    #[test]
    fn unknown_layer_suggests_the_closest() {
        let d = err(
            "cluster: {name: a}\nmodels:\n- {name: m, layer: kserv, source: hf://a/b, preset: p}\n",
        );
        assert_eq!(d.field.as_deref(), Some("models[0].layer"), "{d}");
        assert_eq!(d.help.as_deref(), Some("did you mean `kserve`?"));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let d = err("cluster:\n  name: [a\n");
        assert!(d.line.is_some(), "{d}");
    }
}
