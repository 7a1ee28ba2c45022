//! [`NatsKvStorage`]: storage in a JetStream key-value bucket (feature
//! `nats`), so a component's storage is the same whichever host runs it.
//!
//! # Layout
//!
//! One KV bucket (default [`DEFAULT_KV_BUCKET`]) holds every namespace,
//! flat: the entry `key` of `bucket` in `namespace` is the KV key
//! `e.<namespace>.<bucket>.<key>`, and the bytes charged to `namespace` are
//! the KV key `u.<namespace>` (decimal text). KV keys allow only
//! `[-/_=.a-zA-Z0-9]`, so each part is one token encoded with URL-safe
//! base64 without padding (`=` for an empty part): reversible for any
//! bytes, never holding `.`, and at most 4/3 of the part's length (a
//! 1024-byte key stays well within the server's 4096-byte control line).
//! The namespaces cannot meet: every part is exactly one token.
//!
//! # Quota across hosts
//!
//! The usage counter is changed only by compare-and-set on its revision,
//! and an entry only by compare-and-set on the entry's revision, in an
//! order that keeps the counter at or above the bytes really stored:
//!
//! - a write that grows the namespace first adds the growth to the counter
//!   (refused with [`StorageError::QuotaExceeded`] when that passes the
//!   quota), then writes the entry expecting the revision it read; when
//!   another host changed the entry meanwhile the growth is given back and
//!   the write starts again from the new entry;
//! - a write that shrinks the namespace, and a delete, first change the
//!   entry, then take the difference off the counter.
//!
//! So hosts sharing the bucket never hold more than the quota together. A
//! host dying between the two steps leaves the counter high by that
//! write's difference (the namespace is charged for bytes it does not
//! hold, never the reverse).
//!
//! Each host remembers the revisions (and value lengths) it last saw, so an
//! overwrite usually costs one round trip to the server for the entry and
//! one for the counter (none when the size does not change); a stale
//! revision only makes the compare-and-set fail and the entry be read
//! again. Reads always ask the server.
//!
//! # Listing
//!
//! `list_keys` reads the names of every key of the component's bucket (one
//! ordered consumer filtered to `e.<namespace>.<bucket>.*`, delivering
//! headers only, the last message per key), sorts them and returns those
//! after the cursor: each page costs a pass over that bucket's keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::runtime::Handle;

use super::{StorageBackend, StorageError, check_quota, entry_cost};
use crate::sync::{OwnedRuntime, bounded, lock};
use airssys_contract::policy::redact_url;

/// The KV bucket used unless [`NatsKvStorageBuilder::bucket`] names
/// another.
pub const DEFAULT_KV_BUCKET: &str = "airssys";

/// Revisions remembered per host before the memory is cleared.
const MAX_SEEN: usize = 4096;

/// The header a KV delete or purge marker carries.
const KV_OPERATION: &str = "KV-Operation";

/// Builds a [`NatsKvStorage`]: [`NatsKvStorage::builder`] or
/// [`NatsKvStorage::connect`].
#[derive(Debug)]
pub struct NatsKvStorageBuilder {
    client: Option<async_nats::Client>,
    url: Option<String>,
    handle: Option<Handle>,
    bucket: String,
    replicas: usize,
    op_timeout: Duration,
}

impl NatsKvStorageBuilder {
    /// The KV bucket (default [`DEFAULT_KV_BUCKET`]); created with one
    /// revision per key when missing. Hosts sharing storage name the same.
    #[must_use]
    pub fn bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = bucket.into();
        self
    }

    /// Replicas of the bucket when this host creates it (default 1; a
    /// JetStream cluster keeps up to 5).
    #[must_use]
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.clamp(1, 5);
        self
    }

    /// The longest one storage call waits for the server (default 5 s);
    /// past it the call fails with [`StorageError::Backend`].
    #[must_use]
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Opens the bucket, creating it when missing (waiting at most the
    /// [`op_timeout`](NatsKvStorageBuilder::op_timeout)).
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`]: the server unreachable, without
    /// JetStream, or refusing the bucket (named in the message).
    pub fn open(self) -> Result<NatsKvStorage, StorageError> {
        if !self
            .bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || self.bucket.is_empty()
        {
            return Err(StorageError::InvalidInput(format!(
                "the NATS key-value bucket name `{}` is not usable: use letters, digits, `-` and \
                 `_` (the default is `{DEFAULT_KV_BUCKET}`)",
                self.bucket.escape_debug()
            )));
        }
        let (runtime, handle) = match self.handle {
            Some(handle) => (OwnedRuntime(None), handle),
            None => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("airssys-nats-kv")
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        StorageError::Backend(format!("cannot start the NATS storage runtime: {e}"))
                    })?;
                let handle = runtime.handle().clone();
                (OwnedRuntime(Some(runtime)), handle)
            }
        };
        let client = match (self.client, self.url) {
            (Some(client), _) => client,
            (None, Some(url)) => {
                let shown = redact_url(&url);
                let options = async_nats::ConnectOptions::new()
                    .name("airssys-storage")
                    .connection_timeout(self.op_timeout);
                bounded(&handle, self.op_timeout, async move {
                    options.connect(url.as_str()).await
                })
                .ok_or_else(|| format!("no connection within {:?}", self.op_timeout))
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map_err(|reason| {
                    StorageError::Backend(format!(
                        "could not connect to the NATS server at `{shown}`: {reason}"
                    ))
                })?
            }
            (None, None) => {
                return Err(StorageError::Backend(
                    "no NATS client or URL given".to_owned(),
                ));
            }
        };
        let bucket = self.bucket.clone();
        let replicas = self.replicas;
        let for_context = client.clone();
        let op_timeout = self.op_timeout;
        let opened = bounded(&handle, self.op_timeout, async move {
            // Made on the runtime: the context spawns its acker task. Its
            // own request timeout (async-nats's default is 5 s) is the
            // `op_timeout`, so that a longer one takes effect.
            let context = jetstream::context::ContextBuilder::new()
                .timeout(op_timeout)
                .build(for_context);
            if let Ok(store) = context.get_key_value(bucket.as_str()).await {
                return Ok(store);
            }
            // The stream `create_key_value` would make, made directly:
            // async-nats 0.52's `create_key_value` first reads the
            // account's info, which it cannot parse from servers before
            // 2.10 (Debian's 2.9 among them).
            let config = jetstream::stream::Config {
                name: format!("KV_{bucket}"),
                description: Some("airssys component storage".to_owned()),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            };
            let created = match context.create_stream(config).await {
                Ok(_) => context.get_key_value(bucket.as_str()).await,
                Err(created) => Err(jetstream::context::KeyValueError::with_source(
                    jetstream::context::KeyValueErrorKind::GetBucket,
                    created,
                )),
            };
            match created {
                Ok(store) => Ok(store),
                // Another host may have created it meanwhile.
                Err(created) => context
                    .get_key_value(bucket.as_str())
                    .await
                    .map_err(|_| created.to_string()),
            }
        });
        let store = match opened {
            Some(Ok(store)) => store,
            Some(Err(reason)) => {
                return Err(StorageError::Backend(format!(
                    "cannot open or create the NATS key-value bucket `{}`: {reason} (the server \
                     must run JetStream: `nats-server -js`; or keep storage local with a redb \
                     file)",
                    self.bucket
                )));
            }
            None => {
                return Err(StorageError::Backend(format!(
                    "the NATS key-value bucket `{}` was not opened within {:?}: is JetStream \
                     enabled on the server (`nats-server -js`)?",
                    self.bucket, self.op_timeout
                )));
            }
        };
        let max_payload = client.server_info().max_payload;
        Ok(NatsKvStorage {
            kv: Arc::new(Kv {
                store,
                client,
                bucket: self.bucket,
                seen: Mutex::new(Seen::default()),
            }),
            handle,
            op_timeout: self.op_timeout,
            max_payload,
            _runtime: runtime,
        })
    }
}

/// A [`StorageBackend`] over a JetStream key-value bucket, shared by every
/// host on the same NATS server (or cluster): namespaces, quotas and
/// listing behave as with [`RedbStorage`](super::RedbStorage), the quota
/// holding across hosts. The module documentation describes the layout
/// and how usage is kept.
///
/// A value is one NATS message: a value (plus its headers) larger than
/// the server's `max_payload` (1 MiB unless the server configures more) is
/// refused with [`StorageError::InvalidInput`] naming the limit.
#[derive(Debug)]
pub struct NatsKvStorage {
    kv: Arc<Kv>,
    handle: Handle,
    op_timeout: Duration,
    max_payload: usize,
    /// Dropped last.
    _runtime: OwnedRuntime,
}

impl NatsKvStorage {
    /// A builder over an existing client, whose futures run on `handle`
    /// (the tokio runtime the client was made on).
    pub fn builder(client: async_nats::Client, handle: Handle) -> NatsKvStorageBuilder {
        NatsKvStorageBuilder {
            client: Some(client),
            url: None,
            handle: Some(handle),
            bucket: DEFAULT_KV_BUCKET.to_owned(),
            replicas: 1,
            op_timeout: Duration::from_secs(5),
        }
    }

    /// A builder connecting to `url` (`nats://host:port`) with a client and
    /// a small tokio runtime of its own.
    pub fn connect(url: impl Into<String>) -> NatsKvStorageBuilder {
        NatsKvStorageBuilder {
            client: None,
            url: Some(url.into()),
            handle: None,
            bucket: DEFAULT_KV_BUCKET.to_owned(),
            replicas: 1,
            op_timeout: Duration::from_secs(5),
        }
    }

    /// The KV bucket this storage uses.
    pub fn bucket(&self) -> &str {
        &self.kv.bucket
    }

    /// Runs `work` against the bucket, waiting at most the operation
    /// timeout and at most until `deadline`. Past the deadline the work is
    /// abandoned (a write may then have been stored or not, and the usage
    /// counter may stay charged for it: never lower than what is stored).
    fn run<T, F, Fut>(
        &self,
        what: &str,
        deadline: Option<Instant>,
        work: F,
    ) -> Result<T, StorageError>
    where
        F: FnOnce(Arc<Kv>) -> Fut,
        Fut: Future<Output = Result<T, StorageError>> + Send + 'static,
        T: Send + 'static,
    {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // Whichever ends first: the operation timeout or the deadline.
        let (within, by_deadline) = match left {
            Some(left) if left < self.op_timeout => (left, true),
            _ => (self.op_timeout, false),
        };
        let writes = what != "get" && what != "list-keys";
        bounded(&self.handle, within, work(Arc::clone(&self.kv))).unwrap_or_else(|| {
            if by_deadline {
                Err(StorageError::DeadlineReached {
                    waiting_for: format!(
                        "the NATS server (key-value bucket `{}`, {what}{})",
                        self.kv.bucket,
                        if writes {
                            "; the write may or may not have been stored"
                        } else {
                            ""
                        }
                    ),
                })
            } else {
                Err(StorageError::Backend(format!(
                    "NATS key-value bucket `{}`: {what} got no answer within {:?} (the storage's \
                     `op_timeout`): the server is slow or unreachable; try again later",
                    self.kv.bucket, self.op_timeout
                )))
            }
        })
    }

    /// Refuses a value the server would refuse as one message.
    fn check_size(&self, value: &[u8]) -> Result<(), StorageError> {
        // Room for the headers of a conditional write.
        let most = self.max_payload.saturating_sub(256);
        if value.len() > most {
            return Err(StorageError::InvalidInput(format!(
                "the value is {} bytes; the NATS key-value storage takes at most {most} bytes per \
                 value (the server's `max_payload` less room for headers): store it in smaller \
                 parts, or raise `max_payload` in the NATS server's configuration",
                value.len()
            )));
        }
        Ok(())
    }
}

/// The bucket and what this host remembers of it.
#[derive(Debug)]
struct Kv {
    store: kv::Store,
    client: async_nats::Client,
    bucket: String,
    seen: Mutex<Seen>,
}

/// Revisions this host saw last: facts about the past that a
/// compare-and-set checks, never trusted alone.
#[derive(Debug, Default)]
struct Seen {
    /// Per entry KV key: its revision and value length (`None`: deleted).
    entries: HashMap<String, (u64, Option<usize>)>,
    /// Per usage KV key: its revision and the bytes it said.
    usage: HashMap<String, (u64, u64)>,
}

/// A write of [`Kv::write`].
#[derive(Clone, Copy)]
enum Change<'a> {
    Put(&'a [u8]),
    Delete,
}

/// What the entry held when read: its revision (0: never written) and
/// value (`None`: absent or deleted).
struct Current {
    revision: u64,
    len: Option<usize>,
    value: Option<Bytes>,
}

fn token(part: &str) -> String {
    if part.is_empty() {
        "=".to_owned()
    } else {
        URL_SAFE_NO_PAD.encode(part)
    }
}

fn untoken(token: &str) -> Option<String> {
    if token == "=" {
        return Some(String::new());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    String::from_utf8(bytes).ok()
}

fn entry_key(namespace: &str, bucket: &str, key: &str) -> String {
    format!("e.{}.{}.{}", token(namespace), token(bucket), token(key))
}

fn usage_key(namespace: &str) -> String {
    format!("u.{}", token(namespace))
}

impl Kv {
    fn fail(&self, what: &str, error: impl std::fmt::Display) -> StorageError {
        StorageError::Backend(format!(
            "NATS key-value bucket `{}`: {what} failed: {error}",
            self.bucket
        ))
    }

    fn remember_entry(&self, key: &str, revision: u64, len: Option<usize>) {
        let mut seen = lock(&self.seen);
        if seen.entries.len() >= MAX_SEEN {
            seen.entries.clear();
        }
        seen.entries.insert(key.to_owned(), (revision, len));
    }

    fn forget_entry(&self, key: &str) {
        lock(&self.seen).entries.remove(key);
    }

    /// The entry under `key`, read from the server.
    async fn current(&self, key: &str) -> Result<Current, StorageError> {
        let entry = self
            .store
            .entry(key)
            .await
            .map_err(|e| self.fail("reading an entry", e))?;
        let current = match entry {
            None => Current {
                revision: 0,
                len: None,
                value: None,
            },
            Some(entry) if entry.operation == kv::Operation::Put => Current {
                revision: entry.revision,
                len: Some(entry.value.len()),
                value: Some(entry.value),
            },
            Some(entry) => Current {
                revision: entry.revision,
                len: None,
                value: None,
            },
        };
        self.remember_entry(key, current.revision, current.len);
        Ok(current)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.current(key).await?.value.map(|v| v.to_vec()))
    }

    /// The bytes charged to `namespace` and the counter's revision.
    async fn read_usage(&self, key: &str) -> Result<(u64, u64), StorageError> {
        let entry = self
            .store
            .entry(key)
            .await
            .map_err(|e| self.fail("reading a usage counter", e))?;
        let found = match entry {
            None => (0, 0),
            Some(entry) if entry.operation == kv::Operation::Put => {
                let used = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| {
                        StorageError::Backend(format!(
                            "NATS key-value bucket `{}`: the usage counter `{key}` (namespace \
                             `{}`) holds \"{}\", not a byte count: it was written by something \
                             else; delete it and run `airssys storage recount` to set it from the \
                             entries",
                            self.bucket,
                            key.strip_prefix("u.")
                                .and_then(untoken)
                                .as_deref()
                                .map_or_else(|| shown(key), shown),
                            shown(&String::from_utf8_lossy(&entry.value))
                        ))
                    })?;
                (entry.revision, used)
            }
            Some(entry) => (entry.revision, 0),
        };
        lock(&self.seen).usage.insert(key.to_owned(), found);
        Ok(found)
    }

    /// Changes `namespace`'s counter from an entry of `old_cost` to one of
    /// `new_cost` bytes, checking `quota` against the counter's current
    /// value (compare-and-set on its revision).
    async fn adjust(
        &self,
        namespace: &str,
        old_cost: u64,
        new_cost: u64,
        quota: Option<u64>,
    ) -> Result<(), StorageError> {
        let key = usage_key(namespace);
        let mut known = lock(&self.seen).usage.get(&key).copied();
        loop {
            let (from_memory, (revision, used)) = match known.take() {
                Some(seen) => (true, seen),
                None => (false, self.read_usage(&key).await?),
            };
            let after = match check_quota(namespace, used, old_cost, new_cost, quota) {
                Ok(after) => after,
                // Only a figure read now refuses a write.
                Err(_) if from_memory => continue,
                Err(refused) => return Err(refused),
            };
            let written = self
                .store
                .update(&key, Bytes::from(after.to_string()), revision)
                .await;
            match written {
                Ok(revision) => {
                    lock(&self.seen).usage.insert(key, (revision, after));
                    return Ok(());
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    lock(&self.seen).usage.remove(&key);
                }
                Err(e) => {
                    lock(&self.seen).usage.remove(&key);
                    return Err(self.fail("updating a usage counter", e));
                }
            }
        }
    }

    /// Applies `change` to the entry `(namespace, bucket, key)` when
    /// `expected` is `None` or equals its value (`Some(None)`: absent),
    /// keeping the namespace's counter in step; whether it applied, and
    /// whether an entry was there before.
    async fn write(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        change: Change<'_>,
        quota: Option<u64>,
        expected: Option<Option<&[u8]>>,
    ) -> Result<(bool, bool), StorageError> {
        let kv_key = entry_key(namespace, bucket, key);
        let cost = |len| entry_cost(namespace, bucket, key, len);
        // A revision seen earlier serves for a write that does not read
        // the value; a delete needs to know the entry is there.
        let mut known = match (expected, change) {
            (None, Change::Put(_)) => lock(&self.seen).entries.get(&kv_key).copied(),
            (None, Change::Delete) => lock(&self.seen)
                .entries
                .get(&kv_key)
                .copied()
                .filter(|(_, len)| len.is_some()),
            (Some(_), _) => None,
        };
        loop {
            let from_memory = known.is_some();
            let current = match known.take() {
                Some((revision, len)) => Current {
                    revision,
                    len,
                    value: None,
                },
                None => self.current(&kv_key).await?,
            };
            if let Some(expected) = expected
                && current.value.as_deref() != expected
            {
                return Ok((false, current.len.is_some()));
            }
            let existed = current.len.is_some();
            let old_cost = current.len.map_or(0, cost);
            let (new_cost, new_len) = match change {
                Change::Put(value) => (cost(value.len()), Some(value.len())),
                Change::Delete if !existed => return Ok((false, false)),
                Change::Delete => (0, None),
            };
            let grows = new_cost > old_cost;
            if grows {
                match self.adjust(namespace, old_cost, new_cost, quota).await {
                    Ok(()) => {}
                    // Only an entry read now refuses a write.
                    Err(StorageError::QuotaExceeded { .. }) if from_memory => continue,
                    Err(e) => return Err(e),
                }
            }
            let written = match change {
                Change::Put(value) => {
                    self.store
                        .update(&kv_key, Bytes::copy_from_slice(value), current.revision)
                        .await
                }
                Change::Delete => self
                    .store
                    .delete_expect_revision(&kv_key, Some(current.revision))
                    .await
                    .map(|()| 0),
            };
            match written {
                Ok(revision) => {
                    if revision == 0 {
                        self.forget_entry(&kv_key);
                    } else {
                        self.remember_entry(&kv_key, revision, new_len);
                    }
                    if new_cost < old_cost {
                        self.adjust(namespace, old_cost - new_cost, 0, None).await?;
                    }
                    return Ok((true, existed));
                }
                Err(e) => {
                    self.forget_entry(&kv_key);
                    let refused = e.kind() == kv::UpdateErrorKind::WrongLastRevision;
                    // Give the growth back when the server surely did not
                    // write; after a timeout it may have, and the counter
                    // stays high rather than low.
                    if grows && e.kind() != kv::UpdateErrorKind::TimedOut {
                        self.adjust(namespace, new_cost - old_cost, 0, None).await?;
                    }
                    if !refused {
                        return Err(self.fail("writing an entry", e));
                    }
                }
            }
        }
    }

    /// Every live key of `bucket` in `namespace`, sorted.
    async fn keys(&self, namespace: &str, bucket: &str) -> Result<Vec<String>, StorageError> {
        let filter = format!(
            "{}e.{}.{}.*",
            self.store.prefix,
            token(namespace),
            token(bucket)
        );
        let mut keys = Vec::new();
        self.scan(filter, "listing keys", None, |subject, _| {
            let name = subject
                .rsplit_once('.')
                .and_then(|(_, last)| untoken(last))
                .ok_or_else(|| self.not_an_entry(subject))?;
            keys.push(name);
            Ok(())
        })
        .await?;
        keys.sort_unstable();
        Ok(keys)
    }

    fn not_an_entry(&self, subject: &str) -> StorageError {
        StorageError::Backend(format!(
            "NATS key-value bucket `{}`: the KV key `{}` is not an airssys entry (each part is \
             one URL-safe base64 token of UTF-8 text; it was written by something else: delete \
             it, or keep other data in another bucket)",
            self.bucket,
            shown(subject)
        ))
    }

    /// Calls `each` with the subject (without the bucket's prefix) and
    /// value length of the last message of every live KV key on `filter`,
    /// as they come (one ordered consumer delivering headers only: no
    /// value is read, nothing is kept); stops at `each`'s first error.
    async fn scan(
        &self,
        filter: String,
        what: &str,
        until: Option<u64>,
        mut each: impl FnMut(&str, usize) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let deliver_subject = self.client.new_inbox();
        // Named, so that the create request's subject carries the filter
        // (`$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`) and a host's
        // NATS permissions can fence it to its namespaces.
        let name = format!(
            "airssys-keys-{}",
            deliver_subject.rsplit('.').next().unwrap_or_default()
        );
        let consumer = self
            .store
            .stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject,
                name: Some(name),
                description: Some("airssys list-keys".to_owned()),
                filter_subject: filter,
                headers_only: true,
                replay_policy: consumer::ReplayPolicy::Instant,
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| self.fail(what, e))?;
        if consumer.cached_info().num_pending == 0 {
            return Ok(());
        }
        let mut messages = consumer.messages().await.map_err(|e| self.fail(what, e))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| self.fail(what, e))?;
            let info = message.info().map_err(|e| self.fail(what, e))?;
            // Written after `until`: the keys as they were are all seen
            // (the consumer delivers in stream order).
            if until.is_some_and(|last| info.stream_sequence > last) {
                break;
            }
            let pending = info.pending;
            let headers = message.headers.as_ref();
            let deleted = headers.and_then(|h| h.get(KV_OPERATION)).is_some();
            if !deleted {
                // Headers only: the server says the value's length.
                let len = headers
                    .and_then(|h| h.get("Nats-Msg-Size"))
                    .and_then(|v| v.as_str().parse().ok())
                    .unwrap_or(message.payload.len());
                let subject = message
                    .subject
                    .strip_prefix(self.store.prefix.as_str())
                    .unwrap_or(message.subject.as_str());
                each(subject, len)?;
            }
            if pending == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Hands `each` the name of every namespace with a usage counter, in
    /// the order their counters were last written, as the server sends
    /// them (none kept here): counters as they were when the listing
    /// started, so one written meanwhile (a recount's own) is not listed
    /// again.
    async fn each_namespace(
        &self,
        mut each: impl FnMut(String) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        const WHAT: &str = "listing namespaces";
        let last = self
            .store
            .stream
            .get_info()
            .await
            .map_err(|e| self.fail(WHAT, e))?
            .state
            .last_sequence;
        let filter = format!("{}u.*", self.store.prefix);
        self.scan(filter, WHAT, Some(last), |subject, _| {
            let name = subject
                .strip_prefix("u.")
                .and_then(untoken)
                .ok_or_else(|| self.not_an_entry(subject))?;
            each(name)
        })
        .await
    }

    /// Sets `namespace`'s counter to the cost of its live entries, by
    /// compare-and-set (again when a write changed it meanwhile).
    async fn recount(&self, namespace: &str, progress: &Progress) -> Result<Recount, StorageError> {
        let key = usage_key(namespace);
        for _ in 0..RECOUNT_TRIES {
            let (revision, before) = self.read_usage(&key).await?;
            let filter = format!("{}e.{}.>", self.store.prefix, token(namespace));
            let mut after: u64 = 0;
            let mut entries: u64 = 0;
            self.scan(filter, "recounting", None, |subject, len| {
                let mut parts = subject.splitn(4, '.').skip(2);
                let (Some(bucket), Some(name)) = (
                    parts.next().and_then(untoken),
                    parts.next().and_then(untoken),
                ) else {
                    return Err(self.not_an_entry(subject));
                };
                after = after.saturating_add(entry_cost(namespace, &bucket, &name, len));
                entries += 1;
                if entries.is_multiple_of(RECOUNT_PROGRESS_EVERY) {
                    progress(RecountStep::Counting { namespace, entries });
                }
                Ok(())
            })
            .await?;
            if after == before {
                return Ok(Recount {
                    namespace: namespace.to_owned(),
                    before,
                    after,
                });
            }
            match self
                .store
                .update(&key, Bytes::from(after.to_string()), revision)
                .await
            {
                Ok(revision) => {
                    lock(&self.seen).usage.insert(key, (revision, after));
                    return Ok(Recount {
                        namespace: namespace.to_owned(),
                        before,
                        after,
                    });
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                Err(e) => return Err(self.fail("updating a usage counter", e)),
            }
        }
        Err(StorageError::Backend(format!(
            "NATS key-value bucket `{}`: the usage counter `{key}` of namespace `{}` changed \
             during each of {RECOUNT_TRIES} recounts: a host is writing that namespace; stop the \
             hosts running that component and run the recount again",
            self.bucket,
            shown(namespace)
        )))
    }
}

/// Recounts of one namespace before giving up when its counter keeps
/// changing (a host still writes it).
const RECOUNT_TRIES: usize = 5;

/// [`RecountStep::Counting`] is reported every this many entries.
pub const RECOUNT_PROGRESS_EVERY: u64 = 10_000;

/// Namespace names a recount of every namespace holds at most, listed
/// ahead of the one it recounts.
const RECOUNT_NAMES_AHEAD: usize = 256;

/// How a recount reports its progress.
type Progress = Arc<dyn Fn(RecountStep<'_>) + Send + Sync>;

/// Text from the bucket (written by components and other hosts) as it is
/// shown in a message: control characters and quotes escaped, at most 200
/// characters.
fn shown(text: &str) -> String {
    const MOST: usize = 200;
    let mut out: String = text
        .chars()
        .take(MOST)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MOST).is_some() {
        out.push_str(&format!("... ({} bytes in all)", text.len()));
    }
    out
}

/// What [`NatsKvStorage::recount_with`] reports as it goes.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RecountStep<'a> {
    /// `entries` entries of `namespace` counted so far (reported every
    /// [`RECOUNT_PROGRESS_EVERY`]).
    Counting {
        /// The namespace.
        namespace: &'a str,
        /// Entries counted so far.
        entries: u64,
    },
    /// One namespace recounted.
    Done(&'a Recount),
}

/// One namespace's usage counter before and after
/// [`NatsKvStorage::recount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recount {
    /// The namespace (a component's name).
    pub namespace: String,
    /// The bytes the counter said.
    pub before: u64,
    /// The cost of the namespace's entries, which the counter now says.
    pub after: u64,
}

impl NatsKvStorage {
    /// Recomputes the usage counter of `namespace` (every namespace with
    /// a counter when `None`) from its entries, by compare-and-set: the
    /// repair for a counter left high by a host that crashed between
    /// charging a growing write and writing the entry (see the module's
    /// "Quota across hosts"). Run it while no host writes those
    /// namespaces: a write between its charge and its entry, during the
    /// recount, would be left out of the count.
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`]: the server unreachable or refusing.
    pub fn recount(&self, namespace: Option<&str>) -> Result<Vec<Recount>, StorageError> {
        let done = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&done);
        self.recount_with(namespace, move |step| {
            if let RecountStep::Done(one) = step {
                lock(&into).push(one.clone());
            }
        })?;
        Ok(std::mem::take(&mut *lock(&done)))
    }

    /// [`NatsKvStorage::recount`], reporting each namespace as it is done
    /// and, every [`RECOUNT_PROGRESS_EVERY`] entries, how far the count
    /// of a namespace got; returns how many namespaces it recounted.
    /// Entries are counted as the server sends their names and lengths
    /// (no value is read, none is kept); namespaces likewise, each
    /// recounted as its name comes (at most 256 names held), in the order their counters were last written. Each
    /// namespace must be recounted within the
    /// [`op_timeout`](NatsKvStorageBuilder::op_timeout). `namespace` is
    /// one name, never a pattern: `.`, `*` or `>` in it are part of the
    /// name.
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`]: the server unreachable or refusing; a
    /// KV key or counter that airssys did not write (named); a counter
    /// that kept changing during 5 recounts (a host still
    /// writes the namespace).
    pub fn recount_with(
        &self,
        namespace: Option<&str>,
        progress: impl Fn(RecountStep<'_>) + Send + Sync + 'static,
    ) -> Result<usize, StorageError> {
        let progress: Progress = Arc::new(progress);
        let recount = |namespace: String| {
            let counting = Arc::clone(&progress);
            let one = self.run("recount", None, move |kv| async move {
                kv.recount(&namespace, &counting).await
            })?;
            progress(RecountStep::Done(&one));
            Ok::<_, StorageError>(())
        };
        if let Some(one) = namespace {
            recount(one.to_owned())?;
            return Ok(1);
        }
        // The names come from a listing on a thread of its own, a few
        // ahead of the recount (a bounded channel), never all at once.
        let (names, listed) = std::sync::mpsc::sync_channel(RECOUNT_NAMES_AHEAD);
        let kv = Arc::clone(&self.kv);
        let lister = std::thread::Builder::new()
            .name("airssys-recount-names".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| kv.fail("listing namespaces", e))?;
                runtime.block_on(kv.each_namespace(|name| {
                    // The recount stopped: so does the listing.
                    names
                        .send(name)
                        .map_err(|_| StorageError::Backend("the recount stopped".to_owned()))
                }))
            })
            .map_err(|e| StorageError::Backend(format!("could not list the namespaces: {e}")))?;
        let mut recounted = 0;
        loop {
            match listed.recv_timeout(self.op_timeout) {
                Ok(name) => {
                    recount(name)?;
                    recounted += 1;
                }
                // Listed them all, or failed: the listing says which.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(StorageError::Backend(format!(
                        "NATS key-value bucket `{}`: listing namespaces got no answer within \
                         {:?} (the storage's `op_timeout`): the server is slow or unreachable; \
                         try again later",
                        self.kv.bucket, self.op_timeout
                    )));
                }
            }
        }
        lister
            .join()
            .map_err(|_| StorageError::Backend("listing the namespaces failed".to_owned()))??;
        Ok(recounted)
    }
}

/// Each wait ends at the operation timeout or at the call's deadline,
/// whichever comes first.
impl StorageBackend for NatsKvStorage {
    fn get(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.get_by(namespace, bucket, key, None)
    }

    fn get_by(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let key = entry_key(namespace, bucket, key);
        self.run("get", deadline, move |kv| async move { kv.get(&key).await })
    }

    fn set(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<(), StorageError> {
        self.set_by(namespace, bucket, key, value, quota, None)
    }

    fn set_by(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        value: &[u8],
        quota: Option<u64>,
        deadline: Option<Instant>,
    ) -> Result<(), StorageError> {
        self.check_size(value)?;
        let (namespace, bucket, key) = (namespace.to_owned(), bucket.to_owned(), key.to_owned());
        let value = value.to_vec();
        self.run("set", deadline, move |kv| async move {
            kv.write(&namespace, &bucket, &key, Change::Put(&value), quota, None)
                .await
                .map(|_| ())
        })
    }

    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> Result<bool, StorageError> {
        self.delete_by(namespace, bucket, key, None)
    }

    fn delete_by(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<bool, StorageError> {
        let (namespace, bucket, key) = (namespace.to_owned(), bucket.to_owned(), key.to_owned());
        self.run("delete", deadline, move |kv| async move {
            kv.write(&namespace, &bucket, &key, Change::Delete, None, None)
                .await
                .map(|(_, existed)| existed)
        })
    }

    fn list_keys(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        self.list_keys_by(namespace, bucket, after, limit, None)
    }

    fn list_keys_by(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
        deadline: Option<Instant>,
    ) -> Result<Vec<String>, StorageError> {
        let (namespace, bucket) = (namespace.to_owned(), bucket.to_owned());
        let after = after.map(str::to_owned);
        self.run("list-keys", deadline, move |kv| async move {
            let keys = kv.keys(&namespace, &bucket).await?;
            let start = match &after {
                Some(after) => keys.partition_point(|k| k.as_str() <= after.as_str()),
                None => 0,
            };
            Ok(keys.into_iter().skip(start).take(limit).collect())
        })
    }

    fn usage(&self, namespace: &str) -> Result<u64, StorageError> {
        let key = usage_key(namespace);
        self.run("usage", None, move |kv| async move {
            kv.read_usage(&key).await.map(|(_, used)| used)
        })
    }

    fn compare_and_set(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<bool, StorageError> {
        self.check_size(value)?;
        let (namespace, bucket, key) = (namespace.to_owned(), bucket.to_owned(), key.to_owned());
        let expected = expected.map(<[u8]>::to_vec);
        let value = value.to_vec();
        self.run("compare-and-set", None, move |kv| async move {
            kv.write(
                &namespace,
                &bucket,
                &key,
                Change::Put(&value),
                quota,
                Some(expected.as_deref()),
            )
            .await
            .map(|(applied, _)| applied)
        })
    }
}

#[cfg(test)]
#[path = "../../tests/support/jetstream.rs"]
mod jetstream_server;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `nats-server -js` of this test: the workspace's one starter.
    pub(crate) use super::jetstream_server::JetStreamServer;

    /// The suite every backend passes, against a real JetStream bucket.
    #[test]
    fn conforms_to_the_suite_every_backend_passes() {
        let server = JetStreamServer::start();
        let storage = NatsKvStorage::connect(server.url()).open().expect("opens");
        super::super::tests::conformance(&storage);
        super::super::tests::compare_and_set_conformance(&storage);
        super::super::tests::names_stay_apart(&storage);
        // A second host (its own connection, nothing remembered) sees the
        // same entries and usage.
        let other = NatsKvStorage::connect(server.url()).open().expect("opens");
        assert_eq!(
            other.get("a", "b", "k2").expect("get").as_deref(),
            Some(&b"v2"[..])
        );
        assert_eq!(
            other.usage("a").expect("usage"),
            entry_cost("a", "b", "k2", 2) + entry_cost("a", "c", "k", 12)
        );
        assert_eq!(other.list_keys("a", "b", None, 10).expect("list"), ["k2"]);
    }

    /// What one host remembers goes stale when another writes: the quota
    /// still holds, and nothing is refused or lost for it.
    #[test]
    fn stale_revisions_of_one_host_are_caught_by_the_other() {
        let server = JetStreamServer::start();
        let a = NatsKvStorage::connect(server.url()).open().expect("opens");
        let b = NatsKvStorage::connect(server.url()).open().expect("opens");
        let quota = Some(entry_cost("n", "b", "k", 10) + entry_cost("n", "b", "j", 10));
        a.set("n", "b", "k", &[1; 10], quota).expect("a sets");
        // b replaces it with a smaller value, then fills the rest.
        b.set("n", "b", "k", &[2; 1], quota).expect("b shrinks");
        b.set("n", "b", "j", &[2; 19], quota).expect("b fills");
        // a remembers k at 10 bytes; growing it to 10 again must be
        // refused now (the room is b's), growing to 1 passes.
        let err = a.set("n", "b", "k", &[1; 10], quota).expect_err("full");
        assert!(matches!(err, StorageError::QuotaExceeded { .. }), "{err}");
        a.set("n", "b", "k", &[3; 1], quota).expect("same size");
        assert!(a.delete("n", "b", "j").expect("delete"));
        assert!(!b.delete("n", "b", "j").expect("already gone"));
        assert_eq!(
            b.get("n", "b", "k").expect("get").as_deref(),
            Some(&[3u8][..])
        );
        assert_eq!(b.usage("n").expect("usage"), entry_cost("n", "b", "k", 1));
    }

    /// Against a server that answers nothing (SIGSTOP), each wait ends at
    /// the deadline when it comes first (`DeadlineReached`), at the
    /// `op_timeout` otherwise (`Backend` naming it).
    /// An `op_timeout` longer than async-nats's own 5 s request timeout
    /// takes effect: the wait on a server that answers nothing (SIGSTOP)
    /// ends at the `op_timeout`, with the error naming it, not at the
    /// client's 5 s with the client's words.
    #[test]
    fn an_op_timeout_longer_than_the_clients_default_takes_effect() {
        let server = JetStreamServer::start();
        let storage = NatsKvStorage::connect(server.url())
            .op_timeout(Duration::from_secs(7))
            .open()
            .expect("opens");
        storage.set("n", "b", "k", b"v", None).expect("set");
        let paused = server.pause();
        let started = Instant::now();
        let outcome = storage.get("n", "b", "k");
        let took = started.elapsed();
        drop(paused);
        match outcome {
            Err(StorageError::Backend(message)) => {
                assert!(message.contains("op_timeout"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(took >= Duration::from_secs(6), "{took:?}");
    }

    #[test]
    fn a_wait_ends_at_the_deadline_or_the_op_timeout_whichever_first() {
        let server = JetStreamServer::start();
        let storage = NatsKvStorage::connect(server.url())
            .op_timeout(Duration::from_millis(400))
            .open()
            .expect("opens");
        storage.set("n", "b", "k", b"v", None).expect("set");
        let paused = server.pause();
        let soon = || Some(Instant::now() + Duration::from_millis(100));
        let outcomes = [
            ("get", storage.get_by("n", "b", "k", soon()).map(|_| ())),
            ("set", storage.set_by("n", "b", "k", b"w", None, soon())),
            (
                "delete",
                storage.delete_by("n", "b", "k", soon()).map(|_| ()),
            ),
            (
                "list-keys",
                storage.list_keys_by("n", "b", None, 10, soon()).map(|_| ()),
            ),
        ];
        // The deadline later than the `op_timeout`: the `op_timeout` ends it.
        let later = Some(Instant::now() + Duration::from_secs(60));
        let started = Instant::now();
        let by_timeout = storage.get_by("n", "b", "k", later);
        let took = started.elapsed();
        drop(paused);
        for (what, outcome) in outcomes {
            match outcome {
                Err(StorageError::DeadlineReached { waiting_for }) => {
                    assert!(waiting_for.contains("NATS server"), "{what}: {waiting_for}");
                    assert!(waiting_for.contains(what), "{what}: {waiting_for}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        match by_timeout {
            Err(StorageError::Backend(message)) => {
                assert!(message.contains("op_timeout"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(took < Duration::from_secs(5), "{took:?}");
        // The server answers again once resumed.
        assert!(storage.get("n", "b", "k").is_ok());
    }

    /// A host that crashed between charging a growing write and writing
    /// the entry (the charge made, the entry never written) leaves the
    /// counter high; the recount sets it to the cost of the entries,
    /// and a namespace with a counter and no entries to 0.
    #[test]
    fn a_recount_repairs_a_counter_left_high_by_a_crash_between_charge_and_write() {
        let server = JetStreamServer::start();
        let a = NatsKvStorage::connect(server.url()).open().expect("opens");
        a.set("n", "b", "k", &[1; 10], None).expect("set");
        a.set("n", "c", "", &[1; 3], None).expect("set");
        a.set("n", "b", "gone", &[1; 3], None).expect("set");
        assert!(a.delete("n", "b", "gone").expect("delete"));
        let real = entry_cost("n", "b", "k", 10) + entry_cost("n", "c", "", 3);
        assert_eq!(a.usage("n").expect("usage"), real);
        // The charge of a write of 500 bytes, then the crash.
        let charge = |namespace: &'static str| {
            a.run("charge", None, move |kv| async move {
                kv.adjust(namespace, 0, 500, None).await
            })
            .expect("charged");
        };
        charge("n");
        charge("empty");
        assert_eq!(a.usage("n").expect("usage"), real + 500);

        let one = a.recount(Some("n")).expect("recount");
        assert_eq!(
            one,
            [Recount {
                namespace: "n".to_owned(),
                before: real + 500,
                after: real
            }]
        );
        // Another host sees the repaired counter, and writes go on from it.
        let b = NatsKvStorage::connect(server.url()).open().expect("opens");
        assert_eq!(b.usage("n").expect("usage"), real);
        let full = real + entry_cost("n", "b", "j", 1);
        b.set("n", "b", "j", &[1], Some(full))
            .expect("fits exactly");

        let all = a.recount(None).expect("recount");
        assert_eq!(
            all,
            [
                Recount {
                    namespace: "empty".to_owned(),
                    before: 500,
                    after: 0
                },
                Recount {
                    namespace: "n".to_owned(),
                    before: full,
                    after: full
                },
            ]
        );
        assert_eq!(a.usage("empty").expect("usage"), 0);
    }

    /// Puts `value` under the raw KV key `key`, as another program
    /// sharing the bucket could.
    fn put_raw(storage: &NatsKvStorage, key: String, value: Vec<u8>) {
        storage
            .run("raw", None, move |kv| async move {
                kv.store
                    .put(key, value.into())
                    .await
                    .map_err(|e| kv.fail("raw put", e))
            })
            .expect("raw put");
    }

    /// Contents the recount did not write: a component name holding `.`,
    /// `*` or `>` is one namespace, never a pattern; a KV key airssys
    /// did not write and a counter that is not a number (huge, with
    /// control characters) fail by name, quoted short and escaped.
    #[test]
    fn a_recount_of_hostile_contents_names_the_key_and_stays_in_its_namespace() {
        let server = JetStreamServer::start();
        let a = NatsKvStorage::connect(server.url()).open().expect("opens");
        a.set("a", "b", "k", &[1; 10], None).expect("set");
        let real = a.usage("a").expect("usage");
        a.run("charge", None, |kv| async move {
            kv.adjust("a", 0, 500, None).await
        })
        .expect("charged");
        for name in ["a.>", "*", ">", "a.*", "nobody"] {
            let one = a.recount(Some(name)).expect("recount");
            assert_eq!(
                one,
                [Recount {
                    namespace: name.to_owned(),
                    before: 0,
                    after: 0
                }]
            );
            assert_eq!(
                a.usage("a").expect("usage"),
                real + 500,
                "{name} left `a` alone"
            );
        }

        put_raw(&a, format!("e.{}.a/b.x", token("odd")), b"v".to_vec());
        let err = a
            .recount(Some("odd"))
            .expect_err("not an airssys entry")
            .to_string();
        assert!(
            err.contains(".a/b.x") && err.contains("not an airssys entry"),
            "{err}"
        );

        let mut junk = b"\x1b[2J\n".to_vec();
        junk.extend(std::iter::repeat_n(b'9', 100_000));
        put_raw(&a, usage_key("bad"), junk);
        let err = a
            .recount(Some("bad"))
            .expect_err("not a number")
            .to_string();
        assert!(
            err.contains(&usage_key("bad")) && err.contains("namespace `bad`"),
            "{err}"
        );
        assert!(err.len() < 1_000, "quoted short: {} bytes", err.len());
        assert!(
            !err.contains('\x1b') && !err.contains('\n'),
            "escaped: {err}"
        );
        put_raw(&a, usage_key("bad"), b"99999999999999999999999".to_vec());
        assert!(a.recount(Some("bad")).is_err(), "past u64: not a count");
        put_raw(&a, usage_key("bad"), u64::MAX.to_string().into_bytes());
        let one = a
            .recount(Some("bad"))
            .expect("a counter at u64::MAX is repaired");
        assert_eq!((one[0].before, one[0].after), (u64::MAX, 0));
        // A name decoding to control characters comes back as it is; the
        // CLI escapes it when printing.
        put_raw(&a, usage_key("\x1b]0;x\x07"), b"7".to_vec());
        put_raw(&a, usage_key("bad"), b"0".to_vec());
        let all = a
            .recount(None)
            .expect("recount")
            .into_iter()
            .map(|r| r.namespace);
        assert!(all.collect::<Vec<_>>().contains(&"\x1b]0;x\x07".to_owned()));
    }

    /// Puts `count` one-byte entries into `namespace` at once.
    fn fill(storage: &NatsKvStorage, namespace: &'static str, count: u64) {
        storage
            .run("fill", None, move |kv| async move {
                for chunk in 0..count.div_ceil(1000) {
                    let puts = (chunk * 1000..((chunk + 1) * 1000).min(count)).map(|i| {
                        kv.store.put(
                            entry_key(namespace, "b", &i.to_string()),
                            Bytes::from_static(b"v"),
                        )
                    });
                    futures_util::future::try_join_all(puts)
                        .await
                        .map_err(|e| kv.fail("fill", e))?;
                }
                Ok(())
            })
            .expect("filled");
    }

    /// A counter that changes during every recount (a host still writes
    /// the namespace: here, whenever the count reports progress) makes
    /// the recount give up after a few tries, naming the namespace,
    /// instead of retrying until it wins and overwriting a live counter.
    #[test]
    fn a_recount_racing_a_writer_gives_up_naming_the_namespace() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let server = JetStreamServer::start();
        let a = NatsKvStorage::connect(server.url())
            .op_timeout(Duration::from_secs(60))
            .open()
            .expect("opens");
        fill(&a, "busy", RECOUNT_PROGRESS_EVERY);
        let writer = Arc::new(NatsKvStorage::connect(server.url()).open().expect("opens"));
        let writes = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&writes);
        let outcome = a.recount_with(Some("busy"), move |step| {
            if let RecountStep::Counting { .. } = step {
                let n = counted.fetch_add(1, Ordering::Relaxed);
                let writer = Arc::clone(&writer);
                std::thread::spawn(move || {
                    put_raw(
                        &writer,
                        usage_key("busy"),
                        (1_000_000 + n).to_string().into_bytes(),
                    );
                })
                .join()
                .expect("writer");
            }
        });
        let err = outcome.expect_err("never settles").to_string();
        assert!(
            err.contains("namespace `busy`") && err.contains("changed during each of"),
            "{err}"
        );
        assert_eq!(writes.load(Ordering::Relaxed), RECOUNT_TRIES as u64);
    }

    /// Charges `namespace`'s counter 500 bytes it never wrote (a crash
    /// between charge and write).
    fn charge_without_write(storage: &NatsKvStorage, namespace: String) {
        storage
            .run("charge", None, move |kv| async move {
                kv.adjust(&namespace, 0, 500, None).await
            })
            .expect("charged");
    }

    /// A recount of every namespace takes their names as the server lists
    /// them, more than it holds at once (`RECOUNT_NAMES_AHEAD`): each
    /// is recounted exactly once, although recounting rewrites the very
    /// counters being listed.
    #[test]
    fn a_recount_of_more_namespaces_than_it_holds_recounts_each_once() {
        let server = JetStreamServer::start();
        let a = NatsKvStorage::connect(server.url()).open().expect("opens");
        let count = 2 * RECOUNT_NAMES_AHEAD + 100;
        for n in 0..count {
            charge_without_write(&a, format!("ns-{n}"));
        }
        let all = a.recount(None).expect("recount");
        assert_eq!(all.len(), count, "each once");
        let mut names: Vec<&str> = all.iter().map(|r| r.namespace.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "no namespace twice");
        assert!(
            all.iter().all(|r| (r.before, r.after) == (500, 0)),
            "{all:?}"
        );
        assert_eq!(a.usage("ns-0").expect("usage"), 0);
        // Nothing left to repair.
        let again = a.recount(None).expect("recount");
        assert!(again.iter().all(|r| (r.before, r.after) == (0, 0)));
    }

    /// Namespaces are recounted as their names come, not after all are
    /// listed: a counter key airssys did not write, listed last, stops
    /// the recount naming it, after the namespaces listed before it were
    /// repaired. (Listed all first, they were left high.)
    #[test]
    fn a_recount_repairs_the_namespaces_listed_before_a_key_it_cannot_read() {
        let server = JetStreamServer::start();
        let a = NatsKvStorage::connect(server.url()).open().expect("opens");
        for n in 0..3 {
            charge_without_write(&a, format!("ns-{n}"));
        }
        put_raw(&a, "u.=x".to_owned(), b"7".to_vec());
        let err = a
            .recount(None)
            .expect_err("not an airssys counter")
            .to_string();
        assert!(
            err.contains("`u.=x`") && err.contains("not an airssys entry"),
            "{err}"
        );
        for n in 0..3 {
            assert_eq!(a.usage(&format!("ns-{n}")).expect("usage"), 0, "ns-{n}");
        }
    }

    /// A namespace of many entries is counted as the names come, with
    /// progress reported every `RECOUNT_PROGRESS_EVERY` entries.
    #[test]
    fn a_long_recount_reports_its_progress() {
        let server = JetStreamServer::start();
        let a = NatsKvStorage::connect(server.url())
            .op_timeout(Duration::from_secs(120))
            .open()
            .expect("opens");
        let many = 2 * RECOUNT_PROGRESS_EVERY + 1;
        fill(&a, "many", many);
        let steps = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&steps);
        let done = a
            .recount_with(Some("many"), move |step| {
                lock(&into).push(match step {
                    RecountStep::Counting { entries, .. } => format!("counting {entries}"),
                    RecountStep::Done(one) => format!("done {}", one.after > 0),
                });
            })
            .expect("recount");
        assert_eq!(done, 1);
        assert_eq!(
            *lock(&steps),
            [
                format!("counting {RECOUNT_PROGRESS_EVERY}"),
                format!("counting {}", 2 * RECOUNT_PROGRESS_EVERY),
                "done true".to_owned()
            ]
        );
    }

    #[test]
    fn a_value_larger_than_the_servers_max_payload_is_refused_by_name() {
        let server = JetStreamServer::start();
        let storage = NatsKvStorage::connect(server.url()).open().expect("opens");
        let big = vec![0; storage.max_payload + 1];
        let err = storage.set("n", "b", "k", &big, None).expect_err("too big");
        assert!(err.to_string().contains("max_payload"), "{err}");
        assert_eq!(storage.get("n", "b", "k").expect("get"), None);
        assert_eq!(storage.usage("n").expect("usage"), 0);
    }

    #[test]
    fn a_server_without_jetstream_is_named() {
        let server = JetStreamServer::start_without_jetstream();
        let err = NatsKvStorage::connect(server.url())
            .op_timeout(Duration::from_secs(3))
            .open()
            .expect_err("no JetStream");
        assert!(err.to_string().contains("-js"), "{err}");
    }

    #[test]
    fn tokens_are_reversible_single_kv_tokens() {
        let long = "k\u{e9}".repeat(400);
        for part in [
            "",
            "a",
            "a/b",
            "a.b",
            "=",
            "_x-",
            "\u{1f600}",
            long.as_str(),
        ] {
            let t = token(part);
            assert!(!t.is_empty() && !t.contains('.'), "{t}");
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)),
                "{t}"
            );
            assert_eq!(untoken(&t).as_deref(), Some(part));
        }
        assert!(token(&"x".repeat(1024)).len() <= 1366);
        assert_ne!(entry_key("a", "bc", "k"), entry_key("ab", "c", "k"));
    }
}
