//! `platform rollback`: helm's rollback, the GitOps way. A new commit whose environment inputs
//! (config.yaml, catalog/, templates/) and `clusters/<env>/` equal those of a past render commit
//! (default: the render commit before HEAD's). History is never rewritten: the rollback is one more
//! render commit, which `platform history` lists and a later rollback can undo. Pushing and syncing
//! are the CLI's (the same code as `root --push` and `up`).

use std::path::Path;

use serde::Serialize;

use crate::gitops::git::{GitError, GitRepo};
use crate::gitops::history::{self, Delta, FileChanges, ModelChanges};
use crate::gitops::GitopsError;
use crate::report::Reporter;

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The rollback cannot be done as asked (exit 1).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Gitops(#[from] GitopsError),
}

/// What to roll back to.
#[derive(Debug, Clone)]
pub struct Options {
    pub env: String,
    /// A commit (hash, prefix, `HEAD~2`…); None: the render commit before HEAD's.
    pub rev: Option<String>,
    /// Say what would be restored; write and commit nothing.
    pub dry_run: bool,
    /// Restore `rev` even when its inputs are not the ones its tree was rendered from.
    pub force: bool,
    /// Restore the shared catalog/ and templates/ even when other environments read them.
    pub include_shared: bool,
}

/// The render commit restored.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub rev: String,
    pub commit: String,
    pub subject: String,
}

/// What a rollback restored (or would restore), relative to HEAD.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub target: Target,
    /// Files under `clusters/<env>/` it adds back, changes back, removes.
    pub files: FileChanges,
    /// Input files (config.yaml, catalog/, templates/) it restores.
    pub inputs: Vec<String>,
    /// Models relative to HEAD's config.yaml (None: config.yaml unchanged or unparsable).
    pub models: Option<ModelChanges>,
    /// Uncommitted changes to the restored paths (a dry run reports them; a real run refuses them).
    pub uncommitted: Vec<String>,
    /// Other environments (under environments/) whose inputs change with the restored shared
    /// catalog/ and templates/ files (empty when none of those is restored). A real run refuses
    /// them unless `include_shared`.
    pub other_envs: Vec<String>,
    /// The new commit (None: a dry run, or nothing to restore).
    pub committed: Option<String>,
    pub dry_run: bool,
}

impl Outcome {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.inputs.is_empty()
    }
}

fn git_err(what: &str) -> impl FnOnce(git2::Error) -> GitError + '_ {
    move |e| GitError::Git {
        what: what.to_string(),
        message: e.message().to_string(),
    }
}

/// Restore the environment's inputs and tree as `opts.rev` holds them and commit them (see the
/// module docs). Refuses uncommitted changes on those paths before anything is written.
pub fn run(repo: &Path, opts: &Options, reporter: &dyn Reporter) -> Result<Outcome, RollbackError> {
    let env = opts.env.as_str();
    let _lock = if opts.dry_run {
        None
    } else {
        Some(crate::gitops::lock_tree(repo, env, "rollback")?)
    };
    let git = GitRepo::open(repo)?;
    let r = git.repository();
    let head_id = git.head_commit().ok_or_else(|| {
        RollbackError::Refused("the repository has no commit yet: nothing to roll back".into())
    })?;
    let target_id = match &opts.rev {
        Some(rev) => history::resolve(&git, rev)?,
        None => {
            let revs = history::history(&git, env, 2)?;
            match revs.get(1) {
                Some(prev) => history::resolve(&git, &prev.commit)?,
                None => {
                    return Err(RollbackError::Refused(format!(
                        "{} has {} render commit(s): there is no earlier one to roll back to (`platform history` lists them)",
                        crate::layout::tree(env),
                        revs.len()
                    )))
                }
            }
        }
    };
    let target = r
        .find_commit(target_id)
        .map_err(git_err("reading the commit"))?;
    let target_tree = target
        .tree()
        .map_err(git_err("reading the commit's tree"))?;
    let head = r.find_commit(head_id).map_err(git_err("reading HEAD"))?;
    let head_tree = head.tree().map_err(git_err("reading HEAD's tree"))?;
    let id = target_id.to_string();
    let rev = crate::text::short_rev(&id).to_string();
    let config_rel = crate::config::config_rel_path(env);
    if !opts.force {
        check_rendered(&git, env, target_id, &target_tree, &rev)?;
    }
    let Some(target_config) = history::blob_text(r, &target_tree, &config_rel) else {
        return Err(RollbackError::Refused(format!(
            "{rev} does not hold {config_rel} (it was committed without the config that rendered it): \
             restoring it would delete the config; pick a render commit that holds it (`platform history`)"
        )));
    };
    // Uncommitted work on these paths would be overwritten: refused, with the fix.
    let mut paths = vec![format!("{}/", crate::layout::tree(env))];
    paths.extend(crate::gitops::input_paths(env));
    let dirty = git.dirty_paths(&paths)?;
    if !dirty.is_empty() && !opts.dry_run {
        return Err(RollbackError::Refused(dirty_message(env, &dirty)));
    }
    let deltas = history::render_deltas(r, env, Some(&head_tree), Some(&target_tree))?;
    let tree_prefix = format!("{}/", crate::layout::tree(env));
    let mut files = FileChanges::default();
    let mut inputs = Vec::new();
    for (path, kind) in &deltas {
        if path.starts_with(&tree_prefix) {
            match kind {
                Delta::Added => files.added.push(path.clone()),
                Delta::Changed => files.changed.push(path.clone()),
                Delta::Removed => files.removed.push(path.clone()),
            }
        } else {
            inputs.push(path.clone());
        }
    }
    let shared = shared_inputs(env, &inputs);
    let other_envs: Vec<String> = if shared.is_empty() {
        Vec::new()
    } else {
        crate::config::list_envs(repo)
            .into_iter()
            .filter(|e| e != env)
            .collect()
    };
    if !other_envs.is_empty() && !opts.include_shared && !opts.dry_run {
        return Err(RollbackError::Refused(shared_message(
            env,
            &rev,
            &shared,
            &other_envs,
        )));
    }
    let models = if inputs.contains(&config_rel) {
        history::blob_text(r, &head_tree, &config_rel)
            .and_then(|h| history::model_changes(&h, &target_config))
    } else {
        None
    };
    let mut out = Outcome {
        target: Target {
            rev: rev.clone(),
            commit: id.clone(),
            subject: target
                .summary_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        },
        files,
        inputs,
        models,
        uncommitted: dirty,
        other_envs,
        committed: None,
        dry_run: opts.dry_run,
    };
    if opts.dry_run || out.is_empty() {
        return Ok(out);
    }
    git.preflight_commit()?;
    // An ignored path would be written and then refused by the commit: refused before anything
    // is written.
    for (path, kind) in &deltas {
        if *kind != Delta::Removed && r.is_path_ignored(Path::new(path)).unwrap_or(false) {
            return Err(GitError::Ignored(path.clone()).into());
        }
    }
    for (path, kind) in &deltas {
        crate::gitops::inspect(repo, path)?;
        let full = repo.join(path);
        if *kind == Delta::Removed {
            match std::fs::remove_file(&full) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(GitopsError::Remove { path: full, source }.into()),
            }
            remove_empty_parents(repo, &full);
            continue;
        }
        let entry = target_tree
            .get_path(Path::new(path))
            .map_err(git_err("reading a file of the commit"))?;
        let blob = entry
            .to_object(r)
            .and_then(|o| o.peel_to_blob())
            .map_err(git_err("reading a file of the commit"))?;
        match entry.filemode() {
            LINK_MODE => write_link(&full, blob.content())?,
            mode => write_file(&full, blob.content(), mode == EXEC_MODE)?,
        }
    }
    let changed: Vec<String> = deltas.iter().map(|(p, _)| p.clone()).collect();
    let message = message(env, &out);
    let committed = git.commit_paths(&changed, &message)?;
    if let Some(oid) = committed {
        let id = oid.to_string();
        reporter.line(&format!(
            "committed {} as {}: {}",
            describe(&out),
            crate::text::short_rev(&id),
            message.lines().next().unwrap_or_default()
        ));
        out.committed = Some(id);
    }
    Ok(out)
}

/// Refuse a target whose inputs are not the ones its `clusters/<env>/` was rendered from: inputs
/// committed after the render commit whose tree it holds (a hand-committed config.yaml) would be
/// restored with a tree they do not render.
fn check_rendered(
    git: &GitRepo,
    env: &str,
    target: git2::Oid,
    target_tree: &git2::Tree<'_>,
    rev: &str,
) -> Result<(), RollbackError> {
    let r = git.repository();
    let tree = crate::layout::tree(env);
    let Some(render) = history::render_of(git, env, target)? else {
        return Err(RollbackError::Refused(format!(
            "{rev} holds no render of {tree}/ (no commit up to it changed it): pick a render commit \
             (`platform history`), or pass --force to restore {rev} as it is"
        )));
    };
    if render == target {
        return Ok(());
    }
    let render_tree = r
        .find_commit(render)
        .and_then(|c| c.tree())
        .map_err(git_err("reading the commit's tree"))?;
    let prefix = format!("{tree}/");
    let changed: Vec<String> =
        history::render_deltas(r, env, Some(&render_tree), Some(target_tree))?
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| !p.starts_with(&prefix))
            .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let render = render.to_string();
    let render = crate::text::short_rev(&render);
    Err(RollbackError::Refused(format!(
        "the inputs {rev} holds do not render its {tree}/: {} changed after {render} rendered that tree, \
         so restoring {rev} would commit them with a tree they do not render: roll back to {render} \
         (`platform rollback {render} --env {env}`), the render commit whose tree {rev} holds, \
         or pass --force to restore {rev} as it is",
        crate::gitops::describe_inputs(env, &changed).join(", ")
    )))
}

/// The restored inputs every environment reads (catalog/, templates/), not the environment's own.
pub fn shared_inputs(env: &str, inputs: &[String]) -> Vec<String> {
    let own = crate::config::config_rel_path(env);
    inputs.iter().filter(|p| **p != own).cloned().collect()
}

/// Why restoring shared inputs stops a rollback while other environments read them, with the fix.
pub fn shared_message(env: &str, rev: &str, shared: &[String], others: &[String]) -> String {
    format!(
        "restoring {rev} restores shared inputs ({}) that the other environment(s) {} render from too: \
         their committed trees would no longer be what their inputs render; pass --include-shared to \
         restore them anyway (then re-render those: `platform root --env {} --commit`), or restore \
         only {env}'s config.yaml by hand",
        crate::gitops::describe_inputs(env, shared).join(", "),
        others.join(", "),
        others.first().map(String::as_str).unwrap_or_default()
    )
}

/// Why uncommitted changes to the restored paths stop a rollback, with the fix.
pub fn dirty_message(env: &str, dirty: &[String]) -> String {
    let mut paths = vec![crate::layout::tree(env)];
    paths.extend(
        crate::gitops::input_paths(env)
            .iter()
            .map(|p| p.trim_end_matches('/').to_string()),
    );
    format!(
        "uncommitted changes to what a rollback restores ({}{}): commit them (`platform root --env {env} --commit`) \
         or set them aside (`git stash push -- {}`), then re-run",
        dirty.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
        if dirty.len() > 5 { ", …" } else { "" },
        paths.join(" ")
    )
}

/// `3 file(s) under clusters/e/ and environments/e/config.yaml`.
pub fn describe(o: &Outcome) -> String {
    let n = o.files.added.len() + o.files.changed.len() + o.files.removed.len();
    let mut s = format!("{n} generated file(s)");
    if !o.inputs.is_empty() {
        let env_inputs: Vec<String> = o.inputs.iter().take(3).cloned().collect();
        s.push_str(&format!(" and the inputs {}", env_inputs.join(", ")));
        if o.inputs.len() > 3 {
            s.push_str(&format!(" (+{})", o.inputs.len() - 3));
        }
    }
    s
}

fn message(env: &str, o: &Outcome) -> String {
    let mut msg = format!(
        "platform: roll back {env} to {}\n\n\
         Restores environments/{env}/config.yaml, catalog/, templates/ and clusters/{env}/ as {} holds them\n\
         ({}).\n",
        o.target.rev, o.target.rev, o.target.subject
    );
    if let Some(m) = &o.models {
        for (label, list) in [
            ("models added", &m.added),
            ("models changed", &m.changed),
            ("models removed", &m.removed),
        ] {
            if !list.is_empty() {
                msg.push_str(&format!("- {label}: {}\n", list.join(", ")));
            }
        }
    }
    msg.push_str(&format!(
        "- files: {} added, {} changed, {} removed\n",
        o.files.added.len(),
        o.files.changed.len(),
        o.files.removed.len()
    ));
    if !o.inputs.is_empty() {
        msg.push_str(&format!("- inputs: {}\n", o.inputs.join(", ")));
    }
    msg
}

/// git's modes of a symbolic link and an executable file.
const LINK_MODE: i32 = 0o120_000;
const EXEC_MODE: i32 = 0o100_755;

/// A symbolic link as the commit holds it (its target is the blob's content).
#[cfg(unix)]
fn write_link(path: &Path, target: &[u8]) -> Result<(), GitopsError> {
    use std::os::unix::ffi::OsStrExt;
    let fail = |source| GitopsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path).map_err(fail)
}

#[cfg(not(unix))]
fn write_link(path: &Path, _target: &[u8]) -> Result<(), GitopsError> {
    Err(GitopsError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(
            "the commit holds a symbolic link here, which this system cannot restore",
        ),
    })
}

/// A file with the content and (on unix) the executable bit the commit holds.
fn write_file(path: &Path, bytes: &[u8], exec: bool) -> Result<(), GitopsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |source| GitopsError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if exec { 0o755 } else { 0o644 };
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(fail)?;
    }
    #[cfg(not(unix))]
    let _ = exec;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Remove the directories a removed file leaves empty, up to (not including) the repository.
fn remove_empty_parents(repo: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == repo || !d.starts_with(repo) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}
