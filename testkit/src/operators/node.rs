//! A node (what a kubelet would do, minus running containers): the Node object with capacity and a
//! Ready condition, Pods the real scheduler binds to it marked Running and Ready (so the real
//! Deployment/StatefulSet controllers compute availability), and terminating Pods removed.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

use super::{now, TICK};

pub const NODE: &str = "realkube-node-1";
/// GPUs on the node: one-GPU models schedule; a model asking for more gets the real scheduler's
/// `Insufficient nvidia.com/gpu`.
pub const GPUS: u32 = 4;

pub async fn setup(client: &kube::Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "labels": {
            "kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
    }))
    .expect("node");
    if let Err(e) = nodes.create(&PostParams::default(), &node).await {
        assert!(
            matches!(&e, kube::Error::Api(r) if r.code == 409),
            "creating node: {e}"
        );
    }
    // The API server's TaintNodesByCondition admission adds node.kubernetes.io/not-ready on create;
    // the node lifecycle controller (off here: no kubelet heartbeats) would remove it once Ready.
    nodes
        .patch(
            NODE,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"taints": null}})),
        )
        .await
        .expect("node taints");
    let cap = json!({"cpu": "32", "memory": "256Gi", "pods": "110",
                      "nvidia.com/gpu": GPUS.to_string(), "ephemeral-storage": "500Gi"});
    let t = now();
    let status = json!({"status": {
        "capacity": cap, "allocatable": cap,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                         "message": "node stand-in", "lastHeartbeatTime": t, "lastTransitionTime": t}],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE}],
        "nodeInfo": {"kubeletVersion": "v1.28.7", "architecture": "amd64", "operatingSystem": "linux",
                     "containerRuntimeVersion": "stand-in", "kernelVersion": "", "osImage": "", "kubeProxyVersion": "",
                     "machineID": "", "systemUUID": "", "bootID": ""},
    }});
    nodes
        .patch_status(NODE, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node status");
}

pub async fn run(client: kube::Client) {
    let pods: Api<Pod> = Api::all(client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={NODE}"));
    loop {
        if let Ok(list) = pods.list(&lp).await {
            for p in list.items {
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                let name = p.metadata.name.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                if p.metadata.deletion_timestamp.is_some() {
                    // The kubelet confirms the deletion once the containers are gone.
                    let _ = api
                        .delete(&name, &DeleteParams::default().grace_period(0))
                        .await;
                    continue;
                }
                let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                if running {
                    continue;
                }
                let t = now();
                let containers: Vec<_> = p
                    .spec
                    .as_ref()
                    .map(|s| s.containers.iter().collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| json!({"name": c.name, "image": c.image.clone().unwrap_or_default(),
                                    "imageID": "", "ready": true, "restartCount": 0, "started": true,
                                    "state": {"running": {"startedAt": t}}}))
                    .collect();
                let status = json!({"status": {
                    "phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": t,
                    "conditions": [
                        {"type": "Initialized", "status": "True", "lastTransitionTime": t},
                        {"type": "ContainersReady", "status": "True", "lastTransitionTime": t},
                        {"type": "Ready", "status": "True", "lastTransitionTime": t},
                        {"type": "PodScheduled", "status": "True", "lastTransitionTime": t}],
                    "containerStatuses": containers,
                }});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
        }
        tokio::time::sleep(TICK).await;
    }
}
