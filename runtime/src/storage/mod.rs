//! Key-value storage behind the `airssys:core/storage` interface.
//!
//! Every component gets its own namespace (its manifest name), so two
//! components opening a bucket of the same name never see each other's
//! keys. Backends implement [`StorageBackend`]; [`RedbStorage`] (an embedded
//! redb file, durable commits) is the default and [`MemoryStorage`] serves
//! tests.
//!
//! # What the quota counts
//!
//! A component's storage quota (`limits.storage_bytes`) is charged, per
//! stored entry, what the entry makes the backend store: its namespace,
//! bucket, key and value bytes plus a fixed [`ENTRY_OVERHEAD`] for the
//! backend's own bookkeeping of the entry (see [`entry_cost`]). A million
//! empty values under one-byte keys therefore cost what they occupy, not
//! one byte each.

mod group_commit;
mod memory;
#[cfg(feature = "nats")]
mod nats_kv;
mod redb;

use std::time::Instant;

pub use self::memory::MemoryStorage;
#[cfg(feature = "nats")]
pub use self::nats_kv::{
    DEFAULT_KV_BUCKET, NatsKvStorage, NatsKvStorageBuilder, RECOUNT_PROGRESS_EVERY, Recount,
    RecountStep,
};
pub use self::redb::RedbStorage;

/// The largest key or bucket name accepted, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Bytes charged for each stored entry on top of its namespace, bucket,
/// key and value bytes.
///
/// Chosen from redb's real cost per entry (redb 4.6, 4 KiB pages): the
/// flat key's two 4-byte length prefixes and the leaf's two 4-byte
/// offsets are 16 bytes exactly, and the share of branch pages and of the
/// free space a B-tree leaves in its pages added 18–58 bytes per small
/// entry in measurements (sequential and random insertion, one commit per
/// write and bulk). 64 covers them; the free space of pages holding large
/// values, which grows with the value, is not charged (see
/// `docs/decisions/containment-storage.md`).
pub const ENTRY_OVERHEAD: u64 = 64;

/// A storage backend. Implementations must be safe to share between threads;
/// a successful [`set`](StorageBackend::set) or
/// [`delete`](StorageBackend::delete) is committed (for persistent backends,
/// it survives a crash of the host).
///
/// # Deadlines
///
/// A component's host call reaches the backend through the `*_by`
/// methods ([`get_by`](StorageBackend::get_by),
/// [`set_by`](StorageBackend::set_by),
/// [`delete_by`](StorageBackend::delete_by),
/// [`list_keys_by`](StorageBackend::list_keys_by)), which carry the
/// deadline of the call (its `limits.cpu_time_ms`, counted from the start
/// of the call into the component). A backend that waits for something
/// outside the calling thread (a server, another writer's commit) must
/// end that wait by the deadline and return
/// [`StorageError::DeadlineReached`]; the host turns it into the WIT's
/// `other` error naming the time limit, and the call then ends as its
/// time limit does. The defaults call the plain methods, which is right
/// for a backend whose operations never wait on anything but its own
/// work ([`MemoryStorage`]); a backend that waits implements the `*_by`
/// methods and has the plain ones call them with `None` (no deadline).
pub trait StorageBackend: Send + Sync + 'static {
    /// The value under `key` of `bucket` in `namespace`.
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`] when the backend fails.
    fn get(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StorageError>;

    /// Stores `value`, failing with [`StorageError::QuotaExceeded`] when the
    /// namespace would then use more than `quota` bytes (each entry charged
    /// [`entry_cost`]). A write that does not grow the namespace's usage is
    /// never refused, so a namespace over its quota (a quota lowered, or
    /// the charge changed since the data was written) can still shrink.
    ///
    /// # Errors
    ///
    /// [`StorageError::QuotaExceeded`], or [`StorageError::Backend`].
    fn set(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<(), StorageError>;

    /// Removes `key`; whether it was present.
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`] when the backend fails.
    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> Result<bool, StorageError>;

    /// Up to `limit` keys of `bucket` greater than `after`, in ascending
    /// byte order.
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`] when the backend fails.
    fn list_keys(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StorageError>;

    /// Bytes charged to `namespace`: the sum of [`entry_cost`] over its
    /// entries.
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`] when the backend fails.
    fn usage(&self, namespace: &str) -> Result<u64, StorageError>;

    /// Stores `value` only when the entry's value is `expected` (`None`:
    /// the entry is absent), as one step no other write comes between;
    /// whether it stored. The quota applies as for
    /// [`set`](StorageBackend::set).
    ///
    /// The default reads and writes under one lock of this process: atomic
    /// only against other defaulted `compare_and_set` calls in this
    /// process. A backend that other processes, or its own `set`, may
    /// write meanwhile must implement it ([`RedbStorage`],
    /// [`MemoryStorage`] and `NatsKvStorage` do).
    ///
    /// # Errors
    ///
    /// [`StorageError::QuotaExceeded`], or [`StorageError::Backend`].
    fn compare_and_set(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<bool, StorageError> {
        static LOCAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = crate::sync::lock(&LOCAL);
        if self.get(namespace, bucket, key)?.as_deref() != expected {
            return Ok(false);
        }
        self.set(namespace, bucket, key, value, quota)?;
        Ok(true)
    }

    /// [`get`](StorageBackend::get), waiting at most until `deadline`
    /// (see [Deadlines](StorageBackend#deadlines)). The default ignores
    /// the deadline.
    ///
    /// # Errors
    ///
    /// As [`get`](StorageBackend::get), or
    /// [`StorageError::DeadlineReached`].
    fn get_by(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let _ = deadline;
        self.get(namespace, bucket, key)
    }

    /// [`set`](StorageBackend::set), waiting at most until `deadline` (see
    /// [Deadlines](StorageBackend#deadlines)). A write that reached the
    /// deadline may or may not have been stored, as after any other
    /// backend error (the error says which when the backend knows). The
    /// default ignores the deadline.
    ///
    /// # Errors
    ///
    /// As [`set`](StorageBackend::set), or
    /// [`StorageError::DeadlineReached`].
    fn set_by(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        value: &[u8],
        quota: Option<u64>,
        deadline: Option<Instant>,
    ) -> Result<(), StorageError> {
        let _ = deadline;
        self.set(namespace, bucket, key, value, quota)
    }

    /// [`delete`](StorageBackend::delete), waiting at most until
    /// `deadline` (see [Deadlines](StorageBackend#deadlines)). The
    /// default ignores the deadline.
    ///
    /// # Errors
    ///
    /// As [`delete`](StorageBackend::delete), or
    /// [`StorageError::DeadlineReached`].
    fn delete_by(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<bool, StorageError> {
        let _ = deadline;
        self.delete(namespace, bucket, key)
    }

    /// [`list_keys`](StorageBackend::list_keys), waiting at most until
    /// `deadline` (see [Deadlines](StorageBackend#deadlines)). The
    /// default ignores the deadline.
    ///
    /// # Errors
    ///
    /// As [`list_keys`](StorageBackend::list_keys), or
    /// [`StorageError::DeadlineReached`].
    fn list_keys_by(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
        deadline: Option<Instant>,
    ) -> Result<Vec<String>, StorageError> {
        let _ = deadline;
        self.list_keys(namespace, bucket, after, limit)
    }

    /// Makes every write that returned durable, for a backend that
    /// defers it (called at a server's shutdown). The default does
    /// nothing: a backend whose writes are durable when they return.
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`] when the backend fails.
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// A storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The write would take the namespace over its quota.
    #[error(
        "storage quota exceeded: component `{namespace}` uses {used} bytes and this write needs \
         {needed} more; the limit is {limit} bytes (`limits.storage_bytes`; each entry is charged \
         its bucket, key and value bytes, the component name and {ENTRY_OVERHEAD} bytes of \
         overhead): delete entries, or raise `limits.storage_bytes` in the policy"
    )]
    QuotaExceeded {
        /// The component.
        namespace: String,
        /// The quota.
        limit: u64,
        /// Bytes in use before the write.
        used: u64,
        /// Additional bytes the write needs.
        needed: u64,
    },
    /// A bucket name or key is not acceptable.
    #[error("{0}")]
    InvalidInput(String),
    /// The backend failed (I/O, corruption, ...).
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The deadline given to a `*_by` method (the calling host call's time
    /// limit) passed while the backend waited for `waiting_for`.
    #[error("the call's deadline passed while waiting for {waiting_for}")]
    DeadlineReached {
        /// What the backend was waiting for, and whether a write may
        /// still have been stored (for example "the NATS server
        /// (key-value bucket `airssys`, set; the write may have been
        /// stored)").
        waiting_for: String,
    },
}

/// Bytes an entry of `value_len` bytes stored under `key` of `bucket` in
/// `namespace` is charged against the namespace's quota: every byte the
/// backend stores for it plus [`ENTRY_OVERHEAD`].
pub fn entry_cost(namespace: &str, bucket: &str, key: &str, value_len: usize) -> u64 {
    let stored = namespace.len() as u64 + bucket.len() as u64 + key.len() as u64;
    stored
        .saturating_add(value_len as u64)
        .saturating_add(ENTRY_OVERHEAD)
}

/// Checks that the namespace stays within `quota` when an entry of
/// `old_cost` bytes is replaced by one of `new_cost` bytes.
pub(crate) fn check_quota(
    namespace: &str,
    used: u64,
    old_cost: u64,
    new_cost: u64,
    quota: Option<u64>,
) -> Result<u64, StorageError> {
    let after = used.saturating_sub(old_cost).saturating_add(new_cost);
    match quota {
        Some(limit) if new_cost > old_cost && after > limit => Err(StorageError::QuotaExceeded {
            namespace: namespace.to_owned(),
            limit,
            used,
            needed: new_cost - old_cost,
        }),
        _ => Ok(after),
    }
}

/// Validates a bucket name or key: non-empty, at most [`MAX_KEY_LEN`]
/// bytes, no empty `/` segment, no NUL.
///
/// # Errors
///
/// [`StorageError::InvalidInput`] saying what is wrong.
pub fn validate_name(what: &str, name: &str) -> Result<(), StorageError> {
    let problem = if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.len() > MAX_KEY_LEN {
        Some(format!(
            "is {} bytes long; the limit is {MAX_KEY_LEN}",
            name.len()
        ))
    } else if name.split('/').any(str::is_empty) {
        Some("has an empty `/` segment".to_owned())
    } else if name.contains('\0') {
        Some("contains NUL".to_owned())
    } else {
        None
    };
    match problem {
        Some(p) => Err(StorageError::InvalidInput(format!(
            "the {what} `{}` {p}",
            name.escape_debug()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The behaviour every backend shares.
    pub(crate) fn conformance(backend: &dyn StorageBackend) {
        assert_eq!(backend.get("a", "b", "k").expect("get"), None);
        backend.set("a", "b", "k", b"v1", None).expect("set");
        backend.set("a", "b", "k2", b"v2", None).expect("set");
        backend
            .set("a", "c", "k", b"other bucket", None)
            .expect("set");
        backend
            .set("z", "b", "k", b"other namespace", None)
            .expect("set");
        assert_eq!(
            backend.get("a", "b", "k").expect("get").as_deref(),
            Some(&b"v1"[..])
        );
        assert_eq!(
            backend.list_keys("a", "b", None, 10).expect("list"),
            ["k", "k2"]
        );
        assert_eq!(
            backend.list_keys("a", "b", Some("k"), 10).expect("list"),
            ["k2"]
        );
        assert_eq!(backend.list_keys("a", "b", None, 1).expect("list"), ["k"]);
        // Each entry: namespace + bucket + key + value + the overhead.
        const O: u64 = ENTRY_OVERHEAD;
        assert_eq!(
            backend.usage("a").expect("usage"),
            (3 + 2 + O) + (4 + 2 + O) + (3 + 12 + O)
        );
        assert_eq!(backend.usage("z").expect("usage"), 3 + 15 + O);
        assert!(backend.delete("a", "b", "k").expect("delete"));
        assert!(!backend.delete("a", "b", "k").expect("delete"));
        assert_eq!(
            backend.usage("a").expect("usage"),
            (4 + 2 + O) + (3 + 12 + O)
        );
        // Quota: replacing with a smaller value always works; growing past
        // the limit fails and changes nothing. An entry `q/b/k` costs 3 + O
        // plus its value.
        let limit = 3 + O + 8;
        let err = backend
            .set("q", "b", "k", &[0; 10], Some(limit))
            .expect_err("quota");
        assert!(
            matches!(
                err,
                StorageError::QuotaExceeded {
                    limit: l,
                    used: 0,
                    needed,
                    ..
                } if l == limit && needed == 3 + O + 10
            ),
            "{err}"
        );
        assert!(err.to_string().contains("limits.storage_bytes"), "{err}");
        assert_eq!(backend.get("q", "b", "k").expect("get"), None);
        backend
            .set("q", "b", "k", &[0; 7], Some(limit))
            .expect("fits");
        // An empty value still costs its entry: no room for a second key.
        assert!(backend.set("q", "b", "k2", &[], Some(limit)).is_err());
        assert_eq!(backend.get("q", "b", "k2").expect("get"), None);
        backend
            .set("q", "b", "k", &[0; 1], Some(limit))
            .expect("shrinks");
        assert_eq!(backend.usage("q").expect("usage"), 3 + O + 1);
        // Over its quota (a quota lowered since), a namespace may still
        // shrink and delete, never grow.
        let tiny = Some(1);
        assert!(backend.set("q", "b", "k", &[0; 2], tiny).is_err());
        backend.set("q", "b", "k", &[], tiny).expect("shrinks");
        assert!(backend.delete("q", "b", "k").expect("delete"));
        assert_eq!(backend.usage("q").expect("usage"), 0);
    }

    /// Compare-and-set: stores only over the expected value (or
    /// absence), charges the quota as `set` does, and changes nothing
    /// when it does not store.
    pub(crate) fn compare_and_set_conformance(backend: &dyn StorageBackend) {
        let cas = |expected: Option<&[u8]>, value: &[u8], quota| {
            backend.compare_and_set("cas", "b", "k", expected, value, quota)
        };
        assert!(!cas(Some(b"x"), b"1", None).expect("cas"), "absent, not x");
        assert_eq!(backend.get("cas", "b", "k").expect("get"), None);
        assert!(cas(None, b"1", None).expect("cas"), "absent as expected");
        assert!(!cas(None, b"2", None).expect("cas"), "present now");
        assert!(!cas(Some(b"2"), b"3", None).expect("cas"));
        assert_eq!(
            backend.get("cas", "b", "k").expect("get").as_deref(),
            Some(&b"1"[..])
        );
        assert!(cas(Some(b"1"), b"22", None).expect("cas"));
        assert_eq!(
            backend.usage("cas").expect("usage"),
            entry_cost("cas", "b", "k", 2)
        );
        // Over the quota: refused, nothing changed; shrinking passes.
        let limit = Some(entry_cost("cas", "b", "k", 2));
        let err = cas(Some(b"22"), b"333", limit).expect_err("quota");
        assert!(matches!(err, StorageError::QuotaExceeded { .. }), "{err}");
        assert_eq!(
            backend.get("cas", "b", "k").expect("get").as_deref(),
            Some(&b"22"[..])
        );
        assert!(cas(Some(b"22"), b"", limit).expect("cas"));
        assert_eq!(
            backend.usage("cas").expect("usage"),
            entry_cost("cas", "b", "k", 0)
        );
        // An empty value is a value, not absence.
        assert!(!cas(None, b"x", None).expect("cas"));
        assert!(backend.delete("cas", "b", "k").expect("delete"));
        assert!(
            cas(None, b"again", None).expect("cas"),
            "absent after delete"
        );
        assert!(backend.delete("cas", "b", "k").expect("delete"));
        assert_eq!(backend.usage("cas").expect("usage"), 0);
    }

    /// Names that would run together when concatenated stay apart (empty
    /// ones included: the host never passes them, a backend keeps them
    /// apart all the same), a listing never leaves its bucket, any UTF-8
    /// (and `/`, `.`) in a key comes back as written, and long keys (past
    /// any inline buffer of a backend) behave as short ones.
    pub(crate) fn names_stay_apart(backend: &dyn StorageBackend) {
        let long = "k\u{e9}".repeat(MAX_KEY_LEN / 3);
        let cases = [
            ("n", "bc", "k"),
            ("nb", "c", "k"),
            ("n", "b", "ck"),
            ("n", "b", ""),
            ("n", "", "bk"),
            ("", "nb", "k"),
            ("n", "b", "c.k/\u{1f600} x"),
            ("n", "b", long.as_str()),
        ];
        for (i, (n, b, k)) in cases.iter().enumerate() {
            backend.set(n, b, k, &[i as u8], None).expect("set");
        }
        for (i, (n, b, k)) in cases.iter().enumerate() {
            assert_eq!(
                backend.get(n, b, k).expect("get").as_deref(),
                Some(&[i as u8][..]),
                "{n:?}/{b:?}/{k:?}"
            );
        }
        let in_b = ["", "c.k/\u{1f600} x", "ck", long.as_str()];
        assert_eq!(backend.list_keys("n", "b", None, 10).expect("list"), in_b);
        assert_eq!(
            backend.list_keys("n", "b", Some(""), 10).expect("list"),
            in_b[1..]
        );
        assert_eq!(
            backend.list_keys("n", "b", Some("c.k"), 10).expect("list"),
            in_b[1..]
        );
        assert_eq!(
            backend.list_keys("n", "b", Some("ck"), 1).expect("list"),
            [long.as_str()]
        );
        assert!(
            backend
                .list_keys("n", "b", Some(&long), 10)
                .expect("list")
                .is_empty()
        );
        assert_eq!(backend.list_keys("n", "bc", None, 10).expect("list"), ["k"]);
        assert_eq!(backend.list_keys("nb", "c", None, 10).expect("list"), ["k"]);
        assert_eq!(backend.list_keys("n", "", None, 10).expect("list"), ["bk"]);
        assert_eq!(backend.list_keys("", "nb", None, 10).expect("list"), ["k"]);
        let usage_of = |namespace: &str| -> u64 {
            cases
                .iter()
                .filter(|(n, ..)| *n == namespace)
                .map(|(n, b, k)| entry_cost(n, b, k, 1))
                .sum()
        };
        assert_eq!(backend.usage("n").expect("usage"), usage_of("n"));
        assert_eq!(backend.usage("").expect("usage"), usage_of(""));
        // Deleting the long key leaves its neighbours.
        assert!(backend.delete("n", "b", &long).expect("delete"));
        assert_eq!(backend.get("n", "b", &long).expect("get"), None);
        assert_eq!(
            backend.get("n", "b", "ck").expect("get").as_deref(),
            Some(&[2u8][..])
        );
        assert_eq!(
            backend.list_keys("n", "b", None, 10).expect("list"),
            in_b[..3]
        );
        // The longest names the host accepts, together (a component name
        // is at most 64 bytes).
        let (n, b, k) = (
            "n".repeat(64),
            "b".repeat(MAX_KEY_LEN),
            "k".repeat(MAX_KEY_LEN),
        );
        backend.set(&n, &b, &k, b"v", None).expect("longest names");
        assert_eq!(
            backend.get(&n, &b, &k).expect("get").as_deref(),
            Some(&b"v"[..])
        );
        assert_eq!(backend.list_keys(&n, &b, None, 10).expect("list"), [k]);
        // Pages of 3 over 10 keys walk every key once, in order.
        for i in 0..10 {
            backend
                .set("p", "b", &format!("key{i}"), b"v", None)
                .expect("set");
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = backend
                .list_keys("p", "b", after.as_deref(), 3)
                .expect("list");
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 3);
            after = page.last().cloned();
            seen.extend(page);
        }
        let all: Vec<String> = (0..10).map(|i| format!("key{i}")).collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn an_entry_is_charged_every_name_byte_and_the_overhead() {
        assert_eq!(entry_cost("", "", "", 0), ENTRY_OVERHEAD);
        assert_eq!(entry_cost("comp", "bucket", "key", 10), 4 + 6 + 3 + 10 + 64);
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("key", "a/b").is_ok());
        for bad in ["", "a//b", "/a", "a/", "a\0"] {
            assert!(validate_name("key", bad).is_err(), "{bad:?}");
        }
        assert!(validate_name("key", &"x".repeat(MAX_KEY_LEN + 1)).is_err());
    }
}
