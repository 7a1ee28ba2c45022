//! The default [`StorageBackend`]: one embedded redb file.
//!
//! Layout: one table, `entries`, keyed by `(namespace, bucket, key)`.
//! The bytes each namespace uses are not stored: they are totalled from the
//! entries when the file is opened (one pass over every entry) and kept in
//! step with each commit, so the quota is exact after a crash by
//! construction and a write touches one table only. (Files written before
//! this layout also hold a `usage` table; opening removes it.)
//!
//! Reads share one read snapshot of the table until the next write commits:
//! opening a read transaction per `get` costs more than the lookup itself.
//! A write replaces the snapshot before it returns, so a read that starts
//! after a write finished always sees it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition};

use super::{StorageBackend, StorageError, check_quota, entry_cost};

type EntryKey = (&'static str, &'static str, &'static str);

const ENTRIES: TableDefinition<'_, (&str, &str, &str), &[u8]> = TableDefinition::new("entries");
/// The per-namespace usage table of the earlier layout, removed on open.
const LEGACY_USAGE: TableDefinition<'_, &str, u64> = TableDefinition::new("usage");

/// Storage in a redb file. Every write is its own transaction, committed
/// durably by default (it survives a kill of the host).
pub struct RedbStorage {
    db: Database,
    durability: Durability,
    /// Bytes used per namespace. Its lock is held for the whole of each
    /// write transaction (redb runs one writer at a time anyway), so a
    /// quota check always sees every earlier commit.
    usage: Mutex<HashMap<String, u64>>,
    /// The shared read snapshot.
    snapshot: Mutex<Snapshot>,
}

/// The read snapshot readers share, and how many writes have committed
/// since the storage was opened (a reader only publishes a snapshot when
/// no write committed while it was being opened).
#[derive(Default)]
struct Snapshot {
    generation: u64,
    entries: Option<Arc<ReadOnlyTable<EntryKey, &'static [u8]>>>,
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

/// Locks `mutex`, ignoring poisoning: the guarded data is replaced whole
/// (a snapshot) or updated after a commit in one step (usage), so a panic
/// elsewhere cannot leave it half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
        // Create the table so readers never meet a missing one; drop the
        // earlier layout's usage table, which nothing keeps up to date now.
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(ENTRIES).map_err(backend)?;
        txn.delete_table(LEGACY_USAGE).map_err(backend)?;
        txn.commit().map_err(backend)?;
        let mut usage: HashMap<String, u64> = HashMap::new();
        {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(ENTRIES).map_err(backend)?;
            for entry in table.iter().map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                let (namespace, _, key) = k.value();
                let cost = entry_cost(key, v.value());
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
    fn entries(&self) -> Result<Arc<ReadOnlyTable<EntryKey, &'static [u8]>>, StorageError> {
        let generation = {
            let snapshot = lock(&self.snapshot);
            if let Some(table) = &snapshot.entries {
                return Ok(Arc::clone(table));
            }
            snapshot.generation
        };
        let txn = self.db.begin_read().map_err(backend)?;
        let table = Arc::new(txn.open_table(ENTRIES).map_err(backend)?);
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

    /// Commits `txn`, then invalidates the read snapshot (also when the
    /// commit fails: the snapshot is then merely reopened).
    fn commit(&self, txn: redb::WriteTransaction) -> Result<(), StorageError> {
        let result = txn.commit().map_err(backend);
        self.committed();
        result
    }
}

impl StorageBackend for RedbStorage {
    fn get(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let table = self.entries()?;
        let value = table.get((namespace, bucket, key)).map_err(backend)?;
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
        let mut usage = lock(&self.usage);
        let txn = self.begin_write()?;
        let checked = {
            let mut entries = txn.open_table(ENTRIES).map_err(backend)?;
            // `insert` returns the entry it replaces: no separate lookup.
            let old = entries
                .insert((namespace, bucket, key), value)
                .map_err(backend)?
                .map_or(0, |v| entry_cost(key, v.value()));
            let used = usage.get(namespace).copied().unwrap_or(0);
            check_quota(namespace, used, old, entry_cost(key, value), quota)
        };
        let after = match checked {
            Ok(after) => after,
            Err(error) => {
                // Over quota: nothing was committed, nothing changes.
                txn.abort().map_err(backend)?;
                return Err(error);
            }
        };
        self.commit(txn)?;
        match usage.get_mut(namespace) {
            Some(used) => *used = after,
            None => {
                usage.insert(namespace.to_owned(), after);
            }
        }
        Ok(())
    }

    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> Result<bool, StorageError> {
        let mut usage = lock(&self.usage);
        let txn = self.begin_write()?;
        let removed = {
            let mut entries = txn.open_table(ENTRIES).map_err(backend)?;
            entries
                .remove((namespace, bucket, key))
                .map_err(backend)?
                .map(|v| entry_cost(key, v.value()))
        };
        let Some(cost) = removed else {
            txn.abort().map_err(backend)?;
            return Ok(false);
        };
        self.commit(txn)?;
        if let Some(used) = usage.get_mut(namespace) {
            *used = used.saturating_sub(cost);
        }
        Ok(true)
    }

    fn list_keys(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        let table = self.entries()?;
        let start = (namespace, bucket, after.unwrap_or(""));
        let mut keys = Vec::new();
        for entry in table.range(start..).map_err(backend)? {
            let (k, _) = entry.map_err(backend)?;
            let (n, b, key) = k.value();
            if n != namespace || b != bucket {
                break;
            }
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
}

#[cfg(test)]
mod tests {
    use redb::TableHandle;

    use super::*;

    #[test]
    fn conforms_and_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        {
            let storage = RedbStorage::open(&path).expect("open");
            super::super::tests::conformance(&storage);
        }
        let storage = RedbStorage::open(&path).expect("reopen");
        assert_eq!(
            storage.get("a", "b", "k2").expect("get").as_deref(),
            Some(&b"v2"[..])
        );
        assert_eq!(storage.usage("q").expect("usage"), 2);
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
        assert_eq!(storage.usage("n").expect("usage"), 2 + 1);
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
    fn usage_is_totalled_from_the_entries_and_the_old_usage_table_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("legacy.redb");
        {
            // The earlier layout, with a usage figure that disagrees with
            // the entries.
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("txn");
            {
                let mut entries = txn.open_table(ENTRIES).expect("entries");
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
        assert_eq!(storage.usage("a").expect("usage"), (1 + 3) + (2 + 1));
        assert_eq!(storage.usage("z").expect("usage"), 1);
        assert_eq!(storage.usage("nobody").expect("usage"), 0);
        drop(storage);
        let db = Database::create(&path).expect("reopen");
        let txn = db.begin_read().expect("txn");
        let tables: Vec<String> = txn
            .list_tables()
            .expect("tables")
            .map(|t| t.name().to_owned())
            .collect();
        assert_eq!(tables, ["entries"]);
    }

    /// Set by [`committed_writes_survive_a_kill`] in the child process it
    /// starts: the database file to write before aborting.
    const KILL_ENV: &str = "AIRSSYS_REDB_KILL_TEST";

    /// In the child: write, then abort without dropping anything (no
    /// destructor, no flush); in a normal test run it does nothing.
    #[test]
    fn child_writes_then_aborts() {
        if let Some(path) = std::env::var_os(KILL_ENV) {
            let storage = RedbStorage::open(Path::new(&path)).expect("open");
            storage
                .set("ns", "b", "k", b"committed", None)
                .expect("set");
            std::process::abort();
        }
    }

    #[test]
    fn committed_writes_survive_a_kill() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("killed.redb");
        let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "storage::redb::tests::child_writes_then_aborts",
                "--test-threads=1",
            ])
            .env(KILL_ENV, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run child");
        assert!(!status.success(), "the child aborts after its write");
        let storage = RedbStorage::open(&path).expect("reopen after the kill");
        assert_eq!(
            storage.get("ns", "b", "k").expect("get").as_deref(),
            Some(&b"committed"[..])
        );
        assert_eq!(storage.usage("ns").expect("usage"), 1 + 9);
    }
}
