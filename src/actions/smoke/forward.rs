//! A local port-forward to one pod through the API server (kube-rs over websocket; no kubectl):
//! listens on 127.0.0.1 on an ephemeral port, opens one port-forward stream per accepted
//! connection, and is closed (listener and every stream) by [`PortForward::close`] or on drop.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::error::SmokeError;
use crate::cluster::Client;

pub struct PortForward {
    local: SocketAddr,
    accept: Option<JoinHandle<()>>,
    last_error: ErrorSlot,
}

impl PortForward {
    /// Start listening on 127.0.0.1:0 and forward each connection to `pod`'s `port`.
    pub async fn start(
        client: &Client,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<PortForward, SmokeError> {
        PortForward::start_on(client, namespace, pod, port, 0).await
    }

    /// [`PortForward::start`] on 127.0.0.1:`local_port` (0: any free port).
    pub async fn start_on(
        client: &Client,
        namespace: &str,
        pod: &str,
        port: u16,
        local_port: u16,
    ) -> Result<PortForward, SmokeError> {
        let listener = TcpListener::bind(("127.0.0.1", local_port))
            .await
            .map_err(|e| SmokeError::Listen { source: e })?;
        let local = listener
            .local_addr()
            .map_err(|e| SmokeError::Listen { source: e })?;
        let pods: kube::Api<Pod> = kube::Api::namespaced(client.kube(), namespace);
        let last_error = ErrorSlot(Arc::new(Mutex::new(Reported::default())), pod.to_string());
        let accept = tokio::spawn(accept_loop(
            listener,
            pods,
            pod.to_string(),
            port,
            last_error.clone(),
        ));
        Ok(PortForward {
            local,
            accept: Some(accept),
            last_error,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The errors the API server or the kubelet reports on the streams.
    pub fn last_error_handle(&self) -> ErrorSlot {
        self.last_error.clone()
    }

    /// Stop listening and end every stream; returns once the local port is released.
    pub async fn close(mut self) {
        if let Some(t) = self.accept.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        if let Some(t) = self.accept.take() {
            t.abort();
        }
    }
}

#[derive(Default)]
struct Reported {
    last: Option<String>,
    /// The API server answered the port-forward request itself with a client error (403 RBAC,
    /// 404 pod gone, 400 not running): retrying cannot help.
    refused: bool,
    /// Port-forwards in a row the API server failed to open (5xx: a kubelet it cannot reach;
    /// or the API server unreachable); reset by one that opens.
    api_failures: u32,
}

/// Port-forwards in a row the API server may fail to open before smoke gives up on it.
pub const API_FAILURES_MAX: u32 = 3;

/// Why the API server did not open a port-forward, as [`SmokeError::PortForward`] carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotOpened {
    pub pod: String,
    pub message: String,
    /// A 4xx answer (refused), rather than 5xx or unreachable.
    pub refused: bool,
}

impl NotOpened {
    pub fn error(self) -> SmokeError {
        SmokeError::PortForward {
            pod: self.pod,
            message: self.message,
            refused: self.refused,
        }
    }
}

/// The port-forward's error reports, shared with the HTTP checks (and the pod's name).
#[derive(Clone)]
pub struct ErrorSlot(Arc<Mutex<Reported>>, String);

impl ErrorSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Reported> {
        crate::sync::lock(&self.0)
    }

    /// The last error reported, if any.
    pub fn get(&self) -> Option<String> {
        self.lock().last.clone()
    }

    /// Why, when the API server refused the port-forward outright or failed to open it
    /// [`API_FAILURES_MAX`] times in a row: polling on cannot help.
    pub fn refused(&self) -> Option<NotOpened> {
        let r = self.lock();
        (r.refused || r.api_failures >= API_FAILURES_MAX).then(|| self.not_opened(&r))
    }

    /// Why, when the last port-forward the API server was asked for did not open (refused or
    /// failed): the endpoint was never reached, whatever else timed out.
    pub fn failing(&self) -> Option<NotOpened> {
        let r = self.lock();
        (r.refused || r.api_failures > 0).then(|| self.not_opened(&r))
    }

    fn not_opened(&self, r: &Reported) -> NotOpened {
        NotOpened {
            pod: self.1.clone(),
            message: r.last.clone().unwrap_or_default(),
            refused: r.refused,
        }
    }

    fn record(&self, msg: String) {
        self.lock().last = Some(msg);
    }

    /// The API server did not open a port-forward: `refused` (4xx) or failed.
    fn record_api(&self, msg: String, refused: bool) {
        let mut r = self.lock();
        r.last = Some(msg);
        r.refused |= refused;
        r.api_failures = r.api_failures.saturating_add(1);
    }

    fn opened(&self) {
        self.lock().api_failures = 0;
    }
}

/// Accepts until aborted; the connection tasks live in a JoinSet, so aborting this task (dropping
/// the set) ends them all.
async fn accept_loop(
    listener: TcpListener,
    pods: kube::Api<Pod>,
    pod: String,
    port: u16,
    last_error: ErrorSlot,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    // As kubectl's (Go's) sockets: streamed tokens are not held back by Nagle.
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(forward(tcp, pods.clone(), pod.clone(), port, last_error.clone()));
                }
                Err(e) => {
                    last_error.record(format!("accepting a local connection: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// One local connection: one port-forward stream to the pod.
async fn forward(
    mut tcp: TcpStream,
    pods: kube::Api<Pod>,
    pod: String,
    port: u16,
    last_error: ErrorSlot,
) {
    let mut pf = match pods.portforward(&pod, &[port]).await {
        Ok(pf) => pf,
        Err(e) => {
            let refused =
                matches!(&e, kube::Error::Api(s) if (400..500).contains(&s.code) && s.code != 429);
            last_error.record_api(crate::cluster::api_error::describe(&e), refused);
            return;
        }
    };
    last_error.opened();
    let (Some(mut upstream), Some(error)) = (pf.take_stream(port), pf.take_error(port)) else {
        last_error.record(format!(
            "the port-forward to pod {pod} has no stream for port {port}"
        ));
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream) => {}
        Some(msg) = error => last_error.record(msg),
    }
    drop(upstream);
    drop(tcp);
    // The stream is done: let the websocket close (bounded: a server that never answers the close
    // must not hold the task).
    let _ = tokio::time::timeout(Duration::from_secs(2), pf.join()).await;
}
