//! A model's stable route as the cluster holds it: its HTTPRoute's backends and their weights, the
//! shared Gateway's address, the URL a client uses. `status` shows it, `smoke --via-gateway` goes
//! through it and `move` shifts its weights (the rendered route lists the backends; the live
//! weights are `move`'s, which the routing Application ignores).

use serde::Serialize;
use serde_json::{json, Value};

use crate::cluster::kinds;
use crate::cluster::{Client, ClusterError};
use crate::plan::{Plan, PlannedModel, PlannedRouting};

/// One backendRef of a live route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveBackend {
    pub namespace: String,
    pub service: String,
    pub port: u16,
    /// Gateway API's default weight is 1.
    pub weight: u32,
}

/// The backendRefs of the first rule of route `route` (the one rule platform renders).
pub fn backends(route: &Value, route_namespace: &str) -> Vec<LiveBackend> {
    route
        .pointer("/spec/rules/0/backendRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| LiveBackend {
            namespace: b
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or(route_namespace)
                .to_string(),
            service: b
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            port: b
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(80),
            weight: b
                .get("weight")
                .and_then(Value::as_u64)
                .and_then(|w| u32::try_from(w).ok())
                .unwrap_or(1),
        })
        .collect()
}

/// The merge patch that gives the backends of `route`'s first rule the weights of `backends`
/// (matched by namespace and name) and changes nothing else. A merge patch replaces a list
/// whole, so it carries the live rules, matches and filters included, only the weights changed;
/// and the live `resourceVersion`, so a route that changed since it was read is not overwritten
/// (409: read again).
pub fn weights_patch(route: &Value, route_namespace: &str, backends: &[LiveBackend]) -> Value {
    let mut rules = route
        .pointer("/spec/rules")
        .cloned()
        .unwrap_or_else(|| json!([]));
    if let Some(refs) = rules
        .pointer_mut("/0/backendRefs")
        .and_then(Value::as_array_mut)
    {
        for r in refs.iter_mut() {
            let ns = r
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or(route_namespace)
                .to_string();
            let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
            if let Some(b) = backends
                .iter()
                .find(|b| b.namespace == ns && b.service == name)
            {
                r["weight"] = json!(b.weight);
            }
        }
    }
    json!({
        "metadata": {"resourceVersion": route.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)},
        "spec": {"rules": rules},
    })
}

/// The live HTTPRoute of model `name` (None when it does not exist or Gateway API is absent).
pub async fn read(
    client: &Client,
    routing: &PlannedRouting,
    name: &str,
) -> Result<Option<Value>, ClusterError> {
    let api = kinds::HTTP_ROUTE.api(client, &routing.namespace);
    match client.retry(|| api.get_opt(name)).await {
        Ok(o) => Ok(o.map(|o| kinds::json(&o))),
        Err(e) => {
            let e = ClusterError::api(format!("reading HTTPRoute {}/{name}", routing.namespace), e);
            if e.code() == Some(404) {
                Ok(None) // the Gateway API CRDs are not installed
            } else {
                Err(e)
            }
        }
    }
}

/// The first address the shared Gateway reports (None until its controller gives it one).
pub async fn gateway_address(
    client: &Client,
    routing: &PlannedRouting,
) -> Result<Option<String>, ClusterError> {
    let api = kinds::GATEWAY.api(client, &routing.namespace);
    let gw = match client.retry(|| api.get_opt(&routing.gateway)).await {
        Ok(o) => o.map(|o| kinds::json(&o)),
        Err(e) => {
            let e = ClusterError::api(
                format!("reading Gateway {}/{}", routing.namespace, routing.gateway),
                e,
            );
            if e.code() == Some(404) {
                None
            } else {
                return Err(e);
            }
        }
    };
    Ok(gw
        .as_ref()
        .and_then(|g| g.pointer("/status/addresses/0/value"))
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(str::to_string))
}

/// The OpenAI base URL of model `name` through the Gateway at `address`.
pub fn base_url(routing: &PlannedRouting, address: &str, name: &str) -> String {
    let host = if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]") // an IPv6 address
    } else {
        address.to_string()
    };
    format!("http://{host}{}/v1", routing.path(name))
}

/// How a live route splits a model's traffic, in words (`kserve 100, raw-vllm 0`), naming each
/// backend by the layer of the plan's declaration it belongs to.
pub fn describe(plan: &Plan, name: &str, live: &[LiveBackend]) -> String {
    live.iter()
        .map(|b| {
            let layer = plan
                .models
                .iter()
                .filter(|pm| pm.name == name && pm.namespace == b.namespace)
                .find(|pm| {
                    pm.layer()
                        .route_backend(&pm.name)
                        .is_some_and(|r| r.service == b.service)
                })
                .map_or_else(
                    || format!("{}/{}", b.namespace, b.service),
                    |pm| pm.serving_layer.clone(),
                );
            format!("{layer} {}", b.weight)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The backend the route uses for declaration `pm` (its layer's Service in its namespace).
pub fn backend_of(pm: &PlannedModel) -> Option<LiveBackend> {
    pm.layer().route_backend(&pm.name).map(|b| LiveBackend {
        namespace: pm.namespace.clone(),
        service: b.service,
        port: b.port,
        weight: 0,
    })
}

/// Whether `b` is declaration `pm`'s backend.
pub fn is_backend_of(b: &LiveBackend, pm: &PlannedModel) -> bool {
    backend_of(pm).is_some_and(|o| o.namespace == b.namespace && o.service == b.service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_default_weight_one_and_their_namespace() {
        let r = json!({"spec": {"rules": [{"backendRefs": [
            {"name": "a", "namespace": "serving", "port": 80, "weight": 0},
            {"name": "b", "port": 8080}
        ]}]}});
        let b = backends(&r, "inference");
        assert_eq!(b[0].weight, 0);
        assert_eq!(b[1].weight, 1);
        assert_eq!(b[1].namespace, "inference");
        assert_eq!(b[1].port, 8080);
        let mut b = b;
        b[0].weight = 100;
        let p = weights_patch(&r, "inference", &b);
        assert_eq!(p["spec"]["rules"][0]["backendRefs"][0]["weight"], 100);
        assert_eq!(p["spec"]["rules"][0]["backendRefs"][1]["weight"], 1);
        assert_eq!(p["spec"]["rules"][0]["backendRefs"][1]["name"], "b");
    }

    #[test]
    fn a_weights_patch_keeps_the_matches_and_filters() {
        let r = json!({"metadata": {"resourceVersion": "42"}, "spec": {"rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": "/models/m"}}],
            "filters": [{"type": "URLRewrite"}],
            "backendRefs": [{"name": "m-predictor", "namespace": "kserve", "port": 80, "weight": 100},
                            {"name": "m", "namespace": "serving", "port": 80, "weight": 0}]}]}});
        let mut b = backends(&r, "inference");
        b[0].weight = 0;
        b[1].weight = 100;
        let p = weights_patch(&r, "inference", &b);
        let rule = &p["spec"]["rules"][0];
        assert_eq!(rule["matches"], r["spec"]["rules"][0]["matches"]);
        assert_eq!(rule["filters"], r["spec"]["rules"][0]["filters"]);
        assert_eq!(rule["backendRefs"][0]["weight"], 0);
        assert_eq!(rule["backendRefs"][1]["weight"], 100);
        assert_eq!(p["metadata"]["resourceVersion"], "42");
    }

    #[test]
    fn base_urls_bracket_ipv6() {
        let r = PlannedRouting {
            namespace: "inference".into(),
            gateway: "inference-gateway".into(),
            path_prefix: "/models".into(),
        };
        assert_eq!(
            base_url(&r, "10.0.0.7", "qwen"),
            "http://10.0.0.7/models/qwen/v1"
        );
        assert_eq!(
            base_url(&r, "fd00::1", "qwen"),
            "http://[fd00::1]/models/qwen/v1"
        );
    }
}
