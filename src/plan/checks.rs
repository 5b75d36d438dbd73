//! Checks of the config's models against the catalog, run when the plan is built: each one
//! encodes a gotcha of the serving layers (see DESIGN.md), names the field and says how to fix it.
//! The config's own checks (`config::validate`) run first, model by model.

use std::collections::BTreeMap;
use std::path::Path;

use crate::catalog::resolve::ResolvedGroup;
use crate::catalog::{Catalog, Device, Preset};
use crate::config::validate::{check_model, check_resources, model_path, settings};
use crate::config::{EnvConfig, Model, Quantity, Resources, Strategy};
use crate::diag::{did_you_mean, Diagnostic};
use crate::serving::{self, runtime::CheckInput};

/// Every semantic problem of `cfg` (errors and warnings). `groups` are the resolved catalog groups.
pub fn validate(
    cfg: &EnvConfig,
    file: &Path,
    catalog: &Catalog,
    groups: &[ResolvedGroup],
) -> Vec<Diagnostic> {
    let mut out = settings(cfg, file);
    super::scaling::check_settings(cfg, file, &mut out);
    let mut names = BTreeMap::new();
    for (i, m) in cfg.models.iter().enumerate() {
        let at = model_path(i, m);
        let mc = ModelCheck { m, at: &at, file };
        if let Some(first) = names.insert(m.name.as_str(), i) {
            out.push(mc.err("", format!("duplicate model name `{}` (also models[{first}])", m.name))
                .pointer(format!("models[{i}].name"))
                .help("model names are unique: they name the Argo CD Application and the serving objects"));
        }
        check_model(m, &at, file, &catalog.argocd.namespace, &mut out);
        check_on_layer(cfg, m, &at, file, catalog, groups, &mut out);
        if m.move_share.is_some() && m.move_to.is_none() {
            out.push(
                mc.err(
                    ".moveShare",
                    "moveShare without moveTo: no move to share the route with".into(),
                )
                .help("remove moveShare (`platform move` writes both)"),
            );
        }
        if let Some(to) = m.move_to {
            mc.check_move(to, &mut out);
            // Declared on both layers for the move: the gotchas of the destination apply too.
            let mut there = m.clone();
            there.layer = to;
            there.move_to = None;
            check_on_layer(cfg, &there, &at, file, catalog, groups, &mut out);
        }
    }
    // A moving model is checked on both layers: say what both find once.
    let mut seen: Vec<Diagnostic> = Vec::new();
    out.retain(|d| {
        let new = !seen.contains(d);
        if new {
            seen.push(d.clone());
        }
        new
    });
    out
}

/// The checks of model `m` on its `layer` (catalog, preset, runtime, source, scaling).
fn check_on_layer(
    cfg: &EnvConfig,
    m: &Model,
    at: &str,
    file: &Path,
    catalog: &Catalog,
    groups: &[ResolvedGroup],
    out: &mut Vec<Diagnostic>,
) {
    let mc = ModelCheck { m, at, file };
    mc.check_layer(catalog, groups, out);
    let Some(preset) = mc.preset(catalog, out) else {
        return;
    };
    // What is rendered: the model's resources, or the preset's when it sets none.
    let resources = preset.resources_for(&m.resources);
    check_resources(resources, &format!("{at}.resources"), file, out);
    mc.check_gpus(preset, out);
    mc.check_engine(catalog, preset, out);
    mc.check_runtime(preset, resources, out);
    mc.check_source(out);
    mc.check_kserve_cpu_limit(resources, out);
    mc.check_strategy(preset, out);
    mc.check_canary(out);
    mc.check_prefill(preset, out);
    mc.check_weights(out);
    let sc = super::scaling::ScalingCheck {
        m,
        at,
        file,
        catalog,
        groups,
        prometheus: cfg.autoscaling.prometheus.as_deref(),
    };
    sc.check_autoscaling(resources, out);
    sc.check_priority(out);
}

/// The vLLM arguments a model runs with: the preset's, then the model's.
pub fn all_args<'a>(preset: &'a Preset, m: &'a Model) -> Vec<&'a String> {
    preset.args.iter().chain(m.args.iter()).collect()
}

/// One model under check: diagnostics name `at` + the field.
struct ModelCheck<'a> {
    m: &'a Model,
    at: &'a str,
    file: &'a Path,
}

impl ModelCheck<'_> {
    /// `moveTo:`: another layer, both layers routable, two namespaces (the two declarations'
    /// objects share names).
    fn check_move(&self, to: crate::config::ServingLayer, out: &mut Vec<Diagnostic>) {
        let m = self.m;
        if to == m.layer {
            out.push(
                self.err(".moveTo", format!("the model is on `{to}` already"))
                    .help("remove moveTo (or run `platform move` to another layer)"),
            );
            return;
        }
        for l in [m.layer, to] {
            if let Some(why) = serving::layer(l).move_refusal() {
                out.push(
                    self.err(
                        ".moveTo",
                        format!("a model cannot move to or from `{l}`: {why}"),
                    )
                    .help("remove moveTo; serve the model on llm-d as a separate model"),
                );
            }
        }
        if m.move_share.is_some_and(|s| s > 100) {
            out.push(
                self.err(
                    ".moveShare",
                    "a share of the route is a percentage, 0 to 100".into(),
                )
                .help("`platform move` writes it; remove it or write 100"),
            );
        }
        if let Some(ns) = &m.namespace {
            out.push(
                self.err(".moveTo", format!("the model sets `namespace: {ns}`: on both layers its objects would share names there"))
                    .help("remove namespace: (each layer's own namespace is used) or remove moveTo"),
            );
        }
    }

    fn err(&self, field: &str, msg: String) -> Diagnostic {
        Diagnostic::error(msg)
            .file(self.file)
            .field(format!("{}{field}", self.at))
    }

    /// The serving layer exists in the catalog and its group is on (off: a warning, since a model
    /// can be prepared before its layer is switched on).
    fn check_layer(&self, catalog: &Catalog, groups: &[ResolvedGroup], out: &mut Vec<Diagnostic>) {
        let m = self.m;
        let (at, file) = (self.at, self.file);
        let err = |field: &str, msg: String| self.err(field, msg);
        // Serving layer exists in the catalog and its group is on.
        let layer = m.layer.as_str();
        match catalog.serving.get(layer) {
            None => out.push(
                err(
                    ".layer",
                    format!("the catalog has no serving layer `{layer}`"),
                )
                .help(format!(
                    "add servingLayers.{layer} to {}",
                    catalog.files.serving.display()
                )),
            ),
            Some(spec) => {
                if let Some(g) = groups.iter().find(|g| g.name == spec.group) {
                    if !g.enabled {
                        let gate = catalog
                            .group(&g.name)
                            .and_then(|cg| cg.gate.as_ref())
                            .and_then(|gt| gt.feature.clone())
                            .map(|f| format!("features.{f}: true"))
                            .unwrap_or_else(|| format!("enable group {}", g.name));
                        // A warning, not an error: a model can be prepared before its layer is switched on.
                        out.push(
                            Diagnostic::warning(format!(
                            "model `{}` is not rendered: its layer {layer} is off (group `{}`: {})",
                            m.name, g.name, g.reason
                        ))
                            .file(file)
                            .field(format!("{at}.layer"))
                            .help(format!(
                                "set `{gate}` to serve it, or move the model to another layer"
                            )),
                        );
                    }
                }
            }
        }
    }

    /// The model's preset; unknown: an error with the closest name, and None (nothing else can
    /// be checked).
    fn preset<'c>(&self, catalog: &'c Catalog, out: &mut Vec<Diagnostic>) -> Option<&'c Preset> {
        let m = self.m;
        let err = |field: &str, msg: String| self.err(field, msg);
        let preset = match catalog.presets.get(&m.preset) {
            Some(p) => p,
            None => {
                let d = err(".preset", format!("unknown preset `{}`", m.preset));
                out.push(
                    match did_you_mean(&m.preset, catalog.presets.keys().map(String::as_str)) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(format!(
                            "presets in {}: {}",
                            catalog.files.presets.display(),
                            catalog
                                .presets
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    },
                );
                return None;
            }
        };
        Some(preset)
    }

    /// GPU count against the preset's device, and tensor parallel size = GPUs.
    fn check_gpus(&self, preset: &Preset, out: &mut Vec<Diagnostic>) {
        let m = self.m;
        let err = |field: &str, msg: String| self.err(field, msg);
        // GPUs: count, tensor parallel, device.
        match preset.device {
            Device::Gpu if m.gpus == 0 => out.push(
                err(
                    ".gpus",
                    format!("preset `{}` runs on GPUs but gpus is 0", m.preset),
                )
                .help("set `gpus: N` (GPUs per pod) or use a CPU preset"),
            ),
            Device::Cpu if m.gpus > 0 => out.push(
                err(
                    ".gpus",
                    format!(
                        "preset `{}` is a CPU preset but gpus is {}",
                        m.preset, m.gpus
                    ),
                )
                .help("set `gpus: 0` or use a GPU preset"),
            ),
            _ => {}
        }
        if let Some(tp) = m.tensor_parallel_size {
            if tp != m.gpus {
                out.push(
                err(
                    ".tensorParallelSize",
                    format!("is {tp} but the model has {} GPU(s) per pod", m.gpus),
                )
                .help("tensor parallel size must equal the GPU count: set both to the same number"),
            );
            }
        }
    }

    /// The runtime is served on the model's layer, and the preset runs that runtime.
    fn check_engine(&self, catalog: &Catalog, preset: &Preset, out: &mut Vec<Diagnostic>) {
        let m = self.m;
        let runtime = serving::runtime::of(m);
        if !runtime.serves_on(m.layer) {
            out.push(
                self.err(
                    ".runtime",
                    format!(
                        "{} is served on KServe only; this model is on {}",
                        m.runtime, m.layer
                    ),
                )
                .help("set `layer: kserve`, or `runtime: vllm` to stay on this layer"),
            );
        }
        if preset.runtime != m.runtime {
            let fitting: Vec<&str> = catalog
                .presets
                .iter()
                .filter(|(_, p)| p.runtime == m.runtime)
                .map(|(n, _)| n.as_str())
                .collect();
            out.push(
                self.err(
                    ".preset",
                    format!(
                        "preset `{}` runs {}, but the model's runtime is {}",
                        m.preset, preset.runtime, m.runtime
                    ),
                )
                .help(if fitting.is_empty() {
                    format!(
                        "add a preset with `runtime: {}` to {}",
                        m.runtime,
                        catalog.files.presets.display()
                    )
                } else {
                    format!("use a {} preset: {}", m.runtime, fitting.join(", "))
                }),
            );
        }
    }

    /// How the weights reach the pods works on the model's layer: KServe's storage initializer
    /// and modelcar exist only there (and `oci://` on llm-d), an image cannot be staged, and
    /// modelcar overrides part of the pod's hardening.
    fn check_source(&self, out: &mut Vec<Diagnostic>) {
        use crate::config::source::Source;
        let m = self.m;
        let (at, file) = (self.at, self.file);
        let parsed = m.source.parsed().ok();
        if m.storage.staged == Some(true)
            && matches!(parsed, Some(Source::Oci { .. } | Source::Pvc { .. }))
        {
            out.push(
                self.err(
                    ".storage.staged",
                    format!(
                        "`{}` cannot be staged: its weights are already in an image or on a volume",
                        m.source
                    ),
                )
                .help("remove `storage.staged`"),
            );
            return;
        }
        let serving::Weights::Storage(uri) = serving::weights::of(m) else {
            return;
        };
        let scheme = parsed.map(Source::scheme).unwrap_or("hf");
        if !serving::layer(m.layer).fetches_storage_uri(scheme) {
            out.push(self.err(".source", format!("{} cannot fetch `{uri}` itself", m.layer))
                .help(if scheme == "s3" {
                    "pre-stage it (`storage.staged: true`, then `platform stage-model`), or serve the model on kserve"
                } else {
                    "serve the model on kserve (KServe's storage initializer or modelcar fetches it)"
                }));
        }
        if scheme == "oci" {
            out.push(Diagnostic::warning(
                "modelcar: KServe overrides the serving container's runAsUser (its uidModelcar, 1010 by default) and turns on shareProcessNamespace; the injected modelcar containers drop no capabilities",
            ).file(file).field(format!("{at}.source"))
            .help("expected with oci:// weights; a namespace enforcing Pod Security `restricted` rejects the pod (use pvc:// or s3:// weights there)"));
        }
    }

    /// What the model's runtime needs (vLLM: no OMP `all` binding; on CPU at least 2 cores,
    /// --enforce-eager, --dtype=float32), asked of the runtime's descriptor.
    fn check_runtime(&self, preset: &Preset, resources: &Resources, out: &mut Vec<Diagnostic>) {
        let m = self.m;
        let req = resources.requests.get("cpu").map(Quantity::value);
        let lim = resources.limits.get("cpu").map(Quantity::value);
        let cpu_cores = if serving::layer(m.layer).cpu_counts_limit() {
            req.or(lim)
        } else {
            req
        };
        let input = CheckInput {
            model: m,
            preset,
            args: all_args(preset, m)
                .into_iter()
                .map(String::as_str)
                .collect(),
            env: preset
                .env
                .iter()
                .chain(m.env.iter())
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            cpu_cores,
            cpu_shown: resources
                .requests
                .get("cpu")
                .map(|q| q.to_string())
                .unwrap_or_else(|| "none".into()),
        };
        let runtime = serving::runtime::of(m);
        let mut problems = serving::runtime::foreign_settings(m);
        problems.extend(runtime.problems(&input));
        for p in problems {
            let d = self.err(&p.field, p.message);
            out.push(match p.help {
                Some(h) => d.help(h),
                None => d,
            });
        }
    }

    /// KServe defaults a missing cpu limit to 1: a request above 1 then makes an invalid Deployment.
    fn check_kserve_cpu_limit(&self, resources: &Resources, out: &mut Vec<Diagnostic>) {
        let m = self.m;
        let err = |field: &str, msg: String| self.err(field, msg);
        let req = |k: &str| resources.requests.get(k).map(Quantity::value);
        let lim = |k: &str| resources.limits.get(k).map(Quantity::value);
        // KServe: default cpu limit of 1.
        if serving::layer(m.layer).defaults_cpu_limit_to_one()
            && req("cpu").is_some_and(|r| r > 1.0)
            && lim("cpu").is_none()
        {
            {
                {
                    out.push(err(".resources.limits.cpu", format!(
                    "requests.cpu is {} but no cpu limit is set: KServe then defaults the limit to 1 and the Deployment is invalid forever",
                    resources.requests["cpu"]))
                    .help(format!("set `resources.limits.cpu` to at least {}", resources.requests["cpu"])));
                }
            }
        }
    }

    /// Single-slot workloads (GPU or CPU vLLM pods) need Recreate; llm-d has no strategy.
    fn check_strategy(&self, preset: &Preset, out: &mut Vec<Diagnostic>) {
        let m = self.m;
        let err = |field: &str, msg: String| self.err(field, msg);
        // Single-slot workloads need Recreate.
        let single_slot = m.gpus > 0 || preset.device == Device::Cpu;
        let has_strategy = serving::layer(m.layer).has_strategy();
        match m.strategy {
        Some(_) if !has_strategy => out.push(err(".strategy", "llm-d pods are managed by the LLMInferenceService; `strategy` does not apply".into())
            .help("remove `strategy`")),
        Some(Strategy::RollingUpdate) if single_slot => out.push(err(".strategy", format!(
            "RollingUpdate on a single-slot model ({}): the surge pod needs a second free slot and deadlocks",
            if m.gpus > 0 { format!("{} GPU(s) per pod", m.gpus) } else { "a CPU vLLM pod".into() }))
            .help("use `strategy: Recreate` (the default)")),
        _ => {}
    }
    }

    /// Canary: KServe only, a percentage, on a shared volume; ignored in Standard mode.
    fn check_canary(&self, out: &mut Vec<Diagnostic>) {
        let m = self.m;
        let (at, file) = (self.at, self.file);
        let err = |field: &str, msg: String| self.err(field, msg);
        let layer = m.layer.as_str();
        // Canary.
        if let Some(pct) = m.canary_traffic_percent {
            if !serving::layer(m.layer).supports_canary() {
                out.push(
                    err(
                        ".canaryTrafficPercent",
                        format!(
                            "canary is a KServe InferenceService feature; this model is on {layer}"
                        ),
                    )
                    .help("remove it or move the model to kserve"),
                );
            } else {
                if pct > 100 {
                    out.push(
                        err(
                            ".canaryTrafficPercent",
                            format!("{pct} is not a percentage"),
                        )
                        .help("use 0-100"),
                    );
                }
                if !m.storage.access_mode.is_shared() {
                    out.push(err(".canaryTrafficPercent", format!(
                    "canary runs a second revision pod, but the model volume is {}: both revisions pin to one node",
                    m.storage.access_mode.as_str()))
                    .help("use `storage.accessMode: ReadOnlyMany` (or ReadWriteMany, e.g. Filestore) or drop the canary"));
                }
                out.push(
                Diagnostic::warning(
                    "canaryTrafficPercent is ignored by KServe in Standard (raw deployment) mode",
                )
                .file(file)
                .field(format!("{at}.canaryTrafficPercent")),
            );
            }
        }
    }

    /// llm-d prefill/decode: on llm-d only, GPUs and tensor parallel consistent, resources sane.
    fn check_prefill(&self, preset: &Preset, out: &mut Vec<Diagnostic>) {
        let m = self.m;
        let (at, file) = (self.at, self.file);
        let err = |field: &str, msg: String| self.err(field, msg);
        let layer = m.layer.as_str();
        // llm-d prefill.
        if let Some(p) = &m.prefill {
            if !serving::layer(m.layer).supports_prefill() {
                out.push(
                    err(
                        ".prefill",
                        "prefill/decode disaggregation is an llm-d feature".into(),
                    )
                    .help(format!(
                        "remove `prefill` or move the model to llm-d (it is on {layer})"
                    )),
                );
            }
            if preset.device == Device::Gpu && p.gpus == 0 {
                out.push(err(
                    ".prefill.gpus",
                    "prefill pods of a GPU preset need gpus ≥ 1".into(),
                ));
            }
            if let Some(tp) = p.tensor_parallel_size {
                if tp != p.gpus {
                    out.push(
                        err(
                            ".prefill.tensorParallelSize",
                            format!("is {tp} but prefill pods have {} GPU(s)", p.gpus),
                        )
                        .help("tensor parallel size must equal the GPU count"),
                    );
                }
            }
            check_resources(
                preset.resources_for(&p.resources),
                &format!("{at}.prefill.resources"),
                file,
                out,
            );
        }
    }

    /// Weights downloaded by the serving pods (a warning), and a positive maxModelLen.
    fn check_weights(&self, out: &mut Vec<Diagnostic>) {
        let m = self.m;
        let (at, file) = (self.at, self.file);
        let err = |field: &str, msg: String| self.err(field, msg);
        if serving::weights::of(m) == serving::Weights::Hub {
            {
                out.push(Diagnostic::warning("serving pods will download the weights from the Hub themselves")
                .file(file).field(format!("{at}.storage.staged"))
                .help("clusters behind a shared egress IP get HTTP 429 from Hugging Face: pre-stage with `platform stage-model` and set staged: true"));
            }
        }
        if m.max_model_len == Some(0) {
            out.push(err(".maxModelLen", "must be positive".into()));
        }
    }
}
