//! `platform`: render the GitOps tree of an LLM-serving platform on Kubernetes and drive its cluster.
//!
//! Data flows `EnvConfig` → `Plan` → `RenderedTree` → `ChangeSet`; everything here is synchronous
//! and deterministic.

pub mod actions;
pub mod alloc;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod consts;
pub mod diag;
pub mod envs;
pub mod error;
pub mod fit;
pub mod fsread;
pub mod gitops;
pub mod hub;
pub mod layout;
pub mod lint;
pub mod modelcar;
pub mod names;
pub mod parallel;
pub mod pipeline;
pub mod plan;
pub mod render;
pub mod repo;
pub mod report;
pub mod s3;
pub mod scaffold;
pub mod serving;
pub mod signal;
pub mod sync;
pub mod text;
pub mod ui;
pub mod url;
