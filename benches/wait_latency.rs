//! Wait-latency benchmark (not a test): `cargo bench --bench wait_latency`.
//!
//! How long after the API server flips the last Application of a wave to done (Synced + Healthy +
//! reconciled) does `wait_apps` — watching every app of the wave at once — notice? The scripted Argo CD
//! controller of the test API server flips the apps; an in-process poller reads the server's store every
//! 200 µs to timestamp the flip; the difference to `wait_apps` returning is the latency.
//! Target (issue 3): ≤ 1 s.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use platform_testkit::apiserver;

use std::time::{Duration, Instant};

use apiserver::{Options, TestApiServer};
use platform::cluster::health::{self, Progress};
use platform::cluster::wait::{wait_apps, AppWait};
use platform::report::Silent;
use serde_json::json;

const APPS_PER_WAVE: usize = 8;
const ROUNDS: usize = 15;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = TestApiServer::start(Options {
        argo_delay: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let client = platform::cluster::Client::from(
        kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap(),
    );
    let reporter = Silent;
    let mut latencies = Vec::new();
    for round in 0..ROUNDS {
        let names: Vec<String> = (0..APPS_PER_WAVE)
            .map(|i| format!("lat-{round}-{i}"))
            .collect();
        for n in &names {
            server
                .put(json!({
                    "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                    "metadata": {"name": n, "namespace": "argocd"},
                    "spec": {"project": "default", "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
                             "source": {"repoURL": "https://example.com/r.git", "path": "p", "targetRevision": "main"}},
                    "operation": {"sync": {"revision": "main"}, "initiatedBy": {"username": "bench"}}
                }))
                .unwrap();
        }
        // Timestamp the moment the last app is done, as seen in the server's memory.
        let watch_names = names.clone();
        let store = &server;
        let waits: Vec<AppWait> = names
            .iter()
            .map(|n| AppWait {
                name: n.clone(),
                revision: None,
            })
            .collect();
        let poll = async {
            loop {
                let all_done = watch_names.iter().all(|n| {
                    store
                        .get("argoproj.io/v1alpha1", "Application", "argocd", n)
                        .is_some_and(|a| health::application(&a, None) == Progress::Done)
                });
                if all_done {
                    return Instant::now();
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        };
        let wait = async {
            wait_apps(
                &client,
                "argocd",
                &waits,
                Duration::from_secs(60),
                &reporter,
            )
            .await
            .unwrap();
            Instant::now()
        };
        let (flipped, noticed) = tokio::join!(poll, wait);
        latencies.push(noticed.saturating_duration_since(flipped));
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    println!(
        "wait latency over {ROUNDS} waves of {APPS_PER_WAVE} apps watched at once: median {median:.2?}, max {max:.2?} (target <= 1 s)"
    );
    server.shutdown().await;
}
