//! Every class of bad input: exit code 1, a message naming the file/field and the fix, nothing
//! written, no panic. Each case runs through `root` (which writes) and `lint` (which reports).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;

use common::{config, TempRepo, QWEN_CPU};

struct Case {
    name: &'static str,
    config: String,
    /// Substrings stderr must contain (file, field, message, help).
    expect: &'static [&'static str],
    /// Where the error points (`line:column` in environments/test/config.yaml), shown as
    /// `--> file:line:column` above the offending line.
    at: &'static str,
}

fn check(case: &Case) {
    let repo = TempRepo::new();
    repo.env("test", &case.config);
    for args in [
        &["root", "--env", "test", "--profile", "full"][..],
        &["lint", "--env", "test"][..],
    ] {
        let out = repo.cmd().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{} ({args:?}): exit code, stderr:\n{stderr}",
            case.name
        );
        // The offending line is shown with a caret under the field.
        assert!(
            stderr
                .lines()
                .any(|l| l.trim_start().starts_with('|') && l.contains('^')),
            "{} ({args:?}): no caret line:\n{stderr}",
            case.name
        );
        let at = format!("--> environments/test/config.yaml:{}\n", case.at);
        assert!(
            stderr.contains(&at),
            "{} ({args:?}): stderr lacks {at:?}:\n{stderr}",
            case.name
        );
        for e in case.expect {
            assert!(
                stderr.contains(e),
                "{} ({args:?}): stderr lacks {e:?}:\n{stderr}",
                case.name
            );
        }
        assert!(
            !stderr.contains("panicked"),
            "{}: panic\n{stderr}",
            case.name
        );
        assert!(
            !repo.exists("clusters"),
            "{} ({args:?}): something was written",
            case.name
        );
    }
}

fn with_model(edit: impl Fn(&str) -> String) -> String {
    config(&edit(QWEN_CPU))
}

#[test]
fn yaml_syntax_error_names_file_and_line() {
    check(&Case {
        name: "syntax",
        config: "cluster:\n  name: [test\nrepoURL: x\n".into(),
        expect: &["environments/test/config.yaml:", "error:"],
        at: "2:9",
    });
}

#[test]
fn unknown_key_suggests_the_right_one() {
    check(&Case {
        name: "unknown key",
        config: config(QWEN_CPU).replace("repoURL:", "repoUrl:"),
        expect: &[
            "environments/test/config.yaml:2:1",
            "unknown field `repoUrl`",
            "did you mean `repoURL`?",
        ],
        at: "2:1",
    });
}

#[test]
fn unknown_model_key_names_the_model_path() {
    check(&Case {
        name: "unknown model key",
        config: with_model(|m| m.replace("preset:", "presett:")),
        expect: &[
            "models[0]",
            "unknown field `presett`",
            "did you mean `preset`?",
        ],
        at: "11:5",
    });
}

#[test]
fn unknown_feature_suggests_the_right_one() {
    check(&Case {
        name: "unknown feature",
        config: config(QWEN_CPU).replace("  kserve: true", "  kserv: true"),
        expect: &[
            "features.kserv",
            "unknown feature `kserv`",
            "did you mean `kserve`?",
        ],
        at: "4:3",
    });
}

#[test]
fn feature_value_must_be_a_yaml_boolean() {
    check(&Case {
        name: "wrong type",
        config: config(QWEN_CPU).replace("  kserve: true", "  kserve: \"yes\""),
        expect: &[
            "environments/test/config.yaml:4:",
            "features.kserve",
            "true or false",
        ],
        at: "4:11",
    });
}

#[test]
fn duplicate_model_names() {
    check(&Case {
        name: "duplicate",
        config: config(&format!("{QWEN_CPU}{QWEN_CPU}")),
        expect: &["duplicate model name `qwen-cpu`", "models[qwen-cpu]"],
        at: "15:11",
    });
}

#[test]
fn model_names_must_be_dns_1123() {
    check(&Case {
        name: "dns",
        config: with_model(|m| m.replace("name: qwen-cpu", "name: Qwen_CPU")),
        expect: &[
            "models[Qwen_CPU].name",
            "not a valid Kubernetes name",
            "lowercase",
        ],
        at: "8:11",
    });
}

#[test]
fn kserve_cpu_request_above_one_needs_an_explicit_limit() {
    check(&Case {
        name: "kserve cpu limit",
        config: with_model(|m| {
            m.replace(
                "      limits: { cpu: \"2\", memory: 8Gi }\n",
                "      limits: { memory: 8Gi }\n",
            )
        }),
        expect: &[
            "models[qwen-cpu].resources.limits.cpu",
            "defaults the limit to 1",
            "at least 2",
        ],
        at: "14:7",
    });
}

#[test]
fn limit_below_request() {
    check(&Case {
        name: "limit < request",
        config: with_model(|m| m.replace("memory: 8Gi", "memory: 4Gi")),
        expect: &[
            "models[qwen-cpu].resources.limits.memory",
            "limits.memory (4Gi) is below requests.memory (6Gi)",
        ],
        at: "14:27",
    });
}

#[test]
fn tensor_parallel_must_equal_gpu_count() {
    let gpu = "  - name: big\n    layer: raw-vllm\n    source: hf://a/b\n    preset: vllm-gpu\n    gpus: 2\n    tensorParallelSize: 4\n";
    check(&Case {
        name: "tp",
        config: config(gpu),
        expect: &[
            "models[big].tensorParallelSize",
            "is 4 but the model has 2 GPU(s)",
            "must equal the GPU count",
        ],
        at: "13:5",
    });
}

#[test]
fn omp_threads_bind_all_is_rejected() {
    check(&Case {
        name: "omp all",
        config: with_model(|m| format!("{m}    env:\n      VLLM_CPU_OMP_THREADS_BIND: all\n")),
        expect: &[
            "models[qwen-cpu].env.VLLM_CPU_OMP_THREADS_BIND",
            "must not be `all`",
            "leave it unset",
        ],
        at: "16:34",
    });
}

#[test]
fn vllm_cpu_needs_two_cores() {
    check(&Case {
        name: "cpu cores",
        config: with_model(|m| {
            m.replace("cpu: \"2\", memory: 6Gi", "cpu: \"1\", memory: 6Gi")
                .replace("cpu: \"2\", memory: 8Gi", "cpu: \"1\", memory: 8Gi")
        }),
        expect: &[
            "models[qwen-cpu].resources.requests.cpu",
            "at least 2 cores (got 1)",
        ],
        at: "13:19",
    });
}

#[test]
fn rolling_update_on_a_single_slot_model() {
    check(&Case {
        name: "rolling",
        config: with_model(|m| format!("{m}    strategy: RollingUpdate\n")),
        expect: &[
            "models[qwen-cpu].strategy",
            "RollingUpdate on a single-slot model",
            "Recreate",
        ],
        at: "15:5",
    });
}

#[test]
fn canary_needs_a_shared_volume() {
    check(&Case {
        name: "canary rwo",
        config: with_model(|m| format!("{m}    canaryTrafficPercent: 10\n")),
        expect: &[
            "models[qwen-cpu].canaryTrafficPercent",
            "ReadWriteOnce",
            "ReadOnlyMany",
        ],
        at: "15:5",
    });
}

#[test]
fn gpu_in_resources_is_redirected_to_gpus() {
    check(&Case {
        name: "gpu in resources",
        config: with_model(|m| m.replace("memory: 6Gi }", "memory: 6Gi, nvidia.com/gpu: \"1\" }")),
        expect: &["nvidia.com/gpu is set from `gpus`"],
        at: "12:5",
    });
}

#[test]
fn unknown_preset_suggests() {
    check(&Case {
        name: "preset",
        config: with_model(|m| m.replace("preset: vllm-cpu", "preset: vllm-cpus")),
        expect: &[
            "models[qwen-cpu].preset",
            "unknown preset `vllm-cpus`",
            "did you mean `vllm-cpu`?",
        ],
        at: "11:13",
    });
}

#[test]
fn bad_quantity() {
    check(&Case {
        name: "quantity",
        config: with_model(|m| m.replace("memory: 6Gi }", "memory: six }")),
        expect: &["`six` is not a Kubernetes quantity"],
        at: "13:37",
    });
}

#[test]
fn required_group_disabled_is_an_error_for_root() {
    check(&Case {
        name: "requires",
        config: config("  []\n")
            .replace("  kserve: true", "  kserve: false")
            .replace("  llm-d: false", "  llm-d: true"),
        expect: &[
            "group `llm-d` requires group `kserve`, which is disabled",
            "features.kserve",
        ],
        at: "4:3",
    });
}

#[test]
fn unknown_profile_lists_valid_ones() {
    let repo = TempRepo::new();
    let out = repo
        .cmd()
        .args(["root", "--profile", "ful"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown profile `ful`"), "{stderr}");
    assert!(stderr.contains("did you mean `full`?"), "{stderr}");
    assert!(stderr.contains("platform, serving, full"), "{stderr}");
    assert!(!repo.exists("clusters"));
}

#[test]
fn unknown_environment_suggests() {
    let repo = TempRepo::new();
    let out = repo
        .cmd()
        .args(["root", "--env", "ai-deb"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("environment `ai-deb` not found"),
        "{stderr}"
    );
    assert!(stderr.contains("--env ai-dev"), "{stderr}");
}

#[test]
fn lint_reports_every_error_at_once() {
    let repo = TempRepo::new();
    let bad = config(&QWEN_CPU.replace("memory: 8Gi", "memory: 4Gi"))
        + "    strategy: RollingUpdate\n    env:\n      VLLM_CPU_OMP_THREADS_BIND: all\n";
    repo.env("test", &bad);
    let out = repo.cmd().args(["lint", "--env", "test"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    for e in [
        "limits.memory",
        "RollingUpdate",
        "VLLM_CPU_OMP_THREADS_BIND",
        "3 error(s)",
        // Each at its own line and column.
        "--> environments/test/config.yaml:14:27\n",
        "--> environments/test/config.yaml:15:5\n",
        "--> environments/test/config.yaml:17:34\n",
    ] {
        assert!(stderr.contains(e), "lacks {e}:\n{stderr}");
    }
}

// ---- catalog errors ----

/// `at`: `file:line:column` the error points at.
fn catalog_case(edit: impl Fn(&TempRepo), expect: &[&str], at: &str) {
    let repo = TempRepo::new();
    edit(&repo);
    for args in [&["root"][..], &["lint"][..], &["resolve-groups"][..]] {
        let out = repo.cmd().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        for e in expect {
            assert!(stderr.contains(e), "{args:?}: lacks {e:?}:\n{stderr}");
        }
        let at = format!("--> {at}\n");
        assert!(stderr.contains(&at), "{args:?}: lacks {at:?}:\n{stderr}");
        assert!(!repo.exists("clusters"));
    }
}

#[test]
fn catalog_duplicate_app_names() {
    catalog_case(
        |r| {
            let g = r
                .read("catalog/groups.yaml")
                .replace("- name: kserve-crd", "- name: kserve");
            r.write("catalog/groups.yaml", &g);
        },
        &[
            "catalog/groups.yaml",
            "app `kserve` is also defined in group `kserve`",
        ],
        "catalog/groups.yaml:90:15",
    );
}

#[test]
fn catalog_wave_must_be_an_integer() {
    catalog_case(
        |r| {
            let g = r
                .read("catalog/groups.yaml")
                .replacen("wave: 0", "wave: early", 1);
            r.write("catalog/groups.yaml", &g);
        },
        &[
            "catalog/groups.yaml:",
            "wave",
            "invalid type: string \"early\", expected i32",
        ],
        "catalog/groups.yaml:32:15",
    );
}

#[test]
fn catalog_unknown_template() {
    catalog_case(
        |r| {
            let s = r
                .read("catalog/serving.yaml")
                .replace("raw-vllm-service.yaml.j2", "raw-vllm-svc.yaml.j2");
            r.write("catalog/serving.yaml", &s);
        },
        &[
            "catalog/serving.yaml",
            "servingLayers.raw-vllm.templates",
            "unknown template `raw-vllm-svc.yaml.j2`",
            "did you mean `raw-vllm-service.yaml.j2`?",
        ],
        "catalog/serving.yaml:12:65",
    );
}

#[test]
fn catalog_profiles_must_be_additive() {
    catalog_case(
        |r| {
            let s = r.read("catalog/layers.yaml").replace(
                "layers: [platform, serving, routing]",
                "layers: [platform, routing]",
            );
            r.write("catalog/layers.yaml", &s);
        },
        &["profile `full` drops layer(s) serving of the narrower profile `serving`"],
        "catalog/layers.yaml:18:5",
    );
}

#[test]
fn a_repository_without_catalog_uses_the_embedded_one_and_a_catalog_file_is_explained() {
    let repo = TempRepo::new();
    std::fs::remove_dir_all(repo.path().join("catalog")).unwrap();
    let out = repo.cmd().arg("lint").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("catalog: embedded (platform "), "{stderr}");
    // A `catalog` that is not a folder was meant as an override: an error, not a silent fallback.
    std::fs::write(repo.path().join("catalog"), "groups: []\n").unwrap();
    let out = repo.cmd().arg("root").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("catalog: is not a directory") && stderr.contains("embedded"),
        "{stderr}"
    );
    assert!(!repo.path().join("clusters").exists());
}

#[test]
fn broken_repo_template_is_reported_with_its_name_and_line() {
    let repo = TempRepo::new();
    repo.write(
        "templates/raw-vllm-service.yaml.j2",
        "{{ header }}\napiVersion: v1\nkind: Service\nmetadata:\n  name: {{ model.nmae }}\n",
    );
    let out = repo.cmd().arg("root").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("raw-vllm-service.yaml.j2"), "{stderr}");
    assert!(
        stderr.contains("line 5") || stderr.contains(":5"),
        "{stderr}"
    );
    assert!(!repo.exists("clusters"));
}

/// Run `args` with a hang guard (a FIFO or a device used to block or eat memory forever); the guard
/// is far above any real run and is not a speed assertion.
fn run_guarded(repo: &TempRepo, args: &[&str]) -> std::process::Output {
    repo.cmd()
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap()
}

fn mkfifo(path: &std::path::Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(st.success());
}

#[test]
fn config_that_is_a_device_or_a_fifo_fails_at_once_naming_the_file() {
    let repo = TempRepo::new();
    let cfg = repo.path().join("environments/test/config.yaml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    for (what, expect) in [
        (
            "/dev/zero",
            "config file is a character device, not a regular file",
        ),
        (
            "fifo",
            "config file is a FIFO (named pipe), not a regular file",
        ),
    ] {
        let _ = std::fs::remove_file(&cfg);
        if what == "fifo" {
            mkfifo(&cfg);
        } else {
            std::os::unix::fs::symlink(what, &cfg).unwrap();
        }
        for args in [
            &["root", "--env", "test"][..],
            &["lint", "--env", "test"][..],
        ] {
            let out = run_guarded(&repo, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what} {args:?}: {stderr}");
            assert!(
                stderr.contains("environments/test/config.yaml") && stderr.contains(expect),
                "{what} {args:?}: {stderr}"
            );
            assert!(
                stderr.contains("point it at a regular file"),
                "{what}: {stderr}"
            );
            assert!(!repo.exists("clusters"));
        }
    }
}

#[test]
fn catalog_file_or_template_that_is_a_fifo_fails_at_once_naming_it() {
    let repo = TempRepo::new();
    let groups = repo.path().join("catalog/groups.yaml");
    std::fs::remove_file(&groups).unwrap();
    mkfifo(&groups);
    let out = run_guarded(&repo, &["lint"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("catalog/groups.yaml")
            && stderr.contains("catalog file is a FIFO (named pipe), not a regular file"),
        "{stderr}"
    );

    let repo = TempRepo::new();
    std::fs::create_dir(repo.path().join("templates")).unwrap();
    mkfifo(&repo.path().join("templates/namespace.yaml.j2"));
    let out = run_guarded(&repo, &["root"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("templates/namespace.yaml.j2: is a FIFO (named pipe), not a regular file"),
        "{stderr}"
    );
    assert!(!repo.exists("clusters"));
}

#[test]
fn environment_names_are_single_dns_labels_never_paths() {
    let repo = TempRepo::new();
    // A valid config one level up from environments/: `--env ../elsewhere` used to reach it and
    // write clusters/../elsewhere/groups.generated.yaml.
    repo.write(
        "elsewhere/config.yaml",
        &repo.read("environments/ai-dev/config.yaml"),
    );
    for bad in ["../elsewhere", "../../outside/e", "Prod", "a_b"] {
        let out = repo
            .cmd()
            .args(["--env", bad, "resolve-groups"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {stderr}");
        assert!(
            stderr.contains(&format!("--env \"{bad}\" is not a valid environment name"))
                && stderr.contains("single DNS-1123 label"),
            "{bad}: {stderr}"
        );
    }
    let out = repo
        .cmd()
        .env("PLATFORM_ENV", "../elsewhere")
        .args(["root"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("PLATFORM_ENV=\"../elsewhere\" is not a valid environment name"),
        "{stderr}"
    );
    assert!(!repo.exists("elsewhere/groups.generated.yaml"));
    assert!(!repo.exists("clusters"));
}

#[test]
fn lint_json_gives_each_diagnostic_as_data_with_its_position() {
    let repo = TempRepo::new();
    repo.env(
        "test",
        &config(QWEN_CPU).replace("  kserve: true", "  kserv: true"),
    );
    let out = repo
        .cmd()
        .args(["lint", "--env", "test", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == "features.kserv")
        .unwrap_or_else(|| panic!("no features.kserv in {v:#}"));
    assert_eq!(
        *d,
        serde_json::json!({
            "severity": "error",
            "file": "environments/test/config.yaml",
            "line": 4,
            "column": 3,
            "path": "features.kserv",
            "message": "unknown feature `kserv`",
            "help": "did you mean `kserve`?",
        })
    );
    // A finding about an embedded catalog file is placed in it too.
    let digest = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["severity"] == "warning" && d["line"].is_u64());
    assert!(digest.is_some(), "{v:#}");
}

#[test]
fn snippets_are_coloured_only_when_asked() {
    let repo = TempRepo::new();
    repo.env(
        "test",
        &config(QWEN_CPU).replace("  kserve: true", "  kserv: true"),
    );
    let run = |extra: &[&str], no_color: bool| {
        let mut cmd = repo.cmd();
        cmd.args(["lint", "--env", "test"]).args(extra);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stderr).into_owned()
    };
    // Not a terminal: plain text.
    let plain = run(&[], false);
    assert!(plain.contains("4 |   kserv: true"), "{plain}");
    assert!(!plain.contains('\x1b'), "{plain}");
    assert!(!run(&[], true).contains('\x1b'));
    let coloured = run(&["--color", "always"], true);
    assert!(coloured.contains('\x1b'), "{coloured}");
    assert!(coloured.contains("kserv: true"), "{coloured}");
}
