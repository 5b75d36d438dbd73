//! What a listing says: keys under the prefix turned into file paths (refusing keys that would
//! land outside the model directory), ETags and checksums turned into expected digests, and the
//! identity of the whole set (what the cache path and the PVC marker record).

use base64ct::Encoding;
use sha2::{Digest, Sha256};

use super::error::S3Error;
use crate::hub::hex;

/// One object under the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listed {
    pub key: String,
    /// The key relative to the prefix: the file's path in the model directory.
    pub path: String,
    pub size: u64,
    /// The ETag without its quotes.
    pub etag: String,
}

/// The prefix keys are listed under: `prefix/` (keys of `models/qwen` are `models/qwen/…`, not
/// `models/qwen2/…`), or nothing for the whole bucket.
pub(crate) fn list_prefix(prefix: &str) -> String {
    match prefix.trim_end_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    }
}

/// The object's key for the file at `path`.
pub(crate) fn key_of(prefix: &str, path: &str) -> String {
    format!("{}{path}", list_prefix(prefix))
}

/// Why a path relative to the prefix cannot be a file path under the model directory.
fn path_defect(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        return Some("an absolute path");
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Some("a backslash or a control character");
    }
    if path
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Some("an empty, `.` or `..` path segment");
    }
    if path.split('/').next() == Some(crate::hub::consts::PARTIAL_DIR) {
        return Some("the name of the download's own partial directory");
    }
    None
}

/// The object with `key`, `size` and `etag` as a file of the model under `prefix` (`list_prefix`
/// form), `None` for a "directory" marker (a key ending in `/`); a key outside the prefix or
/// whose path would leave the model directory is refused (`Err(why)`).
pub(crate) fn accept(
    prefix: &str,
    key: &str,
    size: u64,
    etag: &str,
) -> Result<Option<Listed>, &'static str> {
    let Some(path) = key.strip_prefix(prefix) else {
        return Err("the server listed a key outside the prefix");
    };
    if path.is_empty() || path.ends_with('/') {
        return Ok(None);
    }
    if let Some(why) = path_defect(path) {
        return Err(why);
    }
    Ok(Some(Listed {
        key: key.to_string(),
        path: path.to_string(),
        size,
        etag: etag.trim().trim_matches('"').to_string(),
    }))
}

/// The MD5 an ETag is, when it is one: 32 hex digits (a single-part upload). A multipart ETag
/// (`<hex>-<parts>`) is not the object's MD5.
pub(crate) fn plain_md5(etag: &str) -> Option<String> {
    (etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| etag.to_ascii_lowercase())
}

/// The sha256 (hex) an `x-amz-checksum-sha256` value is, when it covers the whole object: the
/// base64 of 32 bytes. A composite checksum (of parts, `…-<parts>`) is not.
pub(crate) fn full_sha256(value: &str, checksum_type: Option<&str>) -> Option<String> {
    if checksum_type.is_some_and(|t| t.eq_ignore_ascii_case("COMPOSITE")) || value.contains('-') {
        return None;
    }
    let bytes = base64ct::Base64::decode_vec(value.trim()).ok()?;
    (bytes.len() == 32).then(|| hex(&bytes))
}

/// What identifies a listing: the endpoint, bucket and prefix and each object's path, size and
/// ETag (sorted by path). Any object that changes (a new ETag), appears or goes gives another
/// identity, so another cache directory and a PVC marker that no longer matches. 40 hex digits,
/// the shape of a commit sha.
pub(crate) fn identity(endpoint: &str, bucket: &str, prefix: &str, files: &[Listed]) -> String {
    let mut h = Sha256::new();
    for part in [endpoint, bucket, prefix] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let mut sorted: Vec<&Listed> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for f in sorted {
        h.update(f.path.as_bytes());
        h.update([0]);
        h.update(f.size.to_string().as_bytes());
        h.update([0]);
        h.update(f.etag.as_bytes());
        h.update([b'\n']);
    }
    hex(&h.finalize())[..40].to_string()
}

/// An S3 error answer's `Code` and `Message` (the XML body's start), for messages.
pub(crate) fn error_code(body: &str) -> Option<(String, String)> {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))? + start;
        Some(body[start..end].trim().to_string())
    };
    Some((tag("Code")?, tag("Message").unwrap_or_default()))
}

/// `UnsafeKey` for `key` of `source_text` listed by `endpoint`.
pub(crate) fn unsafe_key(
    source_text: &str,
    endpoint: &str,
    key: &str,
    why: &'static str,
) -> S3Error {
    S3Error::UnsafeKey {
        source_text: source_text.to_string(),
        key: key.chars().filter(|c| !c.is_control()).take(300).collect(),
        endpoint: endpoint.to_string(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_paths_under_the_prefix_only() {
        let p = list_prefix("models/qwen");
        assert_eq!(p, "models/qwen/");
        assert_eq!(list_prefix(""), "");
        let ok = accept(&p, "models/qwen/sub/config.json", 3, "\"abc\"")
            .unwrap()
            .unwrap();
        assert_eq!(
            (ok.path.as_str(), ok.etag.as_str()),
            ("sub/config.json", "abc")
        );
        assert_eq!(accept(&p, "models/qwen/dir/", 0, "x").unwrap(), None);
        assert!(accept(&p, "models/qwen2/x", 1, "x")
            .unwrap_err()
            .contains("outside"));
        for bad in [
            "models/qwen//x",
            "models/qwen/../x",
            "models/qwen/a/./b",
            "models/qwen/a\\b",
            "models/qwen/.partial/x",
        ] {
            assert!(accept(&p, bad, 1, "x").is_err(), "{bad}");
        }
        assert!(accept("", "/etc/passwd", 1, "x")
            .unwrap_err()
            .contains("absolute"));
    }

    #[test]
    fn digests_from_etags_and_checksums() {
        assert_eq!(
            plain_md5("D41D8CD98F00B204E9800998ECF8427E").as_deref(),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert_eq!(plain_md5("d41d8cd98f00b204e9800998ecf8427e-3"), None);
        // sha256("") in base64.
        let empty = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        assert_eq!(
            full_sha256(empty, None).as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(full_sha256(empty, Some("COMPOSITE")), None);
        assert_eq!(full_sha256("abc=-2", None), None);
        let a = Listed {
            key: "k".into(),
            path: "a".into(),
            size: 1,
            etag: "e1".into(),
        };
        let b = Listed {
            etag: "e2".into(),
            ..a.clone()
        };
        let id = identity("http://h", "b", "p", std::slice::from_ref(&a));
        assert_eq!(id.len(), 40);
        assert_ne!(id, identity("http://h", "b", "p", &[b]));
        assert_eq!(id, identity("http://h", "b", "p", &[a]));
        assert_eq!(
            error_code("<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The bucket does not exist</Message></Error>"),
            Some(("NoSuchBucket".into(), "The bucket does not exist".into()))
        );
    }
}
