//! A component's share of the JetStream message stream
//! ([`NatsBrokerBuilder::stream_max_messages_per_component`](super::NatsBrokerBuilder::stream_max_messages_per_component)).
//!
//! Every message of every component on every host goes into one stream,
//! which holds at most `stream_max_messages`; without a share, one
//! component whose subscribers are slow fills it and every neighbour's
//! publish is refused. A message from component `s` is stored on
//! `<prefix>.msg.<s>.<topic>`, so the server counts `s`'s messages with the
//! subject filter `<prefix>.msg.<s>.>` (`STREAM.INFO` with
//! `subjects_filter`: a map subject → messages, paged by 100,000
//! subjects in nats-server 2.9), whichever host published them.
//!
//! Each host keeps, per local publishing component, an estimate: the
//! server's last count plus what this host published (or is publishing)
//! since that count was asked. Below half the share a publish costs one
//! lock and no query. A host's first publish of a component waits for a
//! count. From half the share on, or once a sixteenth of it was published
//! here since the last count, a publish starts a count in the background,
//! so the estimate takes in the other hosts' and the subscribers'
//! progress. Once an eighth of the share was published here since the
//! last count ([`between_counts`]), or at the share, a publish waits for a
//! fresh count (started by it or by a concurrent caller, never past the
//! call's deadline nor the `op_timeout`), and is refused while the count
//! and what this host published since reach the share. One count at a
//! time per component; counts start [`COUNT_SPACING`] times as long apart
//! as the last one took, and those in the background or after a failed
//! one at least [`REFRESH_INTERVAL`] apart; a count that found the share
//! reached stands that long (the refusals meanwhile ask nothing). Each
//! component's counts use a connection of their own, made at its first
//! count ([`Counter::connect`]): a count the server cuts, or that is slow
//! to answer, fails or delays that component's publishes only, never a
//! neighbour's.
//!
//! Work per count is bounded: pages stop once the messages counted reach
//! the share (a subject holds at least one message, so a page's subject
//! total is counted too), and after [`MAX_PAGES`] pages.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use crate::sync::lock;

/// The shortest time between two counts of one component's messages
/// started by one host.
pub(super) const REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// The next count of a component starts no sooner than this many times
/// the last one took after it started.
pub(super) const COUNT_SPACING: u32 = 4;

/// The most pages of one count (nats-server 2.9 answers 100,000 subjects
/// per page).
pub(super) const MAX_PAGES: usize = 4;

/// The most messages one host publishes of one component between two
/// counts of them, those in flight included (one eighth of the share, at
/// least one): with `h` hosts publishing it, the stream holds at most
/// `share + h × that` of its messages.
pub(super) fn between_counts(share: u64) -> u64 {
    (share / 8).max(1)
}

/// The share when none is set: this part of the stream's `max_messages`.
pub(super) const DEFAULT_SHARE_DIVISOR: u64 = 4;

/// The share when none is set, for a stream of `max_messages` (`-1`: no
/// limit, so no share either).
pub(super) fn default_share(max_messages: i64) -> u64 {
    u64::try_from(max_messages).map_or(u64::MAX, |max| (max / DEFAULT_SHARE_DIVISOR).max(1))
}

/// How a component's messages in the stream are counted: on what server
/// and with which options a component's counting connection is made, the
/// stream's name and the subject prefix its messages carry
/// (`<prefix>.msg.`).
#[derive(Clone)]
pub(super) struct Counter {
    /// The options of every counting connection (the host's own, named
    /// per component when connecting).
    options: async_nats::ConnectOptions,
    /// The server's address as given (it may hold credentials: never
    /// printed).
    url: String,
    /// The server's address as printed.
    shown: String,
    pub(super) stream: String,
    /// `<prefix>.msg.`: a component `s`'s messages are `<that>s.>`.
    pub(super) subject_prefix: String,
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("server", &self.shown)
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .finish_non_exhaustive()
    }
}

/// What one count found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counted {
    /// The component's messages in the stream: exact when `complete`,
    /// otherwise at least this many (the count stopped early).
    pub(super) messages: u64,
    /// Whether every page was read.
    pub(super) complete: bool,
    /// Pages read.
    pub(super) pages: usize,
}

/// The request `STREAM.INFO.<stream>` takes.
#[derive(Serialize)]
struct InfoRequest<'a> {
    subjects_filter: &'a str,
    offset: usize,
}

/// The parts of a `STREAM.INFO` answer a count reads.
#[derive(Deserialize)]
#[serde(untagged)]
enum InfoResponse {
    Err { error: jetstream::Error },
    Ok(InfoPage),
}

#[derive(Deserialize, Default)]
struct InfoPage {
    #[serde(default)]
    state: PageState,
    /// Subjects matching the filter, on every page.
    #[serde(default)]
    total: usize,
}

#[derive(Deserialize, Default)]
struct PageState {
    #[serde(default)]
    subjects: Option<SubjectSum>,
}

/// A page's map subject → messages, read as its number of subjects and
/// their sum (the subjects' names are skipped, never kept).
#[derive(Default)]
struct SubjectSum {
    subjects: usize,
    messages: u64,
}

impl<'de> Deserialize<'de> for SubjectSum {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Sum;
        impl<'de> serde::de::Visitor<'de> for Sum {
            type Value = SubjectSum;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of subjects to message counts")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SubjectSum, A::Error> {
                let mut sum = SubjectSum::default();
                while let Some((serde::de::IgnoredAny, n)) = map.next_entry::<_, u64>()? {
                    sum.subjects += 1;
                    sum.messages = sum.messages.saturating_add(n);
                }
                Ok(sum)
            }
        }
        deserializer.deserialize_map(Sum)
    }
}

impl Counter {
    /// How the broker's host counts: connections to its server with its
    /// options and credentials (their events do not count in the host's
    /// connection state).
    pub(super) fn for_broker(
        builder: &super::NatsBrokerBuilder,
        stream: &str,
        shown: &str,
    ) -> Counter {
        Counter::new(
            builder.connection.client_options(shown, builder.op_timeout),
            &builder.url,
            shown,
            stream,
            &super::msg_prefix(&builder.prefix),
        )
    }

    /// Counts with `options` on `url` (printed as `shown`), in `stream`
    /// whose messages carry `subject_prefix` (`<prefix>.msg.`).
    pub(super) fn new(
        options: async_nats::ConnectOptions,
        url: &str,
        shown: &str,
        stream: &str,
        subject_prefix: &str,
    ) -> Counter {
        Counter {
            options: options.event_callback(|_| async {}),
            url: url.to_owned(),
            shown: shown.to_owned(),
            stream: stream.to_owned(),
            subject_prefix: subject_prefix.to_owned(),
        }
    }

    /// Opens `component`'s counting connection (named
    /// `airssys-stream-share <component>` on the server). One per
    /// component, not one per host: the server closes a connection whose
    /// answer passes its `max_pending` (64 MiB by default), and a
    /// component publishing on very many long topics makes its count's
    /// answer that large; a connection answers in order, so a neighbour's
    /// count asked on the same one would wait behind that answer and be
    /// lost with it. Only that component's counting is cut off, never a
    /// neighbour's, nor the host's messages, requests and storage.
    pub(super) async fn connect(&self, component: &str) -> Result<async_nats::Client, String> {
        self.options
            .clone()
            .name(format!("airssys-stream-share {component}"))
            .connect(self.url.as_str())
            .await
            .map_err(|e| format!("its counting connection to {}: {e}", self.shown))
    }

    /// The subject filter of `component`'s messages.
    pub(super) fn filter(&self, component: &str) -> String {
        super::source_filter_under(&self.subject_prefix, component)
    }

    /// The subject filters of the dead letters in the stream that
    /// `component`'s filter takes and are not its own (made by the hosts
    /// of the components that failed its messages:
    /// `<prefix>.msg.<component>.airssys.dead-letter.>`), and of those
    /// that are its own (it failed others' messages:
    /// `<prefix>.msg.*.airssys.dead-letter.<component>`).
    pub(super) fn dead_letter_filters(&self, component: &str) -> (String, String) {
        let topic = super::super::dead_letter_topic("");
        (
            format!("{}{component}.{topic}>", self.subject_prefix),
            format!("{}*.{topic}{component}", self.subject_prefix),
        )
    }

    /// Counts `component`'s messages in the stream on `client` (its
    /// counting connection), stopping once `enough` are found or after
    /// `max_pages` pages: those on its stamp, less the dead letters other
    /// components' hosts made of them, plus the dead letters its hosts
    /// made of others' messages. A dead letter counts for the component
    /// that failed the message, never for its source: a component failing
    /// a neighbour's messages cannot use up the neighbour's share.
    pub(super) async fn count(
        &self,
        client: &async_nats::Client,
        component: &str,
        enough: u64,
        max_pages: usize,
    ) -> Result<Counted, String> {
        // One subject per component that failed its messages, and one per
        // source it failed: small and exact, or the count fails.
        let (of_it, its_own) = self.dead_letter_filters(component);
        let exact = |counted: Counted, what: &str| {
            if counted.complete {
                Ok(counted.messages)
            } else {
                Err(format!(
                    "the dead letters {what} were not counted in {max_pages} pages"
                ))
            }
        };
        let theirs = self
            .count_filter(client, &of_it, u64::MAX, max_pages)
            .await?;
        let theirs = exact(theirs, "others made of its messages")?;
        let mine = self
            .count_filter(client, &its_own, u64::MAX, max_pages)
            .await?;
        let mine = exact(mine, "it made")?;
        let enough = enough.saturating_add(theirs).saturating_sub(mine);
        let all = self
            .count_filter(client, &self.filter(component), enough, max_pages)
            .await?;
        Ok(Counted {
            messages: all.messages.saturating_sub(theirs).saturating_add(mine),
            ..all
        })
    }

    /// Counts the stream's messages on subjects `filter` takes, stopping
    /// once `enough` are found or after `max_pages` pages.
    async fn count_filter(
        &self,
        client: &async_nats::Client,
        filter: &str,
        enough: u64,
        max_pages: usize,
    ) -> Result<Counted, String> {
        let subject = format!("$JS.API.STREAM.INFO.{}", self.stream);
        let mut messages = 0u64;
        let mut offset = 0usize;
        let mut pages = 0usize;
        loop {
            let request = serde_json::to_vec(&InfoRequest {
                subjects_filter: filter,
                offset,
            })
            .map_err(|e| e.to_string())?;
            let answer = client
                .request(subject.clone(), request.into())
                .await
                .map_err(|e| e.to_string())?
                .payload;
            // Read off the broker's runtime: a page can be megabytes.
            let answer: InfoResponse =
                tokio::task::spawn_blocking(move || serde_json::from_slice(&answer))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("an answer not understood: {e}"))?;
            let page = match answer {
                InfoResponse::Ok(page) => page,
                InfoResponse::Err { error } => return Err(error.to_string()),
            };
            pages += 1;
            let subjects = page.state.subjects.unwrap_or_default();
            let got = subjects.subjects;
            messages = messages.saturating_add(subjects.messages);
            offset += got;
            let complete = got == 0 || offset >= page.total;
            // Each subject not read yet holds at least one message.
            let unread = u64::try_from(page.total.saturating_sub(offset)).unwrap_or(u64::MAX);
            let at_least = messages.saturating_add(unread);
            if complete || at_least >= enough || pages >= max_pages {
                return Ok(Counted {
                    messages: at_least,
                    complete,
                    pages,
                });
            }
        }
    }
}

/// One component's estimate on this host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Estimate {
    /// The server's last count.
    pub(super) counted: u64,
    /// Stored by this host since that count was asked.
    pub(super) since: u64,
    /// Being published by this host now (reserved, not yet confirmed).
    pub(super) in_flight: u64,
    /// While a count runs: `since` when it was asked.
    pub(super) refreshing: Option<u64>,
    /// When the last count was started.
    pub(super) last: Option<Instant>,
    /// Counts finished (a waiter sees its count end by this changing).
    pub(super) finished: u64,
    /// Why the last count failed, if it did.
    pub(super) failed: Option<String>,
    /// How long the last count took.
    pub(super) took: Duration,
}

/// What a publish does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Publish, no count needed.
    Publish,
    /// Publish, and start a count in the background.
    PublishAndCount,
    /// Start a count and wait for it.
    CountAndWait,
    /// Wait for the count that runs.
    Wait,
    /// Refuse: the share is reached and the last count is recent.
    Refuse,
    /// A count is needed, and may start at this instant.
    CountAt(Instant),
}

impl Estimate {
    /// The component's messages in the stream as this host sees them.
    pub(super) fn messages(&self) -> u64 {
        self.counted
            .saturating_add(self.since)
            .saturating_add(self.in_flight)
    }

    /// When the next count may start: [`COUNT_SPACING`] times as long as
    /// the last one took after it started (a component whose count is slow
    /// to answer, for its many subjects, is counted less often), and at
    /// least `min` after it.
    pub(super) fn next_count(&self, min: Duration) -> Option<Instant> {
        self.last
            .map(|last| last + min.max(self.took.saturating_mul(COUNT_SPACING)))
    }

    /// What a publish does, with `share` messages allowed.
    pub(super) fn step(&self, share: u64, now: Instant) -> Step {
        let messages = self.messages();
        let local = self.since.saturating_add(self.in_flight);
        let step = between_counts(share);
        // The last count ended and found the number.
        let known = self.finished > 0 && self.failed.is_none();
        // Counts in the background, and after a failed one, start at
        // least [`REFRESH_INTERVAL`] apart, and a count that found the
        // share reached stands that long (refusals ask nothing); a count a
        // publish needs otherwise starts as soon as the last one's cost
        // allows: it is waited for, so one runs at a time, and a small
        // share does not cap a publisher at a few messages per interval.
        let next = self.next_count(REFRESH_INTERVAL).filter(|next| *next > now);
        let next_needed = self
            .next_count(if known {
                Duration::ZERO
            } else {
                REFRESH_INTERVAL
            })
            .filter(|next| *next > now);
        if self.refreshing.is_some() {
            // One count at a time: wait for it where a fresh one is
            // needed, go on otherwise.
            if messages >= share || !known || local >= step {
                Step::Wait
            } else {
                Step::Publish
            }
        } else if messages >= share {
            if known && self.counted >= share && next.is_some() {
                // The server itself found the share reached a moment ago.
                Step::Refuse
            } else {
                // Reached through what this host published since (some of
                // it may be in the count already): ask the server.
                match next_needed {
                    Some(next) => Step::CountAt(next),
                    None => Step::CountAndWait,
                }
            }
        } else if !known || local >= step {
            match next_needed {
                Some(next) => Step::CountAt(next),
                None => Step::CountAndWait,
            }
        } else if (messages >= share / 2 || local >= (step / 2).max(1)) && next.is_none() {
            Step::PublishAndCount
        } else {
            Step::Publish
        }
    }

    /// A count starts.
    pub(super) fn start(&mut self, now: Instant) {
        self.refreshing = Some(self.since);
        self.last = Some(now);
    }

    /// The count that ran ended (it took `took`).
    pub(super) fn end(&mut self, counted: Result<u64, String>, took: Duration) {
        let asked_at = self.refreshing.take().unwrap_or(0);
        match counted {
            Ok(messages) => {
                self.counted = messages;
                // What was stored before the count was asked is in it;
                // what was stored or in flight since may or may not be:
                // kept (the estimate errs high).
                self.since = self.since.saturating_sub(asked_at);
                self.failed = None;
            }
            Err(reason) => self.failed = Some(reason),
        }
        self.took = took;
        self.finished += 1;
    }
}

/// Why a publish is refused.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The share is reached (or the count failed).
    Share,
    /// The count did not come in time.
    TimedOut,
    /// The next count may start only after the deadline.
    Spaced(Duration),
}

/// One component's estimate, the signal of its counts' ends, and its
/// counting connection once made.
#[derive(Debug, Default)]
struct Entry {
    estimate: Mutex<Estimate>,
    counted: Condvar,
    client: Mutex<Option<async_nats::Client>>,
}

/// The shares of this host's publishing components.
#[derive(Debug)]
pub(super) struct StreamShare {
    /// The most messages of one component in the stream.
    share: u64,
    counter: Counter,
    handle: Handle,
    op_timeout: Duration,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

/// A publish let through: [`Ticket::stored`] once the server stored it;
/// dropped without, the reservation is given back.
#[derive(Debug)]
pub(super) struct Ticket {
    entry: Arc<Entry>,
    stored: bool,
}

impl Ticket {
    /// The server stored the message.
    pub(super) fn stored(mut self) {
        self.stored = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut estimate = lock(&self.entry.estimate);
        estimate.in_flight = estimate.in_flight.saturating_sub(1);
        if self.stored {
            estimate.since = estimate.since.saturating_add(1);
        }
    }
}

impl StreamShare {
    pub(super) fn new(share: u64, counter: Counter, handle: Handle, op_timeout: Duration) -> Self {
        StreamShare {
            share: share.max(1),
            counter,
            handle,
            op_timeout,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The most messages of one component in the stream.
    pub(super) fn share(&self) -> u64 {
        self.share
    }

    fn entry(&self, component: &str) -> Arc<Entry> {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get(component) {
            return Arc::clone(entry);
        }
        let entry = Arc::new(Entry::default());
        entries.insert(component.to_owned(), Arc::clone(&entry));
        entry
    }

    /// Forgets `component` (unloaded): its estimate goes and its counting
    /// connection is closed (a count running meanwhile fails). Kept, a
    /// host whose components come and go held one connection per name it
    /// ever ran.
    pub(super) fn forget(&self, component: &str) {
        let Some(entry) = lock(&self.entries).remove(component) else {
            return;
        };
        if let Some(client) = lock(&entry.client).take() {
            let within = self.op_timeout;
            self.handle.spawn(async move {
                // Dropped at the latest after the `op_timeout` (a server
                // gone meanwhile): the last handle closes it.
                let _ = tokio::time::timeout(within, client.drain()).await;
            });
        }
    }

    /// What this host estimates of `component`'s messages in the stream.
    #[cfg(test)]
    pub(super) fn estimate(&self, component: &str) -> Estimate {
        lock(&self.entry(component).estimate).clone()
    }

    /// Lets one publish of `component` through, or refuses it (the text
    /// says why, naming the setting); waits for a count at most until
    /// `deadline` and the `op_timeout`.
    pub(super) fn admit(
        &self,
        component: &str,
        deadline: Option<Instant>,
    ) -> Result<Ticket, String> {
        let entry = self.entry(component);
        let now = Instant::now();
        let until = deadline.map_or(now + self.op_timeout, |d| d.min(now + self.op_timeout));
        let mut estimate = lock(&entry.estimate);
        let mut step = estimate.step(self.share, now);
        // A count needed and not allowed yet: wait for its time (once).
        if let Step::CountAt(at) = step {
            if at > until {
                return Err(self.refusal(component, &estimate, Refusal::Spaced(at - now)));
            }
            drop(estimate);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            estimate = lock(&entry.estimate);
            step = match estimate.step(self.share, Instant::now()) {
                Step::CountAt(_) => Step::Wait,
                other => other,
            };
            if step == Step::Wait && estimate.refreshing.is_none() {
                step = Step::CountAndWait;
            }
        }
        if step == Step::Refuse {
            return Err(self.refusal(component, &estimate, Refusal::Share));
        }
        if matches!(step, Step::PublishAndCount | Step::CountAndWait) {
            estimate.start(Instant::now());
            self.spawn_count(component, &entry);
        }
        if matches!(step, Step::Wait | Step::CountAndWait) {
            let finished = estimate.finished;
            while estimate.finished == finished {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(self.refusal(component, &estimate, Refusal::TimedOut));
                }
                estimate = entry
                    .counted
                    .wait_timeout(estimate, left)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            // One count per publish: what it found stands (a failed count
            // lets nothing through).
            if estimate.failed.is_some() || estimate.messages() >= self.share {
                return Err(self.refusal(component, &estimate, Refusal::Share));
            }
        }
        estimate.in_flight += 1;
        Ok(Ticket {
            entry: Arc::clone(&entry),
            stored: false,
        })
    }

    /// Counts `component`'s messages on the broker's runtime; the result
    /// goes into its estimate, and waiters are woken.
    fn spawn_count(&self, component: &str, entry: &Arc<Entry>) {
        let counter = self.counter.clone();
        let component = component.to_owned();
        let entry = Arc::clone(entry);
        let share = self.share;
        let within = self.op_timeout;
        self.handle.spawn(async move {
            let started = Instant::now();
            let count = async {
                // One count at a time per component: nobody else makes
                // its connection meanwhile.
                let made = lock(&entry.client).clone();
                let client = match made {
                    Some(client) => client,
                    None => {
                        let client = counter.connect(&component).await?;
                        *lock(&entry.client) = Some(client.clone());
                        client
                    }
                };
                counter.count(&client, &component, share, MAX_PAGES).await
            };
            let counted = tokio::time::timeout(within, count)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {within:?}")))
                .map(|c| c.messages);
            let mut estimate = lock(&entry.estimate);
            estimate.end(counted, started.elapsed());
            drop(estimate);
            entry.counted.notify_all();
        });
    }

    fn refusal(&self, component: &str, estimate: &Estimate, why: Refusal) -> String {
        let why = match (why, &estimate.failed) {
            (Refusal::TimedOut, _) => " (the server's count of them did not come before the \
                 call's deadline or the broker's `op_timeout`)"
                .to_owned(),
            (Refusal::Spaced(wait), _) => format!(
                " (counts of them are spaced by {COUNT_SPACING} times the last one's duration, \
                 {:?}; the next may start in {wait:?}, after the call's deadline)",
                estimate.took
            ),
            (Refusal::Share, Some(reason)) => {
                format!(" (at least; the server's count of them failed: {reason})")
            }
            (Refusal::Share, None) => String::new(),
        };
        format!(
            "component `{component}` has {} messages in JetStream stream `{}` not yet \
             acknowledged by their subscribers{why}; its share is {} \
             (`stream_max_messages_per_component`: `[nats] stream_max_messages_per_component` \
             in the policy, `--nats-stream-max-messages-per-component`); try again once its \
             subscribers caught up, or raise the share",
            estimate.messages(),
            self.counter.stream,
            self.share
        )
    }
}

/// The workspace's one nats-server starter (the KV tests include it too).
#[cfg(test)]
#[allow(clippy::duplicate_mod)]
#[path = "../../../tests/support/jetstream.rs"]
mod jetstream_server;

#[cfg(test)]
mod tests {
    use super::*;
    use jetstream_server::JetStreamServer;

    fn at(estimate: &Estimate, share: u64) -> Step {
        estimate.step(share, Instant::now())
    }

    /// An estimate counted long enough ago to be counted again.
    fn counted(counted: u64, since: u64) -> Estimate {
        Estimate {
            counted,
            since,
            last: Some(Instant::now() - REFRESH_INTERVAL),
            finished: 1,
            ..Estimate::default()
        }
    }

    #[test]
    fn a_hosts_first_publish_of_a_component_waits_for_a_count() {
        let e = Estimate::default();
        assert_eq!(at(&e, 1000), Step::CountAndWait);
        let mut e = e;
        e.start(Instant::now());
        assert_eq!(at(&e, 1000), Step::Wait);
        e.end(Ok(0), Duration::ZERO);
        assert_eq!(at(&e, 1000), Step::Publish);
    }

    #[test]
    fn below_half_the_share_a_publish_asks_nothing() {
        // Share 1000: a count every 125 of this host's publishes at most.
        assert_eq!(between_counts(1000), 125);
        let mut e = counted(100, 10);
        assert_eq!(at(&e, 1000), Step::Publish);
        // Half of that published since the last count: counted in the
        // background.
        e.since = 62;
        assert_eq!(at(&e, 1000), Step::PublishAndCount);
        e.since = 10;
        // Half the share: the same.
        e.counted = 490;
        assert_eq!(at(&e, 1000), Step::PublishAndCount);
        // One at a time.
        e.start(Instant::now());
        assert_eq!(at(&e, 1000), Step::Publish);
        e.end(Ok(500), Duration::ZERO);
        // At most one in the background per interval.
        assert_eq!(at(&e, 1000), Step::Publish);
        e.last = Some(Instant::now() - REFRESH_INTERVAL);
        assert_eq!(at(&e, 1000), Step::PublishAndCount);
    }

    #[test]
    fn a_host_publishes_at_most_an_eighth_of_the_share_between_counts() {
        let mut e = counted(0, 124);
        e.in_flight = 1;
        assert_eq!(at(&e, 1000), Step::CountAndWait);
        // Even just after a count (what other hosts published is not
        // seen without one).
        e.start(Instant::now());
        assert_eq!(at(&e, 1000), Step::Wait);
        e.end(Ok(130), Duration::ZERO);
        assert_eq!((e.since, e.in_flight), (0, 1));
        assert_eq!(at(&e, 1000), Step::Publish);
        // A count that failed a moment ago is not asked again at once.
        e.since = 200;
        let now = Instant::now();
        e.start(now);
        e.end(Err("down".to_owned()), Duration::ZERO);
        assert_eq!(at(&e, 1000), Step::CountAt(now + REFRESH_INTERVAL));
        // A count that took long spaces the next ones.
        e.end(Ok(10), Duration::from_secs(1));
        assert_eq!(
            e.step(1000, now + Duration::from_secs(3)),
            Step::CountAt(now + Duration::from_secs(4))
        );
    }

    /// A count a publish waits for below the share is spaced by the last
    /// one's cost only: a share of 10 (a count every publish) does not cap
    /// a publisher at one message per interval.
    #[test]
    fn a_small_share_is_counted_as_often_as_counts_cost() {
        let now = Instant::now();
        let mut e = Estimate::default();
        e.start(now);
        e.end(Ok(3), Duration::from_millis(1));
        e.since = 1;
        assert_eq!(
            e.step(10, now),
            Step::CountAt(now + Duration::from_millis(4))
        );
        assert_eq!(
            e.step(10, now + Duration::from_millis(5)),
            Step::CountAndWait
        );
        // At the share through this host's publishes: counted again.
        e.counted = 9;
        assert_eq!(
            e.step(10, now + Duration::from_millis(5)),
            Step::CountAndWait
        );
        // At the share by the server's own count: a refusal stands for
        // the interval.
        e.counted = 10;
        e.since = 0;
        assert_eq!(e.step(10, now + Duration::from_millis(5)), Step::Refuse);
    }

    #[test]
    fn at_the_share_a_publish_waits_for_a_count_or_is_refused() {
        let mut e = counted(9, 0);
        e.in_flight = 1;
        assert_eq!(at(&e, 10), Step::CountAndWait);
        e.start(Instant::now());
        assert_eq!(at(&e, 10), Step::Wait);
        e.end(Ok(10), Duration::ZERO);
        // Counted a moment ago: refused without asking again.
        assert_eq!(at(&e, 10), Step::Refuse);
        e.last = Some(Instant::now() - REFRESH_INTERVAL);
        assert_eq!(at(&e, 10), Step::CountAndWait);
        // The subscribers caught up.
        e.start(Instant::now());
        e.end(Ok(2), Duration::ZERO);
        e.in_flight = 0;
        assert_eq!(e.messages(), 2);
        e.last = Some(Instant::now() - REFRESH_INTERVAL);
        assert_eq!(at(&e, 10), Step::Publish);
    }

    #[test]
    fn what_was_stored_during_a_count_is_kept_and_a_failed_count_changes_nothing() {
        let mut e = Estimate {
            counted: 4,
            since: 3,
            ..Estimate::default()
        };
        e.start(Instant::now());
        // Stored while the count runs: maybe in it, maybe not.
        e.since += 2;
        e.end(Ok(7), Duration::ZERO);
        assert_eq!((e.counted, e.since), (7, 2));
        assert_eq!(e.finished, 1);
        e.start(Instant::now());
        e.end(Err("down".to_owned()), Duration::ZERO);
        assert_eq!((e.counted, e.since), (7, 2));
        assert_eq!(e.failed.as_deref(), Some("down"));
        assert_eq!(e.finished, 2);
        assert!(e.refreshing.is_none());
    }

    /// A client and a stream like the broker's (`<prefix>.msg.>`, interest
    /// retention, discard new), with a consumer so messages are kept.
    struct Fixture {
        server: JetStreamServer,
        runtime: tokio::runtime::Runtime,
        client: async_nats::Client,
        context: jetstream::Context,
        counter: Counter,
    }

    fn fixture() -> Fixture {
        let server = JetStreamServer::start();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let url = server.url();
        let url2 = url.clone();
        let (client, context) = runtime.block_on(async move {
            let client = async_nats::connect(url).await.expect("connects");
            let context = jetstream::new(client.clone());
            let stream = context
                .get_or_create_stream(jetstream::stream::Config {
                    name: "t_messages".to_owned(),
                    subjects: vec!["t.msg.>".to_owned()],
                    retention: jetstream::stream::RetentionPolicy::Interest,
                    discard: jetstream::stream::DiscardPolicy::New,
                    ..Default::default()
                })
                .await
                .expect("a stream");
            stream
                .create_consumer(jetstream::consumer::pull::Config {
                    durable_name: Some("slow".to_owned()),
                    ..Default::default()
                })
                .await
                .expect("a consumer");
            (client, context)
        });
        Fixture {
            server,
            runtime,
            client,
            context,
            counter: Counter::new(
                async_nats::ConnectOptions::new(),
                &url2,
                &url2,
                "t_messages",
                "t.msg.",
            ),
        }
    }

    impl Fixture {
        /// Publishes `n` messages of `source`, on `topics` topics in turn,
        /// and returns once the stream stored them.
        fn publish(&self, source: &str, topics: usize, n: usize) {
            let client = self.client.clone();
            let context = self.context.clone();
            let source = source.to_owned();
            self.runtime.block_on(async move {
                let before = context
                    .get_stream("t_messages")
                    .await
                    .expect("stream")
                    .get_info()
                    .await
                    .expect("info")
                    .state
                    .messages;
                for i in 0..n {
                    client
                        .publish(format!("t.msg.{source}.topic{}", i % topics), "x".into())
                        .await
                        .expect("publish");
                }
                client.flush().await.expect("flush");
                let want = before + n as u64;
                let until = Instant::now() + Duration::from_secs(60);
                loop {
                    let info = context
                        .get_stream("t_messages")
                        .await
                        .expect("stream")
                        .get_info()
                        .await
                        .expect("info");
                    if info.state.messages >= want {
                        break;
                    }
                    assert!(Instant::now() < until, "stored {info:?}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
        }

        /// Publishes `n` messages stamped `source` on `topic` and returns
        /// once the stream stored them.
        fn publish_on(&self, source: &str, topic: &str, n: usize) {
            let client = self.client.clone();
            let context = self.context.clone();
            let subject = format!("t.msg.{source}.{topic}");
            self.runtime.block_on(async move {
                let mut stream = context.get_stream("t_messages").await.expect("stream");
                let want = stream.info().await.expect("info").state.messages + n as u64;
                for _ in 0..n {
                    client
                        .publish(subject.clone(), "x".into())
                        .await
                        .expect("publish");
                }
                client.flush().await.expect("flush");
                let until = Instant::now() + Duration::from_secs(60);
                while stream.info().await.expect("info").state.messages < want {
                    assert!(Instant::now() < until, "not stored");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
        }

        fn count(&self, component: &str, enough: u64, pages: usize) -> Counted {
            let counter = self.counter.clone();
            let client = self.client.clone();
            let component = component.to_owned();
            self.runtime
                .block_on(async move { counter.count(&client, &component, enough, pages).await })
                .expect("counted")
        }
    }

    #[test]
    fn the_server_counts_one_components_messages_whatever_their_topics() {
        let f = fixture();
        f.publish("alice", 3, 30);
        f.publish("bob", 1, 7);
        // A name that starts like another's is not counted with it.
        f.publish("alice-2", 1, 5);
        assert_eq!(
            f.count("alice", u64::MAX, MAX_PAGES),
            Counted {
                messages: 30,
                complete: true,
                pages: 1
            }
        );
        assert_eq!(f.count("bob", u64::MAX, MAX_PAGES).messages, 7);
        assert_eq!(f.count("carol", u64::MAX, MAX_PAGES).messages, 0);
        // Stops once enough are found.
        let many = f.count("alice", 10, MAX_PAGES);
        assert!(many.messages >= 10, "{many:?}");
    }

    /// A dead letter counts for the component that failed the message
    /// (its topic's last token), never for the message's source (its
    /// stamp).
    #[test]
    fn dead_letters_count_for_the_component_that_made_them() {
        let f = fixture();
        f.publish("alice", 2, 3);
        // mallory failed 5 of alice's messages, alice 2 of bob's.
        f.publish_on("alice", "airssys.dead-letter.mallory", 5);
        f.publish_on("bob", "airssys.dead-letter.alice", 2);
        assert_eq!(f.count("alice", u64::MAX, MAX_PAGES).messages, 3 + 2);
        assert_eq!(f.count("mallory", u64::MAX, MAX_PAGES).messages, 5);
        assert_eq!(f.count("bob", u64::MAX, MAX_PAGES).messages, 0);
    }

    /// nats-server 2.9 pages by 100,000 subjects: a flood on 100,001
    /// distinct topics takes two pages to count exactly, and one when the
    /// share is reached on the first (each unread subject holds at least
    /// one message).
    #[test]
    fn a_flood_over_many_topics_is_counted_right_in_bounded_pages() {
        let f = fixture();
        f.publish("flood", 100_001, 100_001);
        let all = f.count("flood", u64::MAX, MAX_PAGES);
        assert_eq!(
            all,
            Counted {
                messages: 100_001,
                complete: true,
                pages: 2
            }
        );
        let enough = f.count("flood", 50_000, MAX_PAGES);
        assert_eq!(enough.pages, 1, "{enough:?}");
        assert!(enough.messages >= 50_000, "{enough:?}");
        // The page cap: a lower bound, never more pages.
        let capped = f.count("flood", u64::MAX, 1);
        assert_eq!(
            capped,
            Counted {
                messages: 100_001,
                complete: false,
                pages: 1
            }
        );
    }

    #[test]
    fn a_share_refuses_at_its_bound_and_lets_through_once_counted_lower() {
        let f = fixture();
        let share = StreamShare::new(
            10,
            f.counter.clone(),
            f.runtime.handle().clone(),
            Duration::from_secs(5),
        );
        // Another host's messages of alice: 6 already in the stream.
        f.publish("alice", 2, 6);
        let mut admitted = 0;
        let refused = loop {
            match share.admit("alice", None) {
                Ok(ticket) => {
                    f.publish("alice", 1, 1);
                    ticket.stored();
                    admitted += 1;
                    assert!(admitted <= 10, "never refused");
                }
                Err(text) => break text,
            }
        };
        assert_eq!(admitted, 4, "6 + 4 = the share of 10");
        assert!(
            refused.contains("stream_max_messages_per_component")
                && refused.contains("component `alice`")
                && refused.contains("10 messages"),
            "{refused}"
        );
        // Another component is not touched.
        assert!(share.admit("bob", None).is_ok());
        // The subscriber takes everything: a count after the interval
        // lets alice through again.
        f.runtime.block_on(async {
            let stream = f.context.get_stream("t_messages").await.expect("stream");
            stream.purge().await.expect("purged");
        });
        std::thread::sleep(REFRESH_INTERVAL);
        share
            .admit("alice", None)
            .expect("counted again: room")
            .stored();
        assert_eq!(share.estimate("alice").messages(), 1);
    }

    #[test]
    fn a_count_that_does_not_come_ends_at_the_deadline() {
        let f = fixture();
        let share = StreamShare::new(
            2,
            f.counter.clone(),
            f.runtime.handle().clone(),
            Duration::from_secs(60),
        );
        // The last count found alice at her share.
        lock(&share.entry("alice").estimate).counted = 2;
        let paused = f.server.pause();
        std::thread::sleep(REFRESH_INTERVAL);
        let started = Instant::now();
        let refused = share
            .admit("alice", Some(Instant::now() + Duration::from_millis(300)))
            .expect_err("at the share, no count");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(refused.contains("did not come before"), "{refused}");
        drop(paused);
    }

    /// Stores `n` messages of `component` on distinct topics of 1,900
    /// bytes (a count of them answers about `n` × 1.9 KiB).
    fn store_long_topics(f: &Fixture, component: &str, n: usize) {
        let long = "x".repeat(1900);
        let client = f.client.clone();
        let component = component.to_owned();
        f.runtime.block_on(async move {
            for i in 0..n {
                client
                    .publish(format!("t.msg.{component}.{long}{i}"), "x".into())
                    .await
                    .expect("publish");
            }
            client.flush().await.expect("flush");
        });
        let context = f.context.clone();
        f.runtime.block_on(async move {
            let until = Instant::now() + Duration::from_secs(120);
            loop {
                let mut stream = context.get_stream("t_messages").await.expect("stream");
                let stored = stream.info().await.expect("info").state.messages;
                if stored >= n as u64 {
                    break;
                }
                assert!(Instant::now() < until, "stored {stored} of {n}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    /// The red-team review's hole (session 10): counts of every component
    /// ran on one connection, so a component whose count the server cuts
    /// (40,000 long topics answer about 76 MiB, past its `max_pending`:
    /// "Slow Consumer") made a neighbour's count, asked meanwhile, wait
    /// behind it and fail with it: the neighbour's publish was refused.
    /// Each component now counts on a connection of its own: the
    /// flooder's count alone fails (closed), the neighbour's is answered.
    #[test]
    fn a_count_the_server_cuts_fails_only_its_own_component() {
        let f = fixture();
        store_long_topics(&f, "alice", 40_000);
        let share = Arc::new(StreamShare::new(
            500_000,
            f.counter.clone(),
            f.runtime.handle().clone(),
            Duration::from_secs(30),
        ));
        let alice = {
            let share = Arc::clone(&share);
            std::thread::spawn(move || share.admit("alice", None).map(drop))
        };
        // Alice's count is asked, and the server is working on it.
        let until = Instant::now() + Duration::from_secs(30);
        while share.estimate("alice").refreshing.is_none() {
            assert!(Instant::now() < until, "alice's count never started");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(200));
        // A neighbour's first publish waits for its own count.
        let dave = share.admit("dave", None);
        let alice = alice.join().expect("alice's thread");
        assert!(
            dave.is_ok(),
            "the neighbour was refused for alice's count: {:?}",
            dave.err()
        );
        let refused = alice.expect_err("alice's count was cut: refused");
        assert!(refused.contains("component `alice`"), "{refused}");
        // (Alice's count may time out first on a loaded machine: the cut
        // comes once the server has its answer.)
        let until = Instant::now() + Duration::from_secs(30);
        while !f.server.log().contains("Slow Consumer") {
            assert!(Instant::now() < until, "{}", f.server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        // The neighbour publishes on.
        std::thread::sleep(REFRESH_INTERVAL);
        share
            .admit("dave", None)
            .expect("dave publishes on")
            .stored();
    }

    /// Measures what a count of a flood over long distinct topics costs
    /// (`cargo test -p airssys-runtime --features nats --lib huge -- --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement"]
    fn huge_answer() {
        let f = fixture();
        let n: usize = std::env::var("HUGE_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(40_000);
        let long = "x".repeat(1900);
        let client = f.client.clone();
        f.runtime.block_on(async move {
            for i in 0..n {
                client
                    .publish(format!("t.msg.flood.{long}{i}"), "x".into())
                    .await
                    .expect("publish");
            }
            client.flush().await.expect("flush");
        });
        std::thread::sleep(Duration::from_secs(3));
        let started = Instant::now();
        let counter = f.counter.clone();
        let client = f.client.clone();
        let counted = f
            .runtime
            .block_on(async move { counter.count(&client, "flood", u64::MAX, MAX_PAGES).await });
        eprintln!("{n} subjects: {counted:?} in {:?}", started.elapsed());
        eprintln!("{}", f.server.log());
    }

    /// Measures the fast path: a publish well below the share (`cargo
    /// test -p airssys-runtime --features nats --lib fast_path --
    /// --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement"]
    fn fast_path() {
        let f = fixture();
        let share = StreamShare::new(
            u64::MAX / 2,
            f.counter.clone(),
            f.runtime.handle().clone(),
            Duration::from_secs(5),
        );
        share.admit("alice", None).expect("counted").stored();
        let n = 1_000_000u32;
        let started = Instant::now();
        for _ in 0..n {
            share.admit("alice", None).expect("room").stored();
        }
        eprintln!("admit + stored: {:?} each", started.elapsed() / n);
    }
}
