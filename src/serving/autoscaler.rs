//! A model's autoscaler as pause and resume see it, and the replica counts resume restores.
//!
//! Pausing an autoscaled raw-vLLM model must not be undone by its autoscaler:
//! - HPA: scaling the Deployment to 0 is enough. Kubernetes documents it ("Implicit maintenance-mode
//!   deactivation", kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/
//!   #implicit-maintenance-mode-deactivation): "If the target's desired replica count is set to 0,
//!   and the HPA's minimum replica count is greater than 0, the HPA stops adjusting the target (and
//!   sets the `ScalingActive` Condition on itself to `false`) until you reactivate it by manually
//!   adjusting the target's desired replica count". platform's HPA always has minReplicas >= 1
//!   (plan/checks.rs refuses `min: 0` with `class: hpa`), and resume's scale-up reactivates it.
//! - KEDA: its ScaledObject would scale a Deployment at 0 back up when its trigger is active, so
//!   pause first sets KEDA's `autoscaling.keda.sh/paused-replicas: "0"` on the ScaledObject (KEDA
//!   scales the target to 0 and stops acting), and resume removes it before scaling back up.

use serde_json::{json, Value};

use super::Change;
use crate::cluster::kinds::{self, Kind};
use crate::config::{AutoscalerClass, Model};
use crate::consts;

/// How far above the configured `replicas` a remembered count is still restored (a model with a
/// fixed count): a raw-vLLM Deployment's replicas are owned by pause/resume (Argo CD ignores
/// `/spec/replicas`), so an operator may have scaled it by hand before pausing; anything beyond
/// this is not trusted.
pub const RESUME_HEADROOM: u32 = 2;

/// The replica counts config.yaml asks for, as resume restores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Configured {
    /// What resume falls back to: `replicas`, or an autoscaled model's `min` (at least 1).
    pub replicas: u32,
    /// The most a remembered count may be: `replicas` × [`RESUME_HEADROOM`], or the autoscaling
    /// `max`.
    pub ceiling: u32,
    /// The count moves between `min` and `max` by itself (any count in that range is expected).
    pub autoscaled: bool,
}

impl Configured {
    /// A fixed replica count.
    pub fn fixed(replicas: u32) -> Configured {
        Configured {
            replicas,
            ceiling: replicas.max(1).saturating_mul(RESUME_HEADROOM),
            autoscaled: false,
        }
    }

    /// What model `m` asks for.
    pub fn of(m: &Model) -> Configured {
        match &m.autoscaling {
            Some(a) => Configured {
                replicas: a.min.max(1),
                ceiling: a.max.max(1),
                autoscaled: true,
            },
            None => Configured::fixed(m.replicas),
        }
    }
}

/// The autoscaler object rendered next to a model's workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autoscaler {
    pub kind: Kind,
    pub name: String,
    pub class: AutoscalerClass,
}

impl Autoscaler {
    /// The HPA or ScaledObject named `name` (both are named after the model).
    pub fn of(name: &str, class: AutoscalerClass) -> Autoscaler {
        Autoscaler {
            kind: match class {
                AutoscalerClass::Hpa => kinds::HPA,
                AutoscalerClass::Keda => kinds::SCALED_OBJECT,
            },
            name: name.to_string(),
            class,
        }
    }

    /// Whether `obj` (this autoscaler as the API has it) is held by `platform pause` (KEDA's
    /// paused-replicas annotation; an HPA is never held by an annotation).
    pub fn is_held(&self, obj: &Value) -> bool {
        self.class == AutoscalerClass::Keda && keda_paused(obj).is_some()
    }

    /// Hold the autoscaler before the workload goes to 0 (`obj`: the autoscaler as the API has
    /// it). HPA: nothing (it stops acting on a target at 0); KEDA: the paused-replicas annotation.
    pub fn pause(&self, obj: &Value) -> Change {
        match self.class {
            AutoscalerClass::Hpa => {
                Change::none("HPA left as is (it stops acting on a Deployment scaled to 0)")
            }
            AutoscalerClass::Keda if keda_paused(obj).is_some() => {
                Change::none("KEDA already paused")
            }
            AutoscalerClass::Keda => Change::patch(
                format!(
                    "paused KEDA ({}=\"0\" on ScaledObject {})",
                    consts::ANNOTATION_KEDA_PAUSED_REPLICAS,
                    self.name
                ),
                json!({"metadata": {"annotations": {consts::ANNOTATION_KEDA_PAUSED_REPLICAS: "0"}}}),
            ),
        }
    }

    /// Release the autoscaler before the workload is scaled back up. HPA: nothing (the scale-up
    /// reactivates it); KEDA: the paused-replicas annotation removed.
    pub fn resume(&self, obj: &Value) -> Change {
        match self.class {
            AutoscalerClass::Hpa => Change::none("HPA acts again once the Deployment is above 0"),
            AutoscalerClass::Keda if keda_paused(obj).is_none() => Change::none("KEDA not paused"),
            AutoscalerClass::Keda => Change::patch(
                format!(
                    "resumed KEDA (removed {} from ScaledObject {})",
                    consts::ANNOTATION_KEDA_PAUSED_REPLICAS,
                    self.name
                ),
                json!({"metadata": {"annotations": {consts::ANNOTATION_KEDA_PAUSED_REPLICAS: null}}}),
            ),
        }
    }
}

/// KEDA's paused-replicas annotation on a ScaledObject, when set.
fn keda_paused(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(consts::ANNOTATION_KEDA_PAUSED_REPLICAS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keda_is_paused_and_released_by_its_annotation_hpa_is_left_alone() {
        let so = Autoscaler::of("q", AutoscalerClass::Keda);
        assert_eq!(so.kind, kinds::SCALED_OBJECT);
        let free = json!({"metadata": {"name": "q"}});
        let p = so.pause(&free).patch.unwrap();
        assert_eq!(
            p["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"],
            "0"
        );
        assert!(so.resume(&free).patch.is_none());
        let held =
            json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "0"}}});
        assert!(so.pause(&held).patch.is_none());
        let r = so.resume(&held).patch.unwrap();
        assert!(r["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"].is_null());
        let hpa = Autoscaler::of("q", AutoscalerClass::Hpa);
        assert_eq!(hpa.kind, kinds::HPA);
        assert!(hpa.pause(&free).patch.is_none() && hpa.resume(&free).patch.is_none());
    }

    #[test]
    fn an_autoscaled_model_resumes_within_min_and_max() {
        let m: Model = serde_yaml::from_str(
            "{name: q, layer: raw-vllm, source: hf://a/b, preset: p, autoscaling: {min: 0, max: 5, class: keda, metric: rps}}",
        )
        .unwrap();
        assert_eq!(
            Configured::of(&m),
            Configured {
                replicas: 1,
                ceiling: 5,
                autoscaled: true
            }
        );
        let (n, why) = super::super::raw_vllm::restore_count(Some(&json!("4")), Configured::of(&m));
        assert_eq!((n, why), (4, None));
        let (n, why) = super::super::raw_vllm::restore_count(Some(&json!("9")), Configured::of(&m));
        assert_eq!(n, 1);
        assert!(why.unwrap().contains("more than the autoscaling max 5"));
    }
}
