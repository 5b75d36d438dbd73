//! A test Kubernetes API server: real Kubernetes REST over plain HTTP on 127.0.0.1 with an
//! in-memory store, watches, server-side apply, finalizers, scale/status subresources, pod
//! exec over websocket, and scripted controllers (Argo CD, KServe, Deployments, Gateways,
//! PVCs, Pods).
//!
//! Part of the test kit crate (`platform_testkit::apiserver`), used by the integration tests, the
//! benches and the `test-apiserver` example.
//!
//! ```ignore
//! let server = TestApiServer::start(Options::default()).await;
//! server.write_kubeconfig(&dir.join("kubeconfig"))?;
//! // ... run kubectl or a kube-rs client against server.url() ...
//! server.shutdown().await;
//! ```
//!
//! What it serves (see `resources.rs`): core v1 namespaces, pods (+exec, portforward, log, status),
//! services, PVCs, PVs, configmaps, secrets, events, nodes; apps/v1 deployments (+scale,
//! status); Argo CD applications and appprojects; KServe inferenceservices and
//! llminferenceservices; Gateway API gateways, gatewayclasses, httproutes; CRDs (seeded for
//! every custom resource above); storageclasses; selfsubjectaccessreviews (always allowed).
//! Discovery is served both legacy and aggregated (`apidiscovery.k8s.io/v2`, chosen by
//! `Accept`), and `/openapi/v3` declares `fieldValidation` on every PATCH so kubectl leaves
//! validation to the server (which accepts any field).
//!
//! Approximations, knowingly: JSON and YAML bodies only (protobuf bodies, as `kubectl create
//! namespace|configmap|secret` send, get 415); no server-side Table printing (kubectl falls
//! back to NAME/AGE); strategic merge patch merges lists of objects by `name` (or
//! `mountPath`/`containerPort`/`type`) without the schema's patch strategies; managedFields are
//! tracked at leaf granularity with keyed lists by the same rule; a too-old watch gets an
//! ERROR event with a 410 `Expired` Status inside a 200 stream, as the real server does;
//! Deployments own pods directly (no ReplicaSets); an Application's resources finalizer is
//! removed without deleting its resources; exec buffers stdin (up to 1 GiB) and runs a
//! built-in command set (`commands.rs`), not a container; port-forward speaks the websocket
//! channel protocol (`v4.channel.k8s.io`, as kube-rs does) to addresses a test registers
//! (`forward_port`), not SPDY, so `kubectl port-forward` (SPDY, or SPDY tunnelled over a
//! websocket) is refused with a message saying so.
#![allow(dead_code)]
// Errors carry a full Status (message, details); boxing them would buy nothing in a test server.
#![allow(clippy::result_large_err)]

mod apply;
mod commands;
mod controllers;
mod discovery;
mod errors;
mod exec;
mod faults;
mod handlers;
mod http;
mod kubeconfig;
mod patch;
mod podfs;
mod portforward;
mod resources;
mod seed;
mod selectors;
mod shell;
mod store;
mod strategy;
mod util;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

pub use faults::{AppOutcome, FinalizerBehavior, LoggedRequest};
pub use strategy::base64;

/// Server settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Names the kubeconfig cluster/context/user and goes into the ConfigMap
    /// `kube-system/cluster-identity` (`data.clusterName`).
    pub cluster_name: String,
    /// Where PVC contents live (`<dir>/<namespace>/<claim>/`); a temporary directory when None.
    pub volumes_dir: Option<PathBuf>,
    /// Delay of each step of the scripted Argo CD controller.
    pub argo_delay: Duration,
    /// Run the scripted Argo CD controller (Applications and their finalizer). Off when a test plays
    /// Argo CD itself as an API client (`crate::operators::argo`), as on the real tier.
    pub argo_controller: bool,
    /// Delay of the other controllers (KServe, Deployments, Pods, PVCs, Gateways).
    pub controller_delay: Duration,
    /// How long a Gateway's LoadBalancer Service outlives the Gateway.
    pub lb_service_delete_delay: Duration,
    /// `nvidia.com/gpu` allocatable on the seeded node (0: none, the default).
    pub node_gpus: u32,
    /// Interval of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    /// Events kept for watches resuming from a resourceVersion (older: 410 Gone).
    pub history_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cluster_name: "test-cluster".into(),
            volumes_dir: None,
            argo_delay: Duration::from_millis(200),
            argo_controller: true,
            controller_delay: Duration::from_millis(50),
            lb_service_delete_delay: Duration::from_millis(300),
            node_gpus: 0,
            bookmark_interval: Duration::from_secs(1),
            history_limit: 10_000,
        }
    }
}

/// State shared by the HTTP handlers, watches, exec sessions and controllers.
pub(crate) struct State {
    pub store: store::Store,
    pub opts: Options,
    pub faults: Mutex<faults::Faults>,
    /// Bumped by `drop_watches` (and at shutdown): open watch streams end.
    pub watch_gen: tokio::sync::watch::Sender<u64>,
    pub volumes_dir: PathBuf,
    pub server_address: String,
    pub ip_counter: AtomicU32,
    /// Reconciles done by the scripted controllers, by key: lets a test wait until a controller
    /// has looked at an object instead of sleeping and hoping (see [`TestApiServer::reconciles`] and [`TestApiServer::reconciled_after`]).
    pub reconciled: tokio::sync::watch::Sender<HashMap<store::Key, u64>>,
}

impl State {
    pub fn faults(&self) -> MutexGuard<'_, faults::Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running server. Dropping it stops the server tasks.
pub struct TestApiServer {
    state: Arc<State>,
    addr: SocketAddr,
    server: Option<JoinHandle<()>>,
    controllers: Option<JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _tempdir: Option<tempfile::TempDir>,
}

impl TestApiServer {
    /// Starts the server on 127.0.0.1 (a free port) with seeded objects and controllers.
    ///
    /// # Panics
    /// When no loopback port can be bound or the temporary volumes directory can't be made.
    pub async fn start(opts: Options) -> TestApiServer {
        match TestApiServer::try_start(opts).await {
            Ok(s) => s,
            Err(e) => panic!("test API server failed to start: {e}"),
        }
    }

    /// Like [`TestApiServer::start`], returning the error instead.
    pub async fn try_start(opts: Options) -> std::io::Result<TestApiServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (volumes_dir, tempdir) = match &opts.volumes_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (dir.clone(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("test-apiserver-volumes")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let (watch_gen, _) = tokio::sync::watch::channel(0u64);
        let state = Arc::new(State {
            store: store::Store::new(opts.history_limit),
            opts: opts.clone(),
            faults: Mutex::new(faults::Faults::default()),
            watch_gen,
            volumes_dir,
            server_address: addr.to_string(),
            ip_counter: AtomicU32::new(10),
            reconciled: tokio::sync::watch::Sender::new(HashMap::new()),
        });
        seed::seed(&state);
        let controllers = tokio::spawn(controllers::run(state.clone()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = http::router(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(TestApiServer {
            state,
            addr,
            server: Some(server),
            controllers: Some(controllers),
            stop: Some(stop),
            _tempdir: tempdir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn cluster_name(&self) -> &str {
        &self.state.opts.cluster_name
    }

    /// Where PVC contents live.
    pub fn volumes_dir(&self) -> &Path {
        &self.state.volumes_dir
    }

    /// The kubeconfig text (cluster, context and user named after the cluster).
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::render(&self.state.opts.cluster_name, &self.url())
    }

    /// Writes the kubeconfig to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        kubeconfig::write(path, &self.state.opts.cluster_name, &self.url())
    }

    /// Every request so far, oldest first.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.state.faults().log.clone()
    }

    pub fn clear_request_log(&self) {
        self.state.faults().log.clear();
    }

    /// Answers the next `n` requests with `status` (429 or 500 typically), with a
    /// `Retry-After` header when `retry_after_secs` is given.
    pub fn fail_next(&self, n: u32, status: u16, retry_after_secs: Option<u64>) {
        self.fail_next_matching(n, status, retry_after_secs, None, None);
    }

    /// Like [`TestApiServer::fail_next`], only for requests whose path contains
    /// `path_contains` and (when given) whose method is `method`.
    pub fn fail_next_matching(
        &self,
        n: u32,
        status: u16,
        retry_after_secs: Option<u64>,
        path_contains: Option<&str>,
        method: Option<&str>,
    ) {
        self.state.faults().rules.push(faults::FaultRule {
            remaining: n,
            status,
            retry_after: retry_after_secs,
            path_contains: path_contains.map(str::to_string),
            method: method.map(str::to_string),
        });
    }

    /// Forgets every fault rule not used up yet (a table of cases starts each from a clean server).
    pub fn clear_faults(&self) {
        self.state.faults().rules.clear();
    }

    /// From now on, requests whose path contains `path_contains` are accepted and never answered
    /// (an API server, or a proxy in front of it, that stops answering).
    pub fn hang_matching(&self, path_contains: &str) {
        self.state.faults().rules.push(faults::FaultRule {
            remaining: u32::MAX,
            status: faults::HANG,
            retry_after: None,
            path_contains: Some(path_contains.to_string()),
            method: None,
        });
    }

    /// The next `tar x` exec's connection drops after `bytes` of stdin, without an exit status
    /// (an API server restart or a network cut in the middle of a copy).
    pub fn drop_exec_after(&self, bytes: u64) {
        self.state.faults().exec_drop_after = Some(bytes);
    }

    /// Port-forwards to port `port` of pods in `namespace` whose name starts with `pod_prefix`
    /// reach `target` (a local server playing the container).
    /// What `pods/NAME/log` answers for pods of `namespace` whose name starts with `pod_prefix`:
    /// these lines (`previous`: for `?previous=true`, the container before its restart). With
    /// `?follow=true` the stream stays open after them until the pod is deleted.
    pub fn pod_log(&self, namespace: &str, pod_prefix: &str, previous: bool, lines: &[&str]) {
        self.state.faults().pod_logs.push(faults::LogRule {
            namespace: namespace.to_string(),
            pod_prefix: pod_prefix.to_string(),
            previous,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        });
    }

    pub fn forward_port(&self, namespace: &str, pod_prefix: &str, port: u16, target: SocketAddr) {
        self.state
            .faults()
            .port_forwards
            .push(portforward::ForwardRule {
                namespace: namespace.to_string(),
                pod_prefix: pod_prefix.to_string(),
                port,
                target,
            });
    }

    /// Port-forward sessions open right now.
    pub fn open_port_forwards(&self) -> usize {
        self.state.faults().port_forwards_open
    }

    /// Ends every open watch stream (clients must re-watch).
    pub fn drop_watches(&self) {
        self.state.watch_gen.send_modify(|g| *g += 1);
    }

    /// Forgets the watch history: resuming from an older resourceVersion gets 410 Gone.
    pub fn compact_history(&self) {
        self.state.store.compact();
    }

    /// Finalizers of objects of `kind` being deleted are removed after `delay`.
    pub fn slow_finalizer(&self, kind: &str, delay: Duration) {
        self.state
            .faults()
            .finalizers
            .insert(kind.to_string(), FinalizerBehavior::RemoveAfter(delay));
    }

    /// Finalizers of objects of `kind` are never removed (their controller is gone).
    pub fn stuck_finalizer(&self, kind: &str) {
        self.state
            .faults()
            .finalizers
            .insert(kind.to_string(), FinalizerBehavior::Never);
    }

    /// What the Argo CD controller does with the Application `name` from now on.
    pub fn set_app_outcome(&self, name: &str, outcome: AppOutcome) {
        self.state
            .faults()
            .app_outcomes
            .insert(name.to_string(), outcome);
    }

    /// Seeds (creates or replaces) an object as is: no defaults, no status reset.
    pub fn put(&self, obj: Value) -> Result<Value, String> {
        let api_version = util::str_at(&obj, "/apiVersion").to_string();
        let kind = util::str_at(&obj, "/kind").to_string();
        let rt = resources::by_kind(&api_version, &kind)
            .ok_or_else(|| format!("unknown resource {api_version} {kind}"))?;
        self.state.store.put(rt, obj).map_err(|e| e.message)
    }

    /// How many times the scripted controllers have reconciled this object (api version, kind,
    /// namespace, name) so far: take it before a change, then
    /// [`reconciled_after`](Self::reconciled_after).
    pub fn reconciles(
        &self,
        (api_version, kind, namespace, name): (&str, &str, &str, &str),
    ) -> u64 {
        let rt = resources::by_kind(api_version, kind).expect("a kind the server serves");
        let key = store::Key::new(rt, namespace, name);
        self.state
            .reconciled
            .borrow()
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// Wait until a controller has reconciled this object more than `count` times (so a test can
    /// assert that something did *not* happen after a change, without a fixed sleep). Panics
    /// after 30 s.
    pub async fn reconciled_after(
        &self,
        (api_version, kind, namespace, name): (&str, &str, &str, &str),
        count: u64,
    ) {
        let rt = resources::by_kind(api_version, kind).expect("a kind the server serves");
        let key = store::Key::new(rt, namespace, name);
        let mut rx = self.state.reconciled.subscribe();
        let wait = rx.wait_for(|m| m.get(&key).copied().unwrap_or(0) > count);
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| {
                panic!("no controller reconciled {kind} {namespace}/{name} within 30s")
            })
            .expect("the server is running");
    }

    /// One object (`namespace` ignored for cluster-scoped kinds).
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let rt = resources::by_kind(api_version, kind)?;
        self.state.store.get(&store::Key::new(rt, namespace, name))
    }

    /// Objects of a kind, in one namespace or all.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        match resources::by_kind(api_version, kind) {
            Some(rt) => self.state.store.list(rt, namespace).0,
            None => Vec::new(),
        }
    }

    /// Polls until `pred` holds for the object (or its absence), up to `timeout`.
    pub async fn wait_for(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        timeout: Duration,
        pred: impl Fn(Option<&Value>) -> bool,
    ) -> Result<Option<Value>, Option<Value>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let obj = self.get(api_version, kind, namespace, name);
            if pred(obj.as_ref()) {
                return Ok(obj);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(obj);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server: watches end, connections close, controllers stop.
    pub async fn shutdown(mut self) {
        self.drop_watches();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(c) = self.controllers.take() {
            c.abort();
        }
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
        if let Some(c) = self.controllers.take() {
            c.abort();
        }
    }
}
