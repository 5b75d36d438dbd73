//! A test API server beside a repository whose ai-dev environment is rendered, and the binary run
//! against it as a user runs it (tests/cluster.rs, tests/smoke.rs).

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use platform_testkit::apiserver::TestApiServer;
use serde_json::{json, Value};

use super::{stderr, TempRepo};

pub struct Env {
    pub server: TestApiServer,
    pub repo: TempRepo,
    pub kubeconfig: PathBuf,
}

impl Env {
    /// `repo` (its ai-dev environment as the test wants it) rendered with `root --profile full`,
    /// and a kubeconfig pointing at `server`.
    pub async fn new(server: TestApiServer, repo: TempRepo) -> Env {
        let kubeconfig = repo.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let o = run(&repo, &["root", "--profile", "full"]).await;
        assert!(o.status.success(), "{}", stderr(&o));
        Env {
            server,
            repo,
            kubeconfig,
        }
    }

    /// `platform ARGS --kubeconfig <the server's>`.
    pub async fn platform(&self, args: &[&str]) -> Output {
        self.platform_env(args, &[]).await
    }

    /// [`Env::platform`] with `env` set and no Hugging Face token inherited from the caller.
    pub async fn platform_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.repo.cmd();
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .timeout(Duration::from_secs(120));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env_remove("HF_TOKEN")
            .env_remove("HUGGING_FACE_HUB_TOKEN");
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    /// Create a model's serving objects as its Argo CD app would (CreateNamespace=true).
    pub fn seed_model(&self, model: &str) {
        for ns in ["serving", "kserve", "llm-d"] {
            let _ = self
                .server
                .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
        for (path, text) in self.repo.tree(&format!("clusters/ai-dev/models/{model}")) {
            let v: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            self.server.put(v).unwrap();
        }
    }
}

/// Run the binary in `repo` (off the runtime's threads: the server keeps serving).
pub async fn run(repo: &TempRepo, args: &[&str]) -> Output {
    let mut cmd = repo.cmd();
    cmd.args(args).timeout(Duration::from_secs(60));
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}
