//! The short-lived staging pod: a restricted pod mounting the model's PVC read-write, commands run in
//! it over exec (websocket), and its deletion whatever happens.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{AttachParams, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use kube::Api;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use ws::tungstenite::Message;

use super::progress::CopyProgress;
use super::StageError;
use crate::cluster::health::{self, Progress};
use crate::cluster::wait::{self, until, Stopped, Tick, Until};
use crate::consts;
use crate::report::Reporter;

/// Where the PVC is mounted in the staging pod (the same path serving pods use).
pub const MOUNT: &str = consts::MODEL_MOUNT;

/// The staging pod's name for a model.
pub fn pod_name(model: &str) -> String {
    format!("platform-stage-{model}")
}

/// A restricted pod: non-root, all capabilities dropped, RuntimeDefault seccomp, read-only root
/// filesystem; only the PVC and /tmp are writable; bounded resources; it ends itself after two hours.
pub fn pod_spec(
    name: &str,
    namespace: &str,
    model: &str,
    claim: &str,
    image: &str,
) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                consts::LABEL_MANAGED_BY: consts::MANAGED_BY_VALUE,
                consts::LABEL_MODEL: model,
                "app.kubernetes.io/component": "stage-model",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": 7200,
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": false,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "fsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": "stage",
                "image": image,
                "command": ["sleep", "7200"],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"cpu": "1", "memory": "256Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "weights", "mountPath": MOUNT},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }],
            "volumes": [
                {"name": "weights", "persistentVolumeClaim": {"claimName": claim}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            ],
        },
    })
}

/// Create the pod (replacing a leftover of an interrupted run) and wait until it runs, saying what
/// it waits for; a pod that cannot start within `timeout` says why (PVC pending, image pull,
/// unschedulable). `events` lists the namespace's events (the pod's are read while it waits).
pub async fn start(
    pods: &Api<Pod>,
    events: &Api<Event>,
    spec: &serde_json::Value,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(), StageError> {
    let name = spec["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if pods
        .get_opt(&name)
        .await
        .map_err(|e| StageError::api(format!("reading pod {name}"), e))?
        .is_some()
    {
        delete(pods, &name).await?;
    }
    let pod: Pod =
        serde_json::from_value(spec.clone()).map_err(|e| StageError::Internal(e.to_string()))?;
    pods.create(
        &PostParams {
            field_manager: Some(consts::FIELD_MANAGER.into()),
            ..Default::default()
        },
        &pod,
    )
    .await
    .map_err(|e| StageError::api(format!("creating the staging pod {name}"), e))?;
    let namespace = spec["metadata"]["namespace"].as_str().unwrap_or_default();
    let item = format!("staging pod {namespace}/{name}");
    let waiting = Waiting {
        pods,
        events,
        name: &name,
        item: &item,
        timeout,
        reporter,
    };
    waiting.until_running().await?;
    reporter.finish(&item, "running");
    Ok(())
}

/// The reason of the wait before the pod is seen (never said: only a timeout names it).
const NOT_CREATED: &str = "waiting for the API server to create it";

/// What the wait for the staging pod observes: the pod, and its events.
enum Seen {
    Pod(Box<wait::Seen<Pod>>),
    WatchEnded,
    Events(Vec<serde_json::Value>),
}

/// The staging pod and its events as last seen.
#[derive(Default)]
struct PodState {
    pod: Option<serde_json::Value>,
    events: Vec<serde_json::Value>,
}

impl PodState {
    /// Running is done; a pod that ended, or a watch that ended, failed; otherwise what it waits
    /// for (nothing before the pod is seen).
    fn judge(&mut self, seen: Seen) -> Option<Progress> {
        match seen {
            Seen::Pod(s) => {
                let wait::Seen::Applied(p) = *s else {
                    return None;
                };
                let v = serde_json::to_value(&p).unwrap_or_default();
                match v.pointer("/status/phase").and_then(|x| x.as_str()) {
                    Some("Running") => return Some(Progress::Done),
                    Some(phase @ ("Failed" | "Succeeded")) => {
                        return Some(Progress::Failed(format!("it ended ({phase})")))
                    }
                    _ => self.pod = Some(v),
                }
            }
            Seen::WatchEnded => return Some(Progress::Failed("the watch ended".into())),
            Seen::Events(e) => self.events = e,
        }
        let p = self.pod.as_ref()?;
        Some(Progress::Pending(health::pod_waiting_for(p, &self.events)))
    }
}

/// The wait for the staging pod to run.
struct Waiting<'a> {
    pods: &'a Api<Pod>,
    events: &'a Api<Event>,
    name: &'a str,
    /// How the reporter names the pod.
    item: &'a str,
    timeout: Duration,
    reporter: &'a dyn Reporter,
}

impl Waiting<'_> {
    /// Watch the pod until it runs (Ok), ends or the watch ends (an error), or `timeout` passes
    /// (a timeout naming what it waited for). What it waits for is said when it changes (the
    /// watch, and its events read every [`consts::STAGE_POD_POLL`]) and at least every
    /// [`consts::STAGE_POD_REPEAT`], with the time left. A failing watch resumes after a backoff.
    async fn until_running(&self) -> Result<(), StageError> {
        let cfg = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        // Its end ends the wait (merged with the events poll, which never ends).
        let pod_watch = wait::watch(self.pods.clone(), cfg)
            .map(|s| Seen::Pod(Box::new(s)))
            .chain(futures::stream::once(async { Seen::WatchEnded }));
        let events = futures::stream::unfold(self.poll(), |mut poll| async move {
            poll.tick().await;
            Some((Seen::Events(self.events_of_pod().await), poll))
        });
        let spec = Until::new(self.item, NOT_CREATED, self.timeout).every(consts::STAGE_POD_POLL);
        let mut state = PodState::default();
        let judge = |seen: Seen| state.judge(seen);
        let mut said = Said::new(consts::STAGE_POD_REPEAT.min(wait::heartbeat()));
        let progress = |t: &Tick<'_>| {
            if t.reason != NOT_CREATED && said.due(t.reason, std::time::Instant::now()) {
                let left = humantime::format_duration(whole_seconds(t.left));
                self.reporter
                    .update(self.item, &format!("{} ({left} left)", t.reason));
            }
        };
        let seen = futures::stream::select(pod_watch, events);
        match until(seen, &spec, judge, progress).await {
            Ok(()) => Ok(()),
            Err(Stopped::Failed(why)) => Err(self.not_running(why)),
            Err(Stopped::Ended(_)) => Err(self.not_running("the watch ended".into())),
            Err(Stopped::Timeout(why)) => Err(StageError::PodStartTimeout {
                pod: self.name.to_string(),
                timeout: self.timeout,
                why,
            }),
        }
    }

    /// The events poll: at once, then every [`consts::STAGE_POD_POLL`].
    fn poll(&self) -> tokio::time::Interval {
        let mut poll = tokio::time::interval(consts::STAGE_POD_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll
    }

    fn not_running(&self, why: String) -> StageError {
        StageError::PodNotRunning {
            pod: self.name.to_string(),
            why,
        }
    }

    /// The pod's events, as JSON; none when they cannot be read (they only add detail).
    async fn events_of_pod(&self) -> Vec<serde_json::Value> {
        let lp = ListParams::default().fields(&format!(
            "involvedObject.kind=Pod,involvedObject.name={}",
            self.name
        ));
        match self.events.list(&lp).await {
            Ok(list) => list
                .items
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// When to say a state again: as soon as it changes, else once it has gone unsaid for `repeat`.
struct Said {
    repeat: Duration,
    last: Option<(String, std::time::Instant)>,
}

impl Said {
    fn new(repeat: Duration) -> Said {
        Said { repeat, last: None }
    }

    /// Whether `what` is to be said at `now` (then it counts as said).
    fn due(&mut self, what: &str, now: std::time::Instant) -> bool {
        let due = match &self.last {
            Some((said, at)) => said != what || now.duration_since(*at) >= self.repeat,
            None => true,
        };
        if due {
            self.last = Some((what.to_string(), now));
        }
        due
    }
}

/// Delete the pod and wait (briefly) until it is gone; a missing pod is fine.
pub async fn delete(pods: &Api<Pod>, name: &str) -> Result<(), StageError> {
    match pods
        .delete(
            name,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => {
            return Err(StageError::api(
                format!("deleting the staging pod {name}"),
                e,
            ))
        }
    }
    for _ in 0..200 {
        match pods.get_opt(name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return Err(StageError::api(format!("reading pod {name}"), e)),
        }
    }
    Ok(())
}

/// What a command printed and whether it succeeded.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
    pub message: String,
}

/// Largest websocket frame sent for stdin (kube-rs's own exec sends 4 KiB frames, which caps a copy
/// at a fraction of the network's speed).
const STDIN_FRAME: usize = 1 << 20;
/// Frames queued between the writer and the websocket.
const STDIN_QUEUE: usize = 2;

fn closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the exec stream to the staging pod closed",
    )
}

/// A command's stdin, sent as websocket frames (channel byte 0, then up to [`STDIN_FRAME`] bytes)
/// that are filled in place: file data is read straight into the frame that goes on the wire.
/// End it with [`Stdin::close`]; dropping it without closing abandons what is not sent yet.
pub struct Stdin {
    tx: mpsc::Sender<Vec<u8>>,
    frame: Vec<u8>,
}

impl Stdin {
    /// A writer and the frames it produces (each starts with the stdin channel byte).
    pub fn channel() -> (Stdin, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(STDIN_QUEUE);
        (
            Stdin {
                tx,
                frame: Self::empty(),
            },
            rx,
        )
    }

    fn empty() -> Vec<u8> {
        let mut v = Vec::with_capacity(STDIN_FRAME + 1);
        v.push(0);
        v
    }

    async fn send_full(&mut self) -> std::io::Result<()> {
        if self.frame.len() > STDIN_FRAME {
            let f = std::mem::replace(&mut self.frame, Self::empty());
            self.tx.send(f).await.map_err(|_| closed())?;
        }
        Ok(())
    }

    /// Queue `data`.
    pub async fn write_all(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let n = (STDIN_FRAME + 1 - self.frame.len()).min(data.len());
            self.frame.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.send_full().await?;
        }
        Ok(())
    }

    /// Copy up to `len` bytes of `file` from its current position, read on a blocking thread
    /// straight into the frames, feeding `hasher` when given and telling `progress`; returns the bytes
    /// copied (fewer than `len` when the file is shorter) and the hasher.
    pub async fn copy_file(
        &mut self,
        file: std::fs::File,
        len: u64,
        hasher: Option<Sha256>,
        progress: &Arc<CopyProgress>,
    ) -> std::io::Result<(u64, Option<Sha256>)> {
        use std::io::Read;
        let tx = self.tx.clone();
        let progress = Arc::clone(progress);
        let frame = std::mem::replace(&mut self.frame, Self::empty());
        let (frame, copied, hasher) = tokio::task::spawn_blocking(move || {
            let (mut file, mut frame, mut hasher, mut left) = (file, frame, hasher, len);
            while left > 0 {
                let before = frame.len();
                let want = ((STDIN_FRAME + 1 - before) as u64).min(left);
                let n = (&mut file).take(want).read_to_end(&mut frame)?;
                if n == 0 {
                    break;
                }
                if let Some(h) = hasher.as_mut() {
                    h.update(&frame[before..]);
                }
                left -= n as u64;
                progress.sent(n as u64);
                if frame.len() > STDIN_FRAME {
                    let full = std::mem::replace(&mut frame, Self::empty());
                    tx.blocking_send(full).map_err(|_| closed())?;
                }
            }
            Ok::<_, std::io::Error>((frame, len - left, hasher))
        })
        .await
        .map_err(std::io::Error::other)??;
        self.frame = frame;
        Ok((copied, hasher))
    }

    /// Send what is queued; the command sees the end of its stdin once this returns.
    pub async fn close(mut self) -> std::io::Result<()> {
        if self.frame.len() > 1 {
            let f = std::mem::take(&mut self.frame);
            self.tx.send(f).await.map_err(|_| closed())?;
        }
        Ok(())
    }
}

/// Run a command in the pod over the exec websocket (`v5.channel.k8s.io`, falling back to v4 when no
/// stdin is sent); `feed` writes its stdin (closing it with [`Stdin::close`]) while the output is
/// read.
pub async fn exec<F, Fut>(
    pods: &Api<Pod>,
    pod: &str,
    command: &[&str],
    feed: Option<F>,
) -> Result<(ExecOutput, Option<Fut::Output>), StageError>
where
    F: FnOnce(Stdin) -> Fut,
    Fut: std::future::Future,
{
    use futures::SinkExt;
    let has_stdin = feed.is_some();
    let conn = connect_exec(pods, pod, command, has_stdin).await?;
    let (sink, stream) = conn.into_stream().split();

    // stdin: the feeder fills frames; the pump puts them on the wire as they are, then closes stdin.
    let (stdin, frames) = Stdin::channel();
    let feeding = feed.map(|f| f(stdin));
    // The output side says when the command (or the connection) ended: stdin stops there.
    let (ended_tx, ended) = tokio::sync::oneshot::channel::<()>();
    let pump = pump_stdin(sink, frames, ended, has_stdin);
    let read = read_output(stream, ended_tx);
    let fed = async {
        match feeding {
            Some(f) => Some(f.await),
            None => None,
        }
    };
    let (pumped, (out, err, status), fed) = tokio::join!(pump, read, fed);
    if let Ok(mut sink) = pumped {
        let _ = sink.close().await;
    }
    Ok((exec_output(&out, &err, status.as_ref()), fed))
}

/// Open the exec websocket for `command` in `pod`, with stdin when `with_stdin`; stdin needs
/// `v5.channel.k8s.io` (its end cannot be signalled otherwise), so an older API server is an error
/// naming the version needed.
async fn connect_exec(
    pods: &Api<Pod>,
    pod: &str,
    command: &[&str],
    with_stdin: bool,
) -> Result<kube::client::Connection, StageError> {
    let shown = command.join(" ");
    let params = AttachParams::default()
        .stdin(with_stdin)
        .stdout(true)
        .stderr(true);
    let req = kube::core::Request::new(pods.resource_url())
        .exec(pod, command.iter().map(|s| s.to_string()), &params)
        .map_err(|e| StageError::Internal(format!("exec request: {e}")))?;
    let conn = pods
        .clone()
        .into_client()
        .connect(req)
        .await
        .map_err(|e| StageError::api(format!("exec `{shown}` in {pod}"), e))?;
    if with_stdin && !conn.supports_stream_close() {
        return Err(StageError::Command {
            command: shown,
            output: "the API server does not speak v5.channel.k8s.io, so stdin cannot be closed (Kubernetes >= 1.30 needed)".into(),
        });
    }
    Ok(conn)
}

/// Put the stdin frames on the wire as they come, then close the stdin channel (v5); stops with an
/// error when the command ends first (`ended`). Owns `frames`: however it ends, the feeder's next
/// send fails instead of waiting forever. Returns the sink so the caller closes the connection.
async fn pump_stdin<S>(
    mut sink: S,
    mut frames: mpsc::Receiver<Vec<u8>>,
    mut ended: tokio::sync::oneshot::Receiver<()>,
    has_stdin: bool,
) -> Result<S, String>
where
    S: futures::Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    use futures::SinkExt;
    if !has_stdin {
        return Ok(sink);
    }
    loop {
        tokio::select! {
            biased;
            frame = frames.recv() => match frame {
                Some(frame) => sink
                    .send(Message::binary(frame))
                    .await
                    .map_err(|e| e.to_string())?,
                None => break,
            },
            _ = &mut ended => return Err("the command ended before its stdin did".into()),
        }
    }
    // v5: close the stdin channel.
    sink.send(Message::binary(vec![255u8, 0]))
        .await
        .map_err(|e| e.to_string())?;
    Ok(sink)
}

/// Read the command's stdout (channel 1), stderr (2) and exit status (3) until the connection
/// closes, then tell the stdin pump through `ended_tx`.
async fn read_output<R, E>(
    mut stream: R,
    ended_tx: tokio::sync::oneshot::Sender<()>,
) -> (Vec<u8>, Vec<u8>, Option<serde_json::Value>)
where
    R: futures::Stream<Item = Result<Message, E>> + Unpin,
{
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), None::<serde_json::Value>);
    while let Some(msg) = stream.next().await {
        let data = match msg {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(_) => break,
        };
        match data.first() {
            Some(1) => out.extend_from_slice(&data[1..]),
            Some(2) => err.extend_from_slice(&data[1..]),
            Some(3) => status = serde_json::from_slice(&data[1..]).ok(),
            _ => {}
        }
    }
    let _ = ended_tx.send(());
    (out, err, status)
}

/// What the command printed and whether it succeeded: the status object says `Success`, or its
/// message says why not; no status at all means the connection closed before the command ended.
fn exec_output(out: &[u8], err: &[u8], status: Option<&serde_json::Value>) -> ExecOutput {
    let success = status
        .and_then(|s| s.get("status"))
        .and_then(|s| s.as_str())
        == Some("Success");
    let message = match status {
        Some(s) => s
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string(),
        None => "the connection to the pod closed before the command reported its exit status"
            .to_string(),
    };
    ExecOutput {
        stdout: String::from_utf8_lossy(out).into_owned(),
        stderr: String::from_utf8_lossy(err).into_owned(),
        success,
        message,
    }
}

/// Run a command without stdin; an error when it fails.
pub async fn run(pods: &Api<Pod>, pod: &str, command: &[&str]) -> Result<ExecOutput, StageError> {
    let (out, _) = exec::<fn(Stdin) -> std::future::Ready<()>, _>(pods, pod, command, None).await?;
    if !out.success {
        return Err(StageError::Command {
            command: command.join(" "),
            output: format!(
                "{}{}{}",
                out.stderr.trim(),
                if out.message.is_empty() { "" } else { " " },
                out.message
            ),
        });
    }
    Ok(out)
}

/// Write `bytes` to a file in the pod (through `sh -c 'cat > PATH'`).
pub async fn write_file(
    pods: &Api<Pod>,
    pod: &str,
    path: &str,
    bytes: Vec<u8>,
) -> Result<(), StageError> {
    let script = format!("cat > {path}");
    let (out, fed) = exec(
        pods,
        pod,
        &["sh", "-c", &script],
        Some(|mut w: Stdin| async move {
            w.write_all(&bytes).await?;
            w.close().await
        }),
    )
    .await?;
    // The command's own words (disk full, read-only) before the broken pipe they caused.
    if !out.success {
        return Err(StageError::Command {
            command: script,
            output: format!("{} {}", out.stderr.trim(), out.message),
        });
    }
    if let Some(Err(e)) = fed {
        return Err(StageError::stream(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str) -> Seen {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "platform-stage-m"},
            "status": {"phase": phase},
        }))
        .unwrap();
        Seen::Pod(Box::new(wait::Seen::Applied(p)))
    }

    #[test]
    fn the_staging_pod_is_judged_by_its_phase_and_its_watch() {
        let mut s = PodState::default();
        assert_eq!(
            s.judge(Seen::Events(Vec::new())),
            None,
            "nothing before the pod"
        );
        assert!(matches!(
            s.judge(pod("Pending")),
            Some(Progress::Pending(_))
        ));
        let interrupted = Seen::Pod(Box::new(wait::Seen::Interrupted("x".into())));
        assert_eq!(s.judge(interrupted), None);
        assert_eq!(s.judge(pod("Running")), Some(Progress::Done));
        assert_eq!(
            s.judge(pod("Failed")),
            Some(Progress::Failed("it ended (Failed)".into()))
        );
        assert_eq!(
            s.judge(Seen::WatchEnded),
            Some(Progress::Failed("the watch ended".into()))
        );
    }

    #[test]
    fn a_wait_says_a_change_at_once_and_the_same_state_every_repeat() {
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut said = Said::new(Duration::from_secs(30));
        assert!(said.due("not scheduled", at(0)), "the first state");
        assert!(!said.due("not scheduled", at(5)));
        assert!(!said.due("not scheduled", at(29)));
        assert!(said.due("not scheduled", at(30)), "unchanged for 30 s");
        assert!(said.due("on node n1", at(31)), "a change");
        assert!(!said.due("on node n1", at(36)));
    }
}
