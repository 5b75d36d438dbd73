//! The test kit of `platform`, compiled once and shared by the integration tests, the benches and
//! the `test-apiserver` example (it was included with `#[path]` into each, and compiled six times):
//!
//! - [`apiserver`]: our own Kubernetes REST server for what a kubelet-less cluster cannot do (exec,
//!   volumes, port-forward) and for fault injection;
//! - [`realkube`]: the real control plane of `../shared/realkube`, one per test binary;
//! - [`operators`]: Argo CD, KServe, a node and a volume provisioner played as API clients;
//! - [`hub`]: a Hugging Face Hub emulator with faults;
//! - [`openai`]: a fake OpenAI-compatible server (vLLM) for `platform smoke`.

pub mod apiserver;
pub mod hub;
pub mod openai;
pub mod operators;
pub mod realkube;
pub mod registry;

/// A test needs something the project's setup installs (README § Set up; `.ci/run` installs it):
/// fail with what is missing and the fix. Tests never print `SKIPPED` and pass.
pub fn missing_prerequisite(what: &str, fix: &str) -> ! {
    panic!("missing test prerequisite: {what}; {fix}")
}

/// A mutex's guard, also after a panic elsewhere poisoned it (a test double keeps serving).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
