//! Shared helpers for the integration tests: a throw-away copy of the repository and the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub mod apienv;

/// The binary's stdout, as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The binary's stderr, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The source checkout (holds catalog/, environments/, templates/).
pub fn source_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary repository with a copy of the shipped catalog and environments (no templates/: the
/// embedded templates are used, as for a user's GitOps repository).
pub struct TempRepo {
    pub dir: tempfile::TempDir,
}

impl TempRepo {
    pub fn new() -> TempRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(&source_root().join("catalog"), &dir.path().join("catalog"));
        copy_dir(
            &source_root().join("environments"),
            &dir.path().join("environments"),
        );
        TempRepo { dir }
    }

    /// A repository with only the given catalog folder (a fixture) and no environments.
    pub fn with_catalog(catalog: &Path) -> TempRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(catalog, &dir.path().join("catalog"));
        TempRepo { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    /// Write `environments/<env>/config.yaml`.
    pub fn env(&self, env: &str, config: &str) {
        self.write(&format!("environments/{env}/config.yaml"), config);
    }

    /// The binary, pointed at this repository, without colour.
    pub fn cmd(&self) -> Command {
        platform_in(self.path())
    }

    /// Every file under `rel`, as (relative path, content), sorted.
    pub fn tree(&self, rel: &str) -> Vec<(String, String)> {
        read_tree(self.path(), &self.path().join(rel))
    }
}

/// The binary, pointed at the repository `dir`, without colour, the PLATFORM_* variables of the
/// caller's environment unset.
pub fn platform_in(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("platform").expect("binary");
    c.arg("--repo").arg(dir).arg("--color").arg("never");
    c.env_remove("PLATFORM_ENV")
        .env_remove("PLATFORM_REPO")
        .env_remove("PLATFORM_SCHEMAS");
    c
}

/// Make `repo` a git work tree (identity set) whose `origin` is a new bare repository (branch
/// `main`), as a user's GitOps repository is; returns the bare repository's directory and URL.
pub fn git_remote(repo: &TempRepo) -> (tempfile::TempDir, String) {
    let remote = tempfile::tempdir().expect("temp dir");
    let bare = git2::Repository::init_bare(remote.path()).expect("bare repository");
    bare.set_head("refs/heads/main").expect("HEAD");
    let url = format!("file://{}", remote.path().display());
    let g = git2::Repository::init(repo.path()).expect("work tree");
    let mut cfg = g.config().expect("git config");
    cfg.set_str("user.name", "Test Operator")
        .expect("user.name");
    cfg.set_str("user.email", "ops@example.com")
        .expect("user.email");
    g.remote("origin", &url).expect("origin");
    (remote, url)
}

/// The shipped ai-dev config with `repoURL` replaced and no dedicated kubeconfig (tests pass one).
pub fn shipped_config(repo_url: &str) -> String {
    std::fs::read_to_string(source_root().join("environments/ai-dev/config.yaml"))
        .expect("shipped config")
        .replace(
            "repoURL: https://github.com/example-org/ai-platform.git",
            &format!("repoURL: {repo_url}"),
        )
        .replace(
            "  kubeconfig: ~/.kube/ai-dev.yaml",
            "  # kubeconfig: given by the test",
        )
}

/// Every file under `dir`, as (path relative to `root`, content), sorted.
pub fn read_tree(root: &Path, dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(root, dir, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A minimal valid config for environment tests, with `extra` appended (YAML text).
pub fn config(models: &str) -> String {
    format!(
        "cluster: {{ name: test }}\nrepoURL: https://example.com/gitops.git\nfeatures:\n  kserve: true\n  raw-vllm: true\n  llm-d: false\nmodels:\n{models}"
    )
}

/// A valid KServe CPU model, as a YAML list item (edit it to break one rule per test).
pub const QWEN_CPU: &str = "  - name: qwen-cpu
    layer: kserve
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    preset: vllm-cpu
    resources:
      requests: { cpu: \"2\", memory: 6Gi }
      limits: { cpu: \"2\", memory: 8Gi }
";

/// A model to append to the shipped config's `models:` (a CPU raw-vLLM model): `qwen-extra`.
pub const EXTRA_MODEL: &str = "
  - name: qwen-extra
    layer: raw-vllm
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    servedName: qwen-extra
    preset: vllm-cpu
    resources:
      requests: { cpu: \"2\", memory: 6Gi }
      limits: { cpu: \"2\", memory: 8Gi }
    storage:
      staged: false
      dir: qwen-extra
      size: 2Gi
";
