//! Where a model answers: the ready pod behind its workload (raw vLLM: its Service; KServe: the
//! `<isvc>-predictor` Deployment; llm-d: the `<name>-kserve` Deployment behind the
//! LLMInferenceService) and the port it serves on, or its layer's Gateway address with the Host
//! header (KServe) or path prefix (llm-d) the layer routes by.

use kube::api::ListParams;
use serde_json::Value;

use super::error::SmokeError;
use crate::cluster::kinds;
use crate::cluster::Client;
use crate::consts;
use crate::plan::PlannedModel;
use crate::serving::{self, GatewayRouting};

/// A pod that serves the model, and the port to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingPod {
    pub namespace: String,
    pub name: String,
    pub port: u16,
}

/// The label selector of a Service (`spec.selector`) or a Deployment (`spec.selector.matchLabels`).
pub fn selector(workload: &Value) -> Option<String> {
    let map = workload
        .pointer("/spec/selector/matchLabels")
        .or_else(|| workload.pointer("/spec/selector"))?
        .as_object()?;
    let parts: Vec<String> = map
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// Running, Ready and not being deleted.
pub fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
        && pod.pointer("/metadata/deletionTimestamp").is_none()
        && crate::cluster::health::condition(pod, "Ready").map(|c| c.0) == Some("True")
}

/// The pod port to forward: a Service's `targetPort` (a number, or a container port name), else
/// the serving container's first port, else the runtime's (`fallback`).
pub fn pod_port(pod: &Value, container: &str, service: Option<&Value>, fallback: u16) -> u16 {
    let containers: Vec<&Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let ports = |c: &Value| -> Vec<(String, u16)> {
        c.get("ports")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        let n = p.get("containerPort")?.as_u64()?;
                        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                        Some((name.to_string(), u16::try_from(n).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    if let Some(target) = service.and_then(|s| s.pointer("/spec/ports/0/targetPort")) {
        if let Some(n) = target.as_u64().and_then(|n| u16::try_from(n).ok()) {
            return n;
        }
        if let Some(name) = target.as_str() {
            if let Some(p) = containers
                .iter()
                .flat_map(|c| ports(c))
                .find(|(n, _)| n == name)
            {
                return p.1;
            }
        }
    }
    let serving = containers
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .or(containers.first());
    serving
        .and_then(|c| ports(c).first().map(|p| p.1))
        .unwrap_or(fallback)
}

/// The first ready pod (by name) behind the model's workload, or why there is none.
pub async fn ready_pod(
    client: &Client,
    m: &PlannedModel,
    reasons: &[String],
) -> Result<ServingPod, SmokeError> {
    let w = m.layer().workload(&m.name);
    let shown = format!("{} {}/{}", w.kind.kind, m.namespace, w.name);
    let api = w.kind.api(client, &m.namespace);
    let obj = client
        .retry(|| api.get_opt(&w.name))
        .await
        .map_err(|e| SmokeError::Api {
            what: format!("reading {shown}"),
            source: e,
        })?;
    let Some(obj) = obj else {
        return Err(SmokeError::NoReadyPod {
            workload: shown.clone(),
            reasons: std::iter::once(format!("{shown} does not exist"))
                .chain(reasons.iter().cloned())
                .collect(),
        });
    };
    let workload = kinds::json(&obj);
    let Some(sel) = selector(&workload) else {
        return Err(SmokeError::NoReadyPod {
            workload: shown,
            reasons: vec!["it has no pod selector".into()],
        });
    };
    let pods_api = kinds::POD.api(client, &m.namespace);
    let lp = ListParams::default().labels(&sel);
    let pods = client
        .retry(|| pods_api.list(&lp))
        .await
        .map_err(|e| SmokeError::Api {
            what: format!("listing the pods of {shown} ({sel})"),
            source: e,
        })?;
    let mut pods: Vec<Value> = pods.items.iter().map(kinds::json).collect();
    pods.sort_by(|a, b| {
        let n = |p: &Value| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        n(a).cmp(&n(b))
    });
    let service = (w.kind.kind == kinds::SERVICE.kind).then_some(&workload);
    match pods.iter().find(|p| pod_ready(p)) {
        Some(p) => Ok(ServingPod {
            namespace: m.namespace.clone(),
            name: p
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            port: pod_port(
                p,
                w.container,
                service,
                serving::runtime::of(&m.model).port(),
            ),
        }),
        None => {
            let mut why: Vec<String> = reasons.to_vec();
            for p in &pods {
                if let Some(r) = crate::cluster::health::pod_problem(p) {
                    if !why.contains(&r) {
                        why.push(r);
                    }
                }
            }
            if pods.is_empty() {
                why.push(format!("no pods match {sel}"));
            }
            Err(SmokeError::NoReadyPod {
                workload: shown,
                reasons: why,
            })
        }
    }
}

/// How to reach a model through its layer's Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRoute {
    /// `http://ADDRESS[:PORT][/PREFIX]`.
    pub base: String,
    /// The Host header to send (KServe routes by host).
    pub host: Option<String>,
}

/// The Gateway's address (`status.addresses[0]`) and HTTP listener port, as `http://addr[:port]`.
pub fn gateway_base(gw: &Value) -> Result<String, String> {
    let addr = gw
        .pointer("/status/addresses/0/value")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .ok_or("it has no address yet (status.addresses is empty: its load balancer is not provisioned; see `platform status`)")?;
    let listeners = gw
        .pointer("/spec/listeners")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let port = listeners
        .iter()
        .find(|l| l.get("protocol").and_then(Value::as_str) == Some("HTTP"))
        .and_then(|l| l.get("port").and_then(Value::as_u64))
        .ok_or("it has no HTTP listener")?;
    let host = if addr.contains(':') {
        format!("[{addr}]") // IPv6
    } else {
        addr.to_string()
    };
    Ok(if port == 80 {
        format!("http://{host}")
    } else {
        format!("http://{host}:{port}")
    })
}

/// The host KServe assigns an InferenceService: `<isvc>-<namespace>.<domain>`.
pub fn kserve_host(m: &PlannedModel, domain: &str) -> String {
    format!("{}-{}.{domain}", m.name, m.namespace)
}

/// The host of the ISVC's `status.url` (what KServe actually assigned), if it reports one.
pub fn status_host(isvc: &Value) -> Option<String> {
    let url = isvc.pointer("/status/url")?.as_str()?;
    let rest = url.split_once("://").map(|p| p.1).unwrap_or(url);
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| host.to_string())
}

/// The route through the model's layer Gateway. `domain` overrides the KServe ingress domain.
/// The base URL of Gateway `ns/name` (its address and HTTP listener); `missing` says why it may
/// not exist.
async fn gateway_base_of(
    client: &Client,
    ns: &str,
    name: &str,
    missing: String,
) -> Result<String, SmokeError> {
    let shown = format!("Gateway {ns}/{name}");
    let api = kinds::GATEWAY.api(client, ns);
    let gw = client
        .retry(|| api.get_opt(name))
        .await
        .map_err(|e| SmokeError::Api {
            what: format!("reading {shown}"),
            source: e,
        })?
        .ok_or_else(|| SmokeError::Gateway {
            gateway: shown.clone(),
            why: missing,
        })?;
    gateway_base(&kinds::json(&gw)).map_err(|why| SmokeError::Gateway {
        gateway: shown,
        why: why.to_string(),
    })
}

/// The models' stable route: the shared Gateway's address and `/models/<name>` (rewritten to `/`
/// by the model's HTTPRoute).
pub async fn stable_route(
    client: &Client,
    m: &PlannedModel,
    r: &crate::plan::PlannedRouting,
) -> Result<GatewayRoute, SmokeError> {
    let missing = format!(
        "not found: the models' routes are synced by the app {} (`platform up`)",
        crate::layout::ROUTING_APP
    );
    let base = gateway_base_of(client, &r.namespace, &r.gateway, missing).await?;
    Ok(GatewayRoute {
        base: format!("{base}{}", r.path(&m.name)),
        host: None,
    })
}

pub async fn gateway_route(
    client: &Client,
    m: &PlannedModel,
    domain: Option<&str>,
) -> Result<GatewayRoute, SmokeError> {
    let Some(routing) = m.layer().gateway_routing() else {
        return Err(SmokeError::NoGatewayOnLayer {
            model: m.name.clone(),
        });
    };
    let name = crate::layout::gateway_name(&m.serving_layer, m.spec.gateway_name.as_deref());
    let ns = &m.spec.namespace;
    let missing = format!(
        "not found: sync the layer's shared app {}-gateway (`platform up`)",
        m.serving_layer
    );
    let base = gateway_base_of(client, ns, &name, missing).await?;
    Ok(match routing {
        GatewayRouting::PathPrefix => GatewayRoute {
            // KServe's router HTTPRoute matches /<namespace>/<name> and rewrites it to /.
            base: format!("{base}/{}/{}", m.namespace, m.name),
            host: None,
        },
        GatewayRouting::Host => {
            let host = match domain {
                Some(d) => kserve_host(m, d),
                None => {
                    let api = kinds::INFERENCE_SERVICE.api(client, &m.namespace);
                    let isvc = client.retry(|| api.get_opt(&m.name)).await.map_err(|e| {
                        SmokeError::Api {
                            what: format!("reading InferenceService {}/{}", m.namespace, m.name),
                            source: e,
                        }
                    })?;
                    isvc.and_then(|o| status_host(&kinds::json(&o)))
                        .unwrap_or_else(|| kserve_host(m, consts::KSERVE_DEFAULT_DOMAIN))
                }
            };
            GatewayRoute {
                base,
                host: Some(host),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_of_services_and_deployments() {
        assert_eq!(
            selector(&json!({"spec": {"selector": {"a": "1", "b": "2"}}})).as_deref(),
            Some("a=1,b=2")
        );
        assert_eq!(
            selector(&json!({"spec": {"selector": {"matchLabels": {"app": "x"}}}})).as_deref(),
            Some("app=x")
        );
        assert_eq!(selector(&json!({"spec": {}})), None);
    }

    #[test]
    fn the_port_follows_the_service_target_port_else_the_serving_container() {
        let pod = json!({"spec": {"containers": [
            {"name": "sidecar", "ports": [{"containerPort": 9090}]},
            {"name": "vllm", "ports": [{"name": "http", "containerPort": 8001}]},
        ]}});
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": "http"}]}});
        assert_eq!(pod_port(&pod, "vllm", Some(&svc), 8000), 8001);
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 7000}]}});
        assert_eq!(pod_port(&pod, "vllm", Some(&svc), 8000), 7000);
        assert_eq!(pod_port(&pod, "vllm", None, 8000), 8001);
        assert_eq!(pod_port(&pod, "main", None, 8000), 9090);
        assert_eq!(
            pod_port(
                &json!({"spec": {"containers": [{"name": "main"}]}}),
                "main",
                None,
                8000
            ),
            8000
        );
    }

    #[test]
    fn gateway_addresses_and_ports() {
        let gw = |addr: &str, port: u16| {
            json!({"spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": port}]},
                   "status": {"addresses": [{"type": "IPAddress", "value": addr}]}})
        };
        assert_eq!(
            gateway_base(&gw("10.0.0.7", 80)).unwrap(),
            "http://10.0.0.7"
        );
        assert_eq!(
            gateway_base(&gw("lb.example", 8080)).unwrap(),
            "http://lb.example:8080"
        );
        assert_eq!(
            gateway_base(&gw("fd00::1", 80)).unwrap(),
            "http://[fd00::1]"
        );
        let none = json!({"spec": {"listeners": [{"protocol": "HTTP", "port": 80}]}, "status": {}});
        assert!(gateway_base(&none).unwrap_err().contains("no address yet"));
    }

    #[test]
    fn the_kserve_host_comes_from_the_status_url() {
        assert_eq!(
            status_host(&json!({"status": {"url": "http://qwen-cpu-kserve.example.com"}}))
                .as_deref(),
            Some("qwen-cpu-kserve.example.com")
        );
        assert_eq!(
            status_host(&json!({"status": {"url": "https://a.b.c/x"}})).as_deref(),
            Some("a.b.c")
        );
        assert_eq!(status_host(&json!({"status": {}})), None);
    }
}
