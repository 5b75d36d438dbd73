//! The catalog format expresses the replaced platform's full group table (21 groups, 6 layers, one
//! enabled by `gpu_stack: operator`), and resolve-groups writes its groups.generated.yaml format.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;

use common::{source_root, TempRepo};

fn repo(config: &str) -> TempRepo {
    let r = TempRepo::with_catalog(&source_root().join("tests/fixtures/makefile-catalog"));
    r.env("legacy", config);
    r
}

/// A config in the replaced platform's key style; most feature keys absent (defaults apply), one with
/// a trailing comment that repeats the key.
const LEGACY: &str = "\
cluster:
  name: legacy
  projectID: my-project
  location: europe-west4
repoURL: https://example.com/platform.git
repoBranch: main
domain: \"\"
profile: cost
secret_backend: gsm
secret_store_auth: workload-identity
gpu_stack: operator
dns:
  automate: false
  provider: none
  proxied: false
features:
  guardrails: true   # guardrails: true enables the llm-gateway guardrails
  gpu-operator: false
";

#[test]
fn resolves_all_21_groups_in_table_order_with_defaults() {
    let r = repo(LEGACY);
    let out = r
        .cmd()
        .args(["resolve-groups", "--env", "legacy"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = r.read("clusters/legacy/groups.generated.yaml");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("- {")).collect();
    assert_eq!(lines.len(), 21, "{text}");
    let expect_on = [
        "platform-core",
        "autoscaling",
        "gpu-operator",
        "serving-core",
        "kserve",
        "embeddings",
        "routing-core",
        "llm-gateway-core",
        "guardrails",
    ];
    let order = [
        "platform-core",
        "autoscaling",
        "identity",
        "dns",
        "security",
        "opencost",
        "gpu-operator",
        "serving-core",
        "kserve",
        "embeddings",
        "coding-assistant",
        "llm-d",
        "routing-core",
        "public-edge",
        "mcp-gateway",
        "egress",
        "llm-gateway-core",
        "guardrails",
        "experience",
        "n8n",
        "demos",
    ];
    for (line, name) in lines.iter().zip(order) {
        let group: Vec<serde_yaml::Value> = serde_yaml::from_str(line).unwrap();
        let g = &group[0];
        assert_eq!(g["name"].as_str(), Some(name), "{line}");
        let enabled = g["enabled"].as_str().expect("enabled is a quoted string");
        assert_eq!(enabled == "true", expect_on.contains(&name), "{line}");
        assert!(
            g["catalogPath"]
                .as_str()
                .unwrap()
                .starts_with("clusters/legacy/apps/"),
            "{line}"
        );
    }
    assert!(text.contains("- { name: kserve, layer: serving, enabled: \"true\", catalogPath: clusters/legacy/apps/serving/kserve }"), "{text}");
    // features.gpu-operator is ignored: the group follows gpu_stack.
    assert!(
        stderr.contains("features.gpu-operator") && stderr.contains("ignored"),
        "{stderr}"
    );
    assert!(stderr.contains("gpu_stack: operator"), "{stderr}");
}

#[test]
fn warnings_for_domain_requirements_and_gpus_exit_zero() {
    let cfg = LEGACY.replace("  gpu-operator: false\n", "  gpu-operator: false\n  identity: true\n  mcp-gateway: true\n  n8n: false\n  llm-d: true\n  kserve: false\n");
    let r = repo(&cfg);
    let out = r
        .cmd()
        .args(["resolve-groups", "--env", "legacy"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("group `identity` needs a domain but `domain` is empty"),
        "{stderr}"
    );
    assert!(
        stderr.contains("group `llm-d` requires group `kserve`, which is disabled"),
        "{stderr}"
    );
    assert!(
        stderr.contains("group `llm-d` needs at least 2 GPU(s)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("mcp-gateway` requires"),
        "identity is on: {stderr}"
    );
}

#[test]
fn gpu_operator_follows_gpu_stack() {
    let r = repo(&LEGACY.replace("gpu_stack: operator", "gpu_stack: gke-managed"));
    r.cmd()
        .args(["resolve-groups", "--env", "legacy"])
        .assert()
        .success();
    let text = r.read("clusters/legacy/groups.generated.yaml");
    assert!(
        text.contains("- { name: gpu-operator, layer: platform, enabled: \"false\""),
        "{text}"
    );
}

#[test]
fn check_detects_a_stale_file_and_accepts_a_fresh_one() {
    let r = repo(LEGACY);
    // Missing file: stale.
    let out = r
        .cmd()
        .args(["resolve-groups", "--env", "legacy", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!r.exists("clusters"), "--check wrote something");
    r.cmd()
        .args(["resolve-groups", "--env", "legacy"])
        .assert()
        .success();
    r.cmd()
        .args(["resolve-groups", "--env", "legacy", "--check"])
        .assert()
        .success();
    // Flip a flag: stale again, with a diff on stdout.
    r.env(
        "legacy",
        &LEGACY.replace("guardrails: true", "guardrails: false"),
    );
    let out = r
        .cmd()
        .args(["resolve-groups", "--env", "legacy", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("-- { name: guardrails, layer: llm-gateway, enabled: \"true\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("+- { name: guardrails, layer: llm-gateway, enabled: \"false\""),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is stale: run `platform resolve-groups"));
}

#[test]
fn profiles_of_the_replaced_platform_render() {
    let r = repo(LEGACY);
    for p in ["platform", "serving", "llm-gateway", "full"] {
        let out = r
            .cmd()
            .args(["plan", "--env", "legacy", "--profile", p, "-o", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["profile"]["name"], p);
        assert_eq!(v["groups"].as_array().unwrap().len(), 21);
    }
}
