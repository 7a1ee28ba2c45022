//! Messaging between the components of one runtime: the [`Broker`] seam and
//! its in-process default, [`InProcessBroker`].
//!
//! The broker only queues. Delivery — calling a subscriber's
//! `handler.handle-message` / `handler.handle-request` export — is done by
//! the runtime's dispatcher ([`crate::Instance::deliver_pending`],
//! [`crate::Runtime::run_until_idle`]), because only the owner of an
//! instance's `Store` may call into it. A broker therefore never calls
//! wasm, and a backend that carries messages between machines (NATS, say)
//! implements the same operations: `publish` maps to a subject publish,
//! `take` / `take_batch` to a pull (fetch) from the subscriber's durable
//! consumer, `requeue_front` / `requeue_front_all` to a negative
//! acknowledgement, `request` to a request on the target's inbox subject
//! with the reply filled from its answer. See `docs/messaging.md`.
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
//!   subscriber gets the message and the publisher gets the error;
//! - a message is stored once however many subscribers get it: topic,
//!   source and payload are shared (`Arc`) by every mailbox holding it, and
//!   the subscribers of a topic are computed once and cached until the next
//!   [`Broker::register`].

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

/// A message as delivered to `handler.handle-message`. Its parts are
/// shared, not copied, between the mailboxes that hold it and the retries
/// of its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The topic it was published on.
    pub topic: Arc<str>,
    /// The publishing component.
    pub source: Arc<str>,
    /// The body.
    pub payload: Arc<[u8]>,
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
        source: Arc<str>,
        /// The body.
        payload: Vec<u8>,
        /// Where the answer goes.
        reply: Arc<ReplySlot>,
    },
}

impl Delivery {
    fn source(&self) -> &Arc<str> {
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
    /// passed; returns whether it was stored. A stored answer wakes the
    /// requester's `poll` at once. Every completion of a request — an
    /// answer, a remote error, a responder unloaded or failing — goes
    /// through here.
    pub fn fill(&self, outcome: ReplyOutcome) -> bool {
        let mut state = self.lock();
        if !(matches!(*state, ReplyState::Pending) && Instant::now() < self.deadline) {
            return false;
        }
        *state = ReplyState::Ready(outcome);
        drop(state);
        crate::host::messaging::wake_pollers();
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

/// Carries messages between components. The in-process
/// [`InProcessBroker`] is the default; see the [module
/// documentation](self) for the seam a networked backend implements.
pub trait Broker: Send + Sync + std::fmt::Debug {
    /// Declares (or replaces) the subscriptions of `component`: topic
    /// patterns (`msg:subscribe:<pattern>`), each delivered only where
    /// `grants` also allows `msg:subscribe:<topic>` for the concrete topic.
    fn register(&self, component: &str, subscriptions: Vec<Capability>, grants: GrantSet);

    /// `component` was unloaded (the last of its loaded copies dropped):
    /// forget its subscriptions and drop its mailbox, so nothing more
    /// queues for it. Requests still queued for it are answered with
    /// [`ReplyOutcome::Remote`] saying so. Returns how many entries were
    /// dropped.
    fn unregister(&self, component: &str) -> usize;

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

/// The default broker: bounded mailboxes in memory. See the [module
/// documentation](self).
#[derive(Debug, Default)]
pub struct InProcessBroker {
    config: BrokerConfig,
    inner: Mutex<Inner>,
}

/// Distinct topics whose subscribers are cached; the cache is emptied when
/// it reaches this size, so a component publishing on ever new topics
/// cannot grow it without bound.
const ROUTE_CACHE_LIMIT: usize = 4096;

/// A map keyed by component names. Names come from the host's
/// configuration and manifests the host chose to load, so these maps use
/// rustc's fast multiplicative hash (`rustc-hash`); topics, which running
/// components choose freely, keep the standard DoS-resistant hasher.
type Names<V> = HashMap<Arc<str>, V, rustc_hash::FxBuildHasher>;

#[derive(Debug, Default)]
struct Inner {
    mailboxes: Names<Mailbox>,
    /// The subscribers of each topic published on since the last
    /// `register`.
    routes: HashMap<Box<str>, Arc<Route>>,
    /// The route used last: a publisher usually repeats its topic.
    last_route: Option<Arc<Route>>,
    /// The source named last, likewise.
    last_source: Option<Arc<str>>,
}

#[derive(Debug)]
struct Route {
    /// The topic, shared by every envelope published on it.
    topic: Arc<str>,
    /// The mailboxes that receive it.
    targets: Vec<Arc<str>>,
}

impl Inner {
    /// The route of `topic`, computed on first use.
    fn route(&mut self, topic: &str) -> Arc<Route> {
        if let Some(route) = self.last_route.as_ref().filter(|r| &*r.topic == topic) {
            return Arc::clone(route);
        }
        let route = match self.routes.get(topic) {
            Some(route) => Arc::clone(route),
            None => self.new_route(topic),
        };
        self.last_route = Some(Arc::clone(&route));
        route
    }

    fn new_route(&mut self, topic: &str) -> Arc<Route> {
        if self.routes.len() >= ROUTE_CACHE_LIMIT {
            self.routes.clear();
        }
        let mut targets: Vec<Arc<str>> = self
            .mailboxes
            .iter()
            .filter(|(_, mailbox)| mailbox.wants(topic))
            .map(|(name, _)| Arc::clone(name))
            .collect();
        // A stable order, whatever the map's.
        targets.sort_unstable();
        let route = Arc::new(Route {
            topic: Arc::from(topic),
            targets,
        });
        self.routes.insert(topic.into(), Arc::clone(&route));
        route
    }

    /// Forgets every route: who receives which topic may have changed.
    fn forget_routes(&mut self) {
        self.routes.clear();
        self.last_route = None;
    }

    /// The shared name of `component` (its mailbox key) when it has one.
    fn name(&mut self, component: &str) -> Arc<str> {
        if let Some(name) = self.last_source.as_ref().filter(|n| &***n == component) {
            return Arc::clone(name);
        }
        let name = self
            .mailboxes
            .get_key_value(component)
            .map_or_else(|| Arc::from(component), |(name, _)| Arc::clone(name));
        self.last_source = Some(Arc::clone(&name));
        name
    }

    fn mailbox(&mut self, component: &str) -> &mut Mailbox {
        if !self.mailboxes.contains_key(component) {
            self.mailboxes
                .insert(Arc::from(component), Mailbox::default());
        }
        self.mailboxes
            .get_mut(component)
            .expect("the mailbox was just inserted")
    }
}

#[derive(Debug, Default)]
struct Mailbox {
    subscriptions: Vec<Capability>,
    grants: GrantSet,
    running: usize,
    queue: VecDeque<Delivery>,
    /// Entries queued per source (few sources: a list beats a map).
    per_source: Vec<(Arc<str>, usize)>,
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
        let held = self
            .per_source
            .iter()
            .find(|(s, _)| &**s == source)
            .map_or(0, |(_, held)| *held);
        if held >= config.per_publisher_share {
            return Err(BrokerError::QueueFull(format!(
                "component `{source}` already has {held} entries queued for `{name}` (its share \
                 of that queue); try again once `{name}` has consumed them"
            )));
        }
        Ok(())
    }

    fn count_in(&mut self, source: &Arc<str>) {
        match self
            .per_source
            .iter_mut()
            .find(|(s, _)| Arc::ptr_eq(s, source) || **s == **source)
        {
            Some((_, held)) => *held += 1,
            None => self.per_source.push((Arc::clone(source), 1)),
        }
    }

    fn push(&mut self, delivery: Delivery) {
        self.count_in(delivery.source());
        self.queue.push_back(delivery);
    }

    fn push_front(&mut self, delivery: Delivery) {
        self.count_in(delivery.source());
        self.queue.push_front(delivery);
    }

    fn pop(&mut self) -> Option<Delivery> {
        let delivery = self.queue.pop_front()?;
        let source = delivery.source();
        if let Some(at) = self
            .per_source
            .iter()
            .position(|(s, _)| Arc::ptr_eq(s, source) || **s == **source)
        {
            let held = &mut self.per_source[at].1;
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.per_source.swap_remove(at);
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
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut inner = self.lock();
        let mailbox = inner.mailbox(component);
        mailbox.subscriptions = subscriptions;
        mailbox.grants = grants;
        inner.forget_routes();
    }

    fn unregister(&self, component: &str) -> usize {
        let mut inner = self.lock();
        let Some(mailbox) = inner.mailboxes.remove(component) else {
            return 0;
        };
        inner.forget_routes();
        inner.last_source = None;
        let dropped = mailbox.queue.len();
        for delivery in mailbox.queue {
            if let Delivery::Request { reply, .. } = delivery {
                reply.fill(ReplyOutcome::Remote(format!(
                    "component `{component}` was unloaded before it answered"
                )));
            }
        }
        dropped
    }

    fn set_running(&self, component: &str, running: bool) {
        let mut inner = self.lock();
        let mailbox = inner.mailbox(component);
        mailbox.running = if running {
            mailbox.running.saturating_add(1)
        } else {
            mailbox.running.saturating_sub(1)
        };
    }

    fn publish(&self, source: &str, topic: &str, payload: Vec<u8>) -> Result<usize, BrokerError> {
        self.check_payload(&payload)?;
        let mut guard = self.lock();
        let inner = &mut *guard;
        let route = inner.route(topic);
        let source_name = inner.name(source);
        let envelope = |payload: &Arc<[u8]>| Delivery::Message {
            envelope: Envelope {
                topic: Arc::clone(&route.topic),
                source: Arc::clone(&source_name),
                payload: Arc::clone(payload),
            },
            attempts: 0,
        };
        if let [name] = route.targets.as_slice() {
            // The common case, one subscriber: one lookup.
            if let Some(mailbox) = inner.mailboxes.get_mut(name) {
                mailbox.room_for(name, source, &self.config)?;
                mailbox.push(envelope(&Arc::from(payload)));
            }
            return Ok(1);
        }
        for name in &route.targets {
            if let Some(mailbox) = inner.mailboxes.get(name) {
                mailbox.room_for(name, source, &self.config)?;
            }
        }
        if route.targets.is_empty() {
            return Ok(0);
        }
        let payload: Arc<[u8]> = Arc::from(payload);
        for name in &route.targets {
            if let Some(mailbox) = inner.mailboxes.get_mut(name) {
                mailbox.push(envelope(&payload));
            }
        }
        Ok(route.targets.len())
    }

    fn request(
        &self,
        source: &str,
        target: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Arc<ReplySlot>, BrokerError> {
        self.check_payload(&payload)?;
        let mut inner = self.lock();
        let source = inner.name(source);
        let Some(mailbox) = inner.mailboxes.get_mut(target).filter(|m| m.running > 0) else {
            return Err(BrokerError::NotFound(format!(
                "no instance of component `{target}` is running in this runtime"
            )));
        };
        mailbox.room_for(target, &source, &self.config)?;
        let reply = Arc::new(ReplySlot::new(timeout));
        mailbox.push(Delivery::Request {
            source,
            payload,
            reply: Arc::clone(&reply),
        });
        Ok(reply)
    }

    fn take(&self, component: &str) -> Option<Delivery> {
        self.lock().mailboxes.get_mut(component)?.pop()
    }

    fn take_batch(&self, component: &str, max: usize, into: &mut VecDeque<Delivery>) -> usize {
        let mut inner = self.lock();
        let Some(mailbox) = inner.mailboxes.get_mut(component) else {
            return 0;
        };
        let mut taken = 0;
        while taken < max {
            let Some(delivery) = mailbox.pop() else {
                break;
            };
            into.push_back(delivery);
            taken += 1;
        }
        taken
    }

    fn requeue_front(&self, component: &str, delivery: Delivery) {
        self.lock().mailbox(component).push_front(delivery);
    }

    fn requeue_front_all(&self, component: &str, entries: &mut VecDeque<Delivery>) {
        let mut inner = self.lock();
        let mailbox = inner.mailbox(component);
        while let Some(delivery) = entries.pop_back() {
            mailbox.push_front(delivery);
        }
    }

    fn pending(&self, component: &str) -> usize {
        self.lock()
            .mailboxes
            .get(component)
            .map_or(0, |m| m.queue.len())
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

    fn payloads(entries: &VecDeque<Delivery>) -> Vec<u8> {
        entries
            .iter()
            .map(|d| match d {
                Delivery::Message { envelope, .. } => envelope.payload[0],
                Delivery::Request { payload, .. } => payload[0],
            })
            .collect()
    }

    #[test]
    fn batches_come_out_in_order_and_go_back_in_order() {
        let b = broker(8, 4);
        b.register(
            "a",
            vec![subscription("t").expect("pattern")],
            grants(&["msg:subscribe:t"]),
        );
        for i in 0..4 {
            assert_eq!(b.publish("p", "t", vec![i]), Ok(1));
        }
        let mut batch = VecDeque::new();
        assert_eq!(b.take_batch("a", 3, &mut batch), 3);
        assert_eq!(payloads(&batch), [0, 1, 2]);
        // The share counts queued entries only: one left, so three more fit.
        for i in 4..7 {
            assert_eq!(b.publish("p", "t", vec![i]), Ok(1));
        }
        assert!(b.publish("p", "t", vec![9]).is_err(), "share of 4 used up");
        batch.pop_front();
        b.requeue_front_all("a", &mut batch);
        assert!(batch.is_empty());
        assert_eq!(b.take_batch("a", 100, &mut batch), 6);
        assert_eq!(payloads(&batch), [1, 2, 3, 4, 5, 6]);
        assert_eq!(b.take_batch("a", 100, &mut batch), 0);
        assert_eq!(b.take_batch("nobody", 100, &mut batch), 0);
    }

    #[test]
    fn fan_out_shares_one_copy_and_routes_follow_register() {
        let b = broker(8, 8);
        let sub = vec![subscription("t.*").expect("pattern")];
        b.register("a", sub.clone(), grants(&["msg:subscribe:t.*"]));
        assert_eq!(b.publish("p", "t.x", vec![1, 2, 3]), Ok(1));
        // A new subscriber is seen by the next publish on a cached topic.
        b.register("b", sub, grants(&["msg:subscribe:t.*"]));
        assert_eq!(b.publish("p", "t.x", vec![4]), Ok(2));
        let (mut from_a, mut from_b) = (VecDeque::new(), VecDeque::new());
        b.take_batch("a", 8, &mut from_a);
        b.take_batch("b", 8, &mut from_b);
        assert_eq!(payloads(&from_a), [1, 4]);
        assert_eq!(payloads(&from_b), [4]);
        let (
            Some(Delivery::Message { envelope: x, .. }),
            Some(Delivery::Message { envelope: y, .. }),
        ) = (from_a.back(), from_b.back())
        else {
            panic!("messages expected");
        };
        assert!(Arc::ptr_eq(&x.payload, &y.payload), "one payload, shared");
        assert!(Arc::ptr_eq(&x.topic, &y.topic), "one topic, shared");
        assert_eq!((&*x.source, &*x.topic), ("p", "t.x"));
        // A narrowed grant stops delivery at once.
        b.register(
            "b",
            vec![subscription("t.*").expect("pattern")],
            grants(&["msg:subscribe:t.y"]),
        );
        assert_eq!(b.publish("p", "t.x", vec![5]), Ok(1));
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

    #[test]
    fn unregister_drops_the_mailbox_and_answers_queued_requests() {
        let b = broker(8, 8);
        let sub = vec![subscription("t").expect("valid pattern")];
        b.register("a", sub, grants(&["msg:subscribe:t"]));
        b.set_running("a", true);
        assert_eq!(b.publish("p", "t", b"x".to_vec()).expect("queued"), 1);
        let reply = b
            .request("p", "a", b"q".to_vec(), Duration::from_secs(60))
            .expect("request queued");
        assert_eq!(b.unregister("a"), 2);
        assert_eq!(b.pending("a"), 0);
        // Nothing routes to `a` any more, even for a topic routed before.
        assert_eq!(b.publish("p", "t", b"y".to_vec()).expect("no receiver"), 0);
        match reply.poll() {
            ReplyPoll::Ready(ReplyOutcome::Remote(text)) => {
                assert!(text.contains("`a` was unloaded"), "{text}");
            }
            other => panic!("expected a remote failure, got {other:?}"),
        }
        assert!(matches!(
            b.request("p", "a", b"q".to_vec(), Duration::from_secs(1)),
            Err(BrokerError::NotFound(_))
        ));
        assert_eq!(b.unregister("a"), 0);
    }
}
