//! `platform init` and `platform catalog eject`, run as a user runs them in an empty directory: the
//! embedded catalog, the repository's own catalog/ overriding it, and what every step writes.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;

use std::path::Path;
use std::process::Output;

use common::read_tree;

const URL: &str = "git@github.com:acme/platform-gitops.git";
const CONFIG: &str = "environments/prod/config.yaml";

/// `platform ARGS` in `dir`, run to completion.
fn run(dir: &Path, args: &[&str]) -> Output {
    common::platform_in(dir).args(args).output().unwrap()
}

/// `platform --env prod ARGS` in `dir`, run to completion.
fn prod(dir: &Path, args: &[&str]) -> Output {
    common::platform_in(dir)
        .args(["--env", "prod"])
        .args(args)
        .output()
        .unwrap()
}

use common::{stderr as err, stdout as out};

/// `platform init --env prod --cluster-name prod-eu` plus `extra` arguments.
fn init(dir: &Path, extra: &[&str]) -> Output {
    common::platform_in(dir)
        .args(["init", "--env", "prod", "--cluster-name", "prod-eu"])
        .args(extra)
        .output()
        .unwrap()
}

/// A new directory where `init --repo-url URL` succeeded.
fn initialised() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ok(init(dir.path(), &["--repo-url", URL]));
    dir
}

/// `platform --env prod plan -o json`, successful, parsed.
fn plan_json(dir: &Path) -> serde_json::Value {
    let o = ok(prod(dir, &["plan", "-o", "json"]));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        out(&o),
        err(&o)
    );
    o
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every file of the directory except .git/.
fn files(dir: &Path) -> Vec<(String, String)> {
    read_tree(dir, dir)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".git/"))
        .collect()
}

#[test]
fn init_in_an_empty_directory_then_root_plan_and_lint_work_with_the_embedded_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let o = ok(init(dir.path(), &["--repo-url", URL]));
    let e = err(&o);
    assert!(e.contains("initialised a git repository"), "{e}");
    assert!(e.contains("platform bootstrap --env prod"), "{e}");
    assert!(
        e.contains("platform root --env prod --commit --push"),
        "{e}"
    );
    assert!(e.contains("platform up --env prod"), "{e}");
    let repo = git2::Repository::open(dir.path()).expect("git init ran");
    assert_eq!(
        repo.find_reference("HEAD")
            .unwrap()
            .symbolic_target()
            .unwrap(),
        Some("refs/heads/main")
    );
    let config = read(dir.path(), CONFIG);
    for want in [
        "name: prod-eu",
        "kubeconfig: ~/.kube/prod-eu.yaml",
        &format!("repoURL: {URL}"),
        "repoBranch: main",
        "gpu_stack: none",
        "className: agentgateway",
        "kserve: true",
        "models: []",
        "  # - name: qwen-cpu",
    ] {
        assert!(config.contains(want), "config lacks {want:?}:\n{config}");
    }
    let gitignore = read(dir.path(), ".gitignore");
    assert!(!gitignore
        .lines()
        .any(|l| l.contains("clusters") && !l.starts_with('#')));
    assert!(!dir.path().join("catalog").exists());
    assert!(!dir.path().join("templates").exists());

    let o = ok(prod(dir.path(), &["plan"]));
    assert!(
        out(&o).starts_with("catalog: embedded (platform "),
        "{}",
        out(&o)
    );
    assert!(
        out(&o).contains("(none in this profile)"),
        "no model by default: {}",
        out(&o)
    );
    let v = plan_json(dir.path());
    assert_eq!(v["inputs"]["catalog"]["source"], "embedded");
    assert_eq!(v["inputs"]["catalog"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["models"], serde_json::json!([]));

    let o = ok(prod(dir.path(), &["lint"]));
    assert!(err(&o).contains("catalog: embedded"), "{}", err(&o));
    assert!(err(&o).contains("lint prod: 0 error(s)"), "{}", err(&o));
    let o = ok(prod(dir.path(), &["lint", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["inputs"]["catalog"]["source"], "embedded");
    assert_eq!(v["errors"], 0);

    ok(prod(dir.path(), &["root"]));
    let kserve = read(dir.path(), "clusters/prod/apps/serving/kserve/kserve.yaml");
    // The GitOps repository holds no catalog/values/: the values are inlined.
    assert!(kserve.contains("valuesObject:"), "{kserve}");
    assert!(!kserve.contains("$values"), "{kserve}");
    assert!(kserve.contains("deploymentMode: Standard"), "{kserve}");
    ok(prod(dir.path(), &["root", "--check"]));
}

#[test]
fn a_second_identical_init_is_a_no_op_that_says_so() {
    let dir = initialised();
    let before = files(dir.path());
    let o = ok(init(dir.path(), &["--repo-url", URL]));
    assert!(err(&o).contains("nothing to do"), "{}", err(&o));
    assert!(!err(&o).contains("created"), "{}", err(&o));
    assert_eq!(files(dir.path()), before);
}

#[test]
fn init_never_overwrites_a_config_unless_forced() {
    let dir = initialised();
    let edited = read(dir.path(), CONFIG).replace("domain: \"\"", "domain: example.com");
    std::fs::write(dir.path().join(CONFIG), &edited).unwrap();
    let o = init(dir.path(), &["--repo-url", URL, "--gpu-stack", "operator"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("{CONFIG} exists")) && err(&o).contains("--force"),
        "{}",
        err(&o)
    );
    assert_eq!(read(dir.path(), CONFIG), edited, "the user's edit survives");

    let o = ok(init(
        dir.path(),
        &["--repo-url", URL, "--gpu-stack", "operator", "--force"],
    ));
    assert!(err(&o).contains("replaced (--force)"), "{}", err(&o));
    let config = read(dir.path(), CONFIG);
    assert!(config.contains("gpu_stack: operator") && config.contains("domain: \"\""));
    // gpu_stack: operator switches the gpu-operator group on.
    let v = plan_json(dir.path());
    let gpu = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "gpu-operator")
        .unwrap();
    assert_eq!(gpu["enabled"], true);
}

#[test]
fn an_existing_gitignore_is_kept_but_one_hiding_clusters_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".gitignore"), "target/\n").unwrap();
    ok(init(dir.path(), &["--repo-url", URL]));
    assert_eq!(read(dir.path(), ".gitignore"), "target/\n");

    let dir = tempfile::tempdir().unwrap();
    git2::Repository::init(dir.path()).unwrap();
    std::fs::write(dir.path().join(".gitignore"), "/clusters/\n").unwrap();
    let o = init(dir.path(), &["--repo-url", URL]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("clusters/prod/project.yaml is ignored"),
        "{}",
        err(&o)
    );
    assert!(!dir.path().join(CONFIG).exists(), "nothing written");
}

#[test]
fn the_repo_url_defaults_to_origin_and_is_required_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let o = init(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("--repo-url"), "{}", err(&o));
    assert!(files(dir.path()).is_empty(), "nothing written");
    assert!(!dir.path().join(".git").exists(), "no git init either");

    let repo = git2::Repository::init(dir.path()).unwrap();
    repo.remote("origin", "https://github.com/acme/gitops.git")
        .unwrap();
    repo.set_head("refs/heads/live").unwrap();
    let o = ok(init(dir.path(), &[]));
    assert!(err(&o).contains("(origin's)"), "{}", err(&o));
    assert!(!err(&o).contains("initialised a git repository"));
    let config = read(dir.path(), CONFIG);
    assert!(
        config.contains("repoURL: https://github.com/acme/gitops.git"),
        "{config}"
    );
    assert!(
        config.contains("repoBranch: live"),
        "the current branch: {config}"
    );

    let dir = tempfile::tempdir().unwrap();
    let o = init(
        dir.path(),
        &["--repo-url", "https://bot:s3cret@github.com/acme/x.git"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("carries a credential"), "{}", err(&o));
    assert!(
        !err(&o).contains("s3cret"),
        "the credential is never printed"
    );
    assert!(files(dir.path()).is_empty());
}

#[test]
fn init_checks_what_it_writes_like_lint_and_writes_nothing_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &[
            "init",
            "--env",
            "prod",
            "--cluster-name",
            "Prod_EU",
            "--repo-url",
            URL,
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("environments/prod/config.yaml") && err(&o).contains("cluster.name"),
        "{}",
        err(&o)
    );
    assert!(files(dir.path()).is_empty() && !dir.path().join(".git").exists());
}

#[test]
fn the_commented_example_models_are_valid_once_uncommented() {
    let dir = initialised();
    let config = read(dir.path(), CONFIG);
    let (head, examples) = config.split_once("models: []\n").unwrap();
    let models: String = examples
        .lines()
        .filter(|l| l.starts_with("  #   ") || l.starts_with("  # - "))
        .map(|l| format!("  {}\n", &l[4..]))
        .collect();
    std::fs::write(dir.path().join(CONFIG), format!("{head}models:\n{models}")).unwrap();
    let v = plan_json(dir.path());
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["qwen-cpu", "qwen-gpu", "qwen-gguf", "qwen3-ollama"]);
    ok(prod(dir.path(), &["lint"]));
}

#[test]
fn a_repository_catalog_overrides_the_embedded_one_and_plan_says_so() {
    let dir = initialised();
    ok(run(dir.path(), &["catalog", "eject"]));
    let groups = read(dir.path(), "catalog/groups.yaml");
    assert!(groups.contains("chart: cert-manager, version: v1.20.2"));
    std::fs::write(
        dir.path().join("catalog/groups.yaml"),
        groups.replace(
            "chart: cert-manager, version: v1.20.2",
            "chart: cert-manager, version: v1.99.0",
        ),
    )
    .unwrap();
    let o = ok(prod(dir.path(), &["plan"]));
    assert!(
        out(&o).starts_with("catalog: the repository's catalog/ ("),
        "{}",
        out(&o)
    );
    let v = plan_json(dir.path());
    assert_eq!(v["inputs"]["catalog"]["source"], "repo");
    ok(prod(dir.path(), &["root"]));
    let cm = read(
        dir.path(),
        "clusters/prod/apps/platform/platform-core/cert-manager.yaml",
    );
    assert!(cm.contains("targetRevision: v1.99.0"), "{cm}");

    // A template override is reported by name.
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("templates/namespace.yaml.j2"),
        "{{ header }}\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ name }}\n",
    )
    .unwrap();
    let o = ok(prod(dir.path(), &["plan"]));
    assert!(
        out(&o).contains("overridden by templates/: namespace.yaml.j2"),
        "{}",
        out(&o)
    );
}

/// The ejected catalog's Application with its `$values` source, rewritten the way the embedded
/// catalog renders it (the values file's content inlined as `valuesObject`).
fn inline_values(repo: &Path, mut app: serde_json::Value) -> serde_json::Value {
    let Some(sources) = app["spec"]["sources"].as_array().cloned() else {
        return app;
    };
    let mut chart = sources[0].clone();
    let files = chart["helm"]["valueFiles"].as_array().cloned().unwrap();
    assert_eq!(files.len(), 1);
    let rel = files[0].as_str().unwrap().strip_prefix("$values/").unwrap();
    let values: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo.join(rel)).unwrap()).unwrap();
    let helm = chart["helm"].as_object_mut().unwrap();
    helm.remove("valueFiles");
    helm.insert("valuesObject".into(), values);
    assert_eq!(sources[1]["ref"], "values");
    let spec = app["spec"].as_object_mut().unwrap();
    spec.remove("sources");
    spec.insert("source".into(), chart);
    app
}

#[test]
fn eject_writes_the_embedded_catalog_refuses_a_second_time_and_renders_the_same_tree() {
    let dir = initialised();
    ok(prod(dir.path(), &["root"]));
    let embedded = read_tree(dir.path(), &dir.path().join("clusters"));

    let o = ok(run(dir.path(), &["catalog", "eject"]));
    let e = err(&o);
    for f in [
        "catalog/groups.yaml",
        "catalog/layers.yaml",
        "catalog/values/kserve.yaml",
    ] {
        assert!(e.contains(f), "{f} not reported: {e}");
        assert!(dir.path().join(f).is_file(), "{f} not written");
    }
    assert!(e.contains("git add catalog"), "{e}");
    assert!(
        !dir.path().join("templates").exists(),
        "templates only with --templates"
    );
    // Byte for byte the shipped catalog.
    assert_eq!(
        read_tree(dir.path(), &dir.path().join("catalog")),
        read_tree(
            &common::source_root(),
            &common::source_root().join("catalog")
        )
    );

    let before = files(dir.path());
    let o = run(dir.path(), &["catalog", "eject"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("catalog/argocd.yaml exists") && err(&o).contains("other files"),
        "{}",
        err(&o)
    );
    assert_eq!(files(dir.path()), before, "nothing written");

    // The same tree, except that the values files now come from this repository.
    ok(prod(dir.path(), &["root"]));
    let ejected = read_tree(dir.path(), &dir.path().join("clusters"));
    let names = |t: &[(String, String)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ejected), names(&embedded));
    let mut differing = Vec::new();
    for ((path, a), (_, b)) in embedded.iter().zip(&ejected) {
        if a == b {
            continue;
        }
        differing.push(path.rsplit('/').next().unwrap().to_string());
        let a: serde_json::Value = serde_yaml::from_str(a).unwrap();
        let b: serde_json::Value = serde_yaml::from_str(b).unwrap();
        assert_eq!(a, inline_values(dir.path(), b), "{path}");
    }
    differing.sort();
    assert_eq!(differing, ["cert-manager.yaml", "kserve.yaml"]);

    // Templates too, on request; a repository that ejected its catalog takes them alone.
    let o = ok(run(dir.path(), &["catalog", "eject", "--templates-only"]));
    assert!(
        err(&o).contains("templates/namespace.yaml.j2"),
        "{}",
        err(&o)
    );
    let o = ok(prod(dir.path(), &["plan"]));
    assert!(
        out(&o).contains("identical copies in templates/"),
        "{}",
        out(&o)
    );
    ok(prod(dir.path(), &["root", "--check"]));
}

/// The PriorityClasses are catalog data: ejected, their values and names are the repository's to
/// change, and `priority:` is checked against the changed file.
#[test]
fn ejected_priority_classes_are_the_repositorys_to_change() {
    let dir = initialised();
    ok(run(dir.path(), &["catalog", "eject"]));
    let rel = "catalog/objects/priority-classes.yaml";
    let classes = read(dir.path(), rel);
    assert!(classes.contains("name: platform-gpu-serving"), "{classes}");
    std::fs::write(
        dir.path().join(rel),
        classes
            .replace("value: 100000", "value: 777000")
            .replace("name: platform-batch", "name: team-batch"),
    )
    .unwrap();
    let config = read(dir.path(), CONFIG);
    let (head, _) = config.split_once("models: []").unwrap();
    let with = |priority: &str| {
        format!(
            "{head}models:\n  - name: q\n    layer: raw-vllm\n    source: hf://a/b\n    preset: vllm-cpu\n    priority: {priority}\n"
        )
        .replace("  priority-classes: false", "  priority-classes: true")
    };
    std::fs::write(dir.path().join(CONFIG), with("team-batch")).unwrap();
    ok(prod(dir.path(), &["root"]));
    let rendered = read(
        dir.path(),
        "clusters/prod/objects/priority-classes/priority-classes.yaml",
    );
    assert!(
        rendered.contains("value: 777000") && rendered.contains("name: team-batch"),
        "{rendered}"
    );
    let d = read(
        dir.path(),
        "clusters/prod/models/q/raw-vllm-deployment.yaml",
    );
    assert!(d.contains("priorityClassName: team-batch"), "{d}");
    // The shipped name is gone from this catalog: an error listing what it has.
    std::fs::write(dir.path().join(CONFIG), with("platform-batch")).unwrap();
    let o = prod(dir.path(), &["lint"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("unknown PriorityClass `platform-batch`")
            && err(&o).contains("platform-gpu-serving, platform-cpu-serving, team-batch"),
        "{}",
        err(&o)
    );
}

#[test]
fn an_error_in_an_ejected_catalog_file_names_the_file_and_line() {
    let dir = initialised();
    ok(run(dir.path(), &["catalog", "eject", "--templates"]));
    assert!(dir.path().join("templates/gateway.yaml.j2").is_file());
    let layers = read(dir.path(), "catalog/layers.yaml");
    let line = layers
        .lines()
        .position(|l| l.contains("description: foundations + model serving"))
        .unwrap()
        + 1;
    std::fs::write(
        dir.path().join("catalog/layers.yaml"),
        layers.replace(
            "description: foundations + model serving",
            "descripton: typo",
        ),
    )
    .unwrap();
    for cmd in ["plan", "lint", "root"] {
        let o = prod(dir.path(), &[cmd]);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", err(&o));
        assert!(
            err(&o).contains(&format!("catalog/layers.yaml:{line}:")),
            "{cmd}: {}",
            err(&o)
        );
        assert!(!err(&o).contains("embedded catalog"), "{cmd}: {}", err(&o));
    }
    assert!(!dir.path().join("clusters").exists(), "nothing rendered");

    // A catalog/ missing a file says the override is whole.
    std::fs::remove_file(dir.path().join("catalog/presets.yaml")).unwrap();
    std::fs::write(dir.path().join("catalog/layers.yaml"), layers).unwrap();
    let o = prod(dir.path(), &["plan"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("catalog/presets.yaml: catalog file not found")
            && err(&o).contains("replaces the embedded catalog as a whole"),
        "{}",
        err(&o)
    );
}

/// The runtimes are catalog data: an ejected catalog's llama.cpp preset (image, arguments) is what
/// the ClusterServingRuntime and its models run.
#[test]
fn ejected_runtime_presets_are_the_repositorys_to_change() {
    let dir = initialised();
    ok(run(dir.path(), &["catalog", "eject"]));
    let presets = read(dir.path(), "catalog/presets.yaml");
    assert!(presets.contains("  llama-cpp-cpu:\n") && presets.contains("  ollama-cpu:\n"));
    std::fs::write(
        dir.path().join("catalog/presets.yaml"),
        presets.replace(
            "image: ghcr.io/ggml-org/llama.cpp:server-b9935\n    digest: sha256:295dc9897fa8a643e4a513fbcaada51d3b8db4b0afa4fda7aeae2386757de58b",
            "image: registry.example.com/mirror/llama.cpp:server-b9999\n    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111",
        ),
    )
    .unwrap();
    let cfg_path = dir.path().join("environments/prod/config.yaml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let cfg = cfg.replace("models: []\n", "models:\n  - name: tiny-gguf\n    layer: kserve\n    runtime: llama-cpp\n    source: hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF\n    file: qwen2.5-0.5b-instruct-q4_k_m.gguf\n    preset: llama-cpp-cpu\n");
    assert!(cfg.contains("tiny-gguf"), "{cfg}");
    std::fs::write(&cfg_path, cfg).unwrap();
    ok(prod(dir.path(), &["root"]));
    let csr = read(
        dir.path(),
        "clusters/prod/serving/kserve/kserve-servingruntimes.yaml",
    );
    assert!(
        csr.contains("image: registry.example.com/mirror/llama.cpp:server-b9999@sha256:1111"),
        "{csr}"
    );
    assert!(csr.contains("name: platform-llama-cpp-cpu"), "{csr}");
}
