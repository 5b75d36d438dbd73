//! The push itself: the model's files → layers (checked against the limit before any network),
//! the base resolved, every layer hashed in one streaming pass, the blobs the registry lacks
//! uploaded (base layers mounted from the same registry or copied), then config and manifest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use super::consts::{MT_OCI_CONFIG, MT_OCI_MANIFEST};
use super::credentials;
use super::image::{self, Descriptor, ModelLayer};
use super::layer::{self, Layer, SourceFile};
use super::reference::ImageRef;
use super::registry::{sha256_digest, Registry};
use super::ModelcarError;
use crate::hub::{FileFilter, HubClient};
use crate::report::{size, Event, Reporter};

/// Where the model's files are.
pub enum Input {
    /// Any local directory (its files selected by the filter).
    Dir(PathBuf),
    /// A Hub repository at a revision: the snapshot `stage-model` downloads (the same cache),
    /// downloaded first when it is not there yet.
    Hub {
        client: Box<HubClient>,
        repo: String,
        revision: String,
    },
}

/// The model's files, and what they are (for messages).
pub struct Collected {
    pub describe: String,
    pub files: Vec<SourceFile>,
}

/// Find the model's files: scan the directory, or resolve the Hub revision to its commit and make
/// sure the snapshot is in the cache (a dry run only resolves: sizes come from the Hub).
pub async fn collect(
    input: Input,
    filter: &FileFilter,
    dry_run: bool,
    reporter: &dyn Reporter,
) -> Result<Collected, ModelcarError> {
    match input {
        Input::Dir(dir) => {
            let scanned = crate::actions::stage::scan_dir(&dir, |p| filter.matches(p))?;
            if scanned.files.is_empty() {
                return Err(crate::actions::stage::StageError::NoModelFiles(dir).into());
            }
            crate::actions::stage::check_shards(&dir, &scanned.files)?;
            let files = scanned
                .files
                .into_iter()
                .map(|f| {
                    let size = std::fs::metadata(&f.local)
                        .map_err(|e| ModelcarError::io(&f.local, e))?
                        .len();
                    Ok(SourceFile {
                        path: f.path,
                        local: f.local,
                        size,
                    })
                })
                .collect::<Result<Vec<_>, ModelcarError>>()?;
            Ok(Collected {
                describe: format!("{} ({} files)", dir.display(), files.len()),
                files,
            })
        }
        Input::Hub {
            client,
            repo,
            revision,
        } => {
            let snap = client
                .resolve_with(&repo, &revision, filter, reporter)
                .await?;
            if snap.files.is_empty() {
                return Err(ModelcarError::BadSource {
                    what: format!("hf://{repo} at {revision} has no file the filter selects (--include/--exclude)"),
                });
            }
            let describe = format!(
                "hf://{repo} at {revision} (commit {}, {} files, {})",
                snap.commit,
                snap.files.len(),
                size(snap.total_bytes())
            );
            if dry_run {
                let dir = client.snapshot_dir(&repo, &snap.commit)?;
                let files = snap
                    .files
                    .iter()
                    .map(|f| SourceFile {
                        path: f.path.clone(),
                        local: dir.join(&f.path),
                        size: f.size,
                    })
                    .collect();
                return Ok(Collected { describe, files });
            }
            reporter.note(&format!(
                "{describe}: making sure the snapshot is in the local cache"
            ));
            let local = client.download(&snap, reporter, None).await?;
            let files = local
                .files
                .into_iter()
                .map(|f| SourceFile {
                    path: f.path,
                    local: f.local_path,
                    size: f.size,
                })
                .collect();
            Ok(Collected { describe, files })
        }
    }
}

pub struct Options {
    /// Where to push (`registry/repo[:tag]`).
    pub image: ImageRef,
    pub base: ImageRef,
    /// `os/arch[/variant]` picked from a multi-platform base.
    pub platform: String,
    pub max_layer: u64,
    pub chunk: u64,
    pub jobs: usize,
    /// Plain http for a registry that is not on loopback.
    pub insecure: bool,
    /// A docker config file instead of `$DOCKER_CONFIG/config.json` / `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
}

/// What happened to one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushedLayer {
    /// The file (or `N small files`, or `base layer N`).
    pub label: String,
    pub files: Vec<String>,
    pub size: u64,
    pub digest: Option<String>,
    /// `uploaded`, `present` (the registry had it), `mounted`, `copied`, or `planned` (dry run).
    pub state: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `oci://registry/repo@sha256:…`, for `source:`; empty on a dry run.
    pub reference: String,
    pub digest: Option<String>,
    /// The tag pushed, if any.
    pub tag: Option<String>,
    pub source: String,
    pub layers: Vec<PushedLayer>,
    /// Bytes sent to the registry (model layers and config).
    pub uploaded_bytes: u64,
}

/// The layers a push would make, checked against the limit; nothing is read or sent.
pub fn dry_run(collected: &Collected, max_layer: u64) -> Result<Outcome, ModelcarError> {
    let layers = layer::plan(&collected.files, max_layer)?;
    Ok(Outcome {
        reference: String::new(),
        digest: None,
        tag: None,
        source: collected.describe.clone(),
        layers: layers
            .iter()
            .map(|l| PushedLayer {
                label: l.label(),
                files: l.files.iter().map(|f| f.path.clone()).collect(),
                size: l.size,
                digest: None,
                state: "planned",
            })
            .collect(),
        uploaded_bytes: 0,
    })
}

fn credential_for(
    registry: &str,
    docker_config: Option<&Path>,
    reporter: &dyn Reporter,
) -> Result<Option<credentials::Credential>, ModelcarError> {
    let found = match docker_config {
        Some(p) => credentials::lookup_in(p, registry)?,
        None => credentials::lookup(registry)?,
    };
    match &found {
        Some(f) => reporter.detail(&format!(
            "{registry}: {} from {}",
            f.credential.who(),
            f.from
        )),
        None => reporter.detail(&format!(
            "{registry}: no credential in the docker config, anonymous"
        )),
    }
    Ok(found.map(|f| f.credential))
}

fn client_for(
    r: &ImageRef,
    opts: &Options,
    scopes: Vec<String>,
    reporter: &dyn Reporter,
) -> Result<Registry, ModelcarError> {
    let plain = r.is_loopback() || opts.insecure;
    let cred = credential_for(&r.registry, opts.docker_config.as_deref(), reporter)?;
    if plain && !r.is_loopback() {
        reporter.warn(&format!(
            "--insecure: talking to {} over plain http{}",
            r.registry,
            if cred.is_some() {
                ", credentials included"
            } else {
                ""
            }
        ));
    }
    Registry::new(&r.registry, r.api_host(), plain, cred, scopes)
}

/// Push the model's files as a modelcar image; see the module docs.
pub async fn push(
    collected: &Collected,
    opts: &Options,
    reporter: Arc<dyn Reporter>,
) -> Result<Outcome, ModelcarError> {
    let layers: Vec<Arc<Layer>> = layer::plan(&collected.files, opts.max_layer)?
        .into_iter()
        .map(Arc::new)
        .collect();
    let repo = opts.image.repository.clone();
    let same_registry = opts.base.registry == opts.image.registry;
    let mut scopes = vec![format!("repository:{repo}:pull,push")];
    if same_registry && opts.base.repository != repo {
        scopes.push(format!("repository:{}:pull", opts.base.repository));
    }
    let target = client_for(&opts.image, opts, scopes, reporter.as_ref())?;
    target.ping().await?;
    let base_client = if same_registry {
        None
    } else {
        let c = client_for(
            &opts.base,
            opts,
            vec![format!("repository:{}:pull", opts.base.repository)],
            reporter.as_ref(),
        )?;
        Some(c)
    };
    let base_reg = base_client.as_ref().unwrap_or(&target);
    let base = image::resolve_base(base_reg, &opts.base, &opts.platform).await?;
    let platform_manifest = if opts.base.digest.as_deref() == Some(base.manifest_digest.as_str()) {
        String::new()
    } else {
        format!(", {} manifest {}", opts.platform, base.manifest_digest)
    };
    reporter.note(&format!(
        "base {}{platform_manifest}: {} layer(s)",
        opts.base,
        base.layers.len()
    ));

    let mut done: Vec<PushedLayer> = Vec::new();
    for (i, l) in base.layers.iter().enumerate() {
        let state = if target.blob_exists(&repo, &l.digest).await? {
            "present"
        } else if same_registry
            && target
                .mount(&repo, &opts.base.repository, &l.digest)
                .await?
        {
            "mounted"
        } else {
            target
                .copy_blob(&repo, base_reg, &opts.base.repository, &l.digest, l.size)
                .await?;
            "copied"
        };
        reporter.detail(&format!("base layer {} {}: {state}", i + 1, l.digest));
        done.push(PushedLayer {
            label: format!("base layer {}", i + 1),
            files: vec![],
            size: l.size,
            digest: Some(l.digest.clone()),
            state,
        });
    }

    let digests = hash_all(&layers, opts.jobs, reporter.clone()).await?;
    let uploaded = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let results: Vec<PushedLayer> =
        stream::iter(layers.iter().cloned().zip(digests.iter().cloned()))
            .map(|(l, d)| {
                let target = &target;
                let repo = &repo;
                let reporter = reporter.clone();
                let uploaded = uploaded.clone();
                async move {
                    let state = if target.blob_exists(repo, &d).await? {
                        "present"
                    } else {
                        upload(target, repo, &l, &d, opts.chunk, reporter.clone()).await?;
                        uploaded.fetch_add(l.size, std::sync::atomic::Ordering::Relaxed);
                        "uploaded"
                    };
                    reporter.note(&format!(
                        "{}: {} ({}, {d})",
                        l.label(),
                        if state == "present" {
                            "already in the registry"
                        } else {
                            "uploaded"
                        },
                        size(l.size)
                    ));
                    Ok::<_, ModelcarError>(PushedLayer {
                        label: l.label(),
                        files: l.files.iter().map(|f| f.path.clone()).collect(),
                        size: l.size,
                        digest: Some(d),
                        state,
                    })
                }
            })
            .buffered(opts.jobs.max(1))
            .try_collect()
            .await?;
    done.extend(results);

    let model_layers: Vec<ModelLayer> = layers
        .iter()
        .zip(&digests)
        .map(|(l, d)| ModelLayer {
            digest: d.clone(),
            size: l.size,
            label: l.label(),
        })
        .collect();
    let config = image::config(&base, &model_layers)?;
    let config_desc = Descriptor {
        media_type: MT_OCI_CONFIG.to_string(),
        digest: sha256_digest(&config),
        size: config.len() as u64,
    };
    if !target.blob_exists(&repo, &config_desc.digest).await? {
        uploaded.fetch_add(config_desc.size, std::sync::atomic::Ordering::Relaxed);
        target
            .upload_bytes(&repo, config, &config_desc.digest)
            .await?;
    }
    let manifest = image::manifest(&base, &config_desc, &model_layers)?;
    let manifest_digest = sha256_digest(&manifest);
    let reference = opts.image.tag.clone().unwrap_or(manifest_digest.clone());
    let digest = target
        .put_manifest(&repo, &reference, manifest, MT_OCI_MANIFEST)
        .await?;
    Ok(Outcome {
        reference: opts.image.pinned(&digest),
        digest: Some(digest),
        tag: opts.image.tag.clone(),
        source: collected.describe.clone(),
        layers: done,
        uploaded_bytes: uploaded.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Every layer's digest, `jobs` at a time on blocking threads, with a progress transfer each.
async fn hash_all(
    layers: &[Arc<Layer>],
    jobs: usize,
    reporter: Arc<dyn Reporter>,
) -> Result<Vec<String>, ModelcarError> {
    stream::iter(layers.iter().cloned())
        .map(|l| {
            let reporter = reporter.clone();
            async move {
                let id = format!("hash {}", l.label());
                reporter.event(Event::TransferStarted {
                    id: &id,
                    label: &format!("hashing {}", l.label()),
                    total: l.size,
                    done: 0,
                });
                let r2 = reporter.clone();
                let id2 = id.clone();
                let l2 = l.clone();
                let out = tokio::task::spawn_blocking(move || {
                    l2.digest(|n| r2.event(Event::Bytes { id: &id2, n }))
                })
                .await
                .map_err(|e| ModelcarError::Internal(format!("hashing task: {e}")));
                reporter.event(Event::TransferFinished { id: &id });
                out?
            }
        })
        .buffered(jobs.max(1))
        .try_collect()
        .await
}

async fn upload(
    target: &Registry,
    repo: &str,
    l: &Arc<Layer>,
    digest: &str,
    chunk: u64,
    reporter: Arc<dyn Reporter>,
) -> Result<(), ModelcarError> {
    let id = format!("push {}", l.label());
    reporter.event(Event::TransferStarted {
        id: &id,
        label: &format!("uploading {}", l.label()),
        total: l.size,
        done: 0,
    });
    let r2 = reporter.clone();
    let id2 = id.clone();
    let sent: Arc<dyn Fn(u64) + Send + Sync> =
        Arc::new(move |n| r2.event(Event::Bytes { id: &id2, n }));
    let out = target
        .upload_layer(repo, l.clone(), digest, chunk, sent)
        .await;
    reporter.event(Event::TransferFinished { id: &id });
    out
}
