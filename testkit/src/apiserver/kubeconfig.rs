//! A kubeconfig pointing at the server.

use std::path::Path;

/// Kubeconfig YAML: cluster, context and user all named `name`, current-context set.
pub fn render(name: &str, server: &str) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {n}\n  cluster:\n    server: {s}\ncontexts:\n- name: {n}\n  context:\n    cluster: {n}\n    user: {n}\n    namespace: default\ncurrent-context: {n}\nusers:\n- name: {n}\n  user:\n    token: test-apiserver-token\npreferences: {{}}\n",
        n = q(name),
        s = q(server),
    )
}

/// Writes the kubeconfig (parent directories created).
pub fn write(path: &Path, name: &str, server: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    std::fs::write(path, render(name, server))
}
