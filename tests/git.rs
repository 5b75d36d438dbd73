//! GitOps repository integration against real repositories: a temp work tree with a bare repository
//! as its `origin` (file://), driven through the binary; git state checked with git2.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;

use std::path::Path;

use common::{stderr, TempRepo};
use git2::{Repository, Signature};
use platform::gitops::git::GitRepo;

struct Fixture {
    repo: TempRepo,
    _remote_dir: tempfile::TempDir,
    remote_url: String,
}

/// A work tree with the shipped catalog/environments (config pointing at the bare remote), an
/// identity, and `origin` = the bare repository. No commit yet.
fn fixture() -> Fixture {
    let repo = TempRepo::new();
    let remote_dir = tempfile::tempdir().unwrap();
    let bare = Repository::init_bare(remote_dir.path()).unwrap();
    bare.set_head("refs/heads/main").unwrap();
    let remote_url = format!("file://{}", remote_dir.path().display());
    let g = Repository::init(repo.path()).unwrap();
    let mut cfg = g.config().unwrap();
    cfg.set_str("user.name", "Test Operator").unwrap();
    cfg.set_str("user.email", "ops@example.com").unwrap();
    g.remote("origin", &remote_url).unwrap();
    let text = repo.read("environments/ai-dev/config.yaml").replace(
        "repoURL: https://github.com/example-org/ai-platform.git",
        &format!("repoURL: {remote_url}"),
    );
    repo.env("ai-dev", &text);
    Fixture {
        repo,
        _remote_dir: remote_dir,
        remote_url,
    }
}

fn git(path: &Path) -> Repository {
    Repository::open(path).unwrap()
}

fn head_message(path: &Path) -> String {
    git(path)
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .message()
        .unwrap()
        .to_string()
}

fn head_files(path: &Path) -> Vec<String> {
    let r = git(path);
    let tree = r.head().unwrap().peel_to_tree().unwrap();
    let mut out = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |root, e| {
        if e.kind() == Some(git2::ObjectType::Blob) {
            out.push(format!("{root}{}", e.name().unwrap()));
        }
        git2::TreeWalkResult::Ok
    })
    .unwrap();
    out
}

fn commit_all(path: &Path, msg: &str, files: &[&str]) {
    let r = git(path);
    let mut idx = r.index().unwrap();
    for f in files {
        idx.add_path(Path::new(f)).unwrap();
    }
    idx.write().unwrap();
    let tree = r.find_tree(idx.write_tree().unwrap()).unwrap();
    let sig = Signature::now("t", "t@example.com").unwrap();
    let parent = r.head().ok().map(|h| h.peel_to_commit().unwrap());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    r.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
        .unwrap();
}

#[test]
fn first_commit_contains_only_generated_files_and_says_what_changed() {
    let f = fixture();
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("committed"), "{}", stderr(&o));
    let msg = head_message(f.repo.path());
    assert!(
        msg.starts_with("platform: render ai-dev (profile full)"),
        "{msg}"
    );
    assert!(msg.contains("- models added: qwen-cpu, qwen-gpu"), "{msg}");
    assert!(
        msg.contains("- groups enabled: argocd, kserve, model-routing, platform-core, raw-vllm"),
        "{msg}"
    );
    let files = head_files(f.repo.path());
    assert!(!files.is_empty());
    // The tree and the inputs that produced it (config.yaml, the repository's catalog/), nothing
    // else.
    assert!(
        files.iter().all(|p| p.starts_with("clusters/ai-dev/")
            || p == "environments/ai-dev/config.yaml"
            || p.starts_with("catalog/")),
        "{files:?}"
    );
    assert!(
        msg.contains("- inputs: environments/ai-dev/config.yaml, catalog/ ("),
        "{msg}"
    );

    // Again: nothing to commit, HEAD unchanged.
    let head = git(f.repo.path()).head().unwrap().target().unwrap();
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert!(o.status.success());
    assert!(stderr(&o).contains("nothing to commit"), "{}", stderr(&o));
    assert_eq!(git(f.repo.path()).head().unwrap().target().unwrap(), head);
}

#[test]
fn user_changes_are_never_swept_in_and_staged_ones_are_refused() {
    let f = fixture();
    f.repo.write("NOTES.md", "v1\n");
    commit_all(f.repo.path(), "user commit", &["NOTES.md"]);
    f.repo.write("NOTES.md", "v2 (unstaged edit)\n");
    f.repo.write("scratch.txt", "untracked\n");
    let o = f
        .repo
        .cmd()
        .args(["root", "--commit", "-m", "enable the serving layer"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(head_message(f.repo.path()).starts_with("platform: enable the serving layer\n"));
    let r = git(f.repo.path());
    let head = r.head().unwrap().peel_to_commit().unwrap();
    let parent = head.parent(0).unwrap();
    let diff = r
        .diff_tree_to_tree(
            Some(&parent.tree().unwrap()),
            Some(&head.tree().unwrap()),
            None,
        )
        .unwrap();
    // The tree and its inputs (config.yaml, catalog/): never the user's NOTES.md or scratch.txt.
    assert!(diff.deltas().all(|d| {
        let p = d.new_file().path().unwrap();
        p.starts_with("clusters/ai-dev")
            || p.starts_with("catalog")
            || p == Path::new("environments/ai-dev/config.yaml")
    }));
    assert_eq!(
        f.repo.read("NOTES.md"),
        "v2 (unstaged edit)\n",
        "the user's edit was touched"
    );
    let st = r.status_file(Path::new("NOTES.md")).unwrap();
    assert!(st.contains(git2::Status::WT_MODIFIED), "{st:?}");

    // A user change already staged: refuse, and write nothing.
    let mut idx = r.index().unwrap();
    idx.add_path(Path::new("NOTES.md")).unwrap();
    idx.write().unwrap();
    let cfg = f
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("servedName: qwen2.5-0.5b\n", "servedName: q\n");
    f.repo.env("ai-dev", &cfg);
    let before = f.repo.tree("clusters");
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("staged changes (NOTES.md)"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("git restore --staged"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        f.repo.tree("clusters"),
        before,
        "files were written although the commit was refused"
    );
}

#[test]
fn push_lands_on_the_remote_branch_and_push_state_sees_it() {
    let f = fixture();
    let o = f
        .repo
        .cmd()
        .args(["root", "--commit", "--push"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("pushed to"), "{}", stderr(&o));
    let local = git(f.repo.path()).head().unwrap().target().unwrap();
    let remote = Repository::open_bare(f._remote_dir.path()).unwrap();
    assert_eq!(
        remote.find_reference("refs/heads/main").unwrap().target(),
        Some(local)
    );

    let g = GitRepo::open(f.repo.path()).unwrap();
    let st = g
        .push_state(
            Some(&f.remote_url),
            "main",
            platform::gitops::git::PlainHttp::Refuse,
        )
        .unwrap();
    assert!(st.pushed, "{st:?}");
    // A local commit not pushed yet.
    let cfg = f
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("servedName: qwen2.5-0.5b\n", "servedName: q\n");
    f.repo.env("ai-dev", &cfg);
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    let st = g
        .push_state(
            Some(&f.remote_url),
            "main",
            platform::gitops::git::PlainHttp::Refuse,
        )
        .unwrap();
    assert!(!st.pushed, "{st:?}");
    assert_eq!(st.remote, Some(local));
}

#[test]
fn a_non_fast_forward_push_is_reported_not_forced() {
    let f = fixture();
    f.repo
        .cmd()
        .args(["root", "--commit", "--push"])
        .assert()
        .success();
    // Someone else pushes first.
    let other = tempfile::tempdir().unwrap();
    let o = Repository::clone(&f.remote_url, other.path()).unwrap();
    std::fs::write(other.path().join("OTHER.md"), "x\n").unwrap();
    commit_all(other.path(), "someone else", &["OTHER.md"]);
    let mut remote = o.find_remote("origin").unwrap();
    remote
        .push(&["refs/heads/main:refs/heads/main"], None)
        .unwrap();
    let theirs = o.head().unwrap().target().unwrap();
    // We commit and push: rejected.
    let cfg = f
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("servedName: qwen2.5-0.5b\n", "servedName: q\n");
    f.repo.env("ai-dev", &cfg);
    let out = f
        .repo
        .cmd()
        .args(["root", "--commit", "--push"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("rejected") && e.contains("non-fast-forward") && e.contains("git pull --rebase"),
        "{e}"
    );
    let remote = Repository::open_bare(f._remote_dir.path()).unwrap();
    assert_eq!(
        remote.find_reference("refs/heads/main").unwrap().target(),
        Some(theirs),
        "the remote was overwritten"
    );
}

#[test]
fn diff_compares_with_head_or_the_working_tree() {
    let f = fixture();
    // No commit yet: everything differs from HEAD.
    let o = f.repo.cmd().arg("diff").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    f.repo.cmd().arg("diff").assert().success();
    let cfg = f
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("servedName: qwen2.5-0.5b\n", "servedName: q\n");
    f.repo.env("ai-dev", &cfg);
    let o = f.repo.cmd().arg("diff").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("--- a/clusters/ai-dev/models/qwen-cpu/kserve-inferenceservice.yaml"),
        "{out}"
    );
    assert!(out.contains("+          - --served-model-name=q"), "{out}");
    // Rendered to disk but not committed: the working tree matches, HEAD does not.
    f.repo.cmd().arg("root").assert().success();
    f.repo
        .cmd()
        .args(["diff", "--working-tree"])
        .assert()
        .success();
    assert_eq!(
        f.repo.cmd().arg("diff").output().unwrap().status.code(),
        Some(1)
    );
}

#[test]
fn detached_head_and_ignored_output_get_clear_errors() {
    let f = fixture();
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    let r = git(f.repo.path());
    let head = r.head().unwrap().target().unwrap();
    r.set_head_detached(head).unwrap();
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("HEAD is detached") && stderr(&o).contains("git switch"),
        "{}",
        stderr(&o)
    );

    let f = fixture();
    f.repo.write(".gitignore", "/clusters/\n");
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is ignored by .gitignore"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn repo_url_and_branch_default_from_git() {
    let f = fixture();
    let cfg = f
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace(&format!("repoURL: {}\n", f.remote_url), "")
        .replace("repoBranch: main\n", "");
    f.repo.env("ai-dev", &cfg);
    // Work on a branch named `gitops`.
    let r = git(f.repo.path());
    r.set_head("refs/heads/gitops").unwrap();
    let o = f.repo.cmd().args(["root"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("repoURL is not set in config.yaml: using origin's"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("using the current git branch, gitops"),
        "{}",
        stderr(&o)
    );
    let app = f.repo.read("clusters/ai-dev/root-serving.yaml");
    assert!(app.contains(&format!("repoURL: {}", f.remote_url)), "{app}");
    assert!(app.contains("targetRevision: gitops"), "{app}");
}

#[test]
fn credentials_never_appear_in_errors() {
    let f = fixture();
    // config.yaml's repoURL may not carry one (refused at load, exit 1); the remote's URL may.
    let cfg = f.repo.read("environments/ai-dev/config.yaml").replace(
        &format!("repoURL: {}", f.remote_url),
        "repoURL: https://127.0.0.1:9/nowhere.git",
    );
    f.repo.env("ai-dev", &cfg);
    git(f.repo.path())
        .remote_set_url("origin", "https://operator:hunter2@127.0.0.1:9/nowhere.git")
        .unwrap();
    let o = f
        .repo
        .cmd()
        .args(["root", "--commit", "--push"])
        .env("PLATFORM_GIT_TOKEN", "tok-secret")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    let all = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
    assert!(
        !all.contains("hunter2") && !all.contains("tok-secret"),
        "{all}"
    );
}

/// A snapshot of what git sees: HEAD, the index file's bytes, and every file's status.
fn git_state(path: &Path) -> (Option<git2::Oid>, Vec<u8>, Vec<(String, git2::Status)>) {
    let r = git(path);
    let head = r.head().ok().and_then(|h| h.target());
    let index = std::fs::read(path.join(".git/index")).unwrap_or_default();
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    let statuses = r
        .statuses(Some(&mut opts))
        .unwrap()
        .iter()
        .map(|e| (e.path().unwrap_or("").to_string(), e.status()))
        .collect();
    (head, index, statuses)
}

#[test]
fn a_locked_index_leaves_the_repository_exactly_as_it_was() {
    let f = fixture();
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    // A change to commit, and another git process holding the index.
    let cfg = f
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("repoBranch: main", "repoBranch: release");
    f.repo.env("ai-dev", &cfg);
    let lock = f.repo.path().join(".git/index.lock");
    std::fs::write(&lock, "").unwrap();
    let before = git_state(f.repo.path());
    let o = f
        .repo
        .cmd()
        .args(["root", "--commit", "-m", "t"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("index.lock"), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing was written"), "{}", stderr(&o));
    assert_eq!(git_state(f.repo.path()), before, "the repository changed");

    // Lock gone: the same command commits, and the work tree is clean for the generated files.
    std::fs::remove_file(&lock).unwrap();
    f.repo
        .cmd()
        .args(["root", "--commit", "-m", "t"])
        .assert()
        .success();
    let msg = head_message(f.repo.path());
    assert!(msg.starts_with("platform: t"), "{msg}");
    let (_, _, statuses) = git_state(f.repo.path());
    assert!(
        !statuses.iter().any(|(p, _)| p.starts_with("clusters/")),
        "{statuses:?}"
    );
}

#[test]
fn a_merge_in_progress_is_refused_before_anything_is_written() {
    let f = fixture();
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    let head = git(f.repo.path()).head().unwrap().target().unwrap();
    std::fs::write(f.repo.path().join(".git/MERGE_HEAD"), format!("{head}\n")).unwrap();
    let cfg = f
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("servedName: qwen2.5-0.5b\n", "servedName: q\n");
    f.repo.env("ai-dev", &cfg);
    let before = std::fs::read_to_string(
        f.repo
            .path()
            .join("clusters/ai-dev/models/qwen-cpu/kserve-inferenceservice.yaml"),
    )
    .unwrap();
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("merge is in progress"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("git merge --abort"), "{}", stderr(&o));
    assert_eq!(git(f.repo.path()).head().unwrap().target().unwrap(), head);
    let after = std::fs::read_to_string(
        f.repo
            .path()
            .join("clusters/ai-dev/models/qwen-cpu/kserve-inferenceservice.yaml"),
    )
    .unwrap();
    assert_eq!(before, after, "the tree was written before the refusal");
}

#[test]
fn no_git_identity_is_refused_before_the_tree_is_written() {
    let f = fixture();
    let r = git(f.repo.path());
    let mut cfg = r.config().unwrap();
    cfg.remove("user.name").unwrap();
    cfg.remove("user.email").unwrap();
    let o = f
        .repo
        .cmd()
        .args(["root", "--commit"])
        .env("HOME", f.repo.path())
        .env("XDG_CONFIG_HOME", f.repo.path())
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .env_remove("GIT_COMMITTER_NAME")
        .env_remove("GIT_COMMITTER_EMAIL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no git identity"), "{}", stderr(&o));
    assert!(
        !f.repo.exists("clusters/ai-dev"),
        "the tree was written before the refusal"
    );
}

#[test]
fn the_output_tree_lock_lives_in_the_git_directory_never_in_status_or_commits() {
    let f = fixture();
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.repo.cmd().args(["resolve-groups"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(f
        .repo
        .path()
        .join(".git/platform/clusters/ai-dev.lock")
        .is_file());
    let (_, _, statuses) = git_state(f.repo.path());
    let lockish: Vec<&String> = statuses
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.contains("lock"))
        .collect();
    assert!(lockish.is_empty(), "{lockish:?}");
    assert!(!head_files(f.repo.path()).iter().any(|p| p.contains("lock")));
    // While another run holds it, `root --commit` is refused before writing or committing.
    let head = git(f.repo.path()).head().unwrap().target();
    let held = platform::gitops::lock_tree(f.repo.path(), "ai-dev", "root").unwrap();
    let cfg = f
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("servedName: qwen2.5-0.5b\n", "servedName: qwen-small\n");
    f.repo.env("ai-dev", &cfg);
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("another `platform root` is writing clusters/ai-dev/"),
        "{}",
        stderr(&o)
    );
    assert_eq!(git(f.repo.path()).head().unwrap().target(), head);
    drop(held);
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Issue 24: the tree's index (a file's status and sum, so that an unchanged file is not read
/// again) lives beside the lock, never in status or commits, and hides no change made behind
/// root's back, even one that keeps the file's size.
#[test]
fn the_tree_index_lives_beside_the_lock_and_hides_no_change() {
    let f = fixture();
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let index = f.repo.path().join(".git/platform/clusters/ai-dev.index");
    // Files are recorded once their status has settled (3 s); a run that reads them records them.
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let o = f.repo.cmd().args(["root"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&index).unwrap();
    let rel = "clusters/ai-dev/apps/platform/argocd/argocd.yaml";
    assert!(text.contains(&format!(" {rel}\n")), "{text}");
    let (_, _, statuses) = git_state(f.repo.path());
    assert!(
        statuses.iter().all(|(p, _)| !p.contains("index")),
        "{statuses:?}"
    );
    assert!(!head_files(f.repo.path())
        .iter()
        .any(|p| p.ends_with(".index")));

    // The same size, changed at once (the index says nothing of a file changed since).
    let old = f.repo.read(rel);
    let new = old.replacen("argocd", "argoCD", 1);
    assert_eq!((old.len(), new != old), (new.len(), true));
    f.repo.write(rel, &new);
    let o = f.repo.cmd().args(["root", "--check"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let diff = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(diff.contains(rel) && diff.contains("argoCD"), "{diff}");
    let o = f.repo.cmd().args(["root"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(f.repo.read(rel), old);
    // A run that wrote does not record (the files it wrote have new times).
    assert_eq!(std::fs::read_to_string(&index).unwrap(), text);

    // An index that is not one platform writes is ignored.
    std::fs::write(&index, "platform tree index 1\ngarbage\n").unwrap();
    f.repo.write(rel, &new);
    let o = f.repo.cmd().args(["root", "--check"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

/// A large config.yaml is parsed once per text (issue 24): the parsed form is kept beside the
/// tree's lock by a run that holds it, read back by the next command, never in the tree or in
/// git, and an edit of the same length is seen at once.
#[test]
fn a_large_config_is_kept_parsed_beside_the_lock_and_an_edit_is_seen() {
    let f = fixture();
    let mut cfg = f.repo.read("environments/ai-dev/config.yaml");
    for i in 0..250 {
        cfg.push_str(&format!(
            "  - name: extra-{i:03}\n    layer: raw-vllm\n    source: hf://Qwen/Qwen2.5-7B-Instruct\n    \
             servedName: extra-{i:03}\n    preset: vllm-gpu\n    gpus: 1\n    maxModelLen: 16384\n    \
             resources:\n      requests: {{ cpu: \"4\", memory: 24Gi }}\n      limits: {{ memory: 32Gi }}\n    \
             storage: {{ dir: extra, size: 40Gi }}\n"
        ));
    }
    assert!(cfg.len() > 64 * 1024, "{}", cfg.len());
    f.repo.env("ai-dev", &cfg);
    let kept = f.repo.path().join(".git/platform/clusters/ai-dev.config");
    let check = || f.repo.cmd().args(["root", "--check"]).output().unwrap();
    let o = f.repo.cmd().args(["root", "--commit"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let first = std::fs::read_to_string(&kept).unwrap();
    assert!(
        first.starts_with("platform parsed config 1 build "),
        "{first:.200}"
    );
    let rel = "clusters/ai-dev/models/extra-007/raw-vllm-deployment.yaml";
    assert!(f.repo.read(rel).contains("--served-model-name=extra-007"));
    let (_, _, statuses) = git_state(f.repo.path());
    assert!(statuses.is_empty(), "{statuses:?}");
    assert!(!head_files(f.repo.path())
        .iter()
        .any(|p| p.ends_with(".config")));

    // The next command reads it (here a served name changed in the kept JSON by hand).
    let planted = first.replacen(
        "\"servedName\":\"extra-007\"",
        "\"servedName\":\"extra-kpt\"",
        1,
    );
    assert_ne!(planted, first);
    std::fs::write(&kept, &planted).unwrap();
    let o = check();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("extra-kpt"));
    std::fs::write(&kept, &first).unwrap();
    let o = check();
    assert!(o.status.success(), "{}", stderr(&o));

    // An edit of the same length: another text, parsed; `--check` keeps nothing, `root` does.
    let edited = cfg.replacen("servedName: extra-007\n", "servedName: extra-70x\n", 1);
    assert_eq!((edited.len(), edited != cfg), (cfg.len(), true));
    f.repo.env("ai-dev", &edited);
    let o = check();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), first);
    let o = f.repo.cmd().args(["root"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(f.repo.read(rel).contains("--served-model-name=extra-70x"));
    let second = std::fs::read_to_string(&kept).unwrap();
    assert!(second != first && second.contains("extra-70x"));

    // A kept config that does not deserialize under the right key is ignored (and replaced).
    let key = second.split_once('\n').unwrap().0;
    std::fs::write(&kept, format!("{key}\n{{\"models\": 3")).unwrap();
    let o = check();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.repo.cmd().args(["root"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), second);
}

/// Issue 23 friction 1: `root --commit` commits the inputs that produced the tree with it (the
/// environment's config.yaml, the repository's catalog/ and templates/), and only them.
#[test]
fn the_commit_carries_the_inputs_that_produced_the_tree() {
    let f = fixture();
    f.repo.write("NOTES.md", "v1\n");
    commit_all(f.repo.path(), "user commit", &["NOTES.md"]);
    f.repo.write("NOTES.md", "v2 (unstaged edit)\n");
    f.repo.write("scratch.txt", "untracked\n");
    f.repo
        .write("environments/other/notes.txt", "not an input\n");
    let o = f
        .repo
        .cmd()
        .args(["root", "--commit", "--push"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("with its inputs environments/ai-dev/config.yaml, catalog/ ("),
        "{}",
        stderr(&o)
    );
    // A change of config.yaml: the next commit holds it with the tree it renders.
    let cfg = f
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("servedName: qwen2.5-0.5b\n", "servedName: q\n");
    f.repo.env("ai-dev", &cfg);
    let o = f
        .repo
        .cmd()
        .args(["root", "--commit", "--push"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("with its inputs environments/ai-dev/config.yaml as "),
        "{}",
        stderr(&o)
    );
    let r = git(f.repo.path());
    let head = r.head().unwrap().peel_to_commit().unwrap();
    let diff = r
        .diff_tree_to_tree(
            Some(&head.parent(0).unwrap().tree().unwrap()),
            Some(&head.tree().unwrap()),
            None,
        )
        .unwrap();
    let changed: Vec<String> = diff
        .deltas()
        .map(|d| d.new_file().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        changed.contains(&"environments/ai-dev/config.yaml".to_string()),
        "{changed:?}"
    );
    assert!(
        changed
            .iter()
            .all(|p| p.starts_with("clusters/ai-dev/") || p == "environments/ai-dev/config.yaml"),
        "{changed:?}"
    );
    // config.yaml is committed; the user's other changes are as they were.
    let st = r
        .status_file(Path::new("environments/ai-dev/config.yaml"))
        .unwrap();
    assert!(st.is_empty(), "{st:?}");
    assert!(r
        .status_file(Path::new("NOTES.md"))
        .unwrap()
        .contains(git2::Status::WT_MODIFIED));
    assert!(r
        .status_file(Path::new("scratch.txt"))
        .unwrap()
        .contains(git2::Status::WT_NEW));
    assert!(r
        .status_file(Path::new("environments/other/notes.txt"))
        .unwrap()
        .contains(git2::Status::WT_NEW));
    // Nothing left to warn about.
    let o = f.repo.cmd().arg("diff").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning:"), "{}", stderr(&o));
}

/// Issue 23 friction 1: `diff` and `up` warn when the inputs in the work tree differ from HEAD,
/// and when HEAD is not on the branch Argo CD reads.
#[test]
fn diff_and_up_warn_about_uncommitted_inputs_and_an_unpushed_head() {
    let f = fixture();
    f.repo
        .cmd()
        .args(["root", "--commit", "--push"])
        .assert()
        .success();
    // A change that renders the same tree: diff is clean, but the input is not committed.
    let cfg = f.repo.read("environments/ai-dev/config.yaml") + "# a note\n";
    f.repo.env("ai-dev", &cfg);
    let o = f.repo.cmd().arg("diff").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("warning: the inputs of clusters/ai-dev/ differ from HEAD: environments/ai-dev/config.yaml (not committed)"),
        "{e}"
    );
    assert!(
        e.contains("help: commit them with the tree they render: `platform root --env ai-dev --commit --push`"),
        "{e}"
    );
    assert!(!e.contains("not pushed"), "{e}");
    let o = f
        .repo
        .cmd()
        .args(["up", "--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("warning: the inputs of clusters/ai-dev/ differ from HEAD"),
        "{}",
        stderr(&o)
    );
    // Committed, not pushed.
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    let o = f.repo.cmd().arg("diff").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(!e.contains("the inputs of"), "{e}");
    assert!(e.contains("(not pushed)"), "{e}");
    assert!(
        e.contains("help: push it: `platform root --env ai-dev --commit --push`"),
        "{e}"
    );
    let o = f
        .repo
        .cmd()
        .args([
            "up",
            "--allow-unpushed",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ])
        .output()
        .unwrap();
    assert!(stderr(&o).contains("(not pushed)"), "{}", stderr(&o));
}

/// Review finding 4: `diff --cluster` warns about uncommitted inputs and an unpushed HEAD too,
/// before it connects.
#[test]
fn diff_cluster_warns_about_uncommitted_inputs_and_an_unpushed_head() {
    let f = fixture();
    f.repo
        .cmd()
        .args(["root", "--commit", "--push"])
        .assert()
        .success();
    let cfg = f.repo.read("environments/ai-dev/config.yaml") + "# a note\n";
    f.repo.env("ai-dev", &cfg);
    let o = f
        .repo
        .cmd()
        .args([
            "diff",
            "--cluster",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("warning: the inputs of clusters/ai-dev/ differ from HEAD: environments/ai-dev/config.yaml (not committed)"),
        "{e}"
    );
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    let o = f
        .repo
        .cmd()
        .args([
            "diff",
            "--cluster",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("(not pushed)"), "{}", stderr(&o));
}

/// `platform history`: the render commits of the environment, newest first, with the files and
/// models each changed; other commits are not listed.
#[test]
fn history_lists_the_render_commits_newest_first_with_what_they_changed() {
    let f = fixture();
    let o = f.repo.cmd().arg("history").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no render commit"), "{}", stderr(&o));
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    f.repo.write("NOTES.md", "x\n");
    commit_all(f.repo.path(), "user notes", &["NOTES.md"]);
    let cfg = f
        .repo
        .read("environments/ai-dev/config.yaml")
        .replace("servedName: qwen2.5-0.5b\n", "servedName: q\n");
    f.repo.env("ai-dev", &cfg);
    f.repo
        .cmd()
        .args(["root", "--commit", "-m", "rename qwen-cpu"])
        .assert()
        .success();
    f.repo.env("ai-dev", &(cfg + common::EXTRA_MODEL));
    f.repo
        .cmd()
        .args(["root", "--commit", "-m", "add qwen-extra"])
        .assert()
        .success();

    let o = f
        .repo
        .cmd()
        .args(["history", "-o", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let revs = v.as_array().unwrap();
    let subjects: Vec<&str> = revs
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "platform: add qwen-extra",
            "platform: rename qwen-cpu",
            "platform: render ai-dev (profile full)"
        ]
    );
    let head = git(f.repo.path())
        .head()
        .unwrap()
        .target()
        .unwrap()
        .to_string();
    assert_eq!(revs[0]["commit"], head.as_str());
    assert!(head.starts_with(revs[0]["rev"].as_str().unwrap()));
    assert_eq!(
        revs[0]["models"]["added"],
        serde_json::json!(["qwen-extra"])
    );
    assert!(revs[0]["files"]["added"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "clusters/ai-dev/models/qwen-extra/raw-vllm-deployment.yaml"));
    assert_eq!(revs[0]["files"]["removed"], serde_json::json!([]));
    assert_eq!(
        revs[1]["models"]["changed"],
        serde_json::json!(["qwen-cpu"])
    );
    assert_eq!(revs[1]["models"]["added"], serde_json::json!([]));
    assert_eq!(
        revs[1]["inputs"],
        serde_json::json!(["environments/ai-dev/config.yaml"])
    );
    assert!(revs[2]["models"]["added"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "qwen-cpu"));
    assert!(revs[2]["date"].as_str().unwrap().ends_with('Z'));

    let o = f
        .repo
        .cmd()
        .args(["history", "-n", "1", "-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    let o = f.repo.cmd().arg("history").output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("REV") && out.contains("SUBJECT"), "{out}");
    assert!(out.contains("models +qwen-extra"), "{out}");
    assert!(out.contains("models ~qwen-cpu"), "{out}");
    assert!(!out.contains("user notes"), "{out}");
}

fn tree_id(repo: &Repository, commit: git2::Oid, path: &str) -> git2::Oid {
    repo.find_commit(commit)
        .unwrap()
        .tree()
        .unwrap()
        .get_path(Path::new(path))
        .unwrap()
        .id()
}

/// `platform rollback`: refuses uncommitted work on what it restores, prints what it would restore,
/// then makes a new commit whose inputs and tree equal the target's, and pushes it.
#[test]
fn rollback_commits_the_targets_inputs_and_tree_anew_and_pushes_it() {
    let f = fixture();
    let o = f
        .repo
        .cmd()
        .args(["rollback", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    f.repo
        .cmd()
        .args(["root", "--commit", "--push"])
        .assert()
        .success();
    let r = git(f.repo.path());
    let a = r.head().unwrap().target().unwrap();
    let o = f.repo.cmd().args(["rollback"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no earlier one to roll back to"),
        "{}",
        stderr(&o)
    );
    let cfg_a = f.repo.read("environments/ai-dev/config.yaml");
    f.repo.env("ai-dev", &(cfg_a.clone() + common::EXTRA_MODEL));
    f.repo
        .cmd()
        .args(["root", "--commit", "--push", "-m", "add qwen-extra"])
        .assert()
        .success();
    let b = r.head().unwrap().target().unwrap();
    f.repo.write("NOTES.md", "mine, untracked\n");

    // Uncommitted work on what a rollback restores: refused, nothing written.
    let pending = f.repo.read("environments/ai-dev/config.yaml") + "# pending\n";
    f.repo.env("ai-dev", &pending);
    let o = f.repo.cmd().arg("rollback").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(
            "uncommitted changes to what a rollback restores (environments/ai-dev/config.yaml)"
        ) && e.contains(
            "git stash push -- clusters/ai-dev environments/ai-dev/config.yaml catalog templates"
        ),
        "{e}"
    );
    assert_eq!(f.repo.read("environments/ai-dev/config.yaml"), pending);
    assert_eq!(r.head().unwrap().target().unwrap(), b);
    // --dry-run says so too (review finding 5).
    let o = f
        .repo
        .cmd()
        .args(["rollback", "--dry-run"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "warning: uncommitted changes to what a rollback restores (environments/ai-dev/config.yaml)"
        ) && stderr(&o).contains("(the real run refuses them)"),
        "{}",
        stderr(&o)
    );
    let o = f
        .repo
        .cmd()
        .args(["rollback", "--dry-run", "-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["uncommitted"],
        serde_json::json!(["environments/ai-dev/config.yaml"])
    );
    f.repo.env("ai-dev", &(cfg_a.clone() + common::EXTRA_MODEL));

    // --dry-run: what would be restored, nothing written.
    let o = f
        .repo
        .cmd()
        .args(["rollback", "--dry-run"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("D clusters/ai-dev/models/qwen-extra/raw-vllm-deployment.yaml"),
        "{out}"
    );
    assert!(
        out.contains("input environments/ai-dev/config.yaml"),
        "{out}"
    );
    assert!(out.contains("model removed: qwen-extra"), "{out}");
    assert!(f
        .repo
        .exists("clusters/ai-dev/models/qwen-extra/raw-vllm-deployment.yaml"));
    assert_eq!(r.head().unwrap().target().unwrap(), b);

    // The rollback: a new commit on top of B whose inputs and tree are A's, pushed.
    let o = f
        .repo
        .cmd()
        .args(["rollback", "--push", "--no-sync", "-o", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["target"]["commit"], a.to_string().as_str());
    assert_eq!(v["models"]["removed"], serde_json::json!(["qwen-extra"]));
    let new = r.head().unwrap().target().unwrap();
    assert_eq!(v["committed"], new.to_string().as_str());
    let c = r.find_commit(new).unwrap();
    assert_eq!(c.parent_id(0).unwrap(), b);
    assert!(c.message().unwrap().starts_with(&format!(
        "platform: roll back ai-dev to {}",
        &a.to_string()[..12]
    )));
    for p in [
        "clusters/ai-dev",
        "environments/ai-dev/config.yaml",
        "catalog",
    ] {
        assert_eq!(tree_id(&r, new, p), tree_id(&r, a, p), "{p}");
    }
    assert_eq!(f.repo.read("environments/ai-dev/config.yaml"), cfg_a);
    assert!(!f.repo.exists("clusters/ai-dev/models/qwen-extra"));
    let remote = Repository::open_bare(f._remote_dir.path()).unwrap();
    assert_eq!(
        remote.find_reference("refs/heads/main").unwrap().target(),
        Some(new)
    );
    assert_eq!(f.repo.read("NOTES.md"), "mine, untracked\n");
    // The work tree agrees with the rollback: nothing to render, nothing to warn about.
    let o = f.repo.cmd().arg("diff").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning:"), "{}", stderr(&o));
    // The rollback is a render commit itself; rolling back again restores B.
    let o = f
        .repo
        .cmd()
        .args(["history", "-n", "1", "-o", "json"])
        .output()
        .unwrap();
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(h[0]["models"]["removed"], serde_json::json!(["qwen-extra"]));
    f.repo.cmd().arg("rollback").assert().success();
    let again = r.head().unwrap().target().unwrap();
    assert_eq!(
        tree_id(&r, again, "clusters/ai-dev"),
        tree_id(&r, b, "clusters/ai-dev")
    );
}

/// Review finding 1: a hand-committed config.yaml is not a render commit. A bare rollback goes
/// back to the previous commit that changed clusters/<env>/ (with the inputs it was rendered
/// from), and an explicit REV whose inputs do not render its tree is refused, naming the render
/// commit to use, unless --force.
#[test]
fn rollback_targets_the_previous_tree_not_a_hand_committed_config() {
    let f = fixture();
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    let r = git(f.repo.path());
    let x1 = r.head().unwrap().target().unwrap();
    let cfg = f.repo.read("environments/ai-dev/config.yaml");
    f.repo.env("ai-dev", &(cfg.clone() + common::EXTRA_MODEL));
    commit_all(
        f.repo.path(),
        "add qwen-extra by hand",
        &["environments/ai-dev/config.yaml"],
    );
    let x2 = r.head().unwrap().target().unwrap();
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    let x3 = r.head().unwrap().target().unwrap();
    assert_ne!(x3, x2);

    // history lists the two renders only.
    let o = f
        .repo
        .cmd()
        .args(["history", "-o", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let commits: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["commit"].as_str().unwrap())
        .collect();
    assert_eq!(commits, [x3.to_string(), x1.to_string()]);

    // The default target is X1, with X1's config.
    let o = f
        .repo
        .cmd()
        .args(["rollback", "--dry-run", "-o", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["target"]["commit"], x1.to_string().as_str());
    assert_eq!(v["models"]["removed"], serde_json::json!(["qwen-extra"]));

    // X2 by name: refused (its config is newer than its tree), X1 named.
    let x2s = x2.to_string();
    let o = f
        .repo
        .cmd()
        .args(["rollback", &x2s, "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "the inputs {} holds do not render its clusters/ai-dev/: environments/ai-dev/config.yaml changed after {} rendered that tree",
            &x2s[..12],
            &x1.to_string()[..12]
        )) && e.contains(&format!("`platform rollback {} --env ai-dev`", &x1.to_string()[..12]))
            && e.contains("--force"),
        "{e}"
    );
    let o = f.repo.cmd().args(["rollback", &x2s]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(r.head().unwrap().target().unwrap(), x3);
    // --force restores it as it is.
    let o = f
        .repo
        .cmd()
        .args(["rollback", &x2s, "--force", "-o", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let new = r.head().unwrap().target().unwrap();
    assert_eq!(
        tree_id(&r, new, "clusters/ai-dev"),
        tree_id(&r, x1, "clusters/ai-dev")
    );
    assert_eq!(
        tree_id(&r, new, "environments/ai-dev/config.yaml"),
        tree_id(&r, x2, "environments/ai-dev/config.yaml")
    );
}

/// Review finding 2: catalog/ and templates/ are shared; a rollback of one environment that
/// restores them while another environment exists is refused (named), warned about in --dry-run,
/// and done with --include-shared.
#[test]
fn rollback_refuses_to_restore_shared_inputs_other_environments_read() {
    let f = fixture();
    let cfg = f.repo.read("environments/ai-dev/config.yaml");
    f.repo.env("other", &cfg);
    commit_all(
        f.repo.path(),
        "another environment",
        &["environments/other/config.yaml"],
    );
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    let r = git(f.repo.path());
    let a = r.head().unwrap().target().unwrap();
    let presets = f.repo.read("catalog/presets.yaml");
    f.repo
        .write("catalog/presets.yaml", &(presets.clone() + "# tuned\n"));
    f.repo.env("ai-dev", &(cfg + common::EXTRA_MODEL));
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    let b = r.head().unwrap().target().unwrap();
    assert_ne!(tree_id(&r, a, "catalog"), tree_id(&r, b, "catalog"));

    let o = f
        .repo
        .cmd()
        .args(["rollback", "--dry-run"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("restores shared inputs (catalog/ (1 file)) that the other environment(s) other render from too")
            && e.contains("--include-shared")
            && e.contains("(the real run refuses without it)"),
        "{e}"
    );
    let o = f.repo.cmd().arg("rollback").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the other environment(s) other render from too"),
        "{}",
        stderr(&o)
    );
    assert_eq!(r.head().unwrap().target().unwrap(), b);
    assert!(f.repo.read("catalog/presets.yaml").ends_with("# tuned\n"));
    let o = f
        .repo
        .cmd()
        .args(["rollback", "--include-shared", "-o", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["other_envs"], serde_json::json!(["other"]));
    assert_eq!(f.repo.read("catalog/presets.yaml"), presets);
    let new = r.head().unwrap().target().unwrap();
    assert_eq!(tree_id(&r, new, "catalog"), tree_id(&r, a, "catalog"));
}

/// Review finding 3: a rollback restores the executable bit and symbolic links as the commit holds
/// them, and refuses an ignored path on what it restores before writing anything.
#[cfg(unix)]
#[test]
fn rollback_keeps_modes_and_links_and_refuses_ignored_paths_before_writing() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    f.repo.cmd().args(["root", "--commit"]).assert().success();
    let p = f.repo.path();
    let presets = p.join("catalog/presets.yaml");
    std::fs::set_permissions(&presets, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("presets.yaml", p.join("catalog/notes.txt")).unwrap();
    f.repo.write("catalog/extra.txt", "x\n");
    commit_all(
        p,
        "exec, link, extra",
        &[
            "catalog/presets.yaml",
            "catalog/notes.txt",
            "catalog/extra.txt",
        ],
    );
    let r = git(p);
    let x = r.head().unwrap().target().unwrap().to_string();
    std::fs::set_permissions(&presets, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(p.join("catalog/notes.txt")).unwrap();
    std::fs::remove_file(p.join("catalog/extra.txt")).unwrap();
    f.repo.write(".gitignore", "catalog/extra.txt\n");
    let mut idx = r.index().unwrap();
    idx.remove_path(Path::new("catalog/notes.txt")).unwrap();
    idx.remove_path(Path::new("catalog/extra.txt")).unwrap();
    idx.write().unwrap();
    commit_all(p, "undo", &["catalog/presets.yaml", ".gitignore"]);
    let c = r.head().unwrap().target().unwrap();
    f.repo.write("catalog/extra.txt", "mine, ignored\n");

    // An ignored path on what is restored: refused, nothing written.
    let o = f
        .repo
        .cmd()
        .args(["rollback", &x, "--force"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("catalog/extra.txt is ignored by .gitignore"),
        "{}",
        stderr(&o)
    );
    assert_eq!(f.repo.read("catalog/extra.txt"), "mine, ignored\n");
    assert!(!p.join("catalog/notes.txt").exists());
    assert_eq!(r.head().unwrap().target().unwrap(), c);

    // Without the rule: the exec bit and the link come back, on disk and in the commit.
    std::fs::remove_file(p.join("catalog/extra.txt")).unwrap();
    f.repo.write(".gitignore", "");
    commit_all(p, "no rule", &[".gitignore"]);
    let o = f
        .repo
        .cmd()
        .args(["rollback", &x, "--force"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::metadata(&presets).unwrap().permissions().mode() & 0o111,
        0o111
    );
    let link = p.join("catalog/notes.txt");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("presets.yaml")
    );
    let tree = r.head().unwrap().peel_to_tree().unwrap();
    assert_eq!(
        tree.get_path(Path::new("catalog/presets.yaml"))
            .unwrap()
            .filemode(),
        0o100_755
    );
    assert_eq!(
        tree.get_path(Path::new("catalog/notes.txt"))
            .unwrap()
            .filemode(),
        0o120_000
    );
}
