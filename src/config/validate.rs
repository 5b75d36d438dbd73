//! Checks of a parsed config on its own (no catalog): names, URLs, the strings and counts that end
//! up in manifests. Checks of models against the catalog (layers, presets, the serving gotchas)
//! live in `catalog::model_checks`, which runs these first.

use std::collections::BTreeSet;
use std::path::Path;

use super::{EnvConfig, Model};
use crate::consts::GPU_RESOURCE;
use crate::diag::Diagnostic;
use crate::names::{is_dns1123_label, is_dns1123_subdomain, name_error};

/// The problems of the config's top-level settings (cluster, repository, domain, gateway).
pub fn settings(cfg: &EnvConfig, file: &Path) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let err = |field: &str, msg: String| Diagnostic::error(msg).file(file).field(field.to_string());
    if !is_dns1123_label(&cfg.cluster.name) {
        out.push(name_error(file, "cluster.name", &cfg.cluster.name));
    }
    if cfg.repo_url.trim().is_empty() {
        out.push(
            err(
                "repoURL",
                "is empty: Argo CD needs the GitOps repository URL".into(),
            )
            .help(
                "set `repoURL: https://…/your-gitops-repo.git` (the repository holding clusters/)",
            ),
        );
    }
    if let Some(what) = crate::url::credential_in(&cfg.repo_url) {
        out.push(
            err(
                "repoURL",
                format!(
                    "carries a credential ({what}): it would be written into clusters/ and pushed"
                ),
            )
            .help(format!(
                "write `repoURL: {}` and give Argo CD the token with `platform bootstrap \
                 --repo-token-env VAR` (it becomes a repository Secret, never a file)",
                crate::url::without_credential(&cfg.repo_url)
            ))
            .secret_line(),
        );
    }
    if cfg.repo_branch.trim().is_empty() {
        out.push(
            err("repoBranch", "is empty".into())
                .help("set the branch Argo CD reads, e.g. `repoBranch: main`"),
        );
    }
    if !cfg.domain.is_empty() && !is_dns1123_subdomain(&cfg.domain) {
        out.push(
            err("domain", format!("`{}` is not a DNS name", cfg.domain))
                .help("e.g. `domain: ai.example.com`, or \"\" for no public ingress"),
        );
    }
    if let Some(sc) = &cfg.storage_class_name {
        if !is_dns1123_subdomain(sc) {
            out.push(name_error(file, "storageClassName", sc));
        }
    }
    if let Some(s3) = &cfg.s3 {
        check_s3(s3, &err, &mut out);
    }
    if !is_dns1123_subdomain(&cfg.gateway.class_name) {
        out.push(name_error(
            file,
            "gateway.className",
            &cfg.gateway.class_name,
        ));
    }

    out
}

/// The `s3:` block: an endpoint is an http(s) URL without credentials or a query, a region is a
/// region name.
fn check_s3(
    s3: &super::S3Config,
    err: &impl Fn(&str, String) -> Diagnostic,
    out: &mut Vec<Diagnostic>,
) {
    if let Some(ep) = &s3.endpoint {
        if let Some(why) = s3_endpoint_defect(ep) {
            let shown = crate::url::without_credential(ep);
            out.push(err("s3.endpoint", format!("`{shown}` {why}")).help(
                "an http(s) URL of the S3 API, e.g. `https://minio.example:9000`; leave it out for \
                 AWS S3 (credentials go in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, never here)",
            ));
        }
    }
    if let Some(r) = &s3.region {
        let ok = !r.is_empty()
            && r.len() <= 32
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            out.push(
                err("s3.region", format!("`{r}` is not a region name"))
                    .help("e.g. `region: us-east-1` (lowercase letters, digits and '-')"),
            );
        }
    }
}

/// Why `endpoint` is not a usable S3 endpoint URL, in words that follow the value.
pub fn s3_endpoint_defect(endpoint: &str) -> Option<String> {
    let Ok(url) = reqwest::Url::parse(endpoint) else {
        return Some("is not a URL".into());
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Some(format!(
            "has the scheme `{}`, not http or https",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Some("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("carries a credential: it would be written into clusters/ and pushed".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Some("has a query or a fragment".into());
    }
    None
}

/// How diagnostics name model `i`: `models[<name>]`, or `models[<i>]` while it has no name.
pub fn model_path(i: usize, m: &Model) -> String {
    format!(
        "models[{}]",
        if m.name.is_empty() {
            i.to_string()
        } else {
            m.name.clone()
        }
    )
}

/// The problems of one model that need no catalog but its Argo CD namespace (`argocd_namespace`, a
/// system namespace to models): names, source, revision, storage, strings.
pub fn check_model(
    m: &Model,
    at: &str,
    file: &Path,
    argocd_namespace: &str,
    out: &mut Vec<Diagnostic>,
) {
    let err = |field: &str, msg: String| {
        Diagnostic::error(msg)
            .file(file)
            .field(format!("{at}{field}"))
    };
    // Room for the `-predictor` suffix KServe adds and the `-weights` PVC suffix.
    if !is_dns1123_label(&m.name) || m.name.len() > 45 {
        out.push(name_error(file, &format!("{at}.name"), &m.name)
            .help("a model name is a DNS-1123 label: lowercase letters, digits and '-', at most 45 characters (KServe appends `-predictor`)"));
    }
    if let Some(ns) = &m.namespace {
        if !is_dns1123_label(ns) {
            out.push(name_error(file, &format!("{at}.namespace"), ns));
        } else if ns == argocd_namespace || ns.starts_with("kube-") {
            out.push(
                err(".namespace", format!("`{ns}` is a system namespace"))
                    .help("serve models in a namespace of their own (teardown deletes what platform put there); leave `namespace` out for the layer's"),
            );
        }
    }
    if let Some(app) = &m.app {
        if !is_dns1123_label(app) {
            out.push(name_error(file, &format!("{at}.app"), app).help(
                "the Argo CD Application's name: a DNS-1123 label (`platform move` writes <model>-<layer>)",
            ));
        }
    }
    check_model_strings(m, &err, out);
    if let Some(r) = &m.api_key_secret {
        check_api_key_secret(r, &err, out);
    }
    if let Some((msg, help)) = source_problem(m) {
        out.push(err(".source", msg).help(help));
    }
    if m.revision.trim().is_empty() {
        out.push(
            err(".revision", "is empty".into())
                .help("use a branch, tag or commit sha (default: main)"),
        );
    }
    let dir = m.weights_dir();
    if dir.is_empty()
        || dir == "."
        || dir == ".."
        || !dir
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        out.push(err(".storage.dir", format!("`{dir}` is not a plain directory name"))
            .help("one path segment of letters, digits, '.', '_' or '-' (it lives directly under the PVC root)"));
    }
    if let Some(sc) = &m.storage.storage_class_name {
        if !is_dns1123_subdomain(sc) {
            out.push(name_error(
                file,
                &format!("{at}.storage.storageClassName"),
                sc,
            ));
        }
    }
}

/// What is wrong with the model's `source:` on its own (the runtime and the layer are checked with
/// the catalog): missing, unparsable, an unpinned image, a scheme not served.
fn source_problem(m: &Model) -> Option<(String, String)> {
    use super::source::Source;
    if m.source.is_empty() {
        // Ollama pulls by tag; its runtime's checks refuse a source.
        return (m.runtime != super::RuntimeName::Ollama).then(|| {
            (
                "is missing".to_string(),
                "set `source: hf://<org>/<name>` (or s3://, oci://, pvc://)".to_string(),
            )
        });
    }
    match m.source.parsed() {
        Err(e) => Some((e.message.clone(), format!("{}; or s3://bucket/prefix, oci://registry/repo@sha256:…, pvc://claim/dir", e.help))),
        Ok(Source::Oci { reference }) if !reference.contains("@sha256:") => Some((
            format!("`{}` is not pinned by digest", m.source),
            "write oci://registry/repo@sha256:<digest> (`platform modelcar push` prints it): a tag can change under a running model".into(),
        )),
        Ok(Source::Gcs { .. }) => Some((
            format!("`{}`: gs:// sources are not served yet", m.source),
            "copy the weights to S3-compatible storage (s3://) or the Hub".into(),
        )),
        Ok(_) => None,
    }
}

/// Kubernetes' largest replica count (int32).
const MAX_REPLICAS: u32 = i32::MAX as u32;
/// vLLM's served model name is an HTTP-visible identifier: keep it short.
const MAX_SERVED_NAME: usize = 253;

/// A git revision the Hub resolves: a branch, tag or commit sha (no whitespace, no shell or ref
/// metacharacters).
fn is_revision(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && !r.starts_with(['-', '/', '.'])
        && !r.contains("..")
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

/// A container environment variable name (Kubernetes: `[-._a-zA-Z][-._a-zA-Z0-9]*`).
fn is_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || "-._".contains(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// Strings that end up in manifests or on a command line: sane characters and sizes, counts the API
/// accepts.
fn check_model_strings(
    m: &Model,
    err: &dyn Fn(&str, String) -> Diagnostic,
    out: &mut Vec<Diagnostic>,
) {
    if !m.revision.trim().is_empty() && !is_revision(&m.revision) {
        out.push(
            err(
                ".revision",
                format!(
                    "`{}` is not a branch, tag or commit",
                    m.revision.escape_debug()
                ),
            )
            .help(
                "letters, digits, '-', '_', '.', '/' (e.g. main, v1.0, a 40-character commit sha)",
            ),
        );
    }
    if let Some(n) = &m.served_name {
        if n.is_empty()
            || n.len() > MAX_SERVED_NAME
            || n.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            let shown = crate::text::prefix(n, 40);
            out.push(
                err(".servedName", format!("`{}{}` is not a usable model name ({} bytes)", shown.escape_debug(), if n.chars().count() > 40 { "…" } else { "" }, n.len()))
                    .help(format!("at most {MAX_SERVED_NAME} characters, no spaces or control characters: clients send it in every request")),
            );
        }
    }
    for k in m.env.keys() {
        if !is_env_name(k) {
            out.push(
                err(&format!(".env.{k}"), format!("`{}` is not an environment variable name", k.escape_debug()))
                    .help("letters, digits, '_', '-', '.', not starting with a digit (e.g. VLLM_LOGGING_LEVEL)"),
            );
        }
    }
    if m.replicas > MAX_REPLICAS {
        out.push(err(
            ".replicas",
            format!(
                "{} is more than Kubernetes accepts ({MAX_REPLICAS})",
                m.replicas
            ),
        ));
    }
    if let Some(p) = &m.prefill {
        if p.replicas > MAX_REPLICAS {
            out.push(err(
                ".prefill.replicas",
                format!(
                    "{} is more than Kubernetes accepts ({MAX_REPLICAS})",
                    p.replicas
                ),
            ));
        }
    }
    if m.storage.size.value() <= 0.0 {
        out.push(
            err(
                ".storage.size",
                format!("`{}` is not a positive size", m.storage.size),
            )
            .help(
                "the volume must hold the weights, e.g. 5Gi for a 0.5B model, 40Gi for a 7B model",
            ),
        );
    }
}

/// A Secret key as Kubernetes accepts it: `[-._a-zA-Z0-9]+`, at most 253 characters.
fn is_secret_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k != "."
        && k != ".."
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// `apiKeySecret: {name, key}` names a Secret in the model's namespace and a key in it.
fn check_api_key_secret(
    r: &super::SecretKeyRef,
    err: &dyn Fn(&str, String) -> Diagnostic,
    out: &mut Vec<Diagnostic>,
) {
    if !is_dns1123_subdomain(&r.name) {
        out.push(
            err(
                ".apiKeySecret.name",
                format!("`{}` is not a Secret name", r.name.escape_debug()),
            )
            .help("the name of a Secret in the model's namespace (lowercase letters, digits, '-', '.'), e.g. `qwen-api-key`"),
        );
    }
    if !is_secret_key(&r.key) {
        out.push(
            err(
                ".apiKeySecret.key",
                format!("`{}` is not a Secret key", r.key.escape_debug()),
            )
            .help("a key of that Secret's data: letters, digits, '-', '_', '.', e.g. `api-key`"),
        );
    }
}

/// Generic resource checks: quantities are valid (parsed already), no GPU in resources, limit ≥ request.
pub fn check_resources(r: &super::Resources, at: &str, file: &Path, out: &mut Vec<Diagnostic>) {
    let keys: BTreeSet<&String> = r.requests.keys().chain(r.limits.keys()).collect();
    for k in keys {
        if k == GPU_RESOURCE {
            out.push(
                Diagnostic::error(format!(
                    "{GPU_RESOURCE} is set from `gpus`, not from resources"
                ))
                .file(file)
                .field(at)
                .help("remove it here and set `gpus: N` on the model"),
            );
            continue;
        }
        if let (Some(req), Some(lim)) = (r.requests.get(k), r.limits.get(k)) {
            if lim.value() < req.value() {
                out.push(
                    Diagnostic::error(format!("limits.{k} ({lim}) is below requests.{k} ({req})"))
                        .file(file)
                        .field(format!("{at}.limits.{k}"))
                        .help(format!("raise limits.{k} to at least {req}")),
                );
            }
        }
    }
}
