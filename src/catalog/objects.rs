//! Catalog files of plain Kubernetes objects (an app's `source: { objects: FILE }`), e.g. the
//! PriorityClasses of `objects/priority-classes.yaml`: read from the repository's catalog or the
//! embedded one, checked (a YAML stream of objects with apiVersion, kind and metadata.name), and
//! written by `root` into `clusters/<env>/objects/<app>/` for the app to sync.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde_json::Value;

use super::{CatalogSource, Group};
use crate::diag::Diagnostic;

/// One objects file: its text as the catalog has it, and the objects in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectsFile {
    pub text: String,
    /// (kind, name) of every object, in file order.
    pub objects: Vec<(String, String)>,
}

/// The kind of the objects models name with `priority:`.
pub const PRIORITY_CLASS: &str = "PriorityClass";

/// Every objects file the groups' apps name (relative to `catalog/`), read and checked; the
/// problems found (each names the file and the app).
pub fn load(
    groups: &[Group],
    source: &CatalogSource,
    repo: &Path,
    groups_file: &Path,
) -> (BTreeMap<String, ObjectsFile>, Vec<Diagnostic>) {
    let mut files = BTreeMap::new();
    let mut problems = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for (ai, a) in g.apps.iter().enumerate() {
            let Some(rel) = &a.source.objects else {
                continue;
            };
            let field = format!("groups[{gi}].apps[{ai}].source.objects");
            if !is_plain_relative(rel) {
                problems.push(
                    Diagnostic::error(format!(
                        "`{}` is not a file under catalog/",
                        rel.escape_debug()
                    ))
                    .file(groups_file)
                    .field(&field)
                    .help("name a file relative to catalog/, e.g. objects/priority-classes.yaml"),
                );
                continue;
            }
            if files.contains_key(rel) {
                continue;
            }
            let text = match source.read_text(repo, rel) {
                Ok(t) => t,
                Err(d) => {
                    problems.push(d.field(&field));
                    continue;
                }
            };
            match parse(&text) {
                Ok(objects) => {
                    files.insert(rel.clone(), ObjectsFile { text, objects });
                }
                Err(why) => problems.push(
                    Diagnostic::error(why)
                        .file(source.label(repo, rel))
                        .help(format!(
                            "app `{}` of group `{}` syncs this file: each YAML document is one Kubernetes object",
                            a.name, g.name
                        )),
                ),
            }
        }
    }
    (files, problems)
}

/// A relative path without `..`, `.` or a root: it stays inside catalog/.
fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// The (kind, name) of each object of a YAML stream; an error says which document is wrong.
fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| format!("document {} is not YAML: {e}", i + 1))?;
        if v.is_null() {
            continue; // an empty document (a trailing `---`)
        }
        let field = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        match (
            field("/apiVersion"),
            field("/kind"),
            field("/metadata/name"),
        ) {
            (Some(_), Some(kind), Some(name)) => out.push((kind.to_string(), name.to_string())),
            _ => {
                return Err(format!(
                    "document {} is not a Kubernetes object (it needs apiVersion, kind and metadata.name)",
                    i + 1
                ))
            }
        }
    }
    if out.is_empty() {
        return Err("holds no object".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_listed_and_bad_documents_named() {
        let ok = "apiVersion: v1\nkind: A\nmetadata: {name: a}\n---\napiVersion: v1\nkind: B\nmetadata: {name: b}\n---\n";
        assert_eq!(
            parse(ok).unwrap(),
            [("A".into(), "a".into()), ("B".into(), "b".into())]
        );
        let bad = "apiVersion: v1\nkind: A\nmetadata: {name: a}\n---\nkind: B\n";
        assert!(parse(bad)
            .unwrap_err()
            .starts_with("document 2 is not a Kubernetes object"));
        assert_eq!(parse("# nothing\n").unwrap_err(), "holds no object");
        assert!(!is_plain_relative("../x.yaml"));
        assert!(!is_plain_relative("/etc/passwd"));
        assert!(is_plain_relative("objects/priority-classes.yaml"));
    }
}
