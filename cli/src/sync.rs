//! Locks that survive a panic. The command's locks guard values replaced
//! whole (the last delivery, the events of a call, the policy in force), so
//! a thread that panicked while holding one leaves nothing half-written;
//! every lock is taken with [`lock`], which ignores the poison instead of
//! turning one panic into another (the runtime's `sync::lock` is the same).

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, whether or not a holder panicked.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
