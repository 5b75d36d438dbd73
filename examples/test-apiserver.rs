//! The test Kubernetes API server, runnable by hand:
//!
//! ```text
//! cargo run --example test-apiserver -- --kubeconfig /tmp/kc [--cluster-name NAME] [--volumes-dir DIR]
//! ```
//!
//! Writes the kubeconfig, prints `ready` on stdout, serves until SIGINT/SIGTERM.

#[path = "../tests/support/apiserver/mod.rs"]
mod apiserver;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "A test Kubernetes API server on 127.0.0.1 (plain HTTP)")]
struct Args {
    /// Where to write the kubeconfig pointing at the server.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Cluster name: kubeconfig cluster/context/user and ConfigMap kube-system/cluster-identity.
    #[arg(long, default_value = "test-cluster")]
    cluster_name: String,
    /// Directory holding PVC contents (<dir>/<namespace>/<claim>/); a temporary one otherwise.
    #[arg(long)]
    volumes_dir: Option<PathBuf>,
    /// nvidia.com/gpu allocatable on the node.
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    /// Delay of each scripted Argo CD step, in milliseconds.
    #[arg(long, default_value_t = 200)]
    argo_delay_ms: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let opts = apiserver::Options {
        cluster_name: args.cluster_name.clone(),
        volumes_dir: args.volumes_dir.clone(),
        argo_delay: Duration::from_millis(args.argo_delay_ms),
        node_gpus: args.gpus,
        ..apiserver::Options::default()
    };
    let server = match apiserver::TestApiServer::try_start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the test API server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = server.write_kubeconfig(&args.kubeconfig) {
        eprintln!(
            "error: cannot write the kubeconfig {}: {e}",
            args.kubeconfig.display()
        );
        return std::process::ExitCode::from(1);
    }
    eprintln!(
        "test API server for cluster {} at {} (kubeconfig {}, volumes {})",
        args.cluster_name,
        server.url(),
        args.kubeconfig.display(),
        server.volumes_dir().display()
    );
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    wait_for_signal().await;
    server.shutdown().await;
    std::process::ExitCode::SUCCESS
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
