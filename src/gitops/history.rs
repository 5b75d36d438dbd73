//! The render history of an environment (`platform history`, `platform rollback`): the commits that
//! changed `clusters/<env>/` (a commit that changed only its inputs, config.yaml, catalog/ or
//! templates/, rendered nothing), newest first, each with what it changed (tree and inputs); and
//! restoring those paths as a past commit holds them.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Oid, Repository};
use serde::Serialize;

use super::git::{GitError, GitRepo};

/// How many render commits `history` lists by default.
pub const DEFAULT_LIMIT: usize = 20;
/// How many commits a history walk looks at, at most (a long history of other work is not read
/// to its root).
pub const MAX_WALK: usize = 10_000;

/// One render commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// The commit's short hash.
    pub rev: String,
    /// The whole hash.
    pub commit: String,
    /// The commit time, RFC 3339 in UTC.
    pub date: String,
    pub subject: String,
    /// Files under `clusters/<env>/` it added, changed, removed.
    pub files: FileChanges,
    /// Inputs it changed (config.yaml, files under catalog/ and templates/).
    pub inputs: Vec<String>,
    /// Models of config.yaml it added, removed or changed; None when config.yaml did not change or
    /// either version does not parse.
    pub models: Option<ModelChanges>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileChanges {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl FileChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl ModelChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The paths of an environment's render history: its tree, then its inputs.
fn prefixes(env: &str) -> (String, Vec<String>) {
    (
        format!("{}/", crate::layout::tree(env)),
        super::input_paths(env),
    )
}

fn matches(prefix: &str, path: &str) -> bool {
    match prefix.strip_suffix('/') {
        Some(_) => path.starts_with(prefix),
        None => path == prefix,
    }
}

/// Is `path` part of the environment's render (its tree or an input)?
pub fn is_render_path(env: &str, path: &str) -> bool {
    let (tree, inputs) = prefixes(env);
    matches(&tree, path) || inputs.iter().any(|i| matches(i, path))
}

/// One changed path between two trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    Added,
    Changed,
    Removed,
}

/// The render paths of `env` that differ from `old` to `new` (None: the empty tree).
pub fn render_deltas(
    repo: &Repository,
    env: &str,
    old: Option<&git2::Tree<'_>>,
    new: Option<&git2::Tree<'_>>,
) -> Result<Vec<(String, Delta)>, GitError> {
    let (tree, inputs) = prefixes(env);
    let mut opts = git2::DiffOptions::new();
    opts.pathspec(tree.trim_end_matches('/'));
    for i in &inputs {
        opts.pathspec(i.trim_end_matches('/'));
    }
    let diff = repo
        .diff_tree_to_tree(old, new, Some(&mut opts))
        .map_err(|e| GitError::Git {
            what: "comparing two commits".into(),
            message: e.message().to_string(),
        })?;
    let mut out = Vec::new();
    for d in diff.deltas() {
        let path = d
            .new_file()
            .path()
            .or(d.old_file().path())
            .map(|p| p.to_string_lossy().replace('\\', "/"));
        let Some(path) = path else { continue };
        if !is_render_path(env, &path) {
            continue;
        }
        let kind = match d.status() {
            git2::Delta::Added | git2::Delta::Copied | git2::Delta::Untracked => Delta::Added,
            git2::Delta::Deleted => Delta::Removed,
            _ => Delta::Changed,
        };
        out.push((path, kind));
    }
    Ok(out)
}

/// The newest `limit` render commits of `env` reachable from HEAD, newest first (none for a
/// repository without commits). A render commit changed `clusters/<env>/`; a commit of inputs
/// alone (a hand-committed config.yaml) is not one: its tree is still the previous render's.
pub fn history(git: &GitRepo, env: &str, limit: usize) -> Result<Vec<Revision>, GitError> {
    let repo = git.repository();
    let Some(head) = git.head_commit() else {
        return Ok(Vec::new());
    };
    let err = |what: &str| {
        let what = what.to_string();
        move |e: git2::Error| GitError::Git {
            what,
            message: e.message().to_string(),
        }
    };
    let mut walk = repo.revwalk().map_err(err("reading the history"))?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)
        .map_err(err("reading the history"))?;
    walk.push(head).map_err(err("reading the history"))?;
    let (tree_prefix, _) = prefixes(env);
    let config_rel = crate::config::config_rel_path(env);
    let mut out = Vec::new();
    for oid in walk.take(MAX_WALK) {
        if out.len() >= limit {
            break;
        }
        let oid = oid.map_err(err("reading the history"))?;
        let commit = repo.find_commit(oid).map_err(err("reading a commit"))?;
        let tree = commit.tree().map_err(err("reading a commit's tree"))?;
        let parent = commit.parent(0).ok();
        let parent_tree = match &parent {
            Some(p) => Some(p.tree().map_err(err("reading a commit's tree"))?),
            None => None,
        };
        let deltas = render_deltas(repo, env, parent_tree.as_ref(), Some(&tree))?;
        if deltas.is_empty() {
            continue;
        }
        let mut files = FileChanges::default();
        let mut inputs = Vec::new();
        for (path, kind) in deltas {
            if path.starts_with(&tree_prefix) {
                match kind {
                    Delta::Added => files.added.push(path),
                    Delta::Changed => files.changed.push(path),
                    Delta::Removed => files.removed.push(path),
                }
            } else {
                inputs.push(path);
            }
        }
        if files.is_empty() {
            continue;
        }
        let models = if inputs.contains(&config_rel) {
            let before = parent_tree
                .as_ref()
                .map(|t| blob_text(repo, t, &config_rel))
                .unwrap_or(Some(String::new()));
            let after = blob_text(repo, &tree, &config_rel);
            match (before, after) {
                (Some(b), Some(a)) => model_changes(&b, &a),
                _ => None,
            }
        } else {
            None
        };
        let id = oid.to_string();
        out.push(Revision {
            rev: crate::text::short_rev(&id).to_string(),
            commit: id,
            date: date(commit.time()),
            subject: commit
                .summary_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
            files,
            inputs,
            models,
        });
    }
    Ok(out)
}

fn date(t: git2::Time) -> String {
    let secs = u64::try_from(t.seconds()).unwrap_or(0);
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The text of `rel` in `tree`, None when absent or not a file.
pub fn blob_text(repo: &Repository, tree: &git2::Tree<'_>, rel: &str) -> Option<String> {
    let entry = tree.get_path(Path::new(rel)).ok()?;
    let blob = entry.to_object(repo).ok()?.into_blob().ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

/// The models of a config.yaml by name (each model's whole mapping), None when it does not parse.
fn models_of(text: &str) -> Option<BTreeMap<String, serde_yaml::Value>> {
    if text.trim().is_empty() {
        return Some(BTreeMap::new());
    }
    let doc: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let mut out = BTreeMap::new();
    let Some(list) = doc.get("models") else {
        return Some(out);
    };
    for m in list.as_sequence()? {
        let name = m.get("name")?.as_str()?.to_string();
        out.insert(name, m.clone());
    }
    Some(out)
}

/// Models added, removed or changed from one config.yaml to another (None: either does not parse).
pub fn model_changes(before: &str, after: &str) -> Option<ModelChanges> {
    let (b, a) = (models_of(before)?, models_of(after)?);
    let mut c = ModelChanges::default();
    for (name, m) in &a {
        match b.get(name) {
            None => c.added.push(name.clone()),
            Some(old) if old != m => c.changed.push(name.clone()),
            Some(_) => {}
        }
    }
    c.removed = b.keys().filter(|n| !a.contains_key(*n)).cloned().collect();
    Some(c)
}

/// The render commit whose tree `rev` holds: the newest commit reachable from `rev` (itself
/// included) that changed `clusters/<env>/`; None when none did.
pub fn render_of(git: &GitRepo, env: &str, rev: Oid) -> Result<Option<Oid>, GitError> {
    let repo = git.repository();
    let err = |e: git2::Error| GitError::Git {
        what: "reading the history".into(),
        message: e.message().to_string(),
    };
    let (tree_prefix, _) = prefixes(env);
    let mut walk = repo.revwalk().map_err(err)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)
        .map_err(err)?;
    walk.push(rev).map_err(err)?;
    for oid in walk.take(MAX_WALK) {
        let oid = oid.map_err(err)?;
        let commit = repo.find_commit(oid).map_err(err)?;
        let tree = commit.tree().map_err(err)?;
        let parent_tree = match commit.parent(0) {
            Ok(p) => Some(p.tree().map_err(err)?),
            Err(_) => None,
        };
        let deltas = render_deltas(repo, env, parent_tree.as_ref(), Some(&tree))?;
        if deltas.iter().any(|(p, _)| p.starts_with(&tree_prefix)) {
            return Ok(Some(oid));
        }
    }
    Ok(None)
}

/// The commit `rev` names (a hash, a prefix of one, a branch, `HEAD~2`…).
pub fn resolve(git: &GitRepo, rev: &str) -> Result<Oid, GitError> {
    let obj = git
        .repository()
        .revparse_single(rev)
        .map_err(|_| GitError::Git {
            what: format!("finding revision {rev}"),
            message: "no such commit: `platform history` lists the render commits".into(),
        })?;
    obj.peel_to_commit()
        .map(|c| c.id())
        .map_err(|_| GitError::Git {
            what: format!("finding revision {rev}"),
            message: "it is not a commit: `platform history` lists the render commits".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_changes_by_name() {
        let a = "models:\n  - name: a\n    layer: x\n  - name: b\n    layer: x\n";
        let b = "models:\n  - name: a\n    layer: y\n  - name: c\n    layer: x\n";
        let c = model_changes(a, b).unwrap();
        assert_eq!(c.added, vec!["c"]);
        assert_eq!(c.removed, vec!["b"]);
        assert_eq!(c.changed, vec!["a"]);
        assert!(model_changes("models: [", b).is_none());
        assert!(model_changes("", "").unwrap().is_empty());
    }

    #[test]
    fn render_paths_are_the_tree_and_the_inputs_only() {
        assert!(is_render_path("e", "clusters/e/project.yaml"));
        assert!(!is_render_path("e", "clusters/e2/project.yaml"));
        assert!(is_render_path("e", "environments/e/config.yaml"));
        assert!(!is_render_path("e", "environments/e/notes.md"));
        assert!(is_render_path("e", "catalog/groups.yaml"));
        assert!(is_render_path("e", "templates/x.yaml.j2"));
        assert!(!is_render_path("e", "README.md"));
    }
}
