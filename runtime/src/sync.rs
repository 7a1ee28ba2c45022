//! Locks that survive a panic, and [`Notifier`], the wake-up signal the
//! runtime hands to whatever must wake a waiting thread.
//!
//! The runtime's locks guard bookkeeping that stays consistent between
//! statements (counters, queues, caches), so a thread that panicked while
//! holding one leaves nothing half-written that the next holder could
//! misread; every lock is therefore taken with [`lock`] (or [`read`],
//! [`write`], [`wait`], [`wait_timeout`]), which ignores the poison
//! instead of spreading one panic to every other component.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

/// Locks `mutex`, whether or not a holder panicked.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Read-locks `lock`, whether or not a holder panicked.
pub(crate) fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

/// Write-locks `lock`, whether or not a holder panicked.
pub(crate) fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// Waits on `condvar`, whether or not a holder of the lock panicked.
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(|p| p.into_inner())
}

/// Waits on `condvar` for at most `timeout`, whether or not a holder of
/// the lock panicked.
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(|p| p.into_inner())
        .0
}

/// A wake-up signal: [`Notifier::notify`] tells every thread waiting in
/// [`Notifier::wait`] that something it watches may have changed.
///
/// The runtime makes one per loaded component name, hands it to the
/// [`Broker`](crate::Broker) with the component's
/// [`Subscriber`](crate::broker::Subscriber) (the broker notifies it
/// whenever it queues something for the component, so a server's workers
/// can sleep until there is mail: [`LoadedComponent::mailbox_notifier`](crate::LoadedComponent::mailbox_notifier)),
/// and one per instance, which every completion of that instance's
/// pending operations notifies (a reply stored with
/// [`ReplySlot::fill`](crate::broker::ReplySlot::fill), a network
/// operation ending, a child's output) so that the instance's `poll`
/// wakes.
///
/// A waiter reads [`Notifier::generation`] *before* it checks its
/// condition and passes it to [`Notifier::wait`], so a notification
/// between the check and the wait is not lost:
///
/// ```
/// use std::time::{Duration, Instant};
/// use airssys_runtime::broker::Notifier;
///
/// let notifier = Notifier::new();
/// let seen = notifier.generation();
/// // ... check the condition; nothing there yet ...
/// notifier.notify(); // another thread, in between
/// assert!(notifier.wait(seen, Instant::now() + Duration::from_secs(60)));
/// ```
///
/// A notification with nobody waiting costs one atomic increment and one
/// load.
#[derive(Debug, Default)]
pub struct Notifier {
    /// Counts notifications: a waiter sleeps only while it is unchanged.
    generation: AtomicU64,
    /// Threads waiting (or about to); `notify` skips the lock and the
    /// condvar when there are none.
    sleepers: AtomicUsize,
    /// Guards no data: a waiter holds it from its last look at
    /// `generation` until the condvar releases it, so a `notify` that
    /// takes it cannot slip in between.
    lock: Mutex<()>,
    condvar: Condvar,
}

impl Notifier {
    /// A notifier nobody waits on yet.
    pub const fn new() -> Notifier {
        Notifier {
            generation: AtomicU64::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }

    /// How many notifications there have been: read it before checking
    /// the condition you wait for, and pass it to [`Notifier::wait`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Wakes every thread waiting in [`Notifier::wait`]. Call it after
    /// the change is stored, so a woken thread sees it.
    pub fn notify(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        // Sequentially consistent with `wait`'s increment of `sleepers`
        // before its load of `generation`: either this sees the waiter, or
        // the waiter sees the new generation and does not sleep.
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            drop(lock(&self.lock));
            self.condvar.notify_all();
        }
    }

    /// Sleeps until [`Notifier::notify`] is called after `seen` was read
    /// from [`Notifier::generation`], or until `until`; `true` when
    /// notified (at once when a notification came already).
    pub fn wait(&self, seen: u64, until: Instant) -> bool {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let mut guard = lock(&self.lock);
        let notified = loop {
            if self.generation() != seen {
                break true;
            }
            let Some(left) = until
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                break false;
            };
            guard = wait_timeout(&self.condvar, guard, left);
        };
        drop(guard);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        notified
    }

    /// Whether a thread is waiting (for tests of the wake-up paths).
    #[cfg(test)]
    pub(crate) fn has_waiters(&self) -> bool {
        self.sleepers.load(Ordering::SeqCst) != 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_notification_before_the_wait_is_not_lost() {
        let notifier = Notifier::new();
        let seen = notifier.generation();
        notifier.notify();
        let start = Instant::now();
        assert!(notifier.wait(seen, start + Duration::from_secs(60)));
        assert!(start.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn a_notification_from_another_thread_ends_a_wait() {
        let notifier = Arc::new(Notifier::new());
        let seen = notifier.generation();
        let waker = {
            let notifier = Arc::clone(&notifier);
            std::thread::spawn(move || {
                // Until the waiter is counted, so the condvar is needed.
                while !notifier.has_waiters() {
                    std::thread::yield_now();
                }
                notifier.notify();
            })
        };
        assert!(notifier.wait(seen, Instant::now() + Duration::from_secs(60)));
        waker.join().expect("waker thread");
        assert_ne!(notifier.generation(), seen);
    }

    #[test]
    fn without_a_notification_the_wait_ends_at_its_deadline() {
        let notifier = Notifier::new();
        let seen = notifier.generation();
        assert!(!notifier.wait(seen, Instant::now() + Duration::from_millis(5)));
    }

    #[test]
    fn a_poisoned_lock_is_still_taken() {
        let mutex = Arc::new(Mutex::new(1));
        let holder = Arc::clone(&mutex);
        let _ = std::thread::spawn(move || {
            let _guard = holder.lock().expect("first lock");
            panic!("poisons the lock");
        })
        .join();
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 1);
    }
}

/// A tokio runtime a NATS client made for itself (the broker's or the
/// storage's, when no runtime was given to them): shut down without
/// waiting when dropped, which is allowed from any thread (dropping a
/// runtime inside another one's async context would panic).
#[cfg(feature = "nats")]
#[derive(Debug)]
pub(crate) struct OwnedRuntime(pub(crate) Option<tokio::runtime::Runtime>);

#[cfg(feature = "nats")]
impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `future` on `handle` and waits for it at most `timeout`, from any
/// thread (inside an async context too: the wait is a channel's).
#[cfg(feature = "nats")]
pub(crate) fn bounded<F>(
    handle: &tokio::runtime::Handle,
    timeout: std::time::Duration,
    future: F,
) -> Option<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (done, result) = std::sync::mpsc::sync_channel(1);
    let task = handle.spawn(async move {
        let _ = done.send(future.await);
    });
    let outcome = result.recv_timeout(timeout).ok();
    if outcome.is_none() {
        task.abort();
    }
    outcome
}
