//! What kind of failure an error is, and so the exit code (README § Exit codes):
//!
//! | class | exit | meaning |
//! |---|---|---|
//! | [`ErrorClass::Input`] | 1 | invalid input: config, catalog, templates, flags, files; the fix is the user's |
//! | [`ErrorClass::CheckFailed`] | 1 | a check said no: `--check` drift, lint errors, doctor FAIL, the target guard, an audit |
//! | [`ErrorClass::Internal`] | 2 | a bug in platform |
//! | [`ErrorClass::Timeout`] | 3 | a wait reached its deadline |
//! | [`ErrorClass::Remote`] | 4 | the cluster API, the Hub, a registry or a git remote failed or refused; often worth a retry |
//! | [`ErrorClass::Interrupted`] | 130 / 143 | SIGINT / SIGTERM ended the command (128 + the signal's number, as a shell reports a process the signal killed) |
//!
//! Every error type of the library says its class here ([`Classify`]); `cli::report` asks
//! [`class_of`] and prints the chain of causes.

use crate::actions::stage::StageError;
use crate::catalog::CatalogError;
use crate::cluster::ClusterError;
use crate::config::ConfigError;
use crate::diag::{Diagnostic, Diagnostics};
use crate::fsread::ReadError;
use crate::gitops::git::GitError;
use crate::gitops::GitopsError;
use crate::hub::HubError;
use crate::modelcar::ModelcarError;
use crate::render::schema::SchemaError;
use crate::render::TemplateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Input,
    CheckFailed,
    Internal,
    Timeout,
    Remote,
    Interrupted(Signal),
}

impl ErrorClass {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Input | ErrorClass::CheckFailed => 1,
            ErrorClass::Internal => 2,
            ErrorClass::Timeout => 3,
            ErrorClass::Remote => 4,
            ErrorClass::Interrupted(s) => s.exit_code(),
        }
    }
}

pub use crate::signal::Signal;

/// A command stopped by a signal with nothing else to say (e.g. `status --watch`): exit 130/143,
/// no message.
#[derive(Debug, thiserror::Error)]
#[error("interrupted ({0})")]
pub struct Interrupted(pub Signal);

impl Classify for Interrupted {
    fn class(&self) -> ErrorClass {
        ErrorClass::Interrupted(self.0)
    }
}

/// An error that knows its class.
pub trait Classify {
    fn class(&self) -> ErrorClass;
}

/// The error of a module that classifies itself (it uses this module, so this module cannot name
/// it without an import cycle): shown exactly as the error itself, with its causes, in its class.
#[derive(Debug)]
pub struct Classified(ErrorClass, Box<dyn std::error::Error + Send + Sync>);

impl Classified {
    pub fn of<E: Classify + std::error::Error + Send + Sync + 'static>(e: E) -> Classified {
        Classified(e.class(), Box::new(e))
    }
}

impl std::fmt::Display for Classified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.1.fmt(f)
    }
}

impl std::error::Error for Classified {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.source()
    }
}

impl Classify for Classified {
    fn class(&self) -> ErrorClass {
        self.0
    }
}

/// A `--check` that found drift, a lint with errors, a guard or an audit that said no: exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckFailed(pub String);

/// A remote (the cluster API, a Hub, a git remote) failed or refused, as a command sums it up
/// after reporting each failure itself (smoke's models that could not be checked): exit 4.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RemoteFailed(pub String);

/// Invalid input found by a command itself (not by the config or catalog checks): exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// The class of an error: the first error in its chain that knows its class (context added on
/// the way up does not change what failed). An error nobody classified is a bug: Internal.
pub fn class_of(e: &anyhow::Error) -> ErrorClass {
    e.chain()
        .find_map(known_class)
        .unwrap_or(ErrorClass::Internal)
}

fn known_class(e: &(dyn std::error::Error + 'static)) -> Option<ErrorClass> {
    macro_rules! classes {
        ($($t:ty),* $(,)?) => {
            $(if let Some(x) = e.downcast_ref::<$t>() { return Some(x.class()); })*
        };
    }
    classes!(
        Interrupted,
        CheckFailed,
        InputError,
        RemoteFailed,
        ConfigError,
        CatalogError,
        Diagnostics,
        TemplateError,
        SchemaError,
        ReadError,
        GitopsError,
        crate::config::edit::EditError,
        crate::actions::relocate::MoveError,
        crate::actions::rollback::RollbackError,
        crate::actions::model::error::ModelEditError,
        GitError,
        ClusterError,
        StageError,
        HubError,
        ModelcarError,
        crate::s3::S3Error,
        crate::actions::fit::FitCommandError,
        crate::scaffold::ScaffoldError,
        crate::actions::bootstrap::BootstrapError,
        Classified,
    );
    if e.downcast_ref::<std::io::Error>().is_some() {
        // A file the user named could not be read or written (the library wraps its own I/O).
        return Some(ErrorClass::Input);
    }
    None
}

/// The diagnostics an error carries (config and catalog problems, a set of findings), to be
/// printed one per line; `None` for any other error.
pub fn diagnostics_of(e: &anyhow::Error) -> Option<Vec<Diagnostic>> {
    if let Some(ConfigError::Input(d)) = e.downcast_ref() {
        Some(vec![(**d).clone()])
    } else if let Some(ConfigError::Invalid(ds)) = e.downcast_ref() {
        Some(ds.0.clone())
    } else if let Some(CatalogError::Input(d)) = e.downcast_ref() {
        Some(vec![(**d).clone()])
    } else if let Some(CatalogError::Invalid(ds)) = e.downcast_ref() {
        Some(ds.0.clone())
    } else {
        e.downcast_ref::<Diagnostics>().map(|ds| ds.0.clone())
    }
}

/// One line for contexts that show an error inline (doctor's FAIL lines, progress): the message
/// and every cause, joined by `: ` (see [`causes`]).
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    causes(e).join(": ")
}

/// The messages of `e` and of its causes, each once (a message that quotes its cause already is
/// not followed by it), in plain words: a Kubernetes client error is described by
/// [`crate::cluster::api_error`] (its message, reason and code; never a Rust `Debug`, never an
/// exec plugin's output) and ends the list.
pub fn causes(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(c) = cur {
        let (msg, last) = match crate::cluster::api_error::describe_cause(c) {
            Some(plain) => (plain, true),
            None => (c.to_string(), false),
        };
        if !out.iter().any(|shown| shown.contains(&msg)) {
            out.push(msg);
        }
        if last {
            break;
        }
        cur = c.source();
    }
    out
}

impl Classify for CheckFailed {
    fn class(&self) -> ErrorClass {
        ErrorClass::CheckFailed
    }
}

impl Classify for RemoteFailed {
    fn class(&self) -> ErrorClass {
        ErrorClass::Remote
    }
}

impl Classify for InputError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Input
    }
}

macro_rules! input {
    ($($t:ty),*) => {
        $(impl Classify for $t {
            fn class(&self) -> ErrorClass {
                ErrorClass::Input
            }
        })*
    };
}
input!(
    crate::scaffold::ScaffoldError,
    ConfigError,
    CatalogError,
    Diagnostics,
    TemplateError,
    SchemaError,
    ReadError
);

impl Classify for crate::actions::bootstrap::BootstrapError {
    fn class(&self) -> ErrorClass {
        use crate::actions::bootstrap::BootstrapError as E;
        match self {
            E::Checksum { .. } | E::BadManifest { .. } | E::ReadManifest { .. } => {
                ErrorClass::Input
            }
            E::Credential(_) | E::Cache { .. } => ErrorClass::Input,
            E::Download { .. } | E::NotEstablished { .. } => ErrorClass::Remote,
            E::AppsExist { .. } | E::NotOurs { .. } | E::ForeignObjects { .. } => {
                ErrorClass::CheckFailed
            }
            E::UninstallTimeout { .. } => ErrorClass::Timeout,
            E::Cluster(e) => e.class(),
        }
    }
}

impl Classify for GitopsError {
    fn class(&self) -> ErrorClass {
        match self {
            GitopsError::BadPath { .. } => ErrorClass::Internal,
            _ => ErrorClass::Input,
        }
    }
}

impl Classify for GitError {
    fn class(&self) -> ErrorClass {
        match self {
            GitError::Rejected { .. } | GitError::Auth { .. } => ErrorClass::Remote,
            GitError::Git { .. } => ErrorClass::Remote,
            _ => ErrorClass::Input,
        }
    }
}

impl Classify for ClusterError {
    fn class(&self) -> ErrorClass {
        use ClusterError as E;
        match self {
            E::NoKubeconfig { .. } | E::Kubeconfig { .. } | E::NoContext { .. } => {
                ErrorClass::Input
            }
            E::WrongCluster { .. } | E::Unconfirmed { .. } | E::NotDeployed { .. } => {
                ErrorClass::CheckFailed
            }
            E::Timeout { .. } => ErrorClass::Timeout,
            E::Unreachable { .. }
            | E::Api { .. }
            | E::Protocol { .. }
            | E::StuckFinalizer { .. }
            | E::InUse { .. }
            | E::AppFailed { .. } => ErrorClass::Remote,
        }
    }
}

impl Classify for StageError {
    fn class(&self) -> ErrorClass {
        use StageError as E;
        match self {
            E::ModelRunning { .. }
            | E::BadPath(_)
            | E::NotAFile { .. }
            | E::BadIndex { .. }
            | E::MissingShards { .. }
            | E::Io { .. } => ErrorClass::Input,
            E::PodStartTimeout { .. } => ErrorClass::Timeout,
            E::PodNotRunning { .. }
            | E::Command { .. }
            | E::Stream(_)
            | E::HashMismatch { .. }
            | E::Api { .. } => ErrorClass::Remote,
            E::Interrupted(s) => ErrorClass::Interrupted(*s),
            E::NotRendered { .. }
            | E::NoModelFiles(_)
            | E::NotPreStaged { .. }
            | E::RevisionForS3 { .. } => ErrorClass::Input,
            E::Hub(e) => e.class(),
            E::S3(e) => e.class(),
            E::Cluster(e) => e.class(),
            E::Internal(_) => ErrorClass::Internal,
        }
    }
}

impl Classify for HubError {
    fn class(&self) -> ErrorClass {
        use HubError as E;
        match self {
            E::InvalidRepo { .. }
            | E::InvalidEndpoint { .. }
            | E::InvalidGlob { .. }
            | E::Unauthorized { .. }
            | E::RepoNotFound { .. }
            | E::Io { .. }
            | E::TokenFile { .. }
            | E::MalformedToken { .. }
            | E::Request { .. }
            | E::NoCacheDir { .. }
            | E::WouldOverwrite { .. } => ErrorClass::Input,
            E::InvalidPath { .. }
            | E::FileNotFound { .. }
            | E::Http { .. }
            | E::RetriesExhausted { .. }
            | E::Protocol { .. }
            | E::BadMetadata { .. }
            | E::HashMismatch { .. }
            | E::Md5Mismatch { .. }
            | E::Refused { .. }
            | E::SizeMismatch { .. } => ErrorClass::Remote,
            E::DeadlineExceeded { .. } => ErrorClass::Timeout,
            E::Client(_) | E::Task(_) => ErrorClass::Internal,
            E::Several { first, .. } => first.class(),
        }
    }
}

impl Classify for ModelcarError {
    fn class(&self) -> ErrorClass {
        use ModelcarError as E;
        match self {
            E::BadReference(_)
            | E::DockerConfig { .. }
            | E::CredentialHelper { .. }
            | E::TooLarge { .. }
            | E::BadSource { .. }
            | E::BadBase { .. }
            | E::Io { .. } => ErrorClass::Input,
            E::Local(e) => e.class(),
            E::Hub(e) => e.class(),
            E::Unreachable { .. } | E::Auth { .. } | E::Registry { .. } | E::Protocol { .. } => {
                ErrorClass::Remote
            }
            E::Internal(_) => ErrorClass::Internal,
        }
    }
}

impl Classify for crate::actions::fit::FitCommandError {
    fn class(&self) -> ErrorClass {
        use crate::actions::fit::FitCommandError as E;
        match self {
            E::Model { .. } => ErrorClass::Input,
            E::Hub(e) => e.class(),
            E::Cluster(e) => e.class(),
        }
    }
}

impl Classify for crate::s3::S3Error {
    fn class(&self) -> ErrorClass {
        use crate::s3::S3Error as E;
        match self {
            E::InvalidSource { .. }
            | E::InvalidEndpoint { .. }
            | E::IncompleteCredentials { .. }
            | E::CredentialsFile { .. }
            | E::NoSuchProfile { .. }
            | E::IncompleteProfile { .. }
            | E::NoneSelected { .. } => ErrorClass::Input,
            E::AccessDenied { .. }
            | E::NoSuchBucket { .. }
            | E::NoSuchKey { .. }
            | E::NoObjects { .. }
            | E::UnsafeKey { .. }
            | E::TooManyObjects { .. }
            | E::BadListing { .. }
            | E::Http { .. } => ErrorClass::Remote,
            E::NoAnswer { timed_out, .. } => {
                if *timed_out {
                    ErrorClass::Timeout
                } else {
                    ErrorClass::Remote
                }
            }
            E::Download(e) => e.class(),
        }
    }
}

impl Classify for crate::config::edit::EditError {
    fn class(&self) -> ErrorClass {
        use crate::config::edit::EditError as E;
        match self {
            E::NameField { .. } | E::InvalidKey { .. } | E::Internal { .. } => ErrorClass::Internal,
            _ => ErrorClass::Input,
        }
    }
}

impl Classify for crate::actions::relocate::MoveError {
    fn class(&self) -> ErrorClass {
        use crate::actions::relocate::MoveError as E;
        match self {
            E::Refused(_) | E::Failed(_) => ErrorClass::CheckFailed,
            E::Cluster(e) => e.class(),
            E::Git(e) => e.class(),
            E::Gitops(e) => e.class(),
            E::Stage(e) => e.class(),
            E::Edit(e) => e.class(),
            E::Other(e) => class_of(e),
        }
    }
}

impl Classify for crate::actions::model::error::ModelEditError {
    fn class(&self) -> ErrorClass {
        use crate::actions::model::error::ModelEditError as E;
        match self {
            E::Read { .. } | E::Unknown { .. } | E::Invalid(_) => ErrorClass::Input,
            E::Edit { source, .. } => source.class(),
            E::Write { .. } => ErrorClass::Input,
            E::Gitops(e) => e.class(),
        }
    }
}

impl Classify for crate::actions::rollback::RollbackError {
    fn class(&self) -> ErrorClass {
        use crate::actions::rollback::RollbackError as E;
        match self {
            E::Refused(_) => ErrorClass::CheckFailed,
            E::Git(e) => e.class(),
            E::Gitops(e) => e.class(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_added_on_the_way_up_keeps_the_class() {
        let e = anyhow::Error::new(ClusterError::Timeout {
            what: "x".into(),
            pending: vec![],
        })
        .context("bringing up ai-dev");
        assert_eq!(class_of(&e), ErrorClass::Timeout);
        assert_eq!(
            class_of(&anyhow::anyhow!("nobody knows me")),
            ErrorClass::Internal
        );
        assert_eq!(ErrorClass::Remote.exit_code(), 4);
    }

    #[test]
    fn a_signal_exits_as_a_shell_reports_it() {
        let int = anyhow::Error::new(StageError::Interrupted(Signal::Interrupt))
            .context("staging qwen-cpu");
        assert_eq!(class_of(&int).exit_code(), 130);
        let term = anyhow::Error::new(Interrupted(Signal::Terminate));
        assert_eq!(class_of(&term).exit_code(), 143);
        let late = StageError::PodStartTimeout {
            pod: "p".into(),
            timeout: std::time::Duration::from_secs(3),
            why: "not scheduled".into(),
        };
        assert_eq!(late.class(), ErrorClass::Timeout);
    }

    #[test]
    fn one_line_keeps_every_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = anyhow::Error::new(io).context("listing pods");
        let boxed: &(dyn std::error::Error + 'static) = e.as_ref();
        assert_eq!(one_line(boxed), "listing pods: connection refused");
    }
}
