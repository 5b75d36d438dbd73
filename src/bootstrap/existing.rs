//! An Argo CD that is already there, found by its components' `app.kubernetes.io/name` labels in
//! any namespace (the upstream manifest, the Helm chart and the operator all set them; only the
//! names differ: a Helm release `argo-cd` names them `argo-cd-argocd-…`).

use crate::cluster::doctor::find_component;
use crate::cluster::ClusterError;

/// Components whose presence means "Argo CD is installed".
pub const COMPONENTS: &[&str] = &[
    "argocd-application-controller",
    "argocd-repo-server",
    "argocd-server",
];

/// What runs already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Nothing: bootstrap installs.
    None,
    /// The upstream manifest's names in the pinned namespace: bootstrap applies the pinned
    /// release over it (an upgrade or a no-op).
    Upstream,
    /// Installed some other way (other names or another namespace): left alone.
    Other {
        namespace: String,
        /// `Kind namespace/name` of what was found.
        found: Vec<String>,
    },
}

pub async fn detect(client: &kube::Client, namespace: &str) -> Result<Existing, ClusterError> {
    let mut upstream = false;
    let mut other: Vec<(String, String)> = Vec::new();
    for component in COMPONENTS {
        for w in find_component(client, component).await? {
            if w.namespace == namespace && w.name == *component {
                upstream = true;
            } else {
                other.push((
                    w.namespace.clone(),
                    format!("{} {}/{}", w.kind.kind, w.namespace, w.name),
                ));
            }
        }
    }
    if let Some((ns, _)) = other.first() {
        let ns = ns.clone();
        return Ok(Existing::Other {
            namespace: ns,
            found: other.into_iter().map(|(_, d)| d).collect(),
        });
    }
    Ok(if upstream {
        Existing::Upstream
    } else {
        Existing::None
    })
}
