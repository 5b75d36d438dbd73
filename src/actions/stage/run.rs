//! `stage-model` as a library action: [`Stager::prepare`] readies the source once (a local
//! directory is hashed once for every model; the Hub client is reused), then [`Stager::stage`]
//! copies one model's files onto its PVC: the PVC (and namespace) created from the rendered
//! manifests when missing, the volume checked free, a staging pod started, the files streamed while
//! they download and verified in the pod, the directory swapped into place. The staging pod is
//! deleted by a [`PodGuard`] whatever happens: success, error, or the `interrupt` future firing.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::sync::mpsc;

use super::progress::CopyProgress;
use super::{pod, LocalFile, Session, StageError, StagedFile};
use crate::cluster::apply::server_side_apply;
use crate::cluster::kinds;
use crate::cluster::Client;
use crate::hub::{FileFilter, HubClient, ReadyFile, Snapshot};
use crate::plan::PlannedModel;
use crate::render::check::RenderedObject;
use crate::report::{size, Reporter};
use crate::s3::{S3Client, S3Snapshot};
use crate::signal::Signal;

/// Where the weights come from.
pub enum Input {
    /// A local directory's selected files (see `stage::scan_dir`).
    Dir { dir: PathBuf, files: Vec<LocalFile> },
    /// Downloads: the Hugging Face Hub client for `hf://` models, the S3 client for `s3://`
    /// models (each `None` when no selected model needs it).
    Remote(Box<Remotes>),
}

/// The download clients of [`Input::Remote`].
#[derive(Default)]
pub struct Remotes {
    pub hub: Option<HubClient>,
    pub s3: Option<S3Client>,
}

pub struct Options {
    /// Hub revision; default: each model's `revision`.
    pub revision: Option<String>,
    pub filter: FileFilter,
    /// Stage again even when the volume already holds this commit.
    pub force: bool,
    /// Image of the staging pod.
    pub image: String,
    pub pod_timeout: Duration,
}

/// What `stage-model --dry-run` says of one model (`-o json`: the same fields).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub model: String,
    /// `hf://…`, `s3://…` or `dir://…`.
    pub source: String,
    /// The commit (Hub), listing (S3) or content id (directory) that would be recorded.
    pub commit: String,
    pub files: Vec<PreviewFile>,
    pub bytes: u64,
    /// `namespace/claim`.
    pub pvc: String,
    /// Whether the PVC exists (else it would be created from the rendered manifest).
    pub pvc_exists: bool,
    /// Where the files would land in the staging pod (`/models/<dir>`).
    pub dir: String,
    /// Why a real run would refuse, when it would.
    pub refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreviewFile {
    pub path: String,
    pub bytes: u64,
}

/// How staging one model ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The volume already held this commit's files: nothing copied.
    AlreadyStaged { commit: String },
    /// Copied and verified.
    Staged {
        files: usize,
        bytes: u64,
        commit: String,
    },
}

/// Deletes the model's staging pod when closed, whether or not a session ever opened (an
/// interruption during start-up leaves a pod being created). `close` is awaited on every path
/// of [`Stager::stage`].
pub struct PodGuard {
    pods: Api<Pod>,
    name: String,
}

impl PodGuard {
    pub fn for_model(client: &Client, m: &PlannedModel) -> PodGuard {
        PodGuard {
            pods: Api::namespaced(client.kube(), &m.namespace),
            name: pod::pod_name(&m.name),
        }
    }

    /// Delete the pod and wait until it is gone.
    pub async fn close(self) -> Result<(), StageError> {
        pod::delete(&self.pods, &self.name).await
    }
}

impl Input {
    /// The files `--from-dir` copies, checked before anything is copied: a directory without model
    /// files, a selected path that is not a regular file (or a symlink to one), and a shard the
    /// safetensors index lists but the file set lacks are errors; followed symlinks are said.
    pub fn scan_dir(
        dir: &std::path::Path,
        filter: &FileFilter,
        reporter: &dyn Reporter,
    ) -> Result<Input, StageError> {
        let scanned = super::scan_dir(dir, |p| filter.matches(p))?;
        if scanned.files.is_empty() {
            return Err(StageError::NoModelFiles(dir.to_path_buf()));
        }
        super::check_shards(dir, &scanned.files)?;
        if !scanned.links.is_empty() {
            reporter.note(&format!(
                "{}: {} of the {} file(s) are symlinks (a Hugging Face cache snapshot?): copying the files they point to",
                dir.display(),
                scanned.links.len(),
                scanned.files.len()
            ));
            for (path, target) in &scanned.links {
                reporter.detail(&format!("  {path} -> {} (followed)", target.display()));
            }
        }
        Ok(Input::Dir {
            dir: dir.to_path_buf(),
            files: scanned.files,
        })
    }
}

/// A prepared source, reused for every model.
enum Prepared {
    Dir {
        dir: PathBuf,
        files: Vec<LocalFile>,
        hashed: Vec<StagedFile>,
    },
    Remote(Box<Remotes>),
}

/// One model's source.
enum Source<'a> {
    Hub {
        client: &'a HubClient,
        snapshot: Snapshot,
    },
    S3 {
        client: &'a S3Client,
        snapshot: Box<S3Snapshot>,
    },
    Dir {
        dir: &'a PathBuf,
        files: &'a [LocalFile],
        hashed: &'a [StagedFile],
    },
}

impl Source<'_> {
    fn commit(&self) -> String {
        match self {
            Source::Hub { snapshot, .. } => snapshot.commit.clone(),
            Source::S3 { snapshot, .. } => snapshot.snapshot.commit.clone(),
            Source::Dir { hashed, .. } => super::content_id(hashed),
        }
    }

    fn describe(&self, m: &PlannedModel) -> String {
        match self {
            Source::Hub { .. } | Source::S3 { .. } => m.model.source.to_string(),
            Source::Dir { dir, .. } => format!("dir://{}", dir.display()),
        }
    }

    fn total_bytes(&self) -> u64 {
        match self {
            Source::Hub { snapshot, .. } => snapshot.total_bytes(),
            Source::S3 { snapshot, .. } => snapshot.snapshot.total_bytes(),
            Source::Dir { hashed, .. } => hashed.iter().map(|f| f.size).sum(),
        }
    }

    /// (path, size) of every file.
    fn sizes(&self) -> Vec<(String, u64)> {
        match self {
            Source::Hub { snapshot, .. } => snapshot
                .files
                .iter()
                .map(|f| (f.path.clone(), f.size))
                .collect(),
            Source::S3 { snapshot, .. } => snapshot
                .snapshot
                .files
                .iter()
                .map(|f| (f.path.clone(), f.size))
                .collect(),
            Source::Dir { hashed, .. } => hashed.iter().map(|f| (f.path.clone(), f.size)).collect(),
        }
    }

    /// (path, sha256 when known) of every file, for the already-staged check.
    fn expected(&self) -> Vec<(String, Option<String>)> {
        match self {
            Source::S3 { snapshot, .. } => snapshot
                .snapshot
                .files
                .iter()
                .map(|f| (f.path.clone(), f.sha256.clone()))
                .collect(),
            Source::Hub { snapshot, .. } => snapshot
                .files
                .iter()
                .map(|f| (f.path.clone(), f.sha256.clone()))
                .collect(),
            Source::Dir { hashed, .. } => hashed
                .iter()
                .map(|f| (f.path.clone(), Some(f.sha256.clone())))
                .collect(),
        }
    }
}

/// Stages models one after another with one prepared source.
pub struct Stager<'a> {
    client: &'a Client,
    input: Prepared,
    opts: Options,
    reporter: Arc<dyn Reporter>,
}

impl<'a> Stager<'a> {
    /// Ready the source: a local directory is hashed here, once, whatever the number of models
    /// (the copy sends these sums and the pod checks the files against them).
    pub async fn prepare(
        client: &'a Client,
        input: Input,
        opts: Options,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Stager<'a>, StageError> {
        let input = match input {
            Input::Dir { dir, files } => {
                let hashed = hash_all(&files).await?;
                let files = files
                    .into_iter()
                    .zip(&hashed)
                    .map(|(f, h)| LocalFile {
                        sha256: Some(h.sha256.clone()),
                        ..f
                    })
                    .collect();
                Prepared::Dir { dir, files, hashed }
            }
            Input::Remote(r) => {
                if let Some(s3) = &r.s3 {
                    reporter.note(&s3.describe());
                }
                Prepared::Remote(r)
            }
        };
        Ok(Stager {
            client,
            input,
            opts,
            reporter,
        })
    }

    /// What [`stage`](Self::stage) would copy for `m`, and where, without writing anything: the
    /// source resolved (a Hub or S3 listing; a directory's files), the target PVC and whether it
    /// exists, and why a real run would refuse (the model runs on its ReadWriteOnce volume).
    pub async fn preview(&self, m: &PlannedModel) -> Result<Preview, StageError> {
        let source = self.source(m).await?;
        let refused = match super::check_not_running(self.client, m).await {
            Ok(()) => None,
            Err(e @ StageError::ModelRunning { .. }) => Some(crate::error::one_line(&e)),
            Err(e) => return Err(e),
        };
        let claim = m.model.pvc_name();
        let pvcs = crate::cluster::kinds::PVC.api(self.client, &m.namespace);
        let pvc_exists = self
            .client
            .retry(|| pvcs.get_opt(&claim))
            .await
            .map_err(|e| {
                StageError::Cluster(crate::cluster::ClusterError::api(
                    format!("reading PVC {}/{claim}", m.namespace),
                    e,
                ))
            })?
            .is_some();
        Ok(Preview {
            model: m.name.clone(),
            source: source.describe(m),
            commit: source.commit(),
            files: source
                .sizes()
                .into_iter()
                .map(|(path, bytes)| PreviewFile { path, bytes })
                .collect(),
            bytes: source.total_bytes(),
            pvc: format!("{}/{claim}", m.namespace),
            pvc_exists,
            dir: format!("{}/{}", super::pod::MOUNT, m.model.weights_dir()),
            refused,
        })
    }

    /// Stage `m`; `objs` are the rendered objects (its PVC is created from them when missing).
    /// Stops with [`StageError::Interrupted`] when `interrupt` resolves (a signal), at any step;
    /// once the staging pod may exist, it is deleted whatever happens.
    pub async fn stage(
        &self,
        m: &PlannedModel,
        objs: &[RenderedObject],
        interrupt: impl Future<Output = Signal>,
    ) -> Result<Outcome, StageError> {
        let mut interrupt = std::pin::pin!(interrupt);
        let source = tokio::select! {
            r = self.before_pod(m, objs) => r?,
            s = &mut interrupt => return Err(StageError::Interrupted(s)),
        };
        let target = format!("PVC {}/{}", m.namespace, m.model.pvc_name());
        let copy = Arc::new(CopyProgress::new(
            self.reporter.clone(),
            source.total_bytes(),
            &target,
        ));
        let guard = PodGuard::for_model(self.client, m);
        let result = tokio::select! {
            r = self.flow(m, &source, copy.clone()) => r,
            s = &mut interrupt => Err(StageError::Interrupted(s)),
        };
        copy.finish();
        let closed = guard.close().await;
        let outcome = result?;
        closed?;
        Ok(outcome)
    }

    /// Everything before the staging pod: the source resolved, the volume checked free, the PVC
    /// created when missing.
    async fn before_pod(
        &self,
        m: &PlannedModel,
        objs: &[RenderedObject],
    ) -> Result<Source<'_>, StageError> {
        let source = self.source(m).await?;
        super::check_not_running(self.client, m).await?;
        ensure_pvc(self.client, m, objs).await?;
        Ok(source)
    }

    /// The model's source: the prepared directory, or the Hub snapshot at the revision.
    async fn source(&self, m: &PlannedModel) -> Result<Source<'_>, StageError> {
        Ok(match &self.input {
            Prepared::Dir { dir, files, hashed } => Source::Dir { dir, files, hashed },
            Prepared::Remote(r) => match (m.model.source.s3(), &r.hub, &r.s3) {
                (Some((bucket, prefix)), _, Some(client)) => {
                    self.s3_source(m, client, bucket, prefix).await?
                }
                (None, Some(client), _) => self.hub_source(m, client).await?,
                _ => {
                    return Err(StageError::Internal(format!(
                        "no download client for {}",
                        m.model.source
                    )))
                }
            },
        })
    }

    /// The S3 listing of `s3://bucket/prefix`, pinned by its identity.
    async fn s3_source<'c>(
        &self,
        m: &PlannedModel,
        client: &'c S3Client,
        bucket: &str,
        prefix: &str,
    ) -> Result<Source<'c>, StageError> {
        if let Some(revision) = &self.opts.revision {
            return Err(StageError::RevisionForS3 {
                model: m.name.clone(),
                revision: revision.clone(),
                source_text: m.model.source.to_string(),
            });
        }
        let snapshot = client
            .resolve(
                bucket,
                prefix,
                &self.opts.filter.for_file(m.model.single_file()),
                self.reporter.as_ref(),
            )
            .await?;
        crate::s3::report_checks(&snapshot, self.reporter.as_ref());
        self.reporter.note(&format!(
            "{}: {} is listing {} ({} files, {})",
            m.name,
            m.model.source,
            snapshot.snapshot.commit,
            snapshot.snapshot.files.len(),
            size(snapshot.snapshot.total_bytes())
        ));
        Ok(Source::S3 {
            client,
            snapshot: Box::new(snapshot),
        })
    }

    /// The Hub snapshot of the model's repository at the revision.
    async fn hub_source<'c>(
        &self,
        m: &PlannedModel,
        client: &'c HubClient,
    ) -> Result<Source<'c>, StageError> {
        Ok({
            {
                let repo = m.model.hf_repo().unwrap_or_default().to_string();
                let revision = self.revision(m);
                let filter = self.opts.filter.for_file(m.model.single_file());
                let snapshot = client
                    .resolve_with(&repo, &revision, &filter, self.reporter.as_ref())
                    .await?;
                self.reporter.note(&format!(
                    "{}: {} at {revision} is commit {} ({} files, {})",
                    m.name,
                    m.model.source,
                    snapshot.commit,
                    snapshot.files.len(),
                    size(snapshot.total_bytes())
                ));
                Source::Hub { client, snapshot }
            }
        })
    }

    /// What the marker records as the revision: the one asked for (Hub), or
    /// [`crate::s3::consts::REVISION`] for an S3 listing.
    fn revision(&self, m: &PlannedModel) -> String {
        if m.model.source.s3().is_some() {
            return crate::s3::consts::REVISION.to_string();
        }
        self.opts
            .revision
            .clone()
            .unwrap_or_else(|| m.model.revision.clone())
    }

    /// Open the session, copy (unless already staged), finalize.
    async fn flow(
        &self,
        m: &PlannedModel,
        source: &Source<'_>,
        copy: Arc<CopyProgress>,
    ) -> Result<Outcome, StageError> {
        let commit = source.commit();
        let session = Session::open(
            self.client,
            m,
            &self.opts.image,
            self.opts.pod_timeout,
            self.reporter.as_ref(),
        )
        .await?
        .with_progress(copy);
        if !self.opts.force && session.is_staged(&commit, &source.expected()) {
            return Ok(Outcome::AlreadyStaged { commit });
        }
        let (tx, rx) = mpsc::channel::<LocalFile>(64);
        // The first failure on either side stops the other (a download stopped here resumes next
        // time from its saved state).
        let transfer = session.transfer(rx, &commit);
        let staged = match tokio::try_join!(self.produce(source, tx), transfer) {
            Ok(((), staged)) => staged,
            Err(e) => {
                session.discard(&commit).await;
                return Err(e);
            }
        };
        let want = source.expected().len();
        if staged.len() != want {
            session.discard(&commit).await;
            return Err(StageError::Internal(format!(
                "{} of {want} files arrived",
                staged.len()
            )));
        }
        session
            .finalize(&staged, &source.describe(m), &self.revision(m), &commit)
            .await?;
        Ok(Outcome::Staged {
            files: staged.len(),
            bytes: staged.iter().map(|f| f.size).sum(),
            commit,
        })
    }

    /// Feed the copy: the directory's files, or each Hub file as soon as it is verified on disk.
    async fn produce(
        &self,
        source: &Source<'_>,
        tx: mpsc::Sender<LocalFile>,
    ) -> Result<(), StageError> {
        match source {
            Source::Dir { files, .. } => {
                for f in files.iter() {
                    if tx.send(f.clone()).await.is_err() {
                        break;
                    }
                }
                Ok(())
            }
            Source::Hub { .. } | Source::S3 { .. } => {
                let (htx, mut hrx) = mpsc::channel::<ReadyFile>(64);
                // Owns `hrx`: when the copy fails, the download's next ready file finds the
                // channel closed instead of a full queue.
                let forward = async move {
                    while let Some(r) = hrx.recv().await {
                        let f = LocalFile {
                            path: r.path,
                            local: r.local_path,
                            sha256: Some(r.sha256),
                        };
                        if tx.send(f).await.is_err() {
                            break;
                        }
                    }
                };
                let reporter = self.reporter.as_ref();
                let download = async move {
                    match source {
                        Source::Hub { client, snapshot } => client
                            .download(snapshot, reporter, Some(htx))
                            .await
                            .map(|_| ())
                            .map_err(StageError::from),
                        Source::S3 { client, snapshot } => client
                            .download(snapshot, reporter, Some(htx))
                            .await
                            .map(|_| ())
                            .map_err(StageError::from),
                        Source::Dir { .. } => Ok(()),
                    }
                };
                let (done, ()) = tokio::join!(download, forward);
                done
            }
        }
    }
}

/// sha256 of every local file (off the async threads).
async fn hash_all(files: &[LocalFile]) -> Result<Vec<StagedFile>, StageError> {
    let files = files.to_vec();
    tokio::task::spawn_blocking(move || {
        files
            .iter()
            .map(|f| {
                let size = std::fs::metadata(&f.local)
                    .map_err(|e| StageError::io(&f.local, e))?
                    .len();
                let sha256 =
                    crate::hub::sha256_file(&f.local).map_err(|e| StageError::io(&f.local, e))?;
                Ok(StagedFile {
                    path: f.path.clone(),
                    size,
                    sha256,
                })
            })
            .collect()
    })
    .await
    .map_err(|e| StageError::Internal(e.to_string()))?
}

/// Create the model's PVC (and its namespace) from the rendered manifests when it does not exist
/// yet: Argo CD's CreateNamespace only runs on sync.
async fn ensure_pvc(
    client: &Client,
    m: &PlannedModel,
    objs: &[RenderedObject],
) -> Result<(), StageError> {
    let api = kinds::PVC.api(client, &m.namespace);
    let name = m.model.pvc_name();
    if api
        .get_opt(&name)
        .await
        .map_err(|e| StageError::api(format!("reading PVC {}/{name}", m.namespace), e))?
        .is_some()
    {
        return Ok(());
    }
    let pvc: Vec<_> = objs
        .iter()
        .filter(|o| o.kind == "PersistentVolumeClaim" && o.name == name)
        .cloned()
        .collect();
    if pvc.is_empty() {
        return Err(StageError::NotRendered {
            what: format!("PVC {}/{name}", m.namespace),
        });
    }
    let ns = kinds::NAMESPACE.api(client, "");
    if ns
        .get_opt(&m.namespace)
        .await
        .map_err(|e| StageError::api(format!("reading namespace {}", m.namespace), e))?
        .is_none()
    {
        let obj = RenderedObject {
            path: String::new(),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            name: m.namespace.clone(),
            value: serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": m.namespace, "labels": {crate::consts::LABEL_MANAGED_BY: crate::consts::MANAGED_BY_VALUE}}}),
        };
        server_side_apply(client, &[obj], false).await?;
    }
    server_side_apply(client, &pvc, false).await?;
    Ok(())
}
