//! The API resources platform talks to, with their plural names and scope (no discovery round trip).

use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};

use super::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

pub const APPLICATION: Kind = Kind {
    api_version: "argoproj.io/v1alpha1",
    kind: "Application",
    plural: "applications",
    namespaced: true,
};
pub const APP_PROJECT: Kind = Kind {
    api_version: "argoproj.io/v1alpha1",
    kind: "AppProject",
    plural: "appprojects",
    namespaced: true,
};
pub const INFERENCE_SERVICE: Kind = Kind {
    api_version: "serving.kserve.io/v1beta1",
    kind: "InferenceService",
    plural: "inferenceservices",
    namespaced: true,
};
pub const LLM_INFERENCE_SERVICE: Kind = Kind {
    api_version: "serving.kserve.io/v1alpha1",
    kind: "LLMInferenceService",
    plural: "llminferenceservices",
    namespaced: true,
};
pub const DEPLOYMENT: Kind = Kind {
    api_version: "apps/v1",
    kind: "Deployment",
    plural: "deployments",
    namespaced: true,
};
pub const GATEWAY: Kind = Kind {
    api_version: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    plural: "gateways",
    namespaced: true,
};
pub const HTTP_ROUTE: Kind = Kind {
    api_version: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    plural: "httproutes",
    namespaced: true,
};
pub const REFERENCE_GRANT: Kind = Kind {
    api_version: "gateway.networking.k8s.io/v1beta1",
    kind: "ReferenceGrant",
    plural: "referencegrants",
    namespaced: true,
};
pub const GATEWAY_CLASS: Kind = Kind {
    api_version: "gateway.networking.k8s.io/v1",
    kind: "GatewayClass",
    plural: "gatewayclasses",
    namespaced: false,
};
pub const SERVICE: Kind = Kind {
    api_version: "v1",
    kind: "Service",
    plural: "services",
    namespaced: true,
};
pub const PVC: Kind = Kind {
    api_version: "v1",
    kind: "PersistentVolumeClaim",
    plural: "persistentvolumeclaims",
    namespaced: true,
};
pub const PV: Kind = Kind {
    api_version: "v1",
    kind: "PersistentVolume",
    plural: "persistentvolumes",
    namespaced: false,
};
pub const POD: Kind = Kind {
    api_version: "v1",
    kind: "Pod",
    plural: "pods",
    namespaced: true,
};
pub const STATEFUL_SET: Kind = Kind {
    api_version: "apps/v1",
    kind: "StatefulSet",
    plural: "statefulsets",
    namespaced: true,
};
pub const CONFIG_MAP: Kind = Kind {
    api_version: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
};
pub const NODE: Kind = Kind {
    api_version: "v1",
    kind: "Node",
    plural: "nodes",
    namespaced: false,
};
pub const STORAGE_CLASS: Kind = Kind {
    api_version: "storage.k8s.io/v1",
    kind: "StorageClass",
    plural: "storageclasses",
    namespaced: false,
};
pub const CRD: Kind = Kind {
    api_version: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    plural: "customresourcedefinitions",
    namespaced: false,
};
pub const NAMESPACE: Kind = Kind {
    api_version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    namespaced: false,
};

pub const CLUSTER_SERVING_RUNTIME: Kind = Kind {
    api_version: "serving.kserve.io/v1alpha1",
    kind: "ClusterServingRuntime",
    plural: "clusterservingruntimes",
    namespaced: false,
};
pub const HPA: Kind = Kind {
    api_version: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    plural: "horizontalpodautoscalers",
    namespaced: true,
};
pub const SCALED_OBJECT: Kind = Kind {
    api_version: "keda.sh/v1alpha1",
    kind: "ScaledObject",
    plural: "scaledobjects",
    namespaced: true,
};

pub const PRIORITY_CLASS: Kind = Kind {
    api_version: "scheduling.k8s.io/v1",
    kind: "PriorityClass",
    plural: "priorityclasses",
    namespaced: false,
};

pub const ALL: &[Kind] = &[
    APPLICATION,
    APP_PROJECT,
    INFERENCE_SERVICE,
    LLM_INFERENCE_SERVICE,
    CLUSTER_SERVING_RUNTIME,
    DEPLOYMENT,
    GATEWAY,
    GATEWAY_CLASS,
    SERVICE,
    PVC,
    PV,
    POD,
    NAMESPACE,
    HPA,
    SCALED_OBJECT,
];

impl Kind {
    pub fn lookup(api_version: &str, kind: &str) -> Option<Kind> {
        ALL.iter()
            .copied()
            .find(|k| k.api_version == api_version && k.kind == kind)
    }

    pub fn resource(&self) -> ApiResource {
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or(("", self.api_version));
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, self.kind),
            self.plural,
        )
    }

    /// A dynamic API for this kind in `namespace` (ignored for cluster-scoped kinds).
    pub fn api(&self, client: &Client, namespace: &str) -> Api<DynamicObject> {
        if self.namespaced {
            Api::namespaced_with(client.kube(), namespace, &self.resource())
        } else {
            Api::all_with(client.kube(), &self.resource())
        }
    }

    /// All namespaces (or the cluster scope).
    pub fn api_all(&self, client: &Client) -> Api<DynamicObject> {
        Api::all_with(client.kube(), &self.resource())
    }
}

/// An object as plain JSON (for the pure predicates).
pub fn json(obj: &DynamicObject) -> serde_json::Value {
    serde_json::to_value(obj).unwrap_or_default()
}
