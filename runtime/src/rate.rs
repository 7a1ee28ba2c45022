//! Per-second quotas of one component: log records (and the WASI output
//! that joins them) and audit records of denials.
//!
//! A [`RateWindow`] counts what a component used in the current window of
//! one second against up to `N` quotas at once (records and bytes, say).
//! Whatever does not fit is dropped and counted; the count is handed back
//! once, either when the next window starts or when the caller asks at the
//! end of a call into the component ([`RateWindow::take_dropped`]), so the
//! host can say how much it dropped instead of dropping silently.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The length of one window.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);

/// Counters of one component against `N` per-second quotas.
#[derive(Debug, Default)]
pub(crate) struct RateWindow<const N: usize> {
    state: Mutex<State<N>>,
    /// Whether a drop was counted since `dropped` was last emptied: set
    /// under the lock with the count, so [`RateWindow::take_dropped`] at
    /// the end of every call skips the lock while nothing was dropped.
    pending: AtomicBool,
}

#[derive(Debug)]
struct State<const N: usize> {
    /// When the current window started (`None` before the first charge).
    start: Option<Instant>,
    /// Units used in the current window, per quota.
    used: [u64; N],
    /// Items dropped and not reported yet, per quota that refused them.
    dropped: [u64; N],
}

impl<const N: usize> Default for State<N> {
    fn default() -> Self {
        State {
            start: None,
            used: [0; N],
            dropped: [0; N],
        }
    }
}

/// What [`RateWindow::charge`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Charge<const N: usize> {
    /// Whether the item fits (and was counted).
    pub(crate) admitted: bool,
    /// Items dropped in a window that has just ended, per quota, when there
    /// were any: the caller says so now.
    pub(crate) ended: Option<[u64; N]>,
}

impl<const N: usize> RateWindow<N> {
    /// Counts one item costing `cost[i]` units of quota `i` (at most
    /// `per_second[i]` per window). It is admitted only when every quota
    /// has room; otherwise nothing is charged and the drop is counted
    /// against the first quota that refused it.
    pub(crate) fn charge(&self, per_second: [u64; N], cost: [u64; N]) -> Charge<N> {
        let now = Instant::now();
        let mut state = crate::sync::lock(&self.state);
        let mut ended = None;
        if state
            .start
            .is_none_or(|start| now.duration_since(start) >= WINDOW)
        {
            ended = take(&mut state.dropped);
            state.start = Some(now);
            state.used = [0; N];
        }
        let refused = (0..N).find(|&i| state.used[i].saturating_add(cost[i]) > per_second[i]);
        match refused {
            None => {
                for (used, cost) in state.used.iter_mut().zip(cost) {
                    *used += cost;
                }
                Charge {
                    admitted: true,
                    ended,
                }
            }
            Some(i) => {
                state.dropped[i] = state.dropped[i].saturating_add(1);
                self.pending.store(true, Ordering::Release);
                Charge {
                    admitted: false,
                    ended,
                }
            }
        }
    }

    /// The items dropped and not reported yet, per quota (and forgets
    /// them); `None` when there are none.
    pub(crate) fn take_dropped(&self) -> Option<[u64; N]> {
        // A drop counted by this thread is seen here; one counted by
        // another thread at this moment is handed back by the next call,
        // as it would be had it come just after the lock.
        if !self.pending.load(Ordering::Acquire) {
            return None;
        }
        let mut state = crate::sync::lock(&self.state);
        self.pending.store(false, Ordering::Release);
        take(&mut state.dropped)
    }
}

/// What the instances of one component share: its log budget and the
/// count of its live instances.
#[derive(Debug, Default)]
pub(crate) struct ComponentMeters {
    /// Log records (stdout and stderr lines included) and their bytes in
    /// the current window (`limits.log_lines_per_second`,
    /// `limits.log_bytes_per_second`).
    pub(crate) log: RateWindow<2>,
    /// Instances alive (`limits.max_instances`).
    pub(crate) live: AtomicU32,
}

/// The [`ComponentMeters`] of each component name of one runtime.
#[derive(Debug, Default)]
pub(crate) struct Meters {
    by_name: Mutex<HashMap<String, Arc<ComponentMeters>>>,
}

impl Meters {
    /// The meters of `component` (created on first use).
    pub(crate) fn of(&self, component: &str) -> Arc<ComponentMeters> {
        let mut map = crate::sync::lock(&self.by_name);
        match map.get(component) {
            Some(meters) => Arc::clone(meters),
            None => {
                let meters = Arc::new(ComponentMeters::default());
                map.insert(component.to_owned(), Arc::clone(&meters));
                meters
            }
        }
    }

    /// Forgets `component` (its last loaded copy is gone, so no instance
    /// holds its meters any more).
    pub(crate) fn forget(&self, component: &str) {
        crate::sync::lock(&self.by_name).remove(component);
    }
}

fn take<const N: usize>(dropped: &mut [u64; N]) -> Option<[u64; N]> {
    if dropped.iter().all(|d| *d == 0) {
        return None;
    }
    Some(std::mem::replace(dropped, [0; N]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_each_quota_then_counts_the_drops() {
        let window = RateWindow::<2>::default();
        // Three records of 10 bytes fit 3 records / 100 bytes ...
        for _ in 0..3 {
            assert!(window.charge([3, 100], [1, 10]).admitted);
        }
        // ... the fourth does not (records), nor does a big one (bytes
        // would fit the first quota's count check, but it comes first).
        assert!(!window.charge([3, 100], [1, 10]).admitted);
        assert!(!window.charge([3, 100], [1, 10]).admitted);
        assert_eq!(window.take_dropped(), Some([2, 0]));
        assert_eq!(window.take_dropped(), None);
    }

    #[test]
    fn the_byte_quota_refuses_on_its_own() {
        let window = RateWindow::<2>::default();
        assert!(window.charge([10, 100], [1, 90]).admitted);
        assert!(!window.charge([10, 100], [1, 20]).admitted);
        assert!(window.charge([10, 100], [1, 10]).admitted);
        assert_eq!(window.take_dropped(), Some([0, 1]));
    }

    #[test]
    fn a_new_window_reports_the_drops_of_the_last() {
        let window = RateWindow::<1>::default();
        assert!(window.charge([1], [1]).admitted);
        assert!(!window.charge([1], [1]).admitted);
        // Age the window instead of sleeping through it.
        window.state.lock().expect("lock").start = Instant::now().checked_sub(WINDOW);
        let next = window.charge([1], [1]);
        assert!(next.admitted);
        assert_eq!(next.ended, Some([1]));
        assert_eq!(window.take_dropped(), None);
    }
}
