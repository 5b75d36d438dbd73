//! Discovery documents (`/version`, `/api`, `/apis`, resource lists) and a minimal OpenAPI v3
//! (the paths kubectl's field-validation check looks for) and v2.

use serde_json::{json, Value};

use super::resources::{self, ResourceType, RESOURCES};
use super::util;

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_entry(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(json!({})),
    })
}

pub fn api_group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .iter()
        .map(|(g, vs)| group_entry(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(group: &str) -> Option<Value> {
    let (g, vs) = resources::groups().into_iter().find(|(g, _)| *g == group)?;
    let mut v = group_entry(g, &vs);
    if let Some(m) = v.as_object_mut() {
        m.insert("kind".into(), json!("APIGroup"));
        m.insert("apiVersion".into(), json!("v1"));
    }
    Some(v)
}

fn resource_entries(r: &ResourceType) -> Vec<Value> {
    let mut out = vec![json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs(),
        "shortNames": r.short_names,
        "categories": r.categories,
        "storageVersionHash": &util::sha256_hex(&format!("{}/{}", r.api_version(), r.kind))[..12],
    })];
    for sub in r.subresources {
        let entry = match *sub {
            "status" => json!({
                "name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": r.kind, "verbs": ["get", "patch", "update"]
            }),
            "scale" => json!({
                "name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"]
            }),
            "exec" => json!({
                "name": format!("{}/exec", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": "PodExecOptions", "verbs": ["create", "get"]
            }),
            "portforward" => json!({
                "name": format!("{}/portforward", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": "PodPortForwardOptions", "verbs": ["create", "get"]
            }),
            "log" => json!({
                "name": format!("{}/log", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": "Pod", "verbs": ["get"]
            }),
            _ => continue,
        };
        out.push(entry);
    }
    out
}

/// `APIResourceList` for a group version (`""` + `v1` for the core group).
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = served.iter().flat_map(|r| resource_entries(r)).collect();
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: one entry per group version.
pub fn openapi_v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs: Vec<(&str, &str)> = RESOURCES.iter().map(|r| (r.group, r.version)).collect();
    gvs.dedup();
    for (g, v) in gvs {
        let p = gv_path(g, v);
        let hash = &util::sha256_hex(&p)[..16];
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

fn gvk(r: &ResourceType) -> Value {
    json!({"group": r.group, "version": r.version, "kind": r.kind})
}

/// An OpenAPI schema's name: `io.k8s.api.core.v1.Pod` for the core group, `<group>.<version>.<kind>`.
fn schema_name(r: &ResourceType) -> String {
    let group = if r.group.is_empty() {
        "io.k8s.api.core"
    } else {
        r.group
    };
    format!("{group}.{}.{}", r.version, r.kind)
}

fn query_param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// `/openapi/v3/apis/<group>/<version>`: the item paths with their operations, each PATCH
/// declaring `fieldValidation` (so kubectl leaves validation to the server), and a
/// permissive schema per kind.
pub fn openapi_v3_group_version(path: &str) -> Option<Value> {
    let trimmed = path.trim_start_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    let (group, version) = match parts.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let served: Vec<&ResourceType> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for r in served {
        let collection = if r.namespaced {
            r.collection_path(Some("{namespace}"))
        } else {
            r.collection_path(None)
        };
        let params = json!([
            query_param("dryRun"),
            query_param("fieldManager"),
            query_param("fieldValidation"),
            query_param("force"),
        ]);
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", r.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk(r),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            })
        };
        if r.create_only {
            paths.insert(collection, json!({"post": op("post")}));
        } else {
            paths.insert(
                collection.clone(),
                json!({"get": op("list"), "post": op("post")}),
            );
            paths.insert(
                format!("{collection}/{{name}}"),
                json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
            );
        }
        schemas.insert(
            schema_name(r),
            json!({
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-group-version-kind": [gvk(r)],
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `/openapi/v2`: a valid Swagger 2.0 document with permissive definitions.
pub fn openapi_v2() -> Value {
    let mut defs = serde_json::Map::new();
    for r in RESOURCES {
        defs.insert(
            schema_name(r),
            json!({"type": "object", "x-kubernetes-group-version-kind": [gvk(r)]}),
        );
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": {},
        "definitions": defs,
    })
}

/// The aggregated discovery version a client accepts (`v2` or `v2beta1`), from `Accept`.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    let mut best = None;
    for entry in accept.split(',') {
        let params: Vec<&str> = entry.split(';').map(str::trim).collect();
        if !params.contains(&"g=apidiscovery.k8s.io")
            || !params.contains(&"as=APIGroupDiscoveryList")
        {
            continue;
        }
        if params.contains(&"v=v2") {
            return Some("v2");
        }
        if params.contains(&"v=v2beta1") {
            best = Some("v2beta1");
        }
    }
    best
}

fn discovery_resource(r: &ResourceType) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .filter_map(|sub| {
            let (kind, verbs): (Value, Value) = match *sub {
                "status" => (
                    json!({"group": r.group, "version": r.version, "kind": r.kind}),
                    json!(["get", "patch", "update"]),
                ),
                "scale" => (
                    json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
                    json!(["get", "patch", "update"]),
                ),
                "exec" => (
                    json!({"group": "", "version": "v1", "kind": "PodExecOptions"}),
                    json!(["create", "get"]),
                ),
                "portforward" => (
                    json!({"group": "", "version": "v1", "kind": "PodPortForwardOptions"}),
                    json!(["create", "get"]),
                ),
                "log" => (
                    json!({"group": "", "version": "v1", "kind": "Pod"}),
                    json!(["get"]),
                ),
                _ => return None,
            };
            Some(json!({"subresource": sub, "responseKind": kind, "verbs": verbs}))
        })
        .collect();
    json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
        "shortNames": r.short_names,
        "categories": r.categories,
        "subresources": subresources,
    })
}

fn discovery_group(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == *v)
                .map(discovery_resource)
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
}

/// Aggregated discovery (`APIGroupDiscoveryList`) for `/api` (core) or `/apis` (groups).
pub fn aggregated(core: bool, version: &str) -> Value {
    let items: Vec<Value> = if core {
        vec![discovery_group("", &["v1"])]
    } else {
        resources::groups()
            .iter()
            .map(|(g, vs)| discovery_group(g, vs))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}
