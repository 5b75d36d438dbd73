//! Render benchmark (not a test): `cargo bench --bench render`.
//!
//! 1. Library pipeline (load catalog + templates + config, validate, plan, render, check every object)
//!    for environments with 10, 100 and 1000 models: median and min of repeated runs.
//! 2. The shipped ai-dev environment as a whole process (`platform root --stdout`, and `platform root`
//!    writing an unchanged tree): median wall time of repeated spawns of the release binary.
//!
//! Targets (issue 2): the shipped environment in single-digit milliseconds as a whole process;
//! 1000 models under 1 s, growing linearly.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use platform::catalog::resolve::Plan;
use platform::catalog::Catalog;
use platform::render::{self, check, Templates};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn config(models: usize) -> String {
    let mut s = String::from(
        "cluster: {name: bench}\nrepoURL: https://example.com/gitops.git\nfeatures: {kserve: true, raw-vllm: true, llm-d: true}\nmodels:\n",
    );
    for i in 0..models {
        match i % 3 {
            0 => s.push_str(&format!(
                "  - {{name: cpu-{i}, layer: kserve, source: hf://Qwen/Qwen2.5-0.5B-Instruct, preset: vllm-cpu, resources: {{requests: {{cpu: \"2\", memory: 6Gi}}, limits: {{cpu: \"2\", memory: 8Gi}}}}}}\n"
            )),
            1 => s.push_str(&format!(
                "  - {{name: gpu-{i}, layer: raw-vllm, source: hf://Qwen/Qwen2.5-7B-Instruct, preset: vllm-gpu, gpus: 1, resources: {{requests: {{cpu: \"4\", memory: 24Gi}}}}}}\n"
            )),
            _ => s.push_str(&format!(
                "  - {{name: llmd-{i}, layer: llm-d, source: hf://Qwen/Qwen2.5-0.5B-Instruct, preset: vllm-gpu, gpus: 1, prefill: {{gpus: 1}}}}\n"
            )),
        }
    }
    s
}

fn pipeline(repo: &Path, env: &str) -> usize {
    let templates = Templates::load(repo).unwrap();
    let catalog = Catalog::load(repo, &templates.names()).unwrap();
    let (file, cfg) = platform::config::load(repo, env).unwrap();
    let plan = Plan::build(&cfg, env, &file, &catalog, Some("full")).unwrap();
    let tree = render::render(&plan, &catalog, &templates).unwrap();
    let (objs, problems) = check::objects(&tree);
    assert!(problems.is_empty());
    assert!(check::check_objects(&objs).is_empty());
    tree.files.len()
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[0])
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root.join("catalog"), &dir.path().join("catalog"));
    copy_dir(&root.join("environments"), &dir.path().join("environments"));

    println!("library pipeline (load, validate, plan, render, check), profile full:");
    let mut per_model = Vec::new();
    for n in [10usize, 100, 1000] {
        let env = format!("bench-{n}");
        let p = dir.path().join("environments").join(&env);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("config.yaml"), config(n)).unwrap();
        let iters = if n >= 1000 { 5 } else { 20 };
        let files = pipeline(dir.path(), &env); // warm-up
        let times: Vec<Duration> = (0..iters)
            .map(|_| {
                let t = Instant::now();
                pipeline(dir.path(), &env);
                t.elapsed()
            })
            .collect();
        let (median, min) = stats(times);
        per_model.push((n, median));
        println!("  {n:>5} models: {files:>5} files, median {median:>10.2?}, min {min:>10.2?} ({iters} runs)");
    }
    if let (Some((n0, t0)), Some((n1, t1))) = (per_model.get(1), per_model.get(2)) {
        let ratio = t1.as_secs_f64() / t0.as_secs_f64();
        println!(
            "  growth 100 -> 1000 models: x{ratio:.1} for x{} models",
            n1 / n0
        );
    }

    let bin = env!("CARGO_BIN_EXE_platform");
    println!("whole process on the shipped ai-dev environment ({bin}):");
    for (label, args) in [
        (
            "root --stdout",
            &["root", "--profile", "full", "--stdout"][..],
        ),
        (
            "root (unchanged tree)",
            &["root", "--profile", "full", "-q"][..],
        ),
        ("lint", &["lint", "-q"][..]),
    ] {
        let run = || {
            let t = Instant::now();
            let out = Command::new(bin)
                .arg("--repo")
                .arg(dir.path())
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.elapsed()
        };
        run();
        let (median, min) = stats((0..30).map(|_| run()).collect());
        println!("  {label:<22} median {median:>10.2?}, min {min:>10.2?} (30 runs)");
    }
}
