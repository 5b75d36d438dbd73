//! Locking shared state between threads.

use std::sync::{Mutex, MutexGuard};

/// A mutex's guard; a poisoned one (a thread panicked while holding it) is taken as it is. Only
/// for state that stays valid between statements, which is all the state this crate keeps under
/// a lock: a panic elsewhere is reported as such, never turned into a second one here.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
