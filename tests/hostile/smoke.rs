//! Hostile cases: smoke (issue 19). One model (qwen-cpu, with an API key from its Secret) behind
//! the test API server, whose port-forwards reach a small hostile HTTP server on loopback playing
//! vLLM; or the API server itself failing. Each case runs `platform smoke` as a table and as
//! `-o json`, checks the exit code and what the output says, and that the API key (which the
//! hostile server echoes wherever it can) never shows, whole or in part, and no Rust Debug either.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform_testkit::apiserver::{Options, TestApiServer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::common;
use common::apienv::Env;
use common::{stderr, stdout, TempRepo};

/// The API key in the model's Secret; the hostile server echoes the header that carries it.
const KEY: &str = "sk-hostile-7c1e5a93b20d4f68";
const SERVED: &str = "qwen2.5-0.5b";
/// The most a hostile body sends before it ends (so a smoke without caps still ends, and the
/// case fails on what it says rather than eating the machine's memory).
const FLOOD: usize = 8 << 20;

/// What the server playing vLLM does (anything not named answers as vLLM does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// vLLM, answering `pong` (the API server is what fails).
    Vllm,
    /// `/v1/models`: `Content-Length: 10000000000`, then bytes until the flood ends.
    ModelsHugeLength,
    /// `/v1/models`: a chunked body that goes on and on.
    ModelsEndlessChunked,
    /// `/v1/models`: a 500 whose chunked error body goes on and on.
    ModelsEndlessError,
    /// `/v1/models`: 50 000 ids, none the served name.
    ModelsManyIds,
    /// `/v1/models`: the Authorization header it got, as the one model id.
    ModelsEchoKey,
    /// `/health`: 401, the header it got at character 295 of the message (where it is cut).
    HealthEchoKeyAtCut,
    /// The stream: 60 KB content chunks, on and on.
    StreamBigChunks,
    /// The stream: one-character content chunks, far more than max_tokens.
    StreamManyChunks,
    /// The stream: `po`, `ng`, then the end, without `data: [DONE]`.
    StreamNoDone,
    /// One JSON document (application/json) for a `stream: true` request.
    JsonAnswer,
    /// The stream's reply: "you sent <the header it got>".
    StreamEchoKeyReply,
    /// The stream: an error event whose message is the header it got.
    StreamEchoKeyError,
    /// The stream: no content, the header it got as the finish reason.
    StreamEchoKeyFinish,
}

/// A hostile vLLM on 127.0.0.1: one request per connection, raw HTTP/1.1 written by hand (so it
/// can lie about lengths and never end).
struct Hostile {
    addr: SocketAddr,
    mode: Arc<Mutex<Server>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    async fn start() -> Hostile {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Server::Vllm));
        let m = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let mode = *m.lock().unwrap();
                tokio::spawn(async move {
                    let _ = serve(sock, mode).await;
                });
            }
        });
        Hostile { addr, mode, task }
    }

    fn set(&self, s: Server) {
        *self.mode.lock().unwrap() = s;
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The request line's path and the Authorization header (the body is read and ignored).
async fn read_request(sock: &mut TcpStream) -> std::io::Result<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 << 10 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok((path, header("authorization")))
}

async fn serve(mut sock: TcpStream, mode: Server) -> std::io::Result<()> {
    let (path, auth) = read_request(&mut sock).await?;
    let auth = if auth.is_empty() {
        "nothing".into()
    } else {
        auth
    };
    let json_ct = "application/json";
    match (path.as_str(), mode) {
        ("/health", Server::HealthEchoKeyAtCut) => {
            let msg = format!(
                "{}Bearer {}",
                "x".repeat(288),
                auth.trim_start_matches("Bearer ")
            );
            let body = json!({"error": {"message": msg}}).to_string();
            whole(&mut sock, "401 Unauthorized", json_ct, body.as_bytes()).await
        }
        ("/health", _) => whole(&mut sock, "200 OK", "text/plain", b"").await,
        ("/v1/models", Server::ModelsHugeLength) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \
                        10000000000\r\nConnection: close\r\n\r\n";
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(br#"{"object":"list","data":["#).await?;
            flood(&mut sock, |_| br#"{"id":"x"},"#.repeat(4096)).await
        }
        ("/v1/models", Server::ModelsEndlessChunked) => {
            chunked(&mut sock, "200 OK", json_ct, |i| {
                if i == 0 {
                    br#"{"object":"list","data":["#.to_vec()
                } else {
                    br#"{"id":"x"},"#.repeat(4096)
                }
            })
            .await
        }
        ("/v1/models", Server::ModelsEndlessError) => {
            chunked(&mut sock, "500 Internal Server Error", "text/plain", |_| {
                b"out of memory ".repeat(4096)
            })
            .await
        }
        ("/v1/models", Server::ModelsManyIds) => {
            let ids: Vec<Value> = (0..50_000)
                .map(|i| json!({"id": format!("m{i}")}))
                .collect();
            let body = json!({"object": "list", "data": ids}).to_string();
            whole(&mut sock, "200 OK", json_ct, body.as_bytes()).await
        }
        ("/v1/models", Server::ModelsEchoKey) => {
            let body = json!({"object": "list", "data": [{"id": auth}]}).to_string();
            whole(&mut sock, "200 OK", json_ct, body.as_bytes()).await
        }
        ("/v1/models", _) => {
            let body = json!({"object": "list", "data": [{"id": SERVED}]}).to_string();
            whole(&mut sock, "200 OK", json_ct, body.as_bytes()).await
        }
        ("/v1/chat/completions", Server::JsonAnswer) => {
            let body = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
                              "usage": {"completion_tokens": 2}})
            .to_string();
            whole(&mut sock, "200 OK", json_ct, body.as_bytes()).await
        }
        ("/v1/chat/completions", Server::StreamBigChunks) => {
            let big = "x".repeat(60_000);
            chunked(&mut sock, "200 OK", "text/event-stream", |_| {
                event(content(&big)).into_bytes()
            })
            .await
        }
        ("/v1/chat/completions", Server::StreamManyChunks) => {
            chunked(&mut sock, "200 OK", "text/event-stream", |_| {
                event(content("x")).into_bytes()
            })
            .await
        }
        ("/v1/chat/completions", mode) => {
            let events = match mode {
                Server::StreamNoDone => vec![event(content("po")), event(content("ng"))],
                Server::StreamEchoKeyReply => sse_reply(&format!("you sent {auth}")),
                Server::StreamEchoKeyError => vec![
                    event(content("po")),
                    event(json!({"error": {"message": format!("bad key {auth}")}})),
                ],
                Server::StreamEchoKeyFinish => vec![
                    event(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": auth}]})),
                    "data: [DONE]\n\n".into(),
                ],
                _ => sse_reply("pong"),
            };
            let body = events.concat();
            whole(&mut sock, "200 OK", "text/event-stream", body.as_bytes()).await
        }
        _ => whole(&mut sock, "404 Not Found", "text/plain", b"no route").await,
    }
}

fn content(text: &str) -> Value {
    json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
}

fn event(v: Value) -> String {
    format!("data: {v}\n\n")
}

/// `text` streamed in two content chunks, a finish, usage, `[DONE]`.
fn sse_reply(text: &str) -> Vec<String> {
    let cut = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |c| c.0);
    vec![
        event(content(&text[..cut])),
        event(content(&text[cut..])),
        event(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
        event(json!({"choices": [], "usage": {"completion_tokens": 2}})),
        "data: [DONE]\n\n".into(),
    ]
}

async fn whole(
    sock: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body).await?;
    sock.shutdown().await
}

/// Pieces `piece(0)`, `piece(1)`, … until [`FLOOD`] bytes went out (or the reader hung up).
async fn flood(sock: &mut TcpStream, piece: impl Fn(usize) -> Vec<u8>) -> std::io::Result<()> {
    let mut sent = 0;
    let mut i = 0;
    while sent < FLOOD {
        let p = piece(i);
        sock.write_all(&p).await?;
        sent += p.len();
        i += 1;
    }
    sock.shutdown().await
}

/// A chunked body of `piece(i)` chunks up to [`FLOOD`] bytes, then its proper end.
async fn chunked(
    sock: &mut TcpStream,
    status: &str,
    content_type: &str,
    piece: impl Fn(usize) -> Vec<u8>,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await?;
    flood(sock, |i| {
        let p = piece(i);
        let mut c = format!("{:x}\r\n", p.len()).into_bytes();
        c.extend_from_slice(&p);
        c.extend_from_slice(b"\r\n");
        c
    })
    .await?;
    sock.write_all(b"0\r\n\r\n").await
}

/// One row of the table.
struct Case {
    item: &'static str,
    server: Server,
    /// The test API server answers requests whose path contains `.1` with HTTP `.0`.
    api_fault: Option<(u16, &'static str)>,
    exit: i32,
    /// In the table's line (stdout) and in stderr.
    stdout: &'static [&'static str],
    stderr: &'static [&'static str],
    /// Never in stdout or stderr.
    never: &'static [&'static str],
}

const LINE: &str = "qwen-cpu  kserve  port-forward  ";

fn cases() -> Vec<Case> {
    vec![
        Case {
            item: "issue 19 High 1: /v1/models announces 10 GB",
            server: Server::ModelsHugeLength,
            api_fault: None,
            exit: 1,
            stdout: &[
                "FAIL  models:",
                "/v1/models: the answer announces 10000000000 bytes (Content-Length), more than the 1 MiB smoke reads of one answer",
            ],
            stderr: &["1 of 1 model(s) failed: qwen-cpu (models)"],
            never: &[],
        },
        Case {
            item: "issue 19 High 1: /v1/models is an endless chunked body",
            server: Server::ModelsEndlessChunked,
            api_fault: None,
            exit: 1,
            stdout: &[
                "FAIL  models:",
                "/v1/models: the answer is larger than the 1 MiB smoke reads of one answer",
                "stopped reading",
            ],
            stderr: &[],
            never: &[],
        },
        Case {
            item: "issue 19 High 1: /v1/models answers 500 with an endless error body",
            server: Server::ModelsEndlessError,
            api_fault: None,
            exit: 1,
            stdout: &["FAIL  models (HTTP 500):", "out of memory out of memory", "…"],
            stderr: &[],
            never: &[],
        },
        Case {
            item: "issue 19 High 1: /v1/models lists 50 000 other ids (the message shows ten)",
            server: Server::ModelsManyIds,
            api_fault: None,
            exit: 1,
            stdout: &["(it serves: m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, and 49990 more)"],
            stderr: &[],
            never: &["m10,"],
        },
        Case {
            item: "issue 19 High 2: an endless stream of 60 KB content chunks",
            server: Server::StreamBigChunks,
            api_fault: None,
            exit: 1,
            stdout: &[
                "FAIL  completion (HTTP 200):",
                "/v1/chat/completions: the stream went past 1 MiB for max_tokens 16; stopped reading after",
                "received: \"xxxxxxxxxx",
            ],
            stderr: &["qwen-cpu (completion)"],
            never: &[],
        },
        Case {
            item: "issue 19 High 2: far more content chunks than max_tokens",
            server: Server::StreamManyChunks,
            api_fault: None,
            exit: 1,
            stdout: &[
                "FAIL  completion (HTTP 200):",
                "the server streamed more than 64 content chunks for max_tokens 16",
                "65 content chunk(s)",
            ],
            stderr: &[],
            never: &[],
        },
        Case {
            item: "issue 19 High 3: the reply echoes the key",
            server: Server::StreamEchoKeyReply,
            api_fault: None,
            exit: 0,
            stdout: &["PASS  HTTP 200", "reply \"you sent Bearer <redacted>\""],
            stderr: &["1 passed"],
            never: &[],
        },
        Case {
            item: "issue 19 High 3: /v1/models lists the key as a model id",
            server: Server::ModelsEchoKey,
            api_fault: None,
            exit: 1,
            stdout: &["FAIL  models:", "(it serves: Bearer <redacted>)"],
            stderr: &[],
            never: &[],
        },
        Case {
            item: "issue 19 High 3: an error event in the stream echoes the key",
            server: Server::StreamEchoKeyError,
            api_fault: None,
            exit: 1,
            stdout: &[
                "FAIL  completion (HTTP 200):",
                "the server sent an error in the stream: bad key Bearer <redacted>",
            ],
            stderr: &[],
            never: &[],
        },
        Case {
            item: "issue 19 High 3: the finish reason echoes the key",
            server: Server::StreamEchoKeyFinish,
            api_fault: None,
            exit: 1,
            stdout: &["the streamed reply is empty (0 chunk(s), finish reason Bearer <redacted>)"],
            stderr: &[],
            never: &[],
        },
        Case {
            item: "issue 19 High 3: a 401 echoes the key where the message is cut",
            server: Server::HealthEchoKeyAtCut,
            api_fault: None,
            exit: 1,
            stdout: &["FAIL  health (HTTP 401):", "xxxxBearer <reda"],
            stderr: &[],
            never: &[],
        },
        Case {
            item: "issue 19 Medium 11: the stream ends without data: [DONE]",
            server: Server::StreamNoDone,
            api_fault: None,
            exit: 1,
            stdout: &[
                "FAIL  completion (HTTP 200):",
                "the stream ended without `data: [DONE]` after 2 content chunk(s) (2 event(s)); received: \"pong\"",
            ],
            stderr: &[],
            never: &[],
        },
        Case {
            item: "issue 19 Medium 11, Low 13: one JSON document for a stream: true request",
            server: Server::JsonAnswer,
            api_fault: None,
            exit: 1,
            stdout: &[
                "FAIL  completion (HTTP 200):",
                "asked for a stream (stream: true) but the server answered one JSON document (Content-Type application/json)",
            ],
            stderr: &[],
            never: &[],
        },
        Case {
            item: "issue 19 Medium 4: the API server refuses the port-forward (403)",
            server: Server::Vllm,
            api_fault: Some((403, "/portforward")),
            exit: 4,
            stdout: &[
                "ERROR  endpoint: the API server refused the port-forward to pod qwen-cpu-predictor-",
                "(Forbidden, HTTP 403)",
                "RBAC",
            ],
            stderr: &["1 of 1 model(s) could not be checked (the cluster API failed or refused): qwen-cpu (endpoint)"],
            never: &["may still be loading", "TIMEOUT"],
        },
        Case {
            item: "issue 19 Medium 4: the API server cannot open the port-forward (500, no kubelet)",
            server: Server::Vllm,
            api_fault: Some((500, "/portforward")),
            exit: 4,
            stdout: &[
                "ERROR  endpoint: the API server could not open the port-forward to pod qwen-cpu-predictor-",
                "(InternalError, HTTP 500)",
            ],
            stderr: &["could not be checked"],
            never: &["may still be loading", "TIMEOUT"],
        },
        Case {
            item: "issue 19 Medium 4: 403 reading the InferenceService",
            server: Server::Vllm,
            api_fault: Some((403, "/inferenceservices")),
            exit: 4,
            stdout: &["ERROR  pod:", "InferenceService", "(Forbidden, HTTP 403)", "RBAC"],
            stderr: &["could not be checked"],
            never: &[],
        },
        Case {
            item: "a well-behaved server passes (the table's control row)",
            server: Server::Vllm,
            api_fault: None,
            exit: 0,
            stdout: &["PASS  HTTP 200", "2 tokens (usage)", "reply \"pong\""],
            stderr: &["1 passed"],
            never: &[],
        },
    ]
}

/// The shipped ai-dev environment, qwen-cpu wanting the API key from Secret kserve/qwen-cpu-key,
/// its pod ready and its port-forwards going to `target`.
async fn env(target: SocketAddr) -> Env {
    let server = TestApiServer::start(Options {
        cluster_name: "ai-dev".into(),
        ..Options::default()
    })
    .await;
    let repo = TempRepo::new();
    let cfg = repo.read("environments/ai-dev/config.yaml").replace(
        "    servedName: qwen2.5-0.5b\n",
        "    servedName: qwen2.5-0.5b\n    apiKeySecret: { name: qwen-cpu-key, key: api-key }\n",
    );
    repo.write("environments/ai-dev/config.yaml", &cfg);
    let e = Env::new(server, repo).await;
    e.seed_model("qwen-cpu");
    e.server
        .put(
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": "qwen-cpu-key", "namespace": "kserve"},
                    "data": {"api-key": platform_testkit::apiserver::base64(KEY.as_bytes())}}),
        )
        .unwrap();
    e.server
        .wait_for(
            "apps/v1",
            "Deployment",
            "kserve",
            "qwen-cpu-predictor",
            Duration::from_secs(10),
            |d| {
                d.and_then(|d| d.pointer("/status/readyReplicas"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    >= 1
            },
        )
        .await
        .unwrap_or_else(|d| panic!("qwen-cpu never got a ready pod: {d:?}"));
    e.server
        .forward_port("kserve", "qwen-cpu-predictor-", 8000, target);
    e
}

/// The start of an output for a failure message.
fn cut(s: &str) -> String {
    s.chars().take(2000).collect()
}

/// Every piece of the key 8 characters long: none may show.
fn key_pieces() -> Vec<&'static str> {
    (0..=KEY.len() - 8).map(|i| &KEY[i..i + 8]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_model_servers_and_api_servers() {
    let hostile = Hostile::start().await;
    let e = env(hostile.addr).await;
    let mut failures = Vec::new();
    for case in cases() {
        hostile.set(case.server);
        e.server.clear_faults();
        if let Some((status, path)) = case.api_fault {
            e.server
                .fail_next_matching(u32::MAX, status, None, Some(path), None);
        }
        for json_out in [false, true] {
            let mut args = vec!["smoke", "qwen-cpu", "--timeout", "30s"];
            if json_out {
                args.extend(["-o", "json"]);
            }
            let o = e.platform(&args).await;
            let (out, err) = (stdout(&o), stderr(&o));
            let mut wrong = Vec::new();
            if o.status.code() != Some(case.exit) {
                wrong.push(format!("exit {:?}, not {}", o.status.code(), case.exit));
            }
            let all = format!("{out}{err}");
            for piece in key_pieces() {
                if all.contains(piece) {
                    wrong.push(format!("the key shows ({piece})"));
                }
            }
            for debug in ["Status {", "Some(", "ListMeta", "Output {"] {
                if all.contains(debug) {
                    wrong.push(format!("Rust Debug output ({debug})"));
                }
            }
            for n in case.never {
                if all.contains(n) {
                    wrong.push(format!("says {n:?}"));
                }
            }
            if json_out {
                let want = match case.exit {
                    0 => "pass",
                    4 => "error",
                    _ => "fail",
                };
                match serde_json::from_str::<Value>(&out) {
                    Ok(v) if v["models"][0]["result"] == want => {}
                    Ok(v) => wrong.push(format!("result {}, not {want}", v["models"][0]["result"])),
                    Err(x) => wrong.push(format!("stdout is not JSON: {x}")),
                }
            } else {
                if !out.starts_with(LINE) {
                    wrong.push(format!("the line does not start with {LINE:?}"));
                }
                for s in case.stdout {
                    if !out.contains(s) {
                        wrong.push(format!("stdout lacks {s:?}"));
                    }
                }
                for s in case.stderr {
                    if !err.contains(s) {
                        wrong.push(format!("stderr lacks {s:?}"));
                    }
                }
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "{} ({}): {}\n  stdout: {}\n  stderr: {}",
                    case.item,
                    if json_out { "-o json" } else { "table" },
                    wrong.join("; "),
                    cut(&out),
                    cut(&err)
                ));
            }
        }
    }
    e.server.clear_faults();
    e.server.shutdown().await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
