//! Pod port-forward over websocket (`v4.channel.k8s.io`, also offered as `portforward.k8s.io`),
//! as the kubelet serves it behind the API server: for the i-th port of `?ports=`, channel 2i
//! carries data and 2i+1 errors; the first frame on each channel is the port number (2 bytes,
//! little-endian). Each binary message starts with its channel byte. A port reaches the local
//! address a test registered with [`super::TestApiServer::forward_port`]; an unregistered port, or
//! one whose address refuses, gets the kubelet's message on its error channel.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::errors::ApiError;
use super::exec::frame;
use super::handlers::Ctx;
use super::http::error_response;
use super::store::Key;
use super::util;
use super::State;

/// Where a test sends a pod's port: pods of `namespace` whose name starts with `pod_prefix`.
#[derive(Debug, Clone)]
pub struct ForwardRule {
    pub namespace: String,
    pub pod_prefix: String,
    pub port: u16,
    pub target: SocketAddr,
}

fn target_of(state: &State, ns: &str, pod: &str, port: u16) -> Option<SocketAddr> {
    state
        .faults()
        .port_forwards
        .iter()
        .rev()
        .find(|r| r.namespace == ns && pod.starts_with(&r.pod_prefix) && r.port == port)
        .map(|r| r.target)
}

/// `ports=8000,9000` or `ports=8000&ports=9000`.
fn ports(ctx: &Ctx) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for v in ctx.query.all("ports") {
        for p in v.split(',').filter(|p| !p.is_empty()) {
            let n: u16 = p
                .trim()
                .parse()
                .map_err(|_| format!("invalid port {p:?}"))?;
            if n == 0 {
                return Err("invalid port 0".into());
            }
            out.push(n);
        }
    }
    if out.is_empty() {
        return Err("at least one port must be specified".into());
    }
    Ok(out)
}

/// Checks the pod and the ports, then upgrades to the websocket session.
pub async fn handle(ctx: Ctx, parts: &mut Parts) -> Response {
    let name = ctx.name.clone().unwrap_or_default();
    let ns = ctx.namespace.clone().unwrap_or_default();
    let Some(pod) = ctx.state.store.get(&Key::new(ctx.rt, &ns, &name)) else {
        return error_response(&ApiError::not_found(ctx.rt, &name));
    };
    if util::str_at(&pod, "/status/phase") != "Running" {
        return error_response(&ApiError::bad_request(format!(
            "pod {name} is not running and cannot be port-forwarded (phase {})",
            util::str_at(&pod, "/status/phase")
        )));
    }
    let protocols = parts
        .headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if protocols.contains("SPDY")
        || parts
            .headers
            .get("upgrade")
            .is_some_and(|u| u.as_bytes().starts_with(b"SPDY"))
    {
        return error_response(&ApiError::bad_request(
            "SPDY port-forwarding (kubectl's, directly or tunnelled over websocket) is not supported by the \
             test API server; use the websocket channel protocol v4.channel.k8s.io (kube-rs)",
        ));
    }
    let ports = match ports(&ctx) {
        Ok(p) => p,
        Err(e) => return error_response(&ApiError::bad_request(e)),
    };
    let ws =
        match WebSocketUpgrade::from_request_parts(parts, &()).await {
            Ok(ws) => ws,
            Err(_) => return error_response(&ApiError::bad_request(
                "Upgrade request required (the test API server speaks websocket port-forward only)",
            )),
        };
    let state = ctx.state.clone();
    ws.protocols(["v4.channel.k8s.io", "portforward.k8s.io"])
        .on_upgrade(move |socket| session(socket, state, ns, name, ports))
        .into_response()
}

/// Counts open sessions for [`super::TestApiServer::open_port_forwards`].
struct Open(Arc<State>);

impl Open {
    fn new(state: Arc<State>) -> Open {
        state.faults().port_forwards_open += 1;
        Open(state)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut f = self.0.faults();
        f.port_forwards_open = f.port_forwards_open.saturating_sub(1);
    }
}

enum FromPod {
    Data(u8, Vec<u8>),
    Eof,
}

async fn session(
    mut socket: WebSocket,
    state: Arc<State>,
    ns: String,
    pod: String,
    ports: Vec<u16>,
) {
    let _open = Open::new(state.clone());
    let (tx, mut rx) = mpsc::channel::<FromPod>(16);
    let mut writers: Vec<Option<OwnedWriteHalf>> = Vec::new();
    let mut live = 0usize;
    for (i, port) in ports.iter().enumerate() {
        let ch = (2 * i) as u8;
        let le = port.to_le_bytes();
        if socket.send(frame(ch, &le)).await.is_err()
            || socket.send(frame(ch + 1, &le)).await.is_err()
        {
            return;
        }
        let conn = match target_of(&state, &ns, &pod, *port) {
            Some(addr) => TcpStream::connect(addr).await.map_err(|e| e.to_string()),
            None => Err("connect: connection refused".to_string()),
        };
        match conn {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                let (mut r, w) = tcp.into_split();
                writers.push(Some(w));
                live += 1;
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => {
                                let _ = tx.send(FromPod::Eof).await;
                                return;
                            }
                            Ok(n) => {
                                if tx.send(FromPod::Data(ch, buf[..n].to_vec())).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
            Err(e) => {
                writers.push(None);
                let msg = format!(
                    "an error occurred forwarding {port} -> {port}: error forwarding port {port} to pod {pod}: \
                     failed to connect to localhost:{port} inside namespace of pod {ns}/{pod}: {e}"
                );
                let _ = socket.send(frame(ch + 1, msg.as_bytes())).await;
            }
        }
    }
    drop(tx);
    if live == 0 {
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) if b.len() > 1 => {
                    let idx = (b[0] / 2) as usize;
                    if b[0] % 2 == 0 {
                        if let Some(Some(w)) = writers.get_mut(idx) {
                            if w.write_all(&b[1..]).await.is_err() {
                                writers[idx] = None;
                            }
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            ev = rx.recv() => match ev {
                Some(FromPod::Data(ch, data)) => {
                    if socket.send(frame(ch, &data)).await.is_err() {
                        break;
                    }
                }
                Some(FromPod::Eof) => {
                    live -= 1;
                    if live == 0 {
                        let _ = socket.send(Message::Close(None)).await;
                        break;
                    }
                }
                None => break,
            },
        }
    }
    for w in writers.iter_mut().flatten() {
        let _ = w.shutdown().await;
    }
}
