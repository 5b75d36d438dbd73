//! `autoscaling:` of a model (min/max replicas, the metric and its per-pod target, HPA or KEDA) and
//! of the environment (the Prometheus server KEDA's Prometheus trigger asks). The checks against
//! the serving layer and the catalog live in `plan/checks.rs`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A model's autoscaling. `replicas` is then left out (or equals `min`): the autoscaler owns the
/// replica count between `min` and `max`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    /// Fewest replicas; 0 (scale to zero when idle) needs `class: keda`.
    #[serde(default = "one")]
    pub min: u32,
    /// Most replicas (at least 1 and at least `min`).
    pub max: u32,
    /// What is measured (default `cpu`).
    #[serde(default)]
    pub metric: ScaleMetric,
    /// The per-pod value the autoscaler aims at: a utilisation percentage of the requests for
    /// cpu and memory, else a count per pod (requests in flight, requests per second). Default:
    /// [`ScaleMetric::default_target`].
    #[serde(default)]
    pub target: Option<u32>,
    /// Which autoscaler acts (default `hpa`).
    #[serde(default)]
    pub class: AutoscalerClass,
}

fn one() -> u32 {
    1
}

impl Autoscaling {
    /// The per-pod target: the configured one, else the metric's default.
    pub fn target(&self) -> u32 {
        self.target.unwrap_or_else(|| self.metric.default_target())
    }
}

/// The autoscaler: Kubernetes' HorizontalPodAutoscaler, or KEDA (a ScaledObject; can scale to 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoscalerClass {
    #[default]
    Hpa,
    Keda,
}

impl AutoscalerClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoscalerClass::Hpa => "hpa",
            AutoscalerClass::Keda => "keda",
        }
    }
}

impl fmt::Display for AutoscalerClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the autoscaler measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleMetric {
    /// CPU utilisation, percent of the pod's cpu request.
    #[default]
    Cpu,
    /// Memory utilisation, percent of the pod's memory request.
    Memory,
    /// Requests in flight per pod (vLLM: running + waiting), from Prometheus.
    Concurrency,
    /// Requests per second per pod (vLLM: rate of finished requests), from Prometheus.
    Rps,
    /// Requests vLLM is running per pod (`vllm:num_requests_running`), from Prometheus.
    RequestsRunning,
}

impl ScaleMetric {
    pub const ALL: [ScaleMetric; 5] = [
        ScaleMetric::Cpu,
        ScaleMetric::Memory,
        ScaleMetric::Concurrency,
        ScaleMetric::Rps,
        ScaleMetric::RequestsRunning,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScaleMetric::Cpu => "cpu",
            ScaleMetric::Memory => "memory",
            ScaleMetric::Concurrency => "concurrency",
            ScaleMetric::Rps => "rps",
            ScaleMetric::RequestsRunning => "requests-running",
        }
    }

    /// A resource metric (the HPA reads it from the metrics API) rather than a Prometheus query.
    pub fn is_resource(self) -> bool {
        matches!(self, ScaleMetric::Cpu | ScaleMetric::Memory)
    }

    /// The target when the config gives none: 80% for cpu and memory, 4 requests in flight or
    /// running per pod, 10 requests per second per pod.
    pub fn default_target(self) -> u32 {
        match self {
            ScaleMetric::Cpu | ScaleMetric::Memory => 80,
            ScaleMetric::Concurrency | ScaleMetric::RequestsRunning => 4,
            ScaleMetric::Rps => 10,
        }
    }

    /// The PromQL query of a Prometheus metric for the model served as `served_name` in
    /// `namespace` (vLLM labels its metrics `model_name`; a Prometheus scraping pods adds
    /// `namespace`). Summed over the model's pods: KEDA divides by the replica count (its
    /// Prometheus trigger's default AverageValue), so `target` is per pod. None for cpu/memory.
    pub fn prometheus_query(self, namespace: &str, served_name: &str) -> Option<String> {
        let sel = format!(
            "{{namespace=\"{}\",model_name=\"{}\"}}",
            promql_escape(namespace),
            promql_escape(served_name)
        );
        match self {
            ScaleMetric::Cpu | ScaleMetric::Memory => None,
            ScaleMetric::RequestsRunning => Some(format!("sum(vllm:num_requests_running{sel})")),
            ScaleMetric::Concurrency => Some(format!(
                "sum(vllm:num_requests_running{sel}) + sum(vllm:num_requests_waiting{sel})"
            )),
            ScaleMetric::Rps => Some(format!("sum(rate(vllm:request_success_total{sel}[1m]))")),
        }
    }
}

/// A PromQL string literal's content: backslash and double quote escaped.
fn promql_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl fmt::Display for ScaleMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `autoscaling:` of the environment: what every model's KEDA autoscaling shares.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalingSettings {
    /// The Prometheus server KEDA's Prometheus trigger queries (`http://prometheus.monitoring:9090`):
    /// needed by a model whose metric is concurrency, rps or requests-running.
    #[serde(default)]
    pub prometheus: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_per_model_and_escaped() {
        assert_eq!(
            ScaleMetric::RequestsRunning.prometheus_query("serving", "qwen"),
            Some(
                "sum(vllm:num_requests_running{namespace=\"serving\",model_name=\"qwen\"})".into()
            )
        );
        assert!(ScaleMetric::Cpu.prometheus_query("a", "b").is_none());
        let q = ScaleMetric::Rps.prometheus_query("a", "we\"ird").unwrap();
        assert!(q.contains("model_name=\"we\\\"ird\""), "{q}");
    }

    #[test]
    fn defaults() {
        let a: Autoscaling = serde_yaml::from_str("{max: 3}").unwrap();
        assert_eq!(
            (a.min, a.metric, a.class, a.target()),
            (1, ScaleMetric::Cpu, AutoscalerClass::Hpa, 80)
        );
        let a: Autoscaling =
            serde_yaml::from_str("{min: 0, max: 2, metric: requests-running, class: keda}")
                .unwrap();
        assert_eq!((a.min, a.target()), (0, 4));
        assert!(serde_yaml::from_str::<Autoscaling>("{max: 2, metric: gpu}").is_err());
    }
}
