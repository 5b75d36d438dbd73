//! `platform stage-model`: copy a model's weights onto its PVC through a short-lived pod.
//!
//! 1. refuse when the model is running and its volume is ReadWriteOnce (pause it first: the serving
//!    pod holds the volume, and a second pod on another node could not mount it);
//! 2. create the PVC from the rendered manifest when it does not exist yet (so weights can be staged
//!    before the model's first sync);
//! 3. start a restricted staging pod mounting the PVC read-write, wait until it runs;
//! 4. read the marker `<dir>/.platform-staged.json`: the same commit and files means nothing to do;
//! 5. stream the files as tar over exec stdin into `.staging-<commit>`, sent as they become
//!    available (the download and the copy overlap), in batches of about
//!    [`consts::STAGE_BATCH_BYTES`]: each batch is its own tar stream, and its files' sha256 are
//!    checked inside the pod as soon as it ends, while the next batch streams; when every file is
//!    in and verified, write the marker and swap the directory into place;
//! 6. delete the pod, on success, on error and on interruption.

pub mod pod;
pub mod progress;
pub mod run;
pub mod select;
pub mod tarstream;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::cluster::Client;
use crate::consts;
use crate::plan::PlannedModel;
use progress::CopyProgress;

/// Name of the marker file inside the model directory.
pub const MARKER: &str = ".platform-staged.json";
/// Default staging image: BusyBox (tar, sha256sum, sh), digest-pinned.
pub const DEFAULT_IMAGE: &str =
    "docker.io/library/busybox:1.37.0@sha256:bdf57e528e45e4433820e045b29b4597825a1c9e38353532d90a01445013f82e";

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(
        "model {model}'s volume {claim} is ReadWriteOnce and in use by {}{}: pause it first (`platform pause {model}`), \
         stage, then `platform resume {model}`",
        format!("pod(s) {}", .pods.join(", ")),
        .condition.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
    )]
    ModelRunning {
        model: String,
        claim: String,
        /// Pods that are not finished and mount the claim (never empty).
        pods: Vec<String>,
        /// The serving layer's own word, when it has one (e.g. KServe's `Stopped` condition).
        condition: Option<String>,
    },
    #[error("staging pod {pod} did not start: {why}")]
    PodNotRunning { pod: String, why: String },
    #[error(
        "staging pod {pod} did not start within {} (--pod-timeout): {why}",
        humantime::format_duration(*.timeout)
    )]
    PodStartTimeout {
        pod: String,
        timeout: Duration,
        why: String,
    },
    #[error("`{command}` failed in the staging pod: {output}")]
    Command { command: String, output: String },
    #[error("{0} is not a safe path for a model file (relative, no `..`, letters, digits, ._-+/)")]
    BadPath(String),
    #[error(
        "{}: {what}: a model directory is copied as regular files (and symlinks to regular files, \
         followed); {fix}", .path.display()
    )]
    NotAFile {
        path: PathBuf,
        what: String,
        fix: &'static str,
    },
    #[error("{}: not a usable safetensors index: {reason}", .path.display())]
    BadIndex { path: PathBuf, reason: String },
    #[error(
        "{}: the index lists {} shard(s) that the copy would not include, so vLLM could not load \
         the model; nothing was copied: {fix}",
        .index.display(), .missing.len()
    )]
    MissingShards {
        index: PathBuf,
        missing: Vec<String>,
        fix: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("streaming to the staging pod failed: {0}")]
    Stream(std::io::Error),
    #[error("sha256 mismatch for {path}: expected {expected}, got {actual}{where_}")]
    HashMismatch {
        path: String,
        expected: String,
        actual: String,
        where_: String,
    },
    /// A request to the cluster failed; the source keeps the client's chain of causes.
    #[error("{what}")]
    Api {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "interrupted ({0}): the staging pod was deleted and the model directory is unchanged; run \
         the command again to go on (files already downloaded are kept, a partial one resumes)"
    )]
    Interrupted(crate::signal::Signal),
    #[error("{} holds no model files (config.json, tokenizer*, *.safetensors, …)", .0.display())]
    NoModelFiles(PathBuf),
    #[error("{what} does not exist and is not rendered: run `platform root`")]
    NotRendered { what: String },
    #[error("model {model} is not pre-staged: {why}")]
    NotPreStaged { model: String, why: String },
    #[error(
        "--revision {revision} does not apply to model {model}: its source {source_text} is an S3 \
         prefix, which has no revisions (the objects' ETags pin what is staged); leave --revision out"
    )]
    RevisionForS3 {
        model: String,
        revision: String,
        source_text: String,
    },
    /// Downloading from the Hub failed.
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    /// Downloading from S3 failed.
    #[error(transparent)]
    S3(Box<crate::s3::S3Error>),
    /// Creating the PVC or its namespace failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::s3::S3Error> for StageError {
    fn from(e: crate::s3::S3Error) -> Self {
        StageError::S3(Box::new(e))
    }
}

impl StageError {
    pub fn io(path: &Path, source: std::io::Error) -> StageError {
        StageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn stream(e: std::io::Error) -> StageError {
        StageError::Stream(e)
    }
    pub fn api(what: impl Into<String>, e: kube::Error) -> StageError {
        StageError::Api {
            what: what.into(),
            source: Box::new(e),
        }
    }
}

/// A file ready to be copied: its path in the model directory and where it is locally, with the
/// sha256 the source promised (LFS files) when known.
#[derive(Debug, Clone)]
pub struct LocalFile {
    pub path: String,
    pub local: PathBuf,
    pub sha256: Option<String>,
}

/// A file as it landed on the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// What the marker records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Marker {
    pub source: String,
    pub revision: String,
    pub commit: String,
    pub files: Vec<StagedFile>,
}

/// An open staging session: the pod is running. Always end it with [`Session::close`].
pub struct Session {
    pods: Api<Pod>,
    pub pod: String,
    pub dir: String,
    /// The marker found on the volume, if any.
    pub existing: Option<Marker>,
    /// A tar stream ends after this many bytes or files (then its files are verified).
    batch: (u64, usize),
    progress: Arc<CopyProgress>,
}

/// Refuse when the model's ReadWriteOnce volume is in use (see the module docs). What holds a volume
/// is a Pod that mounts the claim and has not finished, whatever the layer and whoever made it
/// (KServe's `Stopped` condition is only written by a KServe controller, and a stopped model's pod
/// may still be terminating): those pods are found and named. The layer's own state is added as
/// information.
pub async fn check_not_running(client: &Client, m: &PlannedModel) -> Result<(), StageError> {
    if m.model.storage.access_mode.is_shared() {
        return Ok(());
    }
    let claim = m.model.pvc_name();
    let pods: Api<Pod> = Api::namespaced(client.kube(), &m.namespace);
    let staging = pod::pod_name(&m.name);
    let lp = kube::api::ListParams::default();
    let list = client
        .retry(|| pods.list(&lp))
        .await
        .map_err(|e| StageError::api(format!("listing pods in {}", m.namespace), e))?;
    let holders = holders_of(&list.items, &claim, &staging);
    if holders.is_empty() {
        return Ok(());
    }
    // Only for the message: the layer's own word on whether the model is stopped.
    let state = crate::actions::pause::state(client, m)
        .await
        .map_err(|e| StageError::Api {
            what: format!("reading model {}", m.name),
            source: Box::new(e),
        })?;
    Err(StageError::ModelRunning {
        model: m.name.clone(),
        claim,
        pods: holders,
        condition: state.map(|s| {
            if s.stopped {
                "the model is stopped, its pods are still terminating".to_string()
            } else {
                "the model is not stopped".to_string()
            }
        }),
    })
}

/// Pods (but `skip`, our own staging pod) that mount `claim` and have not finished.
pub fn holders_of(pods: &[Pod], claim: &str, skip: &str) -> Vec<String> {
    pods.iter()
        .filter(|p| p.metadata.name.as_deref() != Some(skip))
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded") | Some("Failed"))
        })
        .filter(|p| {
            p.spec.as_ref().is_some_and(|s| {
                s.volumes.iter().flatten().any(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .is_some_and(|c| c.claim_name == claim)
                })
            })
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

impl Session {
    /// Start the staging pod for `m` (its PVC must exist) and read the current marker.
    pub async fn open(
        client: &Client,
        m: &PlannedModel,
        image: &str,
        timeout: Duration,
        reporter: &dyn crate::report::Reporter,
    ) -> Result<Session, StageError> {
        let pods: Api<Pod> = Api::namespaced(client.kube(), &m.namespace);
        let events: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(client.kube(), &m.namespace);
        let name = pod::pod_name(&m.name);
        let spec = pod::pod_spec(&name, &m.namespace, &m.name, &m.model.pvc_name(), image);
        let session = Session {
            pods,
            pod: name,
            dir: m.model.weights_dir().to_string(),
            existing: None,
            batch: (consts::STAGE_BATCH_BYTES, consts::STAGE_BATCH_FILES),
            progress: Arc::new(CopyProgress::silent()),
        };
        if let Err(e) = pod::start(&session.pods, &events, &spec, timeout, reporter).await {
            let _ = session.close().await;
            return Err(e);
        }
        let marker_path = format!("{}/{}/{MARKER}", pod::MOUNT, session.dir);
        let existing = match pod::run(&session.pods, &session.pod, &["cat", &marker_path]).await {
            Ok(out) => serde_json::from_str::<Marker>(&out.stdout).ok(),
            Err(_) => None,
        };
        Ok(Session {
            existing,
            ..session
        })
    }

    /// Change where tar streams are cut (bytes, files); the defaults suit real models.
    pub fn with_batches(self, bytes: u64, files: usize) -> Session {
        Session {
            batch: (bytes.max(1), files.max(1)),
            ..self
        }
    }

    /// Report the copy's progress to `p`.
    pub fn with_progress(self, p: Arc<CopyProgress>) -> Session {
        Session {
            progress: p,
            ..self
        }
    }

    /// Whether the volume already holds exactly this commit's files.
    pub fn is_staged(&self, commit: &str, files: &[(String, Option<String>)]) -> bool {
        let Some(m) = &self.existing else {
            return false;
        };
        m.commit == commit
            && m.files.len() == files.len()
            && files.iter().all(|(p, sha)| {
                m.files
                    .iter()
                    .any(|f| &f.path == p && sha.as_ref().is_none_or(|s| s == &f.sha256))
            })
    }

    fn staging_dir(commit: &str) -> String {
        format!(
            "{}/.staging-{}",
            pod::MOUNT,
            &commit[..commit.len().min(12)]
        )
    }

    /// Stream the files arriving on `rx` (until it closes) into the staging directory and verify
    /// each one's sha256 inside the pod. Files go in batches (a tar stream each, see
    /// [`consts::STAGE_BATCH_BYTES`]); a batch is verified as soon as its stream ends, while the
    /// next one streams. Nothing is visible to serving until [`Session::finalize`].
    pub async fn transfer(
        &self,
        mut rx: mpsc::Receiver<LocalFile>,
        commit: &str,
    ) -> Result<Vec<StagedFile>, StageError> {
        let staging = Self::staging_dir(commit);
        pod::run(&self.pods, &self.pod, &["rm", "-rf", &staging]).await?;
        pod::run(&self.pods, &self.pod, &["mkdir", "-p", &staging]).await?;
        let mut running = FuturesUnordered::new();
        // The batch being filled: where its files go, and how much it holds.
        let mut current: Option<(mpsc::UnboundedSender<LocalFile>, u64, usize)> = None;
        let mut staged = Vec::new();
        let mut input_open = true;
        loop {
            let room = current.is_some() || running.len() < consts::STAGE_BATCHES_IN_FLIGHT;
            tokio::select! {
                f = rx.recv(), if input_open && room => {
                    let Some(f) = f else {
                        input_open = false;
                        current = None; // ends the last batch's stream
                        continue;
                    };
                    let size = tokio::fs::metadata(&f.local).await.map(|m| m.len()).unwrap_or(0);
                    let (tx, bytes, files) = match current.as_mut() {
                        Some(c) => c,
                        None => {
                            let (tx, brx) = mpsc::unbounded_channel();
                            running.push(self.batch(brx, &staging));
                            current.insert((tx, 0, 0))
                        }
                    };
                    // A batch that already failed reports why through `running`.
                    let _ = tx.send(f);
                    *bytes += size;
                    *files += 1;
                    if *bytes >= self.batch.0 || *files >= self.batch.1 {
                        current = None;
                    }
                }
                Some(done) = running.next(), if !running.is_empty() => staged.extend(done?),
                else => break,
            }
        }
        staged.sort_by(|a: &StagedFile, b| a.path.cmp(&b.path));
        Ok(staged)
    }

    /// One tar stream into the staging directory, then the sha256 of its files checked in the pod.
    async fn batch(
        &self,
        mut files: mpsc::UnboundedReceiver<LocalFile>,
        staging: &str,
    ) -> Result<Vec<StagedFile>, StageError> {
        let progress = &self.progress;
        let (out, fed) = pod::exec(
            &self.pods,
            &self.pod,
            &["tar", "xf", "-", "-C", staging],
            Some(|mut stdin: pod::Stdin| async move {
                let mut staged = Vec::new();
                while let Some(f) = files.recv().await {
                    let s = tarstream::append_file(
                        &mut stdin,
                        &f.path,
                        &f.local,
                        f.sha256.as_deref(),
                        progress,
                    )
                    .await?;
                    staged.push((s, f.local));
                }
                tarstream::finish(stdin).await?;
                Ok::<_, StageError>(staged)
            }),
        )
        .await?;
        let fed = fed.unwrap_or_else(|| Err(StageError::Internal("stdin was not attached".into())));
        let staged = match fed {
            // A local problem (unsafe path, unreadable file) says more than tar's broken archive.
            Err(e) if !matches!(e, StageError::Stream(_)) => return Err(e),
            // The pod's own words explain a failed stream (disk full, …) better than a broken pipe.
            _ if !out.success => {
                return Err(StageError::Command {
                    command: format!("tar xf - -C {staging}"),
                    output: format!("{} {}", out.stderr.trim(), out.message),
                })
            }
            fed => fed?,
        };
        self.verify(staging, &staged).await?;
        let staged: Vec<StagedFile> = staged.into_iter().map(|(s, _)| s).collect();
        self.progress.verified(&staged);
        Ok(staged)
    }

    /// sha256 of `staged` as they are on the volume, against what was sent; a mismatch says whether
    /// the local file is damaged (a known hash is not recomputed while streaming) or the copy.
    async fn verify(
        &self,
        staging: &str,
        staged: &[(StagedFile, PathBuf)],
    ) -> Result<(), StageError> {
        let mut cmd: Vec<String> = vec!["sha256sum".into()];
        cmd.extend(staged.iter().map(|(f, _)| format!("{staging}/{}", f.path)));
        let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let sums = pod::run(&self.pods, &self.pod, &argv).await?;
        for (f, local) in staged {
            let want_path = format!("{staging}/{}", f.path);
            let got = sums
                .stdout
                .lines()
                .find_map(|l| {
                    l.split_once("  ")
                        .filter(|(_, p)| *p == want_path)
                        .map(|(h, _)| h.to_string())
                })
                .unwrap_or_else(|| "missing".into());
            if got != f.sha256 {
                let local_sum = {
                    let local = local.clone();
                    tokio::task::spawn_blocking(move || crate::hub::sha256_file(&local))
                        .await
                        .ok()
                        .and_then(Result::ok)
                };
                let where_ = match local_sum {
                    Some(l) if l == f.sha256 => format!(
                        " on the volume, while the local file {} is intact: the copy was damaged on the way or on the volume; run again",
                        local.display()
                    ),
                    Some(l) => format!(
                        " on the volume, because the local file {} is damaged (its sha256 is {l}): delete it and run again",
                        local.display()
                    ),
                    None => format!(
                        " on the volume; the local file {} can no longer be read",
                        local.display()
                    ),
                };
                return Err(StageError::HashMismatch {
                    path: f.path.clone(),
                    expected: f.sha256.clone(),
                    actual: got,
                    where_,
                });
            }
        }
        Ok(())
    }

    /// Write the marker and swap the (verified) staging directory into place.
    pub async fn finalize(
        &self,
        staged: &[StagedFile],
        source: &str,
        revision: &str,
        commit: &str,
    ) -> Result<(), StageError> {
        let staging = Self::staging_dir(commit);
        let marker = Marker {
            source: source.into(),
            revision: revision.into(),
            commit: commit.into(),
            files: staged.to_vec(),
        };
        let json =
            serde_json::to_vec_pretty(&marker).map_err(|e| StageError::Internal(e.to_string()))?;
        pod::write_file(&self.pods, &self.pod, &format!("{staging}/{MARKER}"), json).await?;
        // Swap into place: the previous directory is kept until the new one is in.
        let target = format!("{}/{}", pod::MOUNT, self.dir);
        let previous = format!("{target}.previous");
        pod::run(&self.pods, &self.pod, &["rm", "-rf", &previous]).await?;
        if pod::run(&self.pods, &self.pod, &["test", "-d", &target])
            .await
            .is_ok()
        {
            pod::run(&self.pods, &self.pod, &["mv", &target, &previous]).await?;
        }
        pod::run(&self.pods, &self.pod, &["mv", &staging, &target]).await?;
        pod::run(&self.pods, &self.pod, &["rm", "-rf", &previous]).await?;
        Ok(())
    }

    /// Remove a staging directory left by a failed transfer (best effort).
    pub async fn discard(&self, commit: &str) {
        let _ = pod::run(
            &self.pods,
            &self.pod,
            &["rm", "-rf", &Self::staging_dir(commit)],
        )
        .await;
    }

    /// Delete the staging pod.
    pub async fn close(&self) -> Result<(), StageError> {
        pod::delete(&self.pods, &self.pod).await
    }
}

/// A local model directory as `--from-dir` copies it.
#[derive(Debug, Clone, Default)]
pub struct LocalDir {
    /// The selected files, sorted by path.
    pub files: Vec<LocalFile>,
    /// Selected files that are symlinks, with what they point to (as written in the link).
    pub links: Vec<(String, PathBuf)>,
}

/// The files of a local model directory that `keep` selects (by path relative to `dir`), sorted.
/// Regular files are taken; so are symlinks to regular files, followed (a Hugging Face cache
/// `snapshots/<sha>/` directory is all symlinks into `../../blobs/`) and listed in
/// [`LocalDir::links`]. A symlink to a directory is refused, and so is a selected path that is a
/// broken link or is (or points to) anything but a regular file (a FIFO, a device): each names
/// the path. Unselected paths are skipped whatever they are.
pub fn scan_dir(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<LocalDir, StageError> {
    let mut out = LocalDir::default();
    walk(dir, dir, &keep, &mut out)?;
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out.links.sort();
    Ok(out)
}

fn describe(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    keep: &impl Fn(&str) -> bool,
    out: &mut LocalDir,
) -> Result<(), StageError> {
    let entries = std::fs::read_dir(dir).map_err(|e| StageError::io(dir, e))?;
    for e in entries {
        let e = e.map_err(|e| StageError::io(dir, e))?;
        let path = e.path();
        let ft = e.file_type().map_err(|err| StageError::io(&path, err))?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let not_a_file = |what: String| StageError::NotAFile {
            path: path.clone(),
            what,
            fix: "replace it with the file itself",
        };
        if ft.is_dir() {
            walk(root, &path, keep, out)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|err| StageError::io(&path, err))?;
            let shown = target.display();
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() && keep(&rel) => {
                    out.files.push(LocalFile {
                        path: rel.clone(),
                        local: path.clone(),
                        sha256: None,
                    });
                    out.links.push((rel, target));
                }
                Ok(m) if m.is_file() => {}
                // Not followed: a directory link could lead anywhere (or back here).
                Ok(m) if m.is_dir() => {
                    return Err(StageError::NotAFile {
                        path: path.clone(),
                        what: format!(
                            "a symlink to the directory {shown} (directory links are not followed)"
                        ),
                        fix: "copy the directory in instead, or remove the link",
                    })
                }
                Ok(m) if keep(&rel) => {
                    return Err(not_a_file(format!(
                        "a symlink to {shown}, which is {}",
                        describe(&m.file_type())
                    )))
                }
                Err(err) if keep(&rel) => {
                    return Err(not_a_file(format!(
                        "a symlink to {shown}, which cannot be read ({err})"
                    )))
                }
                _ => {}
            }
        } else if ft.is_file() {
            if keep(&rel) {
                out.files.push(LocalFile {
                    path: rel,
                    local: path,
                    sha256: None,
                });
            }
        } else if keep(&rel) {
            return Err(not_a_file(describe(&ft).to_string()));
        }
    }
    Ok(())
}

/// Check `files` (from `dir`) against every safetensors index among them
/// (`*.safetensors.index.json`): each shard its `weight_map` names (relative to the index) must be
/// in the set, else the copied model could not load. A missing shard is named, with whether the
/// directory lacks it or the `--include`/`--exclude` globs left it out.
pub fn check_shards(dir: &Path, files: &[LocalFile]) -> Result<(), StageError> {
    let have: std::collections::BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for f in files
        .iter()
        .filter(|f| f.path.ends_with(".safetensors.index.json"))
    {
        let bad = |reason: String| StageError::BadIndex {
            path: f.local.clone(),
            reason,
        };
        let text = crate::fsread::read_text(
            &f.local,
            crate::fsread::MAX_INPUT_BYTES,
            "safetensors index",
        )
        .map_err(|e| bad(e.reason()))?;
        let index: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let Some(map) = index.get("weight_map").and_then(|m| m.as_object()) else {
            return Err(bad("no `weight_map` object".into()));
        };
        let base = match f.path.rsplit_once('/') {
            Some((d, _)) => format!("{d}/"),
            None => String::new(),
        };
        let mut shards = std::collections::BTreeSet::new();
        for v in map.values() {
            let Some(shard) = v.as_str() else {
                return Err(bad(format!("a `weight_map` value is not a file name: {v}")));
            };
            let shard = format!("{base}{shard}");
            tarstream::check_entry_path(&shard)
                .map_err(|_| bad(format!("`weight_map` names an unsafe path {shard:?}")))?;
            shards.insert(shard);
        }
        let (absent, excluded): (Vec<String>, Vec<String>) = shards
            .into_iter()
            .filter(|s| !have.contains(s.as_str()))
            .partition(|s| !dir.join(s).exists());
        if absent.is_empty() && excluded.is_empty() {
            continue;
        }
        let mut fix = Vec::new();
        if !absent.is_empty() {
            fix.push(format!(
                "{} lacks {} (an incomplete download?): fetch the missing shard(s)",
                dir.display(),
                absent.join(", ")
            ));
        }
        if !excluded.is_empty() {
            fix.push(format!(
                "the --include/--exclude globs leave out {}: include them",
                excluded.join(", ")
            ));
        }
        return Err(StageError::MissingShards {
            index: dir.join(&f.path),
            missing: absent.into_iter().chain(excluded).collect(),
            fix: fix.join("; "),
        });
    }
    Ok(())
}

/// A stable identifier for a local directory's contents (used as the commit for `--from-dir`).
pub fn content_id(files: &[StagedFile]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in files {
        h.update(f.path.as_bytes());
        h.update(f.sha256.as_bytes());
    }
    format!("local-{}", &crate::hub::hex(&h.finalize())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn safetensors_or_json(p: &str) -> bool {
        p.ends_with(".safetensors") || p.ends_with(".json")
    }

    #[test]
    fn links_to_files_are_followed_others_refused_when_selected() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("blobs")).unwrap();
        std::fs::create_dir_all(root.join("m/sub")).unwrap();
        std::fs::write(root.join("blobs/a"), b"a").unwrap();
        std::fs::write(root.join("m/config.json"), b"{}").unwrap();
        symlink("../blobs/a", root.join("m/model.safetensors")).unwrap();
        symlink("../../blobs/a", root.join("m/sub/x.safetensors")).unwrap();
        // Not selected: skipped whatever it is.
        symlink("/nonexistent", root.join("m/pytorch_model.bin")).unwrap();
        symlink("/dev/null", root.join("m/README.md")).unwrap();
        let dir = root.join("m");
        let got = scan_dir(&dir, safetensors_or_json).unwrap();
        let paths: Vec<&str> = got.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["config.json", "model.safetensors", "sub/x.safetensors"]
        );
        assert_eq!(
            got.links,
            [
                ("model.safetensors".to_string(), PathBuf::from("../blobs/a")),
                (
                    "sub/x.safetensors".to_string(),
                    PathBuf::from("../../blobs/a")
                ),
            ]
        );

        symlink("/nonexistent", dir.join("broken.safetensors")).unwrap();
        let e = scan_dir(&dir, safetensors_or_json).unwrap_err().to_string();
        assert!(
            e.contains("broken.safetensors: a symlink to /nonexistent, which cannot be read"),
            "{e}"
        );
        std::fs::remove_file(dir.join("broken.safetensors")).unwrap();

        symlink("/dev/null", dir.join("dev.json")).unwrap();
        let e = scan_dir(&dir, safetensors_or_json).unwrap_err().to_string();
        assert!(
            e.contains("dev.json: a symlink to /dev/null, which is a device"),
            "{e}"
        );
        std::fs::remove_file(dir.join("dev.json")).unwrap();

        symlink(root.join("blobs"), dir.join("linked")).unwrap();
        let e = scan_dir(&dir, |_| false).unwrap_err().to_string();
        assert!(e.contains("linked: a symlink to the directory"), "{e}");
    }

    fn files(dir: &Path, names: &[&str]) -> Vec<LocalFile> {
        names
            .iter()
            .map(|n| LocalFile {
                path: n.to_string(),
                local: dir.join(n),
                sha256: None,
            })
            .collect()
    }

    #[test]
    fn every_shard_of_an_index_must_be_in_the_file_set() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let index = r#"{"weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors", "c": "m-1.safetensors"}}"#;
        std::fs::write(dir.join("model.safetensors.index.json"), index).unwrap();
        std::fs::write(dir.join("sub/model.safetensors.index.json"), index).unwrap();
        let all = [
            "model.safetensors.index.json",
            "m-1.safetensors",
            "m-2.safetensors",
        ];
        check_shards(dir, &files(dir, &all)).unwrap();
        // No index: nothing to check.
        check_shards(dir, &files(dir, &["m-1.safetensors"])).unwrap();
        let e = check_shards(dir, &files(dir, &all[..2])).unwrap_err();
        match &e {
            StageError::MissingShards { missing, fix, .. } => {
                assert_eq!(missing, &["m-2.safetensors"]);
                assert!(fix.contains("lacks m-2.safetensors"), "{fix}");
            }
            other => panic!("{other:?}"),
        }
        // Shards are relative to their index.
        let e = check_shards(
            dir,
            &files(
                dir,
                &[
                    "sub/model.safetensors.index.json",
                    "sub/m-1.safetensors",
                    "m-2.safetensors",
                ],
            ),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("sub/model.safetensors.index.json"),
            "{e}"
        );
        assert!(
            matches!(e, StageError::MissingShards { ref missing, .. } if missing == &["sub/m-2.safetensors"])
        );
        // Present on disk but not selected: the globs are blamed.
        std::fs::write(dir.join("m-2.safetensors"), b"x").unwrap();
        let e = check_shards(dir, &files(dir, &all[..2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("globs leave out m-2.safetensors"), "{e}");
        // A broken index, and one that points outside.
        std::fs::write(dir.join("model.safetensors.index.json"), "{").unwrap();
        let e = check_shards(dir, &files(dir, &all))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid JSON"), "{e}");
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "../../etc/passwd"}}"#,
        )
        .unwrap();
        let e = check_shards(dir, &files(dir, &all))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsafe path"), "{e}");
    }
}
