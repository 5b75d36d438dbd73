//! THE SEAM: everything the rest of the program asks about a model on its serving layer, and about
//! the engine that serves it, answered in one place.
//!
//! One descriptor per layer ([`Layer`]: `raw_vllm.rs`, `kserve.rs`, `llmd.rs`) says what serves a
//! model there (kind and name), which pods and workload, whether it has a PVC, how ready or
//! stopped it is, how to pause and resume it, where it answers inside the cluster and through the
//! layer's Gateway, what teardown deletes, and which model fields apply there. One descriptor per
//! runtime ([`runtime::Runtime`]: `runtime/vllm.rs`) says how the engine is started and reached.
//!
//! Nothing outside this module matches on [`ServingLayer`]: render, status, smoke, pause,
//! teardown, stage-model and doctor ask the descriptor of the model's layer. A new layer is one
//! file here plus its templates and catalog entry; a new runtime is one file under `runtime/`.

mod autoscaler;
mod kserve;
mod llmd;
mod raw_vllm;
pub mod runtime;
pub mod weights;

use serde_json::Value;

use crate::cluster::health::ModelState;
use crate::cluster::kinds::Kind;
use crate::config::{Autoscaling, ServingLayer, Strategy};

pub use autoscaler::{Autoscaler, Configured, RESUME_HEADROOM};
pub use runtime::Runtime;
pub use weights::Weights;

/// The object whose pods serve a model, and the container in them that serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub kind: Kind,
    pub name: String,
    pub container: &'static str,
}

/// How a layer's Gateway tells models apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayRouting {
    /// By Host header (KServe: `<isvc>-<namespace>.<domain>`).
    Host,
    /// By path prefix (llm-d: `/<namespace>/<name>`, rewritten to `/`).
    PathPrefix,
}

/// The Service a model's stable route sends its traffic to on its layer (in the model's
/// namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteBackend {
    pub service: String,
    pub port: u16,
}

/// What pause or resume does to a serving object: the words for the user and the merge patch
/// (None when the object is already there).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub action: String,
    pub patch: Option<Value>,
}

impl Change {
    fn none(action: impl Into<String>) -> Change {
        Change {
            action: action.into(),
            patch: None,
        }
    }

    fn patch(action: impl Into<String>, patch: Value) -> Change {
        Change {
            action: action.into(),
            patch: Some(patch),
        }
    }
}

/// One serving layer, as the rest of the program sees it.
pub trait Layer: Sync {
    fn id(&self) -> ServingLayer;

    /// The layer's name in config.yaml and the catalog (`raw-vllm`, `kserve`, `llm-d`).
    fn name(&self) -> &'static str {
        self.id().as_str()
    }

    /// The kind of the object that serves a model (named after the model): the one pause/resume
    /// patch, status reads and teardown deletes.
    fn serving_kind(&self) -> Kind;

    /// The workload whose pods serve model `name`, and the serving container in them.
    fn workload(&self, name: &str) -> Workload;

    /// The label key whose value (the model's name) selects the model's serving pods.
    fn pod_label(&self) -> &'static str;

    /// Ready, stopped and why not, from the serving object as the API returns it.
    fn state(&self, obj: &Value) -> ModelState;

    /// Stop the model (no patch when it is stopped already). Default: KServe's stop annotation.
    fn pause(&self, obj: &Value) -> Change {
        stop_pause(obj)
    }

    /// Start the model again; `configured` is the replica count config.yaml asks for. Default:
    /// the stop annotation removed.
    fn resume(&self, obj: &Value, _configured: Configured) -> Change {
        stop_resume(obj)
    }

    /// The autoscaler object platform renders next to the workload of model `name` that
    /// autoscales with `a`, which pause and resume must hold and release. None (the default):
    /// the layer's own controller owns it (KServe deletes its HPA or ScaledObject when the stop
    /// annotation is set).
    fn autoscaler(&self, _name: &str, _a: &Autoscaling) -> Option<Autoscaler> {
        None
    }

    /// Whether the serving object `obj` stands at zero replicas because its autoscaler put it
    /// there (scale to zero when idle), not because it was paused.
    fn scaled_to_zero(&self, _obj: &Value) -> bool {
        false
    }

    /// Whether `autoscaling:` is rendered for models of this layer.
    fn supports_autoscaling(&self) -> bool {
        true
    }

    /// Where the model answers inside the cluster. Default: the `status.url` KServe reports.
    fn in_cluster_url(&self, _name: &str, _namespace: &str, obj: &Value) -> Option<String> {
        status_url(obj)
    }

    /// How the layer's Gateway routes to a model; None when the layer has no Gateway.
    fn gateway_routing(&self) -> Option<GatewayRouting>;

    /// The Deployment strategy rendered for a model that asks for `configured` (Recreate unless
    /// it asks for RollingUpdate on a layer where `strategy:` means something).
    fn strategy(&self, configured: Option<Strategy>) -> &'static str {
        match configured {
            Some(Strategy::RollingUpdate) if self.has_strategy() => "RollingUpdate",
            _ => "Recreate",
        }
    }

    /// Whether `strategy:` means anything on this layer.
    fn has_strategy(&self) -> bool {
        true
    }

    /// Whether a CPU model's cores may come from its limit when it sets no request (llm-d's
    /// LLMInferenceService copies only requests into its pods).
    fn cpu_counts_limit(&self) -> bool {
        true
    }

    /// Whether the layer turns a missing cpu limit into a limit of 1 (KServe does).
    fn defaults_cpu_limit_to_one(&self) -> bool {
        false
    }

    /// Whether `canaryTrafficPercent` is a feature of this layer.
    fn supports_canary(&self) -> bool {
        false
    }

    /// Whether prefill/decode disaggregation (`prefill:`) is a feature of this layer.
    fn supports_prefill(&self) -> bool {
        false
    }

    /// Whether serving pods download not-staged weights from the Hub themselves (rather than a
    /// storage initializer the layer runs).
    fn pods_download_weights(&self) -> bool {
        true
    }

    /// The Service the model's stable route (catalog `routing:`) points at on this layer; None
    /// when the layer's own router owns the model's route.
    fn route_backend(&self, _name: &str) -> Option<RouteBackend> {
        None
    }

    /// Why `platform move` refuses to move a model to or from this layer (None: it moves).
    fn move_refusal(&self) -> Option<&'static str> {
        None
    }

    /// Whether the layer fetches a `storageUri` of this scheme into the pod itself (KServe's
    /// storage initializer, or its modelcar sidecar for `oci`).
    fn fetches_storage_uri(&self, _scheme: &str) -> bool {
        false
    }
}

static RAW_VLLM: raw_vllm::RawVllm = raw_vllm::RawVllm;
static KSERVE: kserve::Kserve = kserve::Kserve;
static LLMD: llmd::LlmD = llmd::LlmD;

/// The descriptor of `layer`.
pub fn layer(layer: ServingLayer) -> &'static dyn Layer {
    match layer {
        ServingLayer::RawVllm => &RAW_VLLM,
        ServingLayer::Kserve => &KSERVE,
        ServingLayer::LlmD => &LLMD,
    }
}

/// Every layer, in bring-up order.
pub fn layers() -> impl Iterator<Item = &'static dyn Layer> {
    ServingLayer::ALL.into_iter().map(layer)
}

/// KServe's pause: the stop annotation (ISVC and LLMInferenceService alike).
fn stop_pause(obj: &Value) -> Change {
    if crate::cluster::health::has_stop_annotation(obj) {
        return Change::none("already paused (serving.kserve.io/stop=true)");
    }
    Change::patch(
        "annotated serving.kserve.io/stop=true",
        serde_json::json!({"metadata": {"annotations": {crate::consts::ANNOTATION_KSERVE_STOP: "true"}}}),
    )
}

/// KServe's resume: the stop annotation removed.
fn stop_resume(obj: &Value) -> Change {
    if !crate::cluster::health::has_stop_annotation(obj) {
        return Change::none("already running (no stop annotation)");
    }
    Change::patch(
        "removed serving.kserve.io/stop",
        serde_json::json!({"metadata": {"annotations": {crate::consts::ANNOTATION_KSERVE_STOP: null}}}),
    )
}

/// The URL a KServe object reports in `status.url`.
fn status_url(obj: &Value) -> Option<String> {
    obj.pointer("/status/url")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_has_its_config_name() {
        let names: Vec<&str> = layers().map(|l| l.name()).collect();
        assert_eq!(names, crate::config::serving_layer_names());
    }

    #[test]
    fn kserve_layers_pause_with_the_stop_annotation() {
        for l in [layer(ServingLayer::Kserve), layer(ServingLayer::LlmD)] {
            let running = serde_json::json!({"metadata": {"name": "m"}});
            let p = l.pause(&running);
            assert_eq!(p.action, "annotated serving.kserve.io/stop=true");
            let stopped = serde_json::json!({"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}});
            assert!(l.pause(&stopped).patch.is_none());
            assert_eq!(
                l.resume(&stopped, Configured::fixed(1)).action,
                "removed serving.kserve.io/stop"
            );
            assert!(l.resume(&running, Configured::fixed(1)).patch.is_none());
        }
    }

    #[test]
    fn what_each_layer_serves_with() {
        let w = layer(ServingLayer::Kserve).workload("q");
        assert_eq!(
            (w.name.as_str(), w.container),
            ("q-predictor", "kserve-container")
        );
        let w = layer(ServingLayer::LlmD).workload("q");
        assert_eq!((w.name.as_str(), w.container), ("q-kserve", "main"));
        let w = layer(ServingLayer::RawVllm).workload("q");
        assert_eq!((w.kind.kind, w.container), ("Service", "vllm"));
        assert!(layer(ServingLayer::RawVllm).gateway_routing().is_none());
    }
}
