//! Download throughput of `platform::hub` from the loopback Hub emulator, against a baseline of
//! 8 parallel `curl -L` (no verification) in the same run: `cargo bench --bench hub_download`.
//!
//! The emulator runs in its own process (this binary started again with `--serve`), so the
//! figures and the peak RSS are the client's own; LFS files answer with a 302 to the emulator's
//! "CDN" port, as the Hub's `resolve/` path does. Scenarios: the issue-24 snapshot (one 512 MiB
//! safetensors and 9 files of 1 MiB) and a sharded model (4 × 128 MiB + 3 small files). Each is run
//! `HUB_BENCH_RUNS` times (default 3) into an empty directory after a `sync`, alternating platform
//! and curl; the medians, MB/s, platform/curl (goal ≤ 1.0), the client's CPU seconds and peak RSS
//! are printed. Env: `HUB_BENCH_CONCURRENCY`, `HUB_BENCH_RANGE_MIB`, `HUB_BENCH_RUNS`,
//! `HUB_BENCH_ONLY=snapshot|sharded`.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use platform_testkit::hub as hub_emu;
#[path = "support/mod.rs"]
mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Instant;

use hub_emu::{EmuRepo, Faults, HubEmulator};
use platform::hub::{FileFilter, HubClient, HubConfig, NoProgress};

const MIB: u64 = 1024 * 1024;

fn env_num(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn snapshot_repo() -> EmuRepo {
    let mut r = EmuRepo::new("bench/snapshot").file("model.safetensors", 512 * MIB, true);
    for i in 1..=9 {
        r = r.file(&format!("tokenizer-extra-{i}.json"), MIB, i % 2 == 0);
    }
    r
}

fn sharded_repo() -> EmuRepo {
    let mut r = EmuRepo::new("bench/sharded")
        .text("config.json", "{}")
        .text("tokenizer.json", "{}")
        .text("model.safetensors.index.json", "{}");
    for i in 1..=4 {
        r = r.file(
            &format!("model-{i:05}-of-00004.safetensors"),
            128 * MIB,
            true,
        );
    }
    r
}

/// The emulator in this process, until stdin closes; prints its endpoint first.
fn serve() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let emu =
            HubEmulator::start(vec![snapshot_repo(), sharded_repo()], Faults::default()).await;
        println!("{}", emu.endpoint);
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await
        .unwrap();
        drop(emu);
    });
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Fetches every URL into `dir` with `curl -sSfL`, 8 processes at a time.
fn curl_all(urls: &[(String, String)], dir: &Path) {
    let mut running: Vec<Child> = Vec::new();
    for (i, (url, _)) in urls.iter().enumerate() {
        if running.len() == 8 {
            let mut first = running.remove(0);
            assert!(first.wait().unwrap().success(), "curl failed");
        }
        let child = Command::new("curl")
            .args(["-sSfL", "-o"])
            .arg(dir.join(format!("f{i}")))
            .arg(url)
            .spawn()
            .expect("curl (apt-get install -y curl)");
        running.push(child);
    }
    for mut c in running {
        assert!(c.wait().unwrap().success(), "curl failed");
    }
}

/// Busy CPU seconds of the whole machine so far (all cores, `/proc/stat`: everything but idle
/// and iowait), and the number of cores.
fn machine_busy() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().next() else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle) / 100.0
}

/// Seconds per run: wall time, the client's CPU, the emulator's CPU, the machine's busy CPU.
#[derive(Default)]
struct Runs {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    emu_cpu: Vec<f64>,
    busy: Vec<f64>,
}

impl Runs {
    fn line(&self, mb: f64) -> String {
        let w = median(self.wall.clone());
        format!(
            "median {w:.3}s = {:.0} MB/s (runs {}), CPU {:.2}s, emulator CPU {:.2}s, \
             machine busy {:.2}s",
            mb / w,
            self.wall
                .iter()
                .map(|s| format!("{s:.3}"))
                .collect::<Vec<_>>()
                .join(" "),
            median(self.cpu.clone()),
            median(self.emu_cpu.clone()),
            median(self.busy.clone())
        )
    }
}

/// Runs `f` after a `sync`, recording its wall time, its CPU (`own`: this process's, else the
/// children's) and the emulator's.
async fn measured<F: std::future::Future<Output = ()>>(
    runs: &mut Runs,
    emu: &str,
    own: bool,
    f: F,
) {
    let _ = Command::new("sync").status();
    let pick = |c: (f64, f64)| if own { c.0 } else { c.1 };
    let (c0, e0, b0) = (
        pick(support::cpu("self")),
        support::cpu(emu).0,
        machine_busy(),
    );
    let start = Instant::now();
    f.await;
    runs.busy.push(machine_busy() - b0);
    runs.wall.push(start.elapsed().as_secs_f64());
    runs.cpu.push(pick(support::cpu("self")) - c0);
    runs.emu_cpu.push(support::cpu(emu).0 - e0);
}

async fn scenario(
    name: &str,
    emu: &support::Server,
    id: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let runs = env_num("HUB_BENCH_RUNS", 3).max(1);
    let endpoint = &emu.url;
    let pid = emu.pid();
    let (mut platform, mut curl) = (Runs::default(), Runs::default());
    let mut bytes = 0u64;
    let mut urls = Vec::new();
    let have_curl = Command::new("curl").arg("--version").output().is_ok();
    for _ in 0..runs {
        let dir = tempfile::tempdir()?;
        let mut cfg = HubConfig::new(endpoint.to_string(), dir.path());
        cfg.concurrency = env_num("HUB_BENCH_CONCURRENCY", cfg.concurrency as u64) as usize;
        cfg.range_size = env_num("HUB_BENCH_RANGE_MIB", cfg.range_size / MIB) * MIB;
        let client = HubClient::new(cfg)?;
        let snap = client.resolve(id, "main", &FileFilter::default()).await?;
        bytes = snap.total_bytes();
        urls = snap
            .files
            .iter()
            .map(|f| {
                let url = format!("{endpoint}/{id}/resolve/{}/{}", snap.commit, f.path);
                (url, f.path.clone())
            })
            .collect();
        measured(&mut platform, &pid, true, async {
            let local = client.download(&snap, &NoProgress, None).await.unwrap();
            assert_eq!(local.downloaded_bytes, bytes);
        })
        .await;
        drop(dir);
        if have_curl {
            let cdir = tempfile::tempdir()?;
            measured(&mut curl, &pid, false, async {
                curl_all(&urls, cdir.path());
            })
            .await;
        }
    }
    let mb = bytes as f64 / 1e6;
    println!(
        "{name} ({} files, {:.0} MiB)\n  platform, sha256 verified: {}; peak RSS so far {}",
        urls.len(),
        bytes as f64 / MIB as f64,
        platform.line(mb),
        support::vm_hwm()
    );
    if curl.wall.is_empty() {
        println!("  curl not found: no baseline");
    } else {
        println!("  8 parallel curl -L, no verification: {}", curl.line(mb));
        println!(
            "  platform/curl = {:.2} (goal <= 1.0)",
            median(platform.wall) / median(curl.wall)
        );
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("--serve") {
        serve();
        return Ok(());
    }
    // As the `platform` binary does.
    platform::alloc::limit_malloc_arenas();
    let emu = support::Server::start(&[], &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let only = std::env::var("HUB_BENCH_ONLY").unwrap_or_default();
    rt.block_on(async {
        println!("start: peak RSS {}", support::vm_hwm());
        if only.is_empty() || only == "snapshot" {
            let name = "snapshot 512 MiB + 9 x 1 MiB";
            scenario(name, &emu, "bench/snapshot").await?;
        }
        if only.is_empty() || only == "sharded" {
            let name = "sharded 4 x 128 MiB + 3 small";
            scenario(name, &emu, "bench/sharded").await?;
        }
        println!("end: peak RSS (VmHWM) {}", support::vm_hwm());
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    drop(emu);
    Ok(())
}
