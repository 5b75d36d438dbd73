//! Download throughput of an `s3://` source (`platform::s3`, the Hub's download engine behind
//! presigned URLs) against the Hub path on the same data, both on loopback: the Hub emulator
//! (testkit, Rust) and moto in server mode (Python, `pip install 'moto[server]'`), the data uploaded
//! to moto by boto3. Prints MB/s for each. moto serves objects from Python, so the S3 figure is
//! the server's ceiling as much as ours; the Hub figure is the engine's on the same files.
//! Env: `S3_BENCH_SHARDS` (default 4), `S3_BENCH_SHARD_MIB` (default 64).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use platform_testkit::hub as hub_emu;
#[path = "support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hub_emu::{EmuRepo, Faults, HubEmulator};
use platform::hub::{FileFilter, HubClient, HubConfig, LocalSnapshot, NoProgress};
use platform::s3::{
    AwsCredentials, CredentialSource, EndpointSource, S3Client, S3Settings, Secret,
};

const MIB: u64 = 1024 * 1024;

fn env_num(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

const UPLOAD: &str = r#"
import json, sys
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
ep, spec = sys.argv[1], json.loads(sys.argv[2])
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1", aws_access_key_id="bench",
                  aws_secret_access_key="bench", config=Config(request_checksum_calculation="when_required"))
s3.create_bucket(Bucket="bench")
# Single-part uploads: the ETags are MD5s, so the S3 run verifies MD5 as well as computing sha256.
cfg = TransferConfig(multipart_threshold=4 * 1024 * 1024 * 1024)
for f in spec:
    s3.upload_file(f["file"], "bench", "sharded/" + f["path"], Config=cfg)
"#;

struct Moto(std::process::Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn moto() -> (Moto, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server (pip install 'moto[server]')");
    let m = Moto(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    for _ in 0..600 {
        if reqwest::get(format!("{endpoint}/moto-api/"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return (m, endpoint);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not start");
}

fn report(name: &str, local: &LocalSnapshot, secs: f64) {
    let bytes = local.downloaded_bytes as f64;
    println!(
        "{name}: {} files, {:.0} MiB in {secs:.2}s = {:.0} MB/s ({:.0} MiB/s), verified; peak RSS so far {}",
        local.files.len(),
        bytes / MIB as f64,
        bytes / 1e6 / secs,
        bytes / MIB as f64 / secs,
        support::vm_hwm()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    platform::alloc::limit_malloc_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shards = env_num("S3_BENCH_SHARDS", 4);
        let shard = env_num("S3_BENCH_SHARD_MIB", 64) * MIB;
        let mut repo = EmuRepo::new("bench/sharded")
            .text("config.json", "{}")
            .text("tokenizer.json", "{}")
            .text("model.safetensors.index.json", "{}");
        for i in 1..=shards {
            repo = repo.file(
                &format!("model-{i:05}-of-{shards:05}.safetensors"),
                shard,
                true,
            );
        }
        // The same bytes into moto.
        let data = tempfile::tempdir()?;
        let spec: Vec<serde_json::Value> = repo
            .files
            .iter()
            .map(|f| {
                let file = data.path().join(f.path.replace('/', "_"));
                std::fs::write(&file, f.content()).unwrap();
                serde_json::json!({"file": file, "path": f.path})
            })
            .collect();
        let (_moto, endpoint) = moto().await;
        let up = Command::new("python3")
            .args([
                "-c",
                UPLOAD,
                &endpoint,
                &serde_json::Value::from(spec).to_string(),
            ])
            .status()?;
        assert!(up.success(), "upload to moto failed");
        drop(data);
        let label = format!("{shards} x {} MiB + 3 small", shard / MIB);

        let emu = HubEmulator::start(vec![repo], Faults::default()).await;
        let dir = tempfile::tempdir()?;
        let hub = HubClient::new(HubConfig::new(emu.endpoint.clone(), dir.path()))?;
        let snap = hub
            .resolve("bench/sharded", "main", &FileFilter::default())
            .await?;
        let _ = Command::new("sync").status();
        let start = Instant::now();
        let local = hub.download(&snap, &NoProgress, None).await?;
        report(
            &format!("hub emulator, {label}"),
            &local,
            start.elapsed().as_secs_f64(),
        );
        drop(emu);

        let dir = tempfile::tempdir()?;
        let settings = S3Settings {
            endpoint: endpoint.parse()?,
            endpoint_from: EndpointSource::Config,
            region: "us-east-1".into(),
            path_style: true,
            verify_tls: true,
        };
        let creds = AwsCredentials::new(
            Secret::new("bench").unwrap(),
            Secret::new("bench").unwrap(),
            None,
            CredentialSource::Env,
        );
        let s3 = S3Client::new(
            settings,
            Some(creds),
            HubConfig::new(String::new(), dir.path()),
        )?;
        let snap = s3
            .resolve("bench", "sharded", &FileFilter::default(), &NoProgress)
            .await?;
        let _ = Command::new("sync").status();
        let start = Instant::now();
        let local = s3.download(&snap, &NoProgress, None).await?;
        report(
            &format!("s3 (moto), {label}"),
            &local,
            start.elapsed().as_secs_f64(),
        );
        println!("end: peak RSS (VmHWM) {}", support::vm_hwm());
        Ok(())
    })
}
