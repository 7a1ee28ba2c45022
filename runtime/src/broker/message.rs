//! What a broker carries: [`Envelope`] (a published message) and
//! [`Delivery`] (one entry of a mailbox: a message or a request).

use std::sync::Arc;

use super::ReplySlot;

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
    pub(super) fn source(&self) -> &Arc<str> {
        match self {
            Delivery::Message { envelope, .. } => &envelope.source,
            Delivery::Request { source, .. } => source,
        }
    }

    /// The bytes it is charged in a mailbox.
    pub fn size(&self) -> usize {
        match self {
            Delivery::Message { envelope, .. } => envelope.size(),
            Delivery::Request { payload, .. } => payload.len(),
        }
    }
}

impl Envelope {
    /// The bytes it is charged in a mailbox and measured against a
    /// subscriber's
    /// [`Subscriber::max_message_bytes`](super::Subscriber::max_message_bytes):
    /// topic and payload
    /// (the source is a name the host chose).
    pub fn size(&self) -> usize {
        self.topic.len().saturating_add(self.payload.len())
    }
}
