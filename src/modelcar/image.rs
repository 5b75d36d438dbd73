//! The image around the model's layers: the base image resolved to one platform's manifest (its
//! layers and config), then the new image config (the base's, with the model layers' diff_ids and
//! history appended) and the OCI manifest. Pure JSON building apart from [`resolve_base`].

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::consts::*;
use super::reference::ImageRef;
use super::registry::{sha256_digest, Registry};
use super::ModelcarError;

/// A content descriptor, as manifests list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// The base image, for one platform.
#[derive(Debug, Clone)]
pub struct Base {
    pub reference: ImageRef,
    /// The digest of the platform's manifest.
    pub manifest_digest: String,
    pub layers: Vec<Descriptor>,
    pub config: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<IndexEntry>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// Docker's layer media types as their OCI equivalents (the bytes are the same format).
fn oci_layer_type(mt: &str) -> Option<&'static str> {
    match mt {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.oci.image.layer.v1.tar+gzip" => {
            Some("application/vnd.oci.image.layer.v1.tar+gzip")
        }
        "application/vnd.oci.image.layer.v1.tar" => Some(MT_OCI_LAYER_TAR),
        "application/vnd.oci.image.layer.v1.tar+zstd" => {
            Some("application/vnd.oci.image.layer.v1.tar+zstd")
        }
        _ => None,
    }
}

/// Resolve `base` on `reg` to the manifest of `platform` (`os/arch[/variant]`), its layers and
/// config; every document fetched by digest is checked against it.
pub async fn resolve_base(
    reg: &Registry,
    base: &ImageRef,
    platform: &str,
) -> Result<Base, ModelcarError> {
    let bad = |why: String| ModelcarError::BadBase {
        base: base.to_string(),
        why,
    };
    let repo = &base.repository;
    let first = reg
        .get_manifest(repo, base.manifest_ref(), MANIFEST_LIMIT)
        .await?;
    let mut digest = sha256_digest(&first.body);
    if let Some(pinned) = &base.digest {
        if &digest != pinned {
            return Err(bad(format!(
                "its manifest arrived with digest {digest}, not the pinned {pinned}"
            )));
        }
    }
    let mut doc: Manifest = serde_json::from_slice(&first.body)
        .map_err(|e| bad(format!("its manifest is not JSON: {e}")))?;
    let mut media_type = doc.media_type.clone().unwrap_or(first.media_type.clone());
    if let Some(entries) = &doc.manifests {
        let (os, arch, variant) = split_platform(platform);
        let pick = entries
            .iter()
            .find(|e| {
                e.platform.as_ref().is_some_and(|p| {
                    p.os == os
                        && p.architecture == arch
                        && (variant.is_none() || p.variant.as_deref() == variant)
                })
            })
            .ok_or_else(|| {
                let have: Vec<String> = entries
                    .iter()
                    .filter_map(|e| e.platform.as_ref())
                    .filter(|p| p.os != "unknown")
                    .map(|p| match &p.variant {
                        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                        None => format!("{}/{}", p.os, p.architecture),
                    })
                    .collect();
                bad(format!(
                    "it has no {platform} image (it has: {}); choose one with --platform",
                    have.join(", ")
                ))
            })?;
        let chosen = pick.digest.clone();
        let m = reg.get_manifest(repo, &chosen, MANIFEST_LIMIT).await?;
        digest = sha256_digest(&m.body);
        if digest != chosen {
            return Err(bad(format!(
                "the {platform} manifest arrived with digest {digest}, not {chosen}"
            )));
        }
        doc = serde_json::from_slice(&m.body)
            .map_err(|e| bad(format!("its {platform} manifest is not JSON: {e}")))?;
        media_type = doc.media_type.clone().unwrap_or(m.media_type);
    }
    if media_type != MT_OCI_MANIFEST && media_type != MT_DOCKER_MANIFEST && doc.config.is_none() {
        return Err(bad(format!(
            "its manifest has the media type `{media_type}`, not an image manifest"
        )));
    }
    let (Some(config_desc), Some(layers)) = (doc.config, doc.layers) else {
        return Err(bad("its manifest has no config or no layers".into()));
    };
    if layers.is_empty() {
        return Err(bad(
            "it has no layers: it cannot hold sh, ln and sleep".into()
        ));
    }
    let layers = layers
        .into_iter()
        .map(|l| match oci_layer_type(&l.media_type) {
            Some(mt) => Ok(Descriptor {
                media_type: mt.to_string(),
                ..l
            }),
            None => Err(bad(format!(
                "layer {} has the media type `{}`, which is not a tar layer",
                l.digest, l.media_type
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config_bytes = reg
        .get_blob(repo, &config_desc.digest, MANIFEST_LIMIT)
        .await?;
    let config: Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| bad(format!("its config is not JSON: {e}")))?;
    let os = config.get("os").and_then(Value::as_str).unwrap_or("");
    if os != "linux" {
        return Err(bad(format!(
            "its os is `{os}`: KServe's modelcar needs a Linux image with sh, ln and sleep"
        )));
    }
    let (_, want_arch, _) = split_platform(platform);
    let arch = config
        .get("architecture")
        .and_then(Value::as_str)
        .unwrap_or("");
    if arch != want_arch {
        return Err(bad(format!(
            "it is built for `{arch}`, not `{want_arch}` (--platform {platform}): the modelcar's sh would not run on those nodes"
        )));
    }
    let n_ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    if n_ids != layers.len() {
        return Err(bad(format!(
            "its config lists {n_ids} layer(s) and its manifest {}",
            layers.len()
        )));
    }
    Ok(Base {
        reference: base.clone(),
        manifest_digest: digest,
        layers,
        config,
    })
}

fn split_platform(p: &str) -> (&str, &str, Option<&str>) {
    let mut it = p.splitn(3, '/');
    let os = it.next().unwrap_or("linux");
    let arch = it.next().unwrap_or("amd64");
    (os, arch, it.next())
}

/// A model layer as the config and manifest record it.
#[derive(Debug, Clone)]
pub struct ModelLayer {
    pub digest: String,
    pub size: u64,
    /// What it holds, for the history entry.
    pub label: String,
}

/// The image config: the base's with the model layers appended to `rootfs.diff_ids` (an
/// uncompressed layer's diff_id is its digest) and to `history`. No timestamp is added, so the
/// same model on the same base gives the same image digest.
pub fn config(base: &Base, layers: &[ModelLayer]) -> Result<Vec<u8>, ModelcarError> {
    let mut c = base.config.clone();
    let bad = || ModelcarError::BadBase {
        base: base.reference.to_string(),
        why: "its config has no rootfs.diff_ids list".into(),
    };
    let ids = c
        .pointer_mut("/rootfs/diff_ids")
        .and_then(Value::as_array_mut)
        .ok_or_else(bad)?;
    ids.extend(layers.iter().map(|l| Value::String(l.digest.clone())));
    let entries: Vec<Value> = layers
        .iter()
        .map(|l| json!({"created_by": format!("platform modelcar push: {}/{}", MODELS_DIR, l.label), "comment": "model files"}))
        .collect();
    match c.get_mut("history").and_then(Value::as_array_mut) {
        Some(h) => h.extend(entries),
        None => {
            if let Some(obj) = c.as_object_mut() {
                obj.insert("history".into(), Value::Array(entries));
            }
        }
    }
    serde_json::to_vec(&c).map_err(|e| ModelcarError::Internal(format!("image config: {e}")))
}

/// The OCI image manifest: the base's layers, then the model's (uncompressed tar), and the base
/// recorded in the standard annotations.
pub fn manifest(
    base: &Base,
    config: &Descriptor,
    layers: &[ModelLayer],
) -> Result<Vec<u8>, ModelcarError> {
    let mut all: Vec<Descriptor> = base.layers.clone();
    all.extend(layers.iter().map(|l| Descriptor {
        media_type: MT_OCI_LAYER_TAR.to_string(),
        digest: l.digest.clone(),
        size: l.size,
    }));
    let base_name = format!("{}/{}", base.reference.registry, base.reference.repository);
    let base_name = match &base.reference.tag {
        Some(t) => format!("{base_name}:{t}"),
        None => base_name,
    };
    let m = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": config,
        "layers": all,
        "annotations": {
            "org.opencontainers.image.base.digest": base.manifest_digest,
            "org.opencontainers.image.base.name": base_name,
        }
    });
    serde_json::to_vec(&m).map_err(|e| ModelcarError::Internal(format!("manifest: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Base {
        Base {
            reference: ImageRef::parse("127.0.0.1:5000/base/busybox:1").unwrap(),
            manifest_digest: format!("sha256:{}", "b".repeat(64)),
            layers: vec![Descriptor {
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                digest: format!("sha256:{}", "1".repeat(64)),
                size: 10,
            }],
            config: json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "2".repeat(64))]}}),
        }
    }

    #[test]
    fn config_and_manifest_extend_the_base() {
        let l = ModelLayer {
            digest: format!("sha256:{}", "3".repeat(64)),
            size: 2048,
            label: "model.safetensors".into(),
        };
        let c: Value =
            serde_json::from_slice(&config(&base(), std::slice::from_ref(&l)).unwrap()).unwrap();
        assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(c["rootfs"]["diff_ids"][1], l.digest);
        assert_eq!(
            c["history"][0]["created_by"],
            "platform modelcar push: models/model.safetensors"
        );
        assert_eq!(c["config"]["Cmd"][0], "sh");
        let desc = Descriptor {
            media_type: MT_OCI_CONFIG.into(),
            digest: sha256_digest(b"x"),
            size: 1,
        };
        let m: Value = serde_json::from_slice(&manifest(&base(), &desc, &[l]).unwrap()).unwrap();
        assert_eq!(m["layers"][1]["mediaType"], MT_OCI_LAYER_TAR);
        assert_eq!(m["layers"][1]["size"], 2048);
        assert_eq!(m["config"]["mediaType"], MT_OCI_CONFIG);
        assert_eq!(
            m["annotations"]["org.opencontainers.image.base.name"],
            "127.0.0.1:5000/base/busybox:1"
        );
    }

    #[test]
    fn docker_layer_types_become_oci_types() {
        assert_eq!(
            oci_layer_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some("application/vnd.oci.image.layer.v1.tar+gzip")
        );
        assert_eq!(
            oci_layer_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            None
        );
    }
}
