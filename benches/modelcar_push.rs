//! `platform modelcar push` of a 512 MiB model (one 512 MiB safetensors file and a config) to the
//! real distribution registry on loopback (Debian's `docker-registry`, started here), run as the
//! release binary under `/usr/bin/time -v`: MB/s over the whole command (hashing pass, upload pass,
//! manifest) and the peak RSS, for
//! 1. a first push in 64 MiB chunks (the default),
//! 2. a push to a new repository with one request per layer (`--chunk-size 1GiB`),
//! 3. the same push again: every blob present, nothing uploaded (hashing only).
//!
//! Not a test: `cargo bench --bench modelcar_push`. The model is written to TMPDIR (the disk) and
//! the registry stores on TMPDIR too; `sync` before each run. `MODELCAR_BENCH_MIB=N` changes the size.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use std::io::Write;
use std::process::Command;

use platform_testkit::registry::{push_busybox, tool, Auth, Registry};

const MIB: u64 = 1024 * 1024;

fn write_model(dir: &std::path::Path, mib: u64) {
    std::fs::write(dir.join("config.json"), br#"{"model_type": "bench"}"#).unwrap();
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(dir.join("model.safetensors")).unwrap());
    let mut block = vec![0u8; MIB as usize];
    for i in 0..mib {
        // Different bytes per MiB, so no layer of another run matches by chance.
        for (j, b) in block.iter_mut().enumerate() {
            *b = ((j as u64 * 2654435761 + i * 97) >> 7) as u8;
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

struct Run {
    secs: f64,
    max_rss_kib: u64,
    stdout: String,
}

fn timed(args: &[&str]) -> Run {
    let _ = Command::new("sync").status();
    let cfg = tempfile::tempdir().unwrap();
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_platform"))
        .args(args)
        .env("DOCKER_CONFIG", cfg.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "platform {args:?} failed: {err}");
    let field = |name: &str| {
        err.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no `{name}` in /usr/bin/time's output: {err}"))
    };
    let max_rss_kib = field("Maximum resident set size (kbytes):")
        .parse()
        .unwrap();
    let wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss):");
    let secs = wall
        .split(':')
        .fold(0.0, |acc, p| acc * 60.0 + p.parse::<f64>().unwrap());
    Run {
        secs,
        max_rss_kib,
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
    }
}

fn main() {
    tool("time");
    let mib: u64 = std::env::var("MODELCAR_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let reg = Registry::start(Auth::None);
    let base = push_busybox(&reg.host(), None);
    let model = tempfile::tempdir().unwrap();
    write_model(model.path(), mib);
    let dir = model.path().to_str().unwrap().to_string();
    let bytes = (mib * MIB) as f64;
    let scenarios: [(&str, String, &[&str]); 3] = [
        (
            "first push, 64 MiB chunks",
            format!("{}/bench/a:v1", reg.host()),
            &[],
        ),
        (
            "first push, one request per layer",
            format!("{}/bench/b:v1", reg.host()),
            &["--chunk-size", "1GiB"],
        ),
        (
            "again, every blob present",
            format!("{}/bench/b:v1", reg.host()),
            &[],
        ),
    ];
    println!("modelcar push of {mib} MiB (release binary, loopback docker-registry 2.8):");
    for (name, image, extra) in scenarios {
        let mut args = vec![
            "-q", "modelcar", "push", "--from", &dir, "--image", &image, "--base", &base,
        ];
        args.extend_from_slice(extra);
        let r = timed(&args);
        println!(
            "  {name}: {:.2}s = {:.0} MB/s ({:.0} MiB/s), peak RSS {:.1} MiB -> {}",
            r.secs,
            bytes / 1e6 / r.secs,
            bytes / MIB as f64 / r.secs,
            r.max_rss_kib as f64 / 1024.0,
            r.stdout
        );
    }
}
