//! Driving the cluster: target guard, apply, sync, wait, status, pause/resume, teardown.

pub mod health;
