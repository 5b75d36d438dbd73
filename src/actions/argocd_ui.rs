//! `platform argocd ui`: reach the Argo CD web UI through a port-forward to argocd-server (found by
//! its `app.kubernetes.io/name=argocd-server` label in the catalog's namespace, else in any
//! namespace), and the initial admin password from Secret `argocd-initial-admin-secret` only when
//! asked for. The scheme follows the server: `https` unless `server.insecure` is `"true"` in
//! `argocd-cmd-params-cm` (then it serves plain http).

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::actions::doctor::ARGOCD_COMPONENT_LABEL;
use crate::actions::smoke::endpoint;
use crate::cluster::{kinds, Client, ClusterError};
use crate::error::{Classify, ErrorClass};

/// The Secret Argo CD writes the generated admin password into at install (deleted once the
/// password is changed, as Argo CD's docs advise).
pub const INITIAL_ADMIN_SECRET: &str = "argocd-initial-admin-secret";
/// The Argo CD server component.
pub const SERVER_COMPONENT: &str = "argocd-server";
/// argocd-server's own port (its Service maps 80 and 443 to it).
const SERVER_PORT: u16 = 8080;

/// argocd-server, as far as a port-forward needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub namespace: String,
    /// The ready pod to forward to.
    pub pod: String,
    /// Its port.
    pub port: u16,
    /// `https`, or `http` when the server runs with `server.insecure`.
    pub scheme: &'static str,
}

/// Why the UI cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error(
        "no Argo CD server: no Service labelled {ARGOCD_COMPONENT_LABEL}={SERVER_COMPONENT} in namespace \
         {namespace} or elsewhere; install Argo CD with `platform bootstrap`"
    )]
    NoServer { namespace: String },
    #[error("no ready argocd-server pod behind Service {namespace}/{service}{}", suffix(.reasons))]
    NotReady {
        namespace: String,
        service: String,
        reasons: Vec<String>,
    },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl Classify for UiError {
    fn class(&self) -> ErrorClass {
        match self {
            UiError::NoServer { .. } | UiError::NotReady { .. } => ErrorClass::CheckFailed,
            UiError::Cluster(e) => e.class(),
        }
    }
}

fn suffix(r: &[String]) -> String {
    if r.is_empty() {
        String::new()
    } else {
        format!(": {}", r.join("; "))
    }
}

fn s<'v>(v: &'v Value, p: &str) -> &'v str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// Find argocd-server's Service (the catalog's `namespace` first) and a ready pod behind it.
pub async fn find_server(client: &Client, namespace: &str) -> Result<Server, UiError> {
    let selector = format!("{ARGOCD_COMPONENT_LABEL}={SERVER_COMPONENT}");
    let lp = ListParams::default().labels(&selector);
    let list = |api: Api<kube::api::DynamicObject>, what: String| {
        let lp = lp.clone();
        async move {
            client
                .retry(|| api.list(&lp))
                .await
                .map(|l| l.items.iter().map(kinds::json).collect::<Vec<Value>>())
                .map_err(|e| ClusterError::api(what, e))
        }
    };
    let mut services = list(
        kinds::SERVICE.api(client, namespace),
        format!("listing Services labelled {selector} in namespace {namespace}"),
    )
    .await?;
    if services.is_empty() {
        services = list(
            kinds::SERVICE.api_all(client),
            format!("listing Services labelled {selector} in all namespaces"),
        )
        .await?;
    }
    // Prefer the Service named argocd-server (the upstream name; a Helm release prefixes it).
    services.sort_by_key(|svc| s(svc, "/metadata/name") != SERVER_COMPONENT);
    let Some(svc) = services.first() else {
        return Err(UiError::NoServer {
            namespace: namespace.to_string(),
        });
    };
    let ns = s(svc, "/metadata/namespace").to_string();
    let name = s(svc, "/metadata/name").to_string();
    let pods = match endpoint::selector(svc) {
        Some(sel) => {
            let pl = ListParams::default().labels(&sel);
            let api = kinds::POD.api(client, &ns);
            client
                .retry(|| api.list(&pl))
                .await
                .map_err(|e| {
                    ClusterError::api(format!("listing the pods of Service {ns}/{name}"), e)
                })?
                .items
                .iter()
                .map(kinds::json)
                .collect::<Vec<Value>>()
        }
        None => Vec::new(),
    };
    let mut pods = pods;
    pods.sort_by(|a, b| s(a, "/metadata/name").cmp(s(b, "/metadata/name")));
    let Some(pod) = pods.iter().find(|p| endpoint::pod_ready(p)) else {
        let mut reasons: Vec<String> = pods
            .iter()
            .filter_map(crate::cluster::health::pod_problem)
            .collect();
        if pods.is_empty() {
            reasons.push("it has no pods".into());
        }
        return Err(UiError::NotReady {
            namespace: ns,
            service: name,
            reasons,
        });
    };
    let insecure = server_insecure(client, &ns).await?;
    Ok(Server {
        port: endpoint::pod_port(pod, SERVER_COMPONENT, Some(svc), SERVER_PORT),
        pod: s(pod, "/metadata/name").to_string(),
        namespace: ns,
        scheme: if insecure { "http" } else { "https" },
    })
}

/// Whether argocd-server serves plain http (`server.insecure: "true"` in argocd-cmd-params-cm).
async fn server_insecure(client: &Client, namespace: &str) -> Result<bool, ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(client.kube(), namespace);
    let cm = client
        .retry(|| api.get_opt("argocd-cmd-params-cm"))
        .await
        .map_err(|e| {
            ClusterError::api(
                format!("reading ConfigMap {namespace}/argocd-cmd-params-cm"),
                e,
            )
        })?;
    Ok(cm
        .and_then(|c| c.data)
        .and_then(|d| d.get("server.insecure").cloned())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")))
}

/// The initial admin password. Debug shows `Value(<redacted>)`, never the password.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// The Secret's `password` (only read when asked for).
    Value(String),
    /// The Secret exists (its data not read).
    Exists,
    /// No such Secret (deleted after the password was changed, or never created).
    Gone,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Password::Value(_) => "Value(<redacted>)",
            Password::Exists => "Exists",
            Password::Gone => "Gone",
        })
    }
}

/// Whether the initial admin Secret exists, and its password when `reveal`. Without `reveal`
/// only its metadata is read.
pub async fn initial_password(
    client: &Client,
    namespace: &str,
    reveal: bool,
) -> Result<Password, ClusterError> {
    let what = format!("reading Secret {namespace}/{INITIAL_ADMIN_SECRET}");
    let api: Api<Secret> = Api::namespaced(client.kube(), namespace);
    if !reveal {
        let meta = client
            .retry(|| api.get_metadata_opt(INITIAL_ADMIN_SECRET))
            .await
            .map_err(|e| ClusterError::api(what.clone(), e))?;
        return Ok(if meta.is_some() {
            Password::Exists
        } else {
            Password::Gone
        });
    }
    let secret = client
        .retry(|| api.get_opt(INITIAL_ADMIN_SECRET))
        .await
        .map_err(|e| ClusterError::api(what.clone(), e))?;
    let Some(secret) = secret else {
        return Ok(Password::Gone);
    };
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get("password").cloned())
        });
    Ok(match value {
        Some(v) => Password::Value(v),
        None => Password::Gone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_debug_never_shows_the_password() {
        let p = Password::Value("s3cr3t-admin".into());
        let shown = format!("{p:?} {:?}", Some(&p));
        assert!(!shown.contains("s3cr3t-admin"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(format!("{:?}", Password::Gone), "Gone");
    }
}
