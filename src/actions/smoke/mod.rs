//! `platform smoke`: prove that a model answers, on every serving layer, without kubectl.
//!
//! Per model, in order: a ready pod serves it (else why not, with `status`'s reasons); the API key
//! Secret is readable when the model names one; `GET /health` answers 200 within the timeout
//! (polled with backoff); `GET /v1/models` lists the served name; a streamed completion of a fixed
//! prompt returns a non-empty reply. The default path is a port-forward through the API server to
//! the ready pod, on 127.0.0.1:<ephemeral>, closed afterwards; `Via::Gateway` goes through the
//! layer's Gateway as a tenant would.

pub mod apikey;
pub mod checks;
pub mod endpoint;
pub mod error;
pub mod forward;
pub mod report;
pub mod sse;

use std::time::Duration;

pub use error::{Check, SmokeError};
pub use report::{ModelReport, Report};

use crate::actions::status;
use crate::cluster::Client;
use crate::plan::PlannedModel;
use crate::report::Reporter;
use error::Failed;

/// The default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How to reach the models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Port-forward through the API server to a ready pod.
    PortForward,
    /// A Gateway: the models' stable route (`route`, for a routed model), else the layer's own
    /// Gateway; `domain` overrides KServe's ingress domain for the Host header there.
    Gateway {
        domain: Option<String>,
        route: Option<crate::plan::PlannedRouting>,
    },
}

impl Via {
    /// The stable route's Gateway for model `m`, when this path goes through it.
    fn stable_route<'a>(&'a self, m: &PlannedModel) -> Option<&'a crate::plan::PlannedRouting> {
        match self {
            Via::Gateway { route: Some(r), .. } if m.routed => Some(r),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub via: Via,
    /// How long `/health` may take to answer, and each other request.
    pub timeout: Duration,
    /// `/v1/completions` instead of `/v1/chat/completions`.
    pub completions: bool,
}

impl Default for Options {
    /// A port-forward, the default timeout, chat completions (what `up --smoke` runs).
    fn default() -> Options {
        Options {
            via: Via::PortForward,
            timeout: DEFAULT_TIMEOUT,
            completions: false,
        }
    }
}

/// A model to smoke; `explicit` when the user named it (paused models are then failed, not skipped).
pub struct Target<'p> {
    pub model: &'p PlannedModel,
    pub explicit: bool,
}

/// Smoke each model in turn (one port-forward at a time).
pub async fn run(
    client: &Client,
    env: &str,
    targets: &[Target<'_>],
    opts: &Options,
    reporter: &dyn Reporter,
) -> Report {
    let mut out = Vec::new();
    for t in targets {
        let r = model(client, t.model, t.explicit, opts, reporter).await;
        reporter.finish(&t.model.name, &r.summary());
        out.push(r);
    }
    Report::new(env, out)
}

/// Smoke one model.
pub async fn model(
    client: &Client,
    m: &PlannedModel,
    explicit: bool,
    opts: &Options,
    reporter: &dyn Reporter,
) -> ModelReport {
    let path = match opts.via {
        Via::PortForward => "port-forward",
        Via::Gateway { .. } if opts.via.stable_route(m).is_some() => "route",
        Via::Gateway { .. } => "gateway",
    };
    let report = ModelReport::new(&m.name, &m.serving_layer, &m.namespace, path);
    let st = match status::model(client, m).await {
        Ok(s) => s,
        Err(e) => return report.failed(Failed::new(Check::Pod, SmokeError::Cluster(e))),
    };
    if !explicit {
        if st.paused {
            return report.skipped(format!(
                "paused (`platform resume {} --wait`, then smoke it)",
                m.name
            ));
        }
        if matches!(opts.via, Via::Gateway { .. })
            && opts.via.stable_route(m).is_none()
            && m.layer().gateway_routing().is_none()
        {
            return report
                .skipped("raw vLLM has no Gateway: smoke it without --via-gateway".to_string());
        }
    }
    match checks_in_order(client, m, &st, opts, reporter, report.clone()).await {
        Ok(r) => r,
        Err((r, f)) => r.failed(f),
    }
}

type Partial = (ModelReport, Failed);

async fn checks_in_order(
    client: &Client,
    m: &PlannedModel,
    st: &status::ModelStatus,
    opts: &Options,
    reporter: &dyn Reporter,
    mut report: ModelReport,
) -> Result<ModelReport, Partial> {
    let note = |s: &str| reporter.update(&m.name, s);
    let at = |check: Check| {
        let r = report.clone();
        move |e: SmokeError| (r, Failed::new(check, e))
    };
    if st.state == "not-deployed" {
        let kind = m.layer().serving_kind();
        return Err(at(Check::Pod)(SmokeError::NotDeployed {
            object: format!("{} {}/{}", kind.kind, m.namespace, m.name),
            app: m.app.clone(),
        }));
    }
    if st.paused {
        return Err(at(Check::Pod)(SmokeError::Paused {
            model: m.name.clone(),
        }));
    }
    note("looking for a ready pod");
    let pod = endpoint::ready_pod(client, m, &st.reasons)
        .await
        .map_err(at(Check::Pod))?;
    let key = apikey::read(client, m).await.map_err(at(Check::ApiKey))?;
    let (ep, forward, shown) = open(client, m, &pod, key, &opts.via)
        .await
        .map_err(at(Check::Endpoint))?;
    note(&format!("{} {shown}", report.path));
    report.endpoint = Some(shown);
    let served = ep.runtime.served_name(&m.model);
    let result = http_checks(&ep, served, opts, &note).await;
    // Close the port-forward before anything else happens: no listener or stream outlives a model.
    drop(ep);
    if let Some(pf) = forward {
        pf.close().await;
    }
    match result {
        Ok(c) => Ok(report.passed(&c)),
        Err(f) => Err((report, f)),
    }
}

/// The endpoint the HTTP checks use (with its port-forward, to close afterwards) and how to show it.
async fn open(
    client: &Client,
    m: &PlannedModel,
    pod: &endpoint::ServingPod,
    key: Option<apikey::ApiKey>,
    via: &Via,
) -> Result<(checks::Endpoint, Option<forward::PortForward>, String), SmokeError> {
    match via {
        Via::PortForward => {
            let pf =
                forward::PortForward::start(client, &pod.namespace, &pod.name, pod.port).await?;
            let shown = format!(
                "pod {}/{} port {} via {}",
                pod.namespace,
                pod.name,
                pod.port,
                pf.local_addr()
            );
            let ep = checks::Endpoint {
                http: http_client(true)?,
                base: format!("http://{}", pf.local_addr()),
                host: None,
                key,
                forward: Some(pf.last_error_handle()),
                runtime: crate::serving::runtime::of(&m.model),
            };
            Ok((ep, Some(pf), shown))
        }
        Via::Gateway { domain, .. } => {
            let route = match via.stable_route(m) {
                Some(r) => endpoint::stable_route(client, m, r).await?,
                None => endpoint::gateway_route(client, m, domain.as_deref()).await?,
            };
            let shown = match &route.host {
                Some(h) => format!("{} Host: {h}", route.base),
                None => route.base.clone(),
            };
            let ep = checks::Endpoint {
                http: http_client(false)?,
                base: route.base,
                host: route.host,
                key,
                forward: None,
                runtime: crate::serving::runtime::of(&m.model),
            };
            Ok((ep, None, shown))
        }
    }
}

async fn http_checks(
    ep: &checks::Endpoint,
    served: &str,
    opts: &Options,
    note: &(dyn Fn(&str) + Send + Sync),
) -> Result<checks::Completion, Failed> {
    checks::health(ep, opts.timeout, note).await?;
    note("GET /v1/models");
    checks::models(ep, served, opts.timeout).await?;
    note(if opts.completions {
        "POST /v1/completions (streamed)"
    } else {
        "POST /v1/chat/completions (streamed)"
    });
    checks::completion(ep, served, opts.completions, opts.timeout).await
}

/// The HTTP client: rustls, no redirects (the key goes nowhere else), a bounded connect; no proxy
/// for the loopback port-forward.
fn http_client(loopback: bool) -> Result<reqwest::Client, SmokeError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("platform-smoke/", env!("CARGO_PKG_VERSION")));
    if loopback {
        b = b.no_proxy();
    }
    b.build().map_err(SmokeError::HttpClient)
}
