//! Messaging between the components of one runtime: the [`Broker`] seam,
//! its in-process default [`InProcessBroker`] (`in_process.rs`), what a
//! broker carries ([`Envelope`], [`Delivery`]: `message.rs`), where a
//! request's answer meets its requester ([`ReplySlot`]: `reply.rs`), and
//! the policy's subscriptions checked against a component's grant at load
//! time (`admission.rs`).
//!
//! The broker only queues. Delivery — calling a subscriber's
//! `handler.handle-message` / `handler.handle-request` export — is done by
//! the runtime's dispatcher ([`crate::Instance::deliver_pending`],
//! [`crate::Runtime::run_until_idle`]), because only the owner of an
//! instance's `Store` may call into it. A broker therefore never calls
//! wasm, and a backend that carries messages between machines (NATS, say)
//! implements the same operations: `publish` maps to a subject publish
//! (JetStream: stored, the wait bounded by the caller's deadline with
//! [`Broker::publish_by`]), the subscriber's mailbox is filled by pulling
//! from its durable consumer, [`Broker::settle`] (called by the dispatcher
//! once a message was handled or dead-lettered) to the acknowledgement,
//! `request` to a request on the target's inbox subject with the reply
//! filled from its answer. See `docs/messaging.md` and `docs/nats.md`.
//!
//! What the runtime hands a broker is all a broker needs: each
//! [`Subscriber`] carries the component's [`Notifier`], which the broker
//! notifies whenever it queues something for the component (a server's
//! dispatcher sleeps on it instead of polling), and each request comes
//! with the [`ReplySlot`] its answer goes into; filling the slot wakes
//! the requester through the notifier the requester gave the slot.

pub(crate) mod admission;
mod in_process;
mod message;
#[cfg(feature = "nats")]
mod nats;
mod reply;

use std::collections::VecDeque;
use std::sync::Arc;

use airssys_contract::capability::{Capability, GrantSet};

pub use self::in_process::InProcessBroker;
pub use self::message::{Delivery, Envelope};
#[cfg(feature = "nats")]
pub use self::nats::{
    MAX_SUBJECT_BYTES, NatsBroker, NatsBrokerBuilder, NatsConfigError, NatsConnectOptions,
    NatsConnectionState, NatsConnectionStatus, NatsConnectionWatch, NatsDelivery, NatsError,
    SOURCE_HEADER, TOPIC_HEADER,
};
pub use self::reply::{ReplyBudget, ReplyOutcome, ReplyPoll, ReplySlot};
pub use crate::sync::Notifier;

/// The topic prefix reserved for the host; components cannot publish on it.
pub const RESERVED_TOPIC_PREFIX: &str = "airssys.";

/// The dead-letter topic of `component`: where a message for it goes once
/// its handler failed [`BrokerConfig::max_attempts`] times, or when its
/// mailbox refused a message that other subscribers took, or the message
/// is larger than it can take.
pub fn dead_letter_topic(component: &str) -> String {
    format!("{RESERVED_TOPIC_PREFIX}dead-letter.{component}")
}

/// The largest message (topic and payload bytes) a component whose
/// instances may use `memory_bytes` of linear memory is given: half of it.
/// Lowering a message copies it into the guest's memory, which also holds
/// the guest's stack, data and heap, and a handler that does anything with
/// the payload needs room for at least one more copy; a larger message
/// would make every fresh instance run into its memory limit, so it is
/// dead-lettered at once instead of being retried.
pub fn message_bound(memory_bytes: u64) -> usize {
    usize::try_from(memory_bytes / 2).unwrap_or(usize::MAX)
}

/// Sizes and bounds of the in-process broker. Every bound, when hit, is
/// named in the refusal (`quota-exceeded` to a publisher, the dead-letter
/// warning for a subscriber).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Entries (messages and requests) one component's mailbox holds.
    pub queue_capacity: usize,
    /// Entries one publisher may hold in any one mailbox.
    pub per_publisher_share: usize,
    /// Bytes (topic and payload of messages, payload of requests) one
    /// component's mailbox holds.
    pub mailbox_bytes: usize,
    /// Bytes one publisher may hold in any one mailbox, so that one
    /// publisher of large payloads cannot take a mailbox's memory.
    pub per_publisher_bytes: usize,
    /// Deliveries of one message before it is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// Largest payload accepted, in bytes.
    pub max_payload_bytes: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            queue_capacity: 1024,
            per_publisher_share: 512,
            mailbox_bytes: 16 * 1024 * 1024,
            per_publisher_bytes: 8 * 1024 * 1024,
            max_attempts: 3,
            max_payload_bytes: 1024 * 1024,
        }
    }
}

/// What the broker knows of a subscribing component: what it receives, its
/// own bounds, and whom to tell when something is queued for it. Built
/// with [`Subscriber::new`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Subscriber {
    /// Topic patterns (`msg:subscribe:<pattern>`).
    pub subscriptions: Vec<Capability>,
    /// The component's effective grant: a concrete topic is delivered
    /// only where it also allows `msg:subscribe:<topic>`.
    pub grants: GrantSet,
    /// The largest message (topic and payload bytes) the component can
    /// take; a larger one is dead-lettered at once, and a larger request
    /// refused. The runtime sets [`message_bound`] of its
    /// `limits.memory_bytes`.
    pub max_message_bytes: usize,
    /// Notified by the broker after it queued anything for the component
    /// (a message, a dead letter, a request, an entry put back), so the
    /// component's dispatcher can sleep until there is mail instead of
    /// polling. The runtime hands in the component's
    /// [`LoadedComponent::mailbox_notifier`](crate::LoadedComponent::mailbox_notifier);
    /// a backend keeps it with the subscription and calls
    /// [`Notifier::notify`] from whatever thread receives the message.
    pub notifier: Arc<Notifier>,
}

impl Subscriber {
    /// A subscriber of `subscriptions` under `grants`, taking messages of
    /// any size the broker accepts, with a notifier of its own.
    pub fn new(subscriptions: Vec<Capability>, grants: GrantSet) -> Subscriber {
        Subscriber {
            subscriptions,
            grants,
            max_message_bytes: usize::MAX,
            notifier: Arc::default(),
        }
    }

    /// Sets [`Subscriber::max_message_bytes`].
    #[must_use]
    pub fn max_message_bytes(mut self, bytes: usize) -> Subscriber {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets [`Subscriber::notifier`].
    #[must_use]
    pub fn notifier(mut self, notifier: Arc<Notifier>) -> Subscriber {
        self.notifier = notifier;
        self
    }
}

/// What became of a message the dispatcher took from a mailbox: told to
/// the broker with [`Broker::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// `handler.handle-message` returned ok.
    Handled,
    /// It went to the component's dead-letter topic
    /// ([`Broker::dead_letter`] was called before): its last attempt
    /// failed, or it is larger than the component can take.
    DeadLettered,
}

/// Why the broker refused a publish or request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// A mailbox is full, or the publisher used up its share of it.
    #[error("{0}")]
    QueueFull(String),
    /// No component of that name is running.
    #[error("{0}")]
    NotFound(String),
    /// The topic, name or payload is not acceptable.
    #[error("{0}")]
    InvalidInput(String),
    /// Something outside the component's grants refused it: a NATS
    /// server whose permissions do not let this host's user publish (or
    /// subscribe) on the subject. The text names the subject and the
    /// setting. The messaging interface's `denied`.
    #[error("{0}")]
    Denied(String),
}

/// Carries messages between components. The in-process
/// [`InProcessBroker`] is the default; see the [module
/// documentation](self) for the seam a networked backend implements.
///
/// A backend needs nothing of the runtime's beyond what these methods
/// hand it: it tells a subscriber of new mail through
/// [`Subscriber::notifier`] and completes a request through its
/// [`ReplySlot`], which wakes whoever waits for it.
pub trait Broker: Send + Sync + std::fmt::Debug {
    /// Declares (or replaces) the subscriptions and bounds of
    /// `component`, and the notifier to tell when something is queued for
    /// it (see [`Subscriber`]).
    fn register(&self, component: &str, subscriber: Subscriber);

    /// `component` was unloaded (the last of its loaded copies dropped):
    /// forget its subscriptions and drop its mailbox, so nothing more
    /// queues for it. Requests still queued for it are answered with
    /// [`ReplyOutcome::Remote`] saying so. Returns how many entries were
    /// dropped.
    fn unregister(&self, component: &str) -> usize;

    /// A count that changes whenever a [`register`](Broker::register) or
    /// [`unregister`](Broker::unregister) of any component is done. A
    /// dispatcher holding entries taken before a change stops its pass and
    /// puts them back ([`Broker::requeue_front_all`], which drops what the
    /// new registration no longer covers), so no message reaches a
    /// component whose grant was narrowed once `register` returned. The
    /// default (always 0) suits a backend whose `register` never narrows
    /// what is already taken.
    fn registrations(&self) -> u64 {
        0
    }

    /// An instance of `component` started (`running = true`) or ended.
    /// Requests reach only components with a running instance.
    fn set_running(&self, component: &str, running: bool);

    /// Queues `payload` for every subscriber of `topic`, each under its own
    /// bounds, and returns how many queued it. A subscriber whose mailbox
    /// refuses the message (full, or the publisher's share of it used up)
    /// while another subscriber takes it gets it as a dead letter
    /// ([`dead_letter_topic`]); so does a subscriber the message is too
    /// large for ([`Subscriber::max_message_bytes`]), always. With no
    /// subscriber, nothing happens and 0 is returned.
    ///
    /// # Errors
    ///
    /// Only when no subscriber queued the message:
    /// [`BrokerError::QueueFull`] when at least one refused it for now
    /// (nothing was queued for anyone, so the publisher may try again
    /// later), naming each refusing subscriber and the bound it hit;
    /// [`BrokerError::InvalidInput`] when it is too large for every
    /// subscriber (it was dead-lettered for each) or for the broker
    /// ([`BrokerConfig::max_payload_bytes`]).
    fn publish(&self, source: &str, topic: &str, payload: Vec<u8>) -> Result<usize, BrokerError>;

    /// [`Broker::publish`] from inside a component's host call that must
    /// end by `deadline` (its `limits.cpu_time`): a broker that waits on
    /// the network for the message to be taken (JetStream: stored) waits at
    /// most until then, and refuses with [`BrokerError::QueueFull`] when
    /// that is not enough. The default ignores the deadline.
    ///
    /// # Errors
    ///
    /// As [`Broker::publish`].
    fn publish_by(
        &self,
        source: &str,
        topic: &str,
        payload: Vec<u8>,
        deadline: Option<std::time::Instant>,
    ) -> Result<usize, BrokerError> {
        let _ = deadline;
        self.publish(source, topic, payload)
    }

    /// Sends `envelope`, a message `component` did not handle, to
    /// `component`'s dead-letter topic with its source and payload;
    /// returns how many subscribers of that topic queued it (a dead letter
    /// that cannot be queued is dropped: dead letters are never
    /// dead-lettered again). The default publishes it there.
    fn dead_letter(&self, component: &str, envelope: Envelope) -> usize {
        let topic = dead_letter_topic(component);
        self.publish(&envelope.source, &topic, envelope.payload.to_vec())
            .unwrap_or(0)
    }

    /// The dispatcher is done with `envelope`, a message it took from
    /// `component`'s mailbox (the envelope as taken, its parts shared, not
    /// copied): `settlement` says how. Called once per message, after the
    /// handler returned ok or after [`Broker::dead_letter`]; not for a
    /// failed attempt that is retried, nor for an entry put back with
    /// [`Broker::requeue_front`] (it is still the broker's). A broker that
    /// keeps messages until they are handled (JetStream: acknowledges the
    /// message here) uses it; what it never hears of was not handled, and
    /// may be delivered again. The default (the in-process broker's)
    /// does nothing: a message taken is gone from the broker.
    fn settle(&self, component: &str, envelope: &Envelope, settlement: Settlement) {
        let _ = (component, envelope, settlement);
    }

    /// Queues a request for `target`, to be answered through `reply`:
    /// the caller made the slot (with its deadline and the notifier of
    /// whoever waits for the answer) and keeps a handle to it; the broker
    /// keeps the other until the request is answered or dropped, and
    /// completes it only with [`ReplySlot::fill`]. A broker that waits
    /// for the target's host to accept the request waits at most until
    /// the slot's [`ReplySlot::admit_by`] (the requester's own call
    /// deadline: the wait is inside its host call).
    ///
    /// # Errors
    ///
    /// [`BrokerError::NotFound`] when no instance of `target` runs,
    /// [`BrokerError::QueueFull`] when `target`'s mailbox refuses it for
    /// now, [`BrokerError::InvalidInput`] when it is larger than `target`
    /// can take ([`Subscriber::max_message_bytes`]) or than the broker
    /// accepts; a networked backend also [`BrokerError::Denied`] when
    /// the network refused it (a NATS server's permissions).
    fn request(
        &self,
        source: &str,
        target: &str,
        payload: Vec<u8>,
        reply: Arc<ReplySlot>,
    ) -> Result<(), BrokerError>;

    /// Takes the oldest entry of `component`'s mailbox.
    fn take(&self, component: &str) -> Option<Delivery>;

    /// Takes up to `max` of the oldest entries of `component`'s mailbox, in
    /// order, appending them to `into`; returns how many. The dispatcher
    /// takes a whole batch at once so that a backend pays its per-fetch
    /// cost (a lock, a network round trip) once per batch. The default
    /// calls [`Broker::take`] `max` times.
    fn take_batch(&self, component: &str, max: usize, into: &mut VecDeque<Delivery>) -> usize {
        let mut taken = 0;
        while taken < max {
            let Some(delivery) = self.take(component) else {
                break;
            };
            into.push_back(delivery);
            taken += 1;
        }
        taken
    }

    /// Puts an entry back at the head of `component`'s mailbox (a failed
    /// delivery to retry), ahead of everything queued since, so per-topic
    /// order holds. Never refused for capacity: the entry held its place.
    fn requeue_front(&self, component: &str, delivery: Delivery);

    /// Puts `entries` back at the head of `component`'s mailbox, keeping
    /// their order (the front of `entries` becomes the head), and leaves
    /// `entries` empty: the unprocessed rest of a batch taken with
    /// [`Broker::take_batch`]. The default calls [`Broker::requeue_front`]
    /// from the back.
    fn requeue_front_all(&self, component: &str, entries: &mut VecDeque<Delivery>) {
        while let Some(delivery) = entries.pop_back() {
            self.requeue_front(component, delivery);
        }
    }

    /// Entries queued for `component`.
    fn pending(&self, component: &str) -> usize;

    /// The bounds in force.
    fn config(&self) -> BrokerConfig;
}
