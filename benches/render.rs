//! Render benchmark (not a test): `cargo bench --bench render`.
//!
//! 1. Library pipeline per phase (load inputs, plan, render, check the rendered objects) for fleet
//!    environments of 100, 1000 and 10 000 models alternating the shipped qwen-cpu and qwen-gpu shapes
//!    (made by `scripts/fleet-env.sh N`): median of repeated runs.
//! 2. The same environments as a whole process (the release binary): `root --profile full` writing
//!    every file into an empty tree, `root` again with nothing changed, `root` after one model was
//!    renamed (8 files change: the tree swap), `root --stdout`, `lint`, `plan`.
//! 3. The shipped ai-dev environment as a whole process (`root --stdout`, `root` with an unchanged
//!    tree, `lint`): median and min of 30 spawns.
//!
//! Targets (issue 14): 1000 models re-rendered in ≤ 100 ms, first render with writes ≤ 400 ms,
//! linear to 10 000 models; the shipped environment ≤ 4 ms median as a whole process. Peak RSS is
//! measured outside (`/usr/bin/time -v`, see scripts/fleet-env.sh).
//! `BENCH_MODELS=100,1000` limits the sizes.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use platform::catalog::Catalog;
use platform::plan::Plan;
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

#[derive(Default, Clone, Copy)]
struct Phases {
    load: Duration,
    plan: Duration,
    render: Duration,
    check: Duration,
}

fn pipeline(repo: &Path, env: &str) -> (usize, Phases) {
    let mut p = Phases::default();
    let t = Instant::now();
    let templates = Templates::load(repo).unwrap();
    let catalog = Catalog::load(repo, &templates.names()).unwrap();
    let (file, cfg) = platform::config::load(repo, env).unwrap();
    p.load = t.elapsed();
    let t = Instant::now();
    let plan = Plan::build(&cfg, env, &file, &catalog, Some("full")).unwrap();
    p.plan = t.elapsed();
    let t = Instant::now();
    let tree = render::render(&plan, &catalog, &templates).unwrap();
    p.render = t.elapsed();
    let t = Instant::now();
    let problems = check::check_tree(&tree);
    assert!(problems.is_empty(), "{problems:?}");
    p.check = t.elapsed();
    (tree.files.len(), p)
}

/// A whole-process measurement: label, arguments, what runs before each spawn (untimed).
type Row<'a> = (&'a str, Vec<&'a str>, &'a dyn Fn());

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn min(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
}

/// Median (and min) wall time of `runs` spawns of the binary; `before` runs ahead of each (untimed).
fn spawn(repo: &Path, args: &[&str], runs: usize, before: &dyn Fn()) -> (Duration, Duration) {
    let bin = env!("CARGO_BIN_EXE_platform");
    let times: Vec<Duration> = (0..runs)
        .map(|_| {
            before();
            let t = Instant::now();
            let out = Command::new(bin)
                .arg("--repo")
                .arg(repo)
                .args(args)
                .output()
                .unwrap();
            let elapsed = t.elapsed();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            elapsed
        })
        .collect();
    (median(times.clone()), min(&times))
}

fn sizes() -> Vec<usize> {
    std::env::var("BENCH_MODELS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1000, 10_000])
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root.join("environments"), &dir.path().join("environments"));
    let sizes = sizes();
    for &n in &sizes {
        // The same environments a user measures by hand (catalog/ and templates/ copied too).
        let made = Command::new(root.join("scripts/fleet-env.sh"))
            .arg(n.to_string())
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    }

    println!("library pipeline per phase, profile full (median):");
    for &n in &sizes {
        let env = format!("fleet-{n}");
        let runs = if n >= 10_000 { 3 } else { 10 };
        let (files, _) = pipeline(dir.path(), &env); // warm-up
        let all: Vec<Phases> = (0..runs).map(|_| pipeline(dir.path(), &env).1).collect();
        let m = |f: fn(&Phases) -> Duration| median(all.iter().map(f).collect());
        println!(
            "  {n:>6} models, {files:>6} files: load {:>9.2?}  plan {:>9.2?}  render {:>9.2?}  check {:>9.2?}  ({runs} runs)",
            m(|p| p.load),
            m(|p| p.plan),
            m(|p| p.render),
            m(|p| p.check)
        );
    }

    println!("whole process, release binary (median, min):");
    for &n in &sizes {
        let env = format!("fleet-{n}");
        let runs = if n >= 10_000 { 3 } else { 7 };
        let clusters = dir.path().join("clusters");
        let root_args = ["--env", env.as_str(), "root", "--profile", "full", "-q"];
        // The previous tree is moved aside, not deleted, before each first render: ext4 allocates
        // inodes slowly for a while after thousands were freed (`recently_deleted` in its inode
        // allocator), which would measure the benchmark's own deletions, not the write.
        let aside = tempfile::tempdir_in(dir.path()).unwrap();
        let moved = std::cell::Cell::new(0);
        let wipe = || {
            if clusters.exists() {
                moved.set(moved.get() + 1);
                std::fs::rename(&clusters, aside.path().join(moved.get().to_string())).unwrap();
            }
        };
        // One model renamed (4 files added, 4 removed): the new tree is built beside the old one
        // and swapped in.
        let config = dir.path().join(format!("environments/{env}/config.yaml"));
        let rename_one = || {
            let text = std::fs::read_to_string(&config).unwrap();
            let text = if text.contains("name: qwen-cpu-0x\n") {
                text.replacen("name: qwen-cpu-0x\n", "name: qwen-cpu-0\n", 1)
            } else {
                text.replacen("name: qwen-cpu-0\n", "name: qwen-cpu-0x\n", 1)
            };
            std::fs::write(&config, text).unwrap();
        };
        let rows: [Row; 6] = [
            ("root (writes every file)", root_args.to_vec(), &wipe),
            ("root (nothing changed)", root_args.to_vec(), &|| {}),
            ("root (one model renamed)", root_args.to_vec(), &rename_one),
            (
                "root --stdout",
                vec!["--env", &env, "root", "--profile", "full", "--stdout"],
                &|| {},
            ),
            ("lint", vec!["--env", &env, "lint", "-q"], &|| {}),
            (
                "plan",
                vec!["--env", &env, "plan", "--profile", "full"],
                &|| {},
            ),
        ];
        for (label, args, before) in rows {
            let (med, lo) = spawn(dir.path(), &args, runs, before);
            println!(
                "  {n:>6} models  {label:<26} median {med:>10.2?}, min {lo:>10.2?} ({runs} runs)"
            );
        }
        wipe();
        if std::fs::read_to_string(&config)
            .unwrap()
            .contains("name: qwen-cpu-0x\n")
        {
            rename_one();
        }
    }

    println!("whole process on the shipped ai-dev environment:");
    for (label, args) in [
        (
            "root --stdout",
            &["--env", "ai-dev", "root", "--profile", "full", "--stdout"][..],
        ),
        (
            "root (unchanged tree)",
            &["--env", "ai-dev", "root", "--profile", "full", "-q"][..],
        ),
        ("lint", &["--env", "ai-dev", "lint", "-q"][..]),
    ] {
        spawn(dir.path(), args, 1, &|| {});
        let (med, lo) = spawn(dir.path(), args, 30, &|| {});
        println!("  {label:<22} median {med:>10.2?}, min {lo:>10.2?} (30 runs)");
    }
}
