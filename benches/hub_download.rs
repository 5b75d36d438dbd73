//! Download throughput of `platform::hub` from the loopback Hub emulator: one 512 MiB file, then
//! a sharded model (4 × 128 MiB + small files). Prints MB/s per scenario and the process's peak
//! RSS (`VmHWM`). The emulator runs in this process and generates bytes on the fly, so the peak
//! RSS covers both sides. Env: `HUB_BENCH_CONCURRENCY`, `HUB_BENCH_RANGE_MIB`.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use platform_testkit::hub as hub_emu;
#[path = "support/mod.rs"]
mod support;

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

async fn run(name: &str, repo: EmuRepo) -> Result<(), Box<dyn std::error::Error>> {
    let id = repo.id.clone();
    let emu = HubEmulator::start(vec![repo], Faults::default()).await;
    let dir = tempfile::tempdir()?;
    let mut cfg = HubConfig::new(emu.endpoint.clone(), dir.path());
    cfg.concurrency = env_num("HUB_BENCH_CONCURRENCY", cfg.concurrency as u64) as usize;
    cfg.range_size = env_num("HUB_BENCH_RANGE_MIB", cfg.range_size / MIB) * MIB;
    let client = HubClient::new(cfg)?;
    let snap = client.resolve(&id, "main", &FileFilter::default()).await?;
    // Start with no dirty pages from earlier writes (their writeback would stall this run).
    let _ = std::process::Command::new("sync").status();
    let start = Instant::now();
    let local = client.download(&snap, &NoProgress, None).await?;
    let secs = start.elapsed().as_secs_f64();
    let bytes = local.downloaded_bytes as f64;
    println!(
        "{name}: {} files, {:.0} MiB in {secs:.2}s = {:.0} MB/s ({:.0} MiB/s), verified; peak RSS so far {}",
        local.files.len(),
        bytes / MIB as f64,
        bytes / 1e6 / secs,
        bytes / MIB as f64 / secs,
        support::vm_hwm()
    );
    let again = Instant::now();
    let cached = client.download(&snap, &NoProgress, None).await?;
    println!(
        "{name}: second run {} files cached, {} bytes fetched, {:.3}s",
        cached.cached_files,
        cached.downloaded_bytes,
        again.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the `platform` binary does.
    platform::alloc::limit_malloc_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!("start: peak RSS {}", support::vm_hwm());
        run(
            "single 512 MiB file",
            EmuRepo::new("bench/single").file("model.safetensors", 512 * MIB, true),
        )
        .await?;
        let mut sharded = EmuRepo::new("bench/sharded")
            .text("config.json", "{}")
            .text("tokenizer.json", "{}")
            .text("model.safetensors.index.json", "{}");
        for i in 1..=4 {
            sharded = sharded.file(
                &format!("model-{i:05}-of-00004.safetensors"),
                128 * MIB,
                true,
            );
        }
        run("sharded 4 x 128 MiB + 3 small", sharded).await?;
        println!("end: peak RSS (VmHWM) {}", support::vm_hwm());
        Ok(())
    })
}
