//! `environments/<env>/config.yaml`: typed load with file:line:column errors, then semantic checks.

pub mod autoscaling;
mod cache;
pub mod edit;
mod quantity;
mod shape;
pub mod source;
mod types;
pub mod validate;

use std::path::{Path, PathBuf};

pub use autoscaling::{AutoscalerClass, Autoscaling, AutoscalingSettings, ScaleMetric};
pub use quantity::Quantity;
pub use types::*;

use crate::consts;
use crate::diag::{did_you_mean, display_path, yaml_diagnostic, Diagnostic, Diagnostics};
use crate::fsread::{self, ReadError};

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
    repo.join(config_rel_path(env))
}

/// An environment's config file, relative to the repository (forward slashes, as git names it).
pub fn config_rel_path(env: &str) -> String {
    format!("{}/{env}/{}", consts::ENVIRONMENTS_DIR, consts::CONFIG_FILE)
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

/// The rule an environment name follows (it is a folder under environments/ and clusters/).
pub const ENV_NAME_RULE: &str = "an environment name is a single DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";

/// Whether `env` can name an environment: a single DNS-1123 label (never a path).
pub fn is_valid_env_name(env: &str) -> bool {
    crate::names::is_dns1123_label(env)
}

/// Read and parse `environments/<env>/config.yaml` (shape only; see [`validate`] for semantics).
/// The file must be a regular file (a symbolic link to one is fine) of at most
/// [`fsread::MAX_INPUT_BYTES`]; a UTF-8 byte-order mark is dropped. A large config is parsed once
/// per text ([`cache`]).
pub fn load(repo: &Path, env: &str) -> Result<(PathBuf, EnvConfig), ConfigError> {
    if !is_valid_env_name(env) {
        return Err(ConfigError::Input(Box::new(
            Diagnostic::error(format!("`{env}` is not a valid environment name"))
                .help(ENV_NAME_RULE),
        )));
    }
    let path = config_path(repo, env);
    let rel = display_path(repo, &path);
    let text = match fsread::read_text(&path, fsread::MAX_INPUT_BYTES, "config file") {
        Ok(t) => t,
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => {
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
            return Err(ConfigError::Input(Box::new(read_diagnostic(
                &e,
                &rel,
                "config file",
            ))))
        }
    };
    let slot = cache::Slot::of(repo, env, &text);
    if let Some(cfg) = slot.as_ref().and_then(cache::Slot::read) {
        crate::diag::remember(&rel, &text); // as parse does: warnings point into the text
        return Ok((rel, cfg));
    }
    let cfg = parse(&text, &rel)?;
    if let Some(slot) = slot {
        slot.write(&cfg);
    }
    Ok((rel, cfg))
}

/// The diagnostic for an input file that could not be read (`kind`: "config file", "catalog
/// file"); the path is the diagnostic's file, so the message does not repeat it. "Not found" is
/// left to callers, who know what a missing file means.
pub(crate) fn read_diagnostic(e: &ReadError, rel: &Path, kind: &str) -> Diagnostic {
    let d = match e {
        ReadError::Io { source, .. } => {
            Diagnostic::error(format!("cannot read the {kind}: {source}"))
        }
        ReadError::NotRegular { what, .. } => {
            Diagnostic::error(format!("the {kind} is {what}, not a regular file"))
                .help("point it at a regular file (a symbolic link to a regular file is fine)")
        }
        ReadError::TooLarge { cap, .. } => Diagnostic::error(format!(
            "the {kind} is larger than {} MiB",
            cap / (1024 * 1024)
        ))
        .help(format!("this is not a {kind}: wrong file?")),
        ReadError::NotUtf8 { offset, .. } => Diagnostic::error(format!(
            "the {kind} is not UTF-8 text (invalid byte at offset {offset})"
        ))
        .help("save it as UTF-8"),
    };
    d.file(rel)
}

/// Parse config text; `file` is only used in the diagnostics. A text of the wrong shape is reported
/// whole: every wrong key and type, of every model ([`shape`]), not only the first serde met.
pub fn parse(text: &str, file: &Path) -> Result<EnvConfig, ConfigError> {
    crate::diag::remember(file, text);
    serde_yaml::from_str::<EnvConfig>(text).map_err(|e| {
        let first = yaml_diagnostic(&e, file);
        let more = shape::more_errors(text, file, &first);
        if more.is_empty() {
            ConfigError::Input(Box::new(first))
        } else {
            ConfigError::Invalid(Diagnostics(std::iter::once(first).chain(more).collect()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> Diagnostic {
        match parse(text, Path::new("c.yaml")) {
            Err(ConfigError::Input(d)) => *d,
            other => panic!("not one error: {other:?}"),
        }
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
    fn environment_names_are_single_dns_labels() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "../../outside/e",
            "a/b",
            "..",
            "",
            "Prod",
            "-a",
            &"a".repeat(64),
        ] {
            let Err(ConfigError::Input(d)) = load(dir.path(), bad) else {
                panic!("{bad:?} accepted");
            };
            assert!(d.message.contains("not a valid environment name"), "{d}");
            assert!(
                d.help.as_deref().unwrap_or("").contains("DNS-1123 label"),
                "{d}"
            );
        }
        assert!(is_valid_env_name("ai-dev") && is_valid_env_name("prod2"));
    }

    #[test]
    fn config_file_must_be_a_regular_file_and_a_bom_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let env_dir = dir.path().join("environments/e");
        std::fs::create_dir_all(&env_dir).unwrap();
        std::os::unix::fs::symlink("/dev/zero", env_dir.join("config.yaml")).unwrap();
        let Err(ConfigError::Input(d)) = load(dir.path(), "e") else {
            panic!("/dev/zero accepted");
        };
        assert!(
            d.message.contains("character device, not a regular file"),
            "{d}"
        );
        assert_eq!(
            d.file.as_deref(),
            Some(Path::new("environments/e/config.yaml"))
        );
        std::fs::remove_file(env_dir.join("config.yaml")).unwrap();
        std::fs::write(env_dir.join("config.yaml"), "\u{feff}cluster: {name: a}\n").unwrap();
        assert_eq!(load(dir.path(), "e").unwrap().1.cluster.name, "a");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let d = err("cluster:\n  name: [a\n");
        assert!(d.line.is_some(), "{d}");
    }
}
