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
//! - `poll` checks every target; when none is ready it sleeps on the
//!   instance's [`Notifier`] (`HostState::wake`, one per instance, handed
//!   to whatever completes one of its operations), which is notified right
//!   after a completion is stored:
//!   - network operations: their task, when it finishes;
//!   - child output and exit: the child's I/O thread, on new bytes, at
//!     the end of a stream, and (Linux) when the child's pidfd reports
//!     its exit (read with `waitid(WNOWAIT)`: nothing is reaped);
//!   - a reply: [`ReplySlot::fill`](crate::broker::ReplySlot::fill), the
//!     one place where every answer, remote error, dead end of an
//!     unloaded responder ... is stored; the slot carries the notifier of
//!     the instance that made the request, so the broker that fills it
//!     needs nothing of the runtime's.
//!
//!   A notification with nobody waiting costs one atomic increment and
//!   one load, and wakes only the instance whose operation completed. As
//!   a safety net for anything else (a reply's deadline passing, a
//!   child's exit where no pidfd is available) `poll` also re-checks with
//!   a backoff from [`FIRST_BACKOFF`] doubling to [`MAX_BACKOFF`].
//!   Each sleep and the end of each wait is a `trace` event of this
//!   module (`phase = "sleep"`, then `phase = "ready"` with `woken_by =
//!   "wake" | "timer" | "start"`), which tests use to tell a wake from a
//!   timer.
//! - Time: a wait never outlasts the component's time limit for the
//!   current call (`limits.cpu_time_ms`, counted from the start of the
//!   call into the component, as the epoch deadline is): when it passes
//!   with nothing ready, `poll` ends the call with the same
//!   [`LimitExceeded::CpuTime`] error the epoch interruption gives. A
//!   component blocked in `poll` without a timeout therefore never holds
//!   the host longer than its time limit.
//! - The waiting component's thread sleeps while it waits; other
//!   components run on their own threads.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use wasmtime::component::Resource;

use super::bindings::airssys::core::poll::{Error, Host, HostPollable};
use super::state::HostState;
use crate::error::LimitExceeded;
#[cfg(doc)]
use crate::sync::Notifier;

/// First re-check interval of a `poll` that found nothing ready.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_micros(50);
/// Largest re-check interval (the worst extra latency for an operation
/// that completes without notifying the instance).
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

    /// When the current call into the component must end (every wait of
    /// the guest, here and in WASI, ends by then).
    pub(crate) fn call_deadline(&self) -> Instant {
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
        // How the last sleep ended (for the trace event).
        let mut woken_by = "start";
        loop {
            // Read before checking, so a completion between the check and
            // the sleep is not missed.
            let seen = self.wake.generation();
            let ready = self.ready_targets(&targets)?;
            if !ready.is_empty() {
                tracing::trace!(phase = "ready", woken_by, "poll found a target ready");
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
            tracing::trace!(
                phase = "sleep",
                backoff_us = u64::try_from(backoff.as_micros()).unwrap_or(u64::MAX),
                "poll sleeps"
            );
            woken_by = if self.wake.wait(seen, until) {
                "wake"
            } else {
                "timer"
            };
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
