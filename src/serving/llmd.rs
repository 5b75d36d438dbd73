//! llm-d (KServe LLMInferenceService): its `<name>-kserve` Deployment runs vLLM in container
//! `main`; weights come from `hf://` through KServe's storage initializer, or from a PVC when
//! pre-staged; the layer's Gateway routes by path (`/<namespace>/<name>`). Pause is KServe's stop
//! annotation (KServe ≥ 0.17).

use serde_json::Value;

use super::{GatewayRouting, Layer, Workload};
use crate::cluster::health::{self, ModelState};
use crate::cluster::kinds::{self, Kind};
use crate::config::ServingLayer;
use crate::consts;

pub struct LlmD;

impl Layer for LlmD {
    fn id(&self) -> ServingLayer {
        ServingLayer::LlmD
    }

    fn serving_kind(&self) -> Kind {
        kinds::LLM_INFERENCE_SERVICE
    }

    fn workload(&self, name: &str) -> Workload {
        Workload {
            kind: kinds::DEPLOYMENT,
            name: format!("{name}{}", consts::LLMD_WORKLOAD_SUFFIX),
            container: "main",
        }
    }

    fn pod_label(&self) -> &'static str {
        consts::LABEL_NAME
    }

    fn state(&self, obj: &Value) -> ModelState {
        health::llm_inference_service(obj)
    }

    fn gateway_routing(&self) -> Option<GatewayRouting> {
        Some(GatewayRouting::PathPrefix)
    }

    fn move_refusal(&self) -> Option<&'static str> {
        Some("its router owns the model's HTTPRoute, InferencePool and endpoint picker on the isolated llm-d gateway, so the stable route cannot weight it; and prefill/decode needs at least 2 GPUs")
    }

    /// The LLMInferenceService manages its pods; they are replaced, never surged.
    fn has_strategy(&self) -> bool {
        false
    }

    fn cpu_counts_limit(&self) -> bool {
        false
    }

    fn supports_prefill(&self) -> bool {
        true
    }

    /// `hf://` weights are downloaded by KServe's storage initializer (no claim to fill).
    fn pods_download_weights(&self) -> bool {
        false
    }

    /// `spec.model.uri` (LLMInferenceService accepts hf, oci, pvc and s3; S3 credentials are not
    /// wired for it here).
    fn fetches_storage_uri(&self, scheme: &str) -> bool {
        matches!(scheme, "hf" | "oci" | "pvc")
    }

    /// The LLMInferenceService scales through `spec.scaling` (the Workload Variant Autoscaler, a
    /// component platform does not install), exclusive with `spec.replicas`.
    fn supports_autoscaling(&self) -> bool {
        false
    }
}
