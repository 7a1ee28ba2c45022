//! Where network operations run, and what each one holds while it runs.
//!
//! - **One small shared tokio runtime** ([`handle`]): two worker threads
//!   named `airssys-net`, created on the first network operation and kept
//!   for the life of the process. Every operation is a task on it, so an
//!   operation costs no thread of its own (the host's thread count does not
//!   grow with what components start), a timeout is a timer, and
//!   cancelling is dropping the task. One runtime for the whole process
//!   rather than one per [`Runtime`](crate::Runtime) or per operation:
//!   operations are I/O-bound and short, fairness between components comes
//!   from the per-component limits below, not from separate executors, and
//!   a runtime per operation would bring back a thread per operation.
//!   Name lookups use the system resolver (`getaddrinfo`), which blocks: they
//!   run on the runtime's blocking pool, at most `limits.max_net_in_flight`
//!   per component at once.
//! - **In-flight slots** ([`InFlight`]): each loaded component may have
//!   `limits.max_net_in_flight` operations running at once across its
//!   instances; one more is refused with [`LimitExceeded::NetInFlight`]. A
//!   slot is given back when the operation ends (result stored, error or
//!   deadline) or when the component drops the pending resource or the
//!   instance, whichever comes first.
//! - **Held results** ([`Charge`]): each operation holds one of the
//!   instance's `limits.max_pending` slots and the bytes of its result
//!   (`limits.held_bytes`) from its start until the component collects
//!   the result (bytes) or drops the pending resource (the slot).
//! - **Deadline** ([`Deadline`]): the whole operation (name lookup,
//!   connect, TLS handshake, every read, redirects) runs under one
//!   deadline; a peer that trickles one byte at a time does not extend it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use super::super::bindings::airssys::ext::network::Error;
use super::super::budget::Hold;
use super::super::poll::Readiness;
use crate::error::LimitExceeded;
use crate::sync::Notifier;

/// Worker threads of the network runtime.
const WORKERS: usize = 2;

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// The shared network runtime, built on first use.
pub(super) fn handle() -> Result<&'static tokio::runtime::Handle, Error> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .thread_name("airssys-net")
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| format!("cannot start the network service's runtime: {e}"))
        })
        .as_ref()
        .map(tokio::runtime::Runtime::handle)
        .map_err(|e| Error::Other(e.clone()))
}

// ---- in-flight slots

/// The running network operations of one loaded component, across its
/// instances (`limits.max_net_in_flight`).
#[derive(Debug)]
pub(crate) struct InFlight {
    component: Arc<str>,
    limit: u32,
    running: Arc<AtomicU32>,
    lookups: Arc<AtomicU32>,
}

impl InFlight {
    /// No operation running yet; at most `limit` at once.
    pub(crate) fn new(component: &str, limit: u32) -> InFlight {
        InFlight {
            component: component.into(),
            limit,
            running: Arc::default(),
            lookups: Arc::default(),
        }
    }

    fn refused(&self) -> LimitExceeded {
        LimitExceeded::NetInFlight {
            component: self.component.to_string(),
            limit: self.limit,
        }
    }

    fn take(counter: &Arc<AtomicU32>, limit: u32) -> bool {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes a slot for a new operation.
    ///
    /// # Errors
    ///
    /// [`LimitExceeded::NetInFlight`] when every slot is taken.
    pub(super) fn acquire(&self) -> Result<Slot, LimitExceeded> {
        if !InFlight::take(&self.running, self.limit) {
            return Err(self.refused());
        }
        Ok(Slot(Arc::new(SlotInner {
            running: Arc::clone(&self.running),
            given_back: AtomicBool::new(false),
        })))
    }

    /// Takes a slot for one blocking name lookup, held by the lookup
    /// itself until the system resolver answers (a lookup cannot be
    /// interrupted, so dropping its operation does not end it).
    ///
    /// # Errors
    ///
    /// [`LimitExceeded::NetInFlight`] when the component already has
    /// `limit` lookups running.
    pub(super) fn lookup(&self) -> Result<LookupSlot, LimitExceeded> {
        if !InFlight::take(&self.lookups, self.limit) {
            return Err(self.refused());
        }
        Ok(LookupSlot(Arc::clone(&self.lookups)))
    }

    /// Operations running now.
    #[cfg(test)]
    pub(super) fn running(&self) -> u32 {
        self.running.load(Ordering::Acquire)
    }
}

/// One operation's in-flight slot: given back once, by whichever comes
/// first of the operation's end and the drop of its pending resource.
#[derive(Debug, Clone)]
pub(super) struct Slot(Arc<SlotInner>);

#[derive(Debug)]
struct SlotInner {
    running: Arc<AtomicU32>,
    given_back: AtomicBool,
}

impl Slot {
    /// Gives the slot back (once; later calls do nothing).
    pub(super) fn give_back(&self) {
        if !self.0.given_back.swap(true, Ordering::AcqRel) {
            self.0.running.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for SlotInner {
    fn drop(&mut self) {
        if !*self.given_back.get_mut() {
            self.running.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A running name lookup's slot.
#[derive(Debug)]
pub(super) struct LookupSlot(Arc<AtomicU32>);

impl Drop for LookupSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

// ---- held results

/// An operation's reservation in the instance's held-result budget,
/// shared by the task that fills the result and the pending resource
/// that hands it out.
#[derive(Debug, Clone)]
pub(super) struct Charge(Arc<Mutex<Option<Hold>>>);

impl Charge {
    fn new(hold: Hold) -> Charge {
        Charge(Arc::new(Mutex::new(Some(hold))))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Hold) -> R) -> Option<R> {
        crate::sync::lock(&self.0).as_mut().map(f)
    }

    /// Adds `bytes` to the reservation.
    ///
    /// # Errors
    ///
    /// [`LimitExceeded::HeldBytes`] when the instance's budget cannot take
    /// them.
    pub(super) fn grow(&self, bytes: u64) -> Result<(), LimitExceeded> {
        self.with(|h| h.try_grow(bytes)).unwrap_or(Ok(()))
    }

    /// Keeps `bytes` reserved, giving back the rest.
    pub(super) fn shrink_to(&self, bytes: u64) {
        self.with(|h| h.shrink_to(bytes));
    }

    /// Gives back every byte; the pending slot stays.
    fn release_bytes(&self) {
        self.with(Hold::release_bytes);
    }

    /// Gives back everything.
    fn release(&self) {
        crate::sync::lock(&self.0).take();
    }
}

// ---- deadlines

/// When an operation must have finished, and what set that time (for the
/// timeout message).
#[derive(Debug, Clone)]
pub(super) struct Deadline {
    at: Instant,
    took: Duration,
    set_by: String,
}

impl Deadline {
    /// `wanted` (what `wanted_by` asked for), capped by
    /// `limits.net_timeout_ms`.
    pub(super) fn new(wanted: Duration, wanted_by: &str, cap: Duration) -> Deadline {
        let (took, set_by) = if cap < wanted {
            (cap, "`limits.net_timeout_ms` in the policy".to_owned())
        } else {
            (wanted, wanted_by.to_owned())
        };
        Deadline {
            at: Instant::now() + took,
            took,
            set_by,
        }
    }

    /// The instant.
    pub(super) fn at(&self) -> Instant {
        self.at
    }

    /// The time left, `None` once it passed.
    pub(super) fn left(&self) -> Option<Duration> {
        self.at
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// The `timeout` error of an operation that ran out of time.
    pub(super) fn expired(&self, what: &str) -> Error {
        Error::Timeout(format!(
            "{what} did not finish within {} ms (the deadline set by {})",
            self.took.as_millis(),
            self.set_by
        ))
    }
}

// ---- pending operations

/// Readiness of a network operation: its task has stored the result or
/// ended.
#[derive(Debug)]
struct NetProbe {
    finished: Arc<AtomicBool>,
}

impl Readiness for NetProbe {
    fn is_ready(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

/// Marks the operation finished and notifies the instance's `poll` when
/// the task ends, normally, by error or by being cancelled.
struct Finished(Arc<AtomicBool>, Arc<Notifier>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
        self.1.notify();
    }
}

type Outcome<T> = Arc<Mutex<Option<Result<T, Error>>>>;

/// A network operation and, once it has finished, its result: the host
/// side of every `pending-*` resource of the interface.
#[derive(Debug)]
pub(super) struct Pending<T> {
    outcome: Outcome<T>,
    taken: bool,
    /// Held only here, so a pollable notices when this handle is dropped.
    probe: Arc<NetProbe>,
    charge: Charge,
    slot: Slot,
    task: Option<AbortHandle>,
}

/// The task half of a [`Pending`]: what the operation fills in.
pub(super) struct Runner<T> {
    outcome: Outcome<T>,
    finished: Arc<AtomicBool>,
    /// The owning instance's notifier.
    wake: Arc<Notifier>,
    charge: Charge,
    slot: Slot,
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        // Cancels the task at its next await; the slot and the held bytes
        // come back now, not when the runtime gets to the task.
        if let Some(task) = &self.task {
            task.abort();
        }
        self.slot.give_back();
        self.charge.release();
    }
}

impl<T: Send + 'static> Pending<T> {
    /// A pending operation holding `hold` and `slot`, not started yet (see
    /// [`Pending::start`]); its end notifies `wake`.
    pub(super) fn new(hold: Hold, slot: Slot, wake: &Arc<Notifier>) -> (Pending<T>, Runner<T>) {
        let outcome: Outcome<T> = Arc::default();
        let finished = Arc::new(AtomicBool::new(false));
        let charge = Charge::new(hold);
        let pending = Pending {
            outcome: Arc::clone(&outcome),
            taken: false,
            probe: Arc::new(NetProbe {
                finished: Arc::clone(&finished),
            }),
            charge: charge.clone(),
            slot: slot.clone(),
            task: None,
        };
        let runner = Runner {
            outcome,
            finished,
            wake: Arc::clone(wake),
            charge,
            slot,
        };
        (pending, runner)
    }

    /// Starts `work` (given the operation's charge) on the network
    /// runtime under `deadline`; `what` names the operation in the timeout
    /// error.
    ///
    /// # Errors
    ///
    /// When the network runtime cannot start.
    pub(super) fn start<F>(
        &mut self,
        runner: Runner<T>,
        what: String,
        deadline: Deadline,
        work: impl FnOnce(Charge) -> F,
    ) -> Result<(), Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let handle = handle()?;
        let future = work(runner.charge.clone());
        let task = handle.spawn(async move {
            // Dropped last, also when the task is cancelled: the result is
            // stored and the slot given back before the operation reads as
            // finished.
            let _finished = Finished(Arc::clone(&runner.finished), Arc::clone(&runner.wake));
            let result = tokio::time::timeout_at(deadline.at().into(), future)
                .await
                .unwrap_or_else(|_| Err(deadline.expired(&what)));
            if result.is_err() {
                runner.charge.shrink_to(0);
            }
            *crate::sync::lock(&runner.outcome) = Some(result);
            runner.slot.give_back();
        });
        self.task = Some(task.abort_handle());
        Ok(())
    }

    /// A pollable watching this operation.
    pub(super) fn pollable(&self) -> super::super::poll::Pollable {
        super::super::poll::Pollable::watching(&self.probe)
    }

    /// `ok(none)` while running, the result once (its bytes then leave the
    /// held-result budget), `closed` after.
    pub(super) fn take(&mut self) -> Result<Option<T>, Error> {
        if self.taken {
            return Err(Error::Closed("the result was already taken".into()));
        }
        if !self.probe.is_ready() {
            return Ok(None);
        }
        let result = crate::sync::lock(&self.outcome).take();
        self.taken = true;
        self.charge.release_bytes();
        match result {
            Some(result) => result.map(Some),
            None => Err(Error::Other("the operation ended without a result".into())),
        }
    }
}

/// Runs the blocking name lookup `lookup` on the runtime's blocking pool,
/// holding `slot` until it returns.
pub(super) async fn blocking_lookup<T: Send + 'static>(
    slot: LookupSlot,
    lookup: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        lookup()
    })
    .await
    .map_err(|e| Error::Other(format!("the name lookup failed: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::host::budget::Budget;
    use crate::policy::{Limits, ResolvedLimits};

    fn budget() -> Budget {
        Budget::new(
            "probe",
            &ResolvedLimits::default().with(Limits::new().held_bytes(100).max_pending(4)),
        )
    }

    #[test]
    fn slots_are_counted_and_given_back_once() {
        let in_flight = InFlight::new("probe", 2);
        let a = in_flight.acquire().unwrap();
        let b = in_flight.acquire().unwrap();
        let err = in_flight.acquire().unwrap_err();
        assert!(
            err.to_string().contains("limits.max_net_in_flight"),
            "{err}"
        );
        a.give_back();
        a.give_back();
        assert_eq!(in_flight.running(), 1);
        let c = a.clone();
        drop(a);
        drop(c);
        assert_eq!(in_flight.running(), 1, "given back once only");
        drop(b);
        assert_eq!(in_flight.running(), 0);
    }

    #[test]
    fn dropping_a_pending_operation_cancels_it_and_frees_everything() {
        let in_flight = InFlight::new("probe", 1);
        let budget = budget();
        let hold = budget.reserve(10).unwrap();
        let (mut pending, runner) =
            Pending::<u32>::new(hold, in_flight.acquire().unwrap(), &Arc::default());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        pending
            .start(
                runner,
                "waiting".into(),
                Deadline::new(Duration::from_secs(60), "the test", Duration::from_secs(60)),
                |_| async move {
                    // Never finishes on its own; `tx` is dropped when the
                    // task is cancelled.
                    let _tx = tx;
                    std::future::pending::<()>().await;
                    Ok(1)
                },
            )
            .unwrap();
        assert_eq!(pending.take().unwrap(), None);
        assert!(in_flight.acquire().is_err(), "the slot is taken");
        drop(pending);
        assert_eq!(in_flight.running(), 0, "freed at once");
        assert_eq!((budget.pending(), budget.held_bytes()), (0, 0));
        // The task was cancelled: its future (and `tx`) is dropped.
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_err());
    }

    #[test]
    fn the_deadline_ends_an_operation_and_names_what_set_it() {
        let in_flight = InFlight::new("probe", 1);
        let budget = budget();
        let (mut pending, runner) = Pending::<u32>::new(
            budget.reserve(50).unwrap(),
            in_flight.acquire().unwrap(),
            &Arc::default(),
        );
        pending
            .start(
                runner,
                "the test operation".into(),
                Deadline::new(
                    Duration::from_secs(60),
                    "the test",
                    Duration::from_millis(50),
                ),
                |_| async {
                    std::future::pending::<()>().await;
                    Ok(1)
                },
            )
            .unwrap();
        let started = Instant::now();
        while !pending.probe.is_ready() {
            assert!(started.elapsed() < Duration::from_secs(5), "no timeout");
            std::thread::sleep(Duration::from_millis(5));
        }
        let err = pending.take().unwrap_err();
        let Error::Timeout(text) = err else {
            panic!("{err:?}")
        };
        assert!(text.contains("limits.net_timeout_ms"), "{text}");
        assert_eq!(in_flight.running(), 0);
        assert_eq!(budget.pending(), 1, "the pending slot stays until the drop");
        assert_eq!(budget.held_bytes(), 0);
    }
}
