//! `airssys:core/poll`: pollables for every `pending-*` resource, and
//! `poll` over a list of them.
//!
//! - A [`Pollable`] watches its parent through a [`Weak`] reference to a
//!   readiness probe the parent alone owns ([`Readiness`]): `ready` never
//!   waits, and once the parent is dropped the probe is gone and the
//!   pollable reports ready (the operation can no longer make progress, so
//!   a waiting component is released instead of stuck). A pollable never
//!   refers to a handle number, so a handle number reused after the parent
//!   was dropped cannot be confused with it.
//! - `poll` checks every target; when none is ready it waits, woken early
//!   by [`wake`] (helper threads call it when an operation completes) and
//!   otherwise re-checking with a backoff from [`FIRST_BACKOFF`] doubling to
//!   [`MAX_BACKOFF`] (a child's exit and a reply are only noticed this way).
//! - Time: a wait never outlasts the component's time limit for the
//!   current call (`limits.cpu_time_ms`, counted from the start of the
//!   call into the component, as the epoch deadline is): when it passes
//!   with nothing ready, `poll` ends the call with the same
//!   [`LimitExceeded::CpuTime`] error the epoch interruption gives. A
//!   component blocked in `poll` without a timeout therefore never holds
//!   the host longer than its time limit.
//! - The waiting component's thread sleeps while it waits; other
//!   components run on their own threads.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use wasmtime::component::Resource;

use super::bindings::airssys::core::poll::{Error, Host, HostPollable};
use super::state::HostState;
use crate::error::LimitExceeded;

/// First re-check interval of a `poll` that found nothing ready.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_micros(50);
/// Largest re-check interval (the worst extra latency for an operation
/// that completes without calling [`wake`]).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(5);
/// Most pollables one `poll` call accepts.
pub(crate) const MAX_TARGETS: usize = 4096;

/// Whether a pending operation has finished. Implemented by the state each
/// `pending-*` resource shares with its pollables; must never wait.
pub(crate) trait Readiness: Send + Sync + std::fmt::Debug {
    /// `true` once the parent's `get` would answer something other than
    /// `ok(none)`.
    fn is_ready(&self) -> bool;
}

/// The host side of a `pollable` handle.
#[derive(Debug)]
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Pollable {
    watch: Watch,
}

#[derive(Debug)]
enum Watch {
    /// The operation completed when it was started (filesystem reads and
    /// writes).
    Always,
    /// The parent's probe; gone once the parent is dropped.
    Parent(Weak<dyn Readiness>),
}

impl Pollable {
    /// A pollable for an operation that is already complete.
    pub(crate) fn ready_now() -> Pollable {
        Pollable {
            watch: Watch::Always,
        }
    }

    /// A pollable watching `probe`, which its parent resource must hold
    /// as the only strong reference (so dropping the parent ends the
    /// watch).
    pub(crate) fn watching<T: Readiness + 'static>(probe: &Arc<T>) -> Pollable {
        let weak: Weak<T> = Arc::downgrade(probe);
        let weak: Weak<dyn Readiness> = weak;
        Pollable {
            watch: Watch::Parent(weak),
        }
    }

    /// Whether the watched operation is ready; `true` when its parent is
    /// gone.
    pub(crate) fn is_ready(&self) -> bool {
        match &self.watch {
            Watch::Always => true,
            Watch::Parent(probe) => probe.upgrade().is_none_or(|p| p.is_ready()),
        }
    }
}

/// Counts completions, so a waiting `poll` wakes up without delay.
static WAKE: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

fn generation() -> u64 {
    *WAKE.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// Tells waiting `poll` calls that some operation may have completed.
pub(crate) fn wake() {
    let mut generation = WAKE.0.lock().unwrap_or_else(|p| p.into_inner());
    *generation = generation.wrapping_add(1);
    drop(generation);
    WAKE.1.notify_all();
}

/// Sleeps until `until` or until [`wake`] is called after `seen` was read.
fn wait(seen: u64, until: Instant) {
    let mut generation = WAKE.0.lock().unwrap_or_else(|p| p.into_inner());
    while *generation == seen {
        let Some(left) = until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return;
        };
        generation = WAKE
            .1
            .wait_timeout(generation, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

impl HostPollable for HostState {
    fn ready(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&pollable)?.is_ready())
    }

    fn drop(&mut self, pollable: Resource<Pollable>) -> wasmtime::Result<()> {
        self.table.delete(pollable)?;
        Ok(())
    }
}

impl HostState {
    /// The indices of the ready targets.
    fn ready_targets(&self, targets: &[Resource<Pollable>]) -> wasmtime::Result<Vec<u32>> {
        let mut ready = Vec::new();
        for (index, target) in (0u32..).zip(targets) {
            if self.table.get(target)?.is_ready() {
                ready.push(index);
            }
        }
        Ok(ready)
    }

    /// When the current call into the component must end.
    fn call_deadline(&self) -> Instant {
        let now = Instant::now();
        self.call_deadline.unwrap_or_else(|| {
            now.checked_add(self.info.limits.cpu_time)
                .unwrap_or(now + Duration::from_secs(86_400))
        })
    }
}

impl Host for HostState {
    fn poll(
        &mut self,
        targets: Vec<Resource<Pollable>>,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<u32>, Error>> {
        if targets.is_empty() {
            return Ok(Err(Error::InvalidInput(
                "`poll` needs at least one pollable".into(),
            )));
        }
        if targets.len() > MAX_TARGETS {
            return Ok(Err(Error::InvalidInput(format!(
                "`poll` accepts at most {MAX_TARGETS} pollables per call, not {}",
                targets.len()
            ))));
        }
        // Fast path: something is ready, or the caller does not wait.
        let ready = self.ready_targets(&targets)?;
        if !ready.is_empty() || timeout_ms == Some(0) {
            return Ok(Ok(ready));
        }
        let start = Instant::now();
        // `None` (or a timeout too far to represent): only the call's time
        // limit ends the wait.
        let timeout = timeout_ms.and_then(|ms| start.checked_add(Duration::from_millis(ms)));
        let limit = self.call_deadline();
        let mut backoff = FIRST_BACKOFF;
        loop {
            // Read before checking, so a completion between the check and
            // the wait is not missed.
            let seen = generation();
            let ready = self.ready_targets(&targets)?;
            if !ready.is_empty() {
                return Ok(Ok(ready));
            }
            let now = Instant::now();
            if timeout.is_some_and(|t| now >= t) {
                return Ok(Ok(Vec::new()));
            }
            if now >= limit {
                return Err(wasmtime::Error::new(LimitExceeded::CpuTime {
                    component: self.name().to_owned(),
                    limit: self.info.limits.cpu_time,
                }));
            }
            let mut until = (now + backoff).min(limit);
            if let Some(t) = timeout {
                until = until.min(t);
            }
            wait(seen, until);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
