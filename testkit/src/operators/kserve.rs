//! KServe, as far as platform can observe it: an InferenceService owns a `<name>-predictor`
//! Deployment (its predictor's pod spec), an LLMInferenceService a `<name>-kserve` Deployment (and
//! `<name>-kserve-prefill` with prefill); `serving.kserve.io/stop: "true"` scales them to 0.
//! Conditions follow the Deployments' availability: ISVC `Ready`/`PredictorReady`/`Stopped`,
//! LLMISVC `Ready`/`WorkloadReady` (reason `Stopped` when stopped). The garbage collector deletes
//! the Deployments with their owner.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ListParams, Patch, PatchParams};
use kube::Api;
use serde_json::{json, Value};

use super::{dyn_api, json as to_json, now, s, TICK};

const MANAGER: &str = "kserve-controller";
const STOP: &str = "serving.kserve.io/stop";

fn stopped(v: &Value) -> bool {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(STOP))
        .and_then(Value::as_str)
        == Some("true")
}

/// Ensure the owned Deployment; its available replica count. `replicas` None: the count is left
/// to an autoscaler (set on creation only, then no longer applied, as KServe leaves an HPA's or
/// KEDA's Deployment alone).
async fn workload(
    client: &kube::Client,
    owner: &Value,
    name: &str,
    pod_spec: Value,
    replicas: Option<i64>,
) -> Result<i64, kube::Error> {
    let ns = s(owner, "/metadata/namespace");
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let labels = json!({"app": name, "serving.kserve.io/owner": s(owner, "/metadata/name")});
    let replicas = match replicas {
        Some(n) => Some(n),
        None if api.get_opt(name).await?.is_none() => Some(1),
        None => None,
    };
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels,
            "ownerReferences": [{"apiVersion": s(owner, "/apiVersion"), "kind": s(owner, "/kind"),
                "name": s(owner, "/metadata/name"), "uid": s(owner, "/metadata/uid"),
                "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "strategy": {"type": "Recreate"},
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}},
    });
    if replicas.is_none() {
        if let Some(spec) = d["spec"].as_object_mut() {
            spec.remove("replicas");
        }
    }
    let got = api
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&d),
        )
        .await?;
    let st = got.status.unwrap_or_default();
    let fresh = st.observed_generation == got.metadata.generation;
    Ok(if fresh {
        i64::from(st.available_replicas.unwrap_or(0))
    } else {
        0
    })
}

fn pod_spec(from: Option<&Value>) -> Value {
    let mut spec = json!({});
    if let (Some(m), Some(src)) = (spec.as_object_mut(), from.and_then(Value::as_object)) {
        for k in [
            "containers",
            "volumes",
            "nodeSelector",
            "tolerations",
            "affinity",
            "securityContext",
            "serviceAccountName",
            "automountServiceAccountToken",
            "imagePullSecrets",
        ] {
            if let Some(v) = src.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
    }
    spec
}

fn cond(ty: &str, status: bool, reason: &str, msg: &str, t: &str) -> Value {
    json!({"type": ty, "status": if status {"True"} else {"False"}, "reason": reason,
           "message": msg, "lastTransitionTime": t})
}

/// Keep lastTransitionTime when a condition did not change (as KServe's knative conditions do).
fn merge(old: &Value, new: Vec<Value>) -> Vec<Value> {
    new.into_iter()
        .map(|mut c| {
            let ty = c["type"].as_str().unwrap_or("").to_string();
            if let Some(o) = super::condition(old, &ty) {
                if o["status"] == c["status"] && o["reason"] == c["reason"] {
                    c["lastTransitionTime"] = o["lastTransitionTime"].clone();
                }
            }
            c
        })
        .collect()
}

async fn isvc(client: &kube::Client, v: &Value) -> Result<(), kube::Error> {
    let name = s(v, "/metadata/name");
    let ns = s(v, "/metadata/namespace");
    let stop = stopped(v);
    let want = if stop {
        0
    } else {
        v.pointer("/spec/predictor/minReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(1)
    };
    // With an autoscaler (annotation serving.kserve.io/autoscalerClass hpa or keda), the count is
    // the autoscaler's: KEDA may take it to 0.
    let autoscaled = matches!(
        v.pointer("/metadata/annotations/serving.kserve.io~1autoscalerClass")
            .and_then(Value::as_str),
        Some("hpa" | "keda")
    );
    let available = workload(
        client,
        v,
        &format!("{name}-predictor"),
        pod_spec(v.pointer("/spec/predictor")),
        (stop || !autoscaled).then_some(want),
    )
    .await?;
    let t = now();
    let ready = !stop && available >= want;
    let conds = if stop {
        let m = "The InferenceService is stopped";
        vec![
            cond("IngressReady", false, "Stopped", m, &t),
            cond("PredictorReady", false, "Stopped", m, &t),
            cond("Ready", false, "Stopped", m, &t),
            cond("Stopped", true, "Stopped", m, &t),
        ]
    } else if ready {
        vec![
            cond("IngressReady", true, "", "", &t),
            cond("PredictorReady", true, "", "", &t),
            cond("Ready", true, "", "", &t),
            cond("Stopped", false, "", "", &t),
        ]
    } else {
        let m = "Deployment does not have minimum availability.";
        vec![
            cond("IngressReady", true, "", "", &t),
            cond("PredictorReady", false, "MinimumReplicasUnavailable", m, &t),
            cond("Ready", false, "MinimumReplicasUnavailable", m, &t),
            cond("Stopped", false, "", "", &t),
        ]
    };
    let internal = format!("http://{name}-predictor.{ns}.svc.cluster.local");
    let mut status = json!({
        "observedGeneration": v.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "conditions": merge(v, conds),
        "address": {"url": internal},
        "components": {"predictor": {"url": internal}},
    });
    if ready {
        status["url"] = json!(format!("http://{name}-{ns}.example.com"));
    }
    write_status(client, v, "inferenceservices", "v1beta1", status).await
}

async fn llmisvc(client: &kube::Client, v: &Value) -> Result<(), kube::Error> {
    let name = s(v, "/metadata/name");
    let stop = stopped(v);
    let replicas = |p: &str| {
        if stop {
            0
        } else {
            v.pointer(p).and_then(Value::as_i64).unwrap_or(1).max(1)
        }
    };
    let want = replicas("/spec/replicas");
    let mut ok = workload(
        client,
        v,
        &format!("{name}-kserve"),
        pod_spec(v.pointer("/spec/template")),
        Some(want),
    )
    .await?
        >= want;
    if v.pointer("/spec/prefill").is_some() {
        let want = replicas("/spec/prefill/replicas");
        ok &= workload(
            client,
            v,
            &format!("{name}-kserve-prefill"),
            pod_spec(v.pointer("/spec/prefill/template")),
            Some(want),
        )
        .await?
            >= want;
    }
    let t = now();
    let conds = if stop {
        let m = "The LLMInferenceService is stopped";
        vec![
            cond("WorkloadReady", false, "Stopped", m, &t),
            cond("Ready", false, "Stopped", m, &t),
        ]
    } else if ok {
        vec![
            cond("WorkloadReady", true, "", "", &t),
            cond("RouterReady", true, "", "", &t),
            cond("Ready", true, "", "", &t),
        ]
    } else {
        let m = "Deployment does not have minimum availability.";
        vec![
            cond("WorkloadReady", false, "MinimumReplicasUnavailable", m, &t),
            cond("RouterReady", true, "", "", &t),
            cond("Ready", false, "MinimumReplicasUnavailable", m, &t),
        ]
    };
    let status = json!({
        "observedGeneration": v.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "conditions": merge(v, conds),
    });
    write_status(client, v, "llminferenceservices", "v1alpha1", status).await
}

async fn write_status(
    client: &kube::Client,
    v: &Value,
    plural: &str,
    version: &str,
    status: Value,
) -> Result<(), kube::Error> {
    if v.get("status") == Some(&status) {
        return Ok(());
    }
    // Unchanged apart from timestamps: skip the write (keeps resourceVersions quiet).
    let old = v.get("status").cloned().unwrap_or(Value::Null);
    let strip = |mut x: Value| {
        if let Some(cs) = x.get_mut("conditions").and_then(Value::as_array_mut) {
            for c in cs {
                if let Some(m) = c.as_object_mut() {
                    m.remove("lastTransitionTime");
                }
            }
        }
        x
    };
    if strip(old) == strip(status.clone()) {
        return Ok(());
    }
    let kind = s(v, "/kind");
    let api = dyn_api(
        client,
        "serving.kserve.io",
        version,
        kind,
        plural,
        Some(s(v, "/metadata/namespace")),
    );
    api.patch_status(
        s(v, "/metadata/name"),
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .map(|_| ())
}

pub async fn run(client: kube::Client) {
    let isvcs = dyn_api(
        &client,
        "serving.kserve.io",
        "v1beta1",
        "InferenceService",
        "inferenceservices",
        None,
    );
    let llm = dyn_api(
        &client,
        "serving.kserve.io",
        "v1alpha1",
        "LLMInferenceService",
        "llminferenceservices",
        None,
    );
    loop {
        if let Ok(list) = isvcs.list(&ListParams::default()).await {
            for o in list.items {
                let v = to_json(&o);
                if v.pointer("/metadata/deletionTimestamp").is_none() {
                    let _ = isvc(&client, &v).await;
                }
            }
        }
        if let Ok(list) = llm.list(&ListParams::default()).await {
            for o in list.items {
                let v = to_json(&o);
                if v.pointer("/metadata/deletionTimestamp").is_none() {
                    let _ = llmisvc(&client, &v).await;
                }
            }
        }
        tokio::time::sleep(TICK).await;
    }
}
