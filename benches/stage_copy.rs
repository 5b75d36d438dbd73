//! Staging benchmark (not a test): `cargo bench --bench stage_copy`.
//!
//! Against the in-process test API server (exec over websocket into a directory per PVC) and Hub
//! emulator, for a sharded model (4 × 128 MiB + small files):
//! 1. download alone (into an empty cache),
//! 2. copy alone through exec (files already local),
//! 3. pipelined: download into an empty cache while finished files stream into the pod.
//!
//! Prints MB/s for each and pipelined / max(download, copy) (target ≤ 1.2). Copy target: within 2× of
//! the download rate.

#[path = "../tests/support/apiserver/mod.rs"]
mod apiserver;
#[path = "../tests/support/hub/mod.rs"]
mod hub_emu;

use std::time::{Duration, Instant};

use platform::catalog::resolve::Plan;
use platform::catalog::Catalog;
use platform::hub::{FileFilter, HubClient, HubConfig, NoProgress, ReadyFile};
use platform::render::Templates;
use platform::stage::{LocalFile, Session};
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let templates = Templates::load(root).unwrap();
    let catalog = Catalog::load(root, &templates.names()).unwrap();
    let (file, cfg) = platform::config::load(root, "ai-dev").unwrap();
    let plan = Plan::build(&cfg, "ai-dev", &file, &catalog, None).unwrap();
    let m = plan.models.iter().find(|m| m.name == "qwen-cpu").unwrap();

    let server = apiserver::TestApiServer::start(apiserver::Options {
        cluster_name: "ai-dev".into(),
        ..Default::default()
    })
    .await;
    server
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kserve"}}))
        .unwrap();
    server
        .put(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "qwen-cpu-weights", "namespace": "kserve"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}))
        .unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let emu = hub_emu::HubEmulator::start(vec![model()], hub_emu::Faults::default()).await;
    let filter = FileFilter::default();

    // 1. Download alone.
    let cache1 = tempfile::tempdir().unwrap();
    let hub = HubClient::new(HubConfig::new(emu.endpoint.clone(), cache1.path())).unwrap();
    let snap = hub.resolve(REPO, "main", &filter).await.unwrap();
    let total = snap.total_bytes() as f64;
    let t = Instant::now();
    let local = hub.download(&snap, &NoProgress, None).await.unwrap();
    let download = t.elapsed();

    // 2. Copy alone (files already local).
    let session = Session::open(&client, m, "busybox", Duration::from_secs(30))
        .await
        .unwrap();
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
    let t = Instant::now();
    let staged = session.transfer(rx, &snap.commit).await.unwrap();
    session
        .finalize(&staged, "hf://bench", "main", &snap.commit)
        .await
        .unwrap();
    let copy = t.elapsed();

    // 3. Pipelined, from an empty cache.
    let cache2 = tempfile::tempdir().unwrap();
    let hub2 = HubClient::new(HubConfig::new(emu.endpoint.clone(), cache2.path())).unwrap();
    let (htx, mut hrx) = mpsc::channel::<ReadyFile>(64);
    let (tx, rx) = mpsc::channel(64);
    let t = Instant::now();
    let forward = async move {
        while let Some(r) = hrx.recv().await {
            if tx
                .send(LocalFile {
                    path: r.path,
                    local: r.local_path,
                    sha256: Some(r.sha256),
                })
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let commit2 = format!("{}-2", snap.commit);
    let (dl, _, staged2) = tokio::join!(
        hub2.download(&snap, &NoProgress, Some(htx)),
        forward,
        session.transfer(rx, &commit2)
    );
    dl.unwrap();
    let staged2 = staged2.unwrap();
    session
        .finalize(&staged2, "hf://bench", "main", &commit2)
        .await
        .unwrap();
    let pipelined = t.elapsed();
    session.close().await.unwrap();

    let rate = |d: Duration| total / 1e6 / d.as_secs_f64();
    println!(
        "model: {} files, {:.0} MiB",
        snap.files.len(),
        total / MIB as f64
    );
    println!(
        "download alone : {:>7.2?} = {:>5.0} MB/s",
        download,
        rate(download)
    );
    println!(
        "copy alone     : {:>7.2?} = {:>5.0} MB/s (exec websocket -> tar -> volume, verified)",
        copy,
        rate(copy)
    );
    println!(
        "pipelined      : {:>7.2?} = {:>5.0} MB/s",
        pipelined,
        rate(pipelined)
    );
    let slower = download.max(copy);
    println!(
        "pipelined / max(download, copy) = {:.2} (target <= 1.2); copy/download time = {:.2} (target <= 2)",
        pipelined.as_secs_f64() / slower.as_secs_f64(),
        copy.as_secs_f64() / download.as_secs_f64()
    );
    server.shutdown().await;
}
