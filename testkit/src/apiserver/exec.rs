//! Pod exec over websocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`): each binary message
//! starts with a channel byte (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize; v5 adds
//! 255 = close a channel, used for stdin EOF). The command runs with the built-in command set
//! against the pod's volumes; the final `Status` goes on channel 3.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::commands::{self, Output};
use super::errors::ApiError;
use super::handlers::Ctx;
use super::http::error_response;
use super::podfs::PodFs;
use super::store::Key;
use super::util;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;
/// Largest stdin accepted (a tar of test files; the real thing streams).
const MAX_STDIN: usize = 1 << 30;

fn container_names(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| util::str_at(c, "/name").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the request against the pod, then upgrades to the websocket session.
pub async fn handle(ctx: Ctx, parts: &mut Parts, method: &Method) -> Response {
    let name = ctx.name.clone().unwrap_or_default();
    let key = Key::new(ctx.rt, ctx.namespace.as_deref().unwrap_or(""), &name);
    let Some(pod) = ctx.state.store.get(&key) else {
        return error_response(&ApiError::not_found(ctx.rt, &name));
    };
    let names = container_names(&pod);
    let default = pod
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| names.first().cloned())
        .unwrap_or_default();
    let container = ctx
        .query
        .non_empty("container")
        .map(str::to_string)
        .unwrap_or(default);
    if !names.contains(&container) {
        return error_response(&ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    match util::str_at(&pod, "/status/phase") {
        "Running" => {}
        "Succeeded" | "Failed" => {
            return error_response(&ApiError::bad_request(format!(
                "cannot exec into a container in a completed pod; current phase is {}",
                util::str_at(&pod, "/status/phase")
            )))
        }
        _ if util::str_at(&pod, "/spec/nodeName").is_empty() => {
            return error_response(&ApiError::bad_request(format!(
                "pod {name} does not have a host assigned"
            )))
        }
        _ => {
            return error_response(&ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            )))
        }
    }
    let argv = ctx.query.all("command");
    if argv.is_empty() {
        return error_response(&ApiError::bad_request(
            "you must specify at least 1 command",
        ));
    }
    let want_stdin = ctx.query.flag("stdin");
    let want_stdout = ctx
        .query
        .non_empty("stdout")
        .is_none_or(|v| v == "true" || v == "1");
    let want_stderr = ctx
        .query
        .non_empty("stderr")
        .is_none_or(|v| v == "true" || v == "1");
    let ws = match WebSocketUpgrade::from_request_parts(parts, &()).await {
        Ok(ws) => ws,
        Err(_) => {
            let how = if method == Method::POST {
                "SPDY is not supported by the test API server; use a websocket (v5.channel.k8s.io)"
            } else {
                "Upgrade request required"
            };
            return error_response(&ApiError::bad_request(how));
        }
    };
    let ws = ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    let fs = PodFs::for_pod(&pod, &container, &ctx.state.volumes_dir);
    let drop_after = if want_stdin && commands::is_tar_extract(&argv) {
        ctx.state.faults().exec_drop_after.take()
    } else {
        None
    };
    ws.on_upgrade(move |socket| {
        session(
            socket,
            fs,
            argv,
            (want_stdin, want_stdout, want_stderr),
            drop_after,
        )
    })
    .into_response()
}

/// One websocket frame of a channel protocol (exec and port-forward): the channel byte, then data.
pub(super) fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// The channel-3 status for an exit code, as the kubelet reports it.
pub fn exit_status(argv: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            argv.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

async fn read_stdin(socket: &mut WebSocket) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(msg) = socket.recv().await {
        let data = match msg {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(e) => return Err(e.to_string()),
        };
        match data.first() {
            Some(&STDIN) => {
                buf.extend_from_slice(&data[1..]);
                if buf.len() > MAX_STDIN {
                    return Err("stdin exceeds the test API server's limit".into());
                }
            }
            Some(&CLOSE) if data.get(1) == Some(&STDIN) => break,
            _ => {}
        }
    }
    Ok(buf)
}

async fn session(
    mut socket: WebSocket,
    fs: PodFs,
    argv: Vec<String>,
    (want_stdin, want_stdout, want_stderr): (bool, bool, bool),
    drop_after: Option<u64>,
) {
    if want_stdin && commands::is_tar_extract(&argv) {
        stream_tar(socket, fs, argv, (want_stdout, want_stderr), drop_after).await;
        return;
    }
    let stdin = if want_stdin && commands::needs_stdin(&argv) {
        match read_stdin(&mut socket).await {
            Ok(b) => b,
            Err(e) => {
                let out = Output {
                    stderr: format!("{e}\n").into_bytes(),
                    code: 1,
                    ..Output::default()
                };
                finish(socket, &argv, out, want_stdout, want_stderr).await;
                return;
            }
        }
    } else {
        Vec::new()
    };
    // A kubelet starts a process before anything comes back; an answer sent at once can beat
    // client-go's websocket client to creating its streams ("Unknown stream id 3, discarding
    // message"), and kubectl then misses the exit status (`kubectl cp` took `/models/` for a
    // file). The built-in commands finish in microseconds, so they wait what a process start takes.
    tokio::time::sleep(PROCESS_START).await;
    let run_argv = argv.clone();
    let out = tokio::task::spawn_blocking(move || commands::run(&fs, &run_argv, &stdin))
        .await
        .unwrap_or_else(|e| Output {
            stderr: format!("command crashed: {e}\n").into_bytes(),
            code: 1,
            ..Output::default()
        });
    finish(socket, &argv, out, want_stdout, want_stderr).await;
}

/// How long a command takes to start (see `session`).
const PROCESS_START: std::time::Duration = std::time::Duration::from_millis(100);

/// A blocking reader over chunks sent by the websocket pump.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<axum::body::Bytes>,
    chunk: axum::body::Bytes,
    pos: usize,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(c) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// `tar x` with stdin streamed into the extraction as it arrives (bounded memory).
async fn stream_tar(
    mut socket: WebSocket,
    fs: PodFs,
    argv: Vec<String>,
    (want_stdout, want_stderr): (bool, bool),
    drop_after: Option<u64>,
) {
    let mut received: u64 = 0;
    let (tx, rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(64);
    let run_argv = argv.clone();
    let extract = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx,
            chunk: axum::body::Bytes::new(),
            pos: 0,
        };
        commands::tar_extract_streaming(&fs, &run_argv, reader)
            .unwrap_or_else(|| Output::err(2, "tar: not an extraction"))
    });
    while let Some(msg) = socket.recv().await {
        let data = match msg {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(_) => break,
        };
        if data.first() == Some(&STDIN) {
            received += data.len() as u64 - 1;
            if drop_after.is_some_and(|n| received >= n) {
                // The connection is lost: no status, no close frame.
                drop(tx);
                let _ = extract.await;
                return;
            }
        }
        match data.first() {
            // A failed send means the extraction ended (an error): stop feeding it.
            Some(&STDIN) if tx.send(data.slice(1..)).await.is_err() => break,
            Some(&CLOSE) if data.get(1) == Some(&STDIN) => break,
            _ => {}
        }
    }
    drop(tx);
    let out = extract.await.unwrap_or_else(|e| Output {
        stderr: format!("command crashed: {e}\n").into_bytes(),
        code: 1,
        ..Output::default()
    });
    finish(socket, &argv, out, want_stdout, want_stderr).await;
}

async fn finish(
    mut socket: WebSocket,
    argv: &[String],
    out: Output,
    want_stdout: bool,
    want_stderr: bool,
) {
    if want_stdout {
        for chunk in out.stdout.chunks(32 * 1024) {
            if socket.send(frame(STDOUT, chunk)).await.is_err() {
                return;
            }
        }
    }
    if want_stderr {
        for chunk in out.stderr.chunks(32 * 1024) {
            if socket.send(frame(STDERR, chunk)).await.is_err() {
                return;
            }
        }
    }
    let status = exit_status(argv, out.code).to_string();
    if socket.send(frame(STATUS, status.as_bytes())).await.is_err() {
        return;
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
    // Let the client's close frame arrive (bounded).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
