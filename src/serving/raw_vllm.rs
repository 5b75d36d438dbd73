//! raw vLLM: a Deployment + Service + PVC per model, no Gateway (a port-forward or the Service).
//! Pause scales the Deployment to 0 and remembers the replica count in an annotation that resume
//! restores (Argo CD ignores `/spec/replicas` of these apps).

use serde_json::{json, Value};

use super::{Autoscaler, Change, Configured, GatewayRouting, Layer, Workload};
use crate::cluster::health::{self, spec_replicas, ModelState};
use crate::cluster::kinds::{self, Kind};
use crate::config::{Autoscaling, ServingLayer};
use crate::consts;

pub struct RawVllm;

impl Layer for RawVllm {
    fn id(&self) -> ServingLayer {
        ServingLayer::RawVllm
    }

    fn serving_kind(&self) -> Kind {
        kinds::DEPLOYMENT
    }

    fn workload(&self, name: &str) -> Workload {
        // The Service: its selector finds the pods and its targetPort names the port.
        Workload {
            kind: kinds::SERVICE,
            name: name.to_string(),
            container: "vllm",
        }
    }

    fn pod_label(&self) -> &'static str {
        consts::LABEL_NAME
    }

    fn state(&self, obj: &Value) -> ModelState {
        health::deployment(obj)
    }

    fn pause(&self, obj: &Value) -> Change {
        let replicas = spec_replicas(obj);
        if replicas == 0 {
            return Change::none("already paused (0 replicas)");
        }
        Change::patch(
            format!(
                "scaled {replicas} -> 0 (remembered in {})",
                consts::ANNOTATION_PAUSED_REPLICAS
            ),
            json!({
                "metadata": {"annotations": {consts::ANNOTATION_PAUSED_REPLICAS: replicas.to_string()}},
                "spec": {"replicas": 0},
            }),
        )
    }

    fn resume(&self, obj: &Value, configured: Configured) -> Change {
        let remembered = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(consts::ANNOTATION_PAUSED_REPLICAS));
        match (spec_replicas(obj), remembered) {
            (0, r) => {
                let (target, why) = restore_count(r, configured);
                Change::patch(
                    match why {
                        Some(why) => format!("scaled 0 -> {target} ({why})"),
                        None => format!("scaled 0 -> {target}"),
                    },
                    json!({
                        "metadata": {"annotations": {consts::ANNOTATION_PAUSED_REPLICAS: null}},
                        "spec": {"replicas": target},
                    }),
                )
            }
            (n, Some(_)) => Change::patch(
                format!(
                    "already running ({}); cleared a stale pause annotation",
                    crate::text::count(n, "replica")
                ),
                json!({"metadata": {"annotations": {consts::ANNOTATION_PAUSED_REPLICAS: null}}}),
            ),
            (n, None) => Change::none(format!(
                "already running ({})",
                crate::text::count(n, "replica")
            )),
        }
    }

    fn in_cluster_url(&self, name: &str, namespace: &str, _obj: &Value) -> Option<String> {
        Some(format!("http://{name}.{namespace}.svc.cluster.local"))
    }

    /// The HPA or KEDA ScaledObject `raw-vllm-autoscaler.yaml` renders, named after the model.
    fn autoscaler(&self, name: &str, a: &Autoscaling) -> Option<Autoscaler> {
        Some(Autoscaler::of(name, a.class))
    }

    /// At 0 replicas without the pause annotation: an autoscaler (KEDA) scaled it there.
    fn scaled_to_zero(&self, obj: &Value) -> bool {
        spec_replicas(obj) == 0
            && obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(consts::ANNOTATION_PAUSED_REPLICAS))
                .is_none()
    }

    fn gateway_routing(&self) -> Option<GatewayRouting> {
        None
    }

    /// The model's ClusterIP Service (raw-vllm-service.yaml.j2).
    fn route_backend(&self, name: &str) -> Option<super::RouteBackend> {
        Some(super::RouteBackend {
            service: name.to_string(),
            port: 80,
        })
    }
}

/// The replica count resume restores from the pause annotation's value (`None`: no annotation),
/// and a note saying why when it is not simply the remembered count. The annotation lives in the
/// cluster, where anyone can edit it, so it is trusted only when it is a whole number from 1 to
/// the configured ceiling ([`super::RESUME_HEADROOM`] times `replicas`, or an autoscaled model's
/// `max`); anything else restores the configured count (at least 1).
pub fn restore_count(annotation: Option<&Value>, want: Configured) -> (u32, Option<String>) {
    let configured = want.replicas.max(1);
    let ceiling = want.ceiling.max(configured);
    let key = consts::ANNOTATION_PAUSED_REPLICAS;
    let Some(raw) = annotation else {
        return (
            configured,
            Some(format!(
                "no {key} annotation (scaled to 0 by something else?); restored the configured {configured}"
            )),
        );
    };
    // Annotations are strings; shown as JSON so an odd value stays on one line, and cut.
    let shown = raw.to_string();
    let shown = crate::text::ellipsize(&shown, 40);
    let annotation = format!("annotation {key}={shown}");
    let why = match raw.as_str().and_then(|s| s.parse::<u64>().ok()) {
        // Anything from 1 to an autoscaled model's max is a count its autoscaler may have chosen.
        Some(n) if n >= 1 && n <= u64::from(configured) => return (n as u32, None),
        Some(n) if want.autoscaled && n >= 1 && n <= u64::from(ceiling) => {
            return (n as u32, None)
        }
        Some(n) if n >= 1 && n <= u64::from(ceiling) => {
            return (
                n as u32,
                Some(format!(
                    "{annotation} is above the configured {configured} (scaled by hand before the pause?); \
                     restored as remembered"
                )),
            )
        }
        Some(0) => "is 0, not a count to resume to".to_string(),
        Some(_) if want.autoscaled => {
            format!("is more than the autoscaling max {ceiling}, not trusted")
        }
        Some(_) => format!(
            "is more than {}x the configured {configured}, not trusted",
            super::RESUME_HEADROOM
        ),
        None => "is not a replica count".to_string(),
    };
    (
        configured,
        Some(format!(
            "{annotation} {why}; restored the configured {configured}"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore(v: Option<Value>, configured: u32) -> (u32, Option<String>) {
        restore_count(v.as_ref(), Configured::fixed(configured))
    }

    #[test]
    fn pause_scales_to_zero_and_remembers_resume_restores() {
        let l = RawVllm;
        let running = json!({"spec": {"replicas": 2}});
        let p = l.pause(&running);
        assert_eq!(
            p.action,
            "scaled 2 -> 0 (remembered in platform.ai/paused-replicas)"
        );
        assert_eq!(p.patch.as_ref().unwrap()["spec"]["replicas"], 0);
        let paused = json!({"metadata": {"annotations": {consts::ANNOTATION_PAUSED_REPLICAS: "2"}},
                            "spec": {"replicas": 0}});
        assert!(l.pause(&paused).patch.is_none());
        let r = l.resume(&paused, Configured::fixed(2));
        assert_eq!(r.action, "scaled 0 -> 2");
        assert_eq!(r.patch.unwrap()["spec"]["replicas"], 2);
        assert!(l.resume(&running, Configured::fixed(2)).patch.is_none());
        let stale = json!({"metadata": {"annotations": {consts::ANNOTATION_PAUSED_REPLICAS: "2"}},
                           "spec": {"replicas": 1}});
        assert!(l
            .resume(&stale, Configured::fixed(2))
            .action
            .contains("stale pause annotation"));
    }

    #[test]
    fn a_remembered_count_within_the_configured_replicas_is_restored_as_is() {
        assert_eq!(restore(Some(json!("2")), 2), (2, None));
        assert_eq!(restore(Some(json!("1")), 3), (1, None));
    }

    #[test]
    fn an_untrustworthy_annotation_restores_the_configured_count_and_says_why() {
        let (n, why) = restore(Some(json!("99999999999")), 2);
        assert_eq!(n, 2);
        let why = why.unwrap();
        assert!(
            why.contains("platform.ai/paused-replicas=\"99999999999\"")
                && why.contains("not trusted")
                && why.contains("restored the configured 2"),
            "{why}"
        );
        assert_eq!(restore(Some(json!("5")), 2).0, 2);
        // Scaled by hand above the config before the pause: restored, and said so.
        let (n, why) = restore(Some(json!("4")), 2);
        assert_eq!(n, 4);
        assert!(why.unwrap().contains("above the configured 2"));
        for bad in ["abc", "-3", "1.5", "", " 2"] {
            let (n, why) = restore(Some(json!(bad)), 1);
            assert_eq!(n, 1, "{bad:?}");
            assert_eq!(
                why.as_deref(),
                Some(
                    format!(
                        "annotation platform.ai/paused-replicas={} is not a replica count; restored the configured 1",
                        json!(bad)
                    )
                    .as_str()
                ),
            );
        }
        // Not a string at all (an annotation edited through the API as a number).
        assert_eq!(restore(Some(json!(3)), 4).0, 4);
        let (n, why) = restore(Some(json!("0")), 3);
        assert_eq!((n, why.unwrap().contains("is 0")), (3, true));
        // No annotation: the configured count, said so.
        let (n, why) = restore(None, 2);
        assert_eq!(n, 2);
        assert!(why
            .unwrap()
            .contains("no platform.ai/paused-replicas annotation"));
        // A model configured with 0 replicas still resumes to one.
        assert_eq!(restore(Some(json!("5")), 0).0, 1);
        assert_eq!(restore(Some(json!("2")), 0).0, 2);
        // A huge value is cut in the message.
        let long = "9".repeat(500);
        let why = restore(Some(json!(long)), 1).1.unwrap();
        assert!(why.len() < 200, "{why}");
    }
}
