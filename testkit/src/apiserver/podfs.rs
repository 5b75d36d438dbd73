//! A pod's file system as exec commands see it: each PVC (or emptyDir) volume mount maps to a
//! host directory (`<volumes_dir>/<namespace>/<claimName>/` for claims), everything else to a
//! per-pod scratch root. Paths are resolved lexically and must stay inside their mount.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::util;

/// Mount table of one container.
#[derive(Debug, Clone)]
pub struct PodFs {
    /// (mount path in the pod, host directory), longest mount path first.
    mounts: Vec<(String, PathBuf)>,
    root: PathBuf,
}

/// Lexically normalised absolute pod path (`..` never climbs above `/`).
pub fn normalize(cwd: &str, p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{cwd}/{p}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

impl PodFs {
    /// The mounts of `container` in `pod`.
    pub fn for_pod(pod: &Value, container: &str, volumes_dir: &Path) -> PodFs {
        let ns = util::str_at(pod, "/metadata/namespace");
        let name = util::str_at(pod, "/metadata/name");
        let root = volumes_dir.join(".pods").join(ns).join(name).join("rootfs");
        let volumes = pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let containers = ["/spec/containers", "/spec/initContainers"]
            .iter()
            .filter_map(|p| pod.pointer(p).and_then(Value::as_array).cloned())
            .flatten();
        let mut mounts = Vec::new();
        for c in containers.filter(|c| util::str_at(c, "/name") == container) {
            for m in c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let vol_name = util::str_at(&m, "/name");
                let Some(vol) = volumes
                    .iter()
                    .find(|v| util::str_at(v, "/name") == vol_name)
                else {
                    continue;
                };
                let base = if let Some(claim) = vol
                    .pointer("/persistentVolumeClaim/claimName")
                    .and_then(Value::as_str)
                {
                    volumes_dir.join(ns).join(claim)
                } else {
                    volumes_dir
                        .join(".pods")
                        .join(ns)
                        .join(name)
                        .join("volumes")
                        .join(vol_name)
                };
                let sub = util::str_at(&m, "/subPath");
                let host = if sub.is_empty() {
                    base
                } else {
                    base.join(normalize("/", sub).trim_start_matches('/'))
                };
                let mount_path = normalize("/", util::str_at(&m, "/mountPath"));
                mounts.push((mount_path, host));
            }
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.0.len()));
        PodFs { mounts, root }
    }

    /// A file system with only a scratch root (tests).
    pub fn scratch(root: PathBuf) -> PodFs {
        PodFs {
            mounts: Vec::new(),
            root,
        }
    }

    /// Host path of a pod path (relative paths are taken from `cwd`).
    pub fn resolve(&self, cwd: &str, p: &str) -> Result<PathBuf, String> {
        let abs = normalize(cwd, p);
        for (mount, host) in &self.mounts {
            let rest = if abs == *mount {
                Some("")
            } else {
                abs.strip_prefix(mount.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                    .or_else(|| (mount == "/").then(|| abs.trim_start_matches('/')))
            };
            if let Some(rest) = rest {
                let _ = std::fs::create_dir_all(host);
                let target = if rest.is_empty() {
                    host.clone()
                } else {
                    host.join(rest)
                };
                return ensure_within(&target, host).map(|_| target);
            }
        }
        let _ = std::fs::create_dir_all(&self.root);
        let target = self.root.join(abs.trim_start_matches('/'));
        ensure_within(&target, &self.root).map(|_| target)
    }
}

/// Refuses a host path whose existing part resolves (through symlinks) outside `base`.
fn ensure_within(target: &Path, base: &Path) -> Result<(), String> {
    let Ok(base) = base.canonicalize() else {
        return Ok(());
    };
    let mut probe = target.to_path_buf();
    loop {
        if let Ok(real) = probe.canonicalize() {
            return if real.starts_with(&base) {
                Ok(())
            } else {
                Err(format!("{}: path escapes its volume", target.display()))
            };
        }
        if !probe.pop() {
            return Ok(());
        }
    }
}

/// A tar member name made safe: no leading `/`, no `..`.
pub fn safe_member(name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => return None,
        }
    }
    Some(out)
}
