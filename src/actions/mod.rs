//! What a user runs against a cluster, one module per action (the way helm's `pkg/action` sits on
//! `pkg/kube`): each takes an options struct and the cluster client (`crate::cluster`: target,
//! kinds, apply, observe, watch, health) and returns a typed outcome, reporting progress through
//! [`crate::report::Reporter`]. What a model looks like on its layer comes from
//! [`crate::serving`]; the CLI (`crate::cli`) parses, calls one action and prints.

pub mod argocd_ui;
pub mod bootstrap;
pub mod doctor;
pub mod fit;
pub mod livediff;
pub mod model;
pub mod pause;
pub mod relocate;
pub mod rollback;
pub mod route;
pub mod s3_secret;
pub mod servingpod;
pub mod smoke;
pub mod stage;
pub mod status;
pub mod teardown;
pub mod up;
