use std::path::PathBuf;

use anyhow::Result;

use super::cluster::runtime;
use super::signals::Interrupt;
use super::{Ctx, InputError, Output};
use crate::hub::HubClient;
use crate::modelcar::consts::{
    DEFAULT_BASE, DEFAULT_CHUNK_TEXT, DEFAULT_JOBS, DEFAULT_MAX_LAYER_TEXT, DEFAULT_PLATFORM,
};
use crate::modelcar::push::{self, Collected, Input, Options, Outcome};
use crate::modelcar::{ImageRef, ModelcarError};
use crate::report::size;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Build a KServe modelcar image from a model's files and push it; print its pinned reference.
    Push(PushArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
A modelcar is an OCI image that carries a model's files under /models. KServe runs it as a \
sidecar of the predictor (`storageUri: oci://…`): the kubelet pulls it like any image (cached on \
the node, so a restart does not download again), and the sidecar runs \
`ln -sf /proc/$$/root/models /mnt/models && sleep infinity`, so the image needs sh, ln and sleep: \
it is built on a small base (BusyBox by default, pinned by digest; --base for your own, e.g. a \
mirror) plus the model's layers. No container engine is needed.

Layers: each weight file (*.safetensors, *.gguf, *.bin, …, or any file of 64 MiB or more) is one \
uncompressed tar layer under models/; configs and tokenizers share one layer. A file is never split \
(layers are overlaid, so a split file would not be one file in the container): a file larger than \
--max-layer-size (default 9 GiB, below the 10 GB per-layer limit of GHCR, ECR Public and others) is \
refused before anything is pushed; re-shard the model with a smaller max_shard_size. The same file \
always gives the same layer, so pushing again uploads only what changed.

Files: the model's Hub snapshot as `platform stage-model` downloads it (its revision resolved to \
the commit; downloaded into the same cache first when missing; HF_TOKEN as for stage-model), or \
--from DIR for any local directory (a Hugging Face cache snapshot works: its symlinks are followed). \
The files are stage-model's selection: config, tokenizer, *.safetensors and their index; \
a GGUF model's `file:` alone (or --include '*.gguf').

Credentials: the docker config file ($DOCKER_CONFIG/config.json, else ~/.docker/config.json, as \
`docker login`, `podman login`, `skopeo login` or `oras login` write it); a credHelpers or \
credsStore entry runs docker-credential-<name> (30 s deadline); anonymous otherwise. Passwords and \
tokens are never printed. A registry on loopback is spoken to over plain http; --insecure allows \
plain http elsewhere.

stdout: the pinned reference only (`-o json` for the layers too). Put it in config.yaml:
  models:
    - name: qwen-cpu
      source: oci://ghcr.io/acme/qwen-modelcar@sha256:…

Examples:
  platform modelcar push qwen-cpu --image ghcr.io/acme/qwen-modelcar:v1
  platform modelcar push qwen-cpu --image ghcr.io/acme/qwen-modelcar:v1 --dry-run
  platform modelcar push --from ./weights --image registry.internal:5000/models/qwen:v1
  platform modelcar push --source hf://Qwen/Qwen2.5-0.5B-Instruct --revision main \\
      --image ghcr.io/acme/qwen-modelcar:v1

Exit codes: 0 pushed · 1 invalid input (a file above the layer limit, a bad reference, the docker \
config) · 4 the registry or the Hub failed or refused (wrong password included) · 130 / 143 \
interrupted.")]
pub struct PushArgs {
    /// The model (a name from config.yaml) whose files to push; or --source / --from alone.
    #[arg(value_name = "MODEL")]
    pub model: Option<String>,
    /// Where to push: REGISTRY/REPOSITORY[:TAG] (without a tag the image is pushed by digest only;
    /// some registries delete untagged images).
    #[arg(long, value_name = "REF")]
    pub image: String,
    /// Push the model files of this local directory.
    #[arg(long, value_name = "DIR", conflicts_with = "source")]
    pub from: Option<PathBuf>,
    /// Push this Hub repository (instead of the model's source).
    #[arg(long, value_name = "hf://ORG/NAME")]
    pub source: Option<String>,
    /// Hub revision (branch, tag or commit); default: the model's `revision`, else main.
    #[arg(long)]
    pub revision: Option<String>,
    #[command(flatten)]
    pub files: super::FileArgs,
    /// Base image with sh, ln and sleep, pinned by digest.
    #[arg(long, value_name = "REF", default_value = DEFAULT_BASE)]
    pub base: String,
    /// Platform picked from a multi-platform base (os/arch[/variant]).
    #[arg(long, default_value = DEFAULT_PLATFORM)]
    pub platform: String,
    /// Largest layer (one file); bytes, or with KiB/MiB/GiB (KB/MB/GB: powers of 1000).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = DEFAULT_MAX_LAYER_TEXT)]
    pub max_layer_size: u64,
    /// Bytes per upload request (raised to the registry's minimum); a size at least as large as
    /// every layer sends each layer in one request.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = DEFAULT_CHUNK_TEXT)]
    pub chunk_size: u64,
    /// Layers hashed and uploaded at once.
    #[arg(long, default_value_t = DEFAULT_JOBS as u64, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub jobs: u64,
    /// Speak plain http to a registry that is not on loopback (credentials would travel in clear).
    #[arg(long)]
    pub insecure: bool,
    /// List the layers and their sizes; nothing is read, downloaded (Hub metadata only) or pushed.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Sub::Push(a) => run_push(ctx, a),
    }
}

fn run_push(ctx: &Ctx, args: PushArgs) -> Result<()> {
    let image = ImageRef::parse(&args.image).map_err(ModelcarError::from)?;
    if image.digest.is_some() {
        return Err(InputError(format!(
            "--image {}: name a repository and optionally a tag; the digest is what the push prints",
            args.image
        ))
        .into());
    }
    let base = ImageRef::parse(&args.base).map_err(ModelcarError::from)?;
    if base.digest.is_none() {
        ctx.reporter().warn(&format!(
            "--base {} is not pinned by digest: the image's base can change under the same tag",
            args.base
        ));
    }
    let (input, file) = input(ctx, &args)?;
    // A GGUF model's one file, unless --include chooses.
    let filter = args.files.filter()?.for_file(file.as_deref());
    let opts = Options {
        image,
        base,
        platform: args.platform.clone(),
        max_layer: args.max_layer_size,
        chunk: args.chunk_size,
        jobs: args.jobs as usize,
        insecure: args.insecure,
        docker_config: None,
    };
    let reporter = ctx.reporter();
    let rt = runtime()?;
    let result = rt.block_on(async {
        let interrupt = Interrupt::listen()?;
        interrupt
            .guard(async {
                let collected: Collected =
                    push::collect(input, &filter, args.dry_run, reporter.as_ref()).await?;
                if args.dry_run {
                    return Ok(push::dry_run(&collected, opts.max_layer)?);
                }
                Ok(push::push(&collected, &opts, reporter.clone()).await?)
            })
            .await
    });
    rt.shutdown_background();
    print(ctx, &result?, args.dry_run)
}

/// The files to push: --from, --source, or the model's own source (and its `file:`, for a
/// one-file model).
fn input(ctx: &Ctx, args: &PushArgs) -> Result<(Input, Option<String>)> {
    if let Some(dir) = &args.from {
        if !dir.is_dir() {
            return Err(InputError(format!("--from {}: not a directory", dir.display())).into());
        }
        return Ok((Input::Dir(dir.clone()), None));
    }
    let hub = |repo: &str, revision: String| -> Result<Input> {
        Ok(Input::Hub {
            client: Box::new(HubClient::from_env(args.files.token_file.as_deref())?),
            repo: repo.to_string(),
            revision,
        })
    };
    if let Some(source) = &args.source {
        let parsed = crate::config::source::ModelSource::new(source);
        let Some(repo) = parsed.hf_repo() else {
            return Err(InputError(format!("--source `{source}` is not hf://<org>/<name>")).into());
        };
        let revision = args.revision.clone().unwrap_or_else(|| "main".into());
        return Ok((hub(repo, revision)?, None));
    }
    let Some(name) = &args.model else {
        return Err(InputError(
            "name a MODEL from config.yaml, or give --source hf://ORG/NAME or --from DIR".into(),
        )
        .into());
    };
    let inputs = ctx.load()?;
    let Some(model) = inputs.config.models.iter().find(|m| &m.name == name) else {
        let names: Vec<&str> = inputs
            .config
            .models
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        return Err(InputError(format!(
            "no model `{name}` in {} (models: {})",
            inputs.config_file.display(),
            names.join(", ")
        ))
        .into());
    };
    let Some(repo) = model.hf_repo() else {
        return Err(InputError(format!(
            "model {name}'s source is {}, not a Hugging Face repository: give the files with \
             --from DIR, or the repository with --source hf://ORG/NAME",
            model.source
        ))
        .into());
    };
    let revision = args
        .revision
        .clone()
        .unwrap_or_else(|| model.revision.clone());
    Ok((hub(repo, revision)?, model.file.clone()))
}

fn print(ctx: &Ctx, out: &Outcome, dry_run: bool) -> Result<()> {
    if ctx.output != Output::Table {
        ctx.printer.data(&super::to_data(ctx.output, out)?);
        return Ok(());
    }
    if dry_run {
        let mut text = String::new();
        for l in &out.layers {
            text.push_str(&format!("{:>10}  {}\n", size(l.size), l.files.join(", ")));
        }
        ctx.printer.data(&text);
        ctx.printer.success(format!(
            "dry run: {} model layer(s), {}, from {}; nothing pushed",
            out.layers.len(),
            size(out.layers.iter().map(|l| l.size).sum()),
            out.source
        ));
        return Ok(());
    }
    ctx.printer.data(&out.reference);
    ctx.printer.success(format!(
        "pushed {} from {} ({} uploaded, {} layer(s) already there){}; put `source: {}` in config.yaml",
        out.reference,
        out.source,
        size(out.uploaded_bytes),
        out.layers.iter().filter(|l| l.state == "present").count(),
        out.tag.as_deref().map(|t| format!(", tag {t}")).unwrap_or_default(),
        out.reference
    ));
    Ok(())
}

/// `4096`, `512MiB`, `9GiB`, `10GB`, `1.5GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 4096, 512MiB, 9GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit (B, KiB, MiB, GiB, TiB, KB, MB, GB)"
            ))
        }
    };
    let v = n * mult as f64;
    if !(1.0..=1e15).contains(&v) {
        return Err(format!("`{s}` is out of range (1 byte to 1 PB)"));
    }
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("9GiB").unwrap(), 9 << 30);
        assert_eq!(parse_size("10GB").unwrap(), 10_000_000_000);
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
        use crate::modelcar::consts::*;
        assert_eq!(
            parse_size(DEFAULT_MAX_LAYER_TEXT).unwrap(),
            DEFAULT_MAX_LAYER
        );
        assert_eq!(parse_size(DEFAULT_CHUNK_TEXT).unwrap(), DEFAULT_CHUNK);
    }
}
