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

pub struct PortForward {
    local: SocketAddr,
    accept: Option<JoinHandle<()>>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl PortForward {
    /// Start listening on 127.0.0.1:0 and forward each connection to `pod`'s `port`.
    pub async fn start(
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<PortForward, SmokeError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| SmokeError::Listen { source: e })?;
        let local = listener
            .local_addr()
            .map_err(|e| SmokeError::Listen { source: e })?;
        let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
        let last_error = Arc::new(Mutex::new(None));
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

    /// The last error the API server or the kubelet reported on a stream, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A handle reading [`PortForward::last_error`] that outlives a borrow of the forward.
    pub fn last_error_handle(&self) -> ErrorSlot {
        ErrorSlot(self.last_error.clone())
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

/// Shared view of the last port-forward error.
#[derive(Clone)]
pub struct ErrorSlot(Arc<Mutex<Option<String>>>);

impl ErrorSlot {
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn record(slot: &Mutex<Option<String>>, msg: String) {
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg);
}

/// Accepts until aborted; the connection tasks live in a JoinSet, so aborting this task (dropping
/// the set) ends them all.
async fn accept_loop(
    listener: TcpListener,
    pods: kube::Api<Pod>,
    pod: String,
    port: u16,
    last_error: Arc<Mutex<Option<String>>>,
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
                    record(&last_error, format!("accepting a local connection: {e}"));
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
    last_error: Arc<Mutex<Option<String>>>,
) {
    let mut pf = match pods.portforward(&pod, &[port]).await {
        Ok(pf) => pf,
        Err(e) => {
            record(
                &last_error,
                format!("opening a port-forward to pod {pod} port {port}: {e}"),
            );
            return;
        }
    };
    let (Some(mut upstream), Some(error)) = (pf.take_stream(port), pf.take_error(port)) else {
        record(
            &last_error,
            format!("the port-forward to pod {pod} has no stream for port {port}"),
        );
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream) => {}
        Some(msg) = error => {
            record(&last_error, msg);
        }
    }
    drop(upstream);
    drop(tcp);
    // The stream is done: let the websocket close (bounded: a server that never answers the close
    // must not hold the task).
    let _ = tokio::time::timeout(Duration::from_secs(2), pf.join()).await;
}
