//! Checks of a model's `autoscaling:` and `priority:` against its serving layer, the catalog (KEDA
//! and the PriorityClasses are catalog groups) and the environment's Prometheus. Each names the
//! field and the fix, like `plan/checks.rs`.

use std::path::Path;

use crate::catalog::resolve::ResolvedGroup;
use crate::catalog::Catalog;
use crate::config::{AutoscalerClass, Autoscaling, EnvConfig, Model, Resources};
use crate::diag::{did_you_mean, Diagnostic};
use crate::serving;

/// The catalog group that installs KEDA.
pub const KEDA_GROUP: &str = "keda";

/// The environment's `autoscaling:` settings: the Prometheus address is an http(s) URL without
/// credentials (it is rendered into git).
pub fn check_settings(cfg: &EnvConfig, file: &Path, out: &mut Vec<Diagnostic>) {
    let Some(url) = &cfg.autoscaling.prometheus else {
        return;
    };
    let err = |msg: String| {
        Diagnostic::error(msg)
            .file(file)
            .field("autoscaling.prometheus")
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        out.push(
            err(format!(
                "`{}` is not an http(s) URL of a Prometheus server",
                crate::text::ellipsize(url, 80).escape_debug()
            ))
            .help("e.g. `prometheus: http://prometheus-server.monitoring.svc:9090`"),
        );
    } else if let Some(what) = crate::url::credential_in(url) {
        out.push(
            err(format!(
                "carries a credential ({what}): it would be rendered into clusters/ and pushed"
            ))
            .help("give KEDA a TriggerAuthentication instead; write the bare server URL here")
            .secret_line(),
        );
    }
}

/// One model's autoscaling and priority.
pub struct ScalingCheck<'a> {
    pub m: &'a Model,
    pub at: &'a str,
    pub file: &'a Path,
    pub catalog: &'a Catalog,
    pub groups: &'a [ResolvedGroup],
    pub prometheus: Option<&'a str>,
}

impl ScalingCheck<'_> {
    fn err(&self, field: &str, msg: String) -> Diagnostic {
        Diagnostic::error(msg)
            .file(self.file)
            .field(format!("{}{field}", self.at))
    }

    /// Whether catalog group `name` is on; when it is off, what turns it on.
    fn group_off(&self, name: &str) -> Option<String> {
        let g = self.groups.iter().find(|g| g.name == name)?;
        if g.enabled {
            return None;
        }
        Some(
            self.catalog
                .group(name)
                .and_then(|cg| cg.gate.as_ref())
                .and_then(|gt| gt.feature.clone())
                .map(|f| format!("set `features.{f}: true` in config.yaml"))
                .unwrap_or_else(|| format!("enable catalog group `{name}`")),
        )
    }

    /// `autoscaling:` (with `resources`, what the pod requests) against the layer, KEDA and
    /// Prometheus.
    pub fn check_autoscaling(&self, resources: &Resources, out: &mut Vec<Diagnostic>) {
        let Some(a) = &self.m.autoscaling else {
            return;
        };
        let layer = serving::layer(self.m.layer);
        if !layer.supports_autoscaling() {
            out.push(
                self.err(
                    ".autoscaling",
                    format!(
                        "autoscaling is not rendered on {}: its LLMInferenceService scales through spec.scaling (the Workload Variant Autoscaler), which platform does not install",
                        layer.name()
                    ),
                )
                .help("remove `autoscaling` and set `replicas`, or serve the model on kserve or raw-vllm"),
            );
            return;
        }
        self.check_range(a, out);
        self.check_class(a, out);
        self.check_metric(a, resources, out);
    }

    /// max ≥ min ≥ 0, max ≥ 1, `replicas` not set to something else.
    fn check_range(&self, a: &Autoscaling, out: &mut Vec<Diagnostic>) {
        if a.max == 0 {
            out.push(
                self.err(".autoscaling.max", "is 0: the model could never run".into())
                    .help("set `max` to the most replicas the model may have (at least 1)"),
            );
        } else if a.max < a.min {
            out.push(
                self.err(
                    ".autoscaling.max",
                    format!("{} is below min {}", a.max, a.min),
                )
                .help("max is the most replicas, min the fewest: set max ≥ min"),
            );
        }
        if a.max > i32::MAX as u32 {
            out.push(self.err(
                ".autoscaling.max",
                format!("{} is more than Kubernetes accepts ({})", a.max, i32::MAX),
            ));
        }
        // `replicas` defaults to 1: any other value than min means the config says two things.
        if self.m.replicas != 1 && self.m.replicas != a.min {
            out.push(
                self.err(
                    ".replicas",
                    format!(
                        "is {} but the model autoscales between {} and {}: the autoscaler owns the replica count",
                        self.m.replicas, a.min, a.max
                    ),
                )
                .help("remove `replicas` (the model starts at autoscaling.min, at least 1)"),
            );
        }
    }

    /// HPA cannot scale to 0; KEDA must be installed (its catalog group on).
    fn check_class(&self, a: &Autoscaling, out: &mut Vec<Diagnostic>) {
        match a.class {
            AutoscalerClass::Hpa if a.min == 0 => out.push(
                self.err(
                    ".autoscaling.min",
                    "is 0, but the HPA cannot scale to 0 (KServe raises its minReplicas to 1; an HPA's minReplicas is at least 1)".into(),
                )
                .help("set `class: keda` to scale to zero when idle, or `min: 1`"),
            ),
            AutoscalerClass::Keda => {
                if let Some(fix) = self.group_off(KEDA_GROUP) {
                    out.push(
                        self.err(
                            ".autoscaling.class",
                            format!("is keda, but KEDA is not installed: catalog group `{KEDA_GROUP}` is off"),
                        )
                        .help(format!("{fix} (group `{KEDA_GROUP}` installs KEDA), or use `class: hpa`")),
                    );
                }
                if a.min == 0 && !a.metric.is_resource() {
                    out.push(
                        Diagnostic::warning(format!(
                            "model `{}` scales to zero: with no pod, vLLM exports no {} metric, so KEDA sees 0 and does not scale it up by itself",
                            self.m.name, a.metric
                        ))
                        .file(self.file)
                        .field(format!("{}.autoscaling.min", self.at))
                        .help("wake it with `platform resume` (it stays up at least KEDA's cooldown, 300 s), or set `min: 1`"),
                    );
                }
            }
            AutoscalerClass::Hpa => {}
        }
    }

    /// The metric: Prometheus metrics need KEDA and the server address; cpu/memory utilisation
    /// needs the request it is a percentage of; KEDA's cpu/memory triggers cannot scale to 0.
    fn check_metric(&self, a: &Autoscaling, resources: &Resources, out: &mut Vec<Diagnostic>) {
        let metric = a.metric;
        if a.target == Some(0) {
            out.push(
                self.err(
                    ".autoscaling.target",
                    "is 0: every load would be above it".into(),
                )
                .help(format!(
                    "the per-pod value to aim at, e.g. {} for {metric}",
                    metric.default_target()
                )),
            );
        }
        if metric.is_resource() {
            if !resources.requests.contains_key(metric.as_str()) {
                out.push(
                    self.err(
                        ".autoscaling.metric",
                        format!("is {metric}, a percentage of the pod's {metric} request, but the pod requests no {metric}"),
                    )
                    .help(format!("set `resources.requests.{metric}` (or use a preset that does)")),
                );
            }
            if a.class == AutoscalerClass::Keda && a.min == 0 {
                out.push(
                    self.err(
                        ".autoscaling.min",
                        format!("is 0, but KEDA's {metric} trigger cannot scale to 0 (nothing measures a pod that is not there)"),
                    )
                    .help("set `min: 1`, or scale on a Prometheus metric (requests-running, concurrency, rps)"),
                );
            }
            return;
        }
        if a.class == AutoscalerClass::Hpa {
            out.push(
                self.err(
                    ".autoscaling.metric",
                    format!("{metric} needs KEDA: the HPA scales on cpu and memory only here"),
                )
                .help("set `class: keda` (KEDA's Prometheus trigger reads vLLM's metrics), or `metric: cpu`"),
            );
        } else if self.prometheus.is_none() {
            out.push(
                self.err(
                    ".autoscaling.metric",
                    format!("{metric} is read from Prometheus, but the environment names no Prometheus server"),
                )
                .help("add `autoscaling: {prometheus: http://prometheus-server.monitoring.svc:9090}` at the top level of config.yaml"),
            );
        }
    }

    /// `priority:` names a PriorityClass the catalog ships, whose group is on.
    pub fn check_priority(&self, out: &mut Vec<Diagnostic>) {
        let Some(name) = &self.m.priority else {
            return;
        };
        let shipped = self.catalog.priority_classes();
        match shipped.iter().find(|(n, _)| n == name) {
            None => {
                let names: Vec<&str> = shipped.iter().map(|(n, _)| *n).collect();
                let listed = if names.is_empty() {
                    "the catalog ships none (an app with `source: {objects: FILE}` holding PriorityClasses)".to_string()
                } else {
                    format!("the catalog ships: {}", names.join(", "))
                };
                let d = self.err(".priority", format!("unknown PriorityClass `{name}`"));
                out.push(match did_you_mean(name, names.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`? {listed}")),
                    None => d.help(listed),
                });
            }
            Some((_, group)) => {
                if let Some(fix) = self.group_off(group) {
                    out.push(
                        self.err(
                            ".priority",
                            format!("PriorityClass `{name}` comes from catalog group `{group}`, which is off: the API server rejects pods naming a PriorityClass that does not exist"),
                        )
                        .help(fix),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::catalog::resolve::resolve_groups;

    /// The diagnostics (`field: message | help`) of a config whose models are `models` (YAML list
    /// items) and whose top level adds `top`, against the embedded catalog.
    fn lint(top: &str, models: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let names: BTreeSet<String> = crate::render::engine::EMBEDDED
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        let catalog = Catalog::load(dir.path(), &names).unwrap();
        let text = format!(
            "cluster: {{name: t}}\nrepoURL: https://example.com/g.git\nrepoBranch: main\n{top}\nmodels:\n{models}"
        );
        let cfg: EnvConfig = serde_yaml::from_str(&text).unwrap();
        let groups = resolve_groups(&cfg, "t", &catalog);
        crate::plan::checks::validate(&cfg, Path::new("c.yaml"), &catalog, &groups)
            .into_iter()
            .map(|d| {
                format!(
                    "{}: {} | {}",
                    d.field.unwrap_or_default(),
                    d.message,
                    d.help.unwrap_or_default()
                )
            })
            .collect()
    }

    const CPU: &str =
        "  - name: m\n    layer: raw-vllm\n    source: hf://a/b\n    preset: vllm-cpu\n";
    const KSERVE_CPU: &str =
        "  - name: k\n    layer: kserve\n    source: hf://a/b\n    preset: vllm-cpu\n";

    fn has(ds: &[String], field: &str, words: &[&str]) {
        assert!(
            ds.iter()
                .any(|d| d.starts_with(&format!("{field}:")) && words.iter().all(|w| d.contains(w))),
            "no {field} with {words:?} in {ds:#?}"
        );
    }

    #[test]
    fn a_valid_hpa_and_keda_model_lint_clean() {
        let ds = lint(
            "features: {keda: true, priority-classes: true}\nautoscaling: {prometheus: http://prom:9090}",
            &format!("{CPU}    autoscaling: {{min: 1, max: 3}}\n    priority: platform-cpu-serving\n{KSERVE_CPU}    autoscaling: {{min: 1, max: 3, class: keda, metric: rps}}\n"),
        );
        assert!(ds.is_empty(), "{ds:#?}");
    }

    #[test]
    fn hpa_cannot_scale_to_zero_nor_read_prometheus() {
        let ds = lint("", &format!("{CPU}    autoscaling: {{min: 0, max: 2}}\n"));
        has(
            &ds,
            "models[m].autoscaling.min",
            &["HPA cannot scale to 0", "class: keda"],
        );
        for metric in ["concurrency", "rps", "requests-running"] {
            let ds = lint(
                "",
                &format!("{CPU}    autoscaling: {{max: 2, metric: {metric}}}\n"),
            );
            has(
                &ds,
                "models[m].autoscaling.metric",
                &["needs KEDA", "class: keda"],
            );
        }
    }

    #[test]
    fn the_range_must_make_sense_and_replicas_not_contradict_it() {
        let ds = lint("", &format!("{CPU}    autoscaling: {{min: 3, max: 2}}\n"));
        has(&ds, "models[m].autoscaling.max", &["2 is below min 3"]);
        let ds = lint(
            "",
            &format!("{CPU}    autoscaling: {{min: 0, max: 0, class: keda}}\n"),
        );
        has(&ds, "models[m].autoscaling.max", &["is 0"]);
        let ds = lint(
            "",
            &format!("{CPU}    replicas: 3\n    autoscaling: {{min: 1, max: 4}}\n"),
        );
        has(
            &ds,
            "models[m].replicas",
            &["autoscales between 1 and 4", "remove `replicas`"],
        );
        // replicas equal to min says the same thing twice: fine.
        let ds = lint(
            "",
            &format!("{CPU}    replicas: 2\n    autoscaling: {{min: 2, max: 4}}\n"),
        );
        assert!(ds.is_empty(), "{ds:#?}");
        let ds = lint(
            "",
            &format!("{CPU}    autoscaling: {{max: 4, target: 0}}\n"),
        );
        has(&ds, "models[m].autoscaling.target", &["is 0"]);
    }

    #[test]
    fn keda_needs_its_group_and_prometheus() {
        let ds = lint(
            "",
            &format!("{CPU}    autoscaling: {{max: 2, class: keda, metric: requests-running}}\n"),
        );
        has(
            &ds,
            "models[m].autoscaling.class",
            &["KEDA is not installed", "features.keda: true"],
        );
        has(
            &ds,
            "models[m].autoscaling.metric",
            &["names no Prometheus server", "autoscaling: {prometheus:"],
        );
        // KEDA's cpu trigger cannot wake a model from zero.
        let ds = lint(
            "features: {keda: true}",
            &format!("{CPU}    autoscaling: {{min: 0, max: 2, class: keda}}\n"),
        );
        has(
            &ds,
            "models[m].autoscaling.min",
            &["cannot scale to 0", "min: 1"],
        );
        // A Prometheus address with a credential, or not a URL.
        let ds = lint("autoscaling: {prometheus: http://u:p@prom:9090}", "");
        has(&ds, "autoscaling.prometheus", &["carries a credential"]);
        let ds = lint("autoscaling: {prometheus: prom:9090}", "");
        has(&ds, "autoscaling.prometheus", &["is not an http(s) URL"]);
    }

    #[test]
    fn utilisation_needs_a_request_and_llmd_refuses_autoscaling() {
        let ds = lint(
            "",
            &format!("{CPU}    resources: {{limits: {{cpu: 2, memory: 8Gi}}}}\n    autoscaling: {{max: 2, metric: memory}}\n"),
        );
        has(
            &ds,
            "models[m].autoscaling.metric",
            &["requests no memory", "resources.requests.memory"],
        );
        let ds = lint(
            "features: {llm-d: true}",
            "  - name: d\n    layer: llm-d\n    source: hf://a/b\n    preset: vllm-gpu\n    gpus: 1\n    autoscaling: {max: 2}\n",
        );
        has(
            &ds,
            "models[d].autoscaling",
            &["not rendered on llm-d", "spec.scaling"],
        );
    }

    #[test]
    fn priority_names_a_shipped_class_whose_group_is_on() {
        let ds = lint(
            "features: {priority-classes: true}",
            &format!("{CPU}    priority: platform-gpu-servin\n"),
        );
        has(
            &ds,
            "models[m].priority",
            &[
                "unknown PriorityClass `platform-gpu-servin`",
                "did you mean `platform-gpu-serving`",
                "platform-cpu-serving, platform-batch",
            ],
        );
        let ds = lint("", &format!("{CPU}    priority: platform-batch\n"));
        has(
            &ds,
            "models[m].priority",
            &[
                "group `priority-classes`, which is off",
                "features.priority-classes: true",
            ],
        );
    }
}
