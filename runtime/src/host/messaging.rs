//! `airssys:core/messaging`: publish to topics and requests to named
//! components, queued by the runtime's [`Broker`](crate::broker::Broker)
//! and delivered by its dispatcher (see `docs/messaging.md`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use airssys_macros::host_impl;
use wasmtime::component::Resource;

use super::bindings::airssys::core::messaging::{
    ComponentName, Error, Host, HostPendingReply, PendingReply, Pollable,
};
use super::budget::Hold;
use super::poll::Readiness;
use super::state::HostState;
use crate::broker::{
    BrokerError, RESERVED_TOPIC_PREFIX, ReplyBudget, ReplyOutcome, ReplyPoll, ReplySlot,
};
use crate::sync::lock;

/// The host side of a `pending-reply` handle.
#[derive(Debug)]
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct PendingReplyState {
    slot: Arc<ReplySlot>,
    target: String,
    /// Held only here, so a pollable notices when this handle is dropped.
    probe: Arc<ReplyProbe>,
    /// The request's share of the instance's budget.
    hold: Arc<ReplyHold>,
}

/// A request's share of the requesting instance's budget: one pending
/// slot (`limits.max_pending`) from the request on, and the answer's
/// bytes (`limits.held_bytes`) from when it is stored until the component
/// collects it. The broker may keep the slot after the handle is gone, so
/// the handle empties this when dropped.
#[derive(Debug)]
struct ReplyHold(Mutex<Option<Hold>>);

impl ReplyBudget for ReplyHold {
    fn charge(&self, bytes: usize) -> Result<(), String> {
        match lock(&self.0).as_mut() {
            Some(hold) => hold
                .try_grow(u64::try_from(bytes).unwrap_or(u64::MAX))
                .map_err(|limit| limit.to_string()),
            None => Err("the requester dropped the request".to_owned()),
        }
    }
}

impl ReplyHold {
    /// The component collected the answer: its bytes are free again.
    fn release_bytes(&self) {
        if let Some(hold) = lock(&self.0).as_mut() {
            hold.release_bytes();
        }
    }
}

/// Readiness of a reply: answered, timed out, taken or abandoned.
#[derive(Debug)]
struct ReplyProbe(Arc<ReplySlot>);

impl Readiness for ReplyProbe {
    fn is_ready(&self) -> bool {
        // `is_wanted` is true exactly while `get` would answer `ok(none)`.
        !self.0.is_wanted()
    }
}

impl Drop for PendingReplyState {
    fn drop(&mut self) {
        self.slot.abandon();
        lock(&self.hold.0).take();
    }
}

impl From<BrokerError> for Error {
    fn from(error: BrokerError) -> Error {
        match error {
            BrokerError::QueueFull(m) => Error::QuotaExceeded(m),
            BrokerError::NotFound(m) => Error::NotFound(m),
            BrokerError::InvalidInput(m) => Error::InvalidInput(m),
            BrokerError::Denied(m) => Error::Denied(m),
        }
    }
}

/// Refuses wildcard and reserved topics: a component publishes on one
/// concrete topic, never on the host's `airssys.` topics (dead letters).
fn check_topic(topic: &str) -> Result<(), Error> {
    if topic
        .split('.')
        .any(|s| s.is_empty() || s == "*" || s == ">")
    {
        return Err(Error::InvalidInput(format!(
            "`{topic}` is not a concrete topic: use `.`-separated, non-empty segments without \
             `*` or `>`"
        )));
    }
    if topic.starts_with(RESERVED_TOPIC_PREFIX) {
        return Err(Error::InvalidInput(format!(
            "topic `{topic}` is reserved for the host (`{RESERVED_TOPIC_PREFIX}*`)"
        )));
    }
    Ok(())
}

impl HostPendingReply for HostState {
    fn subscribe(&mut self, self_: Resource<PendingReply>) -> wasmtime::Result<Resource<Pollable>> {
        let pollable = Pollable::watching(&self.table.get(&self_)?.probe);
        Ok(self.table.push(pollable)?)
    }

    fn get(
        &mut self,
        self_: Resource<PendingReply>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let pending = self.table.get(&self_)?;
        let poll = pending.slot.poll();
        if !matches!(poll, ReplyPoll::Pending) {
            pending.hold.release_bytes();
        }
        Ok(match poll {
            ReplyPoll::Pending => Ok(None),
            ReplyPoll::Ready(ReplyOutcome::Reply(bytes)) => Ok(Some(bytes)),
            ReplyPoll::Ready(ReplyOutcome::Remote(message)) => Err(Error::Remote(message)),
            ReplyPoll::Ready(ReplyOutcome::OverLimit(limit)) => Err(Error::QuotaExceeded(limit)),
            ReplyPoll::TimedOut => Err(Error::Timeout(format!(
                "component `{}` did not answer in time",
                pending.target
            ))),
            ReplyPoll::Gone => Err(Error::Other(
                "the reply was already taken or has timed out".to_owned(),
            )),
        })
    }

    fn drop(&mut self, rep: Resource<PendingReply>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

#[host_impl(interface = "airssys:core/messaging", crate = "::airssys_contract")]
impl Host for HostState {
    #[host_fn(capability = "msg:publish")]
    fn publish(&mut self, topic: String, payload: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        if let Err(e) = check_topic(&topic) {
            return Ok(Err(e));
        }
        let broker = &self.services.broker;
        // A broker waiting on the network waits at most until this call's
        // own deadline.
        Ok(broker
            .publish_by(self.name(), &topic, payload, self.call_deadline)
            .map(|_| ())
            .map_err(Error::from))
    }

    #[host_fn(capability = "msg:request")]
    fn request(
        &mut self,
        component: String,
        payload: Vec<u8>,
        timeout_ms: u64,
    ) -> wasmtime::Result<Result<Resource<PendingReply>, Error>> {
        // One pending slot now; the answer's bytes when it is stored.
        let hold = match self.budget.reserve(0) {
            Ok(hold) => Arc::new(ReplyHold(Mutex::new(Some(hold)))),
            Err(limit) => return Ok(Err(Error::QuotaExceeded(limit.to_string()))),
        };
        // Filling the slot notifies this instance's `poll`.
        let timeout = Duration::from_millis(timeout_ms);
        // A broker waiting on the network for the request's acceptance
        // waits at most until this call's own deadline.
        let slot = ReplySlot::new(timeout, Arc::clone(&self.wake))
            .charged_to(Arc::clone(&hold) as Arc<dyn ReplyBudget>)
            .admitted_by(self.call_deadline);
        let slot = Arc::new(slot);
        let pending = PendingReplyState {
            probe: Arc::new(ReplyProbe(Arc::clone(&slot))),
            slot: Arc::clone(&slot),
            target: component.clone(),
            hold,
        };
        // The handle first, so a refused request has queued nothing.
        let handle = match self.push(pending)? {
            Ok(handle) => handle,
            Err(limit) => return Ok(Err(Error::QuotaExceeded(limit.to_string()))),
        };
        let broker = &self.services.broker;
        if let Err(e) = broker.request(self.name(), &component, payload, slot) {
            self.table.delete(handle)?;
            return Ok(Err(e.into()));
        }
        Ok(Ok(handle))
    }

    fn self_name(&mut self) -> wasmtime::Result<ComponentName> {
        Ok(self.name().to_owned())
    }
}
