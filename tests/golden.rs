//! Golden trees: render fixture environments and compare every file with tests/golden/<env>/.
//! A second render is byte-identical. Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;

use std::path::PathBuf;

use common::{copy_dir, source_root, TempRepo};

fn golden_dir(env: &str) -> PathBuf {
    source_root().join("tests/golden").join(env)
}

/// Render `env` (the shipped one, or a fixture under tests/fixtures/envs/) with both commands and
/// compare with the golden copy.
fn golden(env: &str) {
    let repo = TempRepo::new();
    let fixture = source_root().join("tests/fixtures/envs").join(env);
    if fixture.is_dir() {
        copy_dir(&fixture, &repo.path().join("environments").join(env));
    }
    repo.cmd()
        .args(["resolve-groups", "--env", env])
        .assert()
        .success();
    repo.cmd()
        .args(["root", "--env", env, "--profile", "full"])
        .assert()
        .success();
    let tree = repo.tree("clusters");
    assert!(!tree.is_empty());

    let dir = golden_dir(env);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in &tree {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }
    let expected = common::read_tree(&dir, &dir);
    let got_paths: Vec<&str> = tree.iter().map(|(p, _)| p.as_str()).collect();
    let want_paths: Vec<&str> = expected.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        got_paths,
        want_paths,
        "file list differs from {} (UPDATE_GOLDEN=1 to regenerate)",
        dir.display()
    );
    for ((path, got), (_, want)) in tree.iter().zip(&expected) {
        if got != want {
            let diff = similar::TextDiff::from_lines(want.as_str(), got.as_str())
                .unified_diff()
                .header("golden", "rendered")
                .to_string();
            panic!("{path} differs from the golden copy (UPDATE_GOLDEN=1 to regenerate):\n{diff}");
        }
    }

    // Re-rendering changes nothing, byte for byte.
    repo.cmd()
        .args(["root", "--env", env, "--profile", "full", "--check"])
        .assert()
        .success();
    repo.cmd()
        .args(["resolve-groups", "--env", env, "--check"])
        .assert()
        .success();
    repo.cmd()
        .args(["root", "--env", env, "--profile", "full"])
        .assert()
        .success();
    assert_eq!(repo.tree("clusters"), tree);
}

#[test]
fn shipped_ai_dev_environment() {
    golden("ai-dev");
}

#[test]
fn everything_on_fixture() {
    golden("everything-on");
}

#[test]
fn runtimes_fixture() {
    golden("runtimes");
}

/// Autoscaled models (HPA and KEDA on raw vLLM and KServe) and PriorityClasses.
#[test]
fn autoscale_fixture() {
    golden("autoscale");
    // The autoscaler and pause/resume own a raw Deployment's replicas: Argo CD ignores them.
    for model in ["qwen-hpa", "qwen-keda"] {
        let app = std::fs::read_to_string(golden_dir("autoscale").join(format!(
            "clusters/autoscale/apps/serving/raw-vllm/{model}.yaml"
        )))
        .unwrap();
        let v: serde_json::Value = serde_yaml::from_str(&app).unwrap();
        assert_eq!(
            v["spec"]["ignoreDifferences"][0],
            serde_json::json!({"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}),
            "{app}"
        );
        let opts = v["spec"]["syncPolicy"]["syncOptions"].to_string();
        assert!(opts.contains("RespectIgnoreDifferences=true"), "{app}");
    }
}

/// A model in the middle of a move (declared on KServe and raw vLLM, its route listing both) and
/// one after a move (its Application named `<model>-<layer>`).
#[test]
fn moving_fixture() {
    golden("moving");
}
