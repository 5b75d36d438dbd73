//! What a fresh cluster holds: system namespaces, one node, a default StorageClass, the CRDs
//! of the served custom resources, Argo CD's default AppProject and the cluster identity.

use serde_json::{json, Value};

use super::resources::{by_kind, RESOURCES};
use super::State;

fn put(state: &State, obj: Value) {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if let Some(rt) = by_kind(api_version, kind) {
        let _ = state.store.put(rt, obj);
    }
}

pub fn seed(state: &State) {
    for ns in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "argocd",
    ] {
        put(
            state,
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            }),
        );
    }
    let mut capacity =
        json!({"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    if state.opts.node_gpus > 0 {
        if let Some(m) = capacity.as_object_mut() {
            m.insert(
                "nvidia.com/gpu".into(),
                json!(state.opts.node_gpus.to_string()),
            );
        }
    }
    put(
        state,
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1", "labels": {
                "kubernetes.io/hostname": "node-1", "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/control-plane": ""
            }},
            "spec": {},
            "status": {
                "capacity": capacity, "allocatable": capacity,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status"}],
                "addresses": [{"type": "InternalIP", "address": "192.0.2.10"},
                              {"type": "Hostname", "address": "node-1"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "architecture": "amd64",
                             "operatingSystem": "linux", "containerRuntimeVersion": "containerd://1.7.0"}
            }
        }),
    );
    put(
        state,
        json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "test.local/hostpath",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowVolumeExpansion": true
        }),
    );
    put(
        state,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cluster-identity", "namespace": "kube-system"},
            "data": {"clusterName": state.opts.cluster_name}
        }),
    );
    put(
        state,
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "default", "namespace": "argocd"},
            "spec": {"sourceRepos": ["*"], "destinations": [{"namespace": "*", "server": "*"}],
                     "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}
        }),
    );
    // One CRD per custom resource group/plural (all versions of it).
    let builtin = [
        "",
        "apps",
        "apiextensions.k8s.io",
        "storage.k8s.io",
        "authorization.k8s.io",
    ];
    for r in RESOURCES.iter().filter(|r| !builtin.contains(&r.group)) {
        let versions: Vec<Value> = RESOURCES
            .iter()
            .filter(|o| o.group == r.group && o.plural == r.plural)
            .map(|o| {
                let mut v = json!({
                    "name": o.version, "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
                });
                if o.has("status") {
                    if let Some(m) = v.as_object_mut() {
                        m.insert("subresources".into(), json!({"status": {}}));
                    }
                }
                v
            })
            .collect();
        let names = json!({
            "plural": r.plural, "singular": r.singular, "kind": r.kind,
            "listKind": format!("{}List", r.kind), "shortNames": r.short_names,
            "categories": r.categories
        });
        put(
            state,
            json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": format!("{}.{}", r.plural, r.group)},
                "spec": {
                    "group": r.group, "names": names,
                    "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                    "versions": versions
                },
                "status": {
                    "acceptedNames": names,
                    "storedVersions": [r.version],
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}
                    ]
                }
            }),
        );
    }
}
