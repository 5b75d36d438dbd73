//! `platform fit` as a user runs it: numbers checked against the published KV-cache figures
//! (Qwen2.5-0.5B 12 KiB/token, Qwen2.5-7B 56 KiB/token, Llama-3.1-8B 128 KiB/token, 16 GiB at
//! 128k), a model that does not fit (exit 1, the longest context that does), and the Hub path
//! (the listing's sizes, config.json alone downloaded). Then fit as the cost gate: `lint --fit`
//! (a model that does not fit is a lint error with the numbers and the fix) and `up --fit` (on the
//! test API server: the model that does not fit is not synced, the one that fits is).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;

use common::{stderr, stdout, TempRepo};
use platform_testkit::hub;
use serde_json::Value;

const QWEN_05B: &str = r#"{"architectures":["Qwen2ForCausalLM"],"hidden_size":896,"num_attention_heads":14,"num_hidden_layers":24,"num_key_value_heads":2,"max_position_embeddings":32768,"max_window_layers":21,"sliding_window":32768,"use_sliding_window":false,"torch_dtype":"bfloat16"}"#;
const QWEN_7B: &str = r#"{"architectures":["Qwen2ForCausalLM"],"hidden_size":3584,"num_attention_heads":28,"num_hidden_layers":28,"num_key_value_heads":4,"max_position_embeddings":32768,"use_sliding_window":false,"torch_dtype":"bfloat16"}"#;
const LLAMA_31_8B: &str = r#"{"architectures":["LlamaForCausalLM"],"hidden_size":4096,"num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":8,"max_position_embeddings":131072,"torch_dtype":"bfloat16"}"#;

/// A model directory: its config.json and a sparse safetensors file of `weights` bytes.
fn model_dir(config: &str, weights: u64) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.json"), config).unwrap();
    let f = std::fs::File::create(d.path().join("model.safetensors")).unwrap();
    f.set_len(weights).unwrap();
    d
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

/// The shipped ai-dev with qwen-gpu's maxModelLen set to `len`.
fn repo_with_len(len: u32) -> TempRepo {
    let repo = TempRepo::new();
    let cfg = repo.read("environments/ai-dev/config.yaml");
    assert!(cfg.contains("    maxModelLen: 16384\n"));
    repo.write(
        "environments/ai-dev/config.yaml",
        &cfg.replace(
            "    maxModelLen: 16384\n",
            &format!("    maxModelLen: {len}\n"),
        ),
    );
    repo
}

#[test]
fn kv_cache_per_token_is_the_published_figure_for_each_fixture_model() {
    for (config, per_token) in [
        (QWEN_05B, 12 * 1024),
        (QWEN_7B, 56 * 1024),
        (LLAMA_31_8B, 128 * 1024),
    ] {
        let dir = model_dir(config, 1 << 30);
        let repo = repo_with_len(4096);
        let o = repo
            .cmd()
            .args(["fit", "qwen-gpu", "--gpu", "A100-80GB", "--from-dir"])
            .arg(dir.path())
            .args(["-o", "json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let v = &json(&o)[0];
        assert_eq!(v["kvBytesPerToken"], per_token, "{v}");
        assert_eq!(v["kvBytesNeeded"], per_token * 4096, "{v}");
        assert_eq!(v["fits"], true, "{v}");
    }
}

#[test]
fn llama_8b_at_128k_does_not_fit_a_24_gb_card_and_the_longest_context_that_does_is_said() {
    let dir = model_dir(LLAMA_31_8B, 16_060_522_496);
    let repo = repo_with_len(131_072);
    let run = |gpu: &str, fmt: &[&str]| {
        repo.cmd()
            .args(["fit", "qwen-gpu", "--gpu", gpu, "--from-dir"])
            .arg(dir.path())
            .args(fmt)
            .output()
            .unwrap()
    };
    let o = run("L4", &["-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = &json(&o)[0];
    assert_eq!(v["kvBytesNeeded"], 16u64 << 30, "16 GiB at 128k: {v}");
    assert_eq!(v["fits"], false);
    let longest = v["maxModelLenThatFits"].as_u64().unwrap();
    let available = v["availableBytes"].as_i64().unwrap();
    assert!(
        longest > 0 && longest * 128 * 1024 <= available as u64,
        "{v}"
    );
    assert!((longest + 1) * 128 * 1024 > available as u64, "{v}");
    assert!(
        stderr(&o).contains("does not fit: qwen-gpu"),
        "{}",
        stderr(&o)
    );
    // The table says it, with where each input came from.
    let o = run("L4", &[]);
    let out = stdout(&o);
    assert!(
        out.contains("DOES NOT FIT") && out.contains(&longest.to_string()),
        "{out}"
    );
    assert!(
        out.contains("utilisation 0.9 (the preset's or the model's arguments)"),
        "{out}"
    );
    // Without the preset's setting, vLLM's default, said so.
    let o = repo
        .cmd()
        .args([
            "fit",
            "qwen-gpu",
            "--gpu",
            "H100-80GB",
            "--gpu-memory-utilization",
            "0.5",
            "--from-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("utilisation 0.5 (--gpu-memory-utilization of fit)"),
        "{}",
        stdout(&o)
    );
    // An unknown GPU type lists the known ones.
    let o = run("RTX-9090", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown GPU type `RTX-9090` (known: A100-40GB, A100-80GB, A10G"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn from_the_hub_fit_reads_the_listing_and_downloads_config_json_alone() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let repo_id = "Qwen/Qwen2.5-7B-Instruct";
    let emu = rt.block_on(hub::HubEmulator::start(
        vec![hub::EmuRepo::new(repo_id)
            .text("config.json", QWEN_7B)
            .text("tokenizer.json", "{}")
            .file("model-00001-of-00002.safetensors", 2 * 1024 * 1024, true)
            .file("model-00002-of-00002.safetensors", 1024 * 1024, true)],
        hub::Faults::default(),
    ));
    let cache = tempfile::tempdir().unwrap();
    let repo = TempRepo::new();
    let o = repo
        .cmd()
        .env("HF_ENDPOINT", &emu.endpoint)
        .env("PLATFORM_HUB_CACHE", cache.path())
        .env("HF_HOME", cache.path())
        .env_remove("HF_TOKEN")
        .args(["fit", "qwen-gpu", "--gpu", "L4", "-o", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v = &json(&o)[0];
    assert_eq!(v["weightsBytes"], 3 * 1024 * 1024, "{v}");
    assert_eq!(v["kvBytesPerToken"], 56 * 1024, "{v}");
    let fetched: Vec<String> = emu.file_requests().into_iter().map(|r| r.path).collect();
    assert!(
        fetched.iter().all(|p| p.ends_with("/config.json")) && !fetched.is_empty(),
        "only config.json is downloaded: {fetched:?}"
    );
}

/// Without --gpu, the smallest GPU the cluster's nodes name in GPU feature discovery's labels: a
/// catalog type by its product, else the product with its memory label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_gpu_the_nodes_labels_say_which_and_the_smallest_counts() {
    use platform_testkit::apiserver::{Options, TestApiServer};
    let server = TestApiServer::start(Options {
        cluster_name: "ai-dev".into(),
        ..Options::default()
    })
    .await;
    let e = common::apienv::Env::new(server, TempRepo::new()).await;
    let dir = model_dir(QWEN_7B, 15_231_233_024);
    let node = |name: &str, labels: Value| {
        serde_json::json!({"apiVersion": "v1", "kind": "Node",
                           "metadata": {"name": name, "labels": labels}})
    };
    let run = || async {
        e.platform(&[
            "fit",
            "qwen-gpu",
            "--from-dir",
            dir.path().to_str().unwrap(),
            "-o",
            "json",
        ])
        .await
    };
    // No node says: pass --gpu.
    let o = run().await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("no node names its GPU (nvidia.com/gpu.product label): pass --gpu TYPE"),
        "{}",
        stderr(&o)
    );
    e.server
        .put(node(
            "gpu-a100",
            serde_json::json!({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}),
        ))
        .unwrap();
    e.server
        .put(node("gpu-x", serde_json::json!({"nvidia.com/gpu.product": "NVIDIA-Future-GPU", "nvidia.com/gpu.memory": "20480"})))
        .unwrap();
    let o = run().await;
    let v = &json(&o)[0];
    assert_eq!(v["gpu"], "NVIDIA-Future-GPU", "{v}");
    assert_eq!(v["gpuBytes"], 20480u64 << 20, "{v}");
    assert!(v["gpuFrom"].as_str().unwrap().contains("node gpu-x"), "{v}");
    // The other node now holds a bigger GPU: the A100 is the smallest.
    e.server
        .put(node(
            "gpu-x",
            serde_json::json!({"nvidia.com/gpu.product": "NVIDIA-H200"}),
        ))
        .unwrap();
    let o = run().await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v = &json(&o)[0];
    assert_eq!(v["gpu"], "A100-80GB", "{v}");
    assert!(stderr(&o).contains("GPU: A100-80GB (80.0 GiB), from node gpu-a100's nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB"), "{}", stderr(&o));
    e.server.shutdown().await;
}

/// A CPU model is checked against its pod's memory: weights in the dtype vLLM runs them (float32
/// on CPU doubles bf16 weights) and the fixed KV space (VLLM_CPU_KVCACHE_SPACE), no GPU asked for.
#[test]
fn a_cpu_model_is_checked_against_its_memory_limit_and_kv_space() {
    let dir = model_dir(QWEN_05B, 988_097_824);
    let repo = TempRepo::new();
    let run = |repo: &TempRepo| {
        repo.cmd()
            .args(["fit", "qwen-cpu", "--from-dir"])
            .arg(dir.path())
            .args(["-o", "json"])
            .output()
            .unwrap()
    };
    let o = run(&repo);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = &json(&o)[0];
    assert_eq!(v["gpu"], "cpu", "{v}");
    // float32: twice the bytes per KV element and per weight.
    assert_eq!(v["kvBytesPerToken"], 24 * 1024, "{v}");
    assert_eq!(v["weightsBytes"], 2 * 988_097_824u64, "{v}");
    assert_eq!(v["maxModelLen"], 4096, "the preset's --max-model-len: {v}");
    assert_eq!(
        v["maxModelLenThatFits"], 32768,
        "capped at max_position_embeddings: {v}"
    );
    assert!(
        v["gpuFrom"]
            .as_str()
            .unwrap()
            .contains("VLLM_CPU_KVCACHE_SPACE=2 GiB"),
        "{v}"
    );
    // A pod too small for the float32 weights: does not fit, nothing does.
    let cfg = repo
        .read("environments/ai-dev/config.yaml")
        .replacen(
            "      requests: { cpu: \"2\", memory: 6Gi }\n",
            "      requests: { cpu: \"2\", memory: 1Gi }\n",
            1,
        )
        .replace(
            "      limits: { cpu: \"2\", memory: 8Gi }   # explicit",
            "      limits: { cpu: \"2\", memory: 2Gi }   # explicit",
        );
    assert!(cfg.contains("memory: 2Gi }   # explicit"));
    repo.write("environments/ai-dev/config.yaml", &cfg);
    let o = run(&repo);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = &json(&o)[0];
    assert_eq!(
        (v["fits"].clone(), v["maxModelLenThatFits"].clone()),
        (Value::Bool(false), Value::from(0)),
        "{v}"
    );
}

/// A Hub emulator serving the shipped ai-dev's two vLLM models: qwen-gpu's repository holds
/// Llama-3.1-8B's shape (128 KiB of KV cache per token: 16 GiB at 128k) with 3 MiB of weights,
/// qwen-cpu's the 0.5B model's.
async fn hub_for_ai_dev() -> hub::HubEmulator {
    hub::HubEmulator::start(
        vec![
            hub::EmuRepo::new("Qwen/Qwen2.5-7B-Instruct")
                .text("config.json", LLAMA_31_8B)
                .file("model.safetensors", 3 * 1024 * 1024, true),
            hub::EmuRepo::new("Qwen/Qwen2.5-0.5B-Instruct")
                .text("config.json", QWEN_05B)
                .file("model.safetensors", 1024 * 1024, true),
        ],
        hub::Faults::default(),
    )
    .await
}

/// On a T4 (15 GiB): 0.9 x 15 GiB - 3 MiB of weights - 2 GiB of overhead = 12344885248 bytes
/// left, which hold 94184 tokens at 128 KiB each.
const LONGEST_ON_T4: &str = "94184";

#[test]
fn lint_fit_judges_each_vllm_model_and_one_that_does_not_fit_is_an_error_with_the_numbers() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(hub_for_ai_dev());
    let cache = tempfile::tempdir().unwrap();
    let repo = repo_with_len(131_072);
    let lint = |args: &[&str]| {
        repo.cmd()
            .env("HF_ENDPOINT", &emu.endpoint)
            .env("PLATFORM_HUB_CACHE", cache.path())
            .env("HF_HOME", cache.path())
            .env_remove("HF_TOKEN")
            .arg("lint")
            .args(args)
            .output()
            .unwrap()
    };
    // Without --fit, lint stays offline: the Hub hears nothing.
    let o = lint(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(emu.log().is_empty(), "lint read the Hub: {:?}", emu.log());

    // --fit without --gpu: the CPU model is checked (it fits); the GPU model's type is unknown,
    // a warning naming it and the fix.
    let o = lint(&["--fit", "-o", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["errors"], 0, "{v}");
    let gpu_warning = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == "models[qwen-gpu].gpus")
        .unwrap_or_else(|| panic!("no warning about qwen-gpu: {v}"));
    assert_eq!(gpu_warning["severity"], "warning", "{gpu_warning}");
    assert!(
        gpu_warning["message"]
            .as_str()
            .unwrap()
            .contains("fit cannot check qwen-gpu: its GPU type is unknown"),
        "{gpu_warning}"
    );
    assert!(
        gpu_warning["help"]
            .as_str()
            .unwrap()
            .starts_with("pass --gpu TYPE"),
        "{gpu_warning}"
    );
    assert!(
        stderr(&o).contains("fit: qwen-cpu fits on its pod's memory"),
        "{}",
        stderr(&o)
    );

    // On a T4 it does not fit: an error at its maxModelLen with the numbers and the fixes the
    // rule confirms (TP 2 halves the KV heads; the A10G is the smallest catalog GPU it fits).
    let o = lint(&["--fit", "--gpu", "T4", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["errors"], 1, "{v}");
    let d = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["severity"] == "error")
        .unwrap();
    assert_eq!(d["path"], "models[qwen-gpu].maxModelLen", "{d}");
    assert_eq!(d["file"], "environments/ai-dev/config.yaml", "{d}");
    assert!(d["line"].as_u64().is_some(), "located in config.yaml: {d}");
    let message = d["message"].as_str().unwrap();
    for want in [
        "qwen-gpu does not fit on T4 (15.0 GiB)",
        "one request at maxModelLen 131072 needs 16.0 GiB of KV cache per GPU",
        "and 11.5 GiB is left for it (0.9 x 15.0 GiB - weights 3.0 MiB per GPU at tensor parallel 1 - overhead 2.0 GiB)",
        &format!("the longest maxModelLen that fits is {LONGEST_ON_T4}"),
    ] {
        assert!(message.contains(want), "{want:?} not in {message}");
    }
    let help = d["help"].as_str().unwrap();
    assert_eq!(
        help,
        format!("lower maxModelLen to {LONGEST_ON_T4} or less; or raise tensorParallelSize to 2 with gpus: 2 (weights and KV heads split over 2 GPUs); or run it on a bigger GPU: A10G (22.5 GiB) is the smallest GPU type of the catalog it fits"),
    );
    // The table output says it too, and the summary counts it.
    let o = lint(&["--fit", "--gpu", "T4"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("qwen-gpu does not fit on T4") && stderr(&o).contains("1 error(s)"),
        "{}",
        stderr(&o)
    );

    // On an A100-80GB it fits: no finding.
    let o = lint(&["--fit", "--gpu", "A100-80GB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("fit: qwen-gpu fits on A100-80GB (80.0 GiB)"),
        "{}",
        stderr(&o)
    );
    // An unknown GPU type is an error listing the known ones.
    let o = lint(&["--fit", "--gpu", "RTX-9090"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown GPU type `RTX-9090` (known: A100-40GB"),
        "{}",
        stderr(&o)
    );
    // A CPU model whose pod is too small for its float32 weights: an error at its memory
    // limit, and the limit that would do (2 MiB of weights + 2 GiB of overhead + the 2 GiB KV
    // space, in whole GiB).
    let cfg = repo
        .read("environments/ai-dev/config.yaml")
        .replacen(
            "      requests: { cpu: \"2\", memory: 6Gi }\n",
            "      requests: { cpu: \"2\", memory: 1Gi }\n",
            1,
        )
        .replace(
            "      limits: { cpu: \"2\", memory: 8Gi }   # explicit",
            "      limits: { cpu: \"2\", memory: 2Gi }   # explicit",
        );
    repo.write("environments/ai-dev/config.yaml", &cfg);
    let o = lint(&["--fit", "--gpu", "A100-80GB", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    let d = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["severity"] == "error")
        .unwrap();
    assert_eq!(d["path"], "models[qwen-cpu].resources.limits.memory", "{d}");
    assert!(
        d["message"].as_str().unwrap().starts_with(
            "qwen-cpu does not fit its pod's memory (2.0 GiB): one request at maxModelLen 4096 needs 96.0 MiB of KV cache, and -2.0 MiB is left for it"
        ),
        "{d}"
    );
    assert_eq!(
        d["help"], "raise the memory limit (resources.limits.memory) to 5Gi",
        "{d}"
    );

    // --gpu means nothing without --fit.
    let o = lint(&["--gpu", "T4"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--fit"), "{}", stderr(&o));
}

/// `up --sync-models --fit`: the models are judged before anything is applied; a model that does
/// not fit (or whose GPU type nobody names) is not synced, the rest come up, and up exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_fit_syncs_the_model_that_fits_and_not_the_one_that_does_not() {
    use platform_testkit::apiserver::{Options, TestApiServer};
    let emu = hub_for_ai_dev().await;
    let cache = tempfile::tempdir().unwrap();
    let server = TestApiServer::start(Options {
        cluster_name: "ai-dev".into(),
        ..Options::default()
    })
    .await;
    let e = common::apienv::Env::new(server, repo_with_len(131_072)).await;
    // The child Applications, as the root apps create them when Argo CD syncs them.
    for (path, text) in e.repo.tree("clusters/ai-dev/apps") {
        let v: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        e.server.put(v).unwrap();
    }
    let cache_dir = cache.path().to_str().unwrap();
    let hub_env = [
        ("HF_ENDPOINT", emu.endpoint.as_str()),
        ("PLATFORM_HUB_CACHE", cache_dir),
        ("HF_HOME", cache_dir),
    ];
    let up = |extra: &'static [&'static str]| {
        let mut args = vec![
            "up",
            "--allow-unpushed",
            "--sync-models",
            "--fit",
            "--timeout",
            "60s",
        ];
        args.extend(extra);
        let e = &e;
        async move { e.platform_env(&args, &hub_env).await }
    };
    let synced = |app: &str| {
        e.server
            .get("argoproj.io/v1alpha1", "Application", "argocd", app)
            .unwrap()
            .pointer("/status/operationState/phase")
            .and_then(Value::as_str)
            .map(str::to_string)
    };

    // A model whose files cannot be read stops up before anything is written.
    emu.set_faults(hub::Faults {
        required_token: Some("secret".into()),
        ..hub::Faults::default()
    });
    e.server.clear_request_log();
    let o = up(&["--gpu", "T4"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--fit could not check model qwen-cpu: nothing was applied or synced"),
        "{}",
        stderr(&o)
    );
    let writes: Vec<String> = (e.server.request_log().into_iter())
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
        .map(|r| format!("{} {} {}", r.verb, r.resource, r.name))
        .collect();
    assert!(writes.is_empty(), "written: {writes:?}");
    emu.set_faults(hub::Faults::default());

    // No --gpu and no node names its GPU: qwen-gpu cannot be shown to start, so it is held
    // back; qwen-cpu fits its pod and is synced.
    let o = up(&[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("not syncing qwen-gpu: fit cannot check qwen-gpu, its GPU type is unknown"),
        "{err}"
    );
    assert!(
        err.contains("fit: qwen-cpu fits on its pod's memory"),
        "{err}"
    );
    assert!(
        err.contains("--fit held back 1 model app(s) that would not start: qwen-gpu"),
        "{err}"
    );
    assert_eq!(synced("qwen-cpu").as_deref(), Some("Succeeded"));
    assert_eq!(synced("qwen-gpu"), None, "qwen-gpu was synced");

    // On a T4 it does not fit: not synced, and why, with the numbers and the fix.
    let o = up(&["--gpu", "T4"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("not syncing qwen-gpu: qwen-gpu does not fit on T4 (15.0 GiB): one request at maxModelLen 131072 needs 16.0 GiB of KV cache per GPU"),
        "{err}"
    );
    assert!(
        err.contains(&format!("lower maxModelLen to {LONGEST_ON_T4} or less")),
        "{err}"
    );
    assert!(
        err.contains("--fit held back 1 model app(s) that would not start: qwen-gpu"),
        "{err}"
    );
    assert_eq!(synced("qwen-gpu"), None, "qwen-gpu was synced");

    // The node's labels name an A100-80GB: it fits, and is synced.
    e.server
        .put(serde_json::json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "gpu-a100", "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}}}))
        .unwrap();
    let o = up(&[]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("fit: GPU A100-80GB (80.0 GiB), from node gpu-a100's nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB"),
        "{err}"
    );
    assert!(err.contains("fit: qwen-gpu fits on A100-80GB"), "{err}");
    assert_eq!(synced("qwen-gpu").as_deref(), Some("Succeeded"));
    e.server.shutdown().await;
}
