//! The cluster client of one command: the Kubernetes client and the [`Retry`] policy its requests
//! follow (request timeout, where retry warnings go). Built once per command from the target and the
//! command's flags and reporter, and passed to every library call that talks to the cluster.

use std::future::Future;

use super::retry::{self, Retry};

#[derive(Clone)]
pub struct Client {
    kube: kube::Client,
    retry: Retry,
}

impl Client {
    pub fn new(kube: kube::Client, retry: Retry) -> Client {
        Client { kube, retry }
    }

    /// The Kubernetes client (cheap to clone: a handle), for building an `Api`.
    pub fn kube(&self) -> kube::Client {
        self.kube.clone()
    }

    /// How long one request may take (`--request-timeout`).
    pub fn request_timeout(&self) -> std::time::Duration {
        self.retry.request_timeout()
    }

    /// Run one API call under this command's retry policy (see [`retry::retry`]).
    pub async fn retry<T, F, Fut>(&self, f: F) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        retry::retry(&self.retry, f).await
    }
}

impl From<kube::Client> for Client {
    /// The default policy: 30 s per request, warnings nowhere (tests, benches, library users).
    fn from(kube: kube::Client) -> Client {
        Client::new(kube, Retry::default())
    }
}
