//! A real OCI registry for the modelcar tests and bench: Debian's `docker-registry` (the CNCF
//! distribution registry 2.8) on a free loopback port, storing in a temporary directory, optionally
//! behind htpasswd (Basic) or token (Bearer) auth; `skopeo` as the independent client; a BusyBox
//! base image (`sh`, `ln`, `sleep` as links to Debian's static busybox) written as an OCI layout and
//! pushed with skopeo.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const SETUP: &str =
    "apt-get install -y docker-registry skopeo busybox-static apache2-utils (.ci/run does)";

/// The path of a program the tests need, or a failure naming the package.
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    crate::missing_prerequisite(&format!("`{name}` is not installed"), SETUP)
}

/// How the registry authenticates.
pub enum Auth {
    None,
    /// htpasswd with one user (bcrypt, made by `htpasswd -B`).
    Htpasswd {
        user: String,
        password: String,
    },
    /// Bearer tokens from `realm`, checked against the certificate bundle `root_cert` (PEM).
    Token {
        realm: String,
        service: String,
        issuer: String,
        root_cert: PathBuf,
    },
}

/// A running registry; stopped when dropped.
pub struct Registry {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        let bin = tool("docker-registry");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let out = Command::new(tool("htpasswd"))
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("htpasswd runs");
                assert!(out.status.success(), "htpasswd failed");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, out.stdout).expect("htpasswd file");
                format!(
                    "auth:\n  htpasswd:\n    realm: platform-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token {
                realm,
                service,
                issuer,
                root_cert,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                root_cert.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_yaml}",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let reg = Registry {
            port,
            child,
            _dir: dir,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                use std::io::Read;
                if s.read(&mut buf).map(|n| n > 0).unwrap_or(false) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log =
            std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default();
        panic!(
            "docker-registry did not answer on 127.0.0.1:{} within 30s: {log}",
            self.port
        );
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Write an OCI layout holding a BusyBox image (one uncompressed layer: `bin/busybox` and
/// `bin/sh`, `bin/ln`, `bin/sleep` linking to it) tagged `tag`; its manifest digest.
pub fn busybox_layout(dir: &Path, tag: &str) -> String {
    let busybox = std::fs::read(tool("busybox")).expect("busybox binary");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_path("bin/").unwrap();
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("bin/busybox").unwrap();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, &busybox[..]).unwrap();
    for l in ["sh", "ln", "sleep"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_path(format!("bin/{l}")).unwrap();
        h.set_link_name("busybox").unwrap();
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
    }
    let layer = b.into_inner().unwrap();
    let layer_hex = sha256_hex(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
        "history": [{"created_by": "platform test: busybox-static"}]
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_hex = sha256_hex(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_hex}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{layer_hex}"), "size": layer.len()}]
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_hex = sha256_hex(&manifest);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for (hex, data) in [
        (&layer_hex, &layer),
        (&config_hex, &config),
        (&manifest_hex, &manifest),
    ] {
        std::fs::write(blobs.join(hex), data).unwrap();
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{manifest_hex}"), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}}]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    format!("sha256:{manifest_hex}")
}

/// Run skopeo with `args`; its stdout, or a panic with its stderr.
pub fn skopeo(args: &[&str]) -> String {
    let out = Command::new(tool("skopeo"))
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Push a BusyBox base to `<host>/base/busybox:1` (with `creds` `user:password` when the registry
/// wants them); its pinned reference `host/base/busybox@sha256:…`.
pub fn push_busybox(host: &str, creds: Option<&str>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let digest = busybox_layout(dir.path(), "1");
    let src = format!("oci:{}:1", dir.path().display());
    let dst = format!("docker://{host}/base/busybox:1");
    let mut args = vec!["copy", "--dest-tls-verify=false", "--preserve-digests"];
    let c;
    if let Some(creds) = creds {
        c = format!("--dest-creds={creds}");
        args.push(&c);
    }
    args.extend([src.as_str(), dst.as_str()]);
    skopeo(&args);
    format!("{host}/base/busybox@{digest}")
}
