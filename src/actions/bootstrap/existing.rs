//! An Argo CD that is already there, found by its components' `app.kubernetes.io/name` labels in
//! any namespace (the upstream manifest, the Helm chart and the operator all set them; only the
//! names differ: a Helm release `argo-cd` names them `argo-cd-argocd-…`), and whether Helm installed
//! it: Helm's annotation or chart labels on a component or on `argocd-cm`, even when the release
//! keeps the upstream names in the pinned namespace (`fullnameOverride`), so bootstrap never
//! applies the upstream manifest over a Helm release (an immutable selector refused, or a second
//! container added to the chart's Deployment).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::actions::doctor::{find_component, helm_release, Workload};
use crate::cluster::{Client, ClusterError};

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
    /// The upstream manifest's names in the pinned namespace, not Helm's: bootstrap applies the
    /// pinned release over it (an upgrade or a no-op).
    Upstream,
    /// Installed some other way (a Helm release, other names or another namespace): left alone.
    Other {
        namespace: String,
        /// `Kind namespace/name` of what was found.
        found: Vec<String>,
        /// The Helm release that installed it, when Helm did.
        helm: Option<String>,
        /// The image tag of its application controller (or of the first component found).
        version: Option<String>,
    },
}

impl Existing {
    /// What was found, for messages: `Argo CD v2.13.0 (installed by Helm, release argo-cd, namespace
    /// argocd; left alone)`. Empty unless [`Existing::Other`].
    pub fn describe(&self) -> String {
        let Existing::Other {
            namespace,
            helm,
            version,
            ..
        } = self
        else {
            return String::new();
        };
        let how = match helm {
            Some(r) => format!("installed by Helm, release {r}"),
            None => "installed another way".to_string(),
        };
        let version = version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        format!("Argo CD{version} ({how}, namespace {namespace}; left alone)")
    }
}

pub async fn detect(client: &Client, namespace: &str) -> Result<Existing, ClusterError> {
    let mut workloads: Vec<(&str, Workload)> = Vec::new();
    for component in COMPONENTS {
        for w in find_component(client, component).await? {
            workloads.push((component, w));
        }
    }
    let Some((_, first)) = workloads.first() else {
        return Ok(Existing::None);
    };
    let mut helm = workloads.iter().find_map(|(_, w)| w.helm.clone());
    if helm.is_none() {
        helm = config_map_release(client, &first.namespace).await?;
    }
    let upstream_named = workloads
        .iter()
        .all(|(c, w)| w.namespace == namespace && w.name == *c);
    if upstream_named && helm.is_none() {
        return Ok(Existing::Upstream);
    }
    // Where it runs: the first component not in the pinned place, else the pinned namespace.
    let other_ns = workloads
        .iter()
        .find(|(c, w)| !(w.namespace == namespace && w.name == *c))
        .map_or(namespace, |(_, w)| w.namespace.as_str())
        .to_string();
    let controller = workloads
        .iter()
        .find(|(c, _)| *c == COMPONENTS[0])
        .unwrap_or(&workloads[0]);
    let version = super::checks::image_tag(&controller.1.image).map(str::to_string);
    Ok(Existing::Other {
        namespace: other_ns,
        found: workloads
            .iter()
            .map(|(_, w)| format!("{} {}/{}", w.kind.kind, w.namespace, w.name))
            .collect(),
        helm,
        version,
    })
}

/// The Helm release of ConfigMap `argocd-cm` in `namespace`, if Helm installed it.
async fn config_map_release(
    client: &Client,
    namespace: &str,
) -> Result<Option<String>, ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(client.kube(), namespace);
    let cm = client
        .retry(|| api.get_opt("argocd-cm"))
        .await
        .map_err(|e| ClusterError::api(format!("reading ConfigMap {namespace}/argocd-cm"), e))?;
    Ok(cm.and_then(|cm| {
        let meta = serde_json::to_value(&cm.metadata).ok()?;
        helm_release(&meta)
    }))
}
