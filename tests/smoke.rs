//! `platform smoke` against the test API server: port-forwards over websocket
//! (`pods/portforward`) reach a fake OpenAI-compatible server on loopback playing vLLM, and a
//! Gateway whose address is loopback reaches it the way a tenant would. The binary runs as a user
//! runs it; one test calls the library to watch the port-forward close.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use platform_testkit::apiserver;
mod common;
use platform_testkit::openai;

use std::process::Output;
use std::time::Duration;

use apiserver::{Options, TestApiServer};
use common::apienv::Env;
use common::{stderr, stdout, TempRepo};
use openai::{Behaviour, FakeOpenAi};
use serde_json::{json, Value};

/// The shipped ai-dev environment (with llm-d on, and `edit` applied to its config) rendered, and a
/// test API server with `gpus` GPUs on its node.
async fn env_with(gpus: u32, edit: impl Fn(String) -> String) -> Env {
    let server = TestApiServer::start(Options {
        cluster_name: "ai-dev".into(),
        node_gpus: gpus,
        ..Options::default()
    })
    .await;
    let repo = TempRepo::new();
    let cfg = repo
        .read("environments/ai-dev/config.yaml")
        .replace("  llm-d: false ", "  llm-d: true  ");
    repo.write("environments/ai-dev/config.yaml", &edit(cfg));
    Env::new(server, repo).await
}

async fn env() -> Env {
    env_with(2, |c| c).await
}

/// Where each shipped model's pods are, and what they serve.
fn layout(model: &str) -> (&'static str, &'static str, &'static str) {
    match model {
        "qwen-cpu" => ("kserve", "qwen-cpu-predictor", "qwen2.5-0.5b"),
        "qwen-gpu" => ("serving", "qwen-gpu", "qwen2.5-7b"),
        "qwen-llmd" => ("llm-d", "qwen-llmd-kserve", "qwen2.5-0.5b-llmd"),
        other => panic!("no layout for {other}"),
    }
}

impl Env {
    async fn wait_ready(&self, model: &str) {
        let (ns, workload, _) = layout(model);
        self.server
            .wait_for(
                "apps/v1",
                "Deployment",
                ns,
                workload,
                Duration::from_secs(10),
                |d| {
                    d.and_then(|d| d.pointer("/status/readyReplicas"))
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                        >= 1
                },
            )
            .await
            .unwrap_or_else(|d| panic!("{model} never got a ready pod: {d:?}"));
    }

    /// Seed `model`, wait for its pod, and start a fake vLLM its port-forwards reach.
    async fn serve(&self, model: &str, tweak: impl FnOnce(&mut Behaviour)) -> FakeOpenAi {
        self.seed_model(model);
        self.wait_ready(model).await;
        let (ns, workload, served) = layout(model);
        let mut b = Behaviour {
            served_name: served.into(),
            ..Behaviour::default()
        };
        tweak(&mut b);
        let fake = FakeOpenAi::start(b).await;
        self.server
            .forward_port(ns, &format!("{workload}-"), 8000, fake.addr());
        fake
    }
}

fn json_of(o: &Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

fn model_of<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == name)
        .unwrap_or_else(|| panic!("{name} not in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_model_per_layer_answers_through_a_port_forward() {
    let e = env().await;
    let cpu = e.serve("qwen-cpu", |_| {}).await;
    let gpu = e.serve("qwen-gpu", |b| b.no_usage = true).await;
    let llmd = e.serve("qwen-llmd", |_| {}).await;
    let o = e.platform(&["smoke", "--all", "-o", "json"]).await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v = json_of(&o);
    assert_eq!(
        (v["passed"].clone(), v["failed"].clone()),
        (json!(3), json!(0)),
        "{v}"
    );
    for (name, layer, source, tokens) in [
        ("qwen-cpu", "kserve", "usage", 2),
        ("qwen-gpu", "raw-vllm", "chunks", 2),
        ("qwen-llmd", "llm-d", "usage", 2),
    ] {
        let m = model_of(&v, name);
        assert_eq!(m["result"], "pass", "{m}");
        assert_eq!(m["layer"], layer, "{m}");
        assert_eq!(m["path"], "port-forward", "{m}");
        assert_eq!(m["httpStatus"], 200, "{m}");
        assert_eq!(m["reply"], "pong", "{m}");
        assert_eq!(m["tokenSource"], source, "{m}");
        assert_eq!(m["completionTokens"], tokens, "{m}");
        assert!(m["ttftMs"].is_u64() && m["latencyMs"].is_u64(), "{m}");
        assert!(m["tokensPerSecond"].as_f64().unwrap() > 0.0, "{m}");
        assert!(
            m["endpoint"].as_str().unwrap().contains("via 127.0.0.1:"),
            "{m}"
        );
    }
    // Each endpoint got the checks in order, with the fixed request.
    for (fake, served) in [
        (&cpu, "qwen2.5-0.5b"),
        (&gpu, "qwen2.5-7b"),
        (&llmd, "qwen2.5-0.5b-llmd"),
    ] {
        let seen = fake.seen();
        let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["/health", "/v1/models", "/v1/chat/completions"]);
        let body: Value = serde_json::from_str(&seen[2].body).unwrap();
        assert_eq!(body["model"], served);
        assert_eq!(body["messages"][0]["content"], "Reply with exactly: pong");
        assert_eq!(
            (
                body["temperature"].clone(),
                body["max_tokens"].clone(),
                body["stream"].clone()
            ),
            (json!(0), json!(16), json!(true))
        );
    }
    // The port-forwards went through the API server's pods/portforward subresource.
    let pf: Vec<String> = e
        .server
        .request_log()
        .into_iter()
        .filter(|r| r.subresource == "portforward")
        .map(|r| format!("{}/{}", r.namespace, r.name))
        .collect();
    for prefix in [
        "kserve/qwen-cpu-predictor-",
        "serving/qwen-gpu-",
        "llm-d/qwen-llmd-kserve-",
    ] {
        assert!(pf.iter().any(|p| p.starts_with(prefix)), "{prefix}: {pf:?}");
    }
    // A table line per model; /v1/completions on request.
    let o = e.platform(&["smoke", "qwen-cpu", "--completions"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o);
    for want in [
        "qwen-cpu  kserve  port-forward  PASS  HTTP 200",
        "2 tokens (usage)",
        "reply \"pong\"",
    ] {
        assert!(line.contains(want), "{want}: {line}");
    }
    assert_eq!(cpu.seen().last().unwrap().path, "/v1/completions");
    // A server that ignores `stream: true` and answers one JSON object fails, saying so (issue 19
    // Medium 11, Low 13).
    cpu.set(|b| b.ignore_stream = true);
    let o = e.platform(&["smoke", "qwen-cpu"]).await;
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("FAIL  completion (HTTP 200):")
            && stdout(&o).contains(
                "asked for a stream (stream: true) but the server answered one JSON document"
            ),
        "{}",
        stdout(&o)
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failing_check_says_which_and_why() {
    let e = env_with(0, |c| c).await;
    // Not synced yet.
    let o = e.platform(&["smoke", "qwen-cpu"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("qwen-cpu  kserve  port-forward  FAIL  pod:"),
        "{out}"
    );
    assert!(
        out.contains("not in the cluster yet") && out.contains("sync it first"),
        "{out}"
    );
    assert!(
        stderr(&o).contains("1 of 1 model(s) failed: qwen-cpu (pod)"),
        "{}",
        stderr(&o)
    );

    // No GPU on the node: the raw-vLLM pod is Pending, and the line says why.
    e.seed_model("qwen-gpu");
    let reason = async {
        for _ in 0..100 {
            let o = e.platform(&["smoke", "qwen-gpu", "-o", "json"]).await;
            let v = json_of(&o);
            let m = model_of(&v, "qwen-gpu").clone();
            if m["reason"]
                .as_str()
                .unwrap_or("")
                .contains("Insufficient nvidia.com/gpu")
            {
                assert_eq!(o.status.code(), Some(1));
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the GPU reason never showed");
    }
    .await;
    assert_eq!(reason["check"], "pod", "{reason}");
    assert!(
        reason["reason"]
            .as_str()
            .unwrap()
            .contains("no ready pod behind Service serving/qwen-gpu"),
        "{reason}"
    );

    // /health answers 503 for a while, then the checks go on and pass.
    let fake = e.serve("qwen-cpu", |b| b.unhealthy_polls = 3).await;
    let o = e.platform(&["smoke", "qwen-cpu"]).await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("waiting for /health (HTTP 503"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        fake.seen().iter().filter(|s| s.path == "/health").count(),
        4
    );

    // The served name is missing.
    fake.set(|b| b.missing_name = true);
    let o = e.platform(&["smoke", "qwen-cpu"]).await;
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("FAIL  models:"), "{out}");
    assert!(
        out.contains("the served name `qwen2.5-0.5b` is not listed (it serves: some-other-model)"),
        "{out}"
    );

    // An empty completion.
    fake.set(|b| {
        b.missing_name = false;
        b.empty_reply = true;
    });
    let o = e.platform(&["smoke", "qwen-cpu", "-o", "json"]).await;
    assert_eq!(o.status.code(), Some(1));
    let v = json_of(&o);
    let m = model_of(&v, "qwen-cpu");
    assert_eq!(
        (
            m["result"].clone(),
            m["check"].clone(),
            m["httpStatus"].clone()
        ),
        (json!("fail"), json!("completion"), json!(200)),
        "{m}"
    );
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .contains("the streamed reply is empty"),
        "{m}"
    );

    // The endpoint wants a key the model config does not name.
    fake.set(|b| {
        b.empty_reply = false;
        b.api_key = Some("k".into());
    });
    let o = e.platform(&["smoke", "qwen-cpu"]).await;
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("FAIL  models (HTTP 401):"), "{out}");
    assert!(
        out.contains("Unauthorized") && out.contains("apiKeySecret"),
        "{out}"
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_that_never_passes_times_out_with_exit_3() {
    let e = env().await;
    let _fake = e.serve("qwen-cpu", |b| b.unhealthy_polls = u32::MAX).await;
    let o = e.platform(&["smoke", "qwen-cpu", "--timeout", "2s"]).await;
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("TIMEOUT  health:"), "{out}");
    assert!(
        out.contains("did not answer 200 within 2s (last: HTTP 503)"),
        "{out}"
    );
    // A pod whose container refuses the port: the kubelet's error is in the line.
    e.seed_model("qwen-llmd");
    e.wait_ready("qwen-llmd").await;
    let o = e.platform(&["smoke", "qwen-llmd", "--timeout", "2s"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("port-forward: an error occurred forwarding 8000 -> 8000"),
        "{out}"
    );
    // The API server refuses the port-forward itself (RBAC): no polling until the timeout, and a
    // refusal of the cluster API exits 4 (issue 19 Medium 4).
    e.server
        .fail_next_matching(1000, 403, None, Some("/portforward"), None);
    e.server.clear_request_log();
    let o = e.platform(&["smoke", "qwen-cpu", "--timeout", "60s"]).await;
    assert_eq!(o.status.code(), Some(4), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "ERROR  endpoint: the API server refused the port-forward to pod qwen-cpu-predictor-"
        ),
        "{out}"
    );
    assert!(out.contains("(Forbidden, HTTP 403)"), "{out}");
    let tries = e
        .server
        .request_log()
        .iter()
        .filter(|r| r.subresource == "portforward")
        .count();
    assert_eq!(tries, 1, "a refused port-forward was retried");
    e.server.shutdown().await;
}

const KEY: &str = "sk-test-9f8e7d6c5b4a";

fn with_key(cfg: String) -> String {
    cfg.replace(
        "    servedName: qwen2.5-0.5b\n",
        "    servedName: qwen2.5-0.5b\n    apiKeySecret: { name: qwen-cpu-key, key: api-key }\n",
    )
}

fn secret(value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": "qwen-cpu-key", "namespace": "kserve"},
           "data": {"api-key": platform_testkit::apiserver::base64(value.as_bytes())}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_from_the_secret_is_sent_and_never_shown() {
    let e = env_with(2, with_key).await;
    let fake = e.serve("qwen-cpu", |b| b.api_key = Some(KEY.into())).await;
    // The Secret does not exist yet.
    let o = e.platform(&["smoke", "qwen-cpu"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("FAIL  api-key: Secret kserve/qwen-cpu-key (apiKeySecret of model qwen-cpu) does not exist"), "{}", stdout(&o));
    // Written from a file: the trailing newline is not part of the key.
    e.server.put(secret(&format!("{KEY}\n"))).unwrap();
    for args in [
        &["smoke", "qwen-cpu", "-v", "-v"][..],
        &["smoke", "qwen-cpu", "-o", "json", "-v"][..],
    ] {
        let o = e.platform(args).await;
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(o.status.success(), "{all}");
        assert!(
            !all.contains(KEY) && !all.contains("9f8e7d6c5b4a"),
            "the key was shown: {all}"
        );
    }
    let seen = fake.seen();
    assert!(
        seen.iter()
            .filter(|s| s.path.starts_with("/v1/"))
            .all(|s| s.authorization.as_deref() == Some(&format!("Bearer {KEY}"))),
        "{seen:?}"
    );
    // A key the endpoint refuses: said so, shown nowhere.
    e.server.put(secret("sk-wrong-0123456789")).unwrap();
    let o = e.platform(&["smoke", "qwen-cpu"]).await;
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("HTTP 401") && all.contains("refused the API key from apiKeySecret"),
        "{all}"
    );
    // The server echoed the header it got: the key is cut out of its message.
    assert!(all.contains("Unauthorized: got Bearer <redacted>"), "{all}");
    assert!(!all.contains("sk-wrong") && !all.contains(KEY), "{all}");
    // A value that can't be a bearer token: named, not shown.
    e.server.put(secret("sk-two words")).unwrap();
    let o = e.platform(&["smoke", "qwen-cpu"]).await;
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("FAIL  api-key:") && all.contains("holds whitespace inside it"),
        "{all}"
    );
    assert!(!all.contains("two words"), "{all}");
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_models_are_skipped_unless_named() {
    let e = env().await;
    let _fake = e.serve("qwen-cpu", |_| {}).await;
    let _gpu = e.serve("qwen-gpu", |_| {}).await;
    let _llmd = e.serve("qwen-llmd", |_| {}).await;
    let o = e
        .platform(&["pause", "qwen-cpu", "--wait", "--timeout", "30s"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = e.platform(&["smoke", "--all"]).await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    // The result column lines up across the models, whatever their names' and layers' lengths.
    let raw = stdout(&o);
    let at: Vec<usize> = raw
        .lines()
        .filter_map(|l| {
            ["PASS", "SKIPPED", "FAIL"]
                .iter()
                .filter_map(|w| l.find(&format!("  {w}  ")))
                .min()
        })
        .collect();
    assert_eq!(at.len(), 3, "{raw}");
    assert!(at.iter().all(|a| *a == at[0]), "{raw}");
    let out = squeeze(&stdout(&o));
    assert!(
        out.contains("qwen-cpu  kserve  port-forward  SKIPPED  paused (`platform resume qwen-cpu --wait`, then smoke it)"),
        "{out}"
    );
    assert!(
        out.contains("qwen-gpu  raw-vllm  port-forward  PASS"),
        "{out}"
    );
    assert!(stderr(&o).contains("2 passed, 1 skipped"), "{}", stderr(&o));
    let o = e.platform(&["smoke", "qwen-cpu"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("FAIL  pod: the model is paused: `platform resume qwen-cpu --wait`"),
        "{}",
        stdout(&o)
    );
    e.server.shutdown().await;
}

/// The layer Gateway's LoadBalancer answers on loopback at `port`: its Service carries the
/// address before the Gateway controller reads it, and the listener is on the fake's port.
fn gateway_on_loopback(e: &Env, layer: &str, port: u16) {
    let (ns, name, file) = match layer {
        "kserve" => ("kserve", "kserve-ingress-gateway", "kserve/gateway.yaml"),
        "routing" => (
            "inference",
            "inference-gateway",
            "routing/routing-gateway.yaml",
        ),
        _ => ("llm-d", "llm-d-gateway", "llm-d/gateway.yaml"),
    };
    let _ = e
        .server
        .put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    e.server
        .put(json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": format!("{name}-agentgateway"), "namespace": ns},
                    "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": port}]},
                    "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}))
        .unwrap();
    let text = e.repo.read(&format!("clusters/ai-dev/serving/{file}"));
    let mut gw: Value = serde_yaml::from_str(&text).unwrap();
    gw["spec"]["listeners"][0]["port"] = json!(port);
    e.server.put(gw).unwrap();
}

async fn wait_gateway_address(e: &Env, ns: &str, name: &str) {
    e.server
        .wait_for(
            "gateway.networking.k8s.io/v1",
            "Gateway",
            ns,
            name,
            Duration::from_secs(10),
            |g| g.and_then(|g| g.pointer("/status/addresses/0/value")) == Some(&json!("127.0.0.1")),
        )
        .await
        .unwrap_or_else(|g| panic!("no loopback address: {g:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn via_gateway_goes_through_the_layer_gateway_address_with_the_kserve_host() {
    let e = env().await;
    e.seed_model("qwen-cpu");
    e.wait_ready("qwen-cpu").await;
    // The Gateway routes by the Host KServe assigned (its status.url).
    let gw = FakeOpenAi::start(Behaviour {
        served_name: "qwen2.5-0.5b".into(),
        host: Some("qwen-cpu-kserve.example.com".into()),
        ..Behaviour::default()
    })
    .await;
    gateway_on_loopback(&e, "kserve", gw.addr().port());
    wait_gateway_address(&e, "kserve", "kserve-ingress-gateway").await;
    let o = e
        .platform(&[
            "smoke",
            "qwen-cpu",
            "--via-gateway",
            "--layer-gateway",
            "-o",
            "json",
        ])
        .await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v = json_of(&o);
    let m = model_of(&v, "qwen-cpu");
    assert_eq!(
        (m["result"].clone(), m["path"].clone()),
        (json!("pass"), json!("gateway")),
        "{m}"
    );
    assert_eq!(
        m["endpoint"],
        format!(
            "http://127.0.0.1:{} Host: qwen-cpu-kserve.example.com",
            gw.addr().port()
        )
    );
    assert!(gw
        .seen()
        .iter()
        .all(|s| s.host == "qwen-cpu-kserve.example.com"));
    // No port-forward was opened.
    assert!(!e
        .server
        .request_log()
        .iter()
        .any(|r| r.subresource == "portforward"));
    // --domain changes the Host; this Gateway has no route for it.
    let o = e
        .platform(&[
            "smoke",
            "qwen-cpu",
            "--via-gateway",
            "--layer-gateway",
            "--domain",
            "models.test",
            "--timeout",
            "1s",
        ])
        .await;
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("(last: HTTP 404: the Gateway has no route for this Host"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        gw.seen().last().unwrap().host,
        "qwen-cpu-kserve.models.test"
    );

    // llm-d: the router's HTTPRoute matches /<namespace>/<name> and strips it.
    e.seed_model("qwen-llmd");
    e.wait_ready("qwen-llmd").await;
    let llmd = FakeOpenAi::start(Behaviour {
        served_name: "qwen2.5-0.5b-llmd".into(),
        prefix: Some("/llm-d/qwen-llmd".into()),
        ..Behaviour::default()
    })
    .await;
    gateway_on_loopback(&e, "llm-d", llmd.addr().port());
    wait_gateway_address(&e, "llm-d", "llm-d-gateway").await;
    // --all through the layers' own Gateways: raw vLLM has none and is skipped with a note (its
    // stable route is what `--via-gateway` alone uses); the others pass.
    e.seed_model("qwen-gpu");
    let o = e
        .platform(&["smoke", "--all", "--via-gateway", "--layer-gateway"])
        .await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = squeeze(&stdout(&o));
    assert!(out.contains("qwen-llmd  llm-d  gateway  PASS"), "{out}");
    assert!(out.contains("qwen-cpu  kserve  gateway  PASS"), "{out}");
    assert!(
        out.contains("qwen-gpu  raw-vllm  gateway  SKIPPED  raw vLLM has no Gateway"),
        "{out}"
    );
    assert_eq!(llmd.seen()[0].path, "/llm-d/qwen-llmd/health");
    // Named, it fails with the reason.
    let o = e
        .platform(&["smoke", "qwen-gpu", "--via-gateway", "--layer-gateway"])
        .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("FAIL  endpoint: raw vLLM has no Gateway"),
        "{}",
        stdout(&o)
    );
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_forward_is_closed_after_the_checks() {
    use platform::actions::smoke::{self, Options};
    let e = env().await;
    let fake = e.serve("qwen-cpu", |_| {}).await;
    // The library, as the command calls it.
    let repo = e.repo.path();
    let reporter = platform::report::Silent;
    let inputs = platform::pipeline::load(repo, "ai-dev", &reporter).unwrap();
    let plan =
        platform::pipeline::plan(&inputs, "ai-dev", platform::pipeline::Profile::Chosen(None))
            .unwrap();
    let m = plan.models.iter().find(|m| m.name == "qwen-cpu").unwrap();
    let client =
        platform::cluster::Client::from(platform_testkit::operators::client(&e.kubeconfig).await);
    let r = smoke::model(&client, m, true, &Options::default(), &reporter).await;
    assert_eq!(r.result, smoke::report::Result::Pass, "{}", r.line());
    let endpoint = r.endpoint.clone().unwrap();
    let local: std::net::SocketAddr = endpoint.rsplit("via ").next().unwrap().parse().unwrap();
    assert_eq!(fake.seen().len(), 3);
    // Nothing listens on the local port any more, and the API server has no stream left open.
    let refused = tokio::net::TcpStream::connect(local).await;
    assert!(refused.is_err(), "{local} still accepts connections");
    let mut open = e.server.open_port_forwards();
    for _ in 0..100 {
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        open = e.server.open_port_forwards();
    }
    assert_eq!(open, 0, "port-forward sessions left open");
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_smoke_tests_the_synced_models_after_the_last_wave() {
    let e = env().await;
    for (path, text) in e.repo.tree("clusters/ai-dev/apps") {
        let v: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        e.server.put(v).unwrap();
    }
    let _cpu = e.serve("qwen-cpu", |_| {}).await;
    let _gpu = e.serve("qwen-gpu", |_| {}).await;
    let _llmd = e.serve("qwen-llmd", |b| b.missing_name = true).await;
    let o = e
        .platform(&[
            "up",
            "--allow-unpushed",
            "--sync-models",
            "--smoke",
            "--timeout",
            "90s",
        ])
        .await;
    let out = squeeze(&stdout(&o));
    assert_eq!(o.status.code(), Some(1), "{out}\n{}", stderr(&o));
    assert!(
        stderr(&o).contains("are Synced and Healthy"),
        "{}",
        stderr(&o)
    );
    assert!(
        out.contains("qwen-cpu  kserve  port-forward  PASS"),
        "{out}"
    );
    assert!(
        out.contains("qwen-gpu  raw-vllm  port-forward  PASS"),
        "{out}"
    );
    assert!(
        out.contains("qwen-llmd  llm-d  port-forward  FAIL  models:"),
        "{out}"
    );
    // --smoke without --sync-models is a usage error: nothing was synced to test.
    let o = e.platform(&["up", "--allow-unpushed", "--smoke"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--sync-models"), "{}", stderr(&o));
    e.server.shutdown().await;
}

#[test]
fn api_key_secret_is_validated() {
    let repo = TempRepo::new();
    let base = common::config(common::QWEN_CPU);
    for (extra, want) in [
        (
            "    apiKeySecret: { name: Bad_Name, key: api-key }\n",
            "models[qwen-cpu].apiKeySecret.name",
        ),
        (
            "    apiKeySecret: { name: ok, key: \"a/b\" }\n",
            "models[qwen-cpu].apiKeySecret.key",
        ),
        ("    apiKeySecret: { name: ok }\n", "key"),
        (
            "    apiKeySecret: { name: ok, key: k, value: x }\n",
            "value",
        ),
    ] {
        repo.env("test", &format!("{base}{extra}"));
        let out = repo.cmd().args(["lint", "--env", "test"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra}: {err}");
        assert!(err.contains(want), "{extra}: {err}");
    }
    repo.env(
        "test",
        &format!("{base}    apiKeySecret: {{ name: qwen-key, key: api-key }}\n"),
    );
    let out = repo.cmd().args(["lint", "--env", "test"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_api_key_secret_is_rendered_as_a_reference_on_every_layer() {
    let repo = TempRepo::new();
    let cfg = repo
        .read("environments/ai-dev/config.yaml")
        .replace("  llm-d: false ", "  llm-d: true  ")
        .replace(
            "    servedName: qwen2.5-0.5b\n",
            "    servedName: qwen2.5-0.5b\n    apiKeySecret: { name: qwen-cpu-key, key: api-key }\n    env: { VLLM_API_KEY: not-this }\n",
        )
        .replace(
            "    servedName: qwen2.5-7b\n",
            "    servedName: qwen2.5-7b\n    apiKeySecret: { name: gpu-key, key: k }\n",
        )
        .replace(
            "    servedName: qwen2.5-0.5b-llmd\n",
            "    servedName: qwen2.5-0.5b-llmd\n    apiKeySecret: { name: llmd-key, key: k }\n",
        );
    repo.write("environments/ai-dev/config.yaml", &cfg);
    let out = repo
        .cmd()
        .args(["root", "--profile", "full"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (file, pointer, secret, key) in [
        (
            "qwen-cpu/kserve-inferenceservice.yaml",
            "/spec/predictor/containers/0/env",
            "qwen-cpu-key",
            "api-key",
        ),
        (
            "qwen-gpu/raw-vllm-deployment.yaml",
            "/spec/template/spec/containers/0/env",
            "gpu-key",
            "k",
        ),
        (
            "qwen-llmd/llmd-llminferenceservice.yaml",
            "/spec/template/containers/0/env",
            "llmd-key",
            "k",
        ),
    ] {
        let text = repo.read(&format!("clusters/ai-dev/models/{file}"));
        let v: Value = serde_yaml::from_str(&text).unwrap();
        let env = v
            .pointer(pointer)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{file}: {text}"));
        let keys: Vec<&Value> = env.iter().filter(|e| e["name"] == "VLLM_API_KEY").collect();
        assert_eq!(keys.len(), 1, "{file}: {env:?}");
        assert_eq!(
            keys[0]["valueFrom"]["secretKeyRef"],
            json!({"name": secret, "key": key}),
            "{file}"
        );
        assert!(
            !text.contains("not-this"),
            "{file}: a plain VLLM_API_KEY survived"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_that_never_binds_is_named_as_the_reason() {
    let e = env_with(2, |c| {
        c.replace(
            "# storageClassName: premium-rwo",
            "storageClassName: no-such-class",
        )
    })
    .await;
    e.seed_model("qwen-cpu");
    let mut last = Value::Null;
    for _ in 0..100 {
        let o = e.platform(&["smoke", "qwen-cpu", "-o", "json"]).await;
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        last = model_of(&json_of(&o), "qwen-cpu").clone();
        if last["reason"].as_str().unwrap_or("").contains("unbound") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["check"], "pod", "{last}");
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.contains("no ready pod behind Deployment kserve/qwen-cpu-predictor"),
        "{reason}"
    );
    assert!(reason.contains("PVC qwen-cpu-weights Pending"), "{reason}");
    assert!(
        reason.contains("unbound immediate PersistentVolumeClaims"),
        "{reason}"
    );
    e.server.shutdown().await;
}

/// The ai-dev environment plus a llama.cpp model (GGUF, API key) and an Ollama model on KServe.
fn with_other_runtimes(cfg: String) -> String {
    cfg + r#"
  - name: qwen-gguf
    layer: kserve
    runtime: llama-cpp
    source: hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF
    file: qwen2.5-0.5b-instruct-q4_k_m.gguf
    preset: llama-cpp-cpu
    apiKeySecret: { name: qwen-gguf-key, key: api-key }
  - name: qwen3-ollama
    layer: kserve
    runtime: ollama
    ollama: { model: "qwen3:4b" }
    preset: ollama-cpu
"#
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_and_ollama_answer_on_their_own_paths_and_names() {
    let e = env_with(2, with_other_runtimes).await;
    let mut fakes = Vec::new();
    for (model, served, health, key) in [
        ("qwen-gguf", "qwen-gguf", "/health", Some(KEY)),
        ("qwen3-ollama", "qwen3:4b", "/", None),
    ] {
        e.seed_model(model);
        let workload = format!("{model}-predictor");
        e.server
            .wait_for(
                "apps/v1",
                "Deployment",
                "kserve",
                &workload,
                Duration::from_secs(10),
                |d| {
                    d.and_then(|d| d.pointer("/status/readyReplicas"))
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                        >= 1
                },
            )
            .await
            .unwrap_or_else(|d| panic!("{model} never got a ready pod: {d:?}"));
        let fake = FakeOpenAi::start(Behaviour {
            served_name: served.into(),
            health_path: Some(health.into()),
            api_key: key.map(str::to_string),
            ..Behaviour::default()
        })
        .await;
        // Both engines listen on KServe's runtime port, 8080.
        e.server
            .forward_port("kserve", &format!("{workload}-"), 8080, fake.addr());
        fakes.push(fake);
    }
    let mut s = secret(KEY);
    s["metadata"]["name"] = json!("qwen-gguf-key");
    e.server.put(s).unwrap();
    let o = e
        .platform(&["smoke", "qwen-gguf", "qwen3-ollama", "-o", "json"])
        .await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v = json_of(&o);
    for name in ["qwen-gguf", "qwen3-ollama"] {
        let m = model_of(&v, name);
        assert_eq!(
            (m["result"].as_str(), m["reply"].as_str()),
            (Some("pass"), Some("pong")),
            "{m}"
        );
    }
    // llama-server: /health and the alias; Ollama: / and the tag it pulled.
    for (fake, health, served) in [
        (&fakes[0], "/health", "qwen-gguf"),
        (&fakes[1], "/", "qwen3:4b"),
    ] {
        let seen = fake.seen();
        let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, [health, "/v1/models", "/v1/chat/completions"]);
        let body: Value = serde_json::from_str(&seen[2].body).unwrap();
        assert_eq!(body["model"], served);
    }
    assert!(!format!("{}{}", stdout(&o), stderr(&o)).contains(KEY));
    // Pause and resume go through KServe's stop annotation, whatever the runtime.
    for verb in ["pause", "resume"] {
        let o = e
            .platform(&[verb, "qwen3-ollama", "--wait", "--timeout", "30s"])
            .await;
        assert!(o.status.success(), "{verb}: {}\n{}", stdout(&o), stderr(&o));
    }
    let isvc = e
        .server
        .get(
            "serving.kserve.io/v1beta1",
            "InferenceService",
            "kserve",
            "qwen3-ollama",
        )
        .unwrap();
    assert!(
        isvc.pointer("/metadata/annotations/serving.kserve.io~1stop")
            .is_none(),
        "{isvc}"
    );
    e.server.shutdown().await;
}

/// `--via-gateway` on a routed model goes through its stable route: the models' Gateway's
/// address and `/models/<model>` (which the HTTPRoute strips), whatever the model's layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn via_gateway_goes_through_the_models_stable_route() {
    let e = env().await;
    e.seed_model("qwen-cpu");
    e.wait_ready("qwen-cpu").await;
    let gw = FakeOpenAi::start(Behaviour {
        served_name: "qwen2.5-0.5b".into(),
        prefix: Some("/models/qwen-cpu".into()),
        ..Behaviour::default()
    })
    .await;
    gateway_on_loopback(&e, "routing", gw.addr().port());
    wait_gateway_address(&e, "inference", "inference-gateway").await;
    let o = e
        .platform(&["smoke", "qwen-cpu", "--via-gateway", "-o", "json"])
        .await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v = json_of(&o);
    let m = model_of(&v, "qwen-cpu");
    assert_eq!(
        (m["result"].clone(), m["path"].clone()),
        (json!("pass"), json!("route")),
        "{m}"
    );
    assert_eq!(
        m["endpoint"],
        format!("http://127.0.0.1:{}/models/qwen-cpu", gw.addr().port())
    );
    assert!(!gw.seen().is_empty());
    assert!(!e
        .server
        .request_log()
        .iter()
        .any(|r| r.subresource == "portforward"));
}

// ---------------------------------------------------------------------------------------------
// `platform logs` and `platform port-forward`: the serving pod through the API server.

/// The binary as a child process (its stdout piped), to read while it runs and signal.
fn spawn(e: &Env, args: &[&str]) -> std::process::Child {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("platform"));
    cmd.args([
        "--repo",
        e.repo.path().to_str().unwrap(),
        "--color",
        "never",
    ])
    .args(args)
    .args(["--kubeconfig", e.kubeconfig.to_str().unwrap()])
    .env_remove("PLATFORM_ENV")
    .env_remove("PLATFORM_REPO")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

/// Read the child's stdout until `done` says what was read is enough (at most 30 s).
async fn read_until(
    child: &mut std::process::Child,
    done: impl Fn(&str) -> bool + Send + 'static,
) -> (std::process::ChildStdout, String) {
    use std::io::Read;
    let mut out = child.stdout.take().unwrap();
    let task = tokio::task::spawn_blocking(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !done(&seen) {
            let n = out.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        (out, seen)
    });
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the command printed nothing in time")
        .unwrap()
}

async fn wait_child(child: std::process::Child) -> Output {
    let t = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    tokio::time::timeout(Duration::from_secs(30), t)
        .await
        .expect("the command did not end")
        .unwrap()
}

async fn delete_pods(e: &Env, ns: &str, prefix: &str) {
    let client = platform_testkit::operators::client(&e.kubeconfig).await;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, ns);
    for p in pods.list(&Default::default()).await.unwrap() {
        let name = p.metadata.name.unwrap_or_default();
        if name.starts_with(prefix) {
            pods.delete(&name, &Default::default()).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_stream_the_serving_pods_log_on_any_layer() {
    let e = env().await;
    for m in ["qwen-cpu", "qwen-gpu", "qwen-llmd"] {
        e.seed_model(m);
        e.wait_ready(m).await;
    }
    e.server.pod_log(
        "serving",
        "qwen-gpu-",
        false,
        &["INFO started", "INFO loading", "INFO ready"],
    );
    e.server
        .pod_log("kserve", "qwen-cpu-predictor-", false, &["kserve line"]);
    e.server
        .pod_log("llm-d", "qwen-llmd-kserve-", false, &["llm-d line"]);
    for (m, want) in [
        ("qwen-gpu", "INFO started\nINFO loading\nINFO ready\n"),
        ("qwen-cpu", "kserve line\n"),
        ("qwen-llmd", "llm-d line\n"),
    ] {
        let o = e.platform(&["logs", m]).await;
        assert!(o.status.success(), "{m}: {}", stderr(&o));
        assert_eq!(stdout(&o), want, "{m}");
    }
    let o = e.platform(&["logs", "qwen-gpu"]).await;
    assert!(
        stderr(&o).contains("pod serving/qwen-gpu-"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("container vllm"), "{}", stderr(&o));
    // Through pods/NAME/log, the serving container named.
    let logs: Vec<_> = e
        .server
        .request_log()
        .into_iter()
        .filter(|r| r.subresource == "log" && r.namespace == "serving")
        .collect();
    assert!(
        logs.iter().any(|r| r.query.contains("container=vllm")),
        "{logs:?}"
    );
    // --tail, --previous, --container.
    let o = e.platform(&["logs", "qwen-gpu", "--tail", "1"]).await;
    assert_eq!(stdout(&o), "INFO ready\n");
    let o = e.platform(&["logs", "qwen-gpu", "--previous"]).await;
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("previous terminated container"),
        "{}",
        stderr(&o)
    );
    e.server
        .pod_log("serving", "qwen-gpu-", true, &["CUDA out of memory"]);
    let o = e.platform(&["logs", "qwen-gpu", "--previous"]).await;
    assert_eq!(stdout(&o), "CUDA out of memory\n", "{}", stderr(&o));
    let o = e
        .platform(&["logs", "qwen-gpu", "--container", "nope"])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has no container `nope`; its containers: vllm"),
        "{}",
        stderr(&o)
    );
    let o = e.platform(&["logs", "qwen-gpu", "-o", "json"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    // -f: the lines as they come, then the stream stays open until the pod ends.
    let mut child = spawn(&e, &["logs", "qwen-gpu", "-f"]);
    let (rest, seen) = read_until(&mut child, |s| s.contains("INFO ready")).await;
    assert_eq!(seen, "INFO started\nINFO loading\nINFO ready\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(child.try_wait().unwrap().is_none(), "-f ended early");
    delete_pods(&e, "serving", "qwen-gpu-").await;
    child.stdout = Some(rest);
    let o = wait_child(child).await;
    assert!(o.status.success(), "{}", stderr(&o));
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_port_forward_say_why_there_is_no_pod() {
    let e = env().await;
    // Not synced yet.
    let o = e.platform(&["logs", "qwen-gpu"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not in the cluster yet"),
        "{}",
        stderr(&o)
    );
    // Paused: no pod, and how to start it.
    e.seed_model("qwen-gpu");
    e.wait_ready("qwen-gpu").await;
    e.platform(&["pause", "qwen-gpu", "--wait"]).await;
    for cmd in ["logs", "port-forward"] {
        let o = e.platform(&[cmd, "qwen-gpu"]).await;
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("model qwen-gpu is paused")
                && stderr(&o).contains("platform resume qwen-gpu"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    e.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_serves_the_model_until_interrupted() {
    let e = env().await;
    let fake = e.serve("qwen-cpu", |_| {}).await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let mut child = spawn(
        &e,
        &["port-forward", "qwen-cpu", &port.to_string(), "-o", "json"],
    );
    let (_rest, seen) = read_until(&mut child, |s| s.trim_end().ends_with('}')).await;
    let v: Value = serde_json::from_str(&seen).unwrap_or_else(|err| panic!("{err}: {seen}"));
    let url = format!("http://127.0.0.1:{port}/v1");
    assert_eq!(v["url"], url.as_str(), "{v}");
    assert_eq!(v["namespace"], "kserve");
    assert!(v["pod"]
        .as_str()
        .unwrap()
        .starts_with("qwen-cpu-predictor-"));
    let models: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{url}/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "qwen2.5-0.5b", "{models}");
    assert_eq!(fake.seen().last().unwrap().path, "/v1/models");
    // Ctrl-C: exit 130 (the process is gone, so is its listener: nothing more to assert).
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = wait_child(child).await;
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "forwarding {url} -> pod kserve/qwen-cpu-predictor-"
        )),
        "{}",
        stderr(&o)
    );

    // -q silences progress, not the URL asked for: it is printed on stdout.
    let mut child = spawn(&e, &["port-forward", "qwen-cpu", &port.to_string(), "-q"]);
    let (_rest, seen) = read_until(&mut child, |s| s.contains('\n')).await;
    assert_eq!(seen.trim_end(), url, "{seen}");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = wait_child(child).await;
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));

    // The pod ends: the forward ends too, saying how to reach the new one.
    let mut child = spawn(&e, &["port-forward", "qwen-cpu", "-o", "json"]);
    let (_rest, _) = read_until(&mut child, |s| s.trim_end().ends_with('}')).await;
    delete_pods(&e, "kserve", "qwen-cpu-predictor-").await;
    let o = wait_child(child).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the port-forward ended; `platform port-forward qwen-cpu`"),
        "{}",
        stderr(&o)
    );
    e.server.shutdown().await;
}

/// The report with its aligned columns' padding squeezed to two spaces, as one model alone prints
/// it (the columns line up across models, so a shorter name is padded).
fn squeeze(out: &str) -> String {
    let mut squeezed = String::with_capacity(out.len());
    let mut spaces = 0;
    for c in out.chars() {
        if c == ' ' {
            spaces += 1;
            continue;
        }
        squeezed.push_str(&" ".repeat(spaces.min(2)));
        spaces = 0;
        squeezed.push(c);
    }
    squeezed
}
