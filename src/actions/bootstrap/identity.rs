//! The cluster's identity (ConfigMap `kube-system/cluster-identity`, key `clusterName`): read before
//! any write, recorded by bootstrap on a brand-new cluster once the user confirmed the target.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use kube::Api;

use crate::cluster::target::{
    self, Recorded, IDENTITY_CONFIGMAP, IDENTITY_KEY, IDENTITY_NAMESPACE,
};
use crate::cluster::{Client, ClusterError};
use crate::consts;

/// What the cluster says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// It says the expected name.
    Matches,
    /// It says nothing yet: bootstrap records it.
    Absent,
    /// Its identity cannot be read (403) and the kubeconfig's cluster entry confirms the target
    /// (how, as the target line shows it): nothing is recorded.
    Entry(String),
}

impl Identity {
    /// How the target line shows it (`name` is the config's cluster.name).
    pub fn describe(&self, name: &str) -> String {
        match self {
            Identity::Matches => target::recorded_description(name),
            Identity::Absent => "no cluster identity recorded yet".into(),
            Identity::Entry(how) => how.clone(),
        }
    }

    /// The name bootstrap records: `name` on a cluster that has none yet.
    pub fn to_record(&self, name: &str) -> Option<String> {
        match self {
            Identity::Matches | Identity::Entry(_) => None,
            Identity::Absent => Some(name.to_string()),
        }
    }
}

/// Compare the recorded identity with `expected` (the target guard's check, [`target::recorded_identity`]);
/// a cluster that says another name is refused. One whose identity cannot be read (403) is
/// confirmed by the kubeconfig's cluster entry as the target guard does, or refused.
pub async fn check(
    client: &Client,
    expected: &str,
    cluster_entry: &str,
) -> Result<Identity, ClusterError> {
    Ok(match target::recorded_identity(client, expected).await? {
        Recorded::Matches => Identity::Matches,
        Recorded::Absent => Identity::Absent,
        Recorded::Forbidden => Identity::Entry(target::entry_identity(expected, cluster_entry)?),
    })
}

/// Record `name` (create only: a ConfigMap that appeared meanwhile is checked again, never replaced).
pub async fn record(client: &Client, name: &str) -> Result<(), ClusterError> {
    let cms: Api<ConfigMap> = Api::namespaced(client.kube(), IDENTITY_NAMESPACE);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": IDENTITY_CONFIGMAP,
            "namespace": IDENTITY_NAMESPACE,
            "labels": {consts::LABEL_MANAGED_BY: consts::MANAGED_BY_VALUE},
        },
        "data": {IDENTITY_KEY: name},
    }))
    .map_err(|e| ClusterError::Protocol {
        what: "building the cluster identity".into(),
        reason: e.to_string(),
    })?;
    let pp = PostParams {
        field_manager: Some(consts::FIELD_MANAGER.into()),
        ..Default::default()
    };
    match client.retry(|| cms.create(&pp, &cm)).await {
        Ok(_) => Ok(()),
        // Created meanwhile: it must name this cluster.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            match target::recorded_identity(client, name).await? {
                Recorded::Matches | Recorded::Absent => Ok(()),
                Recorded::Forbidden => Err(ClusterError::Protocol {
                    what: format!(
                        "recording the cluster identity {IDENTITY_NAMESPACE}/{IDENTITY_CONFIGMAP}"
                    ),
                    reason: "it exists already and cannot be read (403)".into(),
                }),
            }
        }
        Err(e) => Err(ClusterError::api(
            format!("recording the cluster identity {IDENTITY_NAMESPACE}/{IDENTITY_CONFIGMAP}"),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cluster_without_identity_gets_one_recorded() {
        assert_eq!(
            Identity::Absent.to_record("prod-eu").as_deref(),
            Some("prod-eu")
        );
        assert_eq!(Identity::Matches.to_record("prod-eu"), None);
        assert_eq!(
            Identity::Matches.describe("prod-eu"),
            "cluster prod-eu (ConfigMap kube-system/cluster-identity)"
        );
        assert_eq!(
            Identity::Absent.describe("prod-eu"),
            "no cluster identity recorded yet"
        );
    }
}
