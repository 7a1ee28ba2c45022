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
    state: Mutex<ReplyState>,
    /// Notified when the answer is stored.
    notifier: Arc<Notifier>,
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
            state: Mutex::new(ReplyState::Pending),
            notifier,
        }
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
    pub fn fill(&self, outcome: ReplyOutcome) -> bool {
        let mut state = self.lock();
        if !(matches!(*state, ReplyState::Pending) && Instant::now() < self.deadline) {
            return false;
        }
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
}
