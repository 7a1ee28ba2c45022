//! Messaging between the components of one runtime: the [`Broker`] seam and
//! its in-process default, [`InProcessBroker`].
//!
//! The broker only queues. Delivery — calling a subscriber's
//! `handler.handle-message` / `handler.handle-request` export — is done by
//! the runtime's dispatcher ([`crate::Instance::deliver_pending`],
//! [`crate::Runtime::run_until_idle`]), because only the owner of an
//! instance's `Store` may call into it. A broker therefore never calls
//! wasm, and a backend that carries messages between machines (NATS, say)
//! implements the same five operations: `publish` maps to a subject publish,
//! `take` to a pull from the subscriber's durable consumer, `requeue_front`
//! to a negative acknowledgement, `request` to a request on the target's
//! inbox subject with the reply filled from its answer. See
//! `docs/messaging.md`.
//!
//! Semantics of [`InProcessBroker`]:
//!
//! - one bounded FIFO mailbox per subscribing component (capacity
//!   [`BrokerConfig::queue_capacity`]); messages and requests share it, so
//!   delivery order per topic per subscriber is publish order;
//! - a publisher may hold at most [`BrokerConfig::per_publisher_share`]
//!   entries of any one mailbox, so a flooding component gets
//!   `quota-exceeded` while others can still reach the same subscriber;
//! - a publish is all-or-nothing: when any matching mailbox is full, no
//!   subscriber gets the message and the publisher gets the error.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use airssys_contract::capability::{Action, Capability, Domain, GrantSet, Request};

/// The topic prefix reserved for the host; components cannot publish on it.
pub const RESERVED_TOPIC_PREFIX: &str = "airssys.";

/// The dead-letter topic of `component`: where a message goes once its
/// handler failed [`BrokerConfig::max_attempts`] times.
pub fn dead_letter_topic(component: &str) -> String {
    format!("{RESERVED_TOPIC_PREFIX}dead-letter.{component}")
}

/// Sizes and bounds of the in-process broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Entries (messages and requests) one component's mailbox holds.
    pub queue_capacity: usize,
    /// Entries one publisher may hold in any one mailbox.
    pub per_publisher_share: usize,
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
            max_attempts: 3,
            max_payload_bytes: 1024 * 1024,
        }
    }
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
}

/// A message as delivered to `handler.handle-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The topic it was published on.
    pub topic: String,
    /// The publishing component.
    pub source: String,
    /// The body.
    pub payload: Vec<u8>,
}

/// One entry of a mailbox.
#[derive(Debug)]
#[non_exhaustive]
pub enum Delivery {
    /// A published message and how often delivery was tried already.
    Message {
        /// The message.
        envelope: Envelope,
        /// Failed deliveries so far.
        attempts: u32,
    },
    /// A request waiting for the target's `handle-request`.
    Request {
        /// The requesting component.
        source: String,
        /// The body.
        payload: Vec<u8>,
        /// Where the answer goes.
        reply: Arc<ReplySlot>,
    },
}

impl Delivery {
    fn source(&self) -> &str {
        match self {
            Delivery::Message { envelope, .. } => &envelope.source,
            Delivery::Request { source, .. } => source,
        }
    }
}

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

/// The meeting point of a request and its reply.
#[derive(Debug)]
pub struct ReplySlot {
    deadline: Instant,
    state: Mutex<ReplyState>,
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
    /// A slot that expires after `timeout`.
    pub fn new(timeout: Duration) -> ReplySlot {
        let now = Instant::now();
        ReplySlot {
            deadline: now
                .checked_add(timeout)
                .unwrap_or(now + Duration::from_secs(86_400)),
            state: Mutex::new(ReplyState::Pending),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ReplyState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the requester still waits: not abandoned, not past the
    /// deadline, not answered.
    pub fn is_wanted(&self) -> bool {
        matches!(*self.lock(), ReplyState::Pending) && Instant::now() < self.deadline
    }

    /// Stores the answer unless the requester gave up or the deadline
    /// passed; returns whether it was stored.
    pub fn fill(&self, outcome: ReplyOutcome) -> bool {
        let mut state = self.lock();
        if matches!(*state, ReplyState::Pending) && Instant::now() < self.deadline {
            *state = ReplyState::Ready(outcome);
            return true;
        }
        false
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

/// Carries messages between components. The in-process
/// [`InProcessBroker`] is the default; see the [module
/// documentation](self) for the seam a networked backend implements.
pub trait Broker: Send + Sync + std::fmt::Debug {
    /// Declares (or replaces) the subscriptions of `component`: topic
    /// patterns (`msg:subscribe:<pattern>`), each delivered only where
    /// `grants` also allows `msg:subscribe:<topic>` for the concrete topic.
    fn register(&self, component: &str, subscriptions: Vec<Capability>, grants: GrantSet);

    /// An instance of `component` started (`running = true`) or ended.
    /// Requests reach only components with a running instance.
    fn set_running(&self, component: &str, running: bool);

    /// Queues `payload` for every subscriber of `topic`; returns how many.
    ///
    /// # Errors
    ///
    /// [`BrokerError::QueueFull`] when a subscriber's mailbox (or the
    /// publisher's share of it) is full; nothing is queued then.
    fn publish(&self, source: &str, topic: &str, payload: Vec<u8>) -> Result<usize, BrokerError>;

    /// Queues a request for `target`; the answer comes through the
    /// returned slot.
    ///
    /// # Errors
    ///
    /// [`BrokerError::NotFound`] when no instance of `target` runs,
    /// [`BrokerError::QueueFull`] as for `publish`.
    fn request(
        &self,
        source: &str,
        target: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Arc<ReplySlot>, BrokerError>;

    /// Takes the oldest entry of `component`'s mailbox.
    fn take(&self, component: &str) -> Option<Delivery>;

    /// Puts an entry back at the head of `component`'s mailbox (a failed
    /// delivery to retry), ahead of everything queued since, so per-topic
    /// order holds. Never refused for capacity: the entry held its place.
    fn requeue_front(&self, component: &str, delivery: Delivery);

    /// Entries queued for `component`.
    fn pending(&self, component: &str) -> usize;

    /// The bounds in force.
    fn config(&self) -> BrokerConfig;
}

/// The default broker: bounded mailboxes in memory. See the [module
/// documentation](self).
#[derive(Debug, Default)]
pub struct InProcessBroker {
    config: BrokerConfig,
    mailboxes: Mutex<HashMap<String, Mailbox>>,
}

#[derive(Debug, Default)]
struct Mailbox {
    subscriptions: Vec<Capability>,
    grants: GrantSet,
    running: usize,
    queue: VecDeque<Delivery>,
    /// Entries queued per source.
    per_source: HashMap<String, usize>,
}

impl Mailbox {
    fn wants(&self, topic: &str) -> bool {
        let Ok(request) = Request::new(Domain::Msg, Action::Subscribe, topic) else {
            return false;
        };
        self.subscriptions.iter().any(|s| s.covers(&request))
            && self.grants.check(&request).is_allowed()
    }

    fn room_for(&self, name: &str, source: &str, config: &BrokerConfig) -> Result<(), BrokerError> {
        if self.queue.len() >= config.queue_capacity {
            return Err(BrokerError::QueueFull(format!(
                "the queue of component `{name}` is full ({} entries); it has not consumed its \
                 messages yet, try again later",
                config.queue_capacity
            )));
        }
        let held = self.per_source.get(source).copied().unwrap_or(0);
        if held >= config.per_publisher_share {
            return Err(BrokerError::QueueFull(format!(
                "component `{source}` already has {held} entries queued for `{name}` (its share \
                 of that queue); try again once `{name}` has consumed them"
            )));
        }
        Ok(())
    }

    fn push(&mut self, delivery: Delivery) {
        *self
            .per_source
            .entry(delivery.source().to_owned())
            .or_insert(0) += 1;
        self.queue.push_back(delivery);
    }

    fn pop(&mut self) -> Option<Delivery> {
        let delivery = self.queue.pop_front()?;
        if let Some(held) = self.per_source.get_mut(delivery.source()) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.per_source.remove(delivery.source());
            }
        }
        Some(delivery)
    }
}

impl InProcessBroker {
    /// A broker with these bounds (`max_attempts` and the sizes at least 1).
    pub fn new(config: BrokerConfig) -> InProcessBroker {
        InProcessBroker {
            config: BrokerConfig {
                queue_capacity: config.queue_capacity.max(1),
                per_publisher_share: config.per_publisher_share.max(1),
                max_attempts: config.max_attempts.max(1),
                max_payload_bytes: config.max_payload_bytes,
            },
            mailboxes: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Mailbox>> {
        self.mailboxes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_payload(&self, payload: &[u8]) -> Result<(), BrokerError> {
        if payload.len() > self.config.max_payload_bytes {
            return Err(BrokerError::InvalidInput(format!(
                "the payload has {} bytes; the limit is {} bytes",
                payload.len(),
                self.config.max_payload_bytes
            )));
        }
        Ok(())
    }
}

impl Broker for InProcessBroker {
    fn register(&self, component: &str, subscriptions: Vec<Capability>, grants: GrantSet) {
        let mut mailboxes = self.lock();
        let mailbox = mailboxes.entry(component.to_owned()).or_default();
        mailbox.subscriptions = subscriptions;
        mailbox.grants = grants;
    }

    fn set_running(&self, component: &str, running: bool) {
        let mut mailboxes = self.lock();
        let mailbox = mailboxes.entry(component.to_owned()).or_default();
        mailbox.running = if running {
            mailbox.running.saturating_add(1)
        } else {
            mailbox.running.saturating_sub(1)
        };
    }

    fn publish(&self, source: &str, topic: &str, payload: Vec<u8>) -> Result<usize, BrokerError> {
        self.check_payload(&payload)?;
        let mut mailboxes = self.lock();
        let mut targets: Vec<&str> = Vec::new();
        for (name, mailbox) in mailboxes.iter() {
            if mailbox.wants(topic) {
                mailbox.room_for(name, source, &self.config)?;
                targets.push(name);
            }
        }
        let targets: Vec<String> = targets.into_iter().map(str::to_owned).collect();
        for name in &targets {
            if let Some(mailbox) = mailboxes.get_mut(name) {
                mailbox.push(Delivery::Message {
                    envelope: Envelope {
                        topic: topic.to_owned(),
                        source: source.to_owned(),
                        payload: payload.clone(),
                    },
                    attempts: 0,
                });
            }
        }
        Ok(targets.len())
    }

    fn request(
        &self,
        source: &str,
        target: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Arc<ReplySlot>, BrokerError> {
        self.check_payload(&payload)?;
        let mut mailboxes = self.lock();
        let Some(mailbox) = mailboxes.get_mut(target).filter(|m| m.running > 0) else {
            return Err(BrokerError::NotFound(format!(
                "no instance of component `{target}` is running in this runtime"
            )));
        };
        mailbox.room_for(target, source, &self.config)?;
        let reply = Arc::new(ReplySlot::new(timeout));
        mailbox.push(Delivery::Request {
            source: source.to_owned(),
            payload,
            reply: Arc::clone(&reply),
        });
        Ok(reply)
    }

    fn take(&self, component: &str) -> Option<Delivery> {
        self.lock().get_mut(component)?.pop()
    }

    fn requeue_front(&self, component: &str, delivery: Delivery) {
        let mut mailboxes = self.lock();
        let mailbox = mailboxes.entry(component.to_owned()).or_default();
        *mailbox
            .per_source
            .entry(delivery.source().to_owned())
            .or_insert(0) += 1;
        mailbox.queue.push_front(delivery);
    }

    fn pending(&self, component: &str) -> usize {
        self.lock().get(component).map_or(0, |m| m.queue.len())
    }

    fn config(&self) -> BrokerConfig {
        self.config
    }
}

/// A subscription pattern from the policy as a `msg:subscribe` capability.
///
/// # Errors
///
/// The parse error when `pattern` is not a valid topic pattern.
pub fn subscription(
    pattern: &str,
) -> Result<Capability, airssys_contract::capability::CapabilityError> {
    Capability::parse(&format!("msg:subscribe:{pattern}"))
}

/// Whether `grants` covers every topic `subscription` can match: some
/// allow contains it and no deny overlaps it (overlap judged
/// conservatively: either side containing the other).
pub(crate) fn is_covered(subscription: &Capability, grants: &GrantSet) -> bool {
    grants.allows().iter().any(|a| subscription.is_subset_of(a))
        && !grants
            .denies()
            .iter()
            .any(|d| subscription.is_subset_of(d) || d.is_subset_of(subscription))
}

/// The subscriptions the policy configures for `component`, each checked
/// against its effective grant.
///
/// # Errors
///
/// [`LoadError::Subscription`] naming every subscription that the grant
/// does not cover, and what to add.
pub(crate) fn subscriptions(
    component: &str,
    policy: &crate::policy::Policy,
    grants: &GrantSet,
) -> Result<Vec<Capability>, crate::error::LoadError> {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for rule in policy.subscriptions_for(component) {
        if is_covered(&rule.capability, grants) {
            accepted.push(rule.capability.clone());
        } else {
            refused.push(format!(
                "  - `{}`{}",
                rule.capability,
                policy.rule_origin(rule)
            ));
        }
    }
    if refused.is_empty() {
        return Ok(accepted);
    }
    Err(crate::error::LoadError::Subscription {
        component: component.to_owned(),
        message: format!(
            "component `{component}` is subscribed by the policy to topics its effective grant \
             does not cover:\n{}\nthe component must declare (in `requires` or `optional`) and \
             the policy must grant a `msg:subscribe` capability covering each, or remove the \
             subscription",
            refused.join("\n")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(capacity: usize, share: usize) -> InProcessBroker {
        InProcessBroker::new(BrokerConfig {
            queue_capacity: capacity,
            per_publisher_share: share,
            ..BrokerConfig::default()
        })
    }

    fn grants(list: &[&str]) -> GrantSet {
        list.iter()
            .fold(GrantSet::builder(), |b, c| {
                b.allow(Capability::parse(c).expect("valid capability"))
            })
            .build()
    }

    #[test]
    fn delivers_only_where_subscription_and_grant_agree() {
        let b = broker(8, 8);
        let sub = vec![subscription("orders.*").expect("pattern")];
        b.register("a", sub.clone(), grants(&["msg:subscribe:orders.*"]));
        b.register("b", sub, grants(&["msg:subscribe:orders.created"]));
        assert_eq!(b.publish("p", "orders.created", vec![1]), Ok(2));
        assert_eq!(b.publish("p", "orders.deleted", vec![2]), Ok(1));
        assert_eq!(b.publish("p", "other.x", vec![3]), Ok(0));
        assert_eq!((b.pending("a"), b.pending("b")), (2, 1));
    }

    #[test]
    fn full_queue_refuses_all_or_nothing_and_share_limits_one_publisher() {
        let b = broker(3, 2);
        let sub = vec![subscription("t").expect("pattern")];
        b.register("a", sub.clone(), grants(&["msg:subscribe:t"]));
        b.register("b", sub, grants(&["msg:subscribe:t"]));
        assert_eq!(b.publish("p", "t", vec![]), Ok(2));
        assert_eq!(b.publish("p", "t", vec![]), Ok(2));
        let err = b.publish("p", "t", vec![]).expect_err("share used up");
        assert!(err.to_string().contains("share"), "{err}");
        assert_eq!(b.publish("q", "t", vec![]), Ok(2));
        let err = b.publish("q", "t", vec![]).expect_err("queue full");
        assert!(err.to_string().contains("full"), "{err}");
        assert_eq!((b.pending("a"), b.pending("b")), (3, 3));
        assert!(b.take("a").is_some());
        assert_eq!(
            b.publish("q", "t", vec![]).map_err(|_| ()),
            Err(()),
            "b still full"
        );
        assert_eq!((b.pending("a"), b.pending("b")), (2, 3));
    }

    #[test]
    fn reply_slot_answers_once_and_times_out() {
        let slot = ReplySlot::new(Duration::from_secs(60));
        assert_eq!(slot.poll(), ReplyPoll::Pending);
        assert!(slot.fill(ReplyOutcome::Reply(vec![7])));
        assert_eq!(slot.poll(), ReplyPoll::Ready(ReplyOutcome::Reply(vec![7])));
        assert_eq!(slot.poll(), ReplyPoll::Gone);
        let late = ReplySlot::new(Duration::ZERO);
        assert_eq!(late.poll(), ReplyPoll::TimedOut);
        assert!(!late.fill(ReplyOutcome::Reply(vec![])));
    }

    #[test]
    fn coverage_respects_wildcards_and_denies() {
        let g = grants(&["msg:subscribe:orders.>"]);
        assert!(is_covered(&subscription("orders.*").expect("p"), &g));
        let narrow = grants(&["msg:subscribe:orders.*"]);
        assert!(!is_covered(&subscription("orders.>").expect("p"), &narrow));
        assert!(!is_covered(&subscription("billing.*").expect("p"), &g));
    }
}
