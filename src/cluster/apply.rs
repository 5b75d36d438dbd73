//! Server-side apply of rendered objects (field manager `platform`, managed-by label, retries).

use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::kinds::Kind;
use super::{Client, ClusterError};
use crate::consts;
use crate::render::check::RenderedObject;

/// Parameters of a merge/JSON patch written by platform (its field manager).
pub fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(consts::FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// Parameters of a server-side apply by platform (its field manager; `force` takes over fields
/// another manager owns).
pub fn apply_params(force: bool) -> PatchParams {
    let mut p = PatchParams::apply(consts::FIELD_MANAGER);
    p.force = force;
    p
}

/// What a server-side apply did to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `Kind namespace/name`.
    pub object: String,
    pub result: ApplyResult,
}

/// `created`, `configured` (the live object changed) or `unchanged`, as kubectl apply says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyResult {
    Created,
    Configured,
    Unchanged,
}

impl ApplyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyResult::Created => "created",
            ApplyResult::Configured => "configured",
            ApplyResult::Unchanged => "unchanged",
        }
    }

    /// From the resourceVersion before the apply (None: the object did not exist) and after it.
    pub fn of(before: Option<&str>, after: Option<&str>) -> ApplyResult {
        match before {
            None => ApplyResult::Created,
            Some(b) if Some(b) == after => ApplyResult::Unchanged,
            Some(_) => ApplyResult::Configured,
        }
    }
}

/// Server-side apply (field manager `platform`) of rendered objects, in order; each says whether
/// it was created, configured or unchanged (the resourceVersion read before, against the one the
/// apply returned: an apply that changes nothing keeps it).
pub async fn server_side_apply(
    client: &Client,
    objs: &[RenderedObject],
    force: bool,
) -> Result<Vec<Applied>, ClusterError> {
    apply_objects(client, objs, force, false).await
}

/// [`server_side_apply`] as a server-side dry run (`dryRun=All`): what it would create,
/// configure or leave unchanged (the live object against the dry run's result); nothing written.
pub async fn server_side_dry_run(
    client: &Client,
    objs: &[RenderedObject],
    force: bool,
) -> Result<Vec<Applied>, ClusterError> {
    apply_objects(client, objs, force, true).await
}

/// An object without what changes on every write (managed fields, resourceVersion, generation).
pub fn comparable(o: &kube::api::DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
        m.remove("generation");
    }
    v
}

async fn apply_objects(
    client: &Client,
    objs: &[RenderedObject],
    force: bool,
    dry_run: bool,
) -> Result<Vec<Applied>, ClusterError> {
    let mut applied = Vec::new();
    for o in objs {
        let kind = Kind::lookup(&o.api_version, &o.kind).ok_or_else(|| ClusterError::Protocol {
            what: format!("applying {} {}", o.kind, o.name),
            reason: format!(
                "platform does not know the API of {} {}",
                o.api_version, o.kind
            ),
        })?;
        let ns = o
            .value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let api = kind.api(client, ns);
        let params = if dry_run {
            apply_params(force).dry_run()
        } else {
            apply_params(force)
        };
        let mut body = o.value.clone();
        if let Some(labels) = body
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.insert(
                consts::LABEL_MANAGED_BY.into(),
                consts::MANAGED_BY_VALUE.into(),
            );
        }
        let patch = Patch::Apply(&body);
        let label = format!("{} {}/{}", o.kind, ns, o.name);
        let live = client
            .retry(|| api.get_opt(&o.name))
            .await
            .map_err(|e| ClusterError::api(format!("reading {label}"), e))?;
        let before = live
            .as_ref()
            .and_then(|b| b.metadata.resource_version.clone());
        let after = client.retry(|| api.patch(&o.name, &params, &patch)).await.map_err(|e| {
            let conflict = matches!(&e, kube::Error::Api(s) if s.code == 409);
            let mut err = ClusterError::api(format!("server-side apply of {} {}/{}", o.kind, ns, o.name), e);
            if conflict {
                if let ClusterError::Api { hint, .. } = &mut err {
                    *hint = Some("another field manager owns these fields: re-run with --force-conflicts to take them over");
                }
            }
            err
        })?;
        let result = match &live {
            // A dry run writes nothing, so its resourceVersion says nothing: compare the objects.
            Some(l) if dry_run => {
                if comparable(l) == comparable(&after) {
                    ApplyResult::Unchanged
                } else {
                    ApplyResult::Configured
                }
            }
            _ => ApplyResult::of(
                before.as_deref(),
                after.metadata.resource_version.as_deref(),
            ),
        };
        applied.push(Applied {
            object: label,
            result,
        });
    }
    Ok(applied)
}
