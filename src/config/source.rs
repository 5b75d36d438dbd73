//! A model's `source:`, parsed once when config.yaml is loaded: the scheme and its parts, or why
//! the text is not a source. Validation reports the error at the field (file:line:col); the
//! downloader, the renderer and stage-model take the parsed value and never parse it again.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a model's weights come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `hf://org/name`: a Hugging Face Hub repository.
    HuggingFace { repo: String },
    /// `s3://bucket/prefix`: an S3-compatible bucket.
    S3 { bucket: String, prefix: String },
    /// `gs://bucket/prefix`: a Google Cloud Storage bucket.
    Gcs { bucket: String, prefix: String },
    /// `oci://registry/repository@sha256:…` (or `:tag`): a KServe modelcar image.
    Oci { reference: String },
    /// `pvc://claim/path`: weights already on a volume.
    Pvc { claim: String, path: String },
}

impl Source {
    /// The scheme, as written before `://`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Source::HuggingFace { .. } => "hf",
            Source::S3 { .. } => "s3",
            Source::Gcs { .. } => "gs",
            Source::Oci { .. } => "oci",
            Source::Pvc { .. } => "pvc",
        }
    }
}

/// Why a text is not a model source, and how to write one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub message: String,
    pub help: String,
}

/// One part of a Hub repository id (`org` or `name`): letters, digits, `-`, `_`, `.`, at most 96,
/// not starting with `-` or `.`, no `--` or `..` (the Hub's own rules). The downloader checks
/// repository ids with the same function.
pub fn is_repo_part(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 96
        && !p.starts_with(['-', '.'])
        && !p.contains("--")
        && !p.contains("..")
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `org/name`, each part as [`is_repo_part`] says.
pub fn is_hub_repo(repo: &str) -> bool {
    let parts: Vec<&str> = repo.split('/').collect();
    parts.len() == 2 && parts.iter().all(|p| is_repo_part(p))
}

const HF_HELP: &str = "write `hf://<org>/<name>`, e.g. hf://Qwen/Qwen2.5-0.5B-Instruct";
const S3_HELP: &str = "write `s3://<bucket>/<prefix>`, e.g. s3://models/qwen2.5-0.5b: the objects \
     under `<prefix>/` are the model's files";

/// Why `name` is not an S3 bucket name (the rules AWS gives for general purpose buckets, which
/// S3-compatible servers follow): 3 to 63 characters, lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit, no `..`, not an IPv4 address, none of the reserved
/// prefixes and suffixes. `None` when it is one.
pub fn bucket_name_defect(name: &str) -> Option<&'static str> {
    if !(3..=63).contains(&name.len()) {
        return Some("a bucket name has 3 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
    {
        return Some("a bucket name has only lowercase letters, digits, '.' and '-'");
    }
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !edge(name.bytes().next()) || !edge(name.bytes().last()) {
        return Some("a bucket name starts and ends with a letter or a digit");
    }
    if name.contains("..") {
        return Some("a bucket name has no two adjacent periods");
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Some("a bucket name is not an IP address");
    }
    const PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const SUFFIXES: [&str; 4] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3"];
    if PREFIXES.iter().any(|p| name.starts_with(p)) || SUFFIXES.iter().any(|x| name.ends_with(x)) {
        return Some("a bucket name does not use the reserved prefixes (xn--, sthree-) or suffixes (-s3alias, --ol-s3, .mrap, --x-s3)");
    }
    None
}

/// Why `prefix` cannot be the key prefix of a model (an empty one, the whole bucket, can): no
/// empty, `.` or `..` segment (keys become file paths), no backslash or control character.
fn prefix_defect(prefix: &str) -> Option<&'static str> {
    let p = prefix.strip_suffix('/').unwrap_or(prefix);
    if p.is_empty() {
        return None;
    }
    if p.chars().any(|c| c == '\\' || c.is_control()) {
        return Some("a prefix has no backslash or control character");
    }
    if p.split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Some("a prefix has no empty, `.` or `..` segment (its keys become file paths)");
    }
    None
}

/// An `s3://bucket/prefix` source, its parts checked.
fn parse_s3(text: &str, bucket: &str, prefix: &str) -> Result<Source, SourceError> {
    let bad = |why: &str| SourceError {
        message: format!("`{text}` is not a usable S3 source: {why}"),
        help: S3_HELP.to_string(),
    };
    if let Some(why) = bucket_name_defect(bucket) {
        return Err(bad(&format!("bucket `{bucket}`: {why}")));
    }
    if let Some(why) = prefix_defect(prefix) {
        return Err(bad(&format!("prefix `{prefix}`: {why}")));
    }
    Ok(Source::S3 {
        bucket: bucket.to_string(),
        prefix: prefix.trim_end_matches('/').to_string(),
    })
}

/// Parse a source. Only the Hub is served so far: other schemes parse (so messages can name them)
/// but the caller decides whether they are supported.
fn not_hf(text: &str) -> SourceError {
    SourceError {
        message: format!("`{text}` is not a Hugging Face source"),
        help: HF_HELP.to_string(),
    }
}

pub fn parse(text: &str) -> Result<Source, SourceError> {
    let not_hf = || not_hf(text);
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(not_hf());
    };
    let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_and_prefix = || (!head.is_empty()).then(|| (head.to_string(), tail.to_string()));
    match scheme {
        "hf" if is_hub_repo(rest) => Ok(Source::HuggingFace {
            repo: rest.to_string(),
        }),
        "s3" if !head.is_empty() => parse_s3(text, head, tail),
        "gs" => bucket_and_prefix()
            .map(|(bucket, prefix)| Source::Gcs { bucket, prefix })
            .ok_or_else(not_hf),
        "pvc" => bucket_and_prefix()
            .map(|(claim, path)| Source::Pvc { claim, path })
            .ok_or_else(not_hf),
        "oci" if !head.is_empty() && !tail.is_empty() => Ok(Source::Oci {
            reference: rest.to_string(),
        }),
        _ => Err(not_hf()),
    }
}

/// A model's `source:` as written, and what it parsed to. Deserializing never fails on the
/// text: a bad source is a validation error with its position and help, reported with the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSource {
    raw: String,
    parsed: Result<Source, SourceError>,
}

/// No `source:` (Ollama models have none; validation asks the others for one).
impl Default for ModelSource {
    fn default() -> Self {
        ModelSource {
            raw: String::new(),
            parsed: Err(SourceError {
                message: "is missing".into(),
                help: HF_HELP.to_string(),
            }),
        }
    }
}

impl ModelSource {
    /// Whether config.yaml gave no source.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// `source: ""` is no source, as when the key is left out (validation says the same of both).
    pub fn new(raw: &str) -> ModelSource {
        if raw.is_empty() {
            return ModelSource::default();
        }
        ModelSource {
            raw: raw.to_string(),
            parsed: parse(raw),
        }
    }

    /// The text config.yaml holds.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn parsed(&self) -> Result<&Source, &SourceError> {
        self.parsed.as_ref()
    }

    /// The Hub repository, or why the source is not one (another scheme is not served yet).
    pub fn hub(&self) -> Result<&str, SourceError> {
        match &self.parsed {
            Ok(Source::HuggingFace { repo }) => Ok(repo),
            Ok(_) => Err(not_hf(&self.raw)),
            Err(e) => Err(e.clone()),
        }
    }

    /// `(bucket, prefix)` of an `s3://bucket/prefix` source (the prefix without a trailing `/`).
    pub fn s3(&self) -> Option<(&str, &str)> {
        match &self.parsed {
            Ok(Source::S3 { bucket, prefix }) => Some((bucket, prefix)),
            _ => None,
        }
    }

    /// `org/name` of an `hf://org/name` source.
    pub fn hf_repo(&self) -> Option<&str> {
        match &self.parsed {
            Ok(Source::HuggingFace { repo }) => Some(repo),
            _ => None,
        }
    }
}

impl fmt::Display for ModelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for ModelSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| ModelSource::new(&s))
    }
}

impl Serialize for ModelSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_sources_parse_once_with_the_hubs_rules() {
        let s = ModelSource::new("hf://Qwen/Qwen2.5-0.5B-Instruct");
        assert_eq!(s.hf_repo(), Some("Qwen/Qwen2.5-0.5B-Instruct"));
        for bad in [
            "hf://gpt2",
            "hf://a/b/c",
            "hf://a/..b",
            "hf://",
            "Qwen/Qwen2.5",
            "hf://-a/b",
            "hf://a--b/c",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.message, format!("`{bad}` is not a Hugging Face source"));
            assert!(e.help.contains("hf://<org>/<name>"));
        }
    }

    #[test]
    fn other_schemes_have_their_parts() {
        assert_eq!(
            parse("s3://bucket/models/qwen").unwrap(),
            Source::S3 {
                bucket: "bucket".into(),
                prefix: "models/qwen".into()
            }
        );
        assert_eq!(parse("gs://b").unwrap().scheme(), "gs");
        assert_eq!(
            parse("pvc://weights/qwen").unwrap(),
            Source::Pvc {
                claim: "weights".into(),
                path: "qwen".into()
            }
        );
        assert_eq!(
            parse("oci://registry.example/models/qwen@sha256:ab").unwrap(),
            Source::Oci {
                reference: "registry.example/models/qwen@sha256:ab".into()
            }
        );
        assert!(parse("s3://").is_err());
        assert_eq!(
            parse("s3://my-models/qwen/").unwrap(),
            Source::S3 {
                bucket: "my-models".into(),
                prefix: "qwen".into()
            }
        );
        assert!(parse("s3://my-models").is_ok());
        for (bad, why) in [
            ("s3://My_Bucket/x", "only lowercase"),
            ("s3://ab/x", "3 to 63"),
            ("s3://-abc/x", "starts and ends"),
            ("s3://a..b/x", "adjacent periods"),
            ("s3://192.168.1.2/x", "IP address"),
            ("s3://xn--abc/x", "reserved"),
            ("s3://bucket/a/../b", "`..`"),
            ("s3://bucket//a", "empty"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {}", e.message);
            assert!(e.help.contains("s3://<bucket>/<prefix>"), "{}", e.help);
        }
        assert!(parse("oci://registry-only").is_err());
        assert!(parse("ftp://x/y").is_err());
    }

    #[test]
    fn it_reads_and_writes_as_the_text() {
        let s: ModelSource = serde_yaml::from_str("hf://a/b").unwrap();
        assert_eq!(s.as_str(), "hf://a/b");
        assert_eq!(serde_yaml::to_string(&s).unwrap().trim(), "hf://a/b");
        let bad: ModelSource = serde_yaml::from_str("nope").unwrap();
        assert!(bad.parsed().is_err());
    }
}
