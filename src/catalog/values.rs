//! `valuesFile` with the embedded catalog. A values file is normally passed to Argo CD as a second
//! `$values` source: Argo CD reads it from the GitOps repository. A repository that uses the
//! embedded catalog does not hold `catalog/values/`, so there the file's content is inlined into
//! the Application instead (`helm.valuesObject`, with the app's own `values` merged over it the way
//! Helm merges `values` over value files). Same values, no file the repository lacks.
//!
//! With the repository's own catalog the reference stays (`$values/<valuesFile>`): Argo CD reads
//! the file from the GitOps repository, so it must be there, relative to the repository's root,
//! and be a YAML mapping ([`check_repo_files`]) — else every sync of the app fails.

use std::path::Path;

#[cfg(test)]
use super::embedded;
use super::{CatalogError, CatalogSource, Group};
use crate::consts;
use crate::diag::{yaml_diagnostic, Diagnostic};

/// With the embedded catalog, replace every app's `valuesFile` by its content merged under its
/// `values`. A repository catalog is left as it is.
pub fn inline_embedded(
    groups: &mut [Group],
    source: &CatalogSource,
    repo: &Path,
    groups_file: &Path,
) -> Result<(), CatalogError> {
    if !source.is_embedded() {
        return Ok(());
    }
    for g in groups.iter_mut() {
        for a in g.apps.iter_mut() {
            let Some(vf) = a.values_file.take() else {
                continue;
            };
            let field = format!("groups[{}].apps[{}].valuesFile", g.name, a.name);
            let Some(rel) = vf.strip_prefix(&format!("{}/", consts::CATALOG_DIR)) else {
                return Err(CatalogError::Input(Box::new(
                    Diagnostic::error(format!("`{vf}` is not a file of the catalog"))
                        .file(groups_file)
                        .field(field)
                        .help("with the embedded catalog a valuesFile must be under catalog/ (the repository holds no other file)"),
                )));
            };
            let text = source.read_text(repo, rel).map_err(CatalogError::Input)?;
            let label = source.label(repo, rel);
            let base: serde_json::Value = serde_yaml::from_str(&text)
                .map_err(|e| CatalogError::Input(Box::new(yaml_diagnostic(&e, &label))))?;
            let base = match base {
                serde_json::Value::Null => serde_json::Value::Object(Default::default()),
                v @ serde_json::Value::Object(_) => v,
                _ => {
                    return Err(CatalogError::Input(Box::new(
                        Diagnostic::error("a Helm values file must be a mapping").file(label),
                    )))
                }
            };
            a.values = Some(match a.values.take() {
                Some(over) => merge(base, over),
                None => base,
            });
        }
    }
    Ok(())
}

/// With the repository's catalog, every app's `valuesFile`: a relative path inside the repository
/// (Argo CD's `$values` is the repository's root), naming a readable regular file that holds a
/// YAML mapping (or nothing). Each problem names the catalog file and the app's `valuesFile` field.
pub fn check_repo_files(
    groups: &[Group],
    source: &CatalogSource,
    repo: &Path,
    groups_file: &Path,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if source.is_embedded() {
        return out;
    }
    for g in groups {
        for a in &g.apps {
            let Some(vf) = &a.values_file else { continue };
            let field = format!("groups[{}].apps[{}].valuesFile", g.name, a.name);
            if let Err(problem) = check_values_file(repo, vf) {
                out.push(problem.file(groups_file).field(field));
            }
        }
    }
    out
}

/// Help for a valuesFile that is not where Argo CD will look.
const VALUES_FILE_HELP: &str = "valuesFile is a path from the repository's root (Argo CD reads it as $values/<valuesFile> from the GitOps repository), e.g. catalog/values/kserve.yaml";

/// One values file: the problem as a diagnostic without file and field.
fn check_values_file(repo: &Path, vf: &str) -> Result<(), Box<Diagnostic>> {
    let inside = !vf.is_empty()
        && Path::new(vf)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside {
        return Err(Box::new(
            Diagnostic::error(format!("`{vf}` is not a path inside the repository"))
                .help(VALUES_FILE_HELP),
        ));
    }
    let text = crate::fsread::read_text(
        &repo.join(vf),
        crate::fsread::MAX_INPUT_BYTES,
        "Helm values file",
    )
    .map_err(|e| {
        Box::new(if e.io_kind() == Some(std::io::ErrorKind::NotFound) {
            Diagnostic::error(format!("`{vf}` does not exist")).help(VALUES_FILE_HELP)
        } else {
            Diagnostic::error(format!("`{vf}` cannot be read: {}", e.reason()))
        })
    })?;
    let value: serde_json::Value = serde_yaml::from_str(&text).map_err(|e| {
        let d = yaml_diagnostic(&e, Path::new(vf));
        let at = match (d.line, d.column) {
            (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
            _ => String::new(),
        };
        Box::new(
            Diagnostic::error(format!("`{vf}` is not valid YAML{at}: {}", d.message))
                .help("fix the values file: Argo CD's Helm would fail every sync of this app"),
        )
    })?;
    match value {
        serde_json::Value::Null | serde_json::Value::Object(_) => Ok(()),
        _ => Err(Box::new(
            Diagnostic::error(format!("`{vf}` is not a YAML mapping"))
                .help("a Helm values file holds a mapping of values (key: value)"),
        )),
    }
}

/// Helm's coalescing of `over` onto `base`: mappings merge key by key (recursively), a `null`
/// removes the key, anything else replaces.
fn merge(base: serde_json::Value, over: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (base, over) {
        (Value::Object(mut b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(&k);
                    continue;
                }
                let merged = match b.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Object(b)
        }
        (_, o) => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_merge_over_the_file_like_helm() {
        let base = json!({"a": {"b": 1, "c": 2}, "d": [1], "e": 1});
        let over = json!({"a": {"c": 3, "x": 4}, "d": [2], "e": null});
        assert_eq!(
            merge(base, over),
            json!({"a": {"b": 1, "c": 3, "x": 4}, "d": [2]})
        );
    }

    /// Issue 19 Medium 3: a repository catalog's valuesFile must exist and be a YAML mapping.
    #[test]
    fn a_missing_or_broken_values_file_names_the_catalog_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("catalog/values")).unwrap();
        let w = |rel: &str, text: &str| std::fs::write(dir.path().join(rel), text).unwrap();
        w("catalog/values/ok.yaml", "a: 1\n");
        w("catalog/values/empty.yaml", "");
        w("catalog/values/bad.yaml", "a: [1\n");
        w("catalog/values/list.yaml", "- 1\n");
        let src = CatalogSource::detect(dir.path()).unwrap();
        let text = embedded::get(super::super::GROUPS_FILE).unwrap();
        let mut file: super::super::GroupsFile = serde_yaml::from_slice(text).unwrap();
        let groups = &mut file.groups;
        let apps: Vec<_> = groups
            .iter_mut()
            .flat_map(|g| g.apps.iter_mut())
            .filter(|a| a.source.helm.is_some())
            .take(7)
            .collect();
        let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
        for (a, vf) in apps.into_iter().zip([
            "catalog/values/ok.yaml",
            "catalog/values/empty.yaml",
            "catalog/values/gone.yaml",
            "catalog/values/bad.yaml",
            "catalog/values/list.yaml",
            "../outside.yaml",
            "catalog/values",
        ]) {
            a.values_file = Some(vf.to_string());
        }
        for g in groups.iter_mut() {
            for a in g.apps.iter_mut() {
                if !names.contains(&a.name) {
                    a.values_file = None;
                }
            }
        }
        let ds = check_repo_files(groups, &src, dir.path(), Path::new("catalog/groups.yaml"));
        let got: Vec<String> = ds.iter().map(|d| d.to_string()).collect();
        assert_eq!(got.len(), 5, "{got:#?}");
        for (d, (app, what)) in ds.iter().zip([
            (&names[2], "`catalog/values/gone.yaml` does not exist"),
            (
                &names[3],
                "`catalog/values/bad.yaml` is not valid YAML (line 2",
            ),
            (
                &names[4],
                "`catalog/values/list.yaml` is not a YAML mapping",
            ),
            (
                &names[5],
                "`../outside.yaml` is not a path inside the repository",
            ),
            (&names[6], "`catalog/values` cannot be read: is a directory"),
        ]) {
            assert_eq!(d.file.as_deref(), Some(Path::new("catalog/groups.yaml")));
            assert!(
                d.field
                    .as_deref()
                    .unwrap()
                    .ends_with(&format!(".apps[{app}].valuesFile")),
                "{d}"
            );
            assert!(d.message.starts_with(what), "{d}");
        }
        // The embedded catalog inlines its files instead (checked there).
        let embedded = CatalogSource::detect(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(check_repo_files(groups, &embedded, dir.path(), Path::new("g")).is_empty());
    }

    #[test]
    fn the_embedded_catalog_needs_no_directory_of_the_repository() {
        // A repository using the embedded catalog holds only environments/: a `path:` source (a
        // directory of the GitOps repository) could never sync there, and every valuesFile must be
        // an embedded file (inlined above).
        let dir = tempfile::tempdir().unwrap();
        let src = CatalogSource::detect(dir.path()).unwrap();
        assert!(src.is_embedded());
        let text = src
            .read_text(dir.path(), super::super::GROUPS_FILE)
            .unwrap();
        let mut groups: super::super::GroupsFile = serde_yaml::from_str(&text).unwrap();
        for g in &groups.groups {
            for a in &g.apps {
                assert!(a.source.path.is_none(), "{}: path source", a.name);
            }
        }
        inline_embedded(&mut groups.groups, &src, dir.path(), Path::new("g")).unwrap();
        let kserve = groups
            .groups
            .iter()
            .flat_map(|g| &g.apps)
            .find(|a| a.name == "kserve")
            .unwrap();
        assert!(kserve.values_file.is_none());
        assert_eq!(
            kserve.values.as_ref().unwrap()["kserve"]["controller"]["deploymentMode"],
            "Standard"
        );
    }
}
