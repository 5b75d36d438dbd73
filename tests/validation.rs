//! Values that would render manifests the API server rejects, or that are wrong, are errors naming
//! the field (issue 10 item 13): env var names, quantities, replica counts, Hub sources, revisions,
//! served names, system namespaces. Each runs through `lint` and `root` (nothing written).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;

use common::{config, TempRepo, QWEN_CPU};

/// The model of `QWEN_CPU` with `extra` lines appended to it (YAML under the list item).
fn model_with(extra: &str) -> String {
    config(&format!("{QWEN_CPU}{extra}"))
}

fn refused(name: &str, cfg: &str, expect: &[&str]) {
    let repo = TempRepo::new();
    repo.env("test", cfg);
    for args in [
        &["lint", "--env", "test"][..],
        &["root", "--env", "test"][..],
    ] {
        let out = repo.cmd().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name} ({args:?}):\n{stderr}");
        for e in expect {
            assert!(
                stderr.contains(e),
                "{name} ({args:?}): lacks {e:?}:\n{stderr}"
            );
        }
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(!repo.exists("clusters"), "{name}: something was written");
    }
}

#[test]
fn env_var_names_must_be_valid() {
    for bad in ["\"\"", "\"A=B\"", "\"BAD NAME\"", "\"1ST\""] {
        refused(
            bad,
            &model_with(&format!("    env: {{ {bad}: x }}\n")),
            &[
                "models[qwen-cpu].env.",
                "is not an environment variable name",
            ],
        );
    }
}

#[test]
fn quantities_must_be_kubernetes_quantities() {
    refused(
        "huge",
        &model_with("    storage: { size: 2000000000000Ti }\n"),
        &["2000000000000Ti", "larger than any Kubernetes quantity"],
    );
    refused(
        "spaces",
        &model_with("    storage: { size: \"foo bar\" }\n"),
        &["foo bar", "is not a Kubernetes quantity"],
    );
    refused(
        "zero",
        &model_with("    storage: { size: \"0\" }\n"),
        &["models[qwen-cpu].storage.size", "is not a positive size"],
    );
}

#[test]
fn replicas_beyond_int32_are_refused() {
    refused(
        "replicas",
        &model_with("    replicas: 3000000000\n"),
        &["models[qwen-cpu].replicas", "more than Kubernetes accepts"],
    );
}

#[test]
fn sources_and_revisions_are_checked() {
    refused(
        "source with spaces",
        &config(&QWEN_CPU.replace("hf://Qwen/Qwen2.5-0.5B-Instruct", "\"hf://Qwen/Qwen 2.5\"")),
        &["models[qwen-cpu].source", "is not a Hugging Face source"],
    );
    refused(
        "revision with a newline",
        &model_with("    revision: \"main\\nrm -rf /\"\n"),
        &[
            "models[qwen-cpu].revision",
            "is not a branch, tag or commit",
        ],
    );
    refused(
        "revision with shell characters",
        &model_with("    revision: \"$(id)\"\n"),
        &[
            "models[qwen-cpu].revision",
            "is not a branch, tag or commit",
        ],
    );
}

#[test]
fn served_names_are_bounded() {
    let long = "x".repeat(100_000);
    refused(
        "long servedName",
        &model_with(&format!("    servedName: {long}\n")),
        &[
            "models[qwen-cpu].servedName",
            "100000 bytes",
            "at most 253 characters",
        ],
    );
    refused(
        "servedName with a space",
        &model_with("    servedName: \"my model\"\n"),
        &["models[qwen-cpu].servedName", "is not a usable model name"],
    );
}

#[test]
fn system_namespaces_are_refused() {
    for ns in ["argocd", "kube-system", "kube-public"] {
        refused(
            ns,
            &model_with(&format!("    namespace: {ns}\n")),
            &["models[qwen-cpu].namespace", "is a system namespace"],
        );
    }
}

#[test]
fn good_values_still_pass() {
    let repo = TempRepo::new();
    repo.env(
        "test",
        &model_with("    revision: v1.0/rc-2_b\n    servedName: qwen2.5-0.5b\n    env: { VLLM_LOGGING_LEVEL: DEBUG, my.var-x: \"1\" }\n"),
    );
    let out = repo.cmd().args(["lint", "--env", "test"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The AppProject whitelists only the cluster-scoped kinds the catalog's enabled apps declare (plus
/// Namespace): never `*`, and a kind only an off group needs is not there.
#[test]
fn the_project_whitelists_only_declared_cluster_kinds() {
    let repo = TempRepo::new();
    let out = repo
        .cmd()
        .args(["root", "--env", "ai-dev", "--stdout"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let project = text
        .split("\n---")
        .find(|d| d.contains("kind: AppProject"))
        .expect("an AppProject");
    let v: serde_json::Value = serde_yaml::from_str(project).unwrap();
    let kinds: Vec<String> = v["spec"]["clusterResourceWhitelist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            format!(
                "{}/{}",
                k["group"].as_str().unwrap(),
                k["kind"].as_str().unwrap()
            )
        })
        .collect();
    assert!(!kinds.iter().any(|k| k.contains('*')), "{kinds:?}");
    assert!(kinds.contains(&"/Namespace".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"apiextensions.k8s.io/CustomResourceDefinition".to_string()));
    // gpu-operator is off in ai-dev (gpu_stack: gke-managed): its ClusterPolicy is not allowed.
    assert!(
        !kinds.contains(&"nvidia.com/ClusterPolicy".to_string()),
        "{kinds:?}"
    );
}

/// A model without resources runs with its preset's, and those are validated as the model's: a
/// KServe GPU model inherits a cpu request without a cpu limit (KServe would default the limit to
/// 1), which is refused; a CPU model inherits the 2 cores vLLM needs, which passes.
#[test]
fn preset_default_resources_are_validated_as_rendered() {
    let gpu_on_kserve = "  - name: qwen-gpu
    layer: kserve
    source: hf://Qwen/Qwen2.5-7B-Instruct
    preset: vllm-gpu
    gpus: 1
";
    refused(
        "kserve gpu without resources",
        &config(gpu_on_kserve),
        &[
            "models[qwen-gpu].resources.limits.cpu",
            "KServe then defaults the limit to 1",
        ],
    );
    let cpu_default = "  - name: qwen-cpu
    layer: raw-vllm
    source: hf://Qwen/Qwen2.5-0.5B-Instruct
    preset: vllm-cpu
";
    let repo = TempRepo::new();
    repo.env("test", &config(cpu_default));
    let out = repo.cmd().args(["lint", "--env", "test"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn autoscaling_that_cannot_work_is_refused_naming_the_field_and_the_fix() {
    refused(
        "hpa to zero",
        &model_with("    autoscaling: { min: 0, max: 2 }\n"),
        &[
            "models[qwen-cpu].autoscaling.min",
            "the HPA cannot scale to 0",
            "`class: keda`",
        ],
    );
    refused(
        "keda off, no prometheus",
        &model_with("    autoscaling: { max: 2, class: keda, metric: rps }\n"),
        &[
            "models[qwen-cpu].autoscaling.class",
            "set `features.keda: true`",
            "models[qwen-cpu].autoscaling.metric",
            "names no Prometheus server",
        ],
    );
    refused(
        "priority group off",
        &model_with("    priority: platform-cpu-serving\n"),
        &[
            "models[qwen-cpu].priority",
            "set `features.priority-classes: true`",
        ],
    );
}

/// `moveTo:` (written by `platform move`): another layer, one both layers can route, and no
/// `namespace:` that would make the two declarations' objects collide; the destination's own
/// gotchas are checked too.
#[test]
fn a_move_declaration_is_checked_on_both_layers() {
    refused(
        "moveTo its own layer",
        &model_with("    moveTo: kserve\n"),
        &["moveTo", "on `kserve` already", "remove moveTo"],
    );
    refused(
        "moveTo llm-d",
        &model_with("    moveTo: llm-d\n"),
        &["cannot move to or from `llm-d`", "router owns"],
    );
    refused(
        "moveTo with a namespace",
        &model_with("    moveTo: raw-vllm\n    namespace: shared\n"),
        &["namespace: shared", "share names"],
    );
    refused(
        "moveTo a layer that is not one",
        &model_with("    moveTo: tgi\n"),
        &["moveTo"],
    );
    refused(
        "app that is not a DNS name",
        &model_with("    app: Not_A_Name\n"),
        &["app", "Not_A_Name"],
    );
}
