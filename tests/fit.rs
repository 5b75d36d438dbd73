//! `platform fit` as a user runs it: numbers checked against the published KV-cache figures
//! (Qwen2.5-0.5B 12 KiB/token, Qwen2.5-7B 56 KiB/token, Llama-3.1-8B 128 KiB/token, 16 GiB at
//! 128k), a model that does not fit (exit 1, the longest context that does), and the Hub path
//! (the listing's sizes, config.json alone downloaded).
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
