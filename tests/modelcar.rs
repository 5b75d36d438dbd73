//! `platform modelcar push` against the real distribution registry (Debian's `docker-registry`) on
//! loopback, with `skopeo` as the independent client that pulls back what platform pushed: every
//! weight's sha256 under `models/`, the base's layers kept, a second push that uploads nothing, the
//! layer limit, htpasswd (Basic) and token (Bearer) auth read from a docker config file, and a
//! wrong password refused in plain words without the secret.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use common::{platform_in, stderr, stdout};
use platform_testkit::registry::{push_busybox, skopeo, Auth, Registry};
use sha2::{Digest, Sha256};

fn hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A small model directory: two safetensors shards with an index, a config and a tokenizer;
/// returns each file's sha256.
fn model_dir(dir: &Path, shard_bytes: usize) -> BTreeMap<String, String> {
    let mut sums = BTreeMap::new();
    let mut put = |name: &str, data: Vec<u8>| {
        std::fs::write(dir.join(name), &data).unwrap();
        sums.insert(name.to_string(), hex(&data));
    };
    put("config.json", br#"{"model_type": "qwen2"}"#.to_vec());
    put("tokenizer.json", br#"{"version": "1.0"}"#.to_vec());
    for i in 1..=2u8 {
        let data: Vec<u8> = (0..shard_bytes)
            .map(|j| ((j * 31 + i as usize * 7) % 251) as u8)
            .collect();
        put(&format!("model-0000{i}-of-00002.safetensors"), data);
    }
    put(
        "model.safetensors.index.json",
        br#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#.to_vec(),
    );
    sums
}

/// `platform modelcar push --from <model> --image <image> --base <base>` with `docker_config` as
/// DOCKER_CONFIG (an empty directory: anonymous).
fn push(
    model: &Path,
    image: &str,
    base: &str,
    docker_config: &Path,
    extra: &[&str],
) -> std::process::Output {
    let repo = tempfile::tempdir().unwrap();
    let mut c = platform_in(repo.path());
    c.env("DOCKER_CONFIG", docker_config)
        .args(["modelcar", "push", "--from"])
        .arg(model)
        .args(["--image", image, "--base", base])
        .args(extra);
    c.output().unwrap()
}

/// The files of the image at `reference` as skopeo copies it (`dir:`): for each tar layer, its
/// entries (path → sha256 of regular files, "dir"/"link" otherwise), and the manifest.
fn pull_back(
    reference: &str,
    creds: Option<&str>,
) -> (BTreeMap<String, String>, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    let src = format!("docker://{}", reference.trim_start_matches("oci://"));
    let dst = format!("dir:{}", out.path().display());
    let mut args = vec!["copy", "--src-tls-verify=false"];
    let c;
    if let Some(creds) = creds {
        c = format!("--src-creds={creds}");
        args.push(&c);
    }
    args.extend([src.as_str(), dst.as_str()]);
    skopeo(&args);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    let mut files = BTreeMap::new();
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar",
            "{l}"
        );
        let digest = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let blob = std::fs::read(out.path().join(digest)).unwrap();
        assert_eq!(hex(&blob), digest, "the blob is what its digest says");
        let mut a = tar::Archive::new(&blob[..]);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let kind = e.header().entry_type();
            let v = if kind.is_file() {
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                hex(&data)
            } else if kind.is_dir() {
                "dir".into()
            } else {
                "link".into()
            };
            files.insert(path, v);
        }
    }
    (files, manifest)
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(o), stderr(o)))
}

#[test]
fn a_pushed_model_pulls_back_with_skopeo_and_a_second_push_uploads_nothing() {
    let reg = Registry::start(Auth::None);
    let base = push_busybox(&reg.host(), None);
    let model = tempfile::tempdir().unwrap();
    let sums = model_dir(model.path(), 300_000);
    let cfg = tempfile::tempdir().unwrap();
    let image = format!("{}/models/qwen:v1", reg.host());
    // Small chunks: every layer goes up in several PATCH requests.
    let o = push(
        model.path(),
        &image,
        &base,
        cfg.path(),
        &["--chunk-size", "64KiB"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = stdout(&o).trim().to_string();
    let prefix = format!("oci://{}/models/qwen@sha256:", reg.host());
    assert!(
        reference.starts_with(&prefix) && reference.len() == prefix.len() + 64,
        "{reference}"
    );
    assert!(stderr(&o).contains("uploaded"), "{}", stderr(&o));

    let (files, manifest) = pull_back(&reference, None);
    for (name, sum) in &sums {
        assert_eq!(
            files.get(&format!("models/{name}")),
            Some(sum),
            "models/{name} in {files:?}"
        );
    }
    for bin in ["bin/sh", "bin/ln", "bin/sleep"] {
        assert_eq!(
            files.get(bin).map(String::as_str),
            Some("link"),
            "{bin} from the base"
        );
    }
    let layers = manifest["layers"].as_array().unwrap();
    // The base's layer, the small files' layer, one per shard.
    assert_eq!(layers.len(), 4, "{manifest}");
    let config_json = skopeo(&[
        "inspect",
        "--config",
        "--tls-verify=false",
        &format!("docker://{}", reference.trim_start_matches("oci://")),
    ]);
    let config: serde_json::Value = serde_json::from_str(&config_json).unwrap();
    assert_eq!(config["os"], "linux");
    let ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let digests: Vec<&str> = layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids, digests,
        "uncompressed layers: diff_ids are the layer digests"
    );
    // The tag points at the same manifest.
    let tagged = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    let tagged: serde_json::Value = serde_json::from_str(&tagged).unwrap();
    assert_eq!(
        format!(
            "oci://{}/models/qwen@{}",
            reg.host(),
            tagged["Digest"].as_str().unwrap()
        ),
        reference
    );

    let again = push(model.path(), &image, &base, cfg.path(), &["-o", "json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let out = json(&again);
    assert_eq!(
        out["reference"],
        reference.as_str(),
        "same files, same base: same digest"
    );
    assert_eq!(out["uploadedBytes"], 0, "{out}");
    for l in out["layers"].as_array().unwrap() {
        assert_eq!(l["state"], "present", "{l}");
    }
}

#[test]
fn a_base_on_another_registry_is_copied_blob_by_blob() {
    let reg = Registry::start(Auth::None);
    let base = push_busybox(&reg.host(), None);
    // `localhost:<port>` is another registry name for the same server: no mount, a copy.
    let base_elsewhere = base.replace("127.0.0.1", "localhost");
    let model = tempfile::tempdir().unwrap();
    let sums = model_dir(model.path(), 5000);
    let cfg = tempfile::tempdir().unwrap();
    let image = format!("{}/other/qwen:v1", reg.host());
    let o = push(
        model.path(),
        &image,
        &base_elsewhere,
        cfg.path(),
        &["-o", "json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = json(&o);
    assert_eq!(out["layers"][0]["state"], "copied", "{out}");
    let (files, _) = pull_back(out["reference"].as_str().unwrap(), None);
    assert_eq!(files.get("models/config.json"), sums.get("config.json"));
    assert!(files.contains_key("bin/busybox"));
    // The same registry name mounts instead.
    let o = push(
        model.path(),
        &format!("{}/third/qwen", reg.host()),
        &base,
        cfg.path(),
        &["-o", "json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = json(&o);
    assert_eq!(out["layers"][0]["state"], "mounted", "{out}");
    assert_eq!(
        out["tag"],
        serde_json::Value::Null,
        "no tag: pushed by digest"
    );
}

#[test]
fn a_file_above_the_layer_limit_is_refused_before_anything_is_pushed() {
    let model = tempfile::tempdir().unwrap();
    model_dir(model.path(), 8192);
    let cfg = tempfile::tempdir().unwrap();
    // No registry listens there: the limit is checked first.
    let o = push(
        model.path(),
        "127.0.0.1:9/models/qwen:v1",
        "127.0.0.1:9/base/busybox:1",
        cfg.path(),
        &["--max-layer-size", "4KiB"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("model-00001-of-00002.safetensors (and 2 more layer(s)) is 10.0 KiB"),
        "{e}"
    );
    assert!(e.contains("4.0 KiB") && e.contains("max_shard_size"), "{e}");
    // The dry run lists the layers, and says the same.
    let o = push(
        model.path(),
        "127.0.0.1:9/models/qwen:v1",
        "127.0.0.1:9/b:1",
        cfg.path(),
        &["--dry-run"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("model-00002-of-00002.safetensors") && s.contains("10.0 KiB"),
        "{s}"
    );
    assert!(
        s.contains("config.json, model.safetensors.index.json, tokenizer.json"),
        "{s}"
    );
}

fn docker_config(dir: &Path, host: &str, user: &str, password: &str) {
    use base64ct::{Base64, Encoding};
    let auth = Base64::encode_string(format!("{user}:{password}").as_bytes());
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
}

#[test]
fn htpasswd_auth_from_the_docker_config_and_a_wrong_password_in_plain_words() {
    let (user, password) = ("modeller", "c0rrect-h0rse-battery");
    let reg = Registry::start(Auth::Htpasswd {
        user: user.into(),
        password: password.into(),
    });
    let creds = format!("{user}:{password}");
    let base = push_busybox(&reg.host(), Some(&creds));
    let model = tempfile::tempdir().unwrap();
    let sums = model_dir(model.path(), 4000);
    let image = format!("{}/models/qwen:v1", reg.host());

    let anon = tempfile::tempdir().unwrap();
    let o = push(model.path(), &image, &base, anon.path(), &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("docker login"), "{}", stderr(&o));

    let wrong = tempfile::tempdir().unwrap();
    let bad_password = "Wr0ng-pass-w0rd-xyz";
    docker_config(wrong.path(), &reg.host(), user, bad_password);
    let o = push(model.path(), &image, &base, wrong.path(), &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("refused user {user}")) && e.contains("401"),
        "{e}"
    );
    use base64ct::{Base64, Encoding};
    let encoded = Base64::encode_string(format!("{user}:{bad_password}").as_bytes());
    assert!(!e.contains(bad_password) && !e.contains(&encoded), "{e}");
    assert!(!stdout(&o).contains(bad_password));

    let good = tempfile::tempdir().unwrap();
    docker_config(good.path(), &reg.host(), user, password);
    let o = push(model.path(), &image, &base, good.path(), &["-v"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains(password), "{}", stderr(&o));
    let (files, _) = pull_back(stdout(&o).trim(), Some(&creds));
    for (name, sum) in &sums {
        assert_eq!(files.get(&format!("models/{name}")), Some(sum));
    }

    // A credential helper named by credHelpers answers instead of auths.
    let helper = tempfile::tempdir().unwrap();
    let script = helper.path().join("docker-credential-platformtest");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nread server\n[ \"$server\" = \"{}\" ] || exit 3\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{password}\"}}' \"$server\"\n",
            reg.host()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let by_helper = tempfile::tempdir().unwrap();
    std::fs::write(
        by_helper.path().join("config.json"),
        format!(r#"{{"credHelpers": {{"{}": "platformtest"}}}}"#, reg.host()),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helper.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let repo = tempfile::tempdir().unwrap();
    let o = platform_in(repo.path())
        .env("DOCKER_CONFIG", by_helper.path())
        .env("PATH", path)
        .args(["modelcar", "push", "--from"])
        .arg(model.path())
        .args([
            "--image",
            &format!("{}/models/helped:v1", reg.host()),
            "--base",
            &base,
            "-v",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("docker-credential-platformtest"),
        "{}",
        stderr(&o)
    );
}

/// A token service as the distribution registry's `auth: token` expects one: Basic credentials
/// (GET, as docker and skopeo ask) or an OAuth2 refresh token (POST, `identitytoken`) are turned
/// into an ES256 JWT whose `x5c` header carries the self-signed certificate the registry trusts.
mod token_service {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::extract::{Form, Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use base64ct::{Base64, Base64UrlUnpadded, Encoding};
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    pub struct Service {
        pub addr: SocketAddr,
        pub cert_pem: std::path::PathBuf,
        _dir: tempfile::TempDir,
        _rt: tokio::runtime::Runtime,
    }

    struct Keys {
        pair: EcdsaKeyPair,
        cert_der: Vec<u8>,
        user: String,
        password: String,
        refresh: String,
    }

    pub const ISSUER: &str = "platform-test-issuer";
    pub const SERVICE: &str = "platform-test-registry";

    fn openssl(args: &[&str]) {
        let bin = platform_testkit::registry::tool("openssl");
        let o = std::process::Command::new(bin).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    pub fn start(user: &str, password: &str, refresh: &str) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).display().to_string();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &p("key.pem"),
            "-out",
            &p("cert.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=platform-test-token",
        ]);
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &p("key.pem"),
            "-outform",
            "DER",
            "-out",
            &p("key.der"),
        ]);
        openssl(&[
            "x509",
            "-in",
            &p("cert.pem"),
            "-outform",
            "DER",
            "-out",
            &p("cert.der"),
        ]);
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &std::fs::read(p("key.der")).unwrap(),
            &SystemRandom::new(),
        )
        .unwrap();
        let keys = Arc::new(Keys {
            pair,
            cert_der: std::fs::read(p("cert.der")).unwrap(),
            user: user.into(),
            password: password.into(),
            refresh: refresh.into(),
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/token", get(by_password).post(by_refresh))
            .with_state(keys);
        rt.spawn(async move { axum::serve(listener, app).await });
        Service {
            addr,
            cert_pem: dir.path().join("cert.pem"),
            _dir: dir,
            _rt: rt,
        }
    }

    fn jwt(keys: &Keys, sub: &str, scopes: &[String]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter_map(|s| {
                let mut it = s.splitn(3, ':');
                let (kind, name, actions) = (it.next()?, it.next()?, it.next()?);
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [Base64::encode_string(&keys.cert_der)]});
        let claims = serde_json::json!({"iss": ISSUER, "sub": sub, "aud": SERVICE, "exp": now + 300,
            "nbf": now - 10, "iat": now, "jti": format!("{now}-{sub}"), "access": access});
        let msg = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
            Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
        );
        let sig = keys
            .pair
            .sign(&SystemRandom::new(), msg.as_bytes())
            .unwrap();
        format!("{msg}.{}", Base64UrlUnpadded::encode_string(sig.as_ref()))
    }

    fn answer(token: String) -> axum::response::Response {
        axum::Json(serde_json::json!({"token": token, "access_token": token, "expires_in": 300}))
            .into_response()
    }

    async fn by_password(
        State(k): State<Arc<Keys>>,
        headers: HeaderMap,
        Query(q): Query<Vec<(String, String)>>,
    ) -> axum::response::Response {
        let scopes: Vec<String> = q
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect();
        let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            // Anonymous: a token that grants nothing.
            return answer(jwt(&k, "", &[]));
        };
        let expected = format!(
            "Basic {}",
            Base64::encode_string(format!("{}:{}", k.user, k.password).as_bytes())
        );
        if auth != expected {
            // Echo what was sent, as a careless service might: the client must not show it.
            return (
                StatusCode::UNAUTHORIZED,
                format!("{{\"details\": \"bad credentials {auth}\"}}"),
            )
                .into_response();
        }
        answer(jwt(&k, &k.user, &scopes))
    }

    async fn by_refresh(
        State(k): State<Arc<Keys>>,
        Form(f): Form<Vec<(String, String)>>,
    ) -> axum::response::Response {
        let get = |n: &str| {
            f.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if get("grant_type") != "refresh_token" || get("refresh_token") != k.refresh {
            return (StatusCode::UNAUTHORIZED, "{\"error\": \"invalid_grant\"}").into_response();
        }
        answer(jwt(&k, &k.user, &[get("scope")]))
    }
}

#[test]
fn bearer_token_auth_with_a_password_or_an_identity_token() {
    let (user, password, refresh) = ("tokener", "t0ken-pass-w0rd", "refresh-t0ken-0123456789");
    let svc = token_service::start(user, password, refresh);
    let reg = Registry::start(Auth::Token {
        realm: format!("http://{}/token", svc.addr),
        service: token_service::SERVICE.into(),
        issuer: token_service::ISSUER.into(),
        root_cert: svc.cert_pem.clone(),
    });
    let creds = format!("{user}:{password}");
    let base = push_busybox(&reg.host(), Some(&creds));
    let model = tempfile::tempdir().unwrap();
    let sums = model_dir(model.path(), 4000);

    let by_password = tempfile::tempdir().unwrap();
    docker_config(by_password.path(), &reg.host(), user, password);
    let o = push(
        model.path(),
        &format!("{}/models/qwen:v1", reg.host()),
        &base,
        by_password.path(),
        &["-o", "json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = json(&o);
    assert_eq!(
        out["layers"][0]["state"], "mounted",
        "the token covers pull on the base: {out}"
    );
    let (files, _) = pull_back(out["reference"].as_str().unwrap(), Some(&creds));
    for (name, sum) in &sums {
        assert_eq!(files.get(&format!("models/{name}")), Some(sum));
    }

    let by_refresh = tempfile::tempdir().unwrap();
    std::fs::write(
        by_refresh.path().join("config.json"),
        format!(
            r#"{{"auths": {{"http://{}": {{"auth": "", "identitytoken": "{refresh}"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let o = push(
        model.path(),
        &format!("{}/models/other:v2", reg.host()),
        &base,
        by_refresh.path(),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains(refresh));

    let wrong = tempfile::tempdir().unwrap();
    docker_config(wrong.path(), &reg.host(), user, "N0t-the-pass-w0rd");
    let o = push(
        model.path(),
        &format!("{}/models/qwen:v3", reg.host()),
        &base,
        wrong.path(),
        &[],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("token service answered HTTP 401"), "{e}");
    use base64ct::{Base64, Encoding};
    let encoded = Base64::encode_string(format!("{user}:N0t-the-pass-w0rd").as_bytes());
    assert!(
        !e.contains("N0t-the-pass-w0rd") && !e.contains(&encoded),
        "the echoed secret is removed: {e}"
    );
}

#[test]
fn a_model_from_config_yaml_is_pushed_from_its_hub_snapshot_in_the_stage_model_cache() {
    use platform_testkit::hub;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(hub::HubEmulator::start(
        vec![hub::small_model("Qwen/Qwen2.5-0.5B-Instruct")],
        hub::Faults::default(),
    ));
    let reg = Registry::start(Auth::None);
    let base = push_busybox(&reg.host(), None);
    let repo = common::TempRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut c = repo.cmd();
        c.env("HF_ENDPOINT", &emu.endpoint)
            .env("PLATFORM_HUB_CACHE", cache.path())
            .env("HF_HOME", cache.path())
            .env("DOCKER_CONFIG", cfg.path())
            .args(["modelcar", "push", "qwen-cpu", "--image"])
            .arg(format!("{}/models/qwen-cpu:v1", reg.host()))
            .args(["--base", &base])
            .args(extra);
        c.output().unwrap()
    };
    let dry = run(&["--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("model.safetensors"),
        "{}",
        stdout(&dry)
    );
    assert!(
        emu.file_requests().is_empty(),
        "a dry run downloads nothing"
    );

    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let commit = &emu.repo("Qwen/Qwen2.5-0.5B-Instruct").commit;
    assert!(
        e.contains(&format!("commit {commit}")),
        "the revision is resolved to its commit: {e}"
    );
    let (files, _) = pull_back(stdout(&o).trim(), None);
    let model = emu.repo("Qwen/Qwen2.5-0.5B-Instruct");
    for name in [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "merges.txt",
        "model.safetensors",
    ] {
        assert_eq!(
            files.get(&format!("models/{name}")),
            Some(&model.get(name).unwrap().sha256),
            "{name}"
        );
    }
    for skipped in [
        "models/pytorch_model.bin",
        "models/model.gguf",
        "models/README.md",
    ] {
        assert!(
            !files.contains_key(skipped),
            "stage-model's filter skips {skipped}"
        );
    }
    let downloads = emu.file_requests().len();
    let again = run(&[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again), stdout(&o));
    assert_eq!(
        emu.file_requests().len(),
        downloads,
        "the cached snapshot is reused"
    );
}

#[test]
fn usage_errors_say_the_fix_and_exit_1() {
    let cfg = tempfile::tempdir().unwrap();
    let model = tempfile::tempdir().unwrap();
    model_dir(model.path(), 100);
    let repo = tempfile::tempdir().unwrap();
    let o = platform_in(repo.path())
        .args(["modelcar", "push", "--image", "127.0.0.1:9/m/x:v1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--source hf://ORG/NAME or --from DIR"),
        "{}",
        stderr(&o)
    );
    for (image, says) in [
        ("127.0.0.1:9/Models/X", "is not an image reference"),
        (
            &format!("127.0.0.1:9/m/x@sha256:{}", "a".repeat(64)) as &str,
            "the digest is what the push prints",
        ),
    ] {
        let o = push(model.path(), image, "127.0.0.1:9/b:1", cfg.path(), &[]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
    // A registry nobody listens on: exit 4, in words.
    let o = push(
        model.path(),
        "127.0.0.1:9/m/x:v1",
        "127.0.0.1:9/b:1",
        cfg.path(),
        &[],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("could not be reached"),
        "{}",
        stderr(&o)
    );
}

/// A TCP proxy in front of the registry that cuts the first connection which has sent more than
/// `cut_after` bytes upstream (a link dropping mid-upload), once; then it forwards faithfully.
fn cutting_proxy(
    rt: &tokio::runtime::Runtime,
    upstream: u16,
    cut_after: u64,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cut = Arc::new(AtomicBool::new(false));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let flag = cut.clone();
    rt.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let flag = flag.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async {
                    let mut sent = 0u64;
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        sent += n as u64;
                        if sent > cut_after && !flag.swap(true, Ordering::SeqCst) {
                            return; // both halves are dropped: the connection is cut
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                let down = async {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    (port, cut)
}

#[test]
fn an_upload_cut_mid_chunk_is_sent_again_and_completes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reg = Registry::start(Auth::None);
    let base = push_busybox(&reg.host(), None);
    let (port, cut) = cutting_proxy(&rt, reg.port, 700_000);
    let via = format!("127.0.0.1:{port}");
    let model = tempfile::tempdir().unwrap();
    let sums = model_dir(model.path(), 1_500_000);
    let cfg = tempfile::tempdir().unwrap();
    let base_via = base.replace(&reg.host(), &via);
    let o = push(
        model.path(),
        &format!("{via}/models/cut:v1"),
        &base_via,
        cfg.path(),
        &["--chunk-size", "1MiB", "--jobs", "1"],
    );
    assert!(
        cut.load(std::sync::atomic::Ordering::SeqCst),
        "the proxy cut a connection"
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = stdout(&o).trim().replace(&via, &reg.host());
    let (files, _) = pull_back(&reference, None);
    for (name, sum) in &sums {
        assert_eq!(files.get(&format!("models/{name}")), Some(sum), "{name}");
    }
}

/// A llama.cpp model's image holds its `file:` alone (the GGUF file the runtime loads).
#[test]
fn a_llama_cpp_models_image_holds_its_gguf_file_alone() {
    use platform_testkit::hub;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(hub::HubEmulator::start(
        vec![hub::small_model("Qwen/Qwen2.5-0.5B-Instruct")],
        hub::Faults::default(),
    ));
    let reg = Registry::start(Auth::None);
    let base = push_busybox(&reg.host(), None);
    let repo = common::TempRepo::new();
    let cfg = repo.read("environments/ai-dev/config.yaml").replace(
        "    servedName: qwen2.5-0.5b\n    preset: vllm-cpu\n",
        "    servedName: qwen2.5-0.5b\n    runtime: llama-cpp\n    file: model.gguf\n    preset: llama-cpp-cpu\n",
    );
    assert!(cfg.contains("file: model.gguf"));
    repo.write("environments/ai-dev/config.yaml", &cfg);
    let cache = tempfile::tempdir().unwrap();
    let docker = tempfile::tempdir().unwrap();
    let o = repo
        .cmd()
        .env("HF_ENDPOINT", &emu.endpoint)
        .env("PLATFORM_HUB_CACHE", cache.path())
        .env("HF_HOME", cache.path())
        .env("DOCKER_CONFIG", docker.path())
        .args(["modelcar", "push", "qwen-cpu", "--image"])
        .arg(format!("{}/models/qwen-gguf:v1", reg.host()))
        .args(["--base", &base])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (files, _) = pull_back(stdout(&o).trim(), None);
    let model = emu.repo("Qwen/Qwen2.5-0.5B-Instruct");
    let weights: Vec<&String> = files
        .keys()
        .filter(|k| k.starts_with("models/") && !k.ends_with('/'))
        .collect();
    assert_eq!(weights, ["models/model.gguf"], "{files:?}");
    assert_eq!(
        files.get("models/model.gguf"),
        Some(&model.get("model.gguf").unwrap().sha256)
    );
}
