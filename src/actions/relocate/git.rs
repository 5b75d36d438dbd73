//! The move's two commits: config.yaml edited in place (the located span only: comments and
//! layout stay), the tree re-rendered from it, exactly those files committed and pushed, with
//! the same refusal rules as `root --commit --push`.

use super::{MoveError, Mover, Shape};
use crate::config::edit::EditError;
use crate::gitops::git::GitRepo;

/// config.yaml as a move finds it, with the tree's lock held and git ready to commit.
struct Pending {
    _lock: crate::gitops::TreeLock,
    git: GitRepo,
    path: std::path::PathBuf,
    rel: String,
    text: String,
}

impl Pending {
    fn open(mv: &Mover<'_>) -> Result<Pending, MoveError> {
        let lock = crate::gitops::lock_tree(mv.repo, mv.env, "move")?;
        let git = GitRepo::open(mv.repo)?;
        git.preflight_commit()?;
        let path = crate::config::config_path(mv.repo, mv.env);
        let text =
            crate::fsread::read_text(&path, crate::fsread::MAX_INPUT_BYTES, "config file")
                .map_err(|e| MoveError::Refused(format!("{}: {}", path.display(), e.reason())))?;
        Ok(Pending {
            _lock: lock,
            git,
            path,
            rel: crate::config::config_rel_path(mv.env),
            text,
        })
    }
}

/// Edit config.yaml with `edit`, render, commit config.yaml and the changed generated files with
/// `message`, push. None when config.yaml already says it (a re-run): nothing is committed, but
/// the branch is pushed if the remote is behind. config.yaml must be as committed, or hold just
/// this edit (an interrupted run's): a move never commits someone else's pending change.
pub fn commit_config(
    mv: &Mover<'_>,
    edit: impl Fn(&str) -> Result<String, EditError>,
    message: &str,
) -> Result<Option<String>, MoveError> {
    let p = Pending::open(mv)?;
    let (rel, old) = (&p.rel, &p.text);
    let committed = {
        let head = p.git.head_source()?;
        crate::gitops::TreeSource::read(&head, rel)?
    };
    let Some(head) = committed else {
        return Err(MoveError::Refused(format!(
            "{rel} is not committed: commit it first (`git add {rel} && git commit`); `platform move` commits only its own edit of it"
        )));
    };
    if head != *old && edit(&head).ok().as_deref() != Some(old.as_str()) {
        return Err(MoveError::Refused(format!(
            "{rel} has changes that are not committed: commit (or stash) them first; `platform move` commits only its own edit"
        )));
    }
    commit_edited(mv, &p, &edit(old)?, message)
}

/// Finish what an interrupted move left: commit config.yaml as it is now and the tree rendered
/// from it (if either differs from HEAD), push if the remote is behind.
pub fn commit_pending(mv: &Mover<'_>, message: &str) -> Result<Option<String>, MoveError> {
    let p = Pending::open(mv)?;
    commit_edited(mv, &p, &p.text, message)
}

/// Write `new` (when it differs from `old`), render, commit and push.
fn commit_edited(
    mv: &Mover<'_>,
    p: &Pending,
    new: &str,
    message: &str,
) -> Result<Option<String>, MoveError> {
    let (git, cfg_path, rel_cfg, old) = (&p.git, p.path.as_path(), p.rel.as_str(), p.text.as_str());
    if new != old {
        write_atomic(cfg_path, new)?;
    }
    let inputs = match crate::pipeline::load(mv.repo, mv.env, mv.reporter.as_ref()) {
        Ok(i) => i,
        Err(e) => {
            write_atomic(cfg_path, old)?; // nothing half-done: the edit did not load
            return Err(e.into());
        }
    };
    let (plan, tree) = match crate::pipeline::render_checked(
        &inputs,
        mv.env,
        crate::pipeline::Profile::Chosen(None),
    ) {
        Ok(r) => r,
        Err(e) => {
            write_atomic(cfg_path, old)?;
            return Err(e.into());
        }
    };
    let changes = crate::gitops::diff(mv.repo, &tree)?;
    crate::gitops::apply(mv.repo, &tree, &changes)?;
    let head = git.head_source()?;
    let vs_head = crate::gitops::diff_against(&head, &tree)?;
    drop(head);
    let mut paths = vs_head.paths();
    paths.push(rel_cfg.to_string());
    let committed = git.commit_paths(&paths, message)?;
    let cfg = &plan.config;
    git.push(Some(&cfg.repo_url), &cfg.repo_branch, mv.opts.http)?;
    Ok(committed.map(|oid| {
        let id = oid.to_string();
        let subject = message.lines().next().unwrap_or_default();
        mv.reporter.line(&format!(
            "committed {} and pushed to {}: {subject}",
            crate::text::short_rev(&id),
            cfg.repo_branch
        ));
        format!("{} {subject}", crate::text::short_rev(&id))
    }))
}

/// The commit the branch is at (what Argo CD must report as synced).
pub fn pushed_head(mv: &Mover<'_>) -> Result<String, MoveError> {
    let git = GitRepo::open(mv.repo)?;
    git.head_commit()
        .map(|o| o.to_string())
        .ok_or_else(|| MoveError::Refused("the repository has no commit".into()))
}

fn write_atomic(path: &std::path::Path, text: &str) -> Result<(), MoveError> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let fail = |e: std::io::Error| MoveError::Refused(format!("writing {}: {e}", path.display()));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

pub fn declare_message(s: &Shape) -> String {
    format!(
        "platform: move {m} to {to} (1/2): declare it on {to} beside {from}\n\n\
         config.yaml: moveTo: {to}. Application {m}-{to} serves {m} on {to}; its route lists\n\
         both backends, {to} at weight 0 until `platform move` has smoke-tested it.\n\
         Roll back with `platform move {m} --rollback`.\n",
        m = s.model,
        to = s.to,
        from = s.from
    )
}

pub fn remove_message(s: &Shape) -> String {
    format!(
        "platform: move {m} to {to} (2/2): serve it on {to} only, remove {from}\n\n\
         The route sends all of {m}'s traffic to {to} (smoke-tested), {from} is paused.\n\
         config.yaml: layer: {to}, app: {m}-{to} (the Application that serves it keeps its name).\n\
         Argo CD prunes {m} on {from}.\n",
        m = s.model,
        to = s.to,
        from = s.from
    )
}

pub fn keep_message(s: &Shape) -> String {
    format!(
        "platform: move {m} to {to}: route all of it to {to}, keep {from} paused\n\n\
         config.yaml: moveShare: 100. The route in git gives {to} the whole share, as the live one\n\
         does; {m} stays declared (paused) on {from}. `platform move {m} --to {to}` removes it.\n",
        m = s.model,
        to = s.to,
        from = s.from
    )
}

/// What a re-run commits when it finds an interrupted move's edit not committed.
pub fn finish_message(model: &str) -> String {
    format!(
        "platform: finish the interrupted move of {model}\n\n\
         config.yaml was edited by `platform move` but not committed; this commits it as it is.\n"
    )
}

pub fn rollback_message(s: &Shape) -> String {
    format!(
        "platform: roll back the move of {m} to {to}: serve it on {from} only\n\n\
         The route sends all of {m}'s traffic to {from} again; Argo CD prunes Application {m}-{to}.\n",
        m = s.model,
        to = s.to,
        from = s.from
    )
}
