//! The GitOps repository through libgit2 (git2): commit exactly the files platform generated, push
//! without force, tell whether the generated tree is committed and on the branch Argo CD reads, and
//! read files at HEAD for `platform diff`.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use git2::{Cred, CredentialType, Direction, ErrorCode, Oid, Repository, StatusOptions};

use super::{GitopsError, TreeSource};

/// Environment variable holding a token for HTTPS pushes (used as the password; the user name is
/// PLATFORM_GIT_USERNAME, default `x-access-token`). Never printed.
pub const TOKEN_ENV: &str = "PLATFORM_GIT_TOKEN";
pub const USERNAME_ENV: &str = "PLATFORM_GIT_USERNAME";
/// Opt-in (besides `--allow-insecure-http`) to send git credentials over plain `http://`.
pub const ALLOW_HTTP_ENV: &str = "PLATFORM_GIT_ALLOW_INSECURE_HTTP";

/// Whether credentials may go to a remote over plain `http://`, where anyone on the path reads them
/// (Basic auth is the token in base64): only when the user says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// Refuse before any credential is sent (the default).
    #[default]
    Refuse,
    /// The user opted in (`--allow-insecure-http`).
    Allow,
}

/// Is `url` plain `http://` (no TLS)?
pub fn is_plain_http(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
}

/// Does `url` carry a password (`scheme://user:password@host/…`)? libgit2 sends it without asking.
fn has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0} is not inside a git repository (run `git init`, or pass --repo DIR)")]
    NotARepo(PathBuf),
    #[error("HEAD is detached: platform commits on a branch (run `git switch <branch>` first)")]
    Detached,
    #[error(
        "the index already has staged changes ({}): platform commits only the files it generated; \
         commit them first or unstage them (`git restore --staged <path>`), then re-run",
        .0.join(", ")
    )]
    StagedChanges(Vec<String>),
    #[error("{0} is ignored by .gitignore: Argo CD would never see it (remove the ignore rule)")]
    Ignored(String),
    #[error("no git identity to commit with: set one (`git config user.name \"…\"` and `git config user.email …`)")]
    NoIdentity,
    #[error(
        "push to {remote} ({branch}) was rejected: {reason}; nothing was forced: integrate the remote \
         branch (`git pull --rebase {remote} {branch}`), re-render, and push again"
    )]
    Rejected {
        remote: String,
        branch: String,
        reason: String,
    },
    #[error(
        "authentication to {remote} failed: use an ssh agent (ssh URLs), set {TOKEN_ENV} (https), or \
         configure a git credential helper"
    )]
    Auth { remote: String },
    #[error(
        "refusing to send git credentials to {remote} over plain http: anyone on the way could read \
         them; use an https:// or ssh URL, or pass --allow-insecure-http (or set {ALLOW_HTTP_ENV}=1) \
         to send them anyway"
    )]
    InsecureHttp { remote: String },
    #[error(
        "{0} exists: another git process is running in this repository, or one crashed; nothing was \
         written. If no git command is running, remove it and re-run"
    )]
    IndexLocked(PathBuf),
    #[error(
        "a {0} is in progress: platform will not commit in the middle of it; finish it (`git {1} --continue`) \
         or abort it (`git {1} --abort`), then re-run"
    )]
    InProgress(&'static str, &'static str),
    #[error("{what}: {message}")]
    Git { what: String, message: String },
}

fn git(what: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    let what = what.into();
    move |e| GitError::Git {
        what,
        message: redact(e.message()),
    }
}

/// Strip `user:password@` from URLs inside a message and mask their query string
/// (`?access_token=…` → `?***`): credentials are never printed, whichever part of a URL holds them.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let url_end = tail
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let (mut url, after) = tail.split_at(url_end);
        let authority_end = url.find('/').unwrap_or(url.len());
        if let Some(at) = url[..authority_end].rfind('@') {
            out.push_str("***@");
            url = &url[at + 1..];
        }
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?***");
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

pub struct GitRepo {
    repo: Repository,
    workdir: PathBuf,
}

/// Where the generated tree stands relative to the branch Argo CD reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushState {
    pub head: Oid,
    /// The remote branch's tip, None when the branch does not exist there.
    pub remote: Option<Oid>,
    /// HEAD is the remote tip or one of its ancestors.
    pub pushed: bool,
}

impl GitRepo {
    /// Open the repository whose work tree holds `path`.
    pub fn open(path: &Path) -> Result<GitRepo, GitError> {
        let repo =
            Repository::discover(path).map_err(|_| GitError::NotARepo(path.to_path_buf()))?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| GitError::NotARepo(path.to_path_buf()))?
            .to_path_buf();
        Ok(GitRepo { repo, workdir })
    }

    /// The libgit2 repository (for [`super::history`]).
    pub(crate) fn repository(&self) -> &Repository {
        &self.repo
    }

    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The current branch (also for a repository without commits yet); an error on a detached HEAD.
    pub fn branch(&self) -> Result<String, GitError> {
        match self.repo.head() {
            Ok(h) if h.is_branch() => Ok(h.shorthand().unwrap_or_default().to_string()),
            Ok(_) => Err(GitError::Detached),
            Err(e) if e.code() == ErrorCode::UnbornBranch => {
                let head = self
                    .repo
                    .find_reference("HEAD")
                    .map_err(git("reading HEAD"))?;
                let target = head
                    .symbolic_target()
                    .ok()
                    .flatten()
                    .unwrap_or("refs/heads/main");
                Ok(target
                    .strip_prefix("refs/heads/")
                    .unwrap_or(target)
                    .to_string())
            }
            Err(e) => Err(git("reading HEAD")(e)),
        }
    }

    /// URL of the `origin` remote.
    pub fn origin_url(&self) -> Option<String> {
        self.repo
            .find_remote("origin")
            .ok()?
            .url()
            .ok()
            .map(str::to_string)
    }

    fn head_tree(&self) -> Result<Option<git2::Tree<'_>>, GitError> {
        match self.repo.head() {
            Ok(h) => Ok(Some(h.peel_to_tree().map_err(git("reading HEAD's tree"))?)),
            Err(e) if e.code() == ErrorCode::UnbornBranch || e.code() == ErrorCode::NotFound => {
                Ok(None)
            }
            Err(e) => Err(git("reading HEAD")(e)),
        }
    }

    pub fn head_commit(&self) -> Option<Oid> {
        self.repo.head().ok()?.peel_to_commit().ok().map(|c| c.id())
    }

    /// Paths whose staged content differs from HEAD.
    pub fn staged_paths(&self) -> Result<Vec<String>, GitError> {
        let index = self.repo.index().map_err(git("reading the index"))?;
        let tree = self.head_tree()?;
        let diff = self
            .repo
            .diff_tree_to_index(tree.as_ref(), Some(&index), None)
            .map_err(git("comparing the index with HEAD"))?;
        Ok(diff
            .deltas()
            .filter_map(|d| {
                d.new_file()
                    .path()
                    .or(d.old_file().path())
                    .map(|p| p.to_string_lossy().into_owned())
            })
            .collect())
    }

    /// Everything that would make [`GitRepo::commit_paths`] refuse, checked before anything is
    /// written: a detached HEAD, a merge/rebase/cherry-pick/revert in progress, staged changes, no
    /// identity, a locked index.
    pub fn preflight_commit(&self) -> Result<(), GitError> {
        self.branch()?;
        let in_progress = match self.repo.state() {
            git2::RepositoryState::Clean => None,
            git2::RepositoryState::Merge => Some(("merge", "merge")),
            git2::RepositoryState::Revert | git2::RepositoryState::RevertSequence => {
                Some(("revert", "revert"))
            }
            git2::RepositoryState::CherryPick | git2::RepositoryState::CherryPickSequence => {
                Some(("cherry-pick", "cherry-pick"))
            }
            git2::RepositoryState::Bisect => Some(("bisect", "bisect")),
            _ => Some(("rebase", "rebase")),
        };
        if let Some((what, cmd)) = in_progress {
            return Err(GitError::InProgress(what, cmd));
        }
        let staged = self.staged_paths()?;
        if !staged.is_empty() {
            return Err(GitError::StagedChanges(staged));
        }
        self.repo.signature().map_err(|_| GitError::NoIdentity)?;
        let lock = self.index_lock_path();
        if lock.exists() {
            return Err(GitError::IndexLocked(lock));
        }
        Ok(())
    }

    fn index_lock_path(&self) -> PathBuf {
        self.repo.path().join("index.lock")
    }

    /// Stage exactly `paths` (added, changed or deleted in the work tree) and commit them.
    /// Returns None when they match HEAD already (nothing to commit). Refuses when anything else is
    /// staged, on a detached HEAD, during a merge or rebase, and for ignored paths.
    ///
    /// All or nothing: the commit object is made first without moving HEAD, then the index is
    /// written (this takes git's `index.lock`: a running git process makes it fail here, with
    /// nothing changed), then HEAD moves; if that last step fails, the index is put back.
    pub fn commit_paths(&self, paths: &[String], message: &str) -> Result<Option<Oid>, GitError> {
        self.preflight_commit()?;
        let index_file = self.repo.path().join("index");
        let original_index = std::fs::read(&index_file).ok();
        let mut index = self.repo.index().map_err(git("reading the index"))?;
        for p in paths {
            let rel = Path::new(p);
            if self.workdir.join(rel).exists() {
                if self.repo.is_path_ignored(rel).unwrap_or(false) {
                    return Err(GitError::Ignored(p.clone()));
                }
                index.add_path(rel).map_err(git(format!("staging {p}")))?;
            } else {
                match index.remove_path(rel) {
                    Ok(()) => {}
                    Err(e) if e.code() == ErrorCode::NotFound => {}
                    Err(e) => return Err(git(format!("staging the removal of {p}"))(e)),
                }
            }
        }
        let tree_id = index.write_tree().map_err(git("writing the tree"))?;
        let head_tree = self.head_tree()?;
        if head_tree.as_ref().map(|t| t.id()) == Some(tree_id) {
            return Ok(None);
        }
        let sig = self.repo.signature().map_err(|_| GitError::NoIdentity)?;
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(git("reading the new tree"))?;
        let parent = match self.repo.head() {
            Ok(h) => Some(h.peel_to_commit().map_err(git("reading HEAD"))?),
            Err(_) => None,
        };
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        // The commit object only: HEAD does not move yet.
        let oid = self
            .repo
            .commit(None, &sig, &sig, message, &tree, &parents)
            .map_err(git("committing"))?;
        index.write().map_err(|e| {
            if e.code() == ErrorCode::Locked || self.index_lock_path().exists() {
                GitError::IndexLocked(self.index_lock_path())
            } else {
                git("writing the index")(e)
            }
        })?;
        if let Err(e) = self.move_branch(oid, parent.as_ref().map(|c| c.id()), message) {
            // Put the index back as it was: HEAD did not move.
            match &original_index {
                Some(bytes) => {
                    let _ = tempfile::NamedTempFile::new_in(self.repo.path()).and_then(|mut t| {
                        std::io::Write::write_all(&mut t, bytes)?;
                        t.persist(&index_file).map(|_| ()).map_err(|e| e.error)
                    });
                }
                None => {
                    let _ = std::fs::remove_file(&index_file);
                }
            }
            return Err(e);
        }
        Ok(Some(oid))
    }

    /// Point the current branch at `oid`, only if it still points at `expected` (None: unborn).
    fn move_branch(&self, oid: Oid, expected: Option<Oid>, message: &str) -> Result<(), GitError> {
        let refname = format!("refs/heads/{}", self.branch()?);
        let log = format!("commit: {}", message.lines().next().unwrap_or_default());
        let res = match expected {
            Some(old) => self.repo.reference_matching(&refname, oid, true, old, &log),
            None => self.repo.reference(&refname, oid, false, &log),
        };
        res.map(|_| ())
            .map_err(git("moving the branch to the new commit"))
    }

    /// Paths under `dirs` (repo-relative files or folders) with uncommitted changes or untracked.
    pub fn dirty_paths(&self, dirs: &[String]) -> Result<Vec<String>, GitError> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false);
        for d in dirs {
            opts.pathspec(d.trim_end_matches('/'));
        }
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(git("reading the status"))?;
        Ok(statuses
            .iter()
            .filter_map(|s| s.path().ok().map(str::to_string))
            .collect())
    }

    /// The inputs of `clusters/<env>/` ([`super::input_paths`]) that differ from HEAD in the work
    /// tree (changed, added, removed; ignored files excepted), repo-relative.
    pub fn changed_inputs(&self, env: &str) -> Result<Vec<String>, GitError> {
        self.dirty_paths(&super::input_paths(env))
    }

    /// The remote to talk to for `url`: a configured remote with that URL, else `origin`.
    fn remote(&self, url: Option<&str>) -> Result<git2::Remote<'_>, GitError> {
        if let Some(url) = url {
            let names = self.repo.remotes().map_err(git("listing remotes"))?;
            for name in names.iter().flatten().flatten() {
                if let Ok(r) = self.repo.find_remote(name) {
                    if r.url().is_ok_and(|u| same_url(u, url)) {
                        return Ok(r);
                    }
                }
            }
            return self
                .repo
                .remote_anonymous(url)
                .map_err(git(format!("opening remote {}", redact(url))));
        }
        self.repo
            .find_remote("origin")
            .map_err(git("finding remote origin"))
    }

    /// Push the current branch to `branch` of the remote for `url` (or origin). Never forces.
    /// Credentials go over plain http only with [`PlainHttp::Allow`].
    pub fn push(&self, url: Option<&str>, branch: &str, http: PlainHttp) -> Result<(), GitError> {
        let local = self.branch()?;
        self.head_commit().ok_or_else(|| GitError::Git {
            what: "pushing".into(),
            message: "the branch has no commit yet".into(),
        })?;
        let mut remote = self.remote(url)?;
        let shown = redact(remote.url().unwrap_or("?"));
        refuse_url_password(&remote, &shown, http)?;
        let rejected = std::cell::RefCell::new(None::<String>);
        let config = self.repo.config().map_err(git("reading git config"))?;
        let refused = Cell::new(false);
        let mut callbacks = credentials_callbacks(&config, http, &refused);
        callbacks.push_update_reference(|_, status| {
            if let Some(msg) = status {
                *rejected.borrow_mut() = Some(msg.to_string());
            }
            Ok(())
        });
        let mut opts = git2::PushOptions::new();
        opts.remote_callbacks(callbacks);
        let refspec = format!("refs/heads/{local}:refs/heads/{branch}");
        let result = remote.push(&[refspec.as_str()], Some(&mut opts));
        drop(opts);
        if let Err(e) = result {
            if refused.get() {
                return Err(GitError::InsecureHttp { remote: shown });
            }
            return Err(classify_push_error(&e, &shown, branch));
        }
        if let Some(reason) = rejected.into_inner() {
            return Err(GitError::Rejected {
                remote: shown,
                branch: branch.to_string(),
                reason,
            });
        }
        Ok(())
    }

    /// Is HEAD on the remote branch Argo CD reads (the tip, or an ancestor of it)? Credentials go
    /// over plain http only with [`PlainHttp::Allow`].
    pub fn push_state(
        &self,
        url: Option<&str>,
        branch: &str,
        http: PlainHttp,
    ) -> Result<PushState, GitError> {
        let head = self.head_commit().ok_or_else(|| GitError::Git {
            what: "checking the remote".into(),
            message: "the branch has no commit yet".into(),
        })?;
        let mut remote = self.remote(url)?;
        let shown = redact(remote.url().unwrap_or("?"));
        refuse_url_password(&remote, &shown, http)?;
        let config = self.repo.config().map_err(git("reading git config"))?;
        let refused = Cell::new(false);
        let callbacks = credentials_callbacks(&config, http, &refused);
        let conn = remote
            .connect_auth(Direction::Fetch, Some(callbacks), None)
            .map_err(|e| match refused.get() {
                true => GitError::InsecureHttp {
                    remote: shown.clone(),
                },
                false => classify_push_error(&e, &shown, branch),
            })?;
        let want = format!("refs/heads/{branch}");
        let tip = conn
            .list()
            .map_err(git(format!("listing {shown}")))?
            .iter()
            .find(|h| h.name() == want)
            .map(|h| h.oid());
        drop(conn);
        let pushed = match tip {
            Some(t) if t == head => true,
            Some(t) => {
                self.repo.find_commit(t).is_ok()
                    && self.repo.graph_descendant_of(t, head).unwrap_or(false)
            }
            None => false,
        };
        Ok(PushState {
            head,
            remote: tip,
            pushed,
        })
    }

    /// HEAD against the local remote-tracking branch (`refs/remotes/<remote>/<branch>`) of the
    /// configured remote whose URL is `url`: what the last push or fetch saw, read without
    /// contacting the remote (no network, no credentials). None when there is no such branch.
    pub fn tracking_state(&self, url: &str, branch: &str) -> Option<PushState> {
        let head = self.head_commit()?;
        let names = self.repo.remotes().ok()?;
        let tip = names.iter().flatten().flatten().find_map(|name| {
            let r = self.repo.find_remote(name).ok()?;
            if !r.url().is_ok_and(|u| same_url(u, url)) {
                return None;
            }
            self.repo
                .find_reference(&format!("refs/remotes/{name}/{branch}"))
                .ok()?
                .target()
        })?;
        let pushed = tip == head || self.repo.graph_descendant_of(tip, head).unwrap_or(false);
        Some(PushState {
            head,
            remote: Some(tip),
            pushed,
        })
    }

    /// HEAD's files, for comparisons.
    pub fn head_source(&self) -> Result<HeadSource<'_>, GitError> {
        Ok(HeadSource {
            repo: &self.repo,
            tree: self.head_tree()?,
        })
    }
}

/// The same repository, whatever credential either URL carries (config.yaml's repoURL never has
/// one; a remote's may).
fn same_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        crate::url::without_credential(s)
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .to_string()
    };
    norm(a) == norm(b)
}

/// A password in the remote's URL over plain http is refused up front (libgit2 would send it
/// without asking the credentials callback).
fn refuse_url_password(
    remote: &git2::Remote<'_>,
    shown: &str,
    http: PlainHttp,
) -> Result<(), GitError> {
    let urls = [remote.url().ok(), remote.pushurl().ok().flatten()];
    let leaks = urls
        .iter()
        .flatten()
        .any(|u| is_plain_http(u) && has_password(u));
    if leaks && http == PlainHttp::Refuse {
        return Err(GitError::InsecureHttp {
            remote: shown.to_string(),
        });
    }
    Ok(())
}

/// Credentials for the remote: an ssh agent, the token of [`TOKEN_ENV`], git's credential helper.
/// Asked over plain http without [`PlainHttp::Allow`], it refuses and sets `refused`.
fn credentials_callbacks<'a>(
    config: &'a git2::Config,
    http: PlainHttp,
    refused: &'a Cell<bool>,
) -> git2::RemoteCallbacks<'a> {
    let attempts = Cell::new(0u32);
    let mut callbacks = git2::RemoteCallbacks::new();
    callbacks.credentials(move |url, username, allowed| {
        if http == PlainHttp::Refuse && is_plain_http(url) {
            refused.set(true);
            return Err(git2::Error::from_str(
                "refusing to send credentials over plain http",
            ));
        }
        attempts.set(attempts.get() + 1);
        if attempts.get() > 4 {
            return Err(git2::Error::from_str("authentication failed"));
        }
        if allowed.contains(CredentialType::SSH_KEY) && attempts.get() == 1 {
            return Cred::ssh_key_from_agent(username.unwrap_or("git"));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let Ok(token) = std::env::var(TOKEN_ENV) {
                let user = std::env::var(USERNAME_ENV).unwrap_or_else(|_| "x-access-token".into());
                return Cred::userpass_plaintext(&user, &token);
            }
            return Cred::credential_helper(config, url, username);
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(username.unwrap_or("git"));
        }
        Cred::default()
    });
    callbacks
}

fn classify_push_error(e: &git2::Error, remote: &str, branch: &str) -> GitError {
    let msg = e.message().to_lowercase();
    if e.code() == ErrorCode::NotFastForward
        || msg.contains("non-fast")
        || msg.contains("fastforward")
    {
        GitError::Rejected {
            remote: remote.to_string(),
            branch: branch.to_string(),
            reason: "non-fast-forward".into(),
        }
    } else if e.code() == ErrorCode::Auth
        || e.class() == git2::ErrorClass::Ssh && msg.contains("auth")
        || msg.contains("authentication")
    {
        GitError::Auth {
            remote: remote.to_string(),
        }
    } else {
        GitError::Git {
            what: format!("pushing to {remote}"),
            message: redact(e.message()),
        }
    }
}

/// The files of HEAD (an empty tree for a repository without commits).
pub struct HeadSource<'r> {
    repo: &'r Repository,
    tree: Option<git2::Tree<'r>>,
}

impl TreeSource for HeadSource<'_> {
    fn read(&self, rel: &str) -> Result<Option<String>, GitopsError> {
        let Some(tree) = &self.tree else {
            return Ok(None);
        };
        let Ok(entry) = tree.get_path(Path::new(rel)) else {
            return Ok(None);
        };
        let blob = match entry.to_object(self.repo).map(|o| o.into_blob()) {
            Ok(Ok(b)) => b,
            _ => return Ok(None),
        };
        Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
    }

    fn list(&self, dir: &str) -> Result<BTreeSet<String>, GitopsError> {
        let mut out = BTreeSet::new();
        let Some(tree) = &self.tree else {
            return Ok(out);
        };
        let sub = match tree
            .get_path(Path::new(dir))
            .and_then(|e| e.to_object(self.repo))
            .map(|o| o.into_tree())
        {
            Ok(Ok(t)) => t,
            _ => return Ok(out),
        };
        let _ = sub.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob) {
                out.insert(format!("{dir}/{root}{}", entry.name().unwrap_or_default()));
            }
            git2::TreeWalkResult::Ok
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_urls() {
        assert_eq!(
            redact("failed to push to https://bob:s3cret@example.com/repo.git: denied"),
            "failed to push to https://***@example.com/repo.git: denied"
        );
        assert_eq!(
            redact("https://example.com/a.git"),
            "https://example.com/a.git"
        );
        assert_eq!(redact("no url here"), "no url here");
        // A query string is masked whole (issue 19 High 6): `?private_token=`, `?sig=`, any name.
        assert_eq!(
            redact("pushing to https://h/a/x.git?private_token=glpat-s3cret: denied"),
            "pushing to https://h/a/x.git?*** denied"
        );
        assert_eq!(
            redact("'https://u:p@h/x.git?access_token=t&x=1' and https://h/y"),
            "'https://***@h/x.git?***' and https://h/y"
        );
    }

    #[test]
    fn plain_http_and_url_passwords_are_recognised() {
        assert!(is_plain_http("http://git.example.com/a.git"));
        assert!(is_plain_http("HTTP://git.example.com/a.git"));
        assert!(!is_plain_http("https://git.example.com/a.git"));
        assert!(!is_plain_http("git@github.com:acme/x.git"));
        assert!(!is_plain_http("http"));
        assert!(has_password("http://bob:s3cret@h/x.git"));
        assert!(!has_password("http://bob@h/x.git"));
        assert!(!has_password("http://h/x.git?a=b:c@d"));
        assert!(!has_password("ssh://git@h:22/x.git"));
    }

    #[test]
    fn same_url_ignores_dot_git_and_slash() {
        assert!(same_url("https://h/x/repo.git", "https://h/x/repo"));
        assert!(!same_url("https://h/x/repo", "https://h/y/repo"));
    }
}
