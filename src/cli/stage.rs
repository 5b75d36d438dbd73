use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::mpsc;

use super::cluster::{connect, parse_duration, runtime, select_models, TargetArgs};
use super::root::render_checked;
use super::{Ctx, InputError};
use crate::catalog::resolve::PlannedModel;
use crate::cluster::argo;
use crate::cluster::kinds;
use crate::render::check;
use crate::stage::{self, LocalFile, Session, StageError, StagedFile};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Copies a model's weights onto its PVC through a short-lived restricted pod (non-root, all
capabilities dropped, read-only root filesystem), verifies every sha256 inside the pod, writes
<dir>/.platform-staged.json (source, commit, files, hashes) and swaps the directory into place.
Staging the same commit again is a no-op that says so (--force restages). The pod is deleted on
success, on error and on Ctrl-C. A running model on a ReadWriteOnce volume is refused: pause it first.
The PVC is created from the rendered manifest when it does not exist yet, so weights can be staged
before the model's first sync. Serving then reads /models/<dir> offline (raw vLLM, KServe) or
pvc://<model>-weights/<dir> (llm-d).")]
pub struct Args {
    /// Models to stage (names from config.yaml).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
    /// Every model whose weights are pre-staged (storage.staged: true).
    #[arg(long, conflicts_with = "models")]
    pub all: bool,
    /// Copy the model files of a local directory instead of downloading.
    #[arg(long, value_name = "DIR")]
    pub from_dir: Option<PathBuf>,
    /// Stage again even when the volume already holds this commit.
    #[arg(long)]
    pub force: bool,
    /// Image of the staging pod (needs tar, sha256sum, sh).
    #[arg(long, default_value = stage::DEFAULT_IMAGE)]
    pub image: String,
    /// How long to wait for the staging pod to start.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub pod_timeout: Duration,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let inputs = ctx.load()?;
    let (plan, tree) = render_checked(ctx, &inputs, None)?;
    let models: Vec<&PlannedModel> = if args.all {
        plan.models.iter().filter(|m| m.staged).collect()
    } else {
        select_models(ctx, &inputs, &plan, &args.models, false)?
    };
    for m in &models {
        if !m.staged {
            return Err(InputError(format!(
                "model {} is not pre-staged (storage.staged: false): its serving pods fetch {} themselves; set storage.staged: true to stage it",
                m.name,
                m.model.source
            ))
            .into());
        }
    }
    let Some(dir) = args.from_dir.clone() else {
        return Err(InputError(
            "downloading from the Hub is not available in this build yet: pass --from-dir DIR with the model files".into(),
        )
        .into());
    };
    let files = stage::local_files(&dir, stage::default_file)?;
    if files.is_empty() {
        return Err(InputError(format!(
            "{} holds no model files (config.json, tokenizer*, *.safetensors, …)",
            dir.display()
        ))
        .into());
    }
    let (objs, _) = check::objects(&tree);
    runtime()?.block_on(async {
        // Listen for Ctrl-C / SIGTERM before any pod exists, so an interruption always cleans up.
        let mut signals = Signals::new()?;
        let target = connect(ctx, &inputs, &args.target).await?;
        for m in &models {
            // Local hashes first: they identify the content (the "commit" of a local directory).
            let hashed = hash_all(&files).await?;
            let commit = stage::content_id(&hashed);
            let source = format!("dir://{}", dir.display());
            stage::check_not_running(&target.client, m).await?;
            ensure_pvc(&target.client, m, &objs).await?;
            let expected: Vec<(String, Option<String>)> = hashed.iter().map(|f| (f.path.clone(), Some(f.sha256.clone()))).collect();
            let flow = async {
                let session = Session::open(&target.client, m, &args.image, args.pod_timeout).await?;
                ctx.printer.info(format!("{}: staging pod {}/{} running", m.name, m.namespace, session.pod));
                if !args.force && session.is_staged(&commit, &expected) {
                    return Ok::<Option<Vec<StagedFile>>, StageError>(None);
                }
                let (tx, rx) = mpsc::channel(16);
                let sender = async {
                    for f in &files {
                        if tx.send(f.clone()).await.is_err() {
                            break;
                        }
                    }
                    drop(tx);
                };
                let (_, copied) = tokio::join!(sender, session.copy(rx, &source, "local", &commit));
                copied.map(Some)
            };
            let result = tokio::select! {
                r = flow => r,
                _ = signals.recv() => Err(StageError::Interrupted),
            };
            // The pod goes whatever happened (success, error, interruption).
            let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(target.client.clone(), &m.namespace);
            let closed = stage::pod::delete(&pods, &stage::pod::pod_name(&m.name)).await;
            match result {
                Ok(None) => ctx.printer.success(format!("{}: already staged ({commit}); nothing to do (--force restages)", m.name)),
                Ok(Some(staged)) => {
                    let bytes: u64 = staged.iter().map(|f| f.size).sum();
                    ctx.printer.success(format!(
                        "{}: staged {} file(s), {} bytes, into {}/{} on PVC {} (verified in the pod)",
                        m.name,
                        staged.len(),
                        bytes,
                        stage::pod::MOUNT,
                        m.model.weights_dir(),
                        m.model.pvc_name()
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            closed?;
        }
        Ok(())
    })
}

/// Ctrl-C and SIGTERM, registered up front.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// sha256 of every local file (off the async threads).
async fn hash_all(files: &[LocalFile]) -> Result<Vec<StagedFile>, StageError> {
    let files = files.to_vec();
    tokio::task::spawn_blocking(move || {
        use sha2::{Digest, Sha256};
        use std::io::Read;
        files
            .iter()
            .map(|f| {
                let mut file =
                    std::fs::File::open(&f.local).map_err(|e| StageError::io(&f.local, e))?;
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut size = 0u64;
                loop {
                    let n = file
                        .read(&mut buf)
                        .map_err(|e| StageError::io(&f.local, e))?;
                    if n == 0 {
                        break;
                    }
                    size += n as u64;
                    h.update(&buf[..n]);
                }
                Ok(StagedFile {
                    path: f.path.clone(),
                    size,
                    sha256: stage::tarstream::hex(&h.finalize()),
                })
            })
            .collect()
    })
    .await
    .map_err(|e| StageError::Internal(e.to_string()))?
}

/// Create the model's PVC from the rendered manifest when it does not exist yet.
async fn ensure_pvc(
    client: &kube::Client,
    m: &PlannedModel,
    objs: &[check::RenderedObject],
) -> Result<()> {
    let api = kinds::PVC.api(client, &m.namespace);
    let name = m.model.pvc_name();
    if api
        .get_opt(&name)
        .await
        .map_err(|e| anyhow::anyhow!("reading PVC {}/{name}: {e}", m.namespace))?
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
        return Err(InputError(format!(
            "PVC {}/{name} does not exist and is not rendered: run `platform root`",
            m.namespace
        ))
        .into());
    }
    // Argo CD's CreateNamespace only runs on sync: make sure the namespace exists too.
    let ns = kinds::NAMESPACE.api(client, "");
    if ns
        .get_opt(&m.namespace)
        .await
        .map_err(|e| anyhow::anyhow!("reading namespace {}: {e}", m.namespace))?
        .is_none()
    {
        let obj = check::RenderedObject {
            path: String::new(),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            name: m.namespace.clone(),
            value: serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": m.namespace, "labels": {crate::consts::LABEL_MANAGED_BY: crate::consts::MANAGED_BY_VALUE}}}),
        };
        argo::apply(client, &[obj], false).await?;
    }
    argo::apply(client, &pvc, false).await?;
    Ok(())
}
