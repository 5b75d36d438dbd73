//! `platform modelcar push`: a KServe modelcar image built from a model's files without a container
//! engine, pushed to an OCI registry, and its pinned reference (`oci://registry/repo@sha256:…`) for
//! the model's `source:`.
//!
//! What KServe needs (kserve/website `docs/model-serving/storage/providers/oci.md`): the image's
//! filesystem holds the model under `/models`, and (modelcar mode) a shell, `ln` and `sleep`, because
//! the sidecar runs `ln -sf /proc/$$/root/models /mnt/models && sleep infinity`. So the image is a
//! base with those (BusyBox by default, [`consts::DEFAULT_BASE`], pinned by digest; its layers are
//! mounted from the same registry or copied blob by blob) plus weight layers.
//!
//! # Layers
//!
//! * Every weight file (`*.safetensors`, `*.gguf`, `*.bin`, `*.pt`, `*.pth`, or any file of at least
//!   [`consts::OWN_LAYER_MIN`]) is one layer; the other files (configs, tokenizers) share one layer.
//!   Each layer is an uncompressed tar (`application/vnd.oci.image.layer.v1.tar`: compression gains
//!   nothing on safetensors, and KServe's `oci+fetch` refuses zstd) of `models/<path>` with fixed
//!   metadata (mode 0644, uid/gid 0, mtime 0), so the same file always gives the same layer digest
//!   and a second push skips it.
//! * A file is never split: image layers are tar files overlaid on each other, so a file cut across
//!   two layers would be two files, or the last part alone, in the container. A layer larger than the
//!   limit ([`consts::DEFAULT_MAX_LAYER`], just below the 10 GB per-layer limit of GHCR, ECR Public
//!   and GitLab's S3 storage; `--max-layer-size`) is refused before anything is pushed, naming the
//!   file, its size, the limit and the fix: re-shard the model with a smaller `max_shard_size`
//!   (`save_pretrained(..., max_shard_size="5GB")`), or raise the limit for a registry that takes
//!   larger layers.
//!
//! # Push
//!
//! Digests are computed while streaming: each layer's tar is generated on the fly (header, file,
//! padding) and hashed in one pass with a fixed buffer; the registry is asked which blobs it has
//! (`HEAD /v2/<repo>/blobs/<digest>`) and only the missing ones are uploaded, from disk again, as a
//! chunked upload (`POST`, then `PATCH` chunks of `--chunk-size`, at least the registry's
//! `OCI-Chunk-Min-Length`, each checked against the `Range` the registry reports, then
//! `PUT ?digest=`; a chunk that fails is resumed, or the layer sent again from disk). Memory
//! does not grow with file size. Then the image config (the base's, with
//! `rootfs.diff_ids` extended) and the OCI manifest are pushed, by tag when the image names one,
//! else by digest. The registry client ([`registry`]) is hand-written over the project's `reqwest`
//! (see its docs for why not `oci-client`).

pub mod credentials;
pub mod image;
pub mod layer;
pub mod push;
pub mod reference;
pub mod registry;

use std::path::PathBuf;

pub use push::{push, Options, Outcome, PushedLayer};
pub use reference::{BadReference, ImageRef};

/// Constants of the modelcar module, in one place.
pub mod consts {
    use std::time::Duration;

    /// The default base image: BusyBox 1.37.0 (`sh`, `ln`, `sleep`), the multi-platform index
    /// pinned by digest (the same image `stage-model`'s pod runs).
    pub const DEFAULT_BASE: &str =
        "docker.io/library/busybox:1.37.0@sha256:bdf57e528e45e4433820e045b29b4597825a1c9e38353532d90a01445013f82e";
    /// The platform picked from a multi-platform base.
    pub const DEFAULT_PLATFORM: &str = "linux/amd64";
    /// Just below the common 10 GB per-layer limit (GHCR, ECR Public, GitLab on S3).
    pub const DEFAULT_MAX_LAYER: u64 = 9 * 1024 * 1024 * 1024;
    /// [`DEFAULT_MAX_LAYER`] as the CLI shows it.
    pub const DEFAULT_MAX_LAYER_TEXT: &str = "9GiB";
    /// Size of each upload PATCH (raised to the registry's `OCI-Chunk-Min-Length`).
    pub const DEFAULT_CHUNK: u64 = 64 * 1024 * 1024;
    /// [`DEFAULT_CHUNK`] as the CLI shows it.
    pub const DEFAULT_CHUNK_TEXT: &str = "64MiB";
    /// Files at least this large get a layer of their own whatever their name.
    pub const OWN_LAYER_MIN: u64 = 64 * 1024 * 1024;
    /// Extensions of weight files (one layer each).
    pub const WEIGHT_EXTENSIONS: &[&str] = &["safetensors", "gguf", "bin", "pt", "pth", "onnx"];
    /// The directory of the image that holds the model (KServe links `/mnt/models` to it).
    pub const MODELS_DIR: &str = "models";
    /// Layers uploaded at once.
    pub const DEFAULT_JOBS: usize = 3;
    /// Read buffer of the hashing and upload passes.
    pub const READ_BUFFER: usize = 1024 * 1024;

    pub const ENV_DOCKER_CONFIG: &str = "DOCKER_CONFIG";
    pub const CRED_HELPER_TIMEOUT: Duration = Duration::from_secs(30);
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
    /// A request that sends or receives nothing for this long fails.
    pub const READ_TIMEOUT: Duration = Duration::from_secs(120);
    /// An upload request gives up when it goes slower than this on average (plus [`READ_TIMEOUT`]),
    /// so a connection whose peer stopped reading cannot hold a push.
    pub const MIN_UPLOAD_RATE: u64 = 256 * 1024;
    /// Attempts of one request on 429/5xx and connection errors.
    pub const RETRY_ATTEMPTS: u32 = 5;
    pub const RETRY_BASE_DELAY: Duration = Duration::from_millis(500);
    /// How much of an error body, a manifest or a config blob is read.
    pub const ERROR_BODY_LIMIT: usize = 4096;
    pub const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;

    pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const MT_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const MT_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const USER_AGENT: &str = concat!("platform/", env!("CARGO_PKG_VERSION"), "; modelcar");
}

#[derive(Debug, thiserror::Error)]
pub enum ModelcarError {
    #[error(transparent)]
    BadReference(#[from] BadReference),
    #[error("{}: {why}", .path.display())]
    DockerConfig { path: PathBuf, why: String },
    #[error("credential helper {helper} (named in {config}) {why}")]
    CredentialHelper {
        helper: String,
        config: String,
        why: String,
    },
    #[error(
        "{what} is {}, more than the layer limit of {}: a file is never split across layers (the \
         layers of an image are overlaid, so it would not be one file in the container); re-shard \
         the model into smaller files (transformers: `save_pretrained(dir, max_shard_size=\"5GB\")`), \
         or raise --max-layer-size if your registry takes larger layers",
        crate::report::size(*.size), crate::report::size(*.limit)
    )]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("{what}")]
    BadSource { what: String },
    #[error("the base image {base} cannot be used: {why}")]
    BadBase { base: String, why: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Reading the local directory (no model files, a file that is not regular, missing shards).
    #[error(transparent)]
    Local(#[from] crate::actions::stage::StageError),
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    #[error("registry {registry} could not be reached: {why}")]
    Unreachable { registry: String, why: String },
    #[error("registry {registry} refused {who}: {why}")]
    Auth {
        registry: String,
        who: String,
        why: String,
    },
    #[error("registry {registry}: {what} failed with HTTP {status}: {message}")]
    Registry {
        registry: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error("registry {registry}: {what}")]
    Protocol { registry: String, what: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ModelcarError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> ModelcarError {
        ModelcarError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
