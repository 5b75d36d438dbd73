//! A volume provisioner for the default StorageClass `standard`: a Pending claim of that class gets
//! a PV pre-bound to it (the real PV controller then binds both); a Released PV of that class with
//! reclaim policy Delete is deleted, as a CSI provisioner would. Claims of any other class stay
//! Pending (how a test gets an unbound PVC).

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;
use serde_json::json;

use super::TICK;

pub const CLASS: &str = "standard";
pub const PROVISIONER: &str = "realkube.test/hostpath";

pub async fn setup(client: &kube::Client) {
    let scs: Api<StorageClass> = Api::all(client.clone());
    let sc: StorageClass = serde_json::from_value(json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
    }))
    .expect("storage class");
    if let Err(e) = scs.create(&PostParams::default(), &sc).await {
        assert!(
            matches!(&e, kube::Error::Api(r) if r.code == 409),
            "creating StorageClass: {e}"
        );
    }
}

pub async fn run(client: kube::Client) {
    let pvcs: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    loop {
        if let Ok(list) = pvcs.list(&ListParams::default()).await {
            for c in list.items {
                let spec = c.spec.clone().unwrap_or_default();
                let pending = c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
                if !pending
                    || spec.storage_class_name.as_deref() != Some(CLASS)
                    || spec.volume_name.is_some()
                    || c.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                let uid = c.metadata.uid.clone().unwrap_or_default();
                let size = spec
                    .resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage"))
                    .map(|q| q.0.clone())
                    .unwrap_or_else(|| "1Gi".into());
                let pv: PersistentVolume = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "PersistentVolume",
                    "metadata": {"name": format!("pvc-{uid}"),
                                 "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
                    "spec": {
                        "capacity": {"storage": size},
                        "accessModes": spec.access_modes.clone().unwrap_or_default(),
                        "storageClassName": CLASS,
                        "persistentVolumeReclaimPolicy": "Delete",
                        "hostPath": {"path": format!("/tmp/realkube-pv/{uid}")},
                        "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                     "namespace": c.metadata.namespace, "name": c.metadata.name, "uid": uid},
                    },
                }))
                .expect("pv");
                let _ = pvs.create(&PostParams::default(), &pv).await;
            }
        }
        if let Ok(list) = pvs.list(&ListParams::default()).await {
            for pv in list.items {
                let spec = pv.spec.clone().unwrap_or_default();
                let released =
                    pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
                if released
                    && spec.storage_class_name.as_deref() == Some(CLASS)
                    && spec.persistent_volume_reclaim_policy.as_deref() == Some("Delete")
                {
                    let name = pv.metadata.name.clone().unwrap_or_default();
                    let _ = pvs.delete(&name, &DeleteParams::default()).await;
                }
            }
        }
        tokio::time::sleep(TICK).await;
    }
}
