//! KServe InferenceService (Standard mode): our vLLM container as `kserve-container` in the
//! predictor, its `<isvc>-predictor` Deployment, a PVC for the weights, the layer's Gateway routing
//! by Host (`<isvc>-<namespace>.<domain>`). Pause is KServe's stop annotation.

use serde_json::Value;

use super::{stop_pause, stop_resume, Change, GatewayRouting, Layer, Workload};
use crate::cluster::health::{self, ModelState};
use crate::cluster::kinds::{self, Kind};
use crate::config::{ServingLayer, Strategy};
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

    fn has_pvc(&self, _staged: bool) -> bool {
        true
    }

    fn state(&self, obj: &Value) -> ModelState {
        health::inference_service(obj)
    }

    fn pause(&self, obj: &Value) -> Change {
        stop_pause(obj)
    }

    fn resume(&self, obj: &Value, _configured: u32) -> Change {
        stop_resume(obj)
    }

    fn in_cluster_url(&self, _name: &str, _namespace: &str, obj: &Value) -> Option<String> {
        super::status_url(obj)
    }

    fn gateway_routing(&self) -> Option<GatewayRouting> {
        Some(GatewayRouting::Host)
    }

    fn strategy(&self, configured: Option<Strategy>) -> &'static str {
        match configured {
            Some(Strategy::RollingUpdate) => "RollingUpdate",
            _ => "Recreate",
        }
    }

    fn defaults_cpu_limit_to_one(&self) -> bool {
        true
    }

    fn supports_canary(&self) -> bool {
        true
    }
}
