//! [`NatsBroker`]: messaging between runtimes (hosts) over a NATS server
//! (feature `nats`). Messages travel through JetStream by default
//! (at-least-once, [`NatsDelivery::JetStream`]), or through core NATS
//! (at-most-once, [`NatsDelivery::Core`]); requests always go through
//! core NATS request/reply.
//!
//! With JetStream, every message is stored in one stream (subjects
//! `<prefix>.msg.>`, interest retention: a message is kept until every
//! consumer that was there when it was published acknowledged it) and each
//! subscription pattern of a component is one durable pull consumer named
//! after the component and the pattern, shared by the component's replicas
//! on every host. A host pulls from it only what the component's local
//! mailbox has room for, and acknowledges a message once the dispatcher
//! settles it ([`Broker::settle`]): handled, or dead-lettered to
//! `<prefix>.dead-letter.<component>` (a stream of its own the operator
//! reads) after `max_attempts` deliveries, counted across hosts.
//!
//! Subjects (`<prefix>` defaults to `airssys`):
//!
//! - a message from component `s` on topic `t` is published on
//!   `<prefix>.msg.s.t`: the sending component's name (one NATS token) is
//!   the subject's stamp, written by the sending host from what the
//!   runtime told it (a component chooses only the topic). A component
//!   subscribing to a pattern `p` (`*` one segment, `>` the rest:
//!   airssys's topic syntax is NATS's) subscribes to `<prefix>.msg.*.p`
//!   in the **queue group named after the component**, so replicas of one
//!   component on several hosts share its messages while different
//!   components each get every message, from any source;
//! - a request from component `s` for component `c` is sent on
//!   `<prefix>.request.c.s` (the source stamped the same way), and every
//!   host running an instance of `c` subscribes to
//!   `<prefix>.request.c.*` in queue group `c`.
//!
//! Because the stamp is in the subject, the NATS server's permissions can
//! pin which sources a host may stamp (`<prefix>.msg.<its component>.>`,
//! `<prefix>.request.*.<its component>`); `docs/distributed.md` says what
//! is and is not enforced. A message or request whose source token is not
//! a component name did not come from an airssys host and is refused with
//! a warning naming its subject.
//!
//! The receiving host decides what reaches its components: a message is
//! queued for a component only when the component's subscriptions *and*
//! its effective grant (`msg:subscribe:<topic>`) cover the concrete topic,
//! whatever another host sent; then under the same bounds as the
//! in-process broker (capacity, bytes, per-publisher shares by the source
//! the header names), dead-lettering to the component's dead-letter topic
//! (published over NATS) what its mailbox refuses.

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::time::{Duration, Instant};

use airssys_contract::capability::{Capability, ResourcePattern, Segment};
use airssys_contract::manifest::MAX_NAME_LEN;
use airssys_contract::policy::redact_url;
use async_nats::jetstream;
use async_nats::{HeaderMap, Message, StatusCode};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::in_process::{Arrived, Offered};
use super::{
    Broker, BrokerConfig, BrokerError, Delivery, Envelope, InProcessBroker, Notifier,
    RESERVED_TOPIC_PREFIX, ReplyOutcome, ReplyPoll, ReplySlot, Settlement, Subscriber,
    dead_letter_topic,
};
use crate::sync::{OwnedRuntime, bounded};

mod connect;
mod refused;
mod stream_share;

pub use connect::{
    NatsConfigError, NatsConnectOptions, NatsConnectionState, NatsConnectionStatus,
    NatsConnectionWatch,
};

/// The Rust snippets of `docs/nats.md`, run as doc tests (only there: the
/// page is not part of the API documentation).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/nats.md")]
pub struct NatsPage;

/// The header naming the source of a dead letter in the dead-letter stream
/// ([`NatsBroker::dead_letter_subject`]), set by the dead-lettering host.
/// Messages and requests carry their source in the subject instead
/// ([`NatsBroker::message_subject`], [`NatsBroker::request_subject`]).
pub const SOURCE_HEADER: &str = "Airssys-Source";

/// The header carrying a request's time left, in milliseconds, so the
/// answering host gives up when the requester does.
const TIMEOUT_HEADER: &str = "Airssys-Timeout-Ms";

/// The header of an answer to a request: `accepted`, `reply`, `remote`,
/// `not-found`, `queue-full` or `invalid-input`.
const STATUS_HEADER: &str = "Airssys-Status";

/// The header of a dead letter in the dead-letter stream: the topic the
/// message was published on.
pub const TOPIC_HEADER: &str = "Airssys-Topic";

/// Messages pulled from one consumer at a time (at most what the local
/// mailbox has room for).
const PULL_BATCH: usize = 256;

/// Messages that arrived together handed to the mailbox at once (core
/// delivery).
const ARRIVED_BATCH: usize = 64;

/// How long a pull waits for messages before it is renewed.
const PULL_WAIT: Duration = Duration::from_secs(1);

/// Dead letters kept in the dead-letter stream (the oldest go first).
const DEAD_LETTERS_KEPT: i64 = 100_000;

/// Dead letters of one component kept in the dead-letter stream (its
/// subject `<prefix>.dead-letter.<component>`; its own oldest go first):
/// a component failing messages in a loop drops its own older dead
/// letters, not its neighbours'.
const DEAD_LETTERS_PER_COMPONENT: i64 = DEAD_LETTERS_KEPT / 10;

/// Bytes the dead-letter stream holds (the oldest go first): dead letters
/// are as large as the messages, and without a bound one component
/// failing large messages in a loop filled the server's JetStream store,
/// which every stream shares.
const DEAD_LETTER_BYTES: i64 = 1 << 30;

/// How long dead letters are kept in the dead-letter stream.
const DEAD_LETTER_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How a [`NatsBroker`] carries messages between hosts
/// ([`NatsBrokerBuilder::delivery`]; `docs/nats.md`, "Delivery semantics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NatsDelivery {
    /// JetStream (the default): at least once per subscribing component,
    /// across host crashes and server restarts; acknowledged after
    /// `handle-message` returns ok; redelivered up to
    /// [`BrokerConfig::max_attempts`], then dead-lettered; a full stream
    /// refuses the publish. The server must run with JetStream on
    /// (`nats-server -js`).
    #[default]
    JetStream,
    /// Core NATS: at most once; a message published while no subscriber
    /// is connected, or lost with a connection, is gone.
    Core,
}

impl FromStr for NatsDelivery {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "jetstream" => Ok(NatsDelivery::JetStream),
            "core" => Ok(NatsDelivery::Core),
            other => Err(format!(
                "unknown NATS delivery `{other}`: use `jetstream` (at least once, the default) \
                 or `core` (at most once)"
            )),
        }
    }
}

impl std::fmt::Display for NatsDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NatsDelivery::JetStream => "jetstream",
            NatsDelivery::Core => "core",
        })
    }
}

/// The longest a served request is kept when the requester sent no
/// (or a larger) time left.
const MAX_REQUEST_TIME: Duration = Duration::from_secs(3600);

/// Why a [`NatsBroker`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The subject prefix is not a valid NATS subject.
    #[error(
        "the subject prefix `{0}` (`--nats-prefix`, `[nats] prefix`) is not usable: use \
         `.`-separated, non-empty segments without `*`, `>` or whitespace (the default is \
         `airssys`)"
    )]
    InvalidPrefix(String),
    /// The inbox prefix is in the server's `$` subjects, or overlaps the
    /// subject prefix ([`inbox_prefix_conflict`](crate::policy::inbox_prefix_conflict)
    /// says why).
    #[error("`--nats-inbox-prefix`/`[nats] inbox_prefix` and `--nats-prefix`/`[nats] prefix`: {0}")]
    InboxPrefixConflict(String),
    /// The inbox prefix
    /// ([`NatsConnectOptions::inbox_prefix`])
    /// is not a valid NATS subject.
    #[error(
        "the inbox prefix `{0}` (`--nats-inbox-prefix`, `[nats] inbox_prefix`) is not usable: use \
         `.`-separated, non-empty segments without `*`, `>` or whitespace (the default is \
         `_INBOX`)"
    )]
    InvalidInboxPrefix(String),
    /// The broker's own tokio runtime could not be started.
    #[error("could not start the NATS broker's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// JetStream delivery was asked for and the server's JetStream could
    /// not set up the broker's streams.
    #[error(
        "the NATS server at `{url}` could not set up JetStream stream `{stream}`: {reason} (start \
         the server with JetStream on, `nats-server -js`, or choose core delivery: \
         `NatsBrokerBuilder::delivery(NatsDelivery::Core)`, `--nats-delivery core`)"
    )]
    JetStream {
        /// The server URL (credentials removed).
        url: String,
        /// The stream.
        stream: String,
        /// What the server said.
        reason: String,
    },
    /// One of JetStream's streams exists with other subjects than this
    /// host's wire layout needs: made by an airssys host of an older
    /// layout (the message stream with exactly `<prefix>.topic.>`: the
    /// source in a header), or by hand. Its hosts or users and this one
    /// would not exchange messages through it.
    #[error("{}", stream_layout_text(.url, .stream, .found, .wanted, *.older_layout))]
    StreamLayout {
        /// The server URL (credentials removed).
        url: String,
        /// The stream.
        stream: String,
        /// The subjects it has.
        found: Vec<String>,
        /// The subjects this host needs.
        wanted: String,
        /// Whether `found` is exactly the older wire layout's message
        /// subjects, `<prefix>.topic.>`.
        older_layout: bool,
    },
    /// The server could not be reached or refused the connection.
    #[error("could not connect to the NATS server at `{url}`: {reason}")]
    Connect {
        /// The server URL (credentials removed).
        url: String,
        /// What the client said.
        reason: String,
    },
}

/// The text of [`NatsError::StreamLayout`]: the older wire layout named
/// only when the stream's subjects are exactly its; otherwise what is seen.
fn stream_layout_text(
    url: &str,
    stream: &str,
    found: &[String],
    wanted: &str,
    older_layout: bool,
) -> String {
    let repair = format!(
        "delete the stream (`nats stream rm {stream}`; the messages still in it are lost) or \
         change its subjects (`nats stream edit {stream} --subjects '{wanted}'`)"
    );
    let elsewhere = "give this deployment another prefix (`--nats-prefix`, `[nats] prefix`)";
    if older_layout {
        format!(
            "JetStream stream `{stream}` on the NATS server at `{url}` has the subjects \
             {found:?}, but this host publishes messages on `{wanted}` (the sending component \
             in the subject; docs/decisions/nats-delivery.md, \"The source stamp in the \
             subject\"): it was made by an airssys host of the older wire layout. Stop every \
             host of the older layout, then {repair}, or {elsewhere}"
        )
    } else {
        format!(
            "JetStream stream `{stream}` on the NATS server at `{url}`: its subjects are \
             {found:?}; airssys needs `{wanted}`. If nothing else uses the stream, {repair}; \
             otherwise {elsewhere}"
        )
    }
}

/// Builds a [`NatsBroker`]: [`NatsBroker::builder`]. Its `Debug` shows
/// the URL without credentials.
#[derive(Clone)]
pub struct NatsBrokerBuilder {
    url: String,
    prefix: String,
    config: BrokerConfig,
    op_timeout: Duration,
    outgoing_capacity: usize,
    handle: Option<Handle>,
    connection: NatsConnectOptions,
    delivery: NatsDelivery,
    ack_wait: Duration,
    stream_max_messages: i64,
    stream_max_bytes: i64,
    stream_max_messages_per_component: Option<u64>,
}

impl NatsBrokerBuilder {
    /// How messages travel (default [`NatsDelivery::JetStream`]).
    #[must_use]
    pub fn delivery(mut self, delivery: NatsDelivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// JetStream: how long a message pulled by a host may stay
    /// unacknowledged before the server delivers it again (default 30 s).
    /// A host that crashed holding messages gets them redelivered (to it
    /// after its restart, or to another replica) once this has passed; a
    /// message waiting longer than this in a mailbox before it is handled
    /// may be delivered twice.
    #[must_use]
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait.max(Duration::from_millis(100));
        self
    }

    /// JetStream: the messages the stream holds (default 1,000,000):
    /// published and not yet acknowledged by every component subscribed
    /// when they were published. A publish finding the stream full is
    /// refused with [`BrokerError::QueueFull`] (`quota-exceeded` to the
    /// component), as a full mailbox is in-process.
    #[must_use]
    pub fn stream_max_messages(mut self, messages: u64) -> Self {
        self.stream_max_messages = i64::try_from(messages.max(1)).unwrap_or(i64::MAX);
        self
    }

    /// JetStream: the most messages of one publishing component in the
    /// stream, counted across every host that runs it (its replicas share
    /// one count); default: a quarter of the stream's `max_messages` (as
    /// the server has it: the first host sets it). A publish over it is
    /// refused with [`BrokerError::QueueFull`] (`quota-exceeded` to the
    /// component, naming this setting), so one component whose
    /// subscribers are slow cannot fill the stream for the others.
    /// Counted in messages only; core delivery has no stream and ignores
    /// it. `docs/nats.md` ("A component's share of the stream") has how
    /// it is counted and by how much hosts may pass it.
    #[must_use]
    pub fn stream_max_messages_per_component(mut self, messages: u64) -> Self {
        self.stream_max_messages_per_component = Some(messages.max(1));
        self
    }

    /// JetStream: the bytes the stream holds (default 1 GiB), refused as
    /// [`NatsBrokerBuilder::stream_max_messages`].
    #[must_use]
    pub fn stream_max_bytes(mut self, bytes: u64) -> Self {
        self.stream_max_bytes = i64::try_from(bytes.max(1)).unwrap_or(i64::MAX);
        self
    }

    /// The subject prefix (default `airssys`): every subject this broker
    /// uses starts with it, so several deployments can share one server.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bounds of the local mailboxes (default
    /// [`BrokerConfig::default`]), as for the in-process broker.
    #[must_use]
    pub fn config(mut self, config: BrokerConfig) -> Self {
        self.config = config;
        self
    }

    /// The longest a caller waits on the network (default 5 s):
    /// connecting, confirming a subscription when a component is
    /// registered or starts serving requests, and a request's acceptance
    /// by the target's host.
    #[must_use]
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Messages waiting to be written to the server (default 4096): a
    /// publish finding them all taken is refused with
    /// [`BrokerError::QueueFull`] (the server is slow or unreachable).
    #[must_use]
    pub fn outgoing_capacity(mut self, capacity: usize) -> Self {
        self.outgoing_capacity = capacity.max(1);
        self
    }

    /// Runs the broker's network tasks on this tokio runtime instead of a
    /// small one of its own (one worker thread).
    #[must_use]
    pub fn runtime_handle(mut self, handle: Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// Connects (waiting at most the
    /// [`op_timeout`](NatsBrokerBuilder::op_timeout)).
    ///
    /// # Errors
    ///
    /// [`NatsError`]: an unusable prefix, the runtime not starting, the
    /// server not reachable in time or refusing the connection.
    pub fn connect(mut self) -> Result<NatsBroker, NatsError> {
        if !is_subject(&self.prefix) {
            return Err(NatsError::InvalidPrefix(self.prefix));
        }
        if let Some(inbox) = self.connection.inbox_prefix_set()
            && !is_subject(inbox)
        {
            return Err(NatsError::InvalidInboxPrefix(inbox.to_owned()));
        }
        let inbox = self
            .connection
            .inbox_prefix_set()
            .unwrap_or(crate::policy::DEFAULT_INBOX_PREFIX);
        if let Some(conflict) = crate::policy::inbox_prefix_conflict(inbox, &self.prefix) {
            return Err(NatsError::InboxPrefixConflict(conflict));
        }
        let (runtime, handle) = match self.handle.take() {
            Some(handle) => (OwnedRuntime(None), handle),
            None => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("airssys-nats")
                    .enable_all()
                    .build()
                    .map_err(NatsError::Runtime)?;
                let handle = runtime.handle().clone();
                (OwnedRuntime(Some(runtime)), handle)
            }
        };
        let shown = redact_url(&self.url);
        let refusals = Arc::new(refused::Refusals::default());
        let options = self.connection.client_options_refusing(
            &shown,
            self.op_timeout,
            Some(Arc::clone(&refusals)),
        );
        let url = self.url.clone();
        let connected = bounded(&handle, self.op_timeout, async move {
            options.connect(url.as_str()).await
        });
        let client = match connected {
            Some(Ok(client)) => client,
            Some(Err(e)) => {
                return Err(NatsError::Connect {
                    url: shown,
                    reason: e.to_string(),
                });
            }
            None => {
                return Err(NatsError::Connect {
                    url: shown,
                    reason: format!("no connection within {:?}", self.op_timeout),
                });
            }
        };
        let js = match self.delivery {
            NatsDelivery::Core => None,
            NatsDelivery::JetStream => {
                Some(Js::set_up(&handle, &client, &self.prefix, &shown, &self)?)
            }
        };
        let (outgoing, queue) = tokio::sync::mpsc::channel(self.outgoing_capacity);
        let shared = Arc::new(Shared {
            client: client.clone(),
            handle: handle.clone(),
            msg_prefix: msg_prefix(&self.prefix),
            request_prefix: format!("{}.request.", self.prefix),
            dead_prefix: format!("{}.dead-letter.", self.prefix),
            local: InProcessBroker::new(self.config),
            op_timeout: self.op_timeout,
            outgoing,
            outgoing_capacity: self.outgoing_capacity,
            queued: Arc::new(AtomicUsize::new(0)),
            listeners: Mutex::new(HashMap::new()),
            serving: Mutex::new(HashMap::new()),
            answers: Mutex::new(Vec::new()),
            answered: Arc::new(Notifier::new()),
            stopping: AtomicBool::new(false),
            js,
            refusals,
        });
        let writer = handle.spawn(write_out(
            client,
            queue,
            Arc::clone(&shared.queued),
            self.op_timeout,
        ));
        let keeper = shared
            .js
            .as_ref()
            .map(|js| handle.spawn(keep_in_progress(Arc::downgrade(&shared), js.ack_wait)));
        let pump = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("airssys-nats-answers".to_owned())
                .spawn(move || shared.send_answers())
                .map_err(NatsError::Runtime)?
        };
        Ok(NatsBroker {
            shared,
            writer,
            keeper,
            pump: Some(pump),
            _runtime: runtime,
        })
    }
}

/// A [`Broker`] carrying messages and requests between runtimes over a
/// NATS server (core NATS: at-most-once; a message published while no
/// subscriber is connected, or lost with a connection, is gone).
///
/// Each host keeps a local mailbox per component with the in-process
/// broker's bounds; what arrives from NATS is queued there only when the
/// receiving component's subscriptions and grants cover its topic.
///
/// Subjects: a message from component `s` on topic `t` goes to
/// `<prefix>.msg.s.t` (the sending host stamps the source in the subject,
/// no headers); each subscription pattern `p` of a component is
/// subscribed as `<prefix>.msg.*.p` in the queue group named after the
/// component (so its replicas on several hosts share the messages, while
/// different components each get every message); requests from `s` for
/// component `c` go to `<prefix>.request.c.s`, subscribed as
/// `<prefix>.request.c.*` in queue group `c` by every host running an
/// instance of `c`. `docs/nats.md` has the whole picture.
///
/// Publishing never waits on the network (core delivery): a message goes
/// into the client's own queue when it has room and nothing of this
/// broker's waits before it, otherwise into a bounded queue the broker's
/// writer task hands on from, in order. A request waits at most the
/// [`op_timeout`](NatsBrokerBuilder::op_timeout) for the target's host to
/// accept it (or say no component of that name runs anywhere:
/// [`BrokerError::NotFound`]); the answer fills the request's
/// [`ReplySlot`] later.
#[derive(Debug)]
pub struct NatsBroker {
    shared: Arc<Shared>,
    writer: JoinHandle<()>,
    /// JetStream: tells the server the messages waiting in local
    /// mailboxes are in progress.
    keeper: Option<JoinHandle<()>>,
    pump: Option<std::thread::JoinHandle<()>>,
    /// Dropped last (fields drop in order).
    _runtime: OwnedRuntime,
}

#[derive(Debug)]
struct Shared {
    client: async_nats::Client,
    handle: Handle,
    /// `<prefix>.msg.`: a message from `s` on topic `t` is published on
    /// `<prefix>.msg.s.t`.
    msg_prefix: String,
    /// `<prefix>.request.`
    request_prefix: String,
    /// The local mailboxes, with their bounds and grants.
    local: InProcessBroker,
    op_timeout: Duration,
    outgoing: tokio::sync::mpsc::Sender<Outgoing>,
    outgoing_capacity: usize,
    /// Messages in `outgoing` not yet handed to the client by the writer
    /// task: while there are none, a core publish hands its message to
    /// the client itself (order kept, one hop less).
    queued: Arc<AtomicUsize>,
    /// The task receiving each registered component's messages.
    listeners: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Per component: running instances, and the task receiving its
    /// requests while there is one.
    serving: Mutex<HashMap<String, Serving>>,
    /// Requests queued here whose answer goes back over NATS: the slot
    /// the dispatcher fills, and the reply subject.
    answers: Mutex<Vec<(Arc<ReplySlot>, String)>>,
    /// Notified when one of `answers` is filled (every slot of `answers`
    /// carries it) or added.
    answered: Arc<Notifier>,
    stopping: AtomicBool,
    /// `<prefix>.dead-letter.`
    dead_prefix: String,
    /// JetStream delivery's state; `None` with core delivery.
    js: Option<Js>,
    /// Requests and JetStream publishes waiting on subjects the server's
    /// permissions may refuse (`nats/refused.rs`).
    refusals: Arc<refused::Refusals>,
}

/// JetStream delivery's state.
#[derive(Debug)]
struct Js {
    context: jetstream::Context,
    /// The stream of messages.
    stream: String,
    /// The stream of dead letters.
    dead_stream: String,
    ack_wait: Duration,
    /// Messages queued in a local mailbox and not settled yet, by the
    /// address of their payload (kept from reuse by the weak reference).
    unsettled: Mutex<HashMap<usize, Unsettled>>,
    /// Per component, the highest stream sequence number pulled for it.
    highest: Mutex<HashMap<String, u64>>,
    /// Each publishing component's share of the stream.
    share: stream_share::StreamShare,
}

/// A message pulled from a consumer, waiting for its settlement.
#[derive(Debug)]
struct Unsettled {
    payload: Weak<[u8]>,
    component: String,
    /// Its sequence number in the stream.
    sequence: u64,
    /// Its acknowledgement subject (of its latest delivery).
    ack: String,
}

fn payload_key(payload: &Arc<[u8]>) -> usize {
    Arc::as_ptr(payload).cast::<u8>() as usize
}

impl Js {
    /// Whether the message at `sequence` of the stream, delivered to
    /// `component` again, is still waiting in its mailbox from an earlier
    /// delivery; if so, that copy is acknowledged through `ack` (the
    /// latest delivery's subject) when settled.
    fn hold_again(&self, component: &str, sequence: u64, ack: &str) -> bool {
        let mut unsettled = crate::sync::lock(&self.unsettled);
        let held = unsettled.values_mut().find(|u| {
            u.sequence == sequence && u.component == component && u.payload.strong_count() > 0
        });
        match held {
            Some(held) => {
                ack.clone_into(&mut held.ack);
                true
            }
            None => false,
        }
    }

    /// Creates (or finds) the message and dead-letter streams.
    fn set_up(
        handle: &Handle,
        client: &async_nats::Client,
        prefix: &str,
        shown: &str,
        builder: &NatsBrokerBuilder,
    ) -> Result<Js, NatsError> {
        let base = prefix.replace('.', "_");
        let stream = format!("{base}_messages");
        let dead_stream = format!("{base}_dead_letters");
        // The context spawns its acknowledgement task on the current
        // runtime.
        let context = {
            let _entered = handle.enter();
            // Its own waits (a publish's acknowledgement) end at the
            // broker's `op_timeout` or sooner, never later.
            jetstream::context::ContextBuilder::new()
                .timeout(builder.op_timeout)
                .build(client.clone())
        };
        let configs = [
            jetstream::stream::Config {
                name: stream.clone(),
                subjects: vec![format!("{prefix}.msg.>")],
                retention: jetstream::stream::RetentionPolicy::Interest,
                discard: jetstream::stream::DiscardPolicy::New,
                storage: jetstream::stream::StorageType::File,
                max_messages: builder.stream_max_messages,
                max_bytes: builder.stream_max_bytes,
                ..Default::default()
            },
            jetstream::stream::Config {
                name: dead_stream.clone(),
                subjects: vec![format!("{prefix}.dead-letter.>")],
                retention: jetstream::stream::RetentionPolicy::Limits,
                discard: jetstream::stream::DiscardPolicy::Old,
                storage: jetstream::stream::StorageType::File,
                max_messages: DEAD_LETTERS_KEPT,
                max_messages_per_subject: DEAD_LETTERS_PER_COMPONENT,
                max_bytes: DEAD_LETTER_BYTES,
                max_age: DEAD_LETTER_AGE,
                ..Default::default()
            },
        ];
        let mut max_messages = builder.stream_max_messages;
        for config in configs {
            let name = config.name.clone();
            let wanted = config.subjects.clone();
            let ctx = context.clone();
            let made = bounded(handle, builder.op_timeout, async move {
                ctx.get_or_create_stream(config).await.map(|stream| {
                    let config = &stream.cached_info().config;
                    (config.subjects.clone(), config.max_messages)
                })
            });
            let reason = match made {
                Some(Ok((found, max))) if wanted.iter().all(|w| found.contains(w)) => {
                    if name == stream {
                        max_messages = max;
                    }
                    continue;
                }
                // Another layout's stream (an older host's, or made by
                // hand): its users and this host would never exchange a
                // message (nor would a publish here be stored), so say so
                // rather than run beside it.
                Some(Ok((found, _))) => {
                    let older_layout = name == stream && found == [format!("{prefix}.topic.>")];
                    return Err(NatsError::StreamLayout {
                        url: shown.to_owned(),
                        stream: name,
                        found,
                        wanted: wanted.join(", "),
                        older_layout,
                    });
                }
                Some(Err(e)) => e.to_string(),
                None => format!("no answer within {:?}", builder.op_timeout),
            };
            return Err(NatsError::JetStream {
                url: shown.to_owned(),
                stream: name,
                reason,
            });
        }
        let share = stream_share::StreamShare::new(
            builder
                .stream_max_messages_per_component
                .unwrap_or_else(|| stream_share::default_share(max_messages)),
            stream_share::Counter::for_broker(builder, &stream, shown),
            handle.clone(),
            builder.op_timeout,
        );
        Ok(Js {
            share,
            context,
            stream,
            dead_stream,
            ack_wait: builder.ack_wait,
            unsettled: Mutex::new(HashMap::new()),
            highest: Mutex::new(HashMap::new()),
        })
    }
}

/// A component's requests on this host.
#[derive(Debug, Default)]
struct Serving {
    /// Its running instances.
    running: usize,
    /// The task receiving its requests while one runs.
    task: Option<JoinHandle<()>>,
}

/// One entry of the writer task's queue.
#[derive(Debug)]
enum Outgoing {
    /// A message to publish (without headers when `None`: a message's
    /// source is in its subject).
    Message {
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
    },
    /// Everything queued before has been handed to the client: wait until
    /// the server processed them, and say whether it did in time.
    Flush(mpsc::SyncSender<bool>),
}

impl NatsBroker {
    /// The broker's NATS client: one connection per host, which storage
    /// over NATS shares ([`NatsKvStorage::builder`](crate::storage::NatsKvStorage::builder))
    /// so that it has the same credentials and TLS.
    pub fn client(&self) -> async_nats::Client {
        self.shared.client.clone()
    }

    /// The tokio runtime the broker's client runs on (its own one-thread
    /// runtime, or the one given to [`NatsBrokerBuilder::runtime_handle`]).
    /// It lives as long as the broker does.
    pub fn runtime_handle(&self) -> Handle {
        self.shared.handle.clone()
    }

    /// A builder for a broker on the server at `url` (`nats://host:port`;
    /// several, comma-separated, for a cluster).
    pub fn builder(url: impl Into<String>) -> NatsBrokerBuilder {
        NatsBrokerBuilder {
            url: url.into(),
            prefix: "airssys".to_owned(),
            config: BrokerConfig::default(),
            op_timeout: Duration::from_secs(5),
            outgoing_capacity: 4096,
            handle: None,
            connection: NatsConnectOptions::default(),
            delivery: NatsDelivery::default(),
            ack_wait: Duration::from_secs(30),
            stream_max_messages: 1_000_000,
            stream_max_bytes: 1 << 30,
            stream_max_messages_per_component: None,
        }
    }

    /// JetStream: the most messages of one publishing component in the
    /// stream ([`NatsBrokerBuilder::stream_max_messages_per_component`],
    /// or its default); `None` with core delivery.
    pub fn stream_max_messages_per_component(&self) -> Option<u64> {
        self.shared.js.as_ref().map(|js| js.share.share())
    }

    /// How this broker carries messages.
    pub fn delivery(&self) -> NatsDelivery {
        if self.shared.js.is_some() {
            NatsDelivery::JetStream
        } else {
            NatsDelivery::Core
        }
    }

    /// JetStream: the stream holding the messages (`<prefix>_messages`,
    /// `.` in the prefix as `_`), or `None` with core delivery.
    pub fn stream_name(&self) -> Option<&str> {
        self.shared.js.as_ref().map(|js| js.stream.as_str())
    }

    /// JetStream: the stream holding the dead letters
    /// (`<prefix>_dead_letters`), on subjects
    /// [`NatsBroker::dead_letter_subject`]; `None` with core delivery.
    pub fn dead_letter_stream_name(&self) -> Option<&str> {
        self.shared.js.as_ref().map(|js| js.dead_stream.as_str())
    }

    /// JetStream: the subject `component`'s dead letters are stored on in
    /// the dead-letter stream (`<prefix>.dead-letter.<component>`), with
    /// the source in [`SOURCE_HEADER`] and the topic in [`TOPIC_HEADER`].
    pub fn dead_letter_subject(&self, component: &str) -> String {
        format!("{}{component}", self.shared.dead_prefix)
    }

    /// The NATS subject a message from component `source` on `topic` is
    /// published on: `<prefix>.msg.<source>.<topic>` (the source stamp is
    /// the subject's token after `msg`).
    pub fn message_subject(&self, source: &str, topic: &str) -> String {
        message_subject_under(&self.shared.msg_prefix, source, topic)
    }

    /// The NATS subject filter of every message component `source`
    /// publishes, whatever the topic: `<prefix>.msg.<source>.>` (what a
    /// server permission or a per-source count names).
    pub fn source_filter(&self, source: &str) -> String {
        source_filter_under(&self.shared.msg_prefix, source)
    }

    /// The NATS subject a request from component `source` for component
    /// `target` is sent on: `<prefix>.request.<target>.<source>` (hosts
    /// running `target` subscribe `<prefix>.request.<target>.*`).
    pub fn request_subject(&self, target: &str, source: &str) -> String {
        format!("{}{target}.{source}", self.shared.request_prefix)
    }

    /// Waits (at most the [`op_timeout`](NatsBrokerBuilder::op_timeout))
    /// until the server processed everything published so far (a message
    /// of the broker's own, sent after them, came back); `false` when it
    /// did not in time.
    pub fn flush(&self) -> bool {
        self.flush_within(self.shared.op_timeout)
    }

    /// [`NatsBroker::flush`], waiting at most `within`.
    fn flush_within(&self, within: Duration) -> bool {
        let shared = &self.shared;
        let deadline = Instant::now() + within;
        let (done, flushed) = mpsc::sync_channel(1);
        // Behind everything queued so far, so the writer reaches it after
        // handing those to the client.
        let mut marker = Outgoing::Flush(done);
        loop {
            match shared.outgoing.try_send(marker) {
                Ok(()) => break,
                Err(tokio::sync::mpsc::error::TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    marker = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        flushed.recv_timeout(left).unwrap_or(false)
    }
}

impl Drop for NatsBroker {
    fn drop(&mut self) {
        if self.shared.js.is_some() {
            // Acknowledgements still queued reach the server (at most a
            // second's wait), so a host that stops cleanly causes no
            // redelivery.
            self.flush_within(self.shared.op_timeout.min(Duration::from_secs(1)));
        }
        let shared = &self.shared;
        shared.stopping.store(true, Ordering::SeqCst);
        shared.answered.notify();
        for (_, task) in crate::sync::lock(&shared.listeners).drain() {
            task.abort();
        }
        for (_, serving) in crate::sync::lock(&shared.serving).drain() {
            if let Some(task) = serving.task {
                task.abort();
            }
        }
        self.writer.abort();
        if let Some(keeper) = &self.keeper {
            keeper.abort();
        }
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
    }
}

/// The longest NATS subject a component's topic or request target may
/// make, everything included (the prefix, and for a message the sending
/// component's name: `<prefix>.msg.<source>.<topic>`). A NATS server closes a connection whose protocol line passes its
/// `max_control_line` (4096 bytes by default), and this connection is the
/// whole host's: one over-long subject would cut every component off.
pub const MAX_SUBJECT_BYTES: usize = 2048;

/// `<prefix>.msg.`: what every message's subject starts with, the source
/// stamp next.
fn msg_prefix(prefix: &str) -> String {
    format!("{prefix}.msg.")
}

/// The subject of a message from `source` on `topic` under `msg_prefix`
/// (`<prefix>.msg.`): `<prefix>.msg.<source>.<topic>`, built at its exact
/// size (once per message published, so without `format!`'s machinery
/// and regrowth).
fn message_subject_under(msg_prefix: &str, source: &str, topic: &str) -> String {
    let mut subject = String::with_capacity(msg_prefix.len() + source.len() + 1 + topic.len());
    subject.push_str(msg_prefix);
    subject.push_str(source);
    subject.push('.');
    subject.push_str(topic);
    subject
}

/// `<msg_prefix><source>.>`: every message `source` publishes.
fn source_filter_under(msg_prefix: &str, source: &str) -> String {
    format!("{msg_prefix}{source}.>")
}

/// Refuses a subject (a component's `what` and what `around` says is
/// around it, e.g. "with `airssys.msg.alice.` before it", made only for the
/// error) longer than [`MAX_SUBJECT_BYTES`].
fn check_subject_len(
    subject: &str,
    what: &str,
    around: impl FnOnce() -> String,
) -> Result<(), BrokerError> {
    if subject.len() <= MAX_SUBJECT_BYTES {
        return Ok(());
    }
    Err(BrokerError::InvalidInput(format!(
        "the {what} makes a NATS subject of {} bytes {}; the limit is {MAX_SUBJECT_BYTES} \
         bytes in all (`MAX_SUBJECT_BYTES`: a NATS server closes the host's connection on a \
         longer protocol line): use a shorter {what}",
        subject.len(),
        around()
    )))
}

/// Whether `text` is a concrete NATS subject: `.`-separated, non-empty
/// tokens without wildcards or whitespace.
fn is_subject(text: &str) -> bool {
    crate::policy::is_concrete_subject(text)
}

/// The NATS subject pattern of a topic pattern, or `None` when it cannot
/// be one (the subscription is then skipped with a warning).
fn pattern_subject(prefix: &str, pattern: &Capability) -> Option<String> {
    let glob = match pattern.resource() {
        None => return Some(format!("{prefix}>")),
        Some(ResourcePattern::Topic(glob)) => glob,
        Some(_) => return None,
    };
    let mut tokens: Vec<&str> = glob
        .segments()
        .iter()
        .map(|s| match s {
            Segment::Literal(text) => text.as_str(),
            Segment::Any => "*",
        })
        .collect();
    if glob.has_rest() {
        tokens.push(">");
    }
    let ok = !tokens.is_empty()
        && tokens
            .iter()
            .all(|t| !t.is_empty() && !t.contains(char::is_whitespace));
    ok.then(|| format!("{prefix}{}", tokens.join(".")))
}

/// The durable consumer of `component`'s subscription on `subject`: the
/// component's name (characters a consumer name cannot hold as `_`) and a
/// hash of both, the same on every host, so replicas share it.
fn durable_name(component: &str, subject: &str) -> String {
    // FNV-1a, 64 bits: stable across builds and hosts.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in component.bytes().chain([0]).chain(subject.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let shown: String = component
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{shown}-{hash:016x}")
}

/// Whether the server processed everything this client sent so far: a
/// message to a fresh inbox of its own comes back (the server handles a
/// connection's operations in order). The client's `flush` only empties
/// the socket's buffer.
async fn round_trip(client: &async_nats::Client, within: Duration) -> bool {
    let probe = async {
        let inbox = client.new_inbox();
        let mut echo = client.subscribe(inbox.clone()).await.ok()?;
        client.publish(inbox, Bytes::new()).await.ok()?;
        echo.next().await
    };
    matches!(tokio::time::timeout(within, probe).await, Ok(Some(_)))
}

/// JetStream: every quarter of the `ack_wait`, tells the server that each message
/// taken into a local mailbox and not settled yet is in progress (`+WPI`),
/// so it is not delivered again while it waits here; forgets those dropped
/// without a settlement (their component was unregistered: they come
/// again after the `ack_wait`).
async fn keep_in_progress(shared: Weak<Shared>, ack_wait: Duration) {
    let every = (ack_wait / 4).max(Duration::from_millis(25));
    loop {
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Some(js) = shared.js.as_ref() else {
            return;
        };
        let subjects: Vec<String> = {
            let mut unsettled = crate::sync::lock(&js.unsettled);
            unsettled.retain(|_, u| u.payload.strong_count() > 0);
            unsettled.values().map(|u| u.ack.clone()).collect()
        };
        for subject in subjects {
            let _ = shared.send(subject, None, Bytes::from_static(b"+WPI"));
        }
    }
}

/// Sends what publishers queued, in order.
async fn write_out(
    client: async_nats::Client,
    mut queue: tokio::sync::mpsc::Receiver<Outgoing>,
    queued: Arc<AtomicUsize>,
    within: Duration,
) {
    while let Some(out) = queue.recv().await {
        let (subject, headers, payload) = match out {
            Outgoing::Message {
                subject,
                headers,
                payload,
            } => (subject, headers, payload),
            Outgoing::Flush(done) => {
                let _ = done.send(round_trip(&client, within).await);
                continue;
            }
        };
        let handed = match headers {
            Some(headers) => {
                client
                    .publish_with_headers(subject.clone(), headers, payload)
                    .await
            }
            None => client.publish(subject.clone(), payload).await,
        };
        // Handed over (or lost): a publish may go to the client directly
        // again once nothing is left before it.
        queued.fetch_sub(1, Ordering::SeqCst);
        if let Err(error) = handed {
            tracing::warn!(
                target: "airssys::messaging",
                subject,
                %error,
                "a message could not be handed to the NATS client and is lost"
            );
        }
    }
}

/// Waits for the next message of `stream`, then takes every one already
/// waiting behind it, up to [`ARRIVED_BATCH`] in `batch`; `false` when
/// the stream ended and nothing was taken.
async fn ready_batch<S>(stream: &mut S, batch: &mut Vec<Message>) -> bool
where
    S: futures_util::Stream<Item = Message> + Unpin,
{
    std::future::poll_fn(|cx| {
        loop {
            if batch.len() >= ARRIVED_BATCH {
                return std::task::Poll::Ready(true);
            }
            match stream.poll_next_unpin(cx) {
                std::task::Poll::Ready(Some(message)) => batch.push(message),
                std::task::Poll::Ready(None) => return std::task::Poll::Ready(!batch.is_empty()),
                std::task::Poll::Pending if batch.is_empty() => return std::task::Poll::Pending,
                std::task::Poll::Pending => return std::task::Poll::Ready(true),
            }
        }
    })
    .await
}

/// Refuses a `source` that cannot be stamped on a subject
/// (`is_source_name`), saying what a component name is.
fn check_source_name(source: &str) -> Result<(), BrokerError> {
    if is_source_name(source) {
        return Ok(());
    }
    Err(BrokerError::InvalidInput(format!(
        "the source `{source}` is not a component name (an ASCII letter, then letters, \
         digits, `-`, `_`; at most {MAX_NAME_LEN} bytes), so it cannot be stamped on a \
         NATS subject"
    )))
}

/// Whether `name` can be a message's source stamp: a component name's
/// syntax (an ASCII letter, then letters, digits, `-`, `_`; at most
/// `MAX_NAME_LEN` bytes), names the host uses for itself (`host`, `cli`,
/// `http`, ...) included. So it is exactly one NATS token.
fn is_source_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The source and topic a host stamped on a message's `subject`
/// (`<prefix>.msg.<source>.<topic>`, `msg_prefix` being `<prefix>.msg.`);
/// `None` when the subject is not that, or its source token is not a
/// component name (a client that is not an airssys host sent it).
fn stamp_of<'s>(msg_prefix: &str, subject: &'s str) -> Option<(&'s str, &'s str)> {
    let (source, topic) = subject.strip_prefix(msg_prefix)?.split_once('.')?;
    (is_source_name(source) && !topic.is_empty()).then_some((source, topic))
}

/// The source a host stamped on a request for `target` (its subject
/// `<prefix>.request.<target>.<source>`, `request_prefix` being
/// `<prefix>.request.`); `None` when the last token is not a component
/// name.
fn request_source<'s>(request_prefix: &str, target: &str, subject: &'s str) -> Option<&'s str> {
    let source = subject
        .strip_prefix(request_prefix)?
        .strip_prefix(target)?
        .strip_prefix('.')?;
    is_source_name(source).then_some(source)
}

fn status_of(message: &Message) -> Option<&str> {
    Some(message.headers.as_ref()?.get(STATUS_HEADER)?.as_str())
}

impl Shared {
    /// JetStream: makes (or finds) the durable consumer of each of
    /// `component`'s subscriptions, confirms them, then pulls from each
    /// into the component's mailbox until aborted. Returns the task and
    /// whether the consumers were there within the `op_timeout`.
    fn consume(
        self: &Arc<Self>,
        component: &str,
        subscriptions: Vec<(String, Capability)>,
    ) -> (JoinHandle<()>, bool) {
        let (ready, confirmed) = mpsc::sync_channel::<()>(1);
        let shared = Arc::clone(self);
        let component = component.to_owned();
        let task = self.handle.spawn(async move {
            let mut pulls: Vec<futures_util::future::BoxFuture<'static, ()>> =
                Vec::with_capacity(subscriptions.len());
            for (index, (subject, _)) in subscriptions.iter().enumerate() {
                // A topic matched by an earlier pattern comes through that
                // pattern's consumer.
                let earlier: Vec<Capability> = subscriptions[..index]
                    .iter()
                    .map(|(_, pattern)| pattern.clone())
                    .collect();
                let shared = Arc::clone(&shared);
                match shared.consumer_of(&component, subject).await {
                    Ok(consumer) => {
                        pulls.push(Box::pin(shared.pull(component.clone(), consumer, earlier)));
                    }
                    Err(error) => {
                        tracing::warn!(
                            target: "airssys::messaging",
                            subject,
                            component,
                            %error,
                            "could not make the JetStream consumer of `{component}` on \
                             `{subject}`: trying again every second; its messages wait in the \
                             stream until then"
                        );
                        let (component, subject) = (component.clone(), subject.clone());
                        pulls.push(Box::pin(async move {
                            let consumer = loop {
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                if let Ok(consumer) = shared.consumer_of(&component, &subject).await
                                {
                                    break consumer;
                                }
                            };
                            shared.pull(component, consumer, earlier).await;
                        }));
                    }
                }
            }
            let _ = ready.send(());
            futures_util::future::join_all(pulls).await;
        });
        let ok = confirmed.recv_timeout(self.op_timeout).is_ok();
        (task, ok)
    }

    /// Makes (or finds) the durable consumer of `component`'s
    /// subscription on `subject`.
    async fn consumer_of(
        &self,
        component: &str,
        subject: &str,
    ) -> Result<jetstream::consumer::PullConsumer, async_nats::Error> {
        let Some(js) = self.js.as_ref() else {
            return Err("core delivery has no consumers".into());
        };
        let name = durable_name(component, subject);
        let config = jetstream::consumer::pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: subject.to_owned(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: js.ack_wait,
            deliver_policy: jetstream::consumer::DeliverPolicy::New,
            ..Default::default()
        };
        Ok(js
            .context
            .get_stream(&js.stream)
            .await?
            .get_or_create_consumer(&name, config)
            .await?)
    }

    /// Room in `component`'s mailbox for a pull: entries (0: none now)
    /// and bytes. The bytes are the mailbox's room, or one largest message
    /// when the mailbox is empty (so a message larger than the room is
    /// still pulled, then refused by name); while the mailbox holds
    /// entries and has no room for a largest message, nothing is pulled.
    /// So a host holds at most its `mailbox_bytes` (or one message) per
    /// consumer beyond the mailbox, whatever the message sizes.
    fn room(&self, component: &str) -> (usize, usize) {
        let config = self.local.config();
        let pending = self.local.pending(component);
        let entries = config
            .queue_capacity
            .saturating_sub(pending)
            .min(PULL_BATCH);
        let largest = config
            .max_payload_bytes
            .saturating_add(MAX_SUBJECT_BYTES)
            .saturating_add(1024);
        let bytes = config
            .mailbox_bytes
            .saturating_sub(self.local.pending_bytes(component));
        match pending {
            0 => (entries, bytes.max(largest)),
            _ if bytes < largest => (0, 0),
            _ => (entries, bytes),
        }
    }

    /// Pulls from one consumer of `component` into its mailbox.
    async fn pull(
        self: Arc<Self>,
        component: String,
        consumer: jetstream::consumer::PullConsumer,
        earlier: Vec<Capability>,
    ) {
        let mut link_down = false;
        while !self.stopping.load(Ordering::SeqCst) {
            let (room, room_bytes) = self.room(&component);
            if room == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            let batch = consumer
                .batch()
                .max_messages(room)
                .max_bytes(room_bytes)
                .expires(PULL_WAIT)
                .messages();
            let batch = tokio::time::timeout(self.op_timeout, batch)
                .await
                .map_err(|_| format!("no answer within {:?}", self.op_timeout))
                .and_then(|made| made.map_err(|e| e.to_string()));
            let mut batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    if !link_down {
                        tracing::warn!(
                            target: "airssys::messaging",
                            component,
                            %error,
                            "could not pull the messages of `{component}` from JetStream; \
                             trying again"
                        );
                        link_down = true;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // A pull the server forgot (it restarted, the connection
            // broke) never ends by itself: one that brings nothing for
            // twice its wait is given up and made again.
            while let Ok(Some(next)) = tokio::time::timeout(PULL_WAIT * 2, batch.next()).await {
                match next {
                    Ok(message) => {
                        link_down = false;
                        self.accept_stored(&component, &earlier, message).await;
                    }
                    Err(error) => {
                        tracing::debug!(
                            target: "airssys::messaging",
                            component,
                            %error,
                            "a JetStream pull for `{component}` ended"
                        );
                        break;
                    }
                }
            }
        }
    }

    /// Acknowledges a stored message (the server then forgets it for this
    /// consumer).
    fn ack(&self, ack_subject: String) {
        if let Err(error) = self.send(ack_subject, None, Bytes::from_static(b"+ACK")) {
            tracing::warn!(
                target: "airssys::messaging",
                %error,
                "an acknowledgement could not be sent: the message will be delivered again"
            );
        }
    }

    /// A stored message `component`'s subscriptions and grants do not
    /// cover: never delivered (nor dead-lettered for it), acknowledged so
    /// the server does not deliver it again, logged.
    fn not_wanted(&self, component: &str, source: &str, topic: &str, ack: String) {
        tracing::warn!(
            target: "airssys::messaging",
            component,
            source,
            topic,
            "a message on topic `{topic}` is not covered by the subscriptions and grants \
             (`msg:subscribe:{topic}`) of `{component}` on this host: not delivered, \
             acknowledged"
        );
        self.ack(ack);
    }

    /// A stored message pulled for `component`.
    async fn accept_stored(
        &self,
        component: &str,
        earlier: &[Capability],
        message: jetstream::Message,
    ) {
        let Some(js) = self.js.as_ref() else {
            return;
        };
        let Some(ack) = message.reply.as_ref().map(ToString::to_string) else {
            return;
        };
        let (delivered, sequence) = message
            .info()
            .map_or((1, 0), |info| (info.delivered, info.stream_sequence));
        let message = &message.message;
        let subject = message.subject.as_str();
        let Some((source, topic)) = stamp_of(&self.msg_prefix, subject) else {
            tracing::warn!(
                target: "airssys::messaging",
                subject,
                component,
                "a message on NATS subject `{subject}` has no valid source stamp (`{}<component \
                 name>.<topic>`: it was not sent by an airssys host): not delivered to \
                 `{component}`, acknowledged",
                self.msg_prefix
            );
            self.ack(ack);
            return;
        };
        if !earlier.is_empty()
            && let Ok(wanted) = Capability::parse(&format!("msg:subscribe:{topic}"))
            && earlier.iter().any(|pattern| wanted.is_subset_of(pattern))
        {
            self.ack(ack);
            return;
        }
        if !self.local.wants(component, topic) {
            self.not_wanted(component, source, topic, ack);
            return;
        }
        // A message comes again with a higher delivery count (the ack wait
        // passed), or with a sequence number not above one seen already (a
        // server that restarted lost its record of the delivery).
        let seen = {
            let mut highest = crate::sync::lock(&js.highest);
            let highest = highest.entry(component.to_owned()).or_insert(0);
            let seen = sequence <= *highest;
            *highest = (*highest).max(sequence);
            seen
        };
        if (delivered > 1 || seen) && js.hold_again(component, sequence, &ack) {
            // Its first copy still waits in the mailbox: that copy is
            // handled and acknowledged.
            return;
        }
        let config = self.local.config();
        let envelope = Envelope {
            topic: Arc::from(topic),
            source: Arc::from(source),
            payload: Arc::from(&message.payload[..]),
        };
        if message.payload.len() > config.max_payload_bytes {
            tracing::warn!(
                target: "airssys::messaging",
                subject,
                component,
                "a message of {} bytes on NATS subject `{subject}` is larger than the broker's \
                 `max_payload_bytes` ({}): not delivered to `{component}`, dead-lettered",
                message.payload.len(),
                config.max_payload_bytes
            );
            self.dead_letter_in_task(component, &envelope);
            self.ack(ack);
            return;
        }
        let attempts = u32::try_from(delivered.saturating_sub(1)).unwrap_or(u32::MAX);
        if attempts >= config.max_attempts {
            tracing::warn!(
                target: "airssys::messaging",
                component,
                topic,
                source,
                attempts,
                "message dead-lettered: delivered {attempts} times already (the broker's \
                 `max_attempts` is {}), the last ones not acknowledged (the host handling it \
                 ended)",
                config.max_attempts
            );
            self.dead_letter_in_task(component, &envelope);
            self.ack(ack);
            return;
        }
        let key = payload_key(&envelope.payload);
        crate::sync::lock(&js.unsettled).insert(
            key,
            Unsettled {
                payload: Arc::downgrade(&envelope.payload),
                component: component.to_owned(),
                sequence,
                ack: ack.clone(),
            },
        );
        loop {
            let offered = self.local.offer_one(
                component,
                source,
                topic,
                Arc::clone(&envelope.payload),
                attempts,
            );
            let forget = || crate::sync::lock(&js.unsettled).remove(&key);
            match offered {
                Offered::Queued => return,
                // Unregistered or changed since the check above.
                Offered::NotWanted => {
                    forget();
                    self.not_wanted(component, source, topic, ack);
                    return;
                }
                Offered::TooLarge => {
                    forget();
                    self.dead_letter(component, &envelope);
                    self.ack(ack);
                    return;
                }
                // Full for now (by its bytes): hold it, and the pull,
                // until there is room.
                Offered::Refused => {
                    if self.stopping.load(Ordering::SeqCst) {
                        forget();
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }

    /// JetStream: publishes on `subject` and waits (at most the
    /// `op_timeout`) for the server to store it.
    fn store(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
        deadline: Option<Instant>,
    ) -> Result<(), BrokerError> {
        let Some(js) = self.js.as_ref() else {
            return self.send(subject, headers, payload);
        };
        let context = js.context.clone();
        let within = deadline.map_or(self.op_timeout, |deadline| {
            self.op_timeout
                .min(deadline.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1))
        });
        // A subject the server's permissions refuse is never stored: the
        // publish fails when the server says so (`nats/refused.rs`).
        let refusal = self
            .refusals
            .watch(vec![(refused::Violation::Publish, subject.clone())]);
        let stored = bounded(&self.handle, within, async move {
            let stored = async {
                match headers {
                    Some(headers) => {
                        context
                            .publish_with_headers(subject, headers, payload)
                            .await?
                            .await
                    }
                    None => context.publish(subject, payload).await?.await,
                }
            };
            tokio::select! {
                biased;
                refused = refusal.refused() => Err(refused),
                stored = stored => Ok(stored),
            }
        });
        let stored = match stored {
            Some(Err(refused)) => {
                return Err(BrokerError::Denied(refused.text("JetStream publish")));
            }
            Some(Ok(stored)) => Some(stored),
            None => None,
        };
        match stored {
            Some(Ok(_)) => Ok(()),
            Some(Err(error))
                if error.kind() == jetstream::context::PublishErrorKind::MaxPayloadExceeded =>
            {
                Err(BrokerError::InvalidInput(format!(
                    "the NATS server refused the message: {error} (its `max_payload`)"
                )))
            }
            Some(Err(error)) => Err(BrokerError::QueueFull(format!(
                "JetStream stream `{}` did not take the message: {error} (it holds at most \
                 `stream_max_messages` messages and `stream_max_bytes` bytes not yet \
                 acknowledged by their subscribers; try again later)",
                js.stream
            ))),
            None => Err(BrokerError::QueueFull(format!(
                "the NATS server did not confirm storing the message within {within:?} (the \
                 broker's `op_timeout`, or what was left of the call's `limits.cpu_time_ms`): \
                 it is slow or unreachable; try again later"
            ))),
        }
    }

    /// Core delivery: publishes a message (its source stamped in
    /// `subject`, no headers). While nothing waits in the writer task's
    /// queue, the message goes to the client's own queue at once (never
    /// waiting: when that is full, or refuses it, it takes the writer's
    /// way); otherwise it queues behind the others, so one publisher's
    /// messages keep their order.
    fn publish_core(&self, subject: String, payload: Bytes) -> Result<(), BrokerError> {
        if self.queued.load(Ordering::SeqCst) == 0 {
            let handed = self
                .client
                .publish(subject.clone(), payload.clone())
                .now_or_never();
            if let Some(Ok(())) = handed {
                return Ok(());
            }
        }
        self.send(subject, None, payload)
    }

    /// Queues a message for the writer task.
    fn send(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
    ) -> Result<(), BrokerError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        self.outgoing
            .try_send(Outgoing::Message {
                subject,
                headers,
                payload,
            })
            .map_err(|e| {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                BrokerError::QueueFull(match e {
                    tokio::sync::mpsc::error::TrySendError::Full(_) => format!(
                        "the NATS link's outgoing queue is full ({} messages, \
                         `NatsBrokerBuilder::outgoing_capacity`): the server is slow or \
                         unreachable; try again later",
                        self.outgoing_capacity
                    ),
                    tokio::sync::mpsc::error::TrySendError::Closed(_) => {
                        "the NATS link is closed".to_owned()
                    }
                })
            })
    }

    fn source_headers(source: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SOURCE_HEADER, source);
        headers
    }

    /// `<prefix>.msg.*.`: what a subscription pattern follows (any
    /// source).
    fn subscribe_prefix(&self) -> String {
        format!("{}*.", self.msg_prefix)
    }

    /// Refuses what the server could not carry or this broker does not
    /// accept.
    fn check_payload(&self, len: usize) -> Result<(), BrokerError> {
        let config = self.local.config();
        if len > config.max_payload_bytes {
            return Err(BrokerError::InvalidInput(format!(
                "the payload has {len} bytes; the limit is {} bytes (the broker's \
                 `max_payload_bytes`)",
                config.max_payload_bytes
            )));
        }
        let server = self.client.max_payload();
        // Room for the headers (source, time left: well under 1 KiB).
        if len.saturating_add(1024) > server {
            return Err(BrokerError::InvalidInput(format!(
                "the payload has {len} bytes; the NATS server takes at most {server} bytes per \
                 message with headers (its `max_payload`)"
            )));
        }
        Ok(())
    }

    /// Messages arrived for `component` on its subscriptions (those the
    /// subscription task found waiting together): each checked alone, then
    /// offered to the mailbox under one lock with one notification.
    fn accept_messages(&self, component: &str, messages: &mut Vec<Message>) {
        let max = self.local.config().max_payload_bytes;
        let mut arrived = Vec::with_capacity(messages.len());
        let mut kept = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            if let Some(one) = self.arrived(component, message, max) {
                arrived.push(one);
                kept.push(index);
            }
        }
        let mut not_queued = Vec::new();
        self.local.offer_many(component, arrived, &mut not_queued);
        for (index, offered) in not_queued {
            let message = &messages[kept[index]];
            let subject = message.subject.as_str();
            let Some((source, topic)) = stamp_of(&self.msg_prefix, subject) else {
                continue;
            };
            match offered {
                Offered::Queued => {}
                Offered::NotWanted => tracing::warn!(
                    target: "airssys::messaging",
                    subject,
                    component,
                    source,
                    "a message on topic `{topic}` is not covered by the subscriptions and grants \
                     (`msg:subscribe:{topic}`) of `{component}` on this host: not delivered"
                ),
                Offered::Refused | Offered::TooLarge
                    if topic.starts_with(RESERVED_TOPIC_PREFIX) => {}
                Offered::Refused | Offered::TooLarge => {
                    let letter = Envelope {
                        topic: Arc::from(topic),
                        source: Arc::from(source),
                        payload: Arc::from(&message.payload[..]),
                    };
                    self.dead_letter(component, &letter);
                }
            }
        }
        messages.clear();
    }

    /// A message that arrived for `component`, when it may be offered to
    /// its mailbox: on a message subject stamped with a valid source, not
    /// over the broker's `max_payload_bytes` (`max`). Otherwise `None`,
    /// with a warning.
    fn arrived<'m>(
        &self,
        component: &str,
        message: &'m Message,
        max: usize,
    ) -> Option<Arrived<'m>> {
        let subject = message.subject.as_str();
        let Some((source, topic)) = stamp_of(&self.msg_prefix, subject) else {
            tracing::warn!(
                target: "airssys::messaging",
                subject,
                component,
                "a message on NATS subject `{subject}` has no valid source stamp (`{}<component \
                 name>.<topic>`: it was not sent by an airssys host): not delivered to \
                 `{component}`",
                self.msg_prefix
            );
            return None;
        };
        if message.payload.len() > max {
            tracing::warn!(
                target: "airssys::messaging",
                subject,
                component,
                "a message of {} bytes on NATS subject `{subject}` is larger than the broker's \
                 `max_payload_bytes` ({max}): not delivered to `{component}`",
                message.payload.len()
            );
            return None;
        }
        Some(Arrived {
            source,
            topic,
            payload: Arc::from(&message.payload[..]),
        })
    }

    /// Offers a dead letter of `component` to the subscribers of its
    /// dead-letter topic on every host, stamped with the message's own
    /// source (as in-process: the subscriber sees who sent it), on
    /// `<prefix>.msg.<source>.airssys.dead-letter.<component>`; with
    /// JetStream, keeps it in the dead-letter stream too. (The server's
    /// permissions can let a host stamp any source on its own components'
    /// dead-letter topics only: `docs/distributed.md`.)
    fn dead_letter(&self, component: &str, envelope: &Envelope) -> usize {
        let source = &*envelope.source;
        let subject = is_source_name(source).then(|| {
            format!(
                "{}{source}.{}",
                self.msg_prefix,
                dead_letter_topic(component)
            )
        });
        let offer = |payload: Bytes| match &subject {
            Some(subject) => self.send(subject.clone(), None, payload),
            None => Err(BrokerError::InvalidInput(format!(
                "its source `{source}` is not a component name, so it cannot be stamped"
            ))),
        };
        if self.js.is_some() && !envelope.topic.starts_with(RESERVED_TOPIC_PREFIX) {
            // Kept for the operator in the dead-letter stream, and offered
            // to subscribers of the dead-letter topic as in-process.
            let mut headers = Self::source_headers(source);
            headers.insert(TOPIC_HEADER, &*envelope.topic);
            let payload = Bytes::copy_from_slice(&envelope.payload);
            let kept = self.store(
                format!("{}{component}", self.dead_prefix),
                Some(headers),
                payload.clone(),
                None,
            );
            if let Err(error) = &kept {
                tracing::warn!(
                    target: "airssys::messaging",
                    component,
                    %error,
                    "a dead letter of `{component}` could not be stored in the dead-letter stream"
                );
            }
            // Offered within the share of the component that failed it
            // (its count takes its dead letters, whatever their source):
            // failing a neighbour's messages uses up no share but its own.
            let offered = match self.js.as_ref().map(|js| js.share.admit(component, None)) {
                Some(Err(refused)) => {
                    tracing::warn!(
                        target: "airssys::messaging",
                        component,
                        error = %refused,
                        "a dead letter of `{component}` is kept in the dead-letter stream only, \
                         not offered to its dead-letter subscribers"
                    );
                    false
                }
                Some(Ok(ticket)) => offer(payload).map(|()| ticket.stored()).is_ok(),
                None => offer(payload).is_ok(),
            };
            return usize::from(kept.is_ok() || offered);
        }
        match offer(Bytes::copy_from_slice(&envelope.payload)) {
            Ok(()) => 1,
            Err(error) => {
                tracing::warn!(
                    target: "airssys::messaging",
                    component,
                    %error,
                    "a dead letter of `{component}` could not be sent and is dropped"
                );
                0
            }
        }
    }

    /// [`Shared::dead_letter`] from a task on the broker's runtime (a
    /// message dead-lettered as it arrives): its waits for the server (the
    /// store, a count of the component's share) run with the thread handed
    /// over (`block_in_place`), so the runtime's other tasks — every
    /// component's deliveries, and the store and count waited for — go on.
    /// Blocking the runtime's one worker instead held every delivery of
    /// the host for the `op_timeout` and lost the dead letter.
    fn dead_letter_in_task(&self, component: &str, envelope: &Envelope) -> usize {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.dead_letter(component, envelope))
            }
            _ => self.dead_letter(component, envelope),
        }
    }

    /// Answers a request (or refuses it) on its reply subject.
    fn answer(&self, reply_to: &str, status: &str, payload: Bytes) {
        let mut headers = HeaderMap::new();
        headers.insert(STATUS_HEADER, status);
        if let Err(error) = self.send(reply_to.to_owned(), Some(headers), payload) {
            tracing::warn!(
                target: "airssys::messaging",
                %error,
                "the answer to a request from another host could not be sent and is lost"
            );
        }
    }

    /// Requests arrived for `target`, which runs here.
    fn accept_requests(&self, target: &str, messages: &mut Vec<Message>) {
        for message in messages.drain(..) {
            self.accept_request(target, message);
        }
    }

    /// A request arrived for `target`, which runs here.
    fn accept_request(&self, target: &str, message: Message) {
        let Some(reply_to) = message.reply.as_ref().map(|r| r.to_string()) else {
            tracing::warn!(
                target: "airssys::messaging",
                subject = message.subject.as_str(),
                "a request without a reply subject on `{}` is ignored",
                message.subject
            );
            return;
        };
        let subject = message.subject.as_str();
        let Some(source) = request_source(&self.request_prefix, target, subject) else {
            tracing::warn!(
                target: "airssys::messaging",
                subject,
                "a request on NATS subject `{subject}` has no valid source stamp (`{}{target}.\
                 <component name>`: it was not sent by an airssys host): refused",
                self.request_prefix
            );
            let text = format!(
                "requests on `{subject}` must name the requesting component as the subject's \
                 last token (`{}{target}.<component name>`)",
                self.request_prefix
            );
            self.answer(&reply_to, "invalid-input", Bytes::from(text));
            return;
        };
        let time_left = message
            .headers
            .as_ref()
            .and_then(|h| h.get(TIMEOUT_HEADER))
            .and_then(|v| v.as_str().parse::<u64>().ok())
            .map_or(MAX_REQUEST_TIME, Duration::from_millis)
            .min(MAX_REQUEST_TIME);
        let slot = Arc::new(ReplySlot::new(time_left, Arc::clone(&self.answered)));
        let payload = message.payload.to_vec();
        // An answer the server's permissions refuse is reported naming
        // this request (`nats/refused.rs`).
        self.refusals.answering(&reply_to, source, target);
        match self
            .local
            .request(source, target, payload, Arc::clone(&slot))
        {
            Ok(()) => {
                // `accepted` queued first: the answer thread's answer
                // (one quick handler's may be ready at once) goes behind
                // it on the same queue, so the requester gets them in
                // order.
                self.answer(&reply_to, "accepted", Bytes::new());
                crate::sync::lock(&self.answers).push((slot, reply_to));
                self.answered.notify();
            }
            Err(error) => {
                let status = match error {
                    BrokerError::NotFound(_) => "not-found",
                    BrokerError::QueueFull(_) => "queue-full",
                    _ => "invalid-input",
                };
                self.answer(&reply_to, status, Bytes::from(error.to_string()));
            }
        }
    }

    /// The answer thread: sends each filled slot of `answers` back.
    fn send_answers(&self) {
        while !self.stopping.load(Ordering::SeqCst) {
            let seen = self.answered.generation();
            let mut ready = Vec::new();
            crate::sync::lock(&self.answers).retain(|(slot, reply_to)| match slot.poll() {
                ReplyPoll::Pending => true,
                ReplyPoll::Ready(outcome) => {
                    ready.push((outcome, reply_to.clone()));
                    false
                }
                ReplyPoll::TimedOut | ReplyPoll::Gone => false,
            });
            for (outcome, reply_to) in ready {
                let (status, payload) = match outcome {
                    ReplyOutcome::Reply(bytes) => ("reply", Bytes::from(bytes)),
                    ReplyOutcome::Remote(text) | ReplyOutcome::OverLimit(text) => {
                        ("remote", Bytes::from(text))
                    }
                };
                self.answer(&reply_to, status, payload);
            }
            // Expired slots are dropped on the next pass at the latest.
            self.answered
                .wait(seen, Instant::now() + Duration::from_secs(1));
        }
    }

    /// Subscribes to `subjects` in queue group `group`, confirms the
    /// subscriptions with the server, then hands the messages to `each`
    /// until aborted: all those already waiting at once (at most
    /// [`ARRIVED_BATCH`]), so the work per message that can be shared (the
    /// mailbox's lock, its notification) is. Returns the task and whether
    /// the server confirmed within the `op_timeout`.
    fn listen(
        self: &Arc<Self>,
        group: &str,
        subjects: Vec<String>,
        each: fn(&Shared, &str, &mut Vec<Message>),
    ) -> (JoinHandle<()>, bool) {
        let (ready, confirmed) = mpsc::sync_channel::<()>(1);
        let shared = Arc::clone(self);
        let group = group.to_owned();
        let task = self.handle.spawn(async move {
            let mut subscriptions = Vec::with_capacity(subjects.len());
            for subject in &subjects {
                match shared
                    .client
                    .queue_subscribe(subject.clone(), group.clone())
                    .await
                {
                    Ok(subscription) => subscriptions.push(subscription),
                    Err(error) => tracing::warn!(
                        target: "airssys::messaging",
                        subject,
                        component = group,
                        %error,
                        "could not subscribe to NATS subject `{subject}` for `{group}`"
                    ),
                }
            }
            if round_trip(&shared.client, shared.op_timeout).await {
                let _ = ready.send(());
            }
            let mut batch = Vec::with_capacity(ARRIVED_BATCH);
            if subscriptions.len() == 1 {
                // The usual case, one subject: read it directly (merging
                // streams costs a re-queue per message).
                let mut one = subscriptions.swap_remove(0);
                while ready_batch(&mut one, &mut batch).await {
                    each(&shared, &group, &mut batch);
                }
                return;
            }
            let mut all = futures_util::stream::select_all(subscriptions);
            while ready_batch(&mut all, &mut batch).await {
                each(&shared, &group, &mut batch);
            }
        });
        let ok = confirmed.recv_timeout(self.op_timeout).is_ok();
        (task, ok)
    }

    /// Sends a request and reports its acceptance on `admitted`, then
    /// fills `reply` with the answer.
    async fn ask(
        self: Arc<Self>,
        target: String,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
        reply: Arc<ReplySlot>,
        admitted: mpsc::SyncSender<Result<(), BrokerError>>,
    ) {
        let mut admitted = Some(admitted);
        let mut admit = |result: Result<(), BrokerError>| {
            if let Some(admitted) = admitted.take() {
                let _ = admitted.send(result);
            }
        };
        let inbox = self.client.new_inbox();
        // The server's permissions may refuse the answers' subscription
        // or the request's publish: it says so later, naming only the
        // subject; the request then fails at once (`nats/refused.rs`).
        let mut refusal = Some(self.refusals.watch(vec![
            (refused::Violation::Subscribe, inbox.clone()),
            (refused::Violation::Publish, subject.clone()),
        ]));
        let mut answers = match self.client.subscribe(inbox.clone()).await {
            Ok(answers) => answers,
            Err(error) => {
                admit(Err(BrokerError::QueueFull(format!(
                    "the NATS link could not take the request: {error}"
                ))));
                return;
            }
        };
        if let Err(error) = self
            .client
            .publish_with_reply_and_headers(subject.clone(), inbox, headers, payload)
            .await
        {
            admit(Err(BrokerError::QueueFull(format!(
                "the NATS link could not take the request: {error}"
            ))));
            return;
        }
        loop {
            let now = Instant::now();
            let deadline = reply.deadline();
            if now >= deadline {
                break;
            }
            let wait = (deadline - now).min(Duration::from_secs(1));
            let refused = async {
                match &refusal {
                    Some(watch) => watch.refused().await,
                    None => std::future::pending().await,
                }
            };
            let next = tokio::select! {
                biased;
                refused = refused => {
                    let error = BrokerError::Denied(
                        refused.text(&format!("request for component `{target}`")),
                    );
                    // Too late to refuse when the requester was told it
                    // was sent: the refusal is the answer.
                    reply.fill(ReplyOutcome::Remote(error.to_string()));
                    admit(Err(error));
                    break;
                }
                next = tokio::time::timeout(wait, answers.next()) => next,
            };
            let message = match next {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(_) => {
                    if !reply.is_wanted() {
                        break;
                    }
                    continue;
                }
            };
            // An answer came: the request went out and its answers come.
            refusal = None;
            if message.status == Some(StatusCode::NO_RESPONDERS) {
                let text = format!(
                    "no instance of component `{target}` is running on any host of this NATS \
                     server (nobody answers on `{subject}`)"
                );
                admit(Err(BrokerError::NotFound(text.clone())));
                reply.fill(ReplyOutcome::Remote(text));
                break;
            }
            let text = || String::from_utf8_lossy(&message.payload).into_owned();
            match status_of(&message) {
                Some("accepted") => admit(Ok(())),
                Some("reply") => {
                    admit(Ok(()));
                    reply.fill(ReplyOutcome::Reply(message.payload.to_vec()));
                    break;
                }
                Some("remote") => {
                    admit(Ok(()));
                    reply.fill(ReplyOutcome::Remote(text()));
                    break;
                }
                Some(refusal @ ("not-found" | "queue-full" | "invalid-input")) => {
                    let error = match refusal {
                        "not-found" => BrokerError::NotFound(text()),
                        "queue-full" => BrokerError::QueueFull(text()),
                        _ => BrokerError::InvalidInput(text()),
                    };
                    // Too late to refuse (the requester was told it was
                    // sent): the refusal is the answer.
                    reply.fill(ReplyOutcome::Remote(error.to_string()));
                    admit(Err(error));
                    break;
                }
                other => tracing::warn!(
                    target: "airssys::messaging",
                    status = other,
                    "an answer to a request for `{target}` has no known `{STATUS_HEADER}`: \
                     ignored"
                ),
            }
        }
    }
}

impl Broker for NatsBroker {
    /// Registers `component` locally and subscribes to each of its
    /// subscription patterns on NATS in the queue group named after it,
    /// waiting at most the `op_timeout` for the server to confirm.
    fn register(&self, component: &str, subscriber: Subscriber) {
        let shared = &self.shared;
        let subjects: Vec<(String, Capability)> = subscriber
            .subscriptions
            .iter()
            .filter_map(|pattern| {
                let subject = pattern_subject(&shared.subscribe_prefix(), pattern);
                if subject.is_none() {
                    tracing::warn!(
                        target: "airssys::messaging",
                        component,
                        "subscription `{pattern}` of `{component}` is not a NATS subject pattern: \
                         skipped"
                    );
                }
                subject.map(|subject| (subject, pattern.clone()))
            })
            .collect();
        // Queued messages the new registration does not cover are
        // acknowledged, never delivered, as one arriving outside it is.
        for envelope in shared.local.register_dropping(component, subscriber) {
            self.settle(component, &envelope, Settlement::Handled);
        }
        let old = crate::sync::lock(&shared.listeners).remove(component);
        if let Some(old) = old {
            old.abort();
        }
        if subjects.is_empty() {
            return;
        }
        let (task, confirmed) = if shared.js.is_some() {
            shared.consume(component, subjects)
        } else {
            let subjects = subjects.into_iter().map(|(subject, _)| subject).collect();
            shared.listen(component, subjects, Shared::accept_messages)
        };
        if !confirmed {
            tracing::warn!(
                target: "airssys::messaging",
                component,
                "the NATS server did not confirm the subscriptions of `{component}` within {:?}; \
                 messages published before it does are not delivered",
                shared.op_timeout
            );
        }
        crate::sync::lock(&shared.listeners).insert(component.to_owned(), task);
    }

    fn unregister(&self, component: &str) -> usize {
        let shared = &self.shared;
        if let Some(task) = crate::sync::lock(&shared.listeners).remove(component) {
            task.abort();
        }
        if let Some(Serving {
            task: Some(task), ..
        }) = crate::sync::lock(&shared.serving).remove(component)
        {
            task.abort();
        }
        if let Some(js) = &shared.js {
            // Not acknowledged: redelivered after the `ack_wait`.
            crate::sync::lock(&js.unsettled).retain(|_, u| u.component != component);
            // Its counting connection is closed (stream_share.rs).
            js.share.forget(component);
        }
        shared.local.unregister(component)
    }

    fn registrations(&self) -> u64 {
        self.shared.local.registrations()
    }

    /// The first running instance of `component` subscribes this host to
    /// its request subject (queue group `component`), waiting at most the
    /// `op_timeout` for the server to confirm; the last one ending
    /// unsubscribes.
    fn set_running(&self, component: &str, running: bool) {
        let shared = &self.shared;
        shared.local.set_running(component, running);
        let mut serving = crate::sync::lock(&shared.serving);
        let entry = serving.entry(component.to_owned()).or_default();
        if running {
            entry.running = entry.running.saturating_add(1);
            if entry.task.is_none() {
                let subject = format!("{}{component}.*", shared.request_prefix);
                let (task, confirmed) =
                    shared.listen(component, vec![subject], Shared::accept_requests);
                if !confirmed {
                    tracing::warn!(
                        target: "airssys::messaging",
                        component,
                        "the NATS server did not confirm the request subscription of \
                         `{component}` within {:?}",
                        shared.op_timeout
                    );
                }
                entry.task = Some(task);
            }
        } else {
            entry.running = entry.running.saturating_sub(1);
            if entry.running == 0
                && let Some(task) = entry.task.take()
            {
                task.abort();
            }
        }
    }

    /// Hands the message to NATS on `<prefix>.msg.<source>.<topic>` (no
    /// headers) and returns 1: how
    /// many hosts and components receive it is not known to the sender.
    /// With JetStream, waits (at most the `op_timeout`) until the server
    /// stored it; with core NATS, never waits on the network.
    ///
    /// # Errors
    ///
    /// [`BrokerError::InvalidInput`] for a topic that is not a concrete
    /// subject, a source that is not a component name, a subject over
    /// [`MAX_SUBJECT_BYTES`], or a payload over the broker's or the
    /// server's limit;
    /// [`BrokerError::QueueFull`] when the stream is full or the server
    /// did not confirm in time (JetStream), or the link's outgoing queue is
    /// full (core); [`BrokerError::Denied`] when the server's permissions
    /// refused this host the subject (JetStream; a core publish is not
    /// answered, the refusal is only printed and counted).
    fn publish(&self, source: &str, topic: &str, payload: Vec<u8>) -> Result<usize, BrokerError> {
        self.publish_by(source, topic, payload, None)
    }

    /// [`NatsBroker::publish`](Broker::publish), waiting for the server
    /// (JetStream) at most until `deadline` too.
    fn publish_by(
        &self,
        source: &str,
        topic: &str,
        payload: Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<usize, BrokerError> {
        let shared = &self.shared;
        if !is_subject(topic) {
            return Err(BrokerError::InvalidInput(format!(
                "`{topic}` is not a concrete topic: use `.`-separated, non-empty segments \
                 without `*`, `>` or whitespace"
            )));
        }
        check_source_name(source)?;
        let subject = message_subject_under(&shared.msg_prefix, source, topic);
        check_subject_len(&subject, "topic", || {
            format!("with `{}{source}.` before it", shared.msg_prefix)
        })?;
        shared.check_payload(payload.len())?;
        if shared.js.is_none() {
            shared.publish_core(subject, Bytes::from(payload))?;
        } else if let Some(js) = &shared.js {
            // The source's share of the stream (stream_share.rs).
            let ticket = js
                .share
                .admit(source, deadline)
                .map_err(BrokerError::QueueFull)?;
            shared.store(subject, None, Bytes::from(payload), deadline)?;
            ticket.stored();
        }
        Ok(1)
    }

    fn dead_letter(&self, component: &str, envelope: Envelope) -> usize {
        self.shared.dead_letter(component, &envelope)
    }

    /// JetStream: acknowledges the message (handled, or dead-lettered
    /// before), so the server does not deliver it again.
    fn settle(&self, component: &str, envelope: &Envelope, _settlement: Settlement) {
        let Some(js) = &self.shared.js else {
            return;
        };
        let key = payload_key(&envelope.payload);
        let mut unsettled = crate::sync::lock(&js.unsettled);
        let ours = unsettled.get(&key).is_some_and(|u| {
            u.component == component
                && u.payload
                    .upgrade()
                    .is_some_and(|p| Arc::ptr_eq(&p, &envelope.payload))
        });
        if !ours {
            return;
        }
        let Some(settled) = unsettled.remove(&key) else {
            return;
        };
        drop(unsettled);
        self.shared.ack(settled.ack);
    }

    /// Sends the request on `<prefix>.request.<target>.<source>` (with the
    /// time left in a header) and waits at
    /// most the `op_timeout`, and never past the slot's
    /// [`ReplySlot::admit_by`] (the requester's call deadline), for a host
    /// running it to accept it; the answer fills `reply` when it comes (or
    /// the slot times out). A request the server's permissions refuse
    /// (its subject, or the subscription to its reply subject) is
    /// [`BrokerError::Denied`] as soon as the server says so (`remote`
    /// through `reply`, with the same text, should that come after the
    /// wait for acceptance ended).
    fn request(
        &self,
        source: &str,
        target: &str,
        payload: Vec<u8>,
        reply: Arc<ReplySlot>,
    ) -> Result<(), BrokerError> {
        let shared = &self.shared;
        if !is_subject(target) {
            return Err(BrokerError::NotFound(format!(
                "no component is named `{target}`"
            )));
        }
        check_source_name(source)?;
        let subject = format!("{}{target}.{source}", shared.request_prefix);
        check_subject_len(&subject, "target component name", || {
            format!(
                "with `{}` before it and `.{source}` after it",
                shared.request_prefix
            )
        })?;
        shared.check_payload(payload.len())?;
        let mut headers = HeaderMap::new();
        let left = reply.deadline().saturating_duration_since(Instant::now());
        headers.insert(
            TIMEOUT_HEADER,
            u64::try_from(left.as_millis())
                .unwrap_or(u64::MAX)
                .to_string(),
        );
        let admit_within = reply.admit_by().saturating_duration_since(Instant::now());
        let (admitted, admission) = mpsc::sync_channel(1);
        shared.handle.spawn(Arc::clone(shared).ask(
            target.to_owned(),
            subject,
            headers,
            Bytes::from(payload),
            reply,
            admitted,
        ));
        let wait = shared
            .op_timeout
            .min(admit_within)
            .max(Duration::from_millis(1));
        match admission.recv_timeout(wait) {
            Ok(result) => result,
            // Sent, not yet accepted: the answer (or the slot's
            // deadline) decides.
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(BrokerError::QueueFull("the NATS link is closed".to_owned()))
            }
        }
    }

    fn take(&self, component: &str) -> Option<Delivery> {
        self.shared.local.take(component)
    }

    fn take_batch(&self, component: &str, max: usize, into: &mut VecDeque<Delivery>) -> usize {
        self.shared.local.take_batch(component, max, into)
    }

    /// Puts `delivery` back; a message the component's registration no
    /// longer covers is dropped and, with JetStream, acknowledged (as
    /// `register` does for the queued ones), so the server does not
    /// deliver it again.
    fn requeue_front(&self, component: &str, delivery: Delivery) {
        if let Some(dropped) = self
            .shared
            .local
            .requeue_front_dropping(component, delivery)
        {
            self.settle(component, &dropped, Settlement::Handled);
        }
    }

    /// As [`NatsBroker::requeue_front`](Broker::requeue_front), for each
    /// entry.
    fn requeue_front_all(&self, component: &str, entries: &mut VecDeque<Delivery>) {
        for dropped in self
            .shared
            .local
            .requeue_front_all_dropping(component, entries)
        {
            self.settle(component, &dropped, Settlement::Handled);
        }
    }

    fn pending(&self, component: &str) -> usize {
        self.shared.local.pending(component)
    }

    fn config(&self) -> BrokerConfig {
        self.shared.local.config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inbox prefix in `$` subjects or overlapping the subject prefix
    /// is refused before connecting, naming both settings; prefixes
    /// apart are taken (and the connection then fails: no server).
    #[test]
    fn an_inbox_prefix_overlapping_the_subject_prefix_is_refused() {
        let connect = |prefix: &str, inbox: Option<&str>| {
            let mut options = NatsConnectOptions::new();
            if let Some(inbox) = inbox {
                options = options.inbox_prefix(inbox);
            }
            NatsBroker::builder("nats://127.0.0.1:1")
                .prefix(prefix)
                .connect_options(options)
                .op_timeout(Duration::from_millis(200))
                .connect()
                .map(|_| ())
                .expect_err("no server")
        };
        for (prefix, inbox) in [
            ("shop", Some("shop")),
            ("shop", Some("shop.replies")),
            ("airssys", Some("airssys.topic.orders")),
            ("_INBOX.x", None),
            ("_INBOX.host-a.shop", Some("_INBOX.host-a")),
            ("airssys", Some("$JS.API")),
            ("airssys", Some("$SYS")),
        ] {
            let err = connect(prefix, inbox);
            assert!(
                matches!(err, NatsError::InboxPrefixConflict(_))
                    && err
                        .to_string()
                        .contains("`--nats-inbox-prefix`/`[nats] inbox_prefix`"),
                "{prefix} {inbox:?}: {err}"
            );
        }
        for (prefix, inbox) in [
            ("shop", Some("_INBOX.host-a")),
            ("shop", Some("shopping")),
            ("airssys", None),
        ] {
            let err = connect(prefix, inbox);
            assert!(
                matches!(err, NatsError::Connect { .. }),
                "{prefix} {inbox:?}: {err}"
            );
        }
    }

    #[test]
    fn credentials_are_not_shown() {
        assert_eq!(
            redact_url("nats://user:secret@host:4222"),
            "nats://***@host:4222"
        );
        assert_eq!(
            redact_url("tok@host:4222,nats://h2:4222"),
            "***@host:4222,nats://h2:4222"
        );
        assert_eq!(redact_url("nats://h:1"), "nats://h:1");
    }

    #[test]
    fn subjects_are_concrete() {
        assert!(is_subject("orders.created"));
        for bad in ["", "a..b", "a.*", ">", "a b", ".a"] {
            assert!(!is_subject(bad), "{bad}");
        }
    }

    #[test]
    fn patterns_map_one_to_one() {
        let cap =
            |p: &str| Capability::parse(&format!("msg:subscribe:{p}")).expect("valid pattern");
        assert_eq!(
            pattern_subject("airssys.msg.*.", &cap("orders.*")).as_deref(),
            Some("airssys.msg.*.orders.*")
        );
        assert_eq!(
            pattern_subject("x.msg.*.", &cap("a.>")).as_deref(),
            Some("x.msg.*.a.>")
        );
    }

    #[test]
    fn a_requests_source_is_the_token_after_its_target() {
        let p = "airssys.request.";
        assert_eq!(
            request_source(p, "ping", "airssys.request.ping.http"),
            Some("http")
        );
        assert_eq!(
            request_source(p, "ping", "airssys.request.ping.ping-2"),
            Some("ping-2")
        );
        for bad in [
            "airssys.request.ping",
            "airssys.request.ping.",
            "airssys.request.ping-2.alice",
            "airssys.request.ping.a.b",
            "airssys.request.ping.2a",
            "airssys.request.ping.bad!name",
            "airssys.request.pingalice",
        ] {
            assert_eq!(request_source(p, "ping", bad), None, "{bad}");
        }
    }

    #[test]
    fn the_source_is_the_token_after_msg() {
        let p = "airssys.msg.";
        assert_eq!(
            stamp_of(p, "airssys.msg.ping.orders.created"),
            Some(("ping", "orders.created"))
        );
        assert_eq!(
            stamp_of(p, "airssys.msg.ping-2.orders.created"),
            Some(("ping-2", "orders.created"))
        );
        assert_eq!(
            stamp_of(p, "airssys.msg.host.airssys.dead-letter.pong"),
            Some(("host", "airssys.dead-letter.pong"))
        );
        let long = format!("airssys.msg.{}.t", "a".repeat(MAX_NAME_LEN + 1));
        for bad in [
            "airssys.msg.ping",
            "airssys.msg.ping.",
            "airssys.msg.2ping.t",
            "airssys.msg.-p.t",
            "airssys.msg.bad!name.t",
            "airssys.msg..t",
            "airssys.topic.ping.t",
            "other.msg.ping.t",
            &long,
        ] {
            assert_eq!(stamp_of(p, bad), None, "{bad}");
        }
    }
}
