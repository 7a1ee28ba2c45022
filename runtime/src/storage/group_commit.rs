//! Group commit with fair queuing per namespace, for backends whose
//! commits are serialized (redb runs one write transaction at a time and
//! a durable commit waits for the disk).
//!
//! Every write is queued. Whichever writer finds no commit in progress
//! leads: it takes a batch from the queue, applies and commits it as one
//! transaction, hands each queued writer its result and wakes them. A
//! writer returns only once the batch holding its write committed, so
//! "the call returned" still means "it is durable".
//!
//! A batch is chosen per namespace (per component), round-robin: the
//! first queued write of every namespace, then the second of each, and so
//! on, up to [`MAX_BATCH_WRITES`] writes; beyond the first round, also
//! only up to [`MAX_BATCH_BYTES`]. So however many instances of one
//! component write in a loop, a neighbour's write is in the batch after
//! the one committing when it was queued: it waits for at most two
//! commits, each bounded in size. Within a namespace, writes commit in
//! the order they were queued.
//!
//! A writer with a deadline ([`GroupCommit::submit_by`], the deadline of a
//! component's host call) waits no longer than it while its write is
//! still queued: at the deadline the write is taken off the queue, never
//! committed, and the writer gets its `late` result. A write already in
//! the batch being committed waits for that one commit, whose outcome
//! decides it; a late writer that finds nobody committing leads one batch
//! (its own work, not a wait) and leaves after it if its write is still
//! queued.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Writes one batch holds at most.
pub(crate) const MAX_BATCH_WRITES: usize = 256;

/// Bytes of the writes a batch holds beyond the first write of each
/// namespace (which are always taken, so that no namespace waits for
/// another's large values).
pub(crate) const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// The queue of writes waiting for a commit.
pub(crate) struct GroupCommit<Op, Out> {
    state: Mutex<State<Op, Out>>,
    /// Signalled when a batch's results are in.
    done: Condvar,
}

struct State<Op, Out> {
    queue: VecDeque<Queued<Op>>,
    /// Results not yet collected by their writer, by ticket.
    results: HashMap<u64, Out>,
    next_ticket: u64,
    /// A leader is committing a batch.
    leading: bool,
    /// The most batches any write stayed queued behind (see
    /// [`GroupCommit::most_passed_over`]).
    most_passed_over: u32,
}

struct Queued<Op> {
    ticket: u64,
    namespace: Box<str>,
    bytes: usize,
    /// Batches taken while this write stayed queued.
    passed_over: u32,
    op: Op,
}

impl<Op, Out> Default for GroupCommit<Op, Out> {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                results: HashMap::new(),
                next_ticket: 0,
                leading: false,
                most_passed_over: 0,
            }),
            done: Condvar::new(),
        }
    }
}

impl<Op, Out> GroupCommit<Op, Out> {
    /// Locks the state, ignoring poisoning: it is changed only in single
    /// steps that leave it consistent (a leader that panics hands its
    /// writers a result through [`Leading`]'s `Drop`).
    fn lock(&self) -> MutexGuard<'_, State<Op, Out>> {
        crate::sync::lock(&self.state)
    }

    /// Queues `op` (a write of `bytes` bytes in `namespace`) and returns its
    /// result once the batch holding it is committed. `commit` applies and
    /// commits a batch, returning one result per write, in order; it runs
    /// on whichever writer leads. `failed` is the result of a write whose
    /// leader panicked.
    #[cfg(test)]
    pub(crate) fn submit(
        &self,
        namespace: &str,
        bytes: usize,
        op: Op,
        commit: impl Fn(Vec<Op>) -> Vec<Out>,
        failed: impl Fn() -> Out,
    ) -> Out {
        self.submit_by(namespace, bytes, op, commit, failed, None, || {
            unreachable!("no deadline")
        })
    }

    /// [`GroupCommit::submit`], waiting while the write is queued at most
    /// until `deadline`: past it the write is taken off the queue (it is
    /// never committed) and `late` is the result. A write already taken
    /// into a batch waits for that batch's commit; one that finds nobody
    /// committing leads one batch, late or not (no wait for others).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit_by(
        &self,
        namespace: &str,
        bytes: usize,
        op: Op,
        commit: impl Fn(Vec<Op>) -> Vec<Out>,
        failed: impl Fn() -> Out,
        deadline: Option<Instant>,
        late: impl FnOnce() -> Out,
    ) -> Out {
        let mut state = self.lock();
        let mut led_late = false;
        let ticket = state.next_ticket;
        state.next_ticket = state.next_ticket.wrapping_add(1);
        state.queue.push_back(Queued {
            ticket,
            namespace: namespace.into(),
            bytes,
            passed_over: 0,
            op,
        });
        loop {
            if let Some(out) = state.results.remove(&ticket) {
                return out;
            }
            let now = Instant::now();
            let left = deadline.map(|d| d.saturating_duration_since(now));
            let overdue = left.is_some_and(|left| left.is_zero());
            // Late, it leaves rather than wait for another's commit, or
            // lead a second batch for others; with nobody committing it
            // leads once (its own work, one batch).
            if overdue
                && (state.leading || led_late)
                && let Some(at) = state.queue.iter().position(|q| q.ticket == ticket)
            {
                state.queue.remove(at);
                // Writers still queued may be waiting for this one to
                // lead: one of them takes over.
                let hand_on = !state.leading && !state.queue.is_empty();
                drop(state);
                if hand_on {
                    self.done.notify_all();
                }
                return late();
            }
            if state.leading {
                state = match left {
                    // Still queued: wake at the deadline to leave.
                    Some(left) if !left.is_zero() => {
                        crate::sync::wait_timeout(&self.done, state, left)
                    }
                    // No deadline, or in the batch being committed.
                    _ => crate::sync::wait(&self.done, state),
                };
                continue;
            }
            state.leading = true;
            led_late |= overdue;
            let batch = take_batch(&mut state.queue);
            for waiting in &mut state.queue {
                waiting.passed_over = waiting.passed_over.saturating_add(1);
            }
            let passed_over = batch.iter().map(|q| q.passed_over).max().unwrap_or(0);
            state.most_passed_over = state.most_passed_over.max(passed_over);
            drop(state);
            let mut leading = Leading {
                group: self,
                own: ticket,
                tickets: batch.iter().map(|q| q.ticket).collect(),
                failed: &failed,
                results: None,
            };
            let outs = commit(batch.into_iter().map(|q| q.op).collect());
            leading.results = Some(outs);
            drop(leading);
            state = self.lock();
        }
    }
}

impl<Op, Out> GroupCommit<Op, Out> {
    /// The most batches any write stayed queued behind before its own was
    /// taken: 0 while the round-robin holds (fewer than
    /// [`MAX_BATCH_WRITES`] namespaces waiting at once).
    #[cfg(test)]
    pub(crate) fn most_passed_over(&self) -> u32 {
        self.lock().most_passed_over
    }
}

/// The leader's duty: however `commit` ends, its writers get a result and
/// the next leader may start.
struct Leading<'a, Op, Out, F: Fn() -> Out> {
    group: &'a GroupCommit<Op, Out>,
    /// The leader's own write: when it panics, nobody collects its result.
    own: u64,
    tickets: Vec<u64>,
    failed: &'a F,
    results: Option<Vec<Out>>,
}

impl<Op, Out, F: Fn() -> Out> Drop for Leading<'_, Op, Out, F> {
    fn drop(&mut self) {
        let mut outs = self.results.take().unwrap_or_default().into_iter();
        let mut state = self.group.lock();
        let panicking = std::thread::panicking();
        for &ticket in &self.tickets {
            let out = outs.next().unwrap_or_else(self.failed);
            if !(panicking && ticket == self.own) {
                state.results.insert(ticket, out);
            }
        }
        state.leading = false;
        drop(state);
        self.group.done.notify_all();
    }
}

/// Takes the next batch off `queue`: round `r` takes the `r`-th queued
/// write of every namespace, in queue order, until [`MAX_BATCH_WRITES`]
/// (and, from the second round, [`MAX_BATCH_BYTES`]) is reached. Always at
/// least one write; what is left keeps its order.
fn take_batch<Op>(queue: &mut VecDeque<Queued<Op>>) -> Vec<Queued<Op>> {
    // The rank of each write within its namespace.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let ranks: Vec<usize> = queue
        .iter()
        .map(|q| {
            let rank = seen.entry(&q.namespace).or_insert(0);
            *rank += 1;
            *rank - 1
        })
        .collect();
    drop(seen);
    let mut order: Vec<usize> = (0..queue.len()).collect();
    // Stable: within a rank, queue order.
    order.sort_by_key(|&i| ranks[i]);
    let mut chosen = vec![false; queue.len()];
    let (mut count, mut bytes) = (0usize, 0usize);
    for i in order {
        if count == MAX_BATCH_WRITES {
            break;
        }
        let size = queue[i].bytes;
        if ranks[i] > 0 && count > 0 && bytes.saturating_add(size) > MAX_BATCH_BYTES {
            break;
        }
        chosen[i] = true;
        count += 1;
        bytes = bytes.saturating_add(size);
    }
    let mut batch = Vec::with_capacity(count);
    let mut rest = VecDeque::with_capacity(queue.len() - count);
    for (queued, take) in queue.drain(..).zip(chosen) {
        if take {
            batch.push(queued);
        } else {
            rest.push_back(queued);
        }
    }
    *queue = rest;
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(entries: &[(&str, usize)]) -> VecDeque<Queued<usize>> {
        entries
            .iter()
            .enumerate()
            .map(|(i, (namespace, bytes))| Queued {
                ticket: i as u64,
                namespace: (*namespace).into(),
                bytes: *bytes,
                passed_over: 0,
                op: i,
            })
            .collect()
    }

    fn ops(batch: &[Queued<usize>]) -> Vec<usize> {
        batch.iter().map(|q| q.op).collect()
    }

    #[test]
    fn a_batch_takes_every_namespace_before_a_second_write_of_any() {
        let mut many: Vec<(&str, usize)> = vec![("flood", 1); MAX_BATCH_WRITES * 2];
        many.push(("neighbour", 1));
        let mut q = queue(&many);
        let batch = take_batch(&mut q);
        assert_eq!(batch.len(), MAX_BATCH_WRITES);
        // The neighbour's write, queued last, is in the first batch.
        assert!(batch.iter().any(|w| &*w.namespace == "neighbour"));
        // Within a namespace, queue order.
        let flood: Vec<usize> = batch
            .iter()
            .filter(|w| &*w.namespace == "flood")
            .map(|w| w.op)
            .collect();
        assert_eq!(flood, (0..MAX_BATCH_WRITES - 1).collect::<Vec<_>>());
        assert_eq!(q.len(), MAX_BATCH_WRITES + 1);
        assert_eq!(q.front().map(|w| w.op), Some(MAX_BATCH_WRITES - 1));
    }

    #[test]
    fn large_writes_of_one_namespace_do_not_hold_back_another() {
        let big = MAX_BATCH_BYTES / 2 + 1;
        let mut q = queue(&[("flood", big), ("flood", big), ("flood", big), ("n", 1)]);
        let batch = take_batch(&mut q);
        // Round one: the first of each; round two would pass the bytes.
        assert_eq!(ops(&batch), [0, 3]);
        let batch = take_batch(&mut q);
        assert_eq!(ops(&batch), [1]);
        let batch = take_batch(&mut q);
        assert_eq!(ops(&batch), [2]);
        assert!(q.is_empty());
    }

    /// A writer queued behind a commit that does not end (a slow disk,
    /// another component's large batch) leaves at its deadline, and its
    /// write is never committed; the writers without a deadline still get
    /// theirs once the commit ends.
    #[test]
    fn a_queued_write_leaves_at_its_deadline_uncommitted() {
        use std::sync::Arc;
        use std::sync::mpsc;
        use std::time::Duration;

        type Group = GroupCommit<u32, Result<u32, &'static str>>;
        let group: Arc<Group> = Arc::default();
        let committed = Arc::new(Mutex::new(Vec::new()));
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let commit = {
            let committed = Arc::clone(&committed);
            move |batch: Vec<u32>| {
                // Op 0's batch holds the lead until the test releases it.
                if batch.contains(&0) {
                    let _ = crate::sync::lock(&released).recv();
                }
                crate::sync::lock(&committed).extend(batch.iter().copied());
                batch.into_iter().map(Ok).collect::<Vec<_>>()
            }
        };
        let leader = {
            let (group, commit) = (Arc::clone(&group), commit.clone());
            std::thread::spawn(move || group.submit("slow", 1, 0, commit, || Err("failed")))
        };
        while !crate::sync::lock(&group.state).leading {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Queued behind the commit that does not end: one writer with a
        // deadline, one without.
        let patient = {
            let (group, commit) = (Arc::clone(&group), commit.clone());
            std::thread::spawn(move || group.submit("other", 1, 2, commit, || Err("failed")))
        };
        let (out, took) = {
            let (group, commit) = (Arc::clone(&group), commit.clone());
            let (sent, got) = mpsc::channel();
            std::thread::spawn(move || {
                let started = Instant::now();
                let deadline = Some(started + Duration::from_millis(100));
                let out = group.submit_by(
                    "n",
                    1,
                    1,
                    commit,
                    || Err("failed"),
                    deadline,
                    || Err("late"),
                );
                let _ = sent.send((out, started.elapsed()));
            });
            let outcome = got.recv_timeout(Duration::from_secs(10));
            // Let the commit end either way, so the test ends.
            let _ = release.send(());
            outcome.expect("the write with a deadline waited for the commit that does not end")
        };
        assert_eq!(out, Err("late"));
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert_eq!(leader.join().expect("leader"), Ok(0));
        assert_eq!(patient.join().expect("patient writer"), Ok(2));
        assert_eq!(
            *crate::sync::lock(&committed),
            [0, 2],
            "the late write is not committed"
        );
    }

    /// Past its deadline with nobody committing, a write has nothing to
    /// wait for: it commits (one batch of its own work).
    #[test]
    fn a_late_write_that_waits_for_nobody_commits() {
        let group: GroupCommit<u32, Result<u32, &'static str>> = GroupCommit::default();
        let past = Some(Instant::now());
        let out = group.submit_by(
            "n",
            1,
            7,
            |batch| batch.into_iter().map(Ok).collect(),
            || Err("failed"),
            past,
            || Err("late"),
        );
        assert_eq!(out, Ok(7));
    }

    #[test]
    fn every_writer_gets_its_own_result_and_a_panicking_leader_fails_its_batch() {
        let group: std::sync::Arc<GroupCommit<u32, Result<u32, ()>>> = Default::default();
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let group = std::sync::Arc::clone(&group);
                std::thread::spawn(move || {
                    for i in 0..200u32 {
                        let op = t * 1000 + i;
                        let out = group.submit(
                            if t % 2 == 0 { "even" } else { "odd" },
                            1,
                            op,
                            |batch| batch.into_iter().map(|op| Ok(op * 2)).collect(),
                            || Err(()),
                        );
                        assert_eq!(out, Ok(op * 2));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("writer");
        }
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            group.submit("x", 1, 1, |_| panic!("commit failed"), || Err(()))
        }));
        assert!(failed.is_err(), "the leader's own call panics");
        // The queue still works after a leader panicked.
        assert_eq!(
            group.submit("x", 1, 2, |b| b.into_iter().map(Ok).collect(), || Err(())),
            Ok(2)
        );
    }
}
