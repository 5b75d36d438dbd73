//! The resource types this server serves: names, kinds, scope, verbs and subresources.

/// One served resource (one group/version/plural).
#[derive(Debug)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources besides the object itself: "status", "scale", "exec", "log".
    pub subresources: &'static [&'static str],
    /// Only `create` is served (access reviews).
    pub create_only: bool,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps` (or `pods` in the core group), as error messages name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }

    /// The collection path, namespaced when `ns` is given.
    pub fn collection_path(&self, ns: Option<&str>) -> String {
        let prefix = if self.group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match ns {
            Some(ns) if self.namespaced => format!("{prefix}/namespaces/{ns}/{}", self.plural),
            _ => format!("{prefix}/{}", self.plural),
        }
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            vec!["create"]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }
}

macro_rules! rt {
    ($g:expr, $v:expr, $p:expr, $s:expr, $k:expr, $ns:expr, [$($sn:expr),*], [$($cat:expr),*], [$($sub:expr),*]) => {
        ResourceType {
            group: $g, version: $v, plural: $p, singular: $s, kind: $k, namespaced: $ns,
            short_names: &[$($sn),*], categories: &[$($cat),*], subresources: &[$($sub),*],
            create_only: false,
        }
    };
}

/// Every served resource.
pub static RESOURCES: &[ResourceType] = &[
    rt!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        ["ns"],
        [],
        ["status"]
    ),
    rt!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        ["po"],
        ["all"],
        ["status", "exec", "portforward", "log"]
    ),
    rt!(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        ["svc"],
        ["all"],
        ["status"]
    ),
    rt!(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        ["pvc"],
        [],
        ["status"]
    ),
    rt!(
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        ["pv"],
        [],
        ["status"]
    ),
    rt!(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        ["cm"],
        [],
        []
    ),
    rt!("", "v1", "secrets", "secret", "Secret", true, [], [], []),
    rt!("", "v1", "events", "event", "Event", true, ["ev"], [], []),
    rt!(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        ["no"],
        [],
        ["status"]
    ),
    rt!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        ["deploy"],
        ["all"],
        ["status", "scale"]
    ),
    // No controller: a StatefulSet keeps the status it is given (doctor reads Argo CD's).
    rt!(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        ["sts"],
        ["all"],
        ["status", "scale"]
    ),
    // Argo CD's Application CRD has no status subresource: status is written through the object.
    rt!(
        "argoproj.io",
        "v1alpha1",
        "applications",
        "application",
        "Application",
        true,
        ["app", "apps"],
        ["argo"],
        []
    ),
    rt!(
        "argoproj.io",
        "v1alpha1",
        "appprojects",
        "appproject",
        "AppProject",
        true,
        ["appproj", "appprojs"],
        ["argo"],
        []
    ),
    rt!(
        "serving.kserve.io",
        "v1beta1",
        "inferenceservices",
        "inferenceservice",
        "InferenceService",
        true,
        ["isvc"],
        ["all", "kserve"],
        ["status"]
    ),
    rt!(
        "serving.kserve.io",
        "v1alpha1",
        "llminferenceservices",
        "llminferenceservice",
        "LLMInferenceService",
        true,
        ["llmisvc"],
        ["kserve"],
        ["status"]
    ),
    rt!(
        "serving.kserve.io",
        "v1alpha1",
        "clusterservingruntimes",
        "clusterservingruntime",
        "ClusterServingRuntime",
        false,
        [],
        ["kserve"],
        []
    ),
    rt!(
        "gateway.networking.k8s.io",
        "v1",
        "gateways",
        "gateway",
        "Gateway",
        true,
        ["gtw"],
        ["gateway-api"],
        ["status"]
    ),
    rt!(
        "gateway.networking.k8s.io",
        "v1",
        "gatewayclasses",
        "gatewayclass",
        "GatewayClass",
        false,
        ["gc"],
        ["gateway-api"],
        ["status"]
    ),
    rt!(
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        "httproute",
        "HTTPRoute",
        true,
        [],
        ["gateway-api"],
        ["status"]
    ),
    rt!(
        "gateway.networking.k8s.io",
        "v1beta1",
        "referencegrants",
        "referencegrant",
        "ReferenceGrant",
        true,
        ["refgrant"],
        ["gateway-api"],
        []
    ),
    rt!(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        ["crd", "crds"],
        ["api-extensions"],
        ["status"]
    ),
    rt!(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        ["netpol"],
        [],
        []
    ),
    rt!(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "storageclass",
        "StorageClass",
        false,
        ["sc"],
        [],
        []
    ),
    ResourceType {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        create_only: true,
    },
];

/// The resource served at `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource for an `apiVersion` + `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

/// The resource for a kind alone (first match; kinds are unique here).
pub fn by_kind_name(kind: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| r.kind == kind)
}

/// Every group (other than core) with its versions, preferred version first.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

pub mod well_known {
    use super::{find, ResourceType};

    fn core(plural: &str) -> &'static ResourceType {
        match find("", "v1", plural) {
            Some(r) => r,
            None => &super::RESOURCES[0],
        }
    }

    pub fn namespaces() -> &'static ResourceType {
        core("namespaces")
    }
    pub fn pods() -> &'static ResourceType {
        core("pods")
    }
    pub fn services() -> &'static ResourceType {
        core("services")
    }
    pub fn pvcs() -> &'static ResourceType {
        core("persistentvolumeclaims")
    }
    pub fn pvs() -> &'static ResourceType {
        core("persistentvolumes")
    }
    pub fn nodes() -> &'static ResourceType {
        core("nodes")
    }
    pub fn events() -> &'static ResourceType {
        core("events")
    }
}
