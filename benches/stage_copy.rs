//! Staging benchmark (not a test): `cargo bench --bench stage_copy`.
//!
//! The Hub emulator and the test API server (exec over websocket into a directory per PVC) run as
//! separate processes (this binary started again with `--serve hub|apiserver`), so the figures are
//! the client's own and each side's CPU time can be read apart. For a sharded model (4 × 128 MiB +
//! small files), and for two links to the Hub, it measures:
//! 1. download alone (into an empty cache),
//! 2. copy alone through exec (files already local; includes the in-pod sha256 check and the swap),
//! 3. pipelined, as `platform stage-model` runs: download into an empty cache while finished files
//!    stream into the pod.
//!
//! Links: `unlimited` (loopback as fast as the CPUs allow) and `cdn-25` (every connection to the CDN
//! paced at 25 MB/s, as a real CDN serves one connection; 8 connections in parallel).
//! `STAGE_BENCH_CDN_MBPS=N` replaces 25.
//!
//! Prints MB/s, CPU seconds per process, the client's peak RSS per phase, pipelined /
//! max(download, copy) (target ≤ 1.2) and copy time / download time (target ≤ 2). Every phase
//! starts after a `sync`. The Hub cache is on TMPDIR (the disk, as for a user); the test server's
//! volumes (the PVC) are on /dev/shm, since a PVC is not on the client's disk
//! (`STAGE_BENCH_VOLUMES=DIR` to change that). With everything on 2 cores, `unlimited` is bound by
//! the CPU time of all three processes together; the CPU columns show it.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use platform_testkit::apiserver;
use platform_testkit::hub as hub_emu;
#[path = "support/mod.rs"]
mod support;

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use kube::api::{Api, PostParams};
use platform::actions::stage::{LocalFile, Session};
use platform::catalog::Catalog;
use platform::hub::{FileFilter, HubClient, HubConfig, NoProgress, ReadyFile};
use platform::plan::Plan;
use platform::render::Templates;
use serde_json::json;
use tokio::sync::mpsc;

const MIB: u64 = 1024 * 1024;
const REPO: &str = "Qwen/Qwen2.5-0.5B-Instruct";

fn model() -> hub_emu::EmuRepo {
    hub_emu::EmuRepo::new(REPO)
        .text("config.json", r#"{"hidden_size":64}"#)
        .text("tokenizer.json", r#"{"version":"1.0"}"#)
        .file("model-00001-of-00004.safetensors", 128 * MIB, true)
        .file("model-00002-of-00004.safetensors", 128 * MIB, true)
        .file("model-00003-of-00004.safetensors", 128 * MIB, true)
        .file("model-00004-of-00004.safetensors", 128 * MIB, true)
}

/// user + system CPU seconds of a process.
fn cpu(pid: &str) -> f64 {
    support::cpu(pid).0
}

fn serve(args: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (url, keep): (String, Box<dyn std::any::Any>) = match args[0].as_str() {
            "hub" => {
                let faults = hub_emu::Faults {
                    bandwidth: args.get(1).and_then(|v| v.parse().ok()),
                    ..Default::default()
                };
                let emu = hub_emu::HubEmulator::start(vec![model()], faults).await;
                (emu.endpoint.clone(), Box::new(emu))
            }
            _ => {
                let server = apiserver::TestApiServer::start(apiserver::Options {
                    cluster_name: "ai-dev".into(),
                    ..Default::default()
                })
                .await;
                (server.url(), Box::new(server))
            }
        };
        println!("{url}");
        // Serve until the parent closes stdin (or goes away).
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .unwrap();
        drop(keep);
    });
}

struct Phase {
    wall: Duration,
    cpu: [f64; 3],
    peak_rss: String,
}

fn measure_start(pids: &[String; 3]) -> (Instant, [f64; 3]) {
    // Every phase starts with no dirty pages left by the one before (writeback would otherwise
    // stall whichever phase runs into the kernel's dirty limits).
    let _ = Command::new("sync").status();
    // Reset this process's peak RSS (VmHWM), so each phase reports its own.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    (
        Instant::now(),
        [cpu(&pids[0]), cpu(&pids[1]), cpu(&pids[2])],
    )
}

fn measure_end(start: (Instant, [f64; 3]), pids: &[String; 3]) -> Phase {
    let wall = start.0.elapsed();
    let c = [cpu(&pids[0]), cpu(&pids[1]), cpu(&pids[2])];
    Phase {
        wall,
        cpu: [c[0] - start.1[0], c[1] - start.1[1], c[2] - start.1[2]],
        peak_rss: support::vm_hwm(),
    }
}

async fn scenario(name: &str, bandwidth: Option<u64>, session: &Session, apiserver_pid: String) {
    let bw = bandwidth.map(|b| b.to_string()).unwrap_or_default();
    let hub = support::Server::start(&["hub", &bw], &[]);
    let pids = ["self".to_string(), hub.pid(), apiserver_pid];
    let filter = FileFilter::default();

    // 1. Download alone.
    let cache1 = tempfile::tempdir().unwrap();
    let client1 = HubClient::new(HubConfig::new(hub.url.clone(), cache1.path())).unwrap();
    let snap = client1.resolve(REPO, "main", &filter).await.unwrap();
    let total = snap.total_bytes() as f64;
    let t = measure_start(&pids);
    let local = client1.download(&snap, &NoProgress, None).await.unwrap();
    let download = measure_end(t, &pids);

    // 2. Copy alone (files already local).
    let commit1 = format!("{}-{name}-1", snap.commit);
    let (tx, rx) = mpsc::channel(64);
    for f in &local.files {
        tx.send(LocalFile {
            path: f.path.clone(),
            local: f.local_path.clone(),
            sha256: Some(f.sha256.clone()),
        })
        .await
        .unwrap();
    }
    drop(tx);
    let t = measure_start(&pids);
    let staged = session.transfer(rx, &commit1).await.unwrap();
    session
        .finalize(&staged, "hf://bench", "main", &commit1)
        .await
        .unwrap();
    let copy = measure_end(t, &pids);

    // 3. Pipelined, from an empty cache (as `platform stage-model` does it).
    let cache2 = tempfile::tempdir().unwrap();
    let client2 = HubClient::new(HubConfig::new(hub.url.clone(), cache2.path())).unwrap();
    let commit2 = format!("{}-{name}-2", snap.commit);
    let (htx, mut hrx) = mpsc::channel::<ReadyFile>(64);
    let (tx, rx) = mpsc::channel(64);
    let forward = async move {
        while let Some(r) = hrx.recv().await {
            let f = LocalFile {
                path: r.path,
                local: r.local_path,
                sha256: Some(r.sha256),
            };
            if tx.send(f).await.is_err() {
                break;
            }
        }
    };
    let t = measure_start(&pids);
    let (dl, _, staged2) = tokio::join!(
        client2.download(&snap, &NoProgress, Some(htx)),
        forward,
        session.transfer(rx, &commit2)
    );
    dl.unwrap();
    let staged2 = staged2.unwrap();
    session
        .finalize(&staged2, "hf://bench", "main", &commit2)
        .await
        .unwrap();
    let pipelined = measure_end(t, &pids);

    let rate = |d: Duration| total / 1e6 / d.as_secs_f64();
    println!(
        "[{name}] {} files, {:.0} MiB",
        snap.files.len(),
        total / MIB as f64
    );
    for (label, p) in [
        ("download alone", &download),
        ("copy alone    ", &copy),
        ("pipelined     ", &pipelined),
    ] {
        println!(
            "[{name}] {label}: {:>7.2?} = {:>4.0} MB/s; CPU s: client {:.2}, hub {:.2}, apiserver {:.2}; client peak RSS {}",
            p.wall,
            rate(p.wall),
            p.cpu[0],
            p.cpu[1],
            p.cpu[2],
            p.peak_rss
        );
    }
    let slower = download.wall.max(copy.wall);
    println!(
        "[{name}] pipelined / max(download, copy) = {:.2} (target <= 1.2); copy / download time = {:.2} (target <= 2)",
        pipelined.wall.as_secs_f64() / slower.as_secs_f64(),
        copy.wall.as_secs_f64() / download.wall.as_secs_f64()
    );
}

fn main() {
    // As the `platform` binary does.
    platform::alloc::limit_malloc_arenas();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return serve(&args[1..]);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let templates = Templates::load(root).unwrap();
        let catalog = Catalog::load(root, &templates.names()).unwrap();
        let (file, cfg) = platform::config::load(root, "ai-dev").unwrap();
        let plan = Plan::build(&cfg, "ai-dev", &file, &catalog, None).unwrap();
        let m = plan.models.iter().find(|m| m.name == "qwen-cpu").unwrap();

        // The PVC lives on the cluster's storage, not on the disk the Hub cache is on: the test
        // server keeps its volumes in memory (tmpfs) unless STAGE_BENCH_VOLUMES names a directory.
        let volumes = std::env::var("STAGE_BENCH_VOLUMES").unwrap_or_else(|_| {
            if std::path::Path::new("/dev/shm").is_dir() {
                "/dev/shm".into()
            } else {
                std::env::temp_dir().display().to_string()
            }
        });
        println!("Hub cache: {} (TMPDIR); PVC volumes: {volumes}", std::env::temp_dir().display());
        let api = support::Server::start(&["apiserver"], &[("TMPDIR", volumes)]);
        let client = kube::Client::try_from(kube::Config::new(api.url.parse().unwrap())).unwrap();
        let pp = PostParams::default();
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": m.namespace}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&pp, &ns)
            .await
            .unwrap();
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": m.model.pvc_name(), "namespace": m.namespace},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}
        }))
        .unwrap();
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), &m.namespace)
            .create(&pp, &pvc)
            .await
            .unwrap();
        let client = platform::cluster::Client::from(client);
        let session = Session::open(&client, m, "busybox", Duration::from_secs(30), &platform::report::Silent)
            .await
            .unwrap();

        let per_conn: u64 = std::env::var("STAGE_BENCH_CDN_MBPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(25);
        scenario("unlimited", None, &session, api.pid()).await;
        scenario(
            &format!("cdn-{per_conn}"),
            Some(per_conn * 1_000_000),
            &session,
            api.pid(),
        )
        .await;
        session.close().await.unwrap();
    });
}
