//! A model's serving pod on any layer, through the API (no kubectl): `platform logs` streams its
//! container's log, `platform port-forward` forwards a local port to it. The pod is found the way
//! `smoke` and `status` find it, through the serving seam (raw vLLM: the model's Service's pods;
//! KServe: `<isvc>-predictor`; llm-d: `<name>-kserve`), and when there is none the error says why
//! (paused, not synced, Pending with the reason `status` gives).

use std::time::Duration;

use futures::AsyncReadExt;
use kube::api::{ListParams, LogParams};
use serde::Serialize;
use serde_json::Value;

use crate::actions::smoke::endpoint;
use crate::actions::smoke::forward::PortForward;
use crate::actions::smoke::SmokeError;
use crate::actions::status;
use crate::cluster::{health, kinds, Client, ClusterError};
use crate::error::{Classify, ErrorClass};
use crate::plan::PlannedModel;
use crate::serving;

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error(
        "model {model} is not in the cluster yet ({object} not found): sync it first \
         (`platform up --sync-models`, or sync the Argo CD app {app})"
    )]
    NotDeployed {
        model: String,
        object: String,
        app: String,
    },
    #[error(
        "model {model} is paused: no pod serves it; `platform resume {model} --wait` starts it"
    )]
    Paused { model: String },
    #[error("pod {namespace}/{pod} of model {model} has not started: {reason}")]
    Pending {
        model: String,
        namespace: String,
        pod: String,
        reason: String,
    },
    #[error("no pod serves model {model} ({workload}){}", reasons_suffix(.reasons))]
    NoPod {
        model: String,
        workload: String,
        reasons: Vec<String>,
    },
    #[error("pod {pod} has no container `{container}`; its containers: {}", .available.join(", "))]
    NoContainer {
        pod: String,
        container: String,
        available: Vec<String>,
    },
    #[error("reading the state of model {model}")]
    Status {
        model: String,
        #[source]
        source: ClusterError,
    },
    #[error("{what}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the log")]
    Write(#[source] std::io::Error),
    #[error("port-forward to pod {pod}")]
    Forward {
        pod: String,
        #[source]
        source: SmokeError,
    },
    #[error("cannot listen on 127.0.0.1:{port}: {source}; pick another local port (or none: any free one)")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

fn reasons_suffix(r: &[String]) -> String {
    if r.is_empty() {
        String::new()
    } else {
        format!(": {}", r.join("; "))
    }
}

impl Classify for PodError {
    fn class(&self) -> ErrorClass {
        match self {
            PodError::Status { source, .. } => source.class(),
            PodError::Api { .. } => ErrorClass::Remote,
            PodError::Forward { source, .. } => source.class(),
            PodError::Write(_) => ErrorClass::Input,
            PodError::Listen { .. } => ErrorClass::Input,
            PodError::NotDeployed { .. }
            | PodError::Paused { .. }
            | PodError::Pending { .. }
            | PodError::NoPod { .. }
            | PodError::NoContainer { .. } => ErrorClass::CheckFailed,
        }
    }
}

/// The pod chosen, and how many the workload has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub model: String,
    pub namespace: String,
    pub name: String,
    /// The serving container (the layer's, else the pod's first).
    pub container: String,
    /// Every container of the pod.
    pub containers: Vec<String>,
    /// The port the model serves on (what a port-forward reaches).
    pub port: u16,
    pub ready: bool,
    /// Pods behind the workload (the one chosen is the first ready one by name).
    pub pods: usize,
}

fn s<'v>(v: &'v Value, p: &str) -> &'v str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// Whether a container of the pod has started (running, or ended: it has a log).
fn started(pod: &Value) -> bool {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.pointer("/state/running").is_some()
                    || c.pointer("/state/terminated").is_some()
                    || c.pointer("/lastState/terminated").is_some()
            })
        })
        || matches!(s(pod, "/status/phase"), "Running" | "Succeeded" | "Failed")
}

/// The model's serving pod: the first ready one by name, else (`any_started`: for logs) the first
/// whose container has started; else why there is none.
pub async fn find(client: &Client, m: &PlannedModel, any_started: bool) -> Result<Pod, PodError> {
    let st = status::model(client, m)
        .await
        .map_err(|e| PodError::Status {
            model: m.name.clone(),
            source: e,
        })?;
    let w = m.layer().workload(&m.name);
    let shown = format!("{} {}/{}", w.kind.kind, m.namespace, w.name);
    if st.state == "not-deployed" {
        let kind = m.layer().serving_kind();
        return Err(PodError::NotDeployed {
            model: m.name.clone(),
            object: format!("{} {}/{}", kind.kind, m.namespace, m.name),
            app: m.app.clone(),
        });
    }
    // Paused: whatever pod is still terminating does not serve it.
    if st.paused {
        return Err(PodError::Paused {
            model: m.name.clone(),
        });
    }
    let api = w.kind.api(client, &m.namespace);
    let obj = client
        .retry(|| api.get_opt(&w.name))
        .await
        .map_err(|e| PodError::Api {
            what: format!("reading {shown}"),
            source: e,
        })?;
    let no_pod = |reasons: Vec<String>| PodError::NoPod {
        model: m.name.clone(),
        workload: shown.clone(),
        reasons,
    };
    let Some(obj) = obj else {
        return Err(no_pod(
            std::iter::once(format!("{shown} does not exist"))
                .chain(st.reasons.iter().cloned())
                .collect(),
        ));
    };
    let workload = kinds::json(&obj);
    let Some(sel) = endpoint::selector(&workload) else {
        return Err(no_pod(vec![format!("{shown} has no pod selector")]));
    };
    let pods_api = kinds::POD.api(client, &m.namespace);
    let lp = ListParams::default().labels(&sel);
    let list = client
        .retry(|| pods_api.list(&lp))
        .await
        .map_err(|e| PodError::Api {
            what: format!("listing the pods of {shown} ({sel})"),
            source: e,
        })?;
    let mut pods: Vec<Value> = list.items.iter().map(kinds::json).collect();
    pods.sort_by(|a, b| s(a, "/metadata/name").cmp(s(b, "/metadata/name")));
    let chosen = pods.iter().find(|p| endpoint::pod_ready(p)).or_else(|| {
        any_started
            .then(|| pods.iter().find(|p| started(p)))
            .flatten()
    });
    let Some(p) = chosen else {
        // Pending (or starting): the reason status gives.
        if let Some(p) = pods.first() {
            let reason = health::pod_problem(p)
                .or_else(|| st.reasons.first().cloned())
                .unwrap_or_else(|| {
                    format!(
                        "phase {}",
                        match s(p, "/status/phase") {
                            "" => "Pending",
                            ph => ph,
                        }
                    )
                });
            return Err(PodError::Pending {
                model: m.name.clone(),
                namespace: m.namespace.clone(),
                pod: s(p, "/metadata/name").to_string(),
                reason,
            });
        }
        let mut reasons = st.reasons.clone();
        reasons.push(format!("no pods match {sel}"));
        return Err(no_pod(reasons));
    };
    let containers: Vec<String> = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().map(|c| s(c, "/name").to_string()).collect())
        .unwrap_or_default();
    let container = if containers.iter().any(|c| c == w.container) {
        w.container.to_string()
    } else {
        containers.first().cloned().unwrap_or_default()
    };
    let service = (w.kind.kind == kinds::SERVICE.kind).then_some(&workload);
    Ok(Pod {
        model: m.name.clone(),
        namespace: m.namespace.clone(),
        name: s(p, "/metadata/name").to_string(),
        port: endpoint::pod_port(
            p,
            w.container,
            service,
            serving::runtime::of(&m.model).port(),
        ),
        ready: endpoint::pod_ready(p),
        container,
        containers,
        pods: pods.len(),
    })
}

/// What `platform logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    /// None: the serving container.
    pub container: Option<String>,
    pub tail: Option<i64>,
    pub since: Option<Duration>,
}

/// The largest piece of log read at once (reads are bounded whatever the line lengths).
const LOG_CHUNK: usize = 64 * 1024;

/// Stream the pod's log into `sink`, in bounded chunks, until it ends (without `follow`: at once;
/// with it: when the container stops or the API server closes the stream).
pub async fn logs(
    client: &Client,
    pod: &Pod,
    opts: &LogOptions,
    sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
) -> Result<(), PodError> {
    let container = match &opts.container {
        Some(c) if !pod.containers.contains(c) => {
            return Err(PodError::NoContainer {
                pod: format!("{}/{}", pod.namespace, pod.name),
                container: c.clone(),
                available: pod.containers.clone(),
            })
        }
        Some(c) => c.clone(),
        None => pod.container.clone(),
    };
    let lp = LogParams {
        container: Some(container.clone()),
        follow: opts.follow,
        previous: opts.previous,
        tail_lines: opts.tail,
        since_seconds: opts.since.map(|d| d.as_secs().max(1) as i64),
        ..Default::default()
    };
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client.kube(), &pod.namespace);
    let what = format!(
        "reading the {}log of container {container} of pod {}/{}",
        if opts.previous { "previous " } else { "" },
        pod.namespace,
        pod.name
    );
    // Opening the stream is retried like any request; a stream that breaks is not re-read (the
    // lines would repeat).
    let stream = client
        .retry(|| api.log_stream(&pod.name, &lp))
        .await
        .map_err(|e| PodError::Api {
            what: what.clone(),
            source: e,
        })?;
    // Without -f the log is read to its end: each read gets the request timeout, so a stream the
    // server stops sending on ends with an error instead of hanging (with -f, waiting is the point).
    let limit = (!opts.follow).then(|| client.request_timeout());
    copy_log(stream, limit, &what, sink).await
}

/// Copy `stream` into `sink` until it ends; with `limit`, a read that brings nothing for that long
/// ends it with an error.
async fn copy_log(
    stream: impl futures::AsyncRead,
    limit: Option<Duration>,
    what: &str,
    sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
) -> Result<(), PodError> {
    let mut stream = std::pin::pin!(stream);
    let mut buf = vec![0u8; LOG_CHUNK];
    loop {
        let read = stream.read(&mut buf);
        let n = match limit {
            Some(limit) => match tokio::time::timeout(limit, read).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no data for {} (--request-timeout)",
                        humantime::format_duration(limit)
                    ),
                )),
            },
            None => read.await,
        }
        .map_err(|e| PodError::Api {
            what: what.to_string(),
            source: kube::Error::ReadEvents(e),
        })?;
        if n == 0 {
            return Ok(());
        }
        sink(&buf[..n]).map_err(PodError::Write)?;
    }
}

/// An open port-forward to the pod.
pub struct Forward {
    pub forward: PortForward,
    pub url: String,
}

/// Listen on 127.0.0.1:`local_port` (0: any free port) and forward each connection to the pod's
/// serving port.
pub async fn forward(client: &Client, pod: &Pod, local_port: u16) -> Result<Forward, PodError> {
    let pf = PortForward::start_on(client, &pod.namespace, &pod.name, pod.port, local_port)
        .await
        .map_err(|e| match e {
            SmokeError::Listen { source } => PodError::Listen {
                port: local_port,
                source,
            },
            e => PodError::Forward {
                pod: format!("{}/{}", pod.namespace, pod.name),
                source: e,
            },
        })?;
    let url = format!("http://{}/v1", pf.local_addr());
    Ok(Forward { forward: pf, url })
}

/// Whether the pod still runs (a port-forward ends with it): None while it does, else why not.
pub async fn gone(client: &Client, pod: &Pod) -> Result<Option<String>, PodError> {
    let api = kinds::POD.api(client, &pod.namespace);
    let got = client
        .retry(|| api.get_opt(&pod.name))
        .await
        .map_err(|e| PodError::Api {
            what: format!("reading pod {}/{}", pod.namespace, pod.name),
            source: e,
        })?;
    Ok(match got.map(|p| kinds::json(&p)) {
        None => Some(format!("pod {}/{} is gone", pod.namespace, pod.name)),
        Some(p) if p.pointer("/metadata/deletionTimestamp").is_some() => {
            Some(format!("pod {}/{} is terminating", pod.namespace, pod.name))
        }
        Some(p) if s(&p, "/status/phase") != "Running" => Some(format!(
            "pod {}/{} is {}",
            pod.namespace,
            pod.name,
            s(&p, "/status/phase")
        )),
        Some(_) => None,
    })
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use futures::{StreamExt, TryStreamExt};

    #[tokio::test]
    async fn a_log_read_without_follow_times_out_when_the_server_stalls() {
        // A stream that sends a line, then nothing (and never ends).
        let stalled = futures::stream::iter(vec![Ok::<_, std::io::Error>(b"line 1\n".to_vec())])
            .chain(futures::stream::pending())
            .into_async_read();
        let mut got = Vec::new();
        let mut sink = |b: &[u8]| {
            got.extend_from_slice(b);
            Ok(())
        };
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            copy_log(
                stalled,
                Some(Duration::from_millis(200)),
                "reading the log",
                &mut sink,
            ),
        )
        .await
        .expect("the read has no deadline");
        let e = r.expect_err("a stalled read must fail");
        assert!(format!("{:?}", e).contains("no data for 200ms"), "{e:?}");
        assert_eq!(got, b"line 1\n");
    }
}
