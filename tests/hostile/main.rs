//! The hostile-input and fault probe of issue 19 as a table-driven suite, so the next probe starts
//! from these cases: hostile servers (smoke), hostile credentials and API errors, hostile files and
//! arguments, and stage-model's signals and deadlines. Cases that need a real control plane live in
//! tests/realkube.rs; each module's table names the defect it covers (issue 19, High/Medium/Low N).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // tests, benches and examples: a panic is the failure report, and they print on purpose

#[path = "../common/mod.rs"]
mod common;

mod credentials;
mod files;
mod smoke;
mod stage;
