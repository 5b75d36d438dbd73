//! A fake OpenAI-compatible server (what vLLM serves) on 127.0.0.1 for `platform smoke` tests:
//! `GET /health`, `GET /v1/models`, `POST /v1/chat/completions` and `POST /v1/completions`
//! streamed as server-sent events (`data:` lines, a usage chunk, `data: [DONE]`). It can be told to
//! fail: 503 on `/health` for the first N polls, the served name missing from `/v1/models`, an
//! empty completion, 401 on `/v1/*` without the right bearer key; and, standing in for a Gateway,
//! to answer only one Host header or only under a path prefix (which it strips, as an HTTPRoute's
//! URLRewrite does). Every request is recorded.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::lock;

/// How the server behaves; change it at any time through [`FakeOpenAi::set`].
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// The `id` `/v1/models` lists.
    pub served_name: String,
    /// `/health` answers 503 this many times before 200 (`u32::MAX`: never healthy).
    pub unhealthy_polls: u32,
    /// `/v1/models` lists another name instead.
    pub missing_name: bool,
    /// The completion streams no content.
    pub empty_reply: bool,
    /// `/v1/*` wants `Authorization: Bearer <key>` (401 otherwise), as vLLM with `--api-key`.
    pub api_key: Option<String>,
    /// Answer only this Host (404 otherwise), as a Gateway routing by host.
    pub host: Option<String>,
    /// Answer only under this path prefix, stripped (404 otherwise), as llm-d's HTTPRoute.
    pub prefix: Option<String>,
    /// Leave the usage chunk out of the stream (tokens are then counted from chunks).
    pub no_usage: bool,
    /// Ignore `stream: true` and answer one JSON object, as some OpenAI-compatible servers do.
    pub ignore_stream: bool,
    /// The health path (`/health` when unset, as vLLM and llama-server; Ollama answers `/`).
    pub health_path: Option<String>,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub host: String,
    pub authorization: Option<String>,
    pub body: String,
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    seen: Mutex<Vec<Seen>>,
}

pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeOpenAi {
    pub async fn start(behaviour: Behaviour) -> FakeOpenAi {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            seen: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOpenAi { addr, shared, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut lock(&self.shared.behaviour));
    }

    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, msg: &str) -> Response {
    json_response(
        status,
        json!({"error": {"message": msg, "type": "error", "code": status.as_u16()}}),
    )
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let header_of = |h: header::HeaderName| {
        parts
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        host: header_of(header::HOST).unwrap_or_default(),
        authorization: header_of(header::AUTHORIZATION),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    lock(&shared.seen).push(seen.clone());
    let b = lock(&shared.behaviour).clone();
    if let Some(h) = &b.host {
        if seen.host != *h {
            return (StatusCode::NOT_FOUND, "no route for this host").into_response();
        }
    }
    let path = match &b.prefix {
        Some(p) => match seen.path.strip_prefix(p.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_string(),
            _ => return (StatusCode::NOT_FOUND, "no route").into_response(),
        },
        None => seen.path.clone(),
    };
    if path.starts_with("/v1/") {
        if let Some(key) = &b.api_key {
            if seen.authorization.as_deref() != Some(&format!("Bearer {key}")) {
                // As a careless proxy does: the credential it got, echoed in the error.
                let got = seen.authorization.as_deref().unwrap_or("nothing");
                return error(
                    StatusCode::UNAUTHORIZED,
                    &format!("Unauthorized: got {got}"),
                );
            }
        }
    }
    match (seen.method.as_str(), path.as_str()) {
        ("GET", p) if p == b.health_path.as_deref().unwrap_or("/health") => {
            let mut guard = lock(&shared.behaviour);
            if guard.unhealthy_polls > 0 {
                if guard.unhealthy_polls != u32::MAX {
                    guard.unhealthy_polls -= 1;
                }
                return (StatusCode::SERVICE_UNAVAILABLE, "").into_response();
            }
            StatusCode::OK.into_response()
        }
        ("GET", "/v1/models") => {
            let id = if b.missing_name {
                "some-other-model".to_string()
            } else {
                b.served_name.clone()
            };
            json_response(
                StatusCode::OK,
                json!({"object": "list", "data": [{"id": id, "object": "model", "owned_by": "vllm"}]}),
            )
        }
        ("POST", "/v1/chat/completions") | ("POST", "/v1/completions") => {
            completion(&b, path == "/v1/chat/completions", &seen.body)
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn completion(b: &Behaviour, chat: bool, body: &str) -> Response {
    let req: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if req["model"] != json!(b.served_name) {
        return error(
            StatusCode::NOT_FOUND,
            &format!("The model `{}` does not exist.", req["model"]),
        );
    }
    let pieces: Vec<&str> = if b.empty_reply {
        vec![]
    } else {
        vec!["po", "ng"]
    };
    let chunk = |content: Option<&str>, finish: Option<&str>| {
        let choice = if chat {
            let delta = match content {
                Some(c) => json!({"content": c}),
                None => json!({"role": "assistant", "content": ""}),
            };
            json!({"index": 0, "delta": delta, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": content.unwrap_or(""), "finish_reason": finish})
        };
        format!(
            "data: {}\n\n",
            json!({"id": "cmpl-1", "object": if chat { "chat.completion.chunk" } else { "text_completion" },
                   "model": b.served_name, "choices": [choice]})
        )
    };
    if b.ignore_stream {
        let text = pieces.concat();
        let choice = if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
        } else {
            json!({"index": 0, "text": text, "finish_reason": "stop"})
        };
        return json_response(
            StatusCode::OK,
            json!({"id": "cmpl-1", "model": b.served_name, "choices": [choice],
                   "usage": {"prompt_tokens": 9, "completion_tokens": pieces.len()}}),
        );
    }
    let mut events = vec![chunk(None, None)];
    for p in &pieces {
        events.push(chunk(Some(p), None));
    }
    events.push(chunk(
        None,
        Some(if b.empty_reply { "length" } else { "stop" }),
    ));
    let wants_usage = req.pointer("/stream_options/include_usage") == Some(&json!(true));
    if wants_usage && !b.no_usage {
        events.push(format!(
            "data: {}\n\n",
            json!({"id": "cmpl-1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": pieces.len(), "total_tokens": 9 + pieces.len()}})
        ));
    }
    events.push("data: [DONE]\n\n".to_string());
    let stream = futures_util::stream::iter(events).then(|e| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok::<_, std::convert::Infallible>(Bytes::from(e))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
