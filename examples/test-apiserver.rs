//! The test Kubernetes API server, runnable by hand:
//!
//! ```text
//! cargo run --example test-apiserver -- --kubeconfig /tmp/kc [--cluster-name NAME] [--volumes-dir DIR]
//!     [--forward NAMESPACE/POD-PREFIX:PORT=HOST:PORT]...
//! ```
//!
//! Writes the kubeconfig, prints `ready` on stdout, serves until SIGINT/SIGTERM.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use platform_testkit::apiserver;

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
    /// Port-forwards to PORT of pods in NAMESPACE whose name starts with POD-PREFIX reach this
    /// local address (e.g. `kserve/qwen-cpu-predictor-:8000=127.0.0.1:9000`, a server playing vLLM).
    #[arg(long, value_name = "NAMESPACE/POD-PREFIX:PORT=HOST:PORT", value_parser = parse_forward)]
    forward: Vec<(String, String, u16, std::net::SocketAddr)>,
}

fn parse_forward(s: &str) -> Result<(String, String, u16, std::net::SocketAddr), String> {
    let bad = || format!("`{s}`: expected NAMESPACE/POD-PREFIX:PORT=HOST:PORT");
    let (pod, target) = s.split_once('=').ok_or_else(bad)?;
    let (ns_pod, port) = pod.rsplit_once(':').ok_or_else(bad)?;
    let (ns, prefix) = ns_pod.split_once('/').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let target = target.parse().map_err(|_| bad())?;
    Ok((ns.to_string(), prefix.to_string(), port, target))
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
    for (ns, prefix, port, target) in &args.forward {
        server.forward_port(ns, prefix, *port, *target);
    }
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
    // Listen before saying ready: a SIGTERM right after `ready` must stop it cleanly, not kill it.
    let stop = Stop::listen();
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    stop.wait().await;
    server.shutdown().await;
    std::process::ExitCode::SUCCESS
}

/// SIGINT and SIGTERM, registered when made (tokio's `ctrl_c()` registers only when first polled).
struct Stop {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Stop {
    fn listen() -> Stop {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::interrupt())
                .and_then(|i| Ok((i, signal(SignalKind::terminate())?)))
                .ok();
            Stop { signals }
        }
        #[cfg(not(unix))]
        Stop {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
