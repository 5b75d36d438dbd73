//! The cluster client every action uses: the target guard (the right cluster, or nothing), the kinds
//! platform knows, retries, server-side apply, observing and listing, watching until a deadline,
//! Argo CD sync operations, health judgements, and Kubernetes errors in plain words. The actions
//! themselves (up, status, pause, teardown, …) live in `crate::actions`.

pub mod api_error;
pub mod apply;
pub mod argo;
pub mod client;
pub mod health;
pub mod kinds;
pub mod observed;
pub mod retry;
pub mod target;
pub mod wait;

use std::path::PathBuf;

pub use client::Client;

/// Everything that can go wrong talking to a cluster, each with the subject and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no kubeconfig for cluster {cluster}: set `cluster.kubeconfig` in config.yaml, pass --kubeconfig or \
         set PLATFORM_KUBECONFIG (or opt in to the global one with `cluster.useGlobalContext: true`)"
    )]
    NoKubeconfig { cluster: String },
    #[error("kubeconfig {}: {message}", target::shown(.path))]
    Kubeconfig { path: PathBuf, message: String },
    #[error("kubeconfig {}: no context `{context}` (available: {})", target::shown(.path), .available.join(", "))]
    NoContext {
        path: PathBuf,
        context: String,
        available: Vec<String>,
    },
    #[error(
        "cluster API {server} is unreachable: {message}; check that the cluster is up and reachable \
         (VPN, credentials): `kubectl --kubeconfig {} get --raw /version`", target::shown(.kubeconfig)
    )]
    Unreachable {
        server: String,
        message: String,
        kubeconfig: PathBuf,
    },
    #[error(
        "wrong cluster: the environment expects `{expected}` but the target says {found}; nothing was \
         changed (pass the right --kubeconfig/--context)"
    )]
    WrongCluster { expected: String, found: String },
    /// The target records no identity and its kubeconfig cluster entry does not name the cluster;
    /// `fix` says how to record it (with the kubeconfig and context of the target when known).
    #[error(
        "cannot confirm that the target is cluster `{expected}` (kubeconfig cluster entry `{entry}`, no \
         ConfigMap {IDENTITY_NAMESPACE}/{IDENTITY_CONFIGMAP}); nothing was changed. If it is that \
         cluster, {fix}",
        IDENTITY_NAMESPACE = target::IDENTITY_NAMESPACE,
        IDENTITY_CONFIGMAP = target::IDENTITY_CONFIGMAP
    )]
    Unconfirmed {
        expected: String,
        entry: String,
        fix: String,
    },
    /// An API request failed; the source is the client's error (status, or the transport's chain).
    #[error("{what}{}", .hint.map(|h| format!(" ({h})")).unwrap_or_default())]
    Api {
        what: String,
        #[source]
        source: Box<kube::Error>,
        hint: Option<&'static str>,
    },
    /// The API answered, but not as a cluster should (a watch that ended, an object that kept
    /// changing, a kind platform does not know).
    #[error("{what}: {reason}")]
    Protocol { what: String, reason: String },
    #[error(
        "model {model} is not in the cluster yet ({object} not found): sync it first \
         (`platform up --sync-models`, or sync the Argo CD app {app})"
    )]
    NotDeployed {
        model: String,
        object: String,
        app: String,
    },
    #[error("{object} is stuck terminating on finalizer(s) {}: {fix}", .finalizers.join(", "))]
    StuckFinalizer {
        object: String,
        finalizers: Vec<String>,
        fix: String,
    },
    /// A PVC Kubernetes keeps (kubernetes.io/pvc-protection) because pods still mount it.
    #[error(
        "{object} is still mounted by {}: Kubernetes keeps it (finalizer kubernetes.io/pvc-protection) \
         until no pod uses it; {fix}",
        .users.join(", ")
    )]
    InUse {
        object: String,
        users: Vec<String>,
        fix: String,
    },
    #[error("Application {app} failed: {reason}")]
    AppFailed { app: String, reason: String },
    #[error("timed out waiting for {what}; still pending: {}", .pending.join("; "))]
    Timeout { what: String, pending: Vec<String> },
}

impl ClusterError {
    pub fn api(what: impl Into<String>, e: kube::Error) -> ClusterError {
        ClusterError::Api {
            what: what.into(),
            source: Box::new(e),
            hint: None,
        }
    }

    /// The HTTP status of a failed API request, when the server answered one.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(s) => Some(s.code),
                _ => None,
            },
            _ => None,
        }
    }
}
