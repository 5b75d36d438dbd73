//! `valuesFile` with the embedded catalog. A values file is normally passed to Argo CD as a second
//! `$values` source: Argo CD reads it from the GitOps repository. A repository that uses the
//! embedded catalog does not hold `catalog/values/`, so there the file's content is inlined into
//! the Application instead (`helm.valuesObject`, with the app's own `values` merged over it the way
//! Helm merges `values` over value files). Same values, no file the repository lacks.

use std::path::Path;

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
