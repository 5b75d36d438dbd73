//! Tests of the test Kubernetes API server (testkit/src/apiserver): HTTP semantics, the
//! scripted controllers, and faithfulness checks with the real kubectl.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

use platform_testkit::apiserver;

use std::time::Duration;

use apiserver::{Options, TestApiServer};
use serde_json::{json, Value};

/// Every test runs under this bound.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let code = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (code, v)
}

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out");
}

#[tokio::test]
async fn crud_and_not_found_status() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let base = format!("{}/api/v1/namespaces/default/configmaps", s.url());
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}});
        let (code, created) = send(c.post(&base).json(&cm)).await;
        assert_eq!(code, 201, "{created}");
        assert!(!created["metadata"]["uid"].as_str().unwrap_or("").is_empty());
        let (code, dup) = send(c.post(&base).json(&cm)).await;
        assert_eq!(code, 409);
        assert_eq!(dup["reason"], "AlreadyExists");
        let (code, missing) = send(c.get(format!("{base}/nope"))).await;
        assert_eq!(code, 404);
        assert_eq!(missing["kind"], "Status");
        assert_eq!(missing["reason"], "NotFound");
        assert_eq!(missing["details"]["name"], "nope");
        s.shutdown().await;
    })
    .await;
}

fn ns_url(s: &TestApiServer, group_version: &str, ns: &str, plural: &str) -> String {
    let prefix = if group_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{group_version}")
    };
    format!("{}{prefix}/namespaces/{ns}/{plural}", s.url())
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "nginx",
                                                  "env": [{"name": "A", "value": "1"}]}]}}
        }
    })
}

async fn wait_until(
    s: &TestApiServer,
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
    pred: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    match s
        .wait_for(api_version, kind, ns, name, Duration::from_secs(10), pred)
        .await
    {
        Ok(v) => v,
        Err(last) => panic!("{kind} {ns}/{name} never reached the expected state; last: {last:?}"),
    }
}

fn condition(obj: Option<&Value>, ctype: &str) -> String {
    obj.and_then(|o| o.pointer("/status/conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == ctype))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn update_with_stale_resource_version_conflicts() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let base = ns_url(&s, "v1", "default", "configmaps");
        let (_, created) = send(
            c.post(&base)
                .json(&json!({"metadata": {"name": "a"}, "data": {"k": "1"}})),
        )
        .await;
        let rv1: u64 = created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let mut next = created.clone();
        next["data"]["k"] = json!("2");
        let (code, updated) = send(c.put(format!("{base}/a")).json(&next)).await;
        assert_eq!(code, 200, "{updated}");
        let rv2: u64 = updated["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rv2 > rv1, "resourceVersion increases");
        // `next` still carries rv1: stale.
        let (code, err) = send(c.put(format!("{base}/a")).json(&next)).await;
        assert_eq!(code, 409);
        assert_eq!(err["reason"], "Conflict");
        assert!(err["message"]
            .as_str()
            .unwrap()
            .contains("the object has been modified"));
        // generation bumps on spec change only (deployments).
        let dbase = ns_url(&s, "apps/v1", "default", "deployments");
        let (_, d) = send(c.post(&dbase).json(&deployment("web", 1))).await;
        assert_eq!(d["metadata"]["generation"], 1);
        let (_, d) = send(
            c.patch(format!("{dbase}/web"))
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"metadata":{"labels":{"x":"y"}}}"#),
        )
        .await;
        assert_eq!(d["metadata"]["generation"], 1);
        let (_, d) = send(
            c.patch(format!("{dbase}/web"))
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"spec":{"replicas":2}}"#),
        )
        .await;
        assert_eq!(d["metadata"]["generation"], 2);
        // an invalid name is 422 Invalid
        let (code, err) = send(
            c.post(&base)
                .json(&json!({"metadata": {"name": "Bad_Name"}})),
        )
        .await;
        assert_eq!(code, 422);
        assert_eq!(err["reason"], "Invalid");
        // a missing namespace is 404
        let (code, _) = send(
            c.post(ns_url(&s, "v1", "nope", "configmaps"))
                .json(&json!({"metadata": {"name": "a"}})),
        )
        .await;
        assert_eq!(code, 404);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn label_and_field_selectors() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let base = ns_url(&s, "v1", "default", "configmaps");
        for (name, tier, env) in [
            ("a", "web", "prod"),
            ("b", "web", "dev"),
            ("c", "db", "prod"),
            ("d", "cache", ""),
        ] {
            let mut labels = json!({"tier": tier});
            if !env.is_empty() {
                labels["env"] = json!(env);
            }
            send(
                c.post(&base)
                    .json(&json!({"metadata": {"name": name, "labels": labels}})),
            )
            .await;
        }
        let names = |v: &Value| -> Vec<String> {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let list = |sel: &str| c.get(&base).query(&[("labelSelector", sel)]);
        let (_, v) = send(list("tier=web,env!=dev")).await;
        assert_eq!(names(&v), ["a"]);
        let (_, v) = send(list("tier in (web,db)")).await;
        assert_eq!(names(&v), ["a", "b", "c"]);
        let (_, v) = send(list("tier notin (web),env")).await;
        assert_eq!(names(&v), ["c"]);
        let (_, v) = send(list("!env")).await;
        assert_eq!(names(&v), ["d"]);
        let (_, v) = send(c.get(&base).query(&[("fieldSelector", "metadata.name=b")])).await;
        assert_eq!(names(&v), ["b"]);
        assert_eq!(v["kind"], "ConfigMapList");
        // pagination
        let (_, page) = send(c.get(&base).query(&[("limit", "3")])).await;
        assert_eq!(names(&page).len(), 3);
        let token = page["metadata"]["continue"].as_str().unwrap().to_string();
        let (_, rest) = send(
            c.get(&base)
                .query(&[("limit", "3"), ("continue", token.as_str())]),
        )
        .await;
        // the namespace also holds nothing else: 4 configmaps in all
        assert_eq!(names(&rest).len(), 1);
        // all namespaces
        let (_, all) = send(
            c.get(format!("{}/api/v1/configmaps", s.url()))
                .query(&[("labelSelector", "tier")]),
        )
        .await;
        assert_eq!(names(&all).len(), 4);
        let (code, _) = send(list("tier in (web")).await;
        assert_eq!(code, 400);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let dbase = ns_url(&s, "apps/v1", "default", "deployments");
        send(c.post(&dbase).json(&deployment("web", 1))).await;
        let url = format!("{dbase}/web");
        let (code, d) = send(
            c.patch(&url)
                .header("Content-Type", "application/strategic-merge-patch+json")
                .body(r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","env":[{"name":"B","value":"2"}]},{"name":"side","image":"envoy"}]}}}}"#),
        )
        .await;
        assert_eq!(code, 200, "{d}");
        let containers = d["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2, "merged by name: {containers:?}");
        assert_eq!(containers[0]["image"], "nginx");
        assert_eq!(containers[0]["env"].as_array().unwrap().len(), 2);
        let (code, d) = send(
            c.patch(&url)
                .header("Content-Type", "application/json-patch+json")
                .body(r#"[{"op":"replace","path":"/spec/replicas","value":4},{"op":"add","path":"/metadata/annotations","value":{"a":"b"}}]"#),
        )
        .await;
        assert_eq!(code, 200, "{d}");
        assert_eq!(d["spec"]["replicas"], 4);
        assert_eq!(d["metadata"]["annotations"]["a"], "b");
        let (code, d) = send(
            c.patch(&url)
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"metadata":{"annotations":{"a":null,"c":"d"}}}"#),
        )
        .await;
        assert_eq!(code, 200);
        assert_eq!(d["metadata"]["annotations"], json!({"c": "d"}));
        let (code, err) = send(
            c.patch(&url)
                .header("Content-Type", "application/json-patch+json")
                .body(r#"[{"op":"test","path":"/spec/replicas","value":9}]"#),
        )
        .await;
        assert_eq!(code, 422, "{err}");
        let (code, _) = send(c.patch(&url).header("Content-Type", "text/plain").body("x")).await;
        assert_eq!(code, 415);
        let (code, _) = send(
            c.patch(format!("{dbase}/nope"))
                .header("Content-Type", "application/merge-patch+json")
                .body("{}"),
        )
        .await;
        assert_eq!(code, 404);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn server_side_apply_conflict_and_force() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let url = format!("{}/web", ns_url(&s, "apps/v1", "default", "deployments"));
        let apply = |body: String, manager: &str, force: bool| {
            c.patch(&url)
                .query(&[("fieldManager", manager), ("force", if force { "true" } else { "false" })])
                .header("Content-Type", "application/apply-patch+yaml")
                .body(body)
        };
        // YAML body; creates the object.
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\n  labels: {app: web, managed: platform}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: c, image: nginx}]\n";
        let (code, d) = send(apply(yaml.to_string(), "platform", false)).await;
        assert_eq!(code, 201, "{d}");
        let mf = d["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf[0]["manager"], "platform");
        assert_eq!(mf[0]["operation"], "Apply");
        assert!(mf[0]["fieldsV1"]["f:spec"]["f:replicas"].is_object());
        // Another manager changes replicas through the scale subresource.
        let (code, _) = send(
            c.patch(format!("{url}/scale"))
                .query(&[("fieldManager", "hpa")])
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"spec":{"replicas":5}}"#),
        )
        .await;
        assert_eq!(code, 200);
        // Re-applying replicas: 2 conflicts with "hpa".
        let (code, err) = send(apply(yaml.to_string(), "platform", false)).await;
        assert_eq!(code, 409, "{err}");
        assert_eq!(err["reason"], "Conflict");
        assert!(err["message"].as_str().unwrap().contains("conflict with \"hpa\""), "{err}");
        assert_eq!(err["details"]["causes"][0]["field"], ".spec.replicas");
        // Applying the same value co-owns without conflict.
        let same = yaml.replace("replicas: 2", "replicas: 5");
        let (code, _) = send(apply(same, "platform", false)).await;
        assert_eq!(code, 200);
        // force takes ownership.
        let (code, d) = send(apply(yaml.to_string(), "platform", true)).await;
        assert_eq!(code, 200, "{d}");
        assert_eq!(d["spec"]["replicas"], 2);
        // A field dropped from the applied config is removed (it was only ours).
        let dropped = yaml.replace(", managed: platform", "");
        let (_, d) = send(apply(dropped, "platform", false)).await;
        assert!(d["metadata"]["labels"].get("managed").is_none(), "{d}");
        // fieldManager is required.
        let (code, _) = send(
            c.patch(&url)
                .header("Content-Type", "application/apply-patch+yaml")
                .body(yaml.to_string()),
        )
        .await;
        assert_eq!(code, 400);
        s.shutdown().await;
    })
    .await;
}

/// Reads newline-delimited watch events until `n` arrived (bounded).
async fn read_events(resp: &mut reqwest::Response, buf: &mut String, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        while let Some(pos) = buf.find('\n') {
            let line: String = buf.drain(..=pos).collect();
            if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
                out.push(v);
            }
            if out.len() == n {
                return out;
            }
        }
        match tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await {
            Ok(Ok(Some(chunk))) => buf.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    out
}

#[tokio::test]
async fn watch_streams_events_resumes_and_expires() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let base = ns_url(&s, "v1", "default", "configmaps");
        send(
            c.post(&base)
                .json(&json!({"metadata": {"name": "a", "labels": {"w": "1"}}})),
        )
        .await;
        let (_, list) = send(c.get(&base)).await;
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let mut watch = c
            .get(&base)
            .query(&[
                ("watch", "1"),
                ("resourceVersion", rv.as_str()),
                ("labelSelector", "w=1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(watch.status(), 200);
        let mut buf = String::new();
        send(
            c.post(&base)
                .json(&json!({"metadata": {"name": "b", "labels": {"w": "1"}}})),
        )
        .await;
        send(c.post(&base).json(&json!({"metadata": {"name": "other"}}))).await;
        send(
            c.patch(format!("{base}/b"))
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"data":{"x":"y"}}"#),
        )
        .await;
        send(c.delete(format!("{base}/b"))).await;
        let evs = read_events(&mut watch, &mut buf, 3).await;
        let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
        assert_eq!(evs[0]["object"]["metadata"]["name"], "b");

        // Watch from "now" (no resourceVersion): synthetic ADDED for what exists.
        let mut w2 = c
            .get(format!("{}/api/v1/configmaps", s.url()))
            .query(&[("watch", "true"), ("fieldSelector", "metadata.name=a")])
            .send()
            .await
            .unwrap();
        let mut buf2 = String::new();
        let evs = read_events(&mut w2, &mut buf2, 1).await;
        assert_eq!(evs[0]["type"], "ADDED");

        // The legacy single-object watch path.
        let mut w5 = c
            .get(format!(
                "{}/api/v1/watch/namespaces/default/configmaps/a",
                s.url()
            ))
            .send()
            .await
            .unwrap();
        let mut buf5 = String::new();
        let evs = read_events(&mut w5, &mut buf5, 1).await;
        assert_eq!(evs[0]["object"]["metadata"]["name"], "a");
        send(
            c.patch(format!("{base}/other"))
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"data":{"z":"1"}}"#),
        )
        .await;
        send(
            c.patch(format!("{base}/a"))
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"data":{"z":"1"}}"#),
        )
        .await;
        let evs = read_events(&mut w5, &mut buf5, 1).await;
        assert_eq!(evs[0]["type"], "MODIFIED");
        assert_eq!(
            evs[0]["object"]["metadata"]["name"], "a",
            "only the named object"
        );

        // Bookmarks when allowed.
        let mut w3 = c
            .get(&base)
            .query(&[
                ("watch", "1"),
                ("resourceVersion", rv.as_str()),
                ("allowWatchBookmarks", "true"),
                ("fieldSelector", "metadata.name=zzz"),
            ])
            .send()
            .await
            .unwrap();
        let mut buf3 = String::new();
        let evs = read_events(&mut w3, &mut buf3, 1).await;
        assert_eq!(evs[0]["type"], "BOOKMARK");

        // drop_watches ends open streams.
        s.drop_watches();
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            while let Ok(Some(_)) = watch.chunk().await {}
        })
        .await;
        assert!(end.is_ok(), "watch stream closed");

        // After compaction, an old resourceVersion gets 410 Expired.
        s.compact_history();
        let mut w4 = c
            .get(&base)
            .query(&[("watch", "1"), ("resourceVersion", rv.as_str())])
            .send()
            .await
            .unwrap();
        let mut buf4 = String::new();
        let evs = read_events(&mut w4, &mut buf4, 1).await;
        assert_eq!(evs[0]["type"], "ERROR");
        assert_eq!(evs[0]["object"]["code"], 410);
        assert_eq!(evs[0]["object"]["reason"], "Expired");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let base = ns_url(&s, "v1", "default", "configmaps");
        send(
            c.post(&base)
                .json(&json!({"metadata": {"name": "f", "finalizers": ["example.com/keep"]}})),
        )
        .await;
        let cm = ("v1", "ConfigMap", "default", "f");
        let before = s.reconciles(cm);
        let (code, d) = send(
            c.delete(format!("{base}/f"))
                .json(&json!({"propagationPolicy": "Foreground"})),
        )
        .await;
        assert_eq!(code, 200);
        assert!(d["metadata"]["deletionTimestamp"].is_string());
        // Nobody removes an unknown finalizer: the controllers saw the deletion and left it.
        s.reconciled_after(cm, before).await;
        let obj = s
            .get("v1", "ConfigMap", "default", "f")
            .expect("still there");
        let mut cleared = obj.clone();
        cleared["metadata"]["finalizers"] = json!([]);
        let (code, _) = send(c.put(format!("{base}/f")).json(&cleared)).await;
        assert_eq!(code, 200);
        assert!(
            s.get("v1", "ConfigMap", "default", "f").is_none(),
            "gone once finalizers are empty"
        );

        // A slow finalizer controller removes it after the delay.
        s.slow_finalizer("ConfigMap", Duration::from_millis(200));
        send(
            c.post(&base)
                .json(&json!({"metadata": {"name": "g", "finalizers": ["example.com/keep"]}})),
        )
        .await;
        send(c.delete(format!("{base}/g"))).await;
        assert!(s.get("v1", "ConfigMap", "default", "g").is_some());
        wait_until(&s, "v1", "ConfigMap", "default", "g", |o| o.is_none()).await;

        // Garbage collection of dependents.
        let (_, owner) = send(c.post(&base).json(&json!({"metadata": {"name": "owner"}}))).await;
        let uid = owner["metadata"]["uid"].as_str().unwrap();
        send(
            c.post(&base)
                .json(&json!({"metadata": {"name": "dep", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}})),
        )
        .await;
        send(c.delete(format!("{base}/owner"))).await;
        assert!(s.get("v1", "ConfigMap", "default", "dep").is_none());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn scale_and_status_subresources() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let dbase = ns_url(&s, "apps/v1", "default", "deployments");
        send(c.post(&dbase).json(&deployment("web", 2))).await;
        let (code, scale) = send(c.get(format!("{dbase}/web/scale"))).await;
        assert_eq!(code, 200);
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["apiVersion"], "autoscaling/v1");
        assert_eq!(scale["spec"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web");
        let mut put = scale.clone();
        put["spec"]["replicas"] = json!(3);
        let (code, scale) = send(c.put(format!("{dbase}/web/scale")).json(&put)).await;
        assert_eq!(code, 200, "{scale}");
        assert_eq!(scale["spec"]["replicas"], 3);
        let d = wait_until(&s, "apps/v1", "Deployment", "default", "web", |d| {
            d.is_some_and(|d| d["status"]["readyReplicas"] == 3)
        })
        .await
        .unwrap();
        assert_eq!(d["status"]["availableReplicas"], 3);
        assert_eq!(d["status"]["updatedReplicas"], 3);
        assert_eq!(
            d["status"]["observedGeneration"],
            d["metadata"]["generation"]
        );
        assert_eq!(s.list("v1", "Pod", Some("default")).len(), 3);
        // Status writes through the object are ignored; /status only touches status.
        let (_, d) = send(
            c.patch(format!("{dbase}/web"))
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"status":{"replicas":99}}"#),
        )
        .await;
        assert_eq!(d["status"]["replicas"], 3);
        let (_, d) = send(
            c.patch(format!("{dbase}/web/status"))
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"spec":{"replicas":7},"status":{"replicas":99}}"#),
        )
        .await;
        assert_eq!(d["status"]["replicas"], 99);
        assert_eq!(d["spec"]["replicas"], 3);
        // Scale to zero removes the pods.
        send(
            c.patch(format!("{dbase}/web/scale"))
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"spec":{"replicas":0}}"#),
        )
        .await;
        wait_until(&s, "apps/v1", "Deployment", "default", "web", |d| {
            d.is_some_and(|d| d["status"].get("replicas").is_none())
        })
        .await;
        assert!(s.list("v1", "Pod", Some("default")).is_empty());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn controllers_reach_ready_and_stop() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        // KServe InferenceService: Ready, then Stopped with the annotation, then Ready again.
        let isvc_url = ns_url(&s, "serving.kserve.io/v1beta1", "default", "inferenceservices");
        send(c.post(&isvc_url).json(&json!({"metadata": {"name": "m"}, "spec": {"predictor": {
            "containers": [{"name": "kserve-container", "image": "vllm"}]}}}))).await;
        let isvc = wait_until(&s, "serving.kserve.io/v1beta1", "InferenceService", "default", "m", |o| {
            condition(o, "Ready") == "True"
        })
        .await;
        assert_eq!(condition(isvc.as_ref(), "PredictorReady"), "True");
        assert!(isvc.unwrap()["status"]["url"].is_string());
        let stop = |v: &str| {
            c.patch(format!("{isvc_url}/m"))
                .header("Content-Type", "application/merge-patch+json")
                .body(format!(r#"{{"metadata":{{"annotations":{{"serving.kserve.io/stop":{v}}}}}}}"#))
        };
        let predictor = s.get("apps/v1", "Deployment", "default", "m-predictor").expect("predictor Deployment");
        assert_eq!(predictor["spec"]["template"]["spec"]["containers"][0]["name"], "kserve-container");
        assert_eq!(predictor["metadata"]["ownerReferences"][0]["kind"], "InferenceService");
        send(stop("\"true\"")).await;
        let isvc = wait_until(&s, "serving.kserve.io/v1beta1", "InferenceService", "default", "m", |o| {
            condition(o, "Stopped") == "True"
        })
        .await;
        assert_eq!(condition(isvc.as_ref(), "Ready"), "False");
        send(stop("null")).await;
        wait_until(&s, "serving.kserve.io/v1beta1", "InferenceService", "default", "m", |o| {
            condition(o, "Ready") == "True" && condition(o, "Stopped") == "False"
        })
        .await;

        let predictor = s.get("apps/v1", "Deployment", "default", "m-predictor").unwrap();
        assert_eq!(predictor["spec"]["replicas"], 1, "resumed");

        // An ISVC asking for a GPU the node lacks stays not Ready; its pod says why.
        send(c.post(&isvc_url).json(&json!({"metadata": {"name": "big"}, "spec": {"predictor": {
            "containers": [{"name": "kserve-container", "image": "vllm",
                            "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}))).await;
        let big = wait_until(&s, "serving.kserve.io/v1beta1", "InferenceService", "default", "big", |o| {
            condition(o, "PredictorReady") == "False"
        })
        .await;
        assert_eq!(condition(big.as_ref(), "Ready"), "False");
        let mut pod_name = String::new();
        for _ in 0..500 {
            let pods = s.list("v1", "Pod", Some("default"));
            if let Some(p) = pods.iter().find(|p| p["metadata"]["labels"]["serving.kserve.io/inferenceservice"] == "big") {
                pod_name = p["metadata"]["name"].as_str().unwrap().to_string();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!pod_name.is_empty(), "predictor pod created");
        wait_until(&s, "v1", "Pod", "default", &pod_name, |o| condition(o, "PodScheduled") == "False").await;
        send(c.delete(format!("{isvc_url}/big"))).await;
        wait_until(&s, "v1", "Pod", "default", &pod_name, |o| o.is_none()).await;

        // LLMInferenceService: stopped means Ready=False with WorkloadsReady reason Stopped.
        let llm_url = ns_url(&s, "serving.kserve.io/v1alpha1", "default", "llminferenceservices");
        send(c.post(&llm_url).json(&json!({"metadata": {"name": "l", "annotations": {"serving.kserve.io/stop": "true"}},
                                            "spec": {"model": {"uri": "hf://org/model"}}}))).await;
        let llm = wait_until(&s, "serving.kserve.io/v1alpha1", "LLMInferenceService", "default", "l", |o| {
            condition(o, "Ready") == "False"
        })
        .await
        .unwrap();
        let workloads = llm["status"]["conditions"].as_array().unwrap().iter()
            .find(|c| c["type"] == "WorkloadsReady").cloned().unwrap();
        assert_eq!(workloads["reason"], "Stopped");

        // Gateway: Programmed, an address, and a LoadBalancer Service that goes after it.
        let gw_url = ns_url(&s, "gateway.networking.k8s.io/v1", "default", "gateways");
        send(c.post(&gw_url).json(&json!({"metadata": {"name": "gw"}, "spec": {"gatewayClassName": "istio",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}))).await;
        let gw = wait_until(&s, "gateway.networking.k8s.io/v1", "Gateway", "default", "gw", |o| {
            condition(o, "Programmed") == "True"
        })
        .await
        .unwrap();
        let ip = gw["status"]["addresses"][0]["value"].as_str().unwrap().to_string();
        assert!(ip.starts_with("10.0.0."), "{ip}");
        let svcs = s.list("v1", "Service", Some("default"));
        let lb = svcs.iter().find(|s| s["spec"]["type"] == "LoadBalancer").expect("LB service");
        assert_eq!(lb["metadata"]["labels"]["gateway.networking.k8s.io/gateway-name"], "gw");
        assert_eq!(lb["status"]["loadBalancer"]["ingress"][0]["ip"], ip.as_str());
        let lb_name = lb["metadata"]["name"].as_str().unwrap().to_string();
        send(c.delete(format!("{gw_url}/gw"))).await;
        assert!(s.get("v1", "Service", "default", &lb_name).is_some(), "LB outlives the gateway a moment");
        wait_until(&s, "v1", "Service", "default", &lb_name, |o| o.is_none()).await;

        // PVC binds to a PV; a pod mounting it runs; deleting the PVC deletes the PV.
        let pvc_url = ns_url(&s, "v1", "default", "persistentvolumeclaims");
        send(c.post(&pvc_url).json(&json!({"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}))).await;
        let pvc = wait_until(&s, "v1", "PersistentVolumeClaim", "default", "data", |o| {
            o.is_some_and(|p| p["status"]["phase"] == "Bound")
        })
        .await
        .unwrap();
        let pv_name = pvc["spec"]["volumeName"].as_str().unwrap().to_string();
        let pv = s.get("v1", "PersistentVolume", "", &pv_name).unwrap();
        assert_eq!(pv["status"]["phase"], "Bound");
        assert_eq!(pv["spec"]["claimRef"]["name"], "data");
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert!(s.volumes_dir().join("default/data").is_dir());
        let pod_url = ns_url(&s, "v1", "default", "pods");
        send(c.post(&pod_url).json(&json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/data"}]}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}}))).await;
        wait_until(&s, "v1", "Pod", "default", "p", |o| condition(o, "Ready") == "True").await;
        // The claim is protected while the pod uses it.
        let pvc = ("v1", "PersistentVolumeClaim", "default", "data");
        let before = s.reconciles(pvc);
        send(c.delete(format!("{pvc_url}/data"))).await;
        s.reconciled_after(pvc, before).await;
        assert!(s.get("v1", "PersistentVolumeClaim", "default", "data").is_some());
        send(c.delete(format!("{pod_url}/p"))).await;
        wait_until(&s, "v1", "PersistentVolumeClaim", "default", "data", |o| o.is_none()).await;
        wait_until(&s, "v1", "PersistentVolume", "", &pv_name, |o| o.is_none()).await;

        // A GPU pod stays Pending on a node without GPUs.
        send(c.post(&pod_url).json(&json!({"metadata": {"name": "gpu"}, "spec": {
            "containers": [{"name": "c", "image": "vllm", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}))).await;
        let pod = wait_until(&s, "v1", "Pod", "default", "gpu", |o| condition(o, "PodScheduled") == "False")
            .await
            .unwrap();
        assert_eq!(pod["status"]["phase"], "Pending");
        let cond = &pod["status"]["conditions"][0];
        assert_eq!(cond["reason"], "Unschedulable");
        assert_eq!(cond["message"], "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.");
        let ev = s.get("v1", "Event", "default", "gpu.failedscheduling").expect("FailedScheduling event");
        assert_eq!(ev["reason"], "FailedScheduling");
        assert_eq!(ev["involvedObject"]["name"], "gpu");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn gpu_node_runs_one_gpu_pod_at_a_time() {
    bounded(async {
        let s = TestApiServer::start(Options { node_gpus: 1, ..Options::default() }).await;
        let c = client();
        let pod_url = ns_url(&s, "v1", "default", "pods");
        for name in ["a", "b"] {
            send(c.post(&pod_url).json(&json!({"metadata": {"name": name}, "spec": {
                "containers": [{"name": "c", "image": "vllm", "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}))).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        wait_until(&s, "v1", "Pod", "default", "a", |o| o.is_some_and(|p| p["status"]["phase"] == "Running")).await;
        wait_until(&s, "v1", "Pod", "default", "b", |o| condition(o, "PodScheduled") == "False").await;
        send(c.delete(format!("{pod_url}/a"))).await;
        wait_until(&s, "v1", "Pod", "default", "b", |o| o.is_some_and(|p| p["status"]["phase"] == "Running")).await;
        s.shutdown().await;
    })
    .await;
}

fn app(name: &str, automated: bool) -> Value {
    let mut a = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"project": "default",
                 "source": {"repoURL": "https://git.example.invalid/gitops.git", "path": "apps", "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"}}
    });
    if automated {
        a["spec"]["syncPolicy"] = json!({"automated": {"prune": true}});
    }
    a
}

fn app_str<'a>(a: &'a Value, pointer: &str) -> &'a str {
    a.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

#[tokio::test]
async fn argo_operations_sync_health_and_finalizers() {
    bounded(async {
        let s = TestApiServer::start(Options { argo_delay: Duration::from_millis(100), ..Options::default() }).await;
        let c = client();
        let base = ns_url(&s, "argoproj.io/v1alpha1", "argocd", "applications");
        s.set_app_outcome("bad", apiserver::AppOutcome::Degraded("Deployment web: 0/1 ready".into()));
        s.set_app_outcome("fail", apiserver::AppOutcome::SyncFailed("exceeded quota".into()));
        for name in ["good", "bad", "fail"] {
            send(c.post(&base).json(&app(name, false))).await;
        }
        // A manual app waits OutOfSync/Missing until an operation is written.
        let good = wait_until(&s, "argoproj.io/v1alpha1", "Application", "argocd", "good", |o| {
            o.is_some_and(|a| app_str(a, "/status/sync/status") == "OutOfSync")
        })
        .await
        .unwrap();
        assert_eq!(app_str(&good, "/status/health/status"), "Missing");
        let sha = "0123456789abcdef0123456789abcdef01234567";
        for name in ["good", "bad", "fail"] {
            let op = json!({"operation": {"initiatedBy": {"username": "platform"}, "info": [{"name": "reason", "value": "test"}],
                            "sync": {"revision": sha, "prune": false, "syncOptions": [], "syncStrategy": {"hook": {}}}}});
            let (code, _) = send(
                c.patch(format!("{base}/{name}"))
                    .header("Content-Type", "application/merge-patch+json")
                    .body(op.to_string()),
            )
            .await;
            assert_eq!(code, 200);
        }
        let good = wait_until(&s, "argoproj.io/v1alpha1", "Application", "argocd", "good", |o| {
            o.is_some_and(|a| app_str(a, "/status/health/status") == "Healthy")
        })
        .await
        .unwrap();
        assert!(good.get("operation").is_none(), "operation cleared");
        assert_eq!(app_str(&good, "/status/sync/status"), "Synced");
        assert_eq!(app_str(&good, "/status/sync/revision"), sha);
        assert_eq!(app_str(&good, "/status/operationState/phase"), "Succeeded");
        assert_eq!(app_str(&good, "/status/operationState/syncResult/revision"), sha);
        assert_eq!(app_str(&good, "/status/operationState/operation/initiatedBy/username"), "platform");
        let finished = app_str(&good, "/status/operationState/finishedAt");
        let reconciled = app_str(&good, "/status/reconciledAt");
        // Whole seconds, as Argo CD writes them: its refresh after a sync is often the same second.
        assert!(!finished.is_empty() && reconciled >= finished, "{reconciled} not before {finished}");
        assert!(!app_str(&good, "/status/operationState/startedAt").is_empty());

        let bad = wait_until(&s, "argoproj.io/v1alpha1", "Application", "argocd", "bad", |o| {
            o.is_some_and(|a| app_str(a, "/status/health/status") == "Degraded")
        })
        .await
        .unwrap();
        assert_eq!(app_str(&bad, "/status/health/message"), "Deployment web: 0/1 ready");
        let fail = wait_until(&s, "argoproj.io/v1alpha1", "Application", "argocd", "fail", |o| {
            o.is_some_and(|a| app_str(a, "/status/operationState/phase") == "Failed")
        })
        .await
        .unwrap();
        assert!(app_str(&fail, "/status/operationState/message").contains("exceeded quota"));
        assert_eq!(fail["status"]["operationState"]["syncResult"]["resources"][0]["status"], "SyncFailed");
        assert!(fail.get("operation").is_none());

        // Automated apps sync by themselves.
        send(c.post(&base).json(&app("auto", true))).await;
        let auto = wait_until(&s, "argoproj.io/v1alpha1", "Application", "argocd", "auto", |o| {
            o.is_some_and(|a| app_str(a, "/status/health/status") == "Healthy")
        })
        .await
        .unwrap();
        assert_eq!(auto["status"]["operationState"]["operation"]["initiatedBy"]["automated"], true);
        assert_eq!(app_str(&auto, "/status/sync/revision").len(), 40);

        // The resources finalizer goes after a moment; a stuck one never.
        let mut with_fin = app("gone", false);
        with_fin["metadata"]["finalizers"] = json!(["resources-finalizer.argocd.argoproj.io"]);
        send(c.post(&base).json(&with_fin)).await;
        send(c.delete(format!("{base}/gone"))).await;
        assert!(s.get("argoproj.io/v1alpha1", "Application", "argocd", "gone").is_some());
        wait_until(&s, "argoproj.io/v1alpha1", "Application", "argocd", "gone", |o| o.is_none()).await;
        s.stuck_finalizer("Application");
        with_fin["metadata"]["name"] = json!("stuck");
        send(c.post(&base).json(&with_fin)).await;
        let app = ("argoproj.io/v1alpha1", "Application", "argocd", "stuck");
        let before = s.reconciles(app);
        send(c.delete(format!("{base}/stuck"))).await;
        s.reconciled_after(app, before).await;
        let stuck = s.get("argoproj.io/v1alpha1", "Application", "argocd", "stuck").expect("stuck app stays");
        assert!(stuck["metadata"]["deletionTimestamp"].is_string());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn fault_injection_and_request_log() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let base = ns_url(&s, "v1", "default", "configmaps");
        s.fail_next(2, 429, Some(3));
        for _ in 0..2 {
            let resp = c.get(&base).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 429);
            assert_eq!(resp.headers()["retry-after"], "3");
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["kind"], "Status");
            assert_eq!(v["reason"], "TooManyRequests");
            assert_eq!(v["details"]["retryAfterSeconds"], 3);
        }
        let (code, _) = send(c.get(&base)).await;
        assert_eq!(code, 200);
        s.fail_next_matching(1, 500, None, Some("/configmaps"), Some("POST"));
        let (code, _) = send(c.get(&base)).await;
        assert_eq!(code, 200);
        let (code, v) = send(c.post(&base).json(&json!({"metadata": {"name": "x"}}))).await;
        assert_eq!(code, 500);
        assert_eq!(v["reason"], "InternalError");
        let (code, _) = send(c.post(&base).json(&json!({"metadata": {"name": "x"}}))).await;
        assert_eq!(code, 201);
        let log = s.request_log();
        let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [429, 429, 200, 200, 500, 201]);
        let last = log.last().unwrap();
        assert_eq!(
            (
                last.method.as_str(),
                last.verb.as_str(),
                last.resource.as_str()
            ),
            ("POST", "create", "configmaps")
        );
        assert_eq!(last.namespace, "default");
        assert!(last.content_type.starts_with("application/json"));
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn discovery_openapi_and_access_reviews() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let get = |p: &str| c.get(format!("{}{p}", s.url()));
        let (_, v) = send(get("/version")).await;
        assert_eq!(v["major"], "1");
        let (_, v) = send(get("/api")).await;
        assert_eq!(v["versions"], json!(["v1"]));
        let (_, v) = send(get("/apis")).await;
        let groups: Vec<&str> = v["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
        for g in ["apps", "argoproj.io", "serving.kserve.io", "gateway.networking.k8s.io", "apiextensions.k8s.io",
                  "storage.k8s.io", "authorization.k8s.io"] {
            assert!(groups.contains(&g), "{g} in {groups:?}");
        }
        let (_, agg) = send(get("/apis").header(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        ))
        .await;
        assert_eq!(agg["kind"], "APIGroupDiscoveryList");
        let apps = agg["items"].as_array().unwrap().iter().find(|g| g["metadata"]["name"] == "apps").unwrap();
        let deployments = &apps["versions"][0]["resources"][0];
        assert_eq!(deployments["resource"], "deployments");
        assert_eq!(deployments["scope"], "Namespaced");
        assert!(deployments["subresources"].as_array().unwrap().iter().any(|s| s["subresource"] == "scale"
            && s["responseKind"]["kind"] == "Scale"));
        let (_, core) = send(get("/api").header("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")).await;
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        let (_, v) = send(get("/apis/apps/v1")).await;
        let scale = v["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments/scale").unwrap();
        assert_eq!((scale["group"].as_str(), scale["kind"].as_str()), (Some("autoscaling"), Some("Scale")));
        let (_, v) = send(get("/api/v1")).await;
        let res = v["resources"].as_array().unwrap();
        let find = |n: &str| res.iter().find(|r| r["name"] == n).cloned().unwrap();
        assert_eq!(find("namespaces")["namespaced"], false);
        assert_eq!(find("pods")["namespaced"], true);
        assert!(res.iter().any(|r| r["name"] == "pods/exec"));
        let (_, v) = send(get("/apis/serving.kserve.io/v1alpha1")).await;
        assert_eq!(v["resources"][0]["kind"], "LLMInferenceService");
        let (code, _) = send(get("/apis/nope.example/v1")).await;
        assert_eq!(code, 404);
        let (_, v) = send(get("/openapi/v3")).await;
        let url = v["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap().to_string();
        let (code, doc) = send(get(&url)).await;
        assert_eq!(code, 200);
        let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        let crds = s.list("apiextensions.k8s.io/v1", "CustomResourceDefinition", None);
        assert!(crds.iter().any(|c| c["metadata"]["name"] == "applications.argoproj.io"));
        assert!(crds.iter().any(|c| c["metadata"]["name"] == "llminferenceservices.serving.kserve.io"));
        let cm = s.get("v1", "ConfigMap", "kube-system", "cluster-identity").unwrap();
        assert_eq!(cm["data"]["clusterName"], "test-cluster");
        let (code, v) = send(
            c.post(format!("{}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", s.url()))
                .json(&json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                              "spec": {"resourceAttributes": {"verb": "delete", "resource": "pods"}}})),
        )
        .await;
        assert_eq!(code, 201);
        assert_eq!(v["status"]["allowed"], true);
        s.shutdown().await;
    })
    .await;
}

/// Runs a command in a pod over the exec websocket (v5); returns stdout, stderr and the
/// channel-3 status.
async fn ws_exec(
    s: &TestApiServer,
    pod: &str,
    argv: &[&str],
    stdin: Option<&[u8]>,
) -> (Vec<u8>, Vec<u8>, Value) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let mut q: Vec<String> = argv
        .iter()
        .map(|a| format!("command={}", encode(a)))
        .collect();
    q.push(format!("stdin={}", stdin.is_some()));
    q.push("stdout=true&stderr=true".into());
    let url = format!(
        "ws://{}/api/v1/namespaces/default/pods/{pod}/exec?{}",
        s.addr(),
        q.join("&")
    );
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v5.channel.k8s.io, v4.channel.k8s.io"
            .parse()
            .expect("header"),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket");
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );
    if let Some(data) = stdin {
        for chunk in data.chunks(1000) {
            let mut frame = vec![0u8];
            frame.extend_from_slice(chunk);
            ws.send(Message::Binary(frame.into())).await.expect("stdin");
        }
        ws.send(Message::Binary(vec![255u8, 0].into()))
            .await
            .expect("close stdin");
    }
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), Value::Null);
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Binary(b) if !b.is_empty() => match b[0] {
                1 => out.extend_from_slice(&b[1..]),
                2 => err.extend_from_slice(&b[1..]),
                3 => status = serde_json::from_slice(&b[1..]).expect("status json"),
                _ => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    (out, err, status)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn exec_over_websocket_runs_commands_on_volumes() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let s = TestApiServer::start(Options { volumes_dir: Some(dir.path().to_path_buf()), ..Options::default() }).await;
        let c = client();
        send(c.post(ns_url(&s, "v1", "default", "persistentvolumeclaims")).json(&json!({"metadata": {"name": "models"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))).await;
        let pod_url = ns_url(&s, "v1", "default", "pods");
        send(c.post(&pod_url).json(&json!({"metadata": {"name": "stage"}, "spec": {
            "containers": [{"name": "main", "image": "busybox", "volumeMounts": [{"name": "m", "mountPath": "/models"}]}],
            "volumes": [{"name": "m", "persistentVolumeClaim": {"claimName": "models"}}]}}))).await;
        wait_until(&s, "v1", "Pod", "default", "stage", |o| condition(o, "Ready") == "True").await;

        // tar over stdin into the volume.
        let mut builder = tar::Builder::new(Vec::new());
        let payload = b"weights".repeat(500);
        let mut header = tar::Header::new_gnu();
        header.set_size(payload.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "qwen/model.bin", &payload[..]).unwrap();
        let archive = builder.into_inner().unwrap();
        let (_, err, status) = ws_exec(&s, "stage", &["tar", "xmf", "-", "-C", "/models"], Some(&archive)).await;
        assert_eq!(status["status"], "Success", "{}", String::from_utf8_lossy(&err));
        let landed = dir.path().join("default/models/qwen/model.bin");
        assert_eq!(std::fs::read(&landed).unwrap(), payload);

        let (out, _, status) = ws_exec(&s, "stage", &["sha256sum", "/models/qwen/model.bin"], None).await;
        assert_eq!(status["status"], "Success");
        let expected = {
            use sha2::Digest;
            sha2::Sha256::digest(&payload).iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        assert_eq!(String::from_utf8(out).unwrap(), format!("{expected}  /models/qwen/model.bin\n"));

        let script = "mkdir -p /models/.staged && printf '%s' abc123 > /models/.staged/marker && cat /models/.staged/marker";
        let (out, _, status) = ws_exec(&s, "stage", &["sh", "-c", script], None).await;
        assert_eq!(status["status"], "Success");
        assert_eq!(out, b"abc123");

        // kubectl cp --retries reads through `sh -c "tar cf - PATH | tail -c+N"`.
        let (out, _, status) =
            ws_exec(&s, "stage", &["sh", "-c", "tar cf - /models/qwen/model.bin | tail -c+1"], None).await;
        assert_eq!(status["status"], "Success");
        let mut listed = tar::Archive::new(&out[..]);
        let names: Vec<String> = listed
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["models/qwen/model.bin"]);
        let (out, _, _) = ws_exec(&s, "stage", &["cat"], Some(b"piped")).await;
        assert_eq!(out, b"piped");

        // A failing command reports its exit code.
        let (_, _, status) = ws_exec(&s, "stage", &["test", "-e", "/models/missing"], None).await;
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "1");

        // tar members escaping the mount are refused (hand-made header: the tar crate's
        // builder refuses '..' itself).
        let mut hdr = tar::Header::new_old();
        hdr.as_old_mut().name[..9].copy_from_slice(b"../escape");
        hdr.set_size(1);
        hdr.set_mode(0o644);
        hdr.set_entry_type(tar::EntryType::Regular);
        hdr.set_cksum();
        let mut raw = hdr.as_bytes().to_vec();
        raw.push(b'x');
        raw.extend_from_slice(&[0u8; 511 + 1024]);
        let (_, err, status) = ws_exec(&s, "stage", &["tar", "-xf", "-", "-C", "/models"], Some(&raw)).await;
        assert_eq!(status["status"], "Failure", "{}", String::from_utf8_lossy(&err));
        assert!(!dir.path().join("default/escape").exists());

        // A pod that is not running refuses exec with a Status.
        send(c.post(&pod_url).json(&json!({"metadata": {"name": "waiting"}, "spec": {
            "containers": [{"name": "c", "image": "vllm", "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}))).await;
        wait_until(&s, "v1", "Pod", "default", "waiting", |o| condition(o, "PodScheduled") == "False").await;
        let (code, v) = send(c.get(format!("{pod_url}/waiting/exec?command=ls&stdout=true"))).await;
        assert_eq!(code, 400);
        assert_eq!(v["kind"], "Status");
        let (code, _) = send(c.get(format!("{pod_url}/nope/exec?command=ls"))).await;
        assert_eq!(code, 404);
        s.shutdown().await;
    })
    .await;
}

/// `kubectl` on PATH, if any.
fn find_kubectl() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
}

struct Kubectl {
    bin: std::path::PathBuf,
    kubeconfig: std::path::PathBuf,
    cache: std::path::PathBuf,
    cwd: std::path::PathBuf,
}

impl Kubectl {
    /// Runs kubectl (off the async runtime) and returns exit code, stdout, stderr.
    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .arg("--request-timeout=20s")
            .args(args)
            .current_dir(&self.cwd)
            .stdin(std::process::Stdio::null());
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("run kubectl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args).await;
        assert_eq!(
            code, 0,
            "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}"
        );
        out
    }
}

const KUBECTL_MANIFESTS: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app.kubernetes.io/managed-by: platform}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: vllm
        image: vllm/vllm-openai:latest
        args: ["--model=/models/qwen"]
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: demo
  namespace: argocd
  finalizers: [resources-finalizer.argocd.argoproj.io]
spec:
  project: default
  source: {repoURL: "https://git.example.invalid/gitops.git", path: clusters/dev, targetRevision: main}
  destination: {server: "https://kubernetes.default.svc", namespace: default}
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: x, namespace: default}
spec:
  predictor:
    containers: [{name: kserve-container, image: vllm/vllm-openai:latest}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: models, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: stage, namespace: default}
spec:
  containers:
  - name: main
    image: busybox
    volumeMounts: [{name: m, mountPath: /models}]
  volumes:
  - name: m
    persistentVolumeClaim: {claimName: models}
"#;

/// The faithfulness test: the real kubectl drives the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_apply_annotate_scale_wait_cp_delete() {
    let Some(bin) = find_kubectl() else {
        platform_testkit::missing_prerequisite(
            "kubectl is not on PATH",
            "install it (`.ci/run` does; README § Set up)",
        );
    };
    bounded(async move {
        let dir = tempfile::tempdir().unwrap();
        let volumes = dir.path().join("volumes");
        let s = TestApiServer::start(Options {
            cluster_name: "kind-faithful".into(),
            volumes_dir: Some(volumes.clone()),
            ..Options::default()
        })
        .await;
        let kubeconfig = dir.path().join("kubeconfig");
        s.write_kubeconfig(&kubeconfig).unwrap();
        let k = Kubectl {
            bin,
            kubeconfig,
            cache: dir.path().join("cache"),
            cwd: dir.path().to_path_buf(),
        };

        assert_eq!(
            k.ok(&["config", "current-context"]).await.trim(),
            "kind-faithful"
        );
        let ns = k.ok(&["get", "namespaces"]).await;
        assert!(ns.contains("argocd") && ns.contains("default"), "{ns}");
        let (code, _, err) = k.run(&["get", "deployment", "nope"]).await;
        assert_eq!(code, 1);
        assert!(
            err.contains("NotFound") && err.contains("\"nope\" not found"),
            "{err}"
        );

        std::fs::write(dir.path().join("manifests.yaml"), KUBECTL_MANIFESTS).unwrap();
        let out = k
            .ok(&["apply", "--server-side", "-f", "manifests.yaml"])
            .await;
        assert!(
            out.contains("deployment.apps/web serverside-applied"),
            "{out}"
        );
        assert!(
            out.contains("application.argoproj.io/demo serverside-applied"),
            "{out}"
        );
        let applied = s
            .request_log()
            .into_iter()
            .filter(|r| r.verb == "apply")
            .count();
        assert_eq!(applied, 5);
        let d = s.get("apps/v1", "Deployment", "default", "web").unwrap();
        assert_eq!(d["metadata"]["managedFields"][0]["manager"], "kubectl");

        k.ok(&[
            "annotate",
            "deployment",
            "web",
            "platform.example/paused-replicas=1",
        ])
        .await;
        let d = s.get("apps/v1", "Deployment", "default", "web").unwrap();
        assert_eq!(
            d["metadata"]["annotations"]["platform.example/paused-replicas"],
            "1"
        );

        k.ok(&["scale", "deployment", "web", "--replicas=3"]).await;
        k.ok(&[
            "wait",
            "--for=jsonpath={.status.readyReplicas}=3",
            "deployment/web",
            "--timeout=20s",
        ])
        .await;
        let json = k.ok(&["get", "deployment", "web", "-o", "json"]).await;
        let d: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(d["spec"]["replicas"], 3);
        // Re-applying replicas: 1 now conflicts with the scale writer.
        let (code, _, err) = k
            .run(&["apply", "--server-side", "-f", "manifests.yaml"])
            .await;
        assert_eq!(code, 1);
        assert!(err.contains("conflict"), "{err}");

        k.ok(&["wait", "--for=condition=Ready", "isvc/x", "--timeout=20s"])
            .await;
        k.ok(&["annotate", "isvc", "x", "serving.kserve.io/stop=true"])
            .await;
        k.ok(&[
            "wait",
            "--for=condition=Stopped",
            "inferenceservice/x",
            "--timeout=20s",
        ])
        .await;
        k.ok(&["annotate", "isvc", "x", "serving.kserve.io/stop-"])
            .await;
        k.ok(&["wait", "--for=condition=Ready", "isvc/x", "--timeout=20s"])
            .await;

        // Sync the Application by writing its operation, wait for Healthy.
        k.ok(&[
            "patch",
            "application",
            "demo",
            "-n",
            "argocd",
            "--type=merge",
            "-p",
            r#"{"operation":{"initiatedBy":{"username":"platform"},"sync":{"revision":"main"}}}"#,
        ])
        .await;
        k.ok(&[
            "wait",
            "--for=jsonpath={.status.health.status}=Healthy",
            "app/demo",
            "-n",
            "argocd",
            "--timeout=20s",
        ])
        .await;
        let sync = k
            .ok(&[
                "get",
                "app",
                "demo",
                "-n",
                "argocd",
                "-o",
                "jsonpath={.status.sync.status}",
            ])
            .await;
        assert_eq!(sync, "Synced");

        // kubectl cp into the pod's PVC, then back out, and exec.
        k.ok(&[
            "wait",
            "--for=condition=Ready",
            "pod/stage",
            "--timeout=20s",
        ])
        .await;
        std::fs::write(dir.path().join("config.json"), b"{\"model\":\"qwen\"}\n").unwrap();
        k.ok(&["cp", "config.json", "default/stage:/models/config.json"])
            .await;
        let landed = volumes.join("default/models/config.json");
        assert_eq!(std::fs::read(&landed).unwrap(), b"{\"model\":\"qwen\"}\n");
        k.ok(&["cp", "config.json", "default/stage:/models/"]).await; // into a directory
        k.ok(&["cp", "default/stage:/models/config.json", "back.json"])
            .await;
        assert_eq!(
            std::fs::read(dir.path().join("back.json")).unwrap(),
            b"{\"model\":\"qwen\"}\n"
        );
        let sum = k
            .ok(&["exec", "stage", "--", "sha256sum", "/models/config.json"])
            .await;
        assert!(sum.ends_with("  /models/config.json\n"), "{sum}");
        let (code, _, _) = k
            .run(&["exec", "stage", "--", "test", "-e", "/models/absent"])
            .await;
        assert_eq!(code, 1, "exit code of the remote command");
        assert!(s
            .request_log()
            .iter()
            .any(|r| r.verb == "exec" && r.status == 101));

        // Deletes: plain, and one held by the Argo CD finalizer (kubectl waits for it).
        k.ok(&["delete", "deployment", "web"]).await;
        assert!(s.get("apps/v1", "Deployment", "default", "web").is_none());
        k.ok(&[
            "delete",
            "application",
            "demo",
            "-n",
            "argocd",
            "--timeout=20s",
        ])
        .await;
        assert!(s
            .get("argoproj.io/v1alpha1", "Application", "argocd", "demo")
            .is_none());
        k.ok(&["delete", "pod", "stage"]).await;
        k.ok(&["delete", "pvc", "models", "--timeout=20s"]).await;
        let pvs = k.ok(&["get", "pv", "-o", "name"]).await;
        assert!(
            pvs.trim().is_empty()
                || k.run(&["wait", "--for=delete", "pv", "--all", "--timeout=20s"])
                    .await
                    .0
                    == 0
        );
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn delete_answers_status_or_object() {
    bounded(async {
        let s = TestApiServer::start(Options::default()).await;
        let c = client();
        let base = ns_url(&s, "v1", "default", "configmaps");
        send(c.post(&base).json(&json!({"metadata": {"name": "a"}}))).await;
        let (code, v) = send(c.delete(format!("{base}/a"))).await;
        assert_eq!(code, 200);
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["status"], "Success");
        assert_eq!(v["details"]["name"], "a");
        let (code, v) = send(c.delete(format!("{base}/a"))).await;
        assert_eq!(code, 404);
        assert_eq!(v["reason"], "NotFound");
        let apps = ns_url(&s, "argoproj.io/v1alpha1", "argocd", "applications");
        send(c.post(&apps).json(&app("x", false))).await;
        let (_, v) = send(
            c.delete(format!("{apps}/x"))
                .query(&[("propagationPolicy", "Orphan")]),
        )
        .await;
        assert_eq!(v["kind"], "Application");
        let (code, _) = send(
            c.delete(format!("{base}/a"))
                .query(&[("propagationPolicy", "Sideways")]),
        )
        .await;
        assert_eq!(code, 400);
        s.shutdown().await;
    })
    .await;
}

/// The example binary: prints `ready`, writes the kubeconfig, exits cleanly on SIGTERM.
#[test]
fn example_binary_serves_until_sigterm() {
    use std::io::BufRead;
    let exe = std::env::current_exe().expect("test binary path");
    let Some(bin) = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("test-apiserver"))
        .filter(|p| p.is_file())
    else {
        platform_testkit::missing_prerequisite(
            "examples/test-apiserver is not built",
            "run the whole `cargo test` (it builds the examples), or `cargo build --example test-apiserver` first",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kc");
    let mut child = std::process::Command::new(bin)
        .args(["--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--cluster-name", "by-hand", "--volumes-dir"])
        .arg(dir.path().join("vol"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the example");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    // Assertions run under catch_unwind so the child is always stopped.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_eq!(line.trim(), "ready");
        let kc = std::fs::read_to_string(&kubeconfig).unwrap();
        assert!(kc.contains("current-context: \"by-hand\""), "{kc}");
        let server = kc
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .unwrap()
            .trim_matches('"')
            .to_string();
        assert!(server.starts_with("http://127.0.0.1:"), "{server}");
        // The cluster identity ConfigMap names the cluster.
        let addr = server.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        use std::io::{Read, Write};
        write!(stream, "GET /api/v1/namespaces/kube-system/configmaps/cluster-identity HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut resp = String::new();
        let _ = stream.read_to_string(&mut resp);
        assert!(resp.contains("\"clusterName\":\"by-hand\""), "{resp}");
    }));
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    let status = status.expect("the example exits on SIGTERM");
    assert!(status.success(), "clean exit: {status}");
}
