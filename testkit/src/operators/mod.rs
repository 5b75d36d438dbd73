//! Operators played by the tests as ordinary API clients, for the real tier (all of them) and for
//! the test API server (Argo CD only: see [`start_argo`]) (kube-rs, the admin kubeconfig), so the
//! real controllers (Deployment, ReplicaSet, StatefulSet, PV binder, garbage collector, namespace)
//! do the rest:
//! - [`node`]: one Node (CPU, memory, 4 `nvidia.com/gpu`), Pods bound to it marked Running/Ready,
//!   terminating Pods removed as a kubelet would;
//! - [`volumes`]: a provisioner for the default StorageClass `standard` (PV created and pre-bound;
//!   Released PVs of class `standard` deleted); PVCs of any other class stay Pending;
//! - [`kserve`]: InferenceService → `<name>-predictor` Deployment, LLMInferenceService →
//!   `<name>-kserve` Deployment, conditions Ready/Stopped from the Deployment and the stop annotation;
//! - [`argo`]: Argo CD for the GitOps repositories a test registers (see [`argo::ArgoCd::serve`]).
//!
//! They poll (every 200 ms) rather than watch: simple, and fast enough for a test.

#![allow(dead_code)]

pub mod argo;
pub mod kserve;
pub mod node;
pub mod volumes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject};
use kube::discovery::{ApiCapabilities, Scope};
use kube::Api;
use serde_json::Value;

pub const TICK: Duration = Duration::from_millis(200);

pub struct Operators {
    pub argo: Arc<argo::ArgoCd>,
}

/// A client for `kubeconfig` (its current context).
pub async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("kube config");
    kube::Client::try_from(cfg).expect("kube client")
}

/// Run `f` (given a client for `kubeconfig`) on a runtime of its own, on its own thread: the
/// stand-ins outlive each test's runtime. Returns once `f` said it is set up.
fn spawn<F, Fut>(kubeconfig: &Path, f: F)
where
    F: FnOnce(kube::Client, std::sync::mpsc::Sender<()>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let kc: PathBuf = kubeconfig.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("operators".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("operators runtime");
            rt.block_on(async move {
                let client = client(&kc).await;
                f(client, tx).await;
            });
        })
        .expect("operators thread");
    rx.recv_timeout(Duration::from_secs(60))
        .expect("operators did not start");
}

impl Operators {
    /// Every stand-in: node, volumes, KServe and Argo CD (the real tier, where none of them exists).
    pub fn start(kubeconfig: &Path) -> Arc<Operators> {
        let argo = Arc::new(argo::ArgoCd::default());
        let a = argo.clone();
        spawn(kubeconfig, move |client, ready| async move {
            let kinds = Kinds::new(client.clone());
            node::setup(&client).await;
            volumes::setup(&client).await;
            let _ = ready.send(());
            tokio::join!(
                node::run(client.clone()),
                volumes::run(client.clone()),
                kserve::run(client.clone()),
                a.run(client.clone(), kinds),
            );
        });
        Arc::new(Operators { argo })
    }
}

/// Only the Argo CD stand-in (for the test API server, whose own controllers play the node,
/// volumes and KServe; start it with `argo_controller: false`). It runs until the process ends;
/// it gives up quietly when its API server is gone.
pub fn start_argo(kubeconfig: &Path) -> Arc<argo::ArgoCd> {
    let argo = Arc::new(argo::ArgoCd::default());
    let a = argo.clone();
    spawn(kubeconfig, move |client, ready| async move {
        let kinds = Kinds::new(client.clone());
        let _ = ready.send(());
        a.run(client, kinds).await;
    });
    argo
}

/// apiVersion and kind.
type ApiKey = (String, String);

/// Discovery, cached: apiVersion + kind → API resource and scope.
#[derive(Clone)]
pub struct Kinds {
    client: kube::Client,
    cache: Arc<Mutex<HashMap<ApiKey, (ApiResource, ApiCapabilities)>>>,
}

impl Kinds {
    pub fn new(client: kube::Client) -> Kinds {
        Kinds {
            client,
            cache: Default::default(),
        }
    }

    pub async fn resolve(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), String> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(v) = self.cache.lock().unwrap().get(&key) {
            return Ok(v.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let found = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| {
                format!(
                    "the server could not find the requested resource {api_version} {kind}: {e}"
                )
            })?;
        self.cache.lock().unwrap().insert(key, found.clone());
        Ok(found)
    }

    /// The API for an object of `api_version`/`kind`, namespaced to `ns` when the kind is.
    pub async fn api(
        &self,
        api_version: &str,
        kind: &str,
        ns: &str,
    ) -> Result<(Api<DynamicObject>, bool), String> {
        let (ar, caps) = self.resolve(api_version, kind).await?;
        Ok(match caps.scope {
            Scope::Namespaced => (Api::namespaced_with(self.client.clone(), ns, &ar), true),
            Scope::Cluster => (Api::all_with(self.client.clone(), &ar), false),
        })
    }
}

/// A dynamic API for a known resource.
pub fn dyn_api(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    match ns {
        Some(n) => Api::namespaced_with(client.clone(), n, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// `metav1.Time` as Kubernetes writes it (RFC 3339, whole seconds).
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

pub fn json(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

pub fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// The condition `ty` of an object's `status.conditions`.
pub fn condition<'a>(v: &'a Value, ty: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}
