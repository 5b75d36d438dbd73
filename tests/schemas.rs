//! Every rendered object is validated against the upstream CRD schemas (Argo CD, KServe, Gateway API)
//! with unknown fields treated as errors, and core kinds against the strict k8s-openapi round trip.
//! The schemas live in ../shared/schemas beside the checkout (or PLATFORM_SCHEMAS); when absent the
//! test fails with the fix (never skipped).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;

use std::path::PathBuf;

use common::{copy_dir, source_root, TempRepo};
use platform::render::check;
use platform::render::schema::SchemaSet;

fn schemas_dir() -> PathBuf {
    let dir = std::env::var_os("PLATFORM_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|| source_root().join("../shared/schemas"));
    if !dir.join("argoproj.io").is_dir() {
        platform_testkit::missing_prerequisite(
            &format!("no upstream CRD schemas at {}", dir.display()),
            "put ../shared beside the checkout or set PLATFORM_SCHEMAS",
        );
    }
    dir
}

fn lint_with_schemas(env: &str) {
    let dir = schemas_dir();
    let repo = TempRepo::new();
    let fixture = source_root().join("tests/fixtures/envs").join(env);
    if fixture.is_dir() {
        copy_dir(&fixture, &repo.path().join("environments").join(env));
    }
    let out = repo
        .cmd()
        .args(["lint", "--env", env, "--schemas"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "lint --schemas failed for {env}:\n{stderr}"
    );
    assert!(stderr.contains("0 error(s)"), "{stderr}");
}

#[test]
fn shipped_environment_is_accepted_by_upstream_schemas() {
    lint_with_schemas("ai-dev");
}

#[test]
fn everything_on_fixture_is_accepted_by_upstream_schemas() {
    lint_with_schemas("everything-on");
}

fn object(kind_path: &str, yaml: &str) -> Vec<check::RenderedObject> {
    let tree = platform::render::RenderedTree {
        files: [(kind_path.to_string(), yaml.to_string())]
            .into_iter()
            .collect(),
        owned: vec![],
    };
    let (objs, problems) = check::objects(&tree);
    assert!(problems.is_empty(), "{problems:?}");
    objs
}

#[test]
fn an_unknown_field_in_a_custom_resource_is_an_error() {
    let dir = schemas_dir();
    let mut set = SchemaSet::load(&dir).unwrap();
    let isvc = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: a}\nspec:\n  predictor:\n    deploymentStrategy: {type: Recreate}\n    minReplica: 1\n";
    let errs = set.validate(&object("isvc.yaml", isvc));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].message.contains("minReplica"), "{}", errs[0]);

    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec:\n  project: p\n  destination: {server: x}\n  source: {repoURL: r, path: p}\n  syncPolicy: {automated: {prune: true, selfHeal: true, selfheal: true}}\n";
    let errs = set.validate(&object("app.yaml", app));
    assert!(
        errs.iter().any(|e| e.message.contains("selfheal")),
        "{errs:?}"
    );

    // A version that is not served upstream is reported too.
    let llm = "apiVersion: serving.kserve.io/v9\nkind: LLMInferenceService\nmetadata: {name: a}\nspec: {}\n";
    let errs = set.validate(&object("llm.yaml", llm));
    assert!(
        errs.iter().any(|e| e.message.contains("not served")),
        "{errs:?}"
    );

    // A valid one passes.
    let gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  gatewayClassName: agentgateway\n  listeners: [{name: http, protocol: HTTP, port: 80}]\n";
    assert!(set.validate(&object("gw.yaml", gw)).is_empty());
}

#[test]
fn core_kinds_are_checked_strictly() {
    let dep = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: i, resources: {requests: {cpu: 2}}, startupProbe: {httpGet: {path: /health, port: 8000}, periodSecond: 5}}]\n";
    let errs = check::check_objects(&object("dep.yaml", dep));
    let msg = errs
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        msg.contains("resources.requests.cpu (write it as a quoted string)"),
        "{msg}"
    );
    assert!(msg.contains("startupProbe.periodSecond"), "{msg}");
}
