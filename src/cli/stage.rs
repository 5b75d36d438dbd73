use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::cluster::{connect, duration_at_least, runtime, select_models, TargetArgs};
use super::signals::Interrupt;
use super::{to_data, Ctx, InputError, Output};
use crate::actions::stage::run::{Input, Options, Outcome, Remotes, Stager};
use crate::actions::stage::{self, pod};
use crate::consts;
use crate::hub::{FileFilter, HubClient};
use crate::plan::PlannedModel;
use crate::render::check;
use crate::report::size;
use crate::s3::S3Client;
use comfy_table::{presets::NOTHING, Table};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Downloads the model's files from the Hugging Face Hub (HF_ENDPOINT for a mirror; token from \
HF_TOKEN, HUGGING_FACE_HUB_TOKEN, the Hugging Face token file or --token-file, never printed) \
into a local cache keyed by repo and commit, and copies them onto the model's PVC through a \
short-lived restricted pod (non-root, all capabilities dropped, read-only root filesystem) while \
later files still download. Every sha256 is verified inside the pod, <dir>/.platform-staged.json \
records source, commit, files and hashes, and the directory is swapped into place only when \
everything arrived. Staging the same commit again is a no-op that says so (--force restages). \
While the pod does not run yet, what it waits for (scheduling, the volume, the image) is said \
when it changes and every 30 s, with the time --pod-timeout leaves; past it, exit 3. The pod is \
deleted on success, on error, on Ctrl-C and SIGTERM (exit 130 / 143; a download stopped there \
resumes on the next run). A running model on a \
ReadWriteOnce volume is refused: `platform pause MODEL` first. The PVC is created from the \
rendered manifest when it does not exist yet. Serving reads /models/<dir> offline (raw vLLM, \
KServe) or pvc://<model>-weights/<dir> (llm-d).

A model whose source is s3://BUCKET/PREFIX is downloaded from the S3-compatible endpoint of \
config.yaml's `s3:` block (endpoint, region, pathStyle, verifyTls; AWS_ENDPOINT_URL_S3 or \
AWS_ENDPOINT_URL override the endpoint; default AWS S3 in AWS_REGION) with the credentials of \
your AWS environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the \
AWS_PROFILE profile of ~/.aws/credentials; anonymous when there are none; never read from \
config.yaml, never printed). The objects under PREFIX/ are the model's files (the same file set \
and --include/--exclude globs); each is verified by its sha256 checksum when the server keeps \
one, else by its ETag when that is an MD5, else by size, and which is said. A changed object \
(new ETag) changes what is staged; otherwise staging again is a no-op.

Examples:
  platform stage-model qwen-cpu
  platform stage-model qwen-cpu \\
      --revision 7ae557604adf67be50417f59c2c2f167def9a775
  platform stage-model --all
  platform stage-model qwen-cpu --from-dir ./weights
  platform stage-model --download-only --revision main --to DIR \\
      --source hf://Qwen/Qwen2.5-0.5B-Instruct
  AWS_PROFILE=models platform stage-model --download-only --to DIR \\
      --source s3://my-models/qwen2.5-0.5b")]
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
    /// With --download-only: what to download, `hf://org/name` or `s3://bucket/prefix`.
    #[arg(long, value_name = "hf://ORG/NAME|s3://BUCKET/PREFIX")]
    pub source: Option<String>,
    /// With --download-only: where to put the files.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    #[command(flatten)]
    pub files: super::FileArgs,
    /// Stage again even when the volume already holds this commit; with --download-only, replace
    /// files in --to that differ from the snapshot's (refused otherwise).
    #[arg(long)]
    pub force: bool,
    /// Image of the staging pod (needs tar, sha256sum, sh).
    #[arg(long, default_value = stage::DEFAULT_IMAGE)]
    pub image: String,
    /// Say what would be copied (files, sizes, the target PVC) after resolving the source; start
    /// no pod, download nothing, write nothing to the cluster.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop at the first model that fails (default: stage the others, then exit non-zero).
    #[arg(long)]
    pub fail_fast: bool,
    /// How long to wait for the staging pod to start (exit 3 past it; at least 1s).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration_at_least(consts::MIN_TIMEOUT))]
    pub pod_timeout: Duration,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let filter = args.files.filter()?;
    if args.download_only {
        return download_only(ctx, &args, &filter);
    }
    let inputs = ctx.load()?;
    let (plan, tree) = ctx.render(&inputs, None)?;
    let models: Vec<&PlannedModel> = if args.all {
        stage::select::all_pre_staged(&plan)
    } else {
        select_models(ctx, &inputs, &plan, &args.models, false)?
    };
    stage::select::check_pre_staged(&models)?;
    let reporter = ctx.reporter();
    // Input first: the local directory's file set, or the Hub client (its token checked), before
    // the cluster is touched.
    let input = match &args.from_dir {
        Some(dir) if !dir.is_dir() => {
            return Err(InputError(format!("--from-dir {}: not a directory", dir.display())).into())
        }
        Some(dir) => Input::scan_dir(dir, &filter, reporter.as_ref())?,
        None => Input::Remote(Box::new(remotes(&inputs, &models, &args)?)),
    };
    let opts = Options {
        revision: args.revision.clone(),
        filter,
        force: args.force,
        image: args.image.clone(),
        pod_timeout: args.pod_timeout,
    };
    let (objs, _) = check::objects(&tree);
    let rt = runtime()?;
    let result = rt.block_on(async {
        // Listen for Ctrl-C / SIGTERM before any pod exists, so an interruption always cleans up
        // (and ends with exit 130 / 143, at whatever step it comes).
        let interrupt = Interrupt::listen()?;
        let target = interrupt
            .guard(connect(ctx, &inputs, &args.target, super::cluster::Access::Write))
            .await?;
        let stager = interrupt
            .guard(async {
                Ok(Stager::prepare(&target.client, input, opts, reporter).await?)
            })
            .await?;
        if args.dry_run {
            let mut previews = Vec::new();
            for m in &models {
                previews.push(interrupt.guard(async { Ok(stager.preview(m).await?) }).await?);
            }
            ctx.printer.data(&match ctx.output {
                Output::Table => preview_text(&previews),
                o => to_data(o, &previews)?,
            });
            ctx.printer
                .info("dry run: no pod started, nothing copied or created");
            return Ok(());
        }
        let mut rows = Vec::new();
        let mut first_failure = None;
        for m in &models {
            if first_failure.is_some() && args.fail_fast {
                rows.push(Row::new(m, "skipped", None, 0.0, Some("--fail-fast".into())));
                continue;
            }
            let started = std::time::Instant::now();
            let outcome = stager.stage(m, &objs, interrupt.fired()).await;
            let secs = started.elapsed().as_secs_f64();
            match outcome {
                Ok(Outcome::AlreadyStaged { commit }) => {
                    ctx.printer.success(format!(
                        "{}: already staged ({commit}); nothing to do (--force restages)",
                        m.name
                    ));
                    rows.push(Row::new(m, "already-staged", None, secs, None));
                }
                Ok(Outcome::Staged { files, bytes, commit }) => {
                    ctx.printer.success(format!(
                        "{}: staged {files} file(s), {}, commit {commit}, into {}/{} on PVC {} (verified in the pod)",
                        m.name,
                        size(bytes),
                        pod::MOUNT,
                        m.model.weights_dir(),
                        m.model.pvc_name()
                    ));
                    rows.push(Row::new(m, "staged", Some(bytes), secs, None));
                }
                // An interruption stops everything (the pod is cleaned up already).
                Err(e @ stage::StageError::Interrupted(_)) => return Err(e.into()),
                Err(e) => {
                    let reason = crate::error::one_line(&e);
                    ctx.printer.error(format!("{}: {reason}", m.name));
                    rows.push(Row::new(m, "failed", None, secs, Some(reason)));
                    first_failure.get_or_insert(e);
                }
            }
        }
        if models.len() > 1 || args.all || ctx.output != Output::Table {
            ctx.printer.data(&match ctx.output {
                Output::Table => summary(&rows),
                o => to_data(o, &rows)?,
            });
        }
        match first_failure {
            None => Ok(()),
            Some(e) => {
                let failed: Vec<&str> = rows
                    .iter()
                    .filter(|r| r.result == "failed")
                    .map(|r| r.model.as_str())
                    .collect();
                Err(anyhow::Error::from(e).context(format!(
                    "{} of {} model(s) failed to stage ({}); the first failure",
                    failed.len(),
                    rows.len(),
                    failed.join(", ")
                )))
            }
        }
    });
    // The pod is gone by now; a blocking task an interruption abandoned (hashing a large local
    // file) must not hold the exit.
    rt.shutdown_background();
    result
}

/// One model's line of the summary (`-o json`: the same fields).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    model: String,
    /// `staged`, `already-staged`, `failed` or `skipped` (after a failure, with --fail-fast).
    result: &'static str,
    /// Bytes copied, when staged.
    bytes: Option<u64>,
    seconds: f64,
    reason: Option<String>,
}

impl Row {
    fn new(
        m: &PlannedModel,
        result: &'static str,
        bytes: Option<u64>,
        seconds: f64,
        reason: Option<String>,
    ) -> Row {
        Row {
            model: m.name.clone(),
            result,
            bytes,
            seconds: (seconds * 10.0).round() / 10.0,
            reason,
        }
    }
}

/// `--dry-run`'s text: per model, where the files would go, then the files and their sizes.
fn preview_text(previews: &[crate::actions::stage::run::Preview]) -> String {
    let mut out = String::new();
    for p in previews {
        out.push_str(&format!(
            "{}: {} ({}) -> PVC {} ({}), {}: {} file(s), {}\n",
            p.model,
            p.source,
            p.commit,
            p.pvc,
            if p.pvc_exists {
                "exists"
            } else {
                "would be created from the rendered manifest"
            },
            p.dir,
            p.files.len(),
            size(p.bytes)
        ));
        if let Some(r) = &p.refused {
            out.push_str(&format!("  a real run would refuse: {r}\n"));
        }
        let mut t = crate::ui::rows();
        for f in &p.files {
            t.add_row(vec![format!("  {}", f.path), size(f.bytes)]);
        }
        out.push_str(&crate::ui::text(&t));
    }
    out
}

/// The per-model table: MODEL, RESULT, SIZE, TIME, REASON.
fn summary(rows: &[Row]) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(vec!["MODEL", "RESULT", "SIZE", "TIME", "REASON"]);
    for r in rows {
        t.add_row(vec![
            r.model.clone(),
            r.result.to_string(),
            r.bytes.map(size).unwrap_or_else(|| "-".into()),
            format!("{:.1}s", r.seconds),
            r.reason.clone().unwrap_or_default(),
        ]);
    }
    format!("{t}\n")
}

/// The download clients the selected models need: the Hub's for `hf://` sources (its token
/// checked), the S3 client for `s3://` ones (config.yaml's `s3:` block, the AWS environment).
fn remotes(inputs: &super::Inputs, models: &[&PlannedModel], args: &Args) -> Result<Remotes> {
    let mut r = Remotes::default();
    if models.iter().any(|m| m.model.source.s3().is_none()) {
        r.hub = Some(HubClient::from_env(args.files.token_file.as_deref())?);
    }
    if models.iter().any(|m| m.model.source.s3().is_some()) {
        r.s3 = Some(S3Client::from_env(inputs.config.s3.as_ref())?);
    }
    Ok(r)
}

/// `--download-only --source s3://bucket/prefix --to DIR`: config.yaml's `s3:` block when the
/// environment has a config.yaml, the AWS environment, no cluster.
fn download_only_s3(
    ctx: &Ctx,
    args: &Args,
    filter: &FileFilter,
    source: &str,
    (bucket, prefix): (&str, &str),
) -> Result<()> {
    if let Some(r) = &args.revision {
        return Err(InputError(format!(
            "--revision {r}: {source} is an S3 prefix, which has no revisions; leave --revision out"
        ))
        .into());
    }
    let cfg =
        if ctx.env_error.is_none() && crate::config::config_path(&ctx.repo, &ctx.env).is_file() {
            crate::config::load(&ctx.repo, &ctx.env)?.1.s3
        } else {
            None
        };
    let client = S3Client::from_env(cfg.as_ref())?;
    let reporter = ctx.reporter();
    reporter.note(&client.describe());
    let to = args.to.clone().unwrap_or_default();
    let (snap, local) = runtime()?.block_on(client.fetch_to_dir(
        bucket,
        prefix,
        filter,
        &to,
        args.force,
        reporter.as_ref(),
    ))?;
    ctx.printer.success(format!(
        "{source} (listing {}): {} file(s) in {} ({} downloaded)",
        snap.snapshot.commit,
        local.files.len(),
        to.display(),
        size(local.downloaded_bytes)
    ));
    Ok(())
}

/// `--download-only --source hf://org/name --revision REV --to DIR`: no cluster involved.
fn download_only(ctx: &Ctx, args: &Args, filter: &FileFilter) -> Result<()> {
    let source = args.source.clone().unwrap_or_default();
    let parsed = crate::config::source::ModelSource::new(&source);
    if let Some(s3) = parsed.s3() {
        return download_only_s3(ctx, args, filter, &source, s3);
    }
    let Some(repo) = parsed.hf_repo() else {
        let why = match parsed.parsed() {
            Err(e) => format!(": {}", e.message),
            Ok(_) => String::new(),
        };
        return Err(InputError(format!(
            "--source `{source}` is not hf://<org>/<name> or s3://<bucket>/<prefix>{why}"
        ))
        .into());
    };
    let to = args.to.clone().unwrap_or_default();
    let revision = args.revision.clone().unwrap_or_else(|| "main".into());
    let client = HubClient::from_env(args.files.token_file.as_deref())?;
    let reporter = ctx.reporter();
    let local = runtime()?.block_on(crate::hub::fetch_to_dir(
        &client,
        repo,
        &revision,
        filter,
        &to,
        args.force,
        reporter.as_ref(),
    ))?;
    ctx.printer.success(format!(
        "{source} at {revision} (commit {}): {} file(s) in {} ({} downloaded)",
        local.commit,
        local.files.len(),
        to.display(),
        size(local.downloaded_bytes)
    ));
    Ok(())
}
