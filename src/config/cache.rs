//! The parsed config.yaml of a large environment, kept so that the next command does not parse the
//! same text again: YAML parsing (libyaml) was 15–20 ms of a 1000-model re-render, on the one
//! thread everything else waits for (issue 24); reading the kept result takes 2–3 ms.
//!
//! A cache, never an authority:
//! - it is keyed by the text itself (its length and sha256), by the source of the config's types,
//!   of the parse and of the crates' versions (compiled in: a build that reads config.yaml
//!   differently has another key even when it runs through a loader, valgrind or `ld.so`, whose
//!   `/proc/self/exe` is not platform) and by the running executable
//!   (device, inode, size, modification and change times of `/proc/self/exe`): another text, or
//!   another build of platform, never reads it;
//! - it holds what this very parse gave for that text (the config as JSON, which round-trips
//!   every field: no floats, no free-form values); a text that does not parse is never kept;
//! - a cache that cannot be read, does not match or does not deserialize is ignored (the text is
//!   parsed, and the cache written again);
//! - only for a text of at least [`consts::PARSED_CONFIG_MIN_BYTES`] (below that, parsing is
//!   quicker than the cache's own work);
//! - beside the output tree's lock (`.git/platform/clusters/<env>.config`, or
//!   `.platform-<env>.config` outside git), read by any command but written only by one that
//!   holds that lock (`root` and `resolve-groups` when they write): `lint`, `plan`, `diff` and
//!   `root --check` write nothing;
//! - written to a temporary file renamed over the old one (a reader sees the old cache or the new
//!   one); one that does not fit the input cap when read back is not written.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::EnvConfig;
use crate::consts;
use crate::gitops::lock::{self, Kept};
use crate::text::push_hex;

/// How the key line starts (a format this build does not know is ignored).
const HEADER: &str = "platform parsed config 1";

/// Where the parsed config of `text` may be kept, and under which key.
pub struct Slot {
    /// The tree's lock file, whose holder alone writes the slot.
    lock: PathBuf,
    path: PathBuf,
    key: String,
    text_len: usize,
}

impl Slot {
    /// The slot for `text` of `env` in `repo`; None when the text is too small to be worth it or
    /// the executable cannot be identified.
    pub fn of(repo: &Path, env: &str, text: &str) -> Option<Slot> {
        if text.len() < consts::PARSED_CONFIG_MIN_BYTES {
            return None;
        }
        let exe = exe_identity()?;
        let sum = Sha256::digest(text.as_bytes());
        let mut key = format!("{HEADER} build ");
        push_hex(&mut key, &build_fingerprint()[..8]);
        key.push_str(&format!(" exe {exe} text {} ", text.len()));
        push_hex(&mut key, &sum);
        let lock_file = lock::lock_path(repo, env);
        Some(Slot {
            path: Kept::Config.path(&lock_file),
            lock: lock_file,
            key,
            text_len: text.len(),
        })
    }

    /// The kept config of this text, if there is one that this build wrote for it.
    pub fn read(&self) -> Option<EnvConfig> {
        let text =
            crate::fsread::read_text(&self.path, crate::fsread::MAX_INPUT_BYTES, "parsed config")
                .ok()?;
        let (key, json) = text.split_once('\n')?;
        if key != self.key {
            return None;
        }
        serde_json::from_str(json).ok()
    }

    /// Keep `cfg`, parsed from this slot's text; a cache: nothing is said when it cannot be kept
    /// (the next command parses the text).
    pub fn write(&self, cfg: &EnvConfig) {
        let _ = self.try_write(cfg);
    }

    fn try_write(&self, cfg: &EnvConfig) -> Option<()> {
        if !lock::is_held(&self.lock) {
            return None;
        }
        // The JSON spells out every field: about twice the YAML.
        let mut out = Vec::with_capacity(self.key.len() + 1 + 2 * self.text_len);
        out.extend_from_slice(self.key.as_bytes());
        out.push(b'\n');
        serde_json::to_writer(&mut out, cfg).ok()?;
        if out.len() as u64 > crate::fsread::MAX_INPUT_BYTES {
            return None;
        }
        let dir = self.path.parent()?;
        let mut tmp = tempfile::Builder::new()
            .prefix(&lock::temp_prefix(&self.path))
            .tempfile_in(dir)
            .ok()?;
        tmp.write_all(&out).ok()?;
        tmp.persist(&self.path).ok()?;
        Some(())
    }

    #[cfg(test)]
    fn path(&self) -> &Path {
        &self.path
    }
}

/// The files that define the config's types and how they (de)serialize; they use nothing else of
/// the crate (a test checks it), so a build whose config reads differently differs here.
const TYPE_SOURCES: [&str; 4] = [
    include_str!("types.rs"),
    include_str!("quantity.rs"),
    include_str!("source.rs"),
    include_str!("autoscaling.rs"),
];

/// With the parse itself and the versions of the crates that parse (serde, serde_yaml,
/// serde_json), so that a build through a loader (where `/proc/self/exe` is the loader) that reads
/// config.yaml differently has another key.
const PARSE_SOURCES: [&str; 2] = [include_str!("mod.rs"), include_str!("../../Cargo.lock")];

fn build_fingerprint() -> [u8; 32] {
    let mut h = Sha256::new();
    for text in TYPE_SOURCES.iter().chain(&PARSE_SOURCES) {
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().into()
}

/// The running executable: another build (even of the same version) is another file, with another
/// inode and change time. `/proc/self/exe` is the file this process runs, even when a new build
/// has replaced it on disk since.
fn exe_identity() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/proc/self/exe").ok()?;
    Some(format!(
        "{} {} {} {}.{} {}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config of `n` models (about 340 bytes each).
    fn big(n: usize) -> String {
        let mut t = String::from("cluster: {name: big}\nfeatures: {raw-vllm: true}\nmodels:\n");
        for i in 0..n {
            t.push_str(&format!(
                "  - name: m{i}\n    layer: raw-vllm\n    source: hf://org/model-{i}\n    \
                 preset: vllm-gpu\n    gpus: 1\n    maxModelLen: 16384\n    resources:\n      \
                 requests: {{ cpu: \"4\", memory: 24Gi }}\n      limits: {{ nvidia.com/gpu: 1 }}\n    \
                 args: [--enforce-eager]\n    env: {{ A: \"{i}\" }}\n    storage: {{ size: 40Gi }}\n"
            ));
        }
        t
    }

    fn parse(text: &str) -> EnvConfig {
        super::super::parse(text, Path::new("config.yaml")).unwrap()
    }

    /// The slot of `text` in `dir`, with the tree's lock this test holds.
    fn slot(dir: &Path, text: &str) -> (Slot, crate::gitops::lock::TreeLock) {
        let lock = crate::gitops::lock::lock_tree(dir, "e", "test").unwrap();
        (Slot::of(dir, "e", text).unwrap(), lock)
    }

    #[test]
    fn a_kept_config_is_what_the_parse_gave() {
        let dir = tempfile::tempdir().unwrap();
        let text = big(300);
        let (s, _lock) = slot(dir.path(), &text);
        assert_eq!(s.path(), dir.path().join(".platform-e.config"));
        assert!(s.read().is_none());
        let cfg = parse(&text);
        s.write(&cfg);
        let kept = Slot::of(dir.path(), "e", &text).unwrap().read().unwrap();
        assert_eq!(format!("{kept:?}"), format!("{cfg:?}"));
    }

    #[test]
    fn the_key_is_the_text_and_the_executable() {
        let dir = tempfile::tempdir().unwrap();
        let text = big(300);
        let (s, _lock) = slot(dir.path(), &text);
        s.write(&parse(&text));
        // The kept JSON is what is read (here a different cluster name, written by hand).
        let kept = std::fs::read_to_string(s.path()).unwrap();
        let edited = kept.replacen("\"name\":\"big\"", "\"name\":\"kept\"", 1);
        assert_ne!(edited, kept);
        std::fs::write(s.path(), &edited).unwrap();
        assert_eq!(s.read().unwrap().cluster.name, "kept");
        // Another text of the same length: not read.
        let other = text.replacen("name: m1\n", "name: n1\n", 1);
        assert_eq!(other.len(), text.len());
        assert!(Slot::of(dir.path(), "e", &other).unwrap().read().is_none());
        // Another executable: not read.
        let (_, json) = edited.split_once('\n').unwrap();
        let exe = exe_identity().unwrap();
        let key = s.key.replacen(&exe, "1 2 3 4.5 6.7", 1);
        assert_ne!(key, s.key);
        std::fs::write(s.path(), format!("{key}\n{json}")).unwrap();
        assert!(s.read().is_none());
        // Garbage after the right key: not read.
        std::fs::write(s.path(), format!("{}\n{{\"models\": 3}}", s.key)).unwrap();
        assert!(s.read().is_none());
    }

    /// Every field survives the JSON the cache keeps: the shipped environment and every fixture
    /// environment (every layer, runtime, source and setting the tests use).
    #[test]
    fn every_known_config_round_trips_through_the_kept_json() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![root.join("environments/ai-dev/config.yaml")];
        for e in std::fs::read_dir(root.join("tests/fixtures/envs")).unwrap() {
            files.push(e.unwrap().path().join("config.yaml"));
        }
        assert!(files.len() >= 5, "{files:?}");
        let mut texts: Vec<(String, String)> = files
            .iter()
            .map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap()))
            .collect();
        texts.push(("every field".into(), EVERY_FIELD.into()));
        for (name, text) in texts {
            let cfg = parse(&text);
            let json = serde_json::to_string(&cfg).unwrap();
            let back: EnvConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(format!("{back:?}"), format!("{cfg:?}"), "{name}");
        }
    }

    /// Every key config.yaml knows, set (the shape only: it need not validate).
    const EVERY_FIELD: &str = r##"
cluster: {name: all, projectID: p, location: l, kubeconfig: ~/k.yaml, context: c, useGlobalContext: true}
repoURL: https://git.example/r.git
repoBranch: b
domain: example.org
profile: prod
layerProfile: full
secret_backend: vault
secret_store_auth: kubernetes
gpu_stack: operator
dns: {automate: true, provider: cloudflare, proxied: true}
gateway: {className: istio}
storageClassName: fast
features: {kserve: true, llm-d: false}
autoscaling: {prometheus: "http://prometheus.monitoring:9090"}
s3: {endpoint: "http://minio:9000", region: eu, pathStyle: true, verifyTls: false}
models:
  - name: a
    layer: llm-d
    source: ""
    runtime: llama-cpp
    file: m.gguf
    llamaCpp: {threads: 2, contextSize: 4096, parallel: 3}
    ollama: {model: "qwen3:4b"}
    revision: v1
    servedName: s
    preset: p
    replicas: 0
    gpus: 4
    tensorParallelSize: 4
    resources:
      requests: {cpu: 0.5, memory: 1.5Gi, nvidia.com/gpu: 4, ephemeral-storage: "1e3"}
      limits: {cpu: 500m, memory: 2Gi}
    strategy: RollingUpdate
    storage: {staged: false, dir: d, size: 1Ti, accessMode: ReadWriteOncePod, storageClassName: x}
    args: ["--a=1", "--b", "two words", "", "#hash"]
    env: {A: "1", B: "", C: "x: y"}
    maxModelLen: 32768
    canaryTrafficPercent: 255
    prefill: {replicas: 2, gpus: 1, tensorParallelSize: 1, resources: {requests: {cpu: "1"}}}
    namespace: ns
    apiKeySecret: {name: k, key: v}
    autoscaling: {min: 0, max: 9, metric: requests-running, target: 7, class: keda}
    priority: platform-gpu-serving
    hfTokenSecret: {name: h, key: t}
    moveTo: raw-vllm
    moveShare: 40
    app: a-llm-d
  - name: b
    layer: kserve
    source: s3://bucket/prefix/
    preset: p
    strategy: Recreate
    autoscaling: {max: 2}
"##;

    /// The fingerprint covers every type the config is made of: the files it hashes use only
    /// each other (and std, serde).
    #[test]
    fn the_build_fingerprint_covers_every_config_type() {
        let names = ["types", "quantity", "source", "autoscaling"];
        for (name, text) in names.iter().zip(TYPE_SOURCES) {
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            assert!(!code.contains("crate::"), "{name}.rs uses the crate");
            for (i, _) in code.match_indices("super::") {
                let rest = &code[i + "super::".len()..];
                assert!(
                    names.iter().any(|n| rest.starts_with(&format!("{n}::"))),
                    "{name}.rs uses super::{}",
                    &rest[..rest.len().min(30)]
                );
            }
        }
    }

    #[test]
    fn nothing_is_kept_without_holding_the_lock_or_for_a_small_text() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Slot::of(dir.path(), "e", &big(2)).is_none());
        let text = big(300);
        let cfg = parse(&text);
        let s = Slot::of(dir.path(), "e", &text).unwrap();
        s.write(&cfg);
        // A lock file another process held (or holds): not this process's to write beside.
        std::fs::write(dir.path().join(".platform-e.lock"), "").unwrap();
        s.write(&cfg);
        let lock = crate::gitops::lock::lock_tree(dir.path(), "e", "test").unwrap();
        drop(lock);
        s.write(&cfg);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".platform-e.lock"]);
    }

    /// A killed writer's temporary file is removed by the lock's next holder; another
    /// environment's is not.
    #[test]
    fn the_next_holder_removes_what_a_killed_writer_left() {
        let dir = tempfile::tempdir().unwrap();
        let left = [
            ".platform-e.config.tmp-a1B2c3",
            ".platform-e.index.tmp-x9Y8z7",
            ".platform-e-f.config.tmp-q1",
            ".platform-f.index.tmp-q2",
        ];
        for name in left {
            std::fs::write(dir.path().join(name), "half").unwrap();
        }
        let _lock = crate::gitops::lock::lock_tree(dir.path(), "e", "test").unwrap();
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".platform-e-f.config.tmp-q1",
                ".platform-e.lock",
                ".platform-f.index.tmp-q2"
            ]
        );
    }
}
