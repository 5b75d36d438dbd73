use std::sync::Arc;

use super::State;

pub async fn run(_state: Arc<State>) {}
