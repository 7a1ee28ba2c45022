//! The default [`StorageBackend`]: one embedded redb file.
//!
//! Layout: one table, `kv`, whose keys are flat bytes: the namespace and
//! the bucket, each as a 4-byte big-endian length and its bytes, then the
//! key's bytes. Every entry of one bucket shares that prefix and the keys
//! sort in byte order within it, so listing a bucket is one range scan; the
//! lengths make the encoding unambiguous whatever the names hold. (A flat
//! key costs redb ~6% less per write than the `(namespace, bucket, key)`
//! tuple the earlier layout used.)
//!
//! The bytes each namespace uses are not stored: they are totalled from the
//! entries when the file is opened (one pass over every entry, each charged
//! [`entry_cost`]) and kept in step with each commit, so the quota is exact
//! after a crash by construction and a write touches one table only. A
//! file written when the quota counted keys and values only is therefore
//! charged the current way as soon as it is opened: nothing to convert.
//!
//! Writes go through a group commit (see `group_commit.rs`): concurrent
//! writes share one transaction and one commit, chosen round-robin per
//! namespace, so one component writing in a loop cannot starve another's
//! commit, and each write returns only once its transaction committed.
//!
//! Files of the earlier layouts are converted when opened, in one
//! transaction: the tuple-keyed `entries` table is copied into `kv` and
//! removed, and a `usage` table is removed.
//!
//! Reads share one read snapshot of the table until the next write commits:
//! opening a read transaction per `get` costs more than the lookup itself.
//! A write replaces the snapshot before it returns, so a read that starts
//! after a write finished always sees it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition};

use super::group_commit::GroupCommit;
use super::{StorageBackend, StorageError, check_quota, entry_cost};
use crate::sync::lock;

type Entries = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// The entries, by flat key (see the module docs).
const KV: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("kv");
/// The entries of the earlier layout, converted into [`KV`] on open.
const LEGACY_ENTRIES: TableDefinition<'_, (&str, &str, &str), &[u8]> =
    TableDefinition::new("entries");
/// The per-namespace usage table of an earlier layout, removed on open.
const LEGACY_USAGE: TableDefinition<'_, &str, u64> = TableDefinition::new("usage");

/// Flat keys up to this many bytes are built on the stack.
const INLINE_KEY: usize = 192;

/// Appends `part` with its 4-byte big-endian length.
fn push_part(out: &mut Vec<u8>, part: &str) {
    let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part.as_bytes());
}

/// The prefix every key of `bucket` in `namespace` starts with.
fn bucket_prefix(namespace: &str, bucket: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + namespace.len() + bucket.len());
    push_part(&mut out, namespace);
    push_part(&mut out, bucket);
    out
}

/// Calls `f` with the flat key of `(namespace, bucket, key)`, built on the
/// stack when short.
fn with_key<R>(namespace: &str, bucket: &str, key: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    let total = 8 + namespace.len() + bucket.len() + key.len();
    if total <= INLINE_KEY {
        let mut buf = [0u8; INLINE_KEY];
        let mut at = 0;
        for (i, part) in [namespace, bucket, key].into_iter().enumerate() {
            if i < 2 {
                // Each part is shorter than INLINE_KEY: the length fits.
                let len = part.len() as u32;
                buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
                at += 4;
            }
            buf[at..at + part.len()].copy_from_slice(part.as_bytes());
            at += part.len();
        }
        f(&buf[..at])
    } else {
        let mut out = bucket_prefix(namespace, bucket);
        out.extend_from_slice(key.as_bytes());
        f(&out)
    }
}

/// Splits one length-prefixed part off `bytes`.
fn split_part(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    let (part, rest) = rest.split_at_checked(len)?;
    Some((std::str::from_utf8(part).ok()?, rest))
}

/// The `(namespace, bucket, key)` of a flat key; `None` when the bytes are
/// not one (a damaged file).
fn decode_key(bytes: &[u8]) -> Option<(&str, &str, &str)> {
    let (namespace, rest) = split_part(bytes)?;
    let (bucket, key) = split_part(rest)?;
    Some((namespace, bucket, std::str::from_utf8(key).ok()?))
}

fn malformed_key(bytes: &[u8]) -> StorageError {
    StorageError::Backend(format!(
        "the storage file holds an entry whose key is not (namespace, bucket, key): {:?}",
        String::from_utf8_lossy(bytes)
    ))
}

/// Storage in a redb file. Writes are committed durably by default (a
/// write that returned survives a kill of the host); concurrent writes
/// share a commit, chosen round-robin per namespace, so one component
/// writing in a loop cannot starve another's commit.
pub struct RedbStorage {
    db: Database,
    durability: Durability,
    /// Bytes used per namespace. Changed only by the writer leading a
    /// group commit, after its commit, so a quota check always sees every
    /// earlier commit.
    usage: Mutex<HashMap<String, u64>>,
    /// Writes waiting for their commit; each answers whether an entry was
    /// there before it.
    writes: GroupCommit<Write, Result<bool, StorageError>>,
    /// The shared read snapshot.
    snapshot: Mutex<Snapshot>,
}

/// One queued write.
enum Write {
    Set {
        namespace: String,
        bucket: String,
        key: String,
        value: Vec<u8>,
        quota: Option<u64>,
        /// Only when the entry holds this (`Some(None)`: is absent); the
        /// write's answer is then whether it stored.
        expected: Option<Option<Vec<u8>>>,
    },
    Delete {
        namespace: String,
        bucket: String,
        key: String,
    },
}

/// The read snapshot readers share, and how many writes have committed
/// since the storage was opened (a reader only publishes a snapshot when
/// no write committed while it was being opened).
#[derive(Default)]
struct Snapshot {
    generation: u64,
    entries: Option<Arc<Entries>>,
}

impl std::fmt::Debug for RedbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStorage")
            .field("durable", &matches!(self.durability, Durability::Immediate))
            .finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(e.to_string())
}

impl RedbStorage {
    /// Opens (or creates) the database file at `path` with durable commits,
    /// and totals each namespace's usage from its entries.
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`] when the file cannot be opened or created
    /// (for example, another process holds it) or cannot be read.
    pub fn open(path: &Path) -> Result<RedbStorage, StorageError> {
        let db = Database::create(path)
            .map_err(|e| StorageError::Backend(format!("cannot open {}: {e}", path.display())))?;
        // Create the table so readers never meet a missing one; convert
        // the earlier layouts.
        let txn = db.begin_write().map_err(backend)?;
        {
            let mut kv = txn.open_table(KV).map_err(backend)?;
            let has_legacy = txn
                .list_tables()
                .map_err(backend)?
                .any(|t| redb::TableHandle::name(&t) == "entries");
            if has_legacy {
                let legacy = txn.open_table(LEGACY_ENTRIES).map_err(backend)?;
                for entry in legacy.iter().map_err(backend)? {
                    let (k, v) = entry.map_err(backend)?;
                    let (namespace, bucket, key) = k.value();
                    with_key(namespace, bucket, key, |flat| kv.insert(flat, v.value()))
                        .map_err(backend)?;
                }
            }
        }
        txn.delete_table(LEGACY_ENTRIES).map_err(backend)?;
        txn.delete_table(LEGACY_USAGE).map_err(backend)?;
        txn.commit().map_err(backend)?;
        let mut usage: HashMap<String, u64> = HashMap::new();
        {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(KV).map_err(backend)?;
            for entry in table.iter().map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                let (namespace, bucket, key) =
                    decode_key(k.value()).ok_or_else(|| malformed_key(k.value()))?;
                let cost = entry_cost(namespace, bucket, key, v.value().len());
                match usage.get_mut(namespace) {
                    Some(used) => *used = used.saturating_add(cost),
                    None => {
                        usage.insert(namespace.to_owned(), cost);
                    }
                }
            }
        }
        Ok(RedbStorage {
            db,
            durability: Durability::Immediate,
            usage: Mutex::new(usage),
            writes: GroupCommit::default(),
            snapshot: Mutex::new(Snapshot::default()),
        })
    }

    /// Whether each commit waits for the disk (`true`, the default) or
    /// only stays crash-consistent, rolling back to the last durable commit
    /// after a crash (`false`, about 20× faster).
    #[must_use]
    pub fn durable(mut self, durable: bool) -> Self {
        self.durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        self
    }

    /// The current read snapshot of the entries, opened when no reader
    /// has done so since the last write.
    fn entries(&self) -> Result<Arc<Entries>, StorageError> {
        let generation = {
            let snapshot = lock(&self.snapshot);
            if let Some(table) = &snapshot.entries {
                return Ok(Arc::clone(table));
            }
            snapshot.generation
        };
        let txn = self.db.begin_read().map_err(backend)?;
        let table = Arc::new(txn.open_table(KV).map_err(backend)?);
        let mut snapshot = lock(&self.snapshot);
        // A write that committed after `generation` was read may not be in
        // this snapshot: use it for this read only.
        if snapshot.generation == generation && snapshot.entries.is_none() {
            snapshot.entries = Some(Arc::clone(&table));
        }
        Ok(table)
    }

    /// Called after every commit attempt, before the write returns: later
    /// reads open a new snapshot.
    fn committed(&self) {
        let mut snapshot = lock(&self.snapshot);
        snapshot.generation = snapshot.generation.wrapping_add(1);
        snapshot.entries = None;
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction, StorageError> {
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(self.durability).map_err(backend)?;
        Ok(txn)
    }

    /// Bytes `namespace` uses: as changed by the batch being applied, or
    /// as last committed.
    fn used(&self, batch: &HashMap<String, u64>, namespace: &str) -> u64 {
        match batch.get(namespace) {
            Some(used) => *used,
            None => lock(&self.usage).get(namespace).copied().unwrap_or(0),
        }
    }

    /// Queues `write` and waits for the commit of the batch holding it;
    /// while queued, at most until `deadline`.
    fn write(
        &self,
        namespace: &str,
        bytes: usize,
        write: Write,
        deadline: Option<Instant>,
    ) -> Result<bool, StorageError> {
        self.writes.submit_by(
            namespace,
            bytes,
            write,
            |batch| self.commit_batch(batch),
            || {
                Err(StorageError::Backend(
                    "the write transaction holding this write failed unexpectedly; nothing of it \
                     was committed"
                        .to_owned(),
                ))
            },
            deadline,
            || {
                Err(StorageError::DeadlineReached {
                    waiting_for: "earlier writes to the redb file to commit (this write was not \
                                  stored)"
                        .to_owned(),
                })
            },
        )
    }

    /// Applies `batch` in one write transaction and commits it: one result
    /// per write, in order. A write over its quota is undone and refused
    /// alone; a failing transaction or commit fails every write of it.
    fn commit_batch(&self, batch: Vec<Write>) -> Vec<Result<bool, StorageError>> {
        let count = batch.len();
        match self.apply_and_commit(batch) {
            Ok(results) => results,
            Err(error) => (0..count).map(|_| Err(error.clone())).collect(),
        }
    }

    fn apply_and_commit(
        &self,
        batch: Vec<Write>,
    ) -> Result<Vec<Result<bool, StorageError>>, StorageError> {
        let txn = self.begin_write()?;
        // Usage after this batch, for the namespaces it changes.
        let mut usage: HashMap<String, u64> = HashMap::new();
        let mut results = Vec::with_capacity(batch.len());
        let mut changed = false;
        {
            let mut entries = txn.open_table(KV).map_err(backend)?;
            for write in &batch {
                let (namespace, result) = match write {
                    Write::Set {
                        namespace,
                        bucket,
                        key,
                        value,
                        quota,
                        expected,
                    } => {
                        let used = self.used(&usage, namespace);
                        if let Some(expected) = expected {
                            let current = with_key(namespace, bucket, key, |flat| {
                                entries.get(flat).map(|v| v.map(|v| v.value().to_vec()))
                            })
                            .map_err(backend)?;
                            if current != *expected {
                                results.push(Ok(false));
                                continue;
                            }
                        }
                        let cost = |len| entry_cost(namespace, bucket, key, len);
                        let mut replaced = expected.is_some();
                        let result = with_key(namespace, bucket, key, |flat| {
                            set_within_quota(&mut entries, flat, value, |old_len| {
                                // A conditional write answers whether it stored.
                                replaced |= old_len.is_some();
                                let old = old_len.map_or(0, cost);
                                check_quota(namespace, used, old, cost(value.len()), *quota)
                            })
                        })
                        .map_err(backend)?;
                        changed |= result.is_ok();
                        (namespace, result.map(|after| (after, replaced)))
                    }
                    Write::Delete {
                        namespace,
                        bucket,
                        key,
                    } => {
                        let removed = with_key(namespace, bucket, key, |flat| {
                            let old = entries.remove(flat)?;
                            Ok::<_, redb::StorageError>(
                                old.map(|v| entry_cost(namespace, bucket, key, v.value().len())),
                            )
                        })
                        .map_err(backend)?;
                        let used = self.used(&usage, namespace);
                        changed |= removed.is_some();
                        let after = used.saturating_sub(removed.unwrap_or(0));
                        (namespace, Ok((after, removed.is_some())))
                    }
                };
                results.push(result.map(|(after, found)| {
                    usage.insert(namespace.clone(), after);
                    found
                }));
            }
        }
        if !changed {
            // Nothing to commit (refused writes, absent keys).
            txn.abort().map_err(backend)?;
            return Ok(results);
        }
        let committed = txn.commit().map_err(backend);
        // Also when the commit failed: the snapshot is then merely reopened.
        self.committed();
        committed?;
        let mut totals = lock(&self.usage);
        for (namespace, after) in usage {
            totals.insert(namespace, after);
        }
        Ok(results)
    }
}

/// Stores `value` under `flat` unless `check`, given the length of the
/// value it replaces, refuses; then the table is left as it was. Returns
/// what `check` returned.
fn set_within_quota(
    entries: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    flat: &[u8],
    value: &[u8],
    check: impl FnOnce(Option<usize>) -> Result<u64, StorageError>,
) -> Result<Result<u64, StorageError>, redb::StorageError> {
    // `insert` returns the entry it replaces: no separate lookup on the
    // common path; the rare refused write puts the old entry back.
    let (checked, undo) = {
        let old = entries.insert(flat, value)?;
        let checked = check(old.as_ref().map(|v| v.value().len()));
        let undo = checked.is_err().then(|| old.map(|v| v.value().to_vec()));
        (checked, undo)
    };
    match undo {
        Some(Some(old)) => {
            entries.insert(flat, old.as_slice())?;
        }
        Some(None) => {
            entries.remove(flat)?;
        }
        None => {}
    }
    Ok(checked)
}

impl StorageBackend for RedbStorage {
    fn get(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let table = self.entries()?;
        let value = with_key(namespace, bucket, key, |flat| table.get(flat)).map_err(backend)?;
        Ok(value.map(|v| v.value().to_vec()))
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

    /// A write queued behind other writes' commits leaves the queue at
    /// `deadline`, not stored.
    fn set_by(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        value: &[u8],
        quota: Option<u64>,
        deadline: Option<Instant>,
    ) -> Result<(), StorageError> {
        let write = Write::Set {
            namespace: namespace.to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            value: value.to_vec(),
            quota,
            expected: None,
        };
        self.write(namespace, value.len(), write, deadline)
            .map(|_replaced| ())
    }

    /// Queued and committed as a [`set`](StorageBackend::set) is: the
    /// entry is compared inside the write transaction that stores it.
    fn compare_and_set(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<bool, StorageError> {
        let write = Write::Set {
            namespace: namespace.to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            value: value.to_vec(),
            quota,
            expected: Some(expected.map(<[u8]>::to_vec)),
        };
        self.write(namespace, value.len(), write, None)
    }

    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> Result<bool, StorageError> {
        self.delete_by(namespace, bucket, key, None)
    }

    /// As [`set_by`](StorageBackend::set_by): left queued at `deadline`,
    /// not applied.
    fn delete_by(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<bool, StorageError> {
        let write = Write::Delete {
            namespace: namespace.to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        self.write(namespace, 0, write, deadline)
    }

    fn list_keys(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        let table = self.entries()?;
        let prefix = bucket_prefix(namespace, bucket);
        let mut start = prefix.clone();
        start.extend_from_slice(after.unwrap_or("").as_bytes());
        let mut keys = Vec::new();
        for entry in table.range(start.as_slice()..).map_err(backend)? {
            let (k, _) = entry.map_err(backend)?;
            let Some(key) = k.value().strip_prefix(prefix.as_slice()) else {
                break;
            };
            let key = std::str::from_utf8(key).map_err(|_| malformed_key(k.value()))?;
            if after.is_some_and(|a| key <= a) {
                continue;
            }
            keys.push(key.to_owned());
            if keys.len() == limit {
                break;
            }
        }
        Ok(keys)
    }

    fn usage(&self, namespace: &str) -> Result<u64, StorageError> {
        Ok(lock(&self.usage).get(namespace).copied().unwrap_or(0))
    }

    /// With `durable(false)`: one empty durable commit, which makes every
    /// earlier commit durable too. Durable storage has nothing to do.
    fn flush(&self) -> Result<(), StorageError> {
        if matches!(self.durability, Durability::Immediate) {
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::Immediate).map_err(backend)?;
        txn.commit().map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use redb::TableHandle;

    use super::*;

    #[test]
    fn a_flush_of_non_durable_storage_commits_durably() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        {
            let storage = RedbStorage::open(&path).expect("open").durable(false);
            storage.set("a", "b", "k", b"v", None).expect("set");
            storage.flush().expect("flush");
        }
        let storage = RedbStorage::open(&path).expect("reopen");
        assert_eq!(
            storage.get("a", "b", "k").expect("get").as_deref(),
            Some(&b"v"[..])
        );
        storage.flush().expect("durable storage: nothing to do");
    }

    #[test]
    fn conforms_and_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        {
            let storage = RedbStorage::open(&path).expect("open");
            super::super::tests::conformance(&storage);
            super::super::tests::compare_and_set_conformance(&storage);
            super::super::tests::names_stay_apart(&storage);
        }
        let storage = RedbStorage::open(&path).expect("reopen");
        assert_eq!(
            storage.get("a", "b", "k2").expect("get").as_deref(),
            Some(&b"v2"[..])
        );
        assert_eq!(
            storage.usage("q").expect("usage"),
            0,
            "emptied by conformance"
        );
        assert_eq!(
            storage.usage("a").expect("usage"),
            entry_cost("a", "b", "k2", 2) + entry_cost("a", "c", "k", 12)
        );
    }

    #[test]
    fn reads_see_every_finished_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = RedbStorage::open(&dir.path().join("s.redb"))
            .expect("open")
            .durable(false);
        // Each read below may reuse the snapshot of the one before; every
        // write in between must replace it.
        assert_eq!(storage.get("n", "b", "k").expect("get"), None);
        storage.set("n", "b", "k", b"1", None).expect("set");
        assert_eq!(
            storage.get("n", "b", "k").expect("get").as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(
            storage.get("n", "b", "k").expect("get").as_deref(),
            Some(&b"1"[..])
        );
        storage.set("n", "b", "k", b"22", None).expect("set");
        assert_eq!(
            storage.get("n", "b", "k").expect("get").as_deref(),
            Some(&b"22"[..])
        );
        storage.set("n", "b", "k2", b"3", None).expect("set");
        assert_eq!(
            storage.list_keys("n", "b", None, 10).expect("list"),
            ["k", "k2"]
        );
        assert!(storage.delete("n", "b", "k").expect("delete"));
        assert_eq!(storage.get("n", "b", "k").expect("get"), None);
        assert_eq!(storage.list_keys("n", "b", None, 10).expect("list"), ["k2"]);
        // A refused write (over quota) changes neither data nor usage.
        assert!(storage.set("n", "b", "k2", &[0; 100], Some(10)).is_err());
        assert_eq!(
            storage.get("n", "b", "k2").expect("get").as_deref(),
            Some(&b"3"[..])
        );
        assert_eq!(
            storage.usage("n").expect("usage"),
            entry_cost("n", "b", "k2", 1)
        );
    }

    #[test]
    fn concurrent_readers_see_each_write_once_it_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Arc::new(
            RedbStorage::open(&dir.path().join("c.redb"))
                .expect("open")
                .durable(false),
        );
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let storage = Arc::clone(&storage);
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        storage.get("n", "b", "k").expect("get");
                    }
                })
            })
            .collect();
        for i in 0u32..200 {
            let value = i.to_le_bytes();
            storage.set("n", "b", "k", &value, None).expect("set");
            assert_eq!(
                storage.get("n", "b", "k").expect("get").as_deref(),
                Some(&value[..]),
                "write {i} is visible once set returned"
            );
        }
        for reader in readers {
            reader.join().expect("reader");
        }
    }

    #[test]
    fn earlier_layouts_are_converted_and_usage_is_totalled_from_the_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("legacy.redb");
        {
            // The earlier layout, with a usage figure that disagrees with
            // the entries.
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("txn");
            {
                let mut entries = txn.open_table(LEGACY_ENTRIES).expect("entries");
                entries
                    .insert(("a", "b", "k"), &b"vvv"[..])
                    .expect("insert");
                entries.insert(("a", "c", "kk"), &b"v"[..]).expect("insert");
                entries.insert(("z", "b", "k"), &b""[..]).expect("insert");
                let mut usage = txn.open_table(LEGACY_USAGE).expect("usage");
                usage.insert("a", 999).expect("insert");
            }
            txn.commit().expect("commit");
        }
        let storage = RedbStorage::open(&path).expect("open");
        // Charged the current way (names and overhead included), whatever
        // the file said.
        assert_eq!(
            storage.usage("a").expect("usage"),
            entry_cost("a", "b", "k", 3) + entry_cost("a", "c", "kk", 1)
        );
        assert_eq!(
            storage.usage("z").expect("usage"),
            entry_cost("z", "b", "k", 0)
        );
        assert_eq!(storage.usage("nobody").expect("usage"), 0);
        // Nothing lost in the conversion.
        assert_eq!(
            storage.get("a", "b", "k").expect("get").as_deref(),
            Some(&b"vvv"[..])
        );
        assert_eq!(
            storage.get("a", "c", "kk").expect("get").as_deref(),
            Some(&b"v"[..])
        );
        assert_eq!(
            storage.get("z", "b", "k").expect("get").as_deref(),
            Some(&b""[..])
        );
        assert_eq!(storage.list_keys("a", "b", None, 10).expect("list"), ["k"]);
        drop(storage);
        let db = Database::create(&path).expect("reopen");
        let txn = db.begin_read().expect("txn");
        let tables: Vec<String> = txn
            .list_tables()
            .expect("tables")
            .map(|t| t.name().to_owned())
            .collect();
        assert_eq!(tables, ["kv"]);
    }

    #[test]
    fn a_damaged_key_is_an_error_on_open_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("damaged.redb");
        {
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("txn");
            {
                let mut kv = txn.open_table(KV).expect("kv");
                // A namespace length running past the end.
                kv.insert(&[0, 0, 0, 9, b'a'][..], &b"v"[..])
                    .expect("insert");
            }
            txn.commit().expect("commit");
        }
        let error = RedbStorage::open(&path).expect_err("damaged file");
        assert!(
            error.to_string().contains("not (namespace, bucket, key)"),
            "{error}"
        );
    }

    /// Three threads of one component write durably in a tight loop
    /// while a neighbour writes now and then: no write, the neighbour's
    /// included, ever stays queued while a batch without it is taken, so
    /// each waits for at most the commit in progress and its own.
    ///
    /// On the branch point (one lock serializing the writers, which a
    /// flooder releasing it could take again at once) the same load made a
    /// neighbour's write wait behind 37-88 commits (three runs, counted as
    /// commits between the start and the end of its `set`).
    #[test]
    fn a_write_loop_cannot_starve_a_neighbours_commit() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Arc::new(RedbStorage::open(&dir.path().join("fair.redb")).expect("open"));
        let stop = Arc::new(AtomicBool::new(false));
        let flooders: Vec<_> = (0..3)
            .map(|t| {
                let storage = Arc::clone(&storage);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("k{t}-{}", n % 64);
                        storage
                            .set("flood", "b", &key, &[1; 64], None)
                            .expect("set");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for i in 0..50u32 {
            storage
                .set("neighbour", "b", "k", &i.to_le_bytes(), None)
                .expect("set");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        stop.store(true, Ordering::Relaxed);
        let flooded: u64 = flooders
            .into_iter()
            .map(|f| f.join().expect("flooder"))
            .sum();
        assert!(flooded > 0);
        assert_eq!(
            storage.writes.most_passed_over(),
            0,
            "a write stayed queued while a batch without it was committed"
        );
        assert_eq!(
            storage.get("neighbour", "b", "k").expect("get").as_deref(),
            Some(&49u32.to_le_bytes()[..])
        );
    }

    /// Writes of many threads share commits; each sees its own result, a
    /// refused write inside a shared batch changes nothing, and usage is
    /// exact afterwards.
    #[test]
    fn concurrent_writes_share_commits_and_keep_exact_usage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("group.redb");
        let storage = Arc::new(RedbStorage::open(&path).expect("open").durable(false));
        let quota = Some(entry_cost("tight", "b", "k0", 10) * 5);
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let storage = Arc::clone(&storage);
                std::thread::spawn(move || {
                    let mut refused = 0;
                    for i in 0..100u8 {
                        let key = format!("k{}", i % 10);
                        storage
                            .set("free", &format!("b{t}"), &key, &[t, i], None)
                            .expect("set");
                        match storage.set("tight", "b", &format!("k{t}"), &[i; 10], quota) {
                            Ok(()) => {}
                            Err(StorageError::QuotaExceeded { .. }) => refused += 1,
                            Err(e) => panic!("{e}"),
                        }
                        if i % 3 == 0 {
                            storage
                                .delete("free", &format!("b{t}"), &key)
                                .expect("delete");
                        }
                    }
                    refused
                })
            })
            .collect();
        let refused: u32 = threads.into_iter().map(|t| t.join().expect("writer")).sum();
        assert_eq!(refused, 0, "four keys of 10 bytes fit in a quota of five");
        let usage = |s: &RedbStorage, namespace: &str| s.usage(namespace).expect("usage");
        let (free, tight) = (usage(&storage, "free"), usage(&storage, "tight"));
        assert_eq!(tight, entry_cost("tight", "b", "k0", 10) * 4);
        // Over the quota with a fifth key's worth plus one byte: refused.
        let err = storage
            .set("tight", "b", "k9", &[0; 11], quota)
            .expect_err("over quota");
        assert!(matches!(err, StorageError::QuotaExceeded { .. }), "{err}");
        assert_eq!(storage.get("tight", "b", "k9").expect("get"), None);
        drop(storage);
        // Totalled again from the entries: the same figures.
        let reopened = RedbStorage::open(&path).expect("reopen");
        assert_eq!(
            (usage(&reopened, "free"), usage(&reopened, "tight")),
            (free, tight)
        );
    }
}
