//! [`ReplySlot`]: where a request's answer meets its requester.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sync::Notifier;

/// What a request's target answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The reply bytes.
    Reply(Vec<u8>),
    /// The target's handler returned an error (its text) or trapped.
    Remote(String),
    /// The requester could not hold the answer: its
    /// [`ReplyBudget`] refused it, with this text naming the limit. The
    /// answer itself was dropped.
    OverLimit(String),
}

impl ReplyOutcome {
    /// The bytes holding it costs until it is collected.
    fn size(&self) -> usize {
        match self {
            ReplyOutcome::Reply(bytes) => bytes.len(),
            ReplyOutcome::Remote(text) | ReplyOutcome::OverLimit(text) => text.len(),
        }
    }
}

/// What holding an answer costs its requester until it collects it: the
/// runtime charges a component's replies to its per-instance budget
/// (`limits.held_bytes`), like any result the host holds for it. Handed
/// to the slot by whoever makes it ([`ReplySlot::charged_to`]); a broker
/// never sees it.
pub trait ReplyBudget: Send + Sync + std::fmt::Debug {
    /// Charges `bytes` for an answer about to be stored.
    ///
    /// # Errors
    ///
    /// The limit the answer would pass, in words naming it; the requester
    /// gets [`ReplyOutcome::OverLimit`] with this text instead of the
    /// answer.
    fn charge(&self, bytes: usize) -> Result<(), String>;
}

#[derive(Debug)]
enum ReplyState {
    Pending,
    Ready(ReplyOutcome),
    Taken,
    Abandoned,
}

/// The meeting point of a request and its reply: made by the requester
/// (with its deadline and the [`Notifier`] of whoever waits for the
/// answer), kept by the broker with the queued request, filled once.
#[derive(Debug)]
pub struct ReplySlot {
    deadline: Instant,
    /// The latest moment the requester's call may wait for the request
    /// to be accepted, if it is bounded.
    admit_by: Option<Instant>,
    state: Mutex<ReplyState>,
    /// Notified when the answer is stored.
    notifier: Arc<Notifier>,
    /// Charged for the answer before it is stored.
    budget: Option<Arc<dyn ReplyBudget>>,
}

/// What [`ReplySlot::poll`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyPoll {
    /// Not answered yet, deadline not reached.
    Pending,
    /// The answer (returned once).
    Ready(ReplyOutcome),
    /// The deadline passed first.
    TimedOut,
    /// The answer was taken already, or the request was abandoned.
    Gone,
}

impl ReplySlot {
    /// A slot that expires after `timeout`; storing the answer notifies
    /// `notifier` (the runtime hands in the requesting instance's, so its
    /// `poll` wakes).
    pub fn new(timeout: Duration, notifier: Arc<Notifier>) -> ReplySlot {
        let now = Instant::now();
        ReplySlot {
            deadline: now
                .checked_add(timeout)
                .unwrap_or(now + Duration::from_secs(86_400)),
            admit_by: None,
            state: Mutex::new(ReplyState::Pending),
            notifier,
            budget: None,
        }
    }

    /// Charges every answer to `budget` before storing it (see
    /// [`ReplyBudget`]).
    #[must_use]
    pub fn charged_to(mut self, budget: Arc<dyn ReplyBudget>) -> ReplySlot {
        self.budget = Some(budget);
        self
    }

    /// Bounds how long [`Broker::request`](super::Broker::request) may
    /// keep the requester's call waiting for the target's host to accept
    /// the request: the runtime passes the calling instance's own call
    /// deadline (its `limits.cpu_time`), since the wait happens inside
    /// its host call. `None` leaves the broker's own bound.
    #[must_use]
    pub fn admitted_by(mut self, deadline: Option<Instant>) -> ReplySlot {
        self.admit_by = deadline;
        self
    }

    /// The bound set with [`ReplySlot::admitted_by`]: a broker waits for
    /// the request's acceptance at most until then (and never past
    /// [`ReplySlot::deadline`]).
    pub fn admit_by(&self) -> Instant {
        self.admit_by
            .map_or(self.deadline, |bound| bound.min(self.deadline))
    }

    /// When the requester stops waiting: a backend that carries the
    /// request elsewhere passes the time left along, so the answering side
    /// gives up at the same moment.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    fn lock(&self) -> MutexGuard<'_, ReplyState> {
        crate::sync::lock(&self.state)
    }

    /// Whether the requester still waits: not abandoned, not past the
    /// deadline, not answered.
    pub fn is_wanted(&self) -> bool {
        matches!(*self.lock(), ReplyState::Pending) && Instant::now() < self.deadline
    }

    /// Stores the answer unless the requester gave up or the deadline
    /// passed; returns whether it was stored. A stored answer notifies the
    /// slot's [`Notifier`], which wakes the requester (an instance's
    /// `poll`) at once. Every completion of a request — an answer, a
    /// remote error, a responder unloaded or failing — goes through here.
    /// An answer the slot's [`ReplyBudget`] refuses is stored as
    /// [`ReplyOutcome::OverLimit`] instead.
    pub fn fill(&self, outcome: ReplyOutcome) -> bool {
        let mut state = self.lock();
        if !(matches!(*state, ReplyState::Pending) && Instant::now() < self.deadline) {
            return false;
        }
        let outcome = match self.budget.as_ref().map(|b| b.charge(outcome.size())) {
            Some(Err(limit)) => ReplyOutcome::OverLimit(limit),
            _ => outcome,
        };
        *state = ReplyState::Ready(outcome);
        drop(state);
        self.notifier.notify();
        true
    }

    /// Takes the answer once; never waits.
    pub fn poll(&self) -> ReplyPoll {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, ReplyState::Taken) {
            ReplyState::Ready(outcome) => ReplyPoll::Ready(outcome),
            ReplyState::Pending if Instant::now() >= self.deadline => ReplyPoll::TimedOut,
            ReplyState::Pending => {
                *state = ReplyState::Pending;
                ReplyPoll::Pending
            }
            ReplyState::Taken | ReplyState::Abandoned => ReplyPoll::Gone,
        }
    }

    /// The requester dropped its handle: the answer is no longer wanted.
    pub fn abandon(&self) {
        *self.lock() = ReplyState::Abandoned;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_slot_answers_once_and_times_out() {
        let slot = ReplySlot::new(Duration::from_secs(60), Arc::default());
        assert_eq!(slot.poll(), ReplyPoll::Pending);
        assert!(slot.fill(ReplyOutcome::Reply(vec![7])));
        assert_eq!(slot.poll(), ReplyPoll::Ready(ReplyOutcome::Reply(vec![7])));
        assert_eq!(slot.poll(), ReplyPoll::Gone);
        let late = ReplySlot::new(Duration::ZERO, Arc::default());
        assert_eq!(late.poll(), ReplyPoll::TimedOut);
        assert!(!late.fill(ReplyOutcome::Reply(vec![])));
    }

    #[test]
    fn filling_notifies_the_notifier_handed_in_and_nothing_else() {
        let requester = Arc::new(Notifier::new());
        let bystander = Arc::new(Notifier::new());
        let slot = ReplySlot::new(Duration::from_secs(60), Arc::clone(&requester));
        let (before, other) = (requester.generation(), bystander.generation());
        assert!(slot.fill(ReplyOutcome::Reply(vec![1])));
        assert_ne!(requester.generation(), before, "the requester is woken");
        assert_eq!(bystander.generation(), other);
        // A refused fill (already answered) wakes nobody.
        let after = requester.generation();
        assert!(!slot.fill(ReplyOutcome::Reply(vec![2])));
        assert_eq!(requester.generation(), after);
    }

    #[derive(Debug)]
    struct Cap(usize);

    impl ReplyBudget for Cap {
        fn charge(&self, bytes: usize) -> Result<(), String> {
            if bytes <= self.0 {
                Ok(())
            } else {
                Err(format!("{bytes} bytes pass `limits.held_bytes`"))
            }
        }
    }

    #[test]
    fn an_answer_the_budget_refuses_is_replaced_by_the_limit() {
        let slot =
            ReplySlot::new(Duration::from_secs(60), Arc::default()).charged_to(Arc::new(Cap(4)));
        assert!(slot.fill(ReplyOutcome::Reply(vec![0; 5])));
        assert_eq!(
            slot.poll(),
            ReplyPoll::Ready(ReplyOutcome::OverLimit(
                "5 bytes pass `limits.held_bytes`".to_owned()
            ))
        );
        let fits =
            ReplySlot::new(Duration::from_secs(60), Arc::default()).charged_to(Arc::new(Cap(4)));
        assert!(fits.fill(ReplyOutcome::Reply(vec![0; 4])));
        assert_eq!(
            fits.poll(),
            ReplyPoll::Ready(ReplyOutcome::Reply(vec![0; 4]))
        );
    }
}
