//! [`InProcessBroker`], the default [`Broker`]: bounded mailboxes in
//! memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use airssys_contract::capability::{Action, Capability, Domain, GrantSet, Request};

use super::{
    Broker, BrokerConfig, BrokerError, Delivery, Envelope, RESERVED_TOPIC_PREFIX, ReplyOutcome,
    ReplySlot, Subscriber, dead_letter_topic,
};
use crate::sync::Notifier;

/// The default broker: bounded mailboxes in memory.
///
/// Semantics:
///
/// - one bounded FIFO mailbox per subscribing component (at most
///   [`BrokerConfig::queue_capacity`] entries and
///   [`BrokerConfig::mailbox_bytes`] bytes); messages and requests share
///   it, so delivery order per topic per subscriber is publish order;
/// - a publisher may hold at most [`BrokerConfig::per_publisher_share`]
///   entries and [`BrokerConfig::per_publisher_bytes`] bytes of any one
///   mailbox, so a flooding component is refused while others can still
///   reach the same subscriber;
/// - delivery is per subscriber: each matching mailbox takes the message
///   or refuses it under its own bounds, and one that refuses it while
///   another takes it gets it as a dead letter
///   (`airssys.dead-letter.<subscriber>`) instead. The publisher gets an
///   error only when no subscriber took the message (see
///   [`Broker::publish`]);
/// - a message larger than a subscriber can ever take
///   ([`Subscriber::max_message_bytes`], or a publisher's or mailbox's
///   whole byte bound) is dead-lettered for that subscriber at once,
///   never queued;
/// - a message is stored once however many subscribers get it: topic,
///   source and payload are shared (`Arc`) by every mailbox holding it, and
///   the subscribers of a topic are computed once and cached until the next
///   [`Broker::register`];
/// - the mailbox's [`Subscriber::notifier`] is notified whenever an entry
///   is queued in it (a message, a dead letter, a request, an entry put
///   back).
#[derive(Debug, Default)]
pub struct InProcessBroker {
    config: BrokerConfig,
    inner: Mutex<Inner>,
    /// [`Broker::registrations`].
    registrations: std::sync::atomic::AtomicU64,
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

#[derive(Debug)]
struct Mailbox {
    subscriptions: Vec<Capability>,
    grants: GrantSet,
    /// See [`Subscriber::max_message_bytes`].
    max_message_bytes: usize,
    running: usize,
    queue: VecDeque<Delivery>,
    /// Bytes of the entries queued ([`Delivery::size`]).
    bytes: usize,
    /// What each source has queued (few sources: a list beats a map).
    per_source: Vec<Share>,
    /// Messages refused since the mailbox last took one: the first
    /// refusal of a run is logged, the rest only counted.
    refused: u64,
    /// See [`Subscriber::notifier`]; notified by every push.
    notifier: Arc<Notifier>,
}

impl Default for Mailbox {
    fn default() -> Self {
        Mailbox {
            subscriptions: Vec::new(),
            grants: GrantSet::default(),
            max_message_bytes: usize::MAX,
            running: 0,
            queue: VecDeque::new(),
            bytes: 0,
            per_source: Vec::new(),
            refused: 0,
            notifier: Arc::default(),
        }
    }
}

/// One source's part of a mailbox.
#[derive(Debug)]
struct Share {
    source: Arc<str>,
    entries: usize,
    bytes: usize,
}

/// Whether a mailbox takes an entry.
enum Admission {
    /// It fits.
    Fits,
    /// Not now: a bound is reached; the text names it.
    Full(String),
    /// Never: the entry is larger than a whole bound; the text names it.
    TooLarge(String),
}

impl Mailbox {
    fn wants(&self, topic: &str) -> bool {
        let Ok(request) = Request::new(Domain::Msg, Action::Subscribe, topic) else {
            return false;
        };
        self.subscriptions.iter().any(|s| s.covers(&request))
            && self.grants.check(&request).is_allowed()
    }

    fn share(&self, source: &str) -> Option<&Share> {
        self.per_source.iter().find(|s| &*s.source == source)
    }

    /// Whether this mailbox (of component `name`) takes an entry of `size`
    /// bytes from `source` now.
    fn admit(&self, name: &str, source: &str, size: usize, config: &BrokerConfig) -> Admission {
        if let Some(bound) = self.too_large(name, size, config) {
            return Admission::TooLarge(bound);
        }
        if self.queue.len() >= config.queue_capacity {
            return Admission::Full(format!(
                "the queue of component `{name}` is full ({} entries, the broker's \
                 `queue_capacity`); it has not consumed its messages yet, try again later",
                config.queue_capacity
            ));
        }
        if self.bytes.saturating_add(size) > config.mailbox_bytes {
            return Admission::Full(format!(
                "the queue of component `{name}` holds {} bytes; {size} more would pass its \
                 limit of {} bytes (the broker's `mailbox_bytes`); try again once `{name}` has \
                 consumed its messages",
                self.bytes, config.mailbox_bytes
            ));
        }
        let (entries, bytes) = self.share(source).map_or((0, 0), |s| (s.entries, s.bytes));
        if entries >= config.per_publisher_share {
            return Admission::Full(format!(
                "component `{source}` already has {entries} entries queued for `{name}`, its \
                 share of that queue (the broker's `per_publisher_share`); try again once \
                 `{name}` has consumed them"
            ));
        }
        if bytes.saturating_add(size) > config.per_publisher_bytes {
            return Admission::Full(format!(
                "component `{source}` already has {bytes} bytes queued for `{name}`; {size} more \
                 would pass its share of that queue, {} bytes (the broker's \
                 `per_publisher_bytes`); try again once `{name}` has consumed them",
                config.per_publisher_bytes
            ));
        }
        Admission::Fits
    }

    /// The bound an entry of `size` bytes can never fit under, if any.
    fn too_large(&self, name: &str, size: usize, config: &BrokerConfig) -> Option<String> {
        let bounds = [
            (
                self.max_message_bytes,
                "the largest message it can take (half its `limits.memory_bytes`)",
            ),
            (
                config.per_publisher_bytes,
                "a publisher's whole share of its queue (the broker's `per_publisher_bytes`)",
            ),
            (
                config.mailbox_bytes,
                "its whole queue (the broker's `mailbox_bytes`)",
            ),
        ];
        let (limit, what) = bounds.into_iter().min_by_key(|(limit, _)| *limit)?;
        (size > limit).then(|| {
            format!(
                "a message of {size} bytes (topic and payload) is larger than component `{name}` \
                 can take: {limit} bytes, {what}"
            )
        })
    }

    fn count_in(&mut self, source: &Arc<str>, size: usize) {
        self.bytes = self.bytes.saturating_add(size);
        match self
            .per_source
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s.source, source) || *s.source == **source)
        {
            Some(share) => {
                share.entries += 1;
                share.bytes = share.bytes.saturating_add(size);
            }
            None => self.per_source.push(Share {
                source: Arc::clone(source),
                entries: 1,
                bytes: size,
            }),
        }
    }

    fn push(&mut self, delivery: Delivery) {
        self.push_quiet(delivery);
        self.notifier.notify();
    }

    /// [`Mailbox::push`] without the notification: the caller notifies
    /// once for several pushes.
    fn push_quiet(&mut self, delivery: Delivery) {
        self.count_in(delivery.source(), delivery.size());
        self.queue.push_back(delivery);
    }

    fn push_front(&mut self, delivery: Delivery) {
        self.count_in(delivery.source(), delivery.size());
        self.queue.push_front(delivery);
        self.notifier.notify();
    }

    /// Takes out of the queue every message that the mailbox's
    /// subscriptions and grants no longer cover (a new registration
    /// narrowed them), keeping the order of the rest; returns them.
    /// Requests stay: they are checked against the requester's grant.
    fn drop_unwanted(&mut self) -> Vec<Envelope> {
        let mut dropped = Vec::new();
        if self.queue.is_empty() {
            return dropped;
        }
        let mut kept = VecDeque::with_capacity(self.queue.len());
        while let Some(delivery) = self.pop() {
            match delivery {
                Delivery::Message { envelope, .. } if !self.wants(&envelope.topic) => {
                    dropped.push(envelope);
                }
                other => kept.push_back(other),
            }
        }
        for delivery in kept {
            self.push_quiet(delivery);
        }
        dropped
    }

    /// Whether `delivery` may go (back) into this mailbox: a request, or a
    /// message its subscriptions and grants cover now.
    fn still_wants(&self, delivery: &Delivery) -> bool {
        match delivery {
            Delivery::Message { envelope, .. } => self.wants(&envelope.topic),
            Delivery::Request { .. } => true,
        }
    }

    fn pop(&mut self) -> Option<Delivery> {
        let delivery = self.queue.pop_front()?;
        let size = delivery.size();
        self.bytes = self.bytes.saturating_sub(size);
        let source = delivery.source();
        if let Some(at) = self
            .per_source
            .iter()
            .position(|s| Arc::ptr_eq(&s.source, source) || *s.source == **source)
        {
            let share = &mut self.per_source[at];
            share.entries = share.entries.saturating_sub(1);
            share.bytes = share.bytes.saturating_sub(size);
            if share.entries == 0 {
                self.per_source.swap_remove(at);
            }
        }
        Some(delivery)
    }

    /// Takes a published message: a run of refusals ends. The notifier
    /// is notified when `notify` (otherwise the caller does it).
    fn accept(&mut self, name: &str, delivery: Delivery, notify: bool) {
        if self.refused > 0 {
            tracing::info!(
                target: "airssys::messaging",
                component = name,
                refused = self.refused,
                "the mailbox takes messages again"
            );
            self.refused = 0;
        }
        if notify {
            self.push(delivery);
        } else {
            self.push_quiet(delivery);
        }
    }

    /// Counts a message refused for `reason`; logs the first of a run.
    fn refuse(&mut self, name: &str, reason: &str, dead_lettered: bool) {
        if self.refused == 0 {
            tracing::warn!(
                target: "airssys::messaging",
                component = name,
                error = reason,
                dead_lettered,
                "the mailbox of `{name}` refuses a message (further refusals are counted, not \
                 logged, until it takes one again)"
            );
        }
        self.refused = self.refused.saturating_add(1);
    }
}

/// What happened to a published message at one subscriber.
enum Outcome {
    Queued,
    /// Refused for now (the text names the bound).
    Refused(String),
    /// Too large for it, ever (the text names the bound).
    TooLarge(String),
}

impl InProcessBroker {
    /// [`Broker::register`], returning the queued messages the new
    /// subscriptions and grants no longer cover: they are taken out of
    /// the mailbox, so a narrowed registration is in force for what is
    /// already queued as well as for what comes next.
    pub(crate) fn register_dropping(
        &self,
        component: &str,
        subscriber: Subscriber,
    ) -> Vec<Envelope> {
        let mut inner = self.lock();
        let mailbox = inner.mailbox(component);
        mailbox.subscriptions = subscriber.subscriptions;
        mailbox.grants = subscriber.grants;
        mailbox.max_message_bytes = subscriber.max_message_bytes;
        mailbox.notifier = subscriber.notifier;
        let dropped = mailbox.drop_unwanted();
        inner.forget_routes();
        self.registrations
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        dropped
    }

    /// [`Broker::requeue_front`], returning the message when the
    /// component's registration no longer covers it (dropped, not put
    /// back), so a backend can settle it.
    pub(crate) fn requeue_front_dropping(
        &self,
        component: &str,
        delivery: Delivery,
    ) -> Option<Envelope> {
        let mut inner = self.lock();
        let mailbox = inner.mailbox(component);
        if mailbox.still_wants(&delivery) {
            mailbox.push_front(delivery);
            return None;
        }
        match delivery {
            Delivery::Message { envelope, .. } => Some(envelope),
            Delivery::Request { .. } => None,
        }
    }

    /// [`Broker::requeue_front_all`], returning the messages dropped (as
    /// [`InProcessBroker::requeue_front_dropping`]).
    pub(crate) fn requeue_front_all_dropping(
        &self,
        component: &str,
        entries: &mut VecDeque<Delivery>,
    ) -> Vec<Envelope> {
        let mut dropped = Vec::new();
        let mut inner = self.lock();
        let mailbox = inner.mailbox(component);
        while let Some(delivery) = entries.pop_back() {
            if mailbox.still_wants(&delivery) {
                mailbox.push_front(delivery);
            } else if let Delivery::Message { envelope, .. } = delivery {
                dropped.push(envelope);
            }
        }
        dropped
    }

    /// A broker with these bounds (`max_attempts` and the sizes at least 1).
    pub fn new(config: BrokerConfig) -> InProcessBroker {
        InProcessBroker {
            config: BrokerConfig {
                queue_capacity: config.queue_capacity.max(1),
                per_publisher_share: config.per_publisher_share.max(1),
                mailbox_bytes: config.mailbox_bytes.max(1),
                per_publisher_bytes: config.per_publisher_bytes.max(1),
                max_attempts: config.max_attempts.max(1),
                max_payload_bytes: config.max_payload_bytes,
            },
            inner: Mutex::new(Inner::default()),
            registrations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::sync::lock(&self.inner)
    }

    fn check_payload(&self, payload: &[u8]) -> Result<(), BrokerError> {
        if payload.len() > self.config.max_payload_bytes {
            return Err(BrokerError::InvalidInput(format!(
                "the payload has {} bytes; the limit is {} bytes (the broker's \
                 `max_payload_bytes`)",
                payload.len(),
                self.config.max_payload_bytes
            )));
        }
        Ok(())
    }
}

/// What became of a message offered to one mailbox with
/// [`InProcessBroker::offer_one`].
#[cfg(feature = "nats")]
#[derive(Debug)]
pub(crate) enum Offered {
    /// Queued.
    Queued,
    /// The component has no mailbox here, or its subscriptions or grants
    /// do not cover the topic (`msg:subscribe:<topic>`).
    NotWanted,
    /// Its mailbox refused it for now (full, or a share used up); the
    /// refusal was logged, naming the bound.
    Refused,
    /// It is larger than the component can ever take; the refusal was
    /// logged, naming the bound.
    TooLarge,
}

#[cfg(feature = "nats")]
impl InProcessBroker {
    /// Bytes queued in `component`'s mailbox ([`Delivery::size`] of each
    /// entry); 0 without a mailbox.
    pub(crate) fn pending_bytes(&self, component: &str) -> usize {
        self.lock().mailboxes.get(component).map_or(0, |m| m.bytes)
    }

    /// Whether `component` has a mailbox here whose subscriptions *and*
    /// grants cover `topic` (`msg:subscribe:<topic>`).
    pub(crate) fn wants(&self, component: &str, topic: &str) -> bool {
        self.lock()
            .mailboxes
            .get(component)
            .is_some_and(|mailbox| mailbox.wants(topic))
    }

    /// Offers a message that arrived for `component` alone (from another
    /// host, say) to its mailbox: queued only when the component's
    /// subscriptions *and* grants cover `topic`, under the same bounds as
    /// [`Broker::publish`]; nobody else's mailbox is looked at. `attempts`:
    /// failed deliveries so far (another host's, for a message redelivered
    /// by JetStream).
    pub(crate) fn offer_one(
        &self,
        component: &str,
        source: &str,
        topic: &str,
        payload: Arc<[u8]>,
        attempts: u32,
    ) -> Offered {
        let arrived = Arrived {
            source,
            topic,
            payload,
        };
        let mut inner = self.lock();
        let (offered, queued) = inner.offer_arrived(component, arrived, attempts, &self.config);
        if queued && let Some(mailbox) = inner.mailboxes.get(component) {
            mailbox.notifier.notify();
        }
        offered
    }

    /// [`InProcessBroker::offer_one`] for each message of `arrived`, in
    /// order, under one lock; the mailbox's notifier is notified once, at
    /// the end, when any was queued. What became of each message not
    /// queued is pushed on `not_queued` with its index in `arrived`.
    pub(crate) fn offer_many<'a>(
        &self,
        component: &str,
        arrived: impl IntoIterator<Item = Arrived<'a>>,
        not_queued: &mut Vec<(usize, Offered)>,
    ) {
        let mut inner = self.lock();
        let mut any = false;
        for (index, message) in arrived.into_iter().enumerate() {
            match inner.offer_arrived(component, message, 0, &self.config) {
                (Offered::Queued, _) => any = true,
                (offered, _) => not_queued.push((index, offered)),
            }
        }
        if any && let Some(mailbox) = inner.mailboxes.get(component) {
            mailbox.notifier.notify();
        }
    }
}

/// A message that arrived for one component from another host
/// ([`InProcessBroker::offer_many`]).
#[cfg(feature = "nats")]
#[derive(Debug)]
pub(crate) struct Arrived<'a> {
    /// The sending component, as its host stamped it.
    pub(crate) source: &'a str,
    /// The topic it was published on.
    pub(crate) topic: &'a str,
    /// The body.
    pub(crate) payload: Arc<[u8]>,
}

#[cfg(feature = "nats")]
impl Inner {
    /// Offers a message that arrived for `component` alone to its mailbox
    /// without notifying it; whether it was queued is the `bool`.
    ///
    /// Whether the component's subscriptions *and* grants cover the topic
    /// is the topic's route (computed with [`Mailbox::wants`] for every
    /// mailbox, cached until the next `register` or `unregister`, like an
    /// in-process publish's): a repeated topic costs no new check, and its
    /// envelopes share the route's topic.
    fn offer_arrived(
        &mut self,
        component: &str,
        arrived: Arrived<'_>,
        attempts: u32,
        config: &BrokerConfig,
    ) -> (Offered, bool) {
        let route = self.route(arrived.topic);
        if !route.targets.iter().any(|name| &**name == component) {
            return (Offered::NotWanted, false);
        }
        let envelope = Envelope {
            topic: Arc::clone(&route.topic),
            source: self.name(arrived.source),
            payload: arrived.payload,
        };
        let (offered, reason) =
            match self.offer_tried(component, &envelope, attempts, config, false) {
                Outcome::Queued => return (Offered::Queued, true),
                Outcome::Refused(reason) => (Offered::Refused, reason),
                Outcome::TooLarge(reason) => (Offered::TooLarge, reason),
            };
        let dead_lettered = !arrived.topic.starts_with(RESERVED_TOPIC_PREFIX);
        if let Some(mailbox) = self.mailboxes.get_mut(component) {
            mailbox.refuse(component, &reason, dead_lettered);
        }
        (offered, false)
    }
}

impl Inner {
    /// Offers `envelope` to the mailbox of `name`: queued when it fits,
    /// otherwise refused (nothing changes).
    fn offer(&mut self, name: &str, envelope: &Envelope, config: &BrokerConfig) -> Outcome {
        self.offer_tried(name, envelope, 0, config, true)
    }

    /// [`Inner::offer`] of a message already tried `attempts` times; the
    /// mailbox's notifier is notified of it when `notify`.
    fn offer_tried(
        &mut self,
        name: &str,
        envelope: &Envelope,
        attempts: u32,
        config: &BrokerConfig,
        notify: bool,
    ) -> Outcome {
        let Some(mailbox) = self.mailboxes.get_mut(name) else {
            // Unregistered since the route was computed: nobody to take it.
            return Outcome::Queued;
        };
        match mailbox.admit(name, &envelope.source, envelope.size(), config) {
            Admission::Fits => {
                mailbox.accept(
                    name,
                    Delivery::Message {
                        envelope: envelope.clone(),
                        attempts,
                    },
                    notify,
                );
                Outcome::Queued
            }
            Admission::Full(reason) => Outcome::Refused(reason),
            Admission::TooLarge(reason) => Outcome::TooLarge(reason),
        }
    }

    /// Records that `name` refused a message for `reason` and, when
    /// `dead_letter`, queues it on `name`'s dead-letter topic.
    fn refused(
        &mut self,
        name: &str,
        envelope: &Envelope,
        reason: &str,
        dead_letter: bool,
        config: &BrokerConfig,
    ) {
        if let Some(mailbox) = self.mailboxes.get_mut(name) {
            mailbox.refuse(name, reason, dead_letter);
        }
        if dead_letter {
            self.dead_letter(name, envelope, config);
        }
    }

    /// Queues `envelope` (source and payload kept) for every subscriber of
    /// `component`'s dead-letter topic that takes it; returns how many.
    /// Refused dead letters are dropped, never dead-lettered again.
    fn dead_letter(
        &mut self,
        component: &str,
        envelope: &Envelope,
        config: &BrokerConfig,
    ) -> usize {
        let route = self.route(&dead_letter_topic(component));
        let letter = Envelope {
            topic: Arc::clone(&route.topic),
            source: Arc::clone(&envelope.source),
            payload: Arc::clone(&envelope.payload),
        };
        let mut queued = 0;
        for name in &route.targets {
            match self.offer(name, &letter, config) {
                Outcome::Queued => queued += 1,
                Outcome::Refused(reason) | Outcome::TooLarge(reason) => {
                    self.refused(name, &letter, &reason, false, config);
                }
            }
        }
        queued
    }
}

impl Broker for InProcessBroker {
    fn register(&self, component: &str, subscriber: Subscriber) {
        self.register_dropping(component, subscriber);
    }

    fn unregister(&self, component: &str) -> usize {
        let mut inner = self.lock();
        let Some(mailbox) = inner.mailboxes.remove(component) else {
            return 0;
        };
        inner.forget_routes();
        self.registrations
            .fetch_add(1, std::sync::atomic::Ordering::Release);
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

    fn registrations(&self) -> u64 {
        self.registrations
            .load(std::sync::atomic::Ordering::Acquire)
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
        let config = &self.config;
        let mut guard = self.lock();
        let inner = &mut *guard;
        let route = inner.route(topic);
        if route.targets.is_empty() {
            return Ok(0);
        }
        let envelope = Envelope {
            topic: Arc::clone(&route.topic),
            source: inner.name(source),
            payload: Arc::from(payload),
        };
        // Dead letters of dead letters are dropped, not chained.
        let reserved = topic.starts_with(RESERVED_TOPIC_PREFIX);
        if let [name] = route.targets.as_slice() {
            // The common case, one subscriber: no bookkeeping.
            return match inner.offer(name, &envelope, config) {
                Outcome::Queued => Ok(1),
                Outcome::Refused(reason) => {
                    inner.refused(name, &envelope, &reason, false, config);
                    Err(BrokerError::QueueFull(reason))
                }
                Outcome::TooLarge(reason) => {
                    inner.refused(name, &envelope, &reason, !reserved, config);
                    Err(BrokerError::InvalidInput(dead_lettered(&reason, reserved)))
                }
            };
        }
        let outcomes: Vec<(&Arc<str>, Outcome)> = route
            .targets
            .iter()
            .map(|name| (name, inner.offer(name, &envelope, config)))
            .collect();
        let queued = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Queued))
            .count();
        let any_refused = outcomes
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Refused(_)));
        let mut reasons = Vec::new();
        for (name, outcome) in &outcomes {
            match outcome {
                Outcome::Queued => {}
                // Taken by another subscriber: this one gets a dead letter.
                // Taken by none: nothing is queued, the publisher may retry.
                Outcome::Refused(reason) => {
                    inner.refused(name, &envelope, reason, queued > 0 && !reserved, config);
                    reasons.push(reason.clone());
                }
                Outcome::TooLarge(reason) => {
                    inner.refused(name, &envelope, reason, !reserved, config);
                    reasons.push(dead_lettered(reason, reserved));
                }
            }
        }
        match (queued, any_refused) {
            (0, true) => Err(BrokerError::QueueFull(format!(
                "no subscriber of `{topic}` took the message: {}",
                reasons.join("; ")
            ))),
            (0, false) => Err(BrokerError::InvalidInput(format!(
                "no subscriber of `{topic}` can take the message: {}",
                reasons.join("; ")
            ))),
            _ => Ok(queued),
        }
    }

    fn dead_letter(&self, component: &str, envelope: Envelope) -> usize {
        self.lock().dead_letter(component, &envelope, &self.config)
    }

    fn request(
        &self,
        source: &str,
        target: &str,
        payload: Vec<u8>,
        reply: Arc<ReplySlot>,
    ) -> Result<(), BrokerError> {
        self.check_payload(&payload)?;
        let mut inner = self.lock();
        let source = inner.name(source);
        let Some(mailbox) = inner.mailboxes.get_mut(target).filter(|m| m.running > 0) else {
            return Err(BrokerError::NotFound(format!(
                "no instance of component `{target}` is running in this runtime"
            )));
        };
        match mailbox.admit(target, &source, payload.len(), &self.config) {
            Admission::Fits => {}
            Admission::Full(reason) => return Err(BrokerError::QueueFull(reason)),
            Admission::TooLarge(reason) => return Err(BrokerError::InvalidInput(reason)),
        }
        mailbox.push(Delivery::Request {
            source,
            payload,
            reply,
        });
        Ok(())
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

    /// A message the component's current subscriptions and grants no
    /// longer cover (a registration narrowed them since it was taken) is
    /// dropped, not put back.
    fn requeue_front(&self, component: &str, delivery: Delivery) {
        self.requeue_front_dropping(component, delivery);
    }

    /// As [`Broker::requeue_front`], for each entry.
    fn requeue_front_all(&self, component: &str, entries: &mut VecDeque<Delivery>) {
        self.requeue_front_all_dropping(component, entries);
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

/// `reason`, saying where the message went.
fn dead_lettered(reason: &str, reserved: bool) -> String {
    if reserved {
        format!("{reason}; a dead letter is not dead-lettered again: it is dropped")
    } else {
        format!("{reason}; it went to that component's dead-letter topic")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::broker::{ReplyPoll, message_bound};
    use airssys_contract::capability::CapabilityError;

    /// A subscription pattern as a `msg:subscribe` capability.
    fn subscription(pattern: &str) -> Result<Capability, CapabilityError> {
        Capability::parse(&format!("msg:subscribe:{pattern}"))
    }

    /// A request for `target` through a fresh slot.
    fn request(
        b: &InProcessBroker,
        target: &str,
        payload: Vec<u8>,
    ) -> Result<Arc<ReplySlot>, BrokerError> {
        let slot = Arc::new(ReplySlot::new(Duration::from_secs(60), Arc::default()));
        b.request("p", target, payload, Arc::clone(&slot))
            .map(|()| slot)
    }

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

    /// Registers `component` for `pattern` under a grant of `grant`.
    fn subscribe(b: &InProcessBroker, component: &str, pattern: &str, grant: &str) {
        b.register(
            component,
            Subscriber::new(
                vec![subscription(pattern).expect("pattern")],
                grants(&[&format!("msg:subscribe:{grant}")]),
            ),
        );
    }

    #[test]
    fn delivers_only_where_subscription_and_grant_agree() {
        let b = broker(8, 8);
        subscribe(&b, "a", "orders.*", "orders.*");
        subscribe(&b, "b", "orders.*", "orders.created");
        assert_eq!(b.publish("p", "orders.created", vec![1]), Ok(2));
        assert_eq!(b.publish("p", "orders.deleted", vec![2]), Ok(1));
        assert_eq!(b.publish("p", "other.x", vec![3]), Ok(0));
        assert_eq!((b.pending("a"), b.pending("b")), (2, 1));
    }

    /// The payloads of the messages queued for `component`, taken.
    fn drain(b: &InProcessBroker, component: &str) -> Vec<Vec<u8>> {
        let mut taken = VecDeque::new();
        b.take_batch(component, usize::MAX, &mut taken);
        taken
            .into_iter()
            .map(|d| match d {
                Delivery::Message { envelope, .. } => envelope.payload.to_vec(),
                Delivery::Request { payload, .. } => payload,
            })
            .collect()
    }

    #[test]
    fn a_full_mailbox_gets_dead_letters_while_the_others_still_receive() {
        let b = broker(3, 2);
        for name in ["slow", "fast"] {
            subscribe(&b, name, "t", "t");
        }
        subscribe(
            &b,
            "dlq",
            "airssys.dead-letter.slow",
            "airssys.dead-letter.slow",
        );
        assert_eq!(b.publish("p", "t", vec![0]), Ok(2));
        assert_eq!(b.publish("p", "t", vec![1]), Ok(2));
        // p's share of both mailboxes is used up: nobody took it, nothing
        // was queued or dead-lettered, p is told which bound.
        let err = b.publish("p", "t", vec![2]).expect_err("share used up");
        assert!(matches!(err, BrokerError::QueueFull(_)), "{err:?}");
        assert!(err.to_string().contains("`per_publisher_share`"), "{err}");
        assert!(err.to_string().contains("`slow`"), "{err}");
        assert!(err.to_string().contains("`fast`"), "{err}");
        assert_eq!(b.pending("dlq"), 0);
        // `fast` consumes; `slow` does not. Publishing goes on: `fast`
        // receives, `slow`'s copy becomes a dead letter.
        assert_eq!(drain(&b, "fast"), [[0], [1]]);
        assert_eq!(b.publish("p", "t", vec![3]), Ok(1));
        assert_eq!(b.publish("p", "t", vec![4]), Ok(1));
        assert_eq!(drain(&b, "fast"), [[3], [4]]);
        assert_eq!(drain(&b, "slow"), [[0], [1]]);
        assert_eq!(drain(&b, "dlq"), [[3], [4]]);
        // Another publisher still reaches `slow` with its own share; a full
        // queue (capacity 3) refuses even within a share.
        assert_eq!(b.publish("q", "t", vec![5]), Ok(2));
        assert_eq!(b.publish("p", "t", vec![6]), Ok(2));
        assert_eq!(b.publish("q", "t", vec![7]), Ok(2));
        drain(&b, "fast");
        assert_eq!(b.publish("r", "t", vec![8]), Ok(1));
        assert_eq!(drain(&b, "slow"), [[5], [6], [7]]);
        assert_eq!(drain(&b, "dlq"), [[8]]);
    }

    #[test]
    fn the_byte_bounds_refuse_naming_themselves() {
        let b = InProcessBroker::new(BrokerConfig {
            mailbox_bytes: 100,
            per_publisher_bytes: 60,
            ..BrokerConfig::default()
        });
        subscribe(&b, "a", "t", "t");
        // Topic `t` (1 byte) + 29 bytes: 30 bytes each.
        assert_eq!(b.publish("p", "t", vec![0; 29]), Ok(1));
        assert_eq!(b.publish("p", "t", vec![0; 29]), Ok(1));
        let err = b.publish("p", "t", vec![0; 29]).expect_err("p's bytes");
        assert!(err.to_string().contains("`per_publisher_bytes`"), "{err}");
        assert!(err.to_string().contains("60 bytes"), "{err}");
        assert_eq!(b.publish("q", "t", vec![0; 29]), Ok(1));
        let err = b.publish("r", "t", vec![0; 29]).expect_err("mailbox bytes");
        assert!(err.to_string().contains("`mailbox_bytes`"), "{err}");
        // Counted back as entries leave.
        assert_eq!(drain(&b, "a").len(), 3);
        assert_eq!(b.publish("p", "t", vec![0; 29]), Ok(1));
        assert_eq!(b.publish("p", "t", vec![0; 29]), Ok(1));
        // Requests count too.
        b.set_running("a", true);
        let err = request(&b, "a", vec![0; 10]).expect_err("p's bytes");
        assert!(err.to_string().contains("`per_publisher_bytes`"), "{err}");
    }

    #[test]
    fn a_message_too_large_for_a_subscriber_is_dead_lettered_at_once() {
        let b = broker(8, 8);
        b.register(
            "small",
            Subscriber::new(
                vec![subscription("t").expect("pattern")],
                grants(&["msg:subscribe:t"]),
            )
            .max_message_bytes(message_bound(64)),
        );
        subscribe(&b, "big", "t", "t");
        subscribe(
            &b,
            "dlq",
            "airssys.dead-letter.small",
            "airssys.dead-letter.small",
        );
        // 1 + 31 bytes fit in half of 64; 1 + 32 do not.
        assert_eq!(b.publish("p", "t", vec![1; 31]), Ok(2));
        assert_eq!(b.publish("p", "t", vec![2; 32]), Ok(1));
        assert_eq!(drain(&b, "small"), [vec![1; 31]]);
        assert_eq!(drain(&b, "big").len(), 2);
        assert_eq!(drain(&b, "dlq"), [vec![2; 32]]);
        // Alone, the publisher is told, and it is dead-lettered all the same.
        b.unregister("big");
        let err = b.publish("p", "t", vec![3; 40]).expect_err("too large");
        assert!(matches!(err, BrokerError::InvalidInput(_)), "{err:?}");
        assert!(err.to_string().contains("`limits.memory_bytes`"), "{err}");
        assert!(err.to_string().contains("dead-letter"), "{err}");
        assert_eq!(drain(&b, "dlq"), [vec![3; 40]]);
        assert_eq!(b.pending("small"), 0);
        // A request that large is refused.
        b.set_running("small", true);
        let err = request(&b, "small", vec![0; 33]).expect_err("too large");
        assert!(matches!(err, BrokerError::InvalidInput(_)), "{err:?}");
        // Larger than a publisher's whole byte share: never fits either.
        let b = InProcessBroker::new(BrokerConfig {
            per_publisher_bytes: 10,
            ..BrokerConfig::default()
        });
        subscribe(&b, "a", "t", "t");
        let err = b.publish("p", "t", vec![0; 10]).expect_err("too large");
        assert!(err.to_string().contains("`per_publisher_bytes`"), "{err}");
        assert!(matches!(err, BrokerError::InvalidInput(_)), "{err:?}");
    }

    #[test]
    fn dead_letters_are_not_dead_lettered_again() {
        let b = broker(1, 1);
        subscribe(&b, "a", "t", "t");
        subscribe(&b, "other", "t", "t");
        subscribe(&b, "dlq", "airssys.dead-letter.a", "airssys.dead-letter.a");
        subscribe(
            &b,
            "dlq2",
            "airssys.dead-letter.dlq",
            "airssys.dead-letter.dlq",
        );
        assert_eq!(b.publish("p", "t", vec![0]), Ok(2));
        drain(&b, "other");
        assert_eq!(
            b.publish("p", "t", vec![1]),
            Ok(1),
            "a's copy dead-lettered"
        );
        drain(&b, "other");
        // `dlq` is full too: the second dead letter is dropped, not sent on.
        assert_eq!(b.publish("p", "t", vec![2]), Ok(1));
        assert_eq!(drain(&b, "dlq"), [[1]]);
        assert_eq!(b.pending("dlq2"), 0);
        let envelope = Envelope {
            topic: Arc::from("t"),
            source: Arc::from("p"),
            payload: Arc::from(&[9u8][..]),
        };
        assert_eq!(b.dead_letter("a", envelope.clone()), 1);
        assert_eq!(b.dead_letter("a", envelope), 0, "dlq full: dropped");
        assert_eq!(b.pending("dlq2"), 0);
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
        subscribe(&b, "a", "t", "t");
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
        subscribe(&b, "a", "t.*", "t.*");
        assert_eq!(b.publish("p", "t.x", vec![1, 2, 3]), Ok(1));
        // A new subscriber is seen by the next publish on a cached topic.
        subscribe(&b, "b", "t.*", "t.*");
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
        subscribe(&b, "b", "t.*", "t.y");
        assert_eq!(b.publish("p", "t.x", vec![5]), Ok(1));
    }

    /// Registrations narrowing and widening `a`'s grant on `t.x` while
    /// other threads publish (and, with `nats`, offer arrived batches) on
    /// `t.x`, `t.y` and ever new topics, and other components come and go
    /// (clearing the route cache): once a narrowing `register` returned,
    /// `a`'s mailbox never holds a `t.x` message, neither one a stale
    /// route let in nor one queued or taken before and put back.
    #[test]
    fn a_narrowed_registration_is_in_force_for_every_message_once_it_returns() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let b = Arc::new(broker(64, 64));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for publisher in 0..2u8 {
            let (b, stop) = (Arc::clone(&b), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let _ = b.publish(
                        "p",
                        if i.is_multiple_of(2) { "t.x" } else { "t.y" },
                        vec![publisher],
                    );
                    if i.is_multiple_of(7) {
                        let _ = b.publish("p", &format!("n.{}", i % 5000), vec![publisher]);
                    }
                    i = i.wrapping_add(1);
                }
            }));
        }
        {
            let (b, stop) = (Arc::clone(&b), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("c{}", i % 3);
                    subscribe(&b, &name, "t.*", "t.*");
                    let mut sink = VecDeque::new();
                    b.take_batch(&name, 1000, &mut sink);
                    if i.is_multiple_of(2) {
                        b.unregister(&name);
                    }
                    i = i.wrapping_add(1);
                }
            }));
        }
        #[cfg(feature = "nats")]
        {
            let (b, stop) = (Arc::clone(&b), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                let mut not_queued = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let arrived = ["t.x", "t.y", "t.x", "t.y"].map(|topic| Arrived {
                        source: "remote",
                        topic,
                        payload: Arc::from(&[9u8][..]),
                    });
                    b.offer_many("a", arrived, &mut not_queued);
                    not_queued.clear();
                }
            }));
        }
        let mut seen = VecDeque::new();
        for round in 0..300 {
            subscribe(&b, "a", "t.*", "t.*");
            std::thread::yield_now();
            // A dispatcher's pass holding entries taken under the wide grant.
            let mut held = VecDeque::new();
            b.take_batch("a", 4, &mut held);
            subscribe(&b, "a", "t.*", "t.y");
            b.requeue_front_all("a", &mut held);
            for _ in 0..3 {
                seen.clear();
                b.take_batch("a", 1000, &mut seen);
                for delivery in &seen {
                    if let Delivery::Message { envelope, .. } = delivery {
                        assert_ne!(
                            &*envelope.topic, "t.x",
                            "round {round}: `t.x` delivered after the grant was narrowed"
                        );
                    }
                }
                std::thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        for thread in threads {
            thread.join().expect("no panic");
        }
    }

    #[test]
    fn unregister_drops_the_mailbox_and_answers_queued_requests() {
        let b = broker(8, 8);
        subscribe(&b, "a", "t", "t");
        b.set_running("a", true);
        assert_eq!(b.publish("p", "t", b"x".to_vec()).expect("queued"), 1);
        let reply = request(&b, "a", b"q".to_vec()).expect("request queued");
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
            request(&b, "a", b"q".to_vec()),
            Err(BrokerError::NotFound(_))
        ));
        assert_eq!(b.unregister("a"), 0);
    }

    #[test]
    fn whatever_is_queued_notifies_the_subscribers_notifier() {
        let b = broker(8, 8);
        let mail = Arc::new(Notifier::new());
        b.register(
            "a",
            Subscriber::new(
                vec![subscription("t").expect("pattern")],
                grants(&["msg:subscribe:t"]),
            )
            .notifier(Arc::clone(&mail)),
        );
        let mut seen = mail.generation();
        let mut notified = || {
            let now = mail.generation();
            std::mem::replace(&mut seen, now) != now
        };
        assert_eq!(b.publish("p", "elsewhere", vec![0]), Ok(0));
        assert!(!notified(), "nothing queued for `a`");
        assert_eq!(b.publish("p", "t", vec![1]), Ok(1));
        assert!(notified(), "a message");
        b.set_running("a", true);
        request(&b, "a", vec![2]).expect("queued");
        assert!(notified(), "a request");
        let mut batch = VecDeque::new();
        assert_eq!(b.take_batch("a", 8, &mut batch), 2);
        assert!(!notified(), "taking is not news");
        b.requeue_front_all("a", &mut batch);
        assert!(notified(), "entries put back");
        subscribe(&b, "dlq", "airssys.dead-letter.a", "airssys.dead-letter.a");
        let dlq = Arc::new(Notifier::new());
        b.register(
            "dlq",
            Subscriber::new(
                vec![subscription("airssys.dead-letter.a").expect("pattern")],
                grants(&["msg:subscribe:airssys.dead-letter.a"]),
            )
            .notifier(Arc::clone(&dlq)),
        );
        let before = dlq.generation();
        let envelope = Envelope {
            topic: Arc::from("t"),
            source: Arc::from("p"),
            payload: Arc::from(&[9u8][..]),
        };
        assert_eq!(b.dead_letter("a", envelope), 1);
        assert_ne!(dlq.generation(), before, "a dead letter");
    }

    /// Messages from another host offered together: each checked against
    /// the subscriptions and grants of the moment (the memo of a topic's
    /// decision goes with a new registration), queued in order, the
    /// notifier told once.
    #[cfg(feature = "nats")]
    #[test]
    fn messages_offered_together_are_checked_each_and_notified_once() {
        let b = broker(8, 8);
        let mail = Arc::new(Notifier::new());
        let register = |grant: &str| {
            b.register(
                "a",
                Subscriber::new(
                    vec![subscription("t.*").expect("pattern")],
                    grants(&[grant]),
                )
                .notifier(Arc::clone(&mail)),
            );
        };
        register("msg:subscribe:t.*");
        let arrived = |topics: &[&'static str]| {
            topics
                .iter()
                .enumerate()
                .map(|(i, topic)| Arrived {
                    source: "p",
                    topic,
                    payload: Arc::from(&[u8::try_from(i).expect("small")][..]),
                })
                .collect::<Vec<_>>()
        };
        let before = mail.generation();
        let mut not_queued = Vec::new();
        b.offer_many("a", arrived(&["t.x", "u.x", "t.y", "t.x"]), &mut not_queued);
        assert_eq!(mail.generation(), before + 1, "one notification");
        assert!(
            matches!(not_queued.as_slice(), [(1, Offered::NotWanted)]),
            "{not_queued:?}"
        );
        let mut batch = VecDeque::new();
        assert_eq!(b.take_batch("a", 8, &mut batch), 3);
        let got: Vec<(String, u8)> = batch
            .iter()
            .map(|d| match d {
                Delivery::Message { envelope, .. } => {
                    (envelope.topic.to_string(), envelope.payload[0])
                }
                other => panic!("a message, not {other:?}"),
            })
            .collect();
        let want = [("t.x", 0), ("t.y", 2), ("t.x", 3)].map(|(t, i)| (t.to_owned(), i));
        assert_eq!(got, want);
        // Narrower grants: `t.x`, allowed a moment ago, is refused now.
        register("msg:subscribe:t.y");
        not_queued.clear();
        let before = mail.generation();
        b.offer_many("a", arrived(&["t.x", "t.y"]), &mut not_queued);
        assert!(
            matches!(not_queued.as_slice(), [(0, Offered::NotWanted)]),
            "{not_queued:?}"
        );
        assert_eq!(mail.generation(), before + 1);
        assert!(matches!(
            b.offer_one("a", "p", "t.x", Arc::from(&[7u8][..]), 0),
            Offered::NotWanted
        ));
        assert_eq!(b.pending("a"), 1);
        // Nothing queued: no notification.
        let before = mail.generation();
        not_queued.clear();
        b.offer_many("a", arrived(&["t.x"]), &mut not_queued);
        assert_eq!(mail.generation(), before);
    }
}
