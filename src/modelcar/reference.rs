//! Image references as `docker`, `skopeo` and the kubelet read them: `[registry/]repository[:tag][@sha256:…]`,
//! with Docker Hub's defaults (`docker.io`, `library/`) and an optional `oci://` in front (the form
//! config.yaml's `source:` uses).

use std::fmt;

/// Docker Hub as users write it, and the host its API answers on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]`, as written (Docker Hub's aliases become `docker.io`).
    pub registry: String,
    /// `org/name` (`library/name` on Docker Hub for a one-part name).
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

/// Why a text is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an image reference ({why}); write [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. ghcr.io/acme/qwen-modelcar:v1")]
pub struct BadReference {
    pub text: String,
    pub why: String,
}

impl ImageRef {
    pub fn parse(text: &str) -> Result<ImageRef, BadReference> {
        let bad = |why: &str| BadReference {
            text: text.to_string(),
            why: why.to_string(),
        };
        let rest = text.strip_prefix("oci://").unwrap_or(text);
        if rest.is_empty() || rest.len() > 512 {
            return Err(bad("empty or longer than 512 characters"));
        }
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => {
                if !is_sha256_digest(d) {
                    return Err(bad(
                        "the digest must be sha256: and 64 lowercase hex digits",
                    ));
                }
                (r, Some(d.to_string()))
            }
            None => (rest, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t.to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && !t.starts_with(['.', '-'])
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !ok {
                return Err(bad("a tag is letters, digits, _ . - (at most 128)"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | DOCKER_HUB_API => DOCKER_HUB.to_string(),
            _ => registry,
        };
        if !registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(bad("the registry is a host name with an optional :port"));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let ok_component = |c: &str| {
            !c.is_empty()
                && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        };
        if repository.len() > 255 || !repository.split('/').all(ok_component) {
            return Err(bad(
                "a repository is lowercase letters, digits and . _ - between slashes",
            ));
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the registry API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Whether the registry is on this machine (plain http is used there without asking).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => &self.registry,
        };
        host == "localhost"
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }

    /// What the manifest is fetched by: the digest when pinned, else the tag (default `latest`).
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `registry/repository@digest` as `source:` wants it (with `oci://`).
    pub fn pinned(&self, digest: &str) -> String {
        format!("oci://{}/{}@{digest}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_docker_reads_them() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/busybox")
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = ImageRef::parse("oci://127.0.0.1:5000/models/qwen:v1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "models/qwen");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(r.is_loopback());
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("ghcr.io/acme/x:1@{d}")).unwrap();
        assert_eq!(r.manifest_ref(), d);
        assert!(!r.is_loopback());
        assert_eq!(r.pinned(&d), format!("oci://ghcr.io/acme/x@{d}"));
        assert_eq!(
            ImageRef::parse("localhost/x").unwrap().registry,
            "localhost"
        );
        assert_eq!(
            ImageRef::parse("index.docker.io/acme/x").unwrap().registry,
            "docker.io"
        );
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "",
            "Ghcr.io/Acme/X",
            "ghcr.io/acme/x@sha256:abc",
            "ghcr.io/acme/x:bad tag",
            "ghcr.io//x",
            "ghcr.io/acme/x@md5:00",
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.to_string().contains("is not an image reference"), "{bad}");
        }
    }
}
