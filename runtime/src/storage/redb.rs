//! The default [`StorageBackend`]: one embedded redb file.
//!
//! Layout: table `entries` keyed by `(namespace, bucket, key)`, and table
//! `usage` with the bytes each namespace uses, updated in the same
//! transaction as the entry so the quota stays exact across crashes.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{StorageBackend, StorageError, check_quota, entry_cost};

const ENTRIES: TableDefinition<'_, (&str, &str, &str), &[u8]> = TableDefinition::new("entries");
const USAGE: TableDefinition<'_, &str, u64> = TableDefinition::new("usage");

/// Storage in a redb file. Every write is its own transaction, committed
/// durably by default (it survives a kill of the host).
pub struct RedbStorage {
    db: Database,
    durability: Durability,
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
    /// Opens (or creates) the database file at `path` with durable commits.
    ///
    /// # Errors
    ///
    /// [`StorageError::Backend`] when the file cannot be opened or created
    /// (for example, another process holds it).
    pub fn open(path: &Path) -> Result<RedbStorage, StorageError> {
        let db = Database::create(path)
            .map_err(|e| StorageError::Backend(format!("cannot open {}: {e}", path.display())))?;
        let storage = RedbStorage {
            db,
            durability: Durability::Immediate,
        };
        // Create both tables so readers never meet a missing table.
        let txn = storage.db.begin_write().map_err(backend)?;
        txn.open_table(ENTRIES).map_err(backend)?;
        txn.open_table(USAGE).map_err(backend)?;
        txn.commit().map_err(backend)?;
        Ok(storage)
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

    fn write<R>(
        &self,
        body: impl FnOnce(&redb::WriteTransaction) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(self.durability).map_err(backend)?;
        let out = body(&txn)?;
        txn.commit().map_err(backend)?;
        Ok(out)
    }
}

impl StorageBackend for RedbStorage {
    fn get(
        &self,
        namespace: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(ENTRIES).map_err(backend)?;
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
        self.write(|txn| {
            let mut entries = txn.open_table(ENTRIES).map_err(backend)?;
            let mut usage = txn.open_table(USAGE).map_err(backend)?;
            let old = entries
                .get((namespace, bucket, key))
                .map_err(backend)?
                .map_or(0, |v| entry_cost(key, v.value()));
            let used = usage
                .get(namespace)
                .map_err(backend)?
                .map_or(0, |v| v.value());
            let after = check_quota(namespace, used, old, entry_cost(key, value), quota)?;
            entries
                .insert((namespace, bucket, key), value)
                .map_err(backend)?;
            usage.insert(namespace, after).map_err(backend)?;
            Ok(())
        })
    }

    fn delete(&self, namespace: &str, bucket: &str, key: &str) -> Result<bool, StorageError> {
        self.write(|txn| {
            let mut entries = txn.open_table(ENTRIES).map_err(backend)?;
            let removed = entries
                .remove((namespace, bucket, key))
                .map_err(backend)?
                .map(|v| entry_cost(key, v.value()));
            let Some(cost) = removed else {
                return Ok(false);
            };
            let mut usage = txn.open_table(USAGE).map_err(backend)?;
            let used = usage
                .get(namespace)
                .map_err(backend)?
                .map_or(0, |v| v.value());
            usage
                .insert(namespace, used.saturating_sub(cost))
                .map_err(backend)?;
            Ok(true)
        })
    }

    fn list_keys(
        &self,
        namespace: &str,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(ENTRIES).map_err(backend)?;
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
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(USAGE).map_err(backend)?;
        let used = table
            .get(namespace)
            .map_err(backend)?
            .map_or(0, |v| v.value());
        Ok(used)
    }
}

#[cfg(test)]
mod tests {
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
