use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::mpsc;

use super::cluster::{connect, parse_duration, runtime, select_models, TargetArgs};
use super::root::render_checked;
use super::{Ctx, InputError};
use crate::catalog::resolve::PlannedModel;
use crate::cluster::{apply::server_side_apply, kinds};
use crate::hub::{
    ConsoleProgress, FileFilter, HubClient, NoProgress, Progress, ReadyFile, Snapshot,
};
use crate::render::check;
use crate::stage::progress::{ConsoleCopyProgress, CopyProgress, NoCopyProgress};
use crate::stage::{self, LocalFile, Session, StageError, StagedFile};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Downloads the model's files from the Hugging Face Hub (HF_ENDPOINT for a mirror; token from HF_TOKEN,
HUGGING_FACE_HUB_TOKEN, the Hugging Face token file or --token-file, never printed) into a local cache
keyed by repo and commit, and copies them onto the model's PVC through a short-lived restricted pod
(non-root, all capabilities dropped, read-only root filesystem) while later files still download. Every
sha256 is verified inside the pod, <dir>/.platform-staged.json records source, commit, files and hashes,
and the directory is swapped into place only when everything arrived. Staging the same commit again is
a no-op that says so (--force restages). The pod is deleted on success, on error, on Ctrl-C and SIGTERM.
A running model on a ReadWriteOnce volume is refused: `platform pause MODEL` first. The PVC is created
from the rendered manifest when it does not exist yet. Serving reads /models/<dir> offline (raw vLLM,
KServe) or pvc://<model>-weights/<dir> (llm-d).

Examples:
  platform stage-model qwen-cpu
  platform stage-model qwen-cpu --revision 7ae557604adf67be50417f59c2c2f167def9a775
  platform stage-model --all
  platform stage-model qwen-cpu --from-dir ./weights
  platform stage-model --download-only --source hf://Qwen/Qwen2.5-0.5B-Instruct --revision main --to DIR")]
pub struct Args {
    /// Models to stage (names from config.yaml).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
    /// Every model whose weights are pre-staged (storage.staged: true).
    #[arg(long, conflicts_with = "models")]
    pub all: bool,
    /// Hub revision (branch, tag or commit); default: the model's `revision`.
    #[arg(long)]
    pub revision: Option<String>,
    /// Copy the model files of a local directory instead of downloading.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["download_only"])]
    pub from_dir: Option<PathBuf>,
    /// Only download (no cluster): with --source and --to.
    #[arg(long, requires_all = ["source", "to"], conflicts_with_all = ["models", "all"])]
    pub download_only: bool,
    /// With --download-only: what to download, `hf://org/name`.
    #[arg(long, value_name = "hf://ORG/NAME")]
    pub source: Option<String>,
    /// With --download-only: where to put the files.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Only files matching these globs (replaces the default set: config, tokenizer, *.safetensors).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip files matching these globs.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Read the Hub token from this file.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Stage again even when the volume already holds this commit; with --download-only, replace
    /// files in --to that differ from the snapshot's (refused otherwise).
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

/// Where a model's files come from.
/// Where the weights come from: a local directory (scanned, then hashed) or the Hub.
enum Input {
    Dir(PathBuf, Vec<LocalFile>),
    Hashed(PathBuf, Vec<LocalFile>, Vec<StagedFile>),
    Hub(Box<HubClient>),
}

enum Source<'a> {
    Hub {
        client: &'a HubClient,
        snapshot: Snapshot,
    },
    Dir {
        dir: PathBuf,
        files: Vec<LocalFile>,
        hashed: Vec<StagedFile>,
    },
}

impl Source<'_> {
    fn commit(&self) -> String {
        match self {
            Source::Hub { snapshot, .. } => snapshot.commit.clone(),
            Source::Dir { hashed, .. } => stage::content_id(hashed),
        }
    }

    fn describe(&self, m: &PlannedModel) -> String {
        match self {
            Source::Hub { .. } => m.model.source.clone(),
            Source::Dir { dir, .. } => format!("dir://{}", dir.display()),
        }
    }

    fn total_bytes(&self) -> u64 {
        match self {
            Source::Hub { snapshot, .. } => snapshot.total_bytes(),
            Source::Dir { hashed, .. } => hashed.iter().map(|f| f.size).sum(),
        }
    }

    /// (path, sha256 when known) of every file, for the already-staged check.
    fn expected(&self) -> Vec<(String, Option<String>)> {
        match self {
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

fn progress(ctx: &Ctx) -> Box<dyn Progress> {
    if ctx.printer.quiet {
        Box::new(NoProgress)
    } else {
        Box::new(ConsoleProgress::new())
    }
}

/// The download's and the copy's progress, drawn together on a terminal.
fn progress_pair(
    ctx: &Ctx,
    total: u64,
    target: String,
) -> (Box<dyn Progress>, Arc<dyn CopyProgress>) {
    if ctx.printer.quiet {
        return (Box::new(NoProgress), Arc::new(NoCopyProgress));
    }
    let download = ConsoleProgress::new();
    let copy = ConsoleCopyProgress::new(
        download.multi().as_ref(),
        total,
        target,
        Duration::from_secs(10),
    );
    (Box::new(download), Arc::new(copy))
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let filter = FileFilter::new(&args.include, &args.exclude)?;
    if args.download_only {
        return download_only(ctx, &args, &filter);
    }
    let inputs = ctx.load()?;
    let (plan, tree) = render_checked(ctx, &inputs, None)?;
    let models: Vec<&PlannedModel> = if args.all {
        plan.models.iter().filter(|m| m.staged).collect()
    } else {
        select_models(ctx, &inputs, &plan, &args.models, false)?
    };
    if let Some(m) = models.iter().find(|m| !m.staged) {
        return Err(InputError(format!(
            "model {} is not pre-staged (storage.staged: false): its serving pods fetch {} themselves; set storage.staged: true to stage it",
            m.name, m.model.source
        ))
        .into());
    }
    if let Some(dir) = args.from_dir.as_ref().filter(|d| !d.is_dir()) {
        return Err(InputError(format!("--from-dir {}: not a directory", dir.display())).into());
    }
    // Input first: the local directory's file set, or the Hub client (its token checked), before
    // the cluster is touched.
    let input = match &args.from_dir {
        Some(dir) => Input::Dir(dir.clone(), scan_local(ctx, dir, &filter)?),
        None => Input::Hub(Box::new(HubClient::from_env(args.token_file.as_deref())?)),
    };
    let (objs, _) = check::objects(&tree);
    runtime()?.block_on(async {
        // Listen for Ctrl-C / SIGTERM before any pod exists, so an interruption always cleans up.
        let mut signals = Signals::new()?;
        let target = connect(ctx, &inputs, &args.target).await?;
        // A local directory is hashed once, whatever the number of models: the copy sends these
        // sums and the pod checks the files against them.
        let input = match input {
            Input::Dir(dir, files) => {
                let hashed = hash_all(&files).await?;
                let files = files
                    .into_iter()
                    .zip(&hashed)
                    .map(|(f, h)| LocalFile { sha256: Some(h.sha256.clone()), ..f })
                    .collect();
                Input::Hashed(dir, files, hashed)
            }
            other => other,
        };
        for m in &models {
            let source = match &input {
                Input::Hashed(dir, files, hashed) => Source::Dir {
                    dir: dir.clone(),
                    files: files.clone(),
                    hashed: hashed.clone(),
                },
                Input::Hub(client) => {
                    let repo = m.model.hf_repo().unwrap_or_default().to_string();
                    let revision = args.revision.clone().unwrap_or_else(|| m.model.revision.clone());
                    let snapshot = client.resolve_with(&repo, &revision, &filter, progress(ctx).as_ref()).await?;
                    ctx.printer.info(format!(
                        "{}: {} at {} is commit {} ({} files, {} bytes)",
                        m.name,
                        m.model.source,
                        revision,
                        snapshot.commit,
                        snapshot.files.len(),
                        snapshot.total_bytes()
                    ));
                    Source::Hub { client, snapshot }
                }
                // Hashed above, before the first model.
                Input::Dir(..) => return Err(StageError::Internal("local directory not hashed".into()).into()),
            };
            let commit = source.commit();
            let revision = args.revision.clone().unwrap_or_else(|| m.model.revision.clone());
            stage::check_not_running(&target.client, m).await?;
            ensure_pvc(&target.client, m, &objs).await?;
            let (download_progress, copy_progress) =
                progress_pair(ctx, source.total_bytes(), format!("PVC {}/{}", m.namespace, m.model.pvc_name()));
            let flow = async {
                let session = Session::open(&target.client, m, &args.image, args.pod_timeout)
                    .await?
                    .with_progress(copy_progress.clone());
                ctx.printer.info(format!("{}: staging pod {}/{} running", m.name, m.namespace, session.pod));
                if !args.force && session.is_staged(&commit, &source.expected()) {
                    return Ok::<Option<Vec<StagedFile>>, anyhow::Error>(None);
                }
                let (tx, rx) = mpsc::channel::<LocalFile>(64);
                let produce = async {
                    match &source {
                        Source::Dir { files, .. } => {
                            for f in files {
                                if tx.send(f.clone()).await.is_err() {
                                    break;
                                }
                            }
                            drop(tx);
                            Ok(())
                        }
                        Source::Hub { client, snapshot } => {
                            // Each verified file is forwarded to the copy while the rest download.
                            let (htx, mut hrx) = mpsc::channel::<ReadyFile>(64);
                            // Owns `hrx`: when the copy fails, the download's next ready file
                            // finds the channel closed instead of a full queue.
                            let forward = async move {
                                while let Some(r) = hrx.recv().await {
                                    let f = LocalFile { path: r.path, local: r.local_path, sha256: Some(r.sha256) };
                                    if tx.send(f).await.is_err() {
                                        break;
                                    }
                                }
                                drop(tx);
                            };
                            let p = download_progress.as_ref();
                            let (done, _) = tokio::join!(client.download(snapshot, p, Some(htx)), forward);
                            // The download's progress already said what came from the cache.
                            done.map(|_| ()).map_err(anyhow::Error::from)
                        }
                    }
                };
                // The first failure on either side stops the other (a download stopped here
                // resumes next time from its saved state).
                let transfer = async { session.transfer(rx, &commit).await.map_err(anyhow::Error::from) };
                let staged = match tokio::try_join!(produce, transfer) {
                    Ok(((), staged)) => staged,
                    Err(e) => {
                        session.discard(&commit).await;
                        return Err(e);
                    }
                };
                let want = source.expected().len();
                if staged.len() != want {
                    session.discard(&commit).await;
                    return Err(StageError::Internal(format!("{} of {want} files arrived", staged.len())).into());
                }
                session.finalize(&staged, &source.describe(m), &revision, &commit).await?;
                Ok(Some(staged))
            };
            let result = tokio::select! {
                r = flow => r,
                _ = signals.recv() => Err(StageError::Interrupted.into()),
            };
            copy_progress.finish();
            // The pod goes whatever happened (success, error, interruption).
            let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(target.client.clone(), &m.namespace);
            let closed = stage::pod::delete(&pods, &stage::pod::pod_name(&m.name)).await;
            match result {
                Ok(None) => ctx.printer.success(format!("{}: already staged ({commit}); nothing to do (--force restages)", m.name)),
                Ok(Some(staged)) => {
                    let bytes: u64 = staged.iter().map(|f| f.size).sum();
                    ctx.printer.success(format!(
                        "{}: staged {} file(s), {} bytes, commit {commit}, into {}/{} on PVC {} (verified in the pod)",
                        m.name,
                        staged.len(),
                        bytes,
                        stage::pod::MOUNT,
                        m.model.weights_dir(),
                        m.model.pvc_name()
                    ));
                }
                Err(e) => return Err(e),
            }
            closed?;
        }
        Ok(())
    })
}

/// `--download-only --source hf://org/name --revision REV --to DIR`: no cluster involved.
fn download_only(ctx: &Ctx, args: &Args, filter: &FileFilter) -> Result<()> {
    let source = args.source.clone().unwrap_or_default();
    let Some(repo) = source
        .strip_prefix("hf://")
        .filter(|r| r.split('/').count() == 2)
    else {
        return Err(InputError(format!("--source `{source}` is not hf://<org>/<name>")).into());
    };
    let to = args.to.clone().unwrap_or_default();
    let revision = args.revision.clone().unwrap_or_else(|| "main".into());
    let client = HubClient::from_env(args.token_file.as_deref())?;
    runtime()?.block_on(async {
        let p = progress(ctx);
        let snapshot = client
            .resolve_with(repo, &revision, filter, p.as_ref())
            .await?;
        // The user's files are not replaced behind their back.
        let conflicts = crate::hub::conflicts_in(&snapshot, &to).await?;
        if !conflicts.is_empty() {
            let shown: Vec<String> = conflicts
                .iter()
                .take(5)
                .map(|c| format!("{} ({})", c.path, c.why))
                .collect();
            let more = match conflicts.len() {
                n if n > 5 => format!(" and {} more", n - 5),
                _ => String::new(),
            };
            if !args.force {
                return Err(InputError(format!(
                    "--to {}: {} file(s) there differ from {source} at commit {} and would be overwritten: {}{more}; \
                     choose an empty (or new) directory, or pass --force to replace them",
                    to.display(),
                    conflicts.len(),
                    snapshot.commit,
                    shown.join(", ")
                ))
                .into());
            }
            crate::hub::remove_conflicts(&to, &conflicts)?;
            ctx.printer.info(format!(
                "--force: replacing {} file(s) in {}: {}{more}",
                conflicts.len(),
                to.display(),
                shown.join(", ")
            ));
        }
        std::fs::create_dir_all(&to).map_err(|e| StageError::io(&to, e))?;
        let local = client
            .download_to_dir(&snapshot, &to, p.as_ref(), None)
            .await?;
        ctx.printer.success(format!(
            "{source} at {revision} (commit {}): {} file(s) in {} ({} bytes downloaded)",
            local.commit,
            local.files.len(),
            to.display(),
            local.downloaded_bytes
        ));
        Ok(())
    })
}

/// The files `--from-dir` copies, checked before anything is copied: a directory without model
/// files, a selected path that is not a regular file (or a symlink to one), and a shard the
/// safetensors index lists but the file set lacks are errors; followed symlinks are said.
fn scan_local(ctx: &Ctx, dir: &std::path::Path, filter: &FileFilter) -> Result<Vec<LocalFile>> {
    let scanned = stage::scan_dir(dir, |p| filter.matches(p))?;
    if scanned.files.is_empty() {
        return Err(InputError(format!(
            "{} holds no model files (config.json, tokenizer*, *.safetensors, …)",
            dir.display()
        ))
        .into());
    }
    stage::check_shards(dir, &scanned.files)?;
    if !scanned.links.is_empty() {
        ctx.printer.info(format!(
            "{}: {} of the {} file(s) are symlinks (a Hugging Face cache snapshot?): copying the files they point to",
            dir.display(),
            scanned.links.len(),
            scanned.files.len()
        ));
        for (path, target) in &scanned.links {
            ctx.printer
                .detail(format!("  {path} -> {} (followed)", target.display()));
        }
    }
    Ok(scanned.files)
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

/// sha256 of every local file (off the async threads), with the hub's hasher.
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

/// Create the model's PVC (and its namespace) from the rendered manifests when it does not exist yet.
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
        .map_err(|e| StageError::api(format!("reading namespace {}", m.namespace), e))?
        .is_none()
    {
        let obj = check::RenderedObject {
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
