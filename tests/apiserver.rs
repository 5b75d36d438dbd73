//! Tests of the test Kubernetes API server (tests/support/apiserver): HTTP semantics, the
//! scripted controllers, and faithfulness checks with the real kubectl.

#[path = "support/apiserver/mod.rs"]
mod apiserver;

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

fn bounded<F: std::future::Future<Output = ()>>(f: F) -> impl std::future::Future<Output = ()> {
    async move {
        tokio::time::timeout(TEST_TIMEOUT, f)
            .await
            .expect("test timed out");
    }
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
