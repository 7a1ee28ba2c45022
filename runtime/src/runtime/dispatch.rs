//! Message delivery (see docs/messaging.md): [`Instance::deliver_pending`]
//! takes a batch from the component's mailbox and hands each entry to its
//! handler; [`Runtime::run_until_idle`] does so for several instances
//! until nothing is left. What became of each entry goes to the
//! embedder's delivery hooks
//! ([`RuntimeBuilder::on_delivery`](crate::RuntimeBuilder::on_delivery)).

use std::collections::VecDeque;
use std::sync::Arc;

use wasmtime::component::TypedFunc;

use super::Runtime;
use super::instance::{HandlerError, Instance};
use crate::broker::{Broker, Delivery, Envelope, ReplyOutcome, ReplySlot, Settlement};
use crate::error::RuntimeError;
use crate::host::bindings::exports::airssys::core::handler;

/// A hook registered with
/// [`RuntimeBuilder::on_delivery`](crate::RuntimeBuilder::on_delivery).
pub(crate) type DeliveryHook = Box<dyn Fn(&DeliveryRecord<'_>) + Send + Sync>;

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages the handler accepted.
    pub delivered: usize,
    /// Failed deliveries (handler error or trap), each retried later.
    pub failed: usize,
    /// Messages sent to the dead-letter topic after the last attempt.
    pub dead_lettered: usize,
    /// Requests answered (with a reply or the handler's error).
    pub answered: usize,
    /// Requests dropped because the requester gave up or timed out.
    pub expired: usize,
}

impl DeliveryReport {
    /// Whether the pass found any work.
    pub fn is_empty(&self) -> bool {
        *self == DeliveryReport::default()
    }

    fn add(&mut self, other: DeliveryReport) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.dead_lettered += other.dead_lettered;
        self.answered += other.answered;
        self.expired += other.expired;
    }
}

/// What became of one entry a delivery pass took from a mailbox, as
/// handed to a delivery hook
/// ([`RuntimeBuilder::on_delivery`](crate::RuntimeBuilder::on_delivery)).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DeliveryRecord<'a> {
    /// The receiving component (the mailbox's owner).
    pub component: &'a str,
    /// The publishing or requesting component.
    pub source: &'a str,
    /// A message (with its topic) or a request.
    pub kind: DeliveryKind<'a>,
    /// The message's or request's body.
    pub payload: &'a [u8],
    /// Which delivery attempt this was (1 for the first; a request is
    /// tried once).
    pub attempt: u32,
    /// What became of it.
    pub outcome: DeliveryOutcome<'a>,
}

/// Whether a delivered entry was a published message or a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryKind<'a> {
    /// A message published on `topic`, to `handler.handle-message`.
    Message {
        /// The topic it was published on.
        topic: &'a str,
    },
    /// A request, to `handler.handle-request`.
    Request,
}

/// What became of one delivered entry.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum DeliveryOutcome<'a> {
    /// The handler accepted the message.
    Delivered,
    /// The delivery failed and the message stays queued for another
    /// attempt.
    Retried(&'a DeliveryFailure),
    /// The message went to the component's dead-letter topic: its last
    /// attempt failed, or it is larger than the component can take.
    DeadLettered(&'a DeliveryFailure),
    /// The handler answered the request with these bytes.
    Answered(&'a [u8]),
    /// The handler answered the request with its error.
    Refused(&'a HandlerError),
    /// The handler trapped or hit a limit on the request; the requester
    /// was told the component failed.
    Failed(&'a RuntimeError),
    /// The requester had given up or its deadline had passed; the
    /// handler was not called.
    Expired,
}

/// Why a message was not delivered.
#[derive(Debug)]
#[non_exhaustive]
pub enum DeliveryFailure {
    /// The handler returned an error; the instance is fine.
    Handler(HandlerError),
    /// The call trapped or hit a limit; the instance is unusable.
    Trap(RuntimeError),
    /// The message is larger than the component can take; not tried.
    TooLarge {
        /// Its topic and payload bytes.
        size: usize,
        /// Half the component's `limits.memory_bytes`.
        limit: usize,
    },
}

impl std::fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryFailure::Handler(e) => write!(f, "handler error: {e}"),
            DeliveryFailure::Trap(e) => write!(f, "{e}"),
            DeliveryFailure::TooLarge { size, limit } => write!(
                f,
                "a message of {size} bytes (topic and payload) is larger than the component can \
                 take: {limit} bytes, half its `limits.memory_bytes`"
            ),
        }
    }
}

/// What an instance keeps between delivery passes.
#[derive(Default)]
pub(super) struct Dispatch {
    /// The typed `handle-message` export, once looked up.
    handle_message: Option<HandleMessage>,
    /// The batch being delivered; kept to reuse its allocation.
    batch: VecDeque<Delivery>,
}

/// `handler.handle-message` with the message lowered straight from the
/// broker's shared buffers.
type HandleMessage = TypedFunc<(WireMessage,), (Result<(), handler::Error>,)>;

/// The WIT `message` record, lowered from shared parts: passing it clones
/// three `Arc`s, never the bytes.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
#[component(record)]
struct WireMessage {
    topic: Arc<str>,
    source: Arc<str>,
    payload: Arc<[u8]>,
}

impl Runtime {
    /// Delivers queued messages and requests to `instances`, round-robin,
    /// at most `batch` entries per instance per turn, until no instance has
    /// anything left (a message that keeps failing ends in its dead-letter
    /// topic, so this terminates).
    ///
    /// # Errors
    ///
    /// The first trap or limit error of a handler; the message that caused
    /// it stays queued (its attempt counted) for a new instance.
    pub fn run_until_idle(
        &self,
        instances: &mut [Instance],
        batch: usize,
    ) -> Result<DeliveryReport, RuntimeError> {
        let mut total = DeliveryReport::default();
        loop {
            let mut round = DeliveryReport::default();
            for instance in instances.iter_mut() {
                round.add(instance.deliver_pending(batch)?);
            }
            if round.is_empty() {
                return Ok(total);
            }
            total.add(round);
        }
    }
}

impl Instance {
    /// Delivers up to `max` queued entries of this component's mailbox:
    /// messages to `handler.handle-message` (a failure is retried up to
    /// [`BrokerConfig::max_attempts`](crate::BrokerConfig::max_attempts)
    /// times, then the message goes to `airssys.dead-letter.<component>`),
    /// requests to `handler.handle-request` (the answer fills the
    /// requester's pending reply). A message larger than the component can
    /// take ([`crate::broker::message_bound`] of its
    /// `limits.memory_bytes`) is dead-lettered without a call: a fresh
    /// instance would fail on it too.
    ///
    /// The entries are taken from the broker as one batch
    /// ([`Broker::take_batch`]) and handed to the handler one call each, in
    /// order, through a handle to the export looked up once per instance;
    /// topic, source and payload are shared with the broker, not copied,
    /// until they are written into the guest's memory. Every handler call
    /// (retries included) and every message dead-lettered for its size
    /// counts against `max`; whatever the pass does not reach goes back to
    /// the head of the mailbox in its order. What became of each entry is
    /// handed to the delivery hooks.
    ///
    /// # Errors
    ///
    /// A trap or limit error of a handler. The instance is then unusable;
    /// the failed message stays at the head of the mailbox for the next
    /// instance of the component.
    pub fn deliver_pending(&mut self, max: usize) -> Result<DeliveryReport, RuntimeError> {
        let mut report = DeliveryReport::default();
        if self.poisoned || max == 0 {
            return Ok(report);
        }
        // Read before the entries are taken: a registration after it
        // stops the pass (see `Broker::registrations`).
        let registrations = self.broker().registrations();
        let mut batch = self.take_batch(max);
        let failure = self.deliver_batch(&mut batch, max, registrations, &mut report);
        self.put_back(batch);
        match failure {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    /// Takes up to `max` entries from the mailbox, into the batch buffer
    /// kept from the last pass.
    fn take_batch(&mut self, max: usize) -> VecDeque<Delivery> {
        let mut batch = std::mem::take(&mut self.delivery.batch);
        self.broker().take_batch(self.name(), max, &mut batch);
        batch
    }

    /// Hands the entries of `batch` to the handler, one call each, at most
    /// `max` calls; stops at the first trap or limit error (returned).
    fn deliver_batch(
        &mut self,
        batch: &mut VecDeque<Delivery>,
        max: usize,
        registrations: u64,
        report: &mut DeliveryReport,
    ) -> Option<RuntimeError> {
        let mut calls = 0;
        while let Some(delivery) = batch.pop_front() {
            // A component registered since the entries were taken (its
            // grant may be narrower now): the rest goes back, checked
            // again, and the next pass takes it.
            if calls == max || self.broker().registrations() != registrations {
                batch.push_front(delivery);
                break;
            }
            calls += 1;
            let step = match delivery {
                Delivery::Message { envelope, attempts } => {
                    self.deliver_message(envelope, attempts, batch, report)
                }
                Delivery::Request {
                    source,
                    payload,
                    reply,
                } => self.answer_request(&source, &payload, &reply, report),
            };
            if let Err(error) = step {
                return Some(error);
            }
        }
        None
    }

    /// Puts what the pass did not reach back at the head of the mailbox,
    /// and keeps the buffer for the next pass.
    fn put_back(&mut self, mut batch: VecDeque<Delivery>) {
        if !batch.is_empty() {
            let broker = Arc::clone(self.broker());
            broker.requeue_front_all(self.name(), &mut batch);
        }
        self.delivery.batch = batch;
    }

    /// One message: dead-lettered at once when too large, otherwise
    /// handed to the handler; a failure is retried next (ahead of the
    /// rest of `batch`) until its last attempt.
    fn deliver_message(
        &mut self,
        envelope: Envelope,
        attempts: u32,
        batch: &mut VecDeque<Delivery>,
        report: &mut DeliveryReport,
    ) -> Result<(), RuntimeError> {
        let limit = crate::broker::message_bound(self.loaded.info.limits.memory_bytes);
        if envelope.size() > limit {
            // Every fresh instance would hit its memory limit too: no
            // attempt, straight to the dead letters (a broker that checks
            // `Subscriber::max_message_bytes` never queues it). Counted
            // against `max` as a call.
            report.dead_lettered += 1;
            let failure = DeliveryFailure::TooLarge {
                size: envelope.size(),
                limit,
            };
            self.observe_message(&envelope, attempts, DeliveryOutcome::DeadLettered(&failure));
            self.dead_letter(envelope.clone(), &failure);
            self.settle(&envelope, Settlement::DeadLettered);
            return Ok(());
        }
        let failure = match self.call_handle_message(&envelope) {
            Ok(()) => {
                report.delivered += 1;
                self.observe_message(&envelope, attempts, DeliveryOutcome::Delivered);
                self.settle(&envelope, Settlement::Handled);
                return Ok(());
            }
            Err(failure) => failure,
        };
        report.failed += 1;
        let attempts = attempts.saturating_add(1);
        if attempts < self.broker().config().max_attempts {
            self.observe_message(&envelope, attempts - 1, DeliveryOutcome::Retried(&failure));
            batch.push_front(Delivery::Message { envelope, attempts });
        } else {
            report.dead_lettered += 1;
            let outcome = DeliveryOutcome::DeadLettered(&failure);
            self.observe_message(&envelope, attempts - 1, outcome);
            self.dead_letter(envelope.clone(), &failure);
            self.settle(&envelope, Settlement::DeadLettered);
        }
        match failure {
            DeliveryFailure::Trap(error) => Err(error),
            _ => Ok(()),
        }
    }

    /// One request: answered through its reply slot unless the requester
    /// gave up.
    fn answer_request(
        &mut self,
        source: &str,
        payload: &[u8],
        reply: &ReplySlot,
        report: &mut DeliveryReport,
    ) -> Result<(), RuntimeError> {
        if !reply.is_wanted() {
            report.expired += 1;
            self.observe_request(source, payload, DeliveryOutcome::Expired);
            return Ok(());
        }
        report.answered += 1;
        match self.request(source, payload) {
            Ok(Ok(bytes)) => {
                self.observe_request(source, payload, DeliveryOutcome::Answered(&bytes));
                reply.fill(ReplyOutcome::Reply(bytes));
                Ok(())
            }
            Ok(Err(error)) => {
                self.observe_request(source, payload, DeliveryOutcome::Refused(&error));
                reply.fill(ReplyOutcome::Remote(error.to_string()));
                Ok(())
            }
            Err(error) => {
                self.observe_request(source, payload, DeliveryOutcome::Failed(&error));
                reply.fill(ReplyOutcome::Remote(format!(
                    "component `{}` failed while handling the request",
                    self.name()
                )));
                Err(error)
            }
        }
    }

    fn call_handle_message(&mut self, envelope: &Envelope) -> Result<(), DeliveryFailure> {
        let func = match self.delivery.handle_message {
            Some(func) => func,
            None => {
                let func = self.find_handle_message().map_err(DeliveryFailure::Trap)?;
                self.delivery.handle_message = Some(func);
                func
            }
        };
        let message = WireMessage {
            topic: Arc::clone(&envelope.topic),
            source: Arc::clone(&envelope.source),
            payload: Arc::clone(&envelope.payload),
        };
        self.enter().map_err(DeliveryFailure::Trap)?;
        let result = func.call(&mut self.store, (message,));
        match self.finish(result) {
            Ok((Ok(()),)) => Ok(()),
            Ok((Err(error),)) => Err(DeliveryFailure::Handler(HandlerError::from(error))),
            Err(error) => Err(DeliveryFailure::Trap(error)),
        }
    }

    /// The typed `handle-message` export, looked up once per instance.
    fn find_handle_message(&mut self) -> Result<HandleMessage, RuntimeError> {
        const EXPORT: &str = "airssys:core/handler@1.0.0#handle-message";
        let (Some(instance), Some(_)) = (self.instance, &self.handler) else {
            return Err(self.no_export(EXPORT));
        };
        let index = instance
            .get_export_index(&mut self.store, None, "airssys:core/handler@1.0.0")
            .and_then(|parent| {
                instance.get_export_index(&mut self.store, Some(&parent), "handle-message")
            });
        let Some(index) = index else {
            return Err(self.no_export(EXPORT));
        };
        instance
            .get_typed_func(&mut self.store, index)
            .map_err(|e| RuntimeError::NoSuchExport {
                component: self.name().to_owned(),
                export: EXPORT.to_owned(),
                message: format!("{e}"),
                source: Some(e),
            })
    }

    /// Sends a message the component did not handle to its dead-letter
    /// topic (source and payload kept; [`Broker::dead_letter`]). Without a
    /// subscriber that takes it, the message is dropped with a warning.
    fn dead_letter(&self, envelope: Envelope, failure: &DeliveryFailure) {
        let component = self.name();
        let why = match failure {
            DeliveryFailure::TooLarge { .. } => "message dead-lettered without a delivery attempt",
            _ => "message dead-lettered after its last delivery attempt",
        };
        tracing::warn!(
            target: "airssys::messaging",
            component,
            topic = &*envelope.topic,
            source = &*envelope.source,
            error = %failure,
            "{why}"
        );
        if self.broker().dead_letter(component, envelope) == 0 {
            tracing::warn!(
                target: "airssys::messaging",
                component,
                dead_letter_topic = crate::broker::dead_letter_topic(component).as_str(),
                "no subscriber of the dead-letter topic took the message; it is dropped"
            );
        }
    }

    /// Tells the broker it is done with `envelope` ([`Broker::settle`]).
    fn settle(&self, envelope: &Envelope, settlement: Settlement) {
        self.broker().settle(self.name(), envelope, settlement);
    }

    /// Tells the delivery hooks what became of a message tried `attempts`
    /// times before.
    fn observe_message(&self, envelope: &Envelope, attempts: u32, outcome: DeliveryOutcome<'_>) {
        self.observe(&DeliveryRecord {
            component: self.name(),
            source: &envelope.source,
            kind: DeliveryKind::Message {
                topic: &envelope.topic,
            },
            payload: &envelope.payload,
            attempt: attempts.saturating_add(1),
            outcome,
        });
    }

    /// Tells the delivery hooks what became of a request.
    fn observe_request(&self, source: &str, payload: &[u8], outcome: DeliveryOutcome<'_>) {
        self.observe(&DeliveryRecord {
            component: self.name(),
            source,
            kind: DeliveryKind::Request,
            payload,
            attempt: 1,
            outcome,
        });
    }

    fn observe(&self, record: &DeliveryRecord<'_>) {
        for hook in &self.loaded.shared.delivery_hooks {
            hook(record);
        }
    }

    fn broker(&self) -> &Arc<dyn Broker> {
        &self.loaded.shared.services.broker
    }
}
