//! KServe InferenceService (Standard mode): our vLLM container as `kserve-container` in the
//! predictor, its `<isvc>-predictor` Deployment, a PVC for the weights, the layer's Gateway routing
//! by Host (`<isvc>-<namespace>.<domain>`). Pause is KServe's stop annotation.

use serde_json::Value;

use super::{GatewayRouting, Layer, Workload};
use crate::cluster::health::{self, ModelState};
use crate::cluster::kinds::{self, Kind};
use crate::config::ServingLayer;
use crate::consts;

pub struct Kserve;

impl Layer for Kserve {
    fn id(&self) -> ServingLayer {
        ServingLayer::Kserve
    }

    fn serving_kind(&self) -> Kind {
        kinds::INFERENCE_SERVICE
    }

    fn workload(&self, name: &str) -> Workload {
        Workload {
            kind: kinds::DEPLOYMENT,
            name: format!("{name}{}", consts::KSERVE_PREDICTOR_SUFFIX),
            container: "kserve-container",
        }
    }

    fn pod_label(&self) -> &'static str {
        "serving.kserve.io/inferenceservice"
    }

    fn state(&self, obj: &Value) -> ModelState {
        health::inference_service(obj)
    }

    fn gateway_routing(&self) -> Option<GatewayRouting> {
        Some(GatewayRouting::Host)
    }

    /// The predictor Service KServe's Standard mode creates for the InferenceService (port 80).
    fn route_backend(&self, name: &str) -> Option<super::RouteBackend> {
        Some(super::RouteBackend {
            service: format!("{name}-predictor"),
            port: 80,
        })
    }

    fn defaults_cpu_limit_to_one(&self) -> bool {
        true
    }

    fn supports_canary(&self) -> bool {
        true
    }

    /// Through `storageUri` (runtime predictors) or `STORAGE_URI` (our vLLM container).
    fn fetches_storage_uri(&self, scheme: &str) -> bool {
        matches!(scheme, "s3" | "oci" | "pvc")
    }
}
