//! What the cluster holds for a plan's models (serving objects, PVCs, pods), read either one model
//! at a time (a GET per object) or listed once per kind and namespace for the whole fleet (issue
//! 14: `status` on 1000 models made 2000–3000 sequential requests, about 10 s against a real API
//! server; it now makes a few LISTs).

use std::collections::{BTreeSet, HashMap};

use kube::api::ListParams;
use serde_json::Value;

use super::kinds::{self, Kind};
use super::{Client, ClusterError};
use crate::plan::PlannedModel;

/// Where a model's objects are read from.
pub enum Observed {
    /// A request per object (one model).
    Direct(Client),
    /// Listed up front (every model of a plan).
    Listed(Box<Listed>),
}

/// Objects listed by (kind, namespace) → name → object; pods by namespace, listed the first time
/// a model that is not ready asks (a healthy fleet needs none).
pub struct Listed {
    client: Client,
    serving: HashMap<(&'static str, String), HashMap<String, Value>>,
    pvcs: HashMap<String, HashMap<String, Value>>,
    pods: HashMap<String, tokio::sync::OnceCell<Vec<Value>>>,
}

/// Whether the model has a PVC (its layer says; llm-d only when pre-staged).
pub fn has_pvc(m: &PlannedModel) -> bool {
    m.has_pvc()
}

/// Every object of `kind` in `ns` (the cluster scope for "" or a cluster-scoped kind), with the
/// label selector when given, as JSON without managedFields (often half an object; nothing here
/// reads them).
pub async fn list_json(
    client: &Client,
    kind: Kind,
    ns: &str,
    labels: Option<&str>,
) -> Result<Vec<Value>, ClusterError> {
    let api = kind.api(client, ns);
    let lp = match labels {
        Some(l) => ListParams::default().labels(l),
        None => ListParams::default(),
    };
    let list = client.retry(|| api.list(&lp)).await.map_err(|e| {
        let mut what = format!("listing {}", kind.plural);
        if kind.namespaced && !ns.is_empty() {
            what.push_str(&format!(" in {ns}"));
        }
        if let Some(l) = labels {
            what.push_str(&format!(" labelled {l}"));
        }
        ClusterError::api(what, e)
    })?;
    Ok(list
        .items
        .into_iter()
        .map(|mut o| {
            o.metadata.managed_fields = None;
            kinds::json(&o)
        })
        .collect())
}

fn by_name(items: Vec<Value>) -> HashMap<String, Value> {
    items
        .into_iter()
        .map(|v| {
            let name = v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (name, v)
        })
        .collect()
}

impl Listed {
    /// One LIST per serving kind and namespace of `models`, one of PVCs and one of pods per
    /// namespace.
    pub async fn gather(client: &Client, models: &[PlannedModel]) -> Result<Listed, ClusterError> {
        let mut wanted: Vec<(Kind, &str)> = Vec::new();
        for m in models {
            let w = (m.layer().serving_kind(), m.namespace.as_str());
            if !wanted.contains(&w) {
                wanted.push(w);
            }
        }
        let namespaces: BTreeSet<&str> = models.iter().map(|m| m.namespace.as_str()).collect();
        // All at once: the API server answers them side by side.
        let serving = futures::future::try_join_all(
            wanted.iter().map(|(k, ns)| list_json(client, *k, ns, None)),
        );
        let pvcs = futures::future::try_join_all(
            namespaces
                .iter()
                .map(|ns| list_json(client, kinds::PVC, ns, None)),
        );
        let (serving, pvcs) = futures::future::try_join(serving, pvcs).await?;
        let out = Listed {
            client: client.clone(),
            serving: wanted
                .iter()
                .zip(serving)
                .map(|((k, ns), items)| ((k.kind, ns.to_string()), by_name(items)))
                .collect(),
            pvcs: namespaces
                .iter()
                .zip(pvcs)
                .map(|(ns, items)| (ns.to_string(), by_name(items)))
                .collect(),
            pods: namespaces
                .iter()
                .map(|ns| (ns.to_string(), tokio::sync::OnceCell::new()))
                .collect(),
        };
        Ok(out)
    }
}

impl Observed {
    /// The model's serving object (Deployment, InferenceService or LLMInferenceService).
    pub async fn serving(&self, m: &PlannedModel) -> Result<Option<Value>, ClusterError> {
        let kind = m.layer().serving_kind();
        match self {
            Observed::Direct(client) => {
                let api = kind.api(client, &m.namespace);
                let obj = client.retry(|| api.get_opt(&m.name)).await.map_err(|e| {
                    ClusterError::api(
                        format!("reading {} {}/{}", kind.kind, m.namespace, m.name),
                        e,
                    )
                })?;
                Ok(obj.as_ref().map(kinds::json))
            }
            Observed::Listed(l) => Ok(l
                .serving
                .get(&(kind.kind, m.namespace.clone()))
                .and_then(|objs| objs.get(&m.name))
                .cloned()),
        }
    }

    /// The autoscaler object the model's layer renders beside its workload (raw vLLM's HPA or
    /// KEDA ScaledObject), when the model autoscales and the object exists: one GET (asked only
    /// for a model standing at 0 replicas).
    pub async fn autoscaler(&self, m: &PlannedModel) -> Result<Option<Value>, ClusterError> {
        let Some(a) = m.autoscaler() else {
            return Ok(None);
        };
        let client = match self {
            Observed::Direct(client) => client,
            Observed::Listed(l) => &l.client,
        };
        let api = a.kind.api(client, &m.namespace);
        let obj = client.retry(|| api.get_opt(&a.name)).await.map_err(|e| {
            ClusterError::api(
                format!("reading {} {}/{}", a.kind.kind, m.namespace, a.name),
                e,
            )
        })?;
        Ok(obj.as_ref().map(kinds::json))
    }

    /// The Deployment whose pods serve the model, when its layer names one (KServe's
    /// `<isvc>-predictor`; not raw vLLM, whose serving object is its Deployment) and it exists:
    /// one GET (asked only for an autoscaled model, whose current count is there).
    pub async fn workload(&self, m: &PlannedModel) -> Result<Option<Value>, ClusterError> {
        let w = m.layer().workload(&m.name);
        if w.kind != kinds::DEPLOYMENT {
            return Ok(None);
        }
        let client = match self {
            Observed::Direct(client) => client,
            Observed::Listed(l) => &l.client,
        };
        let api = w.kind.api(client, &m.namespace);
        let obj = client.retry(|| api.get_opt(&w.name)).await.map_err(|e| {
            ClusterError::api(
                format!("reading {} {}/{}", w.kind.kind, m.namespace, w.name),
                e,
            )
        })?;
        Ok(obj.as_ref().map(kinds::json))
    }

    /// The model's PVC, when it has one and it exists.
    pub async fn pvc(&self, m: &PlannedModel) -> Result<Option<Value>, ClusterError> {
        if !has_pvc(m) {
            return Ok(None);
        }
        let name = m.model.pvc_name();
        match self {
            Observed::Direct(client) => {
                let api = kinds::PVC.api(client, &m.namespace);
                Ok(client
                    .retry(|| api.get_opt(&name))
                    .await
                    .map_err(|e| {
                        ClusterError::api(format!("reading PVC {}/{name}", m.namespace), e)
                    })?
                    .as_ref()
                    .map(kinds::json))
            }
            Observed::Listed(l) => Ok(l
                .pvcs
                .get(&m.namespace)
                .and_then(|objs| objs.get(&name))
                .cloned()),
        }
    }

    /// The model's pods.
    pub async fn pods(&self, m: &PlannedModel) -> Result<Vec<Value>, ClusterError> {
        let (key, value) = (m.layer().pod_label(), m.name.as_str());
        match self {
            Observed::Direct(client) => {
                let selector = format!("{key}={value}");
                list_json(client, kinds::POD, &m.namespace, Some(&selector)).await
            }
            Observed::Listed(l) => {
                let Some(cell) = l.pods.get(&m.namespace) else {
                    return Ok(Vec::new());
                };
                let pods = cell
                    .get_or_try_init(|| list_json(&l.client, kinds::POD, &m.namespace, None))
                    .await?;
                Ok(pods
                    .iter()
                    .filter(|p| {
                        p.pointer("/metadata/labels")
                            .and_then(|l| l.get(key))
                            .and_then(Value::as_str)
                            == Some(value)
                    })
                    .cloned()
                    .collect())
            }
        }
    }
}
