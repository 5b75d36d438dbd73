//! Kubernetes name rules, shared by the config, the catalog and the rendered-object checks (a leaf
//! module: it depends on nothing above `diag`).

use std::path::Path;

use crate::diag::Diagnostic;

/// The diagnostic for `name` at `field` that is not a DNS-1123 label.
pub(crate) fn name_error(file: &Path, field: &str, name: &str) -> Diagnostic {
    Diagnostic::error(format!("`{name}` is not a valid Kubernetes name"))
        .file(file)
        .field(field)
        .help("use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (DNS-1123 label)")
}

/// RFC 1123 label: what Kubernetes accepts for namespaces, Services and most object names.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: labels joined by dots, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}
