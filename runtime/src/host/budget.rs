//! What one instance may make the host hold on its behalf, beyond its own
//! linear memory: bytes of results it has not collected yet
//! (`limits.held_bytes`) and operations pending at once
//! (`limits.max_pending`).
//!
//! A service reserves before it starts work ([`Budget::reserve`]): one
//! pending slot and the most bytes the result can take (a read of `len`
//! bytes reserves `len`). The returned [`Hold`] travels with the result,
//! to a helper thread if need be, and gives everything back when dropped;
//! [`Hold::shrink_to`] returns what a shorter result did not need, and
//! [`Hold::release_bytes`] what the component collected (the bytes are then
//! in its own memory, under `limits.memory_bytes`). Counting is atomic, so
//! a helper thread may shrink or drop its hold while the instance works.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::LimitExceeded;
use crate::policy::ResolvedLimits;

/// The held-result budget of one instance. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    inner: Arc<Counters>,
}

#[derive(Debug)]
struct Counters {
    component: Arc<str>,
    bytes: AtomicU64,
    max_bytes: u64,
    pending: AtomicU32,
    max_pending: u32,
}

/// A reservation against a [`Budget`]: given back when dropped.
#[derive(Debug)]
#[must_use = "a hold gives its reservation back when dropped"]
pub(crate) struct Hold {
    inner: Arc<Counters>,
    bytes: u64,
    pending: bool,
}

impl Budget {
    /// An empty budget with the limits of `component`.
    pub(crate) fn new(component: &str, limits: &ResolvedLimits) -> Budget {
        Budget {
            inner: Arc::new(Counters {
                component: component.into(),
                bytes: AtomicU64::new(0),
                max_bytes: limits.held_bytes,
                pending: AtomicU32::new(0),
                max_pending: limits.max_pending,
            }),
        }
    }

    /// Reserves one pending operation and `bytes` for its result.
    ///
    /// # Errors
    ///
    /// [`LimitExceeded::Pending`] when the instance already has
    /// `limits.max_pending` operations pending, [`LimitExceeded::HeldBytes`]
    /// when `bytes` more would pass `limits.held_bytes`. Nothing is
    /// reserved then.
    pub(crate) fn reserve(&self, bytes: u64) -> Result<Hold, LimitExceeded> {
        let c = &self.inner;
        c.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < c.max_pending).then_some(n + 1)
            })
            .map_err(|_| LimitExceeded::Pending {
                component: c.component.to_string(),
                limit: c.max_pending,
            })?;
        let hold = Hold {
            inner: Arc::clone(c),
            bytes: 0,
            pending: true,
        };
        hold.grow(bytes)
    }

    /// Reserves `bytes` without a pending slot: for results that belong to
    /// a handle rather than to one operation (a child's buffered output).
    ///
    /// # Errors
    ///
    /// [`LimitExceeded::HeldBytes`] as [`Budget::reserve`].
    pub(crate) fn reserve_bytes(&self, bytes: u64) -> Result<Hold, LimitExceeded> {
        Hold {
            inner: Arc::clone(&self.inner),
            bytes: 0,
            pending: false,
        }
        .grow(bytes)
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> u64 {
        self.inner.bytes.load(Ordering::Acquire)
    }

    /// Operations pending now.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> u32 {
        self.inner.pending.load(Ordering::Acquire)
    }
}

impl Hold {
    /// Adds `bytes` to this hold.
    ///
    /// # Errors
    ///
    /// [`LimitExceeded::HeldBytes`] when the instance's total would pass
    /// `limits.held_bytes`; the hold is then dropped (everything it held
    /// given back).
    pub(crate) fn grow(mut self, bytes: u64) -> Result<Hold, LimitExceeded> {
        self.try_grow(bytes)?;
        Ok(self)
    }

    /// Adds `bytes` to this hold in place.
    ///
    /// # Errors
    ///
    /// [`LimitExceeded::HeldBytes`]; the hold keeps what it had.
    pub(crate) fn try_grow(&mut self, bytes: u64) -> Result<(), LimitExceeded> {
        let c = &self.inner;
        let mut wanted = 0;
        c.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                wanted = n.saturating_add(bytes);
                (wanted <= c.max_bytes).then_some(wanted)
            })
            .map_err(|_| LimitExceeded::HeldBytes {
                component: c.component.to_string(),
                limit: c.max_bytes,
                wanted,
            })?;
        self.bytes += bytes;
        Ok(())
    }

    /// Gives back what this hold has beyond `bytes` (the result turned out
    /// shorter than reserved).
    pub(crate) fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            self.inner
                .bytes
                .fetch_sub(self.bytes - bytes, Ordering::AcqRel);
            self.bytes = bytes;
        }
    }

    /// Gives back every byte (the component collected the result); the
    /// pending slot stays until the hold is dropped.
    pub(crate) fn release_bytes(&mut self) {
        self.shrink_to(0);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release_bytes();
        if self.pending {
            self.inner.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn budget(bytes: u64, pending: u32) -> Budget {
        let limits = ResolvedLimits::default().with(
            crate::policy::Limits::new()
                .held_bytes(bytes)
                .max_pending(pending),
        );
        Budget::new("probe", &limits)
    }

    #[test]
    fn bytes_are_counted_and_given_back() {
        let b = budget(100, 10);
        let mut a = b.reserve(60).unwrap();
        let err = b.reserve(41).unwrap_err();
        assert!(
            matches!(
                err,
                LimitExceeded::HeldBytes {
                    limit: 100,
                    wanted: 101,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("limits.held_bytes"), "{err}");
        assert_eq!(b.pending(), 1, "a refused reservation holds nothing");
        a.shrink_to(20);
        let c = b.reserve(80).unwrap();
        assert_eq!(b.held_bytes(), 100);
        a.release_bytes();
        assert_eq!(b.held_bytes(), 80);
        drop(c);
        drop(a);
        assert_eq!((b.held_bytes(), b.pending()), (0, 0));
    }

    #[test]
    fn pending_slots_are_capped() {
        let b = budget(u64::MAX, 2);
        let one = b.reserve(0).unwrap();
        let _two = b.reserve(0).unwrap();
        let err = b.reserve(0).unwrap_err();
        assert!(err.to_string().contains("limits.max_pending"), "{err}");
        // Bytes without a slot are still possible.
        let _bytes = b.reserve_bytes(10).unwrap();
        drop(one);
        assert!(b.reserve(0).is_ok());
    }

    #[test]
    fn a_hold_moves_to_another_thread() {
        let b = budget(1000, 4);
        let hold = b.reserve(500).unwrap();
        std::thread::spawn(move || {
            let mut hold = hold;
            hold.shrink_to(10);
            hold
        })
        .join()
        .map(drop)
        .unwrap();
        assert_eq!((b.held_bytes(), b.pending()), (0, 0));
    }
}
