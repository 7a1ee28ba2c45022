//! An in-memory [`StorageBackend`], for tests and ephemeral hosts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::{StorageBackend, StorageError, check_quota, entry_cost};

/// Storage kept in memory and lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<(String, String, String), Vec<u8>>,
    usage: HashMap<String, u64>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single map operation), so poisoning is ignored.
        crate::sync::lock(&self.inner)
    }
}

fn key(namespace: &str, bucket: &str, key: &str) -> (String, String, String) {
    (namespace.to_owned(), bucket.to_owned(), key.to_owned())
}

impl StorageBackend for MemoryStorage {
    fn get(&self, namespace: &str, bucket: &str, k: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().entries.get(&key(namespace, bucket, k)).cloned())
    }

    fn set(
        &self,
        namespace: &str,
        bucket: &str,
        k: &str,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let id = key(namespace, bucket, k);
        let cost = |len| entry_cost(namespace, bucket, k, len);
        let old = inner.entries.get(&id).map_or(0, |v| cost(v.len()));
        let used = inner.usage.get(namespace).copied().unwrap_or(0);
        let after = check_quota(namespace, used, old, cost(value.len()), quota)?;
        inner.entries.insert(id, value.to_vec());
        inner.usage.insert(namespace.to_owned(), after);
        Ok(())
    }

    fn delete(&self, namespace: &str, bucket: &str, k: &str) -> Result<bool, StorageError> {
        let mut inner = self.lock();
        let Some(old) = inner.entries.remove(&key(namespace, bucket, k)) else {
            return Ok(false);
        };
        if let Some(used) = inner.usage.get_mut(namespace) {
            *used = used.saturating_sub(entry_cost(namespace, bucket, k, old.len()));
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
        let inner = self.lock();
        let start = key(namespace, bucket, after.unwrap_or(""));
        Ok(inner
            .entries
            .range(start..)
            .take_while(|((n, b, _), _)| n == namespace && b == bucket)
            .map(|((_, _, k), _)| k)
            .filter(|k| after.is_none_or(|a| k.as_str() > a))
            .take(limit)
            .cloned()
            .collect())
    }

    fn usage(&self, namespace: &str) -> Result<u64, StorageError> {
        Ok(self.lock().usage.get(namespace).copied().unwrap_or(0))
    }

    fn compare_and_set(
        &self,
        namespace: &str,
        bucket: &str,
        k: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        quota: Option<u64>,
    ) -> Result<bool, StorageError> {
        let mut inner = self.lock();
        let id = key(namespace, bucket, k);
        let current = inner.entries.get(&id);
        if current.map(Vec::as_slice) != expected {
            return Ok(false);
        }
        let cost = |len| entry_cost(namespace, bucket, k, len);
        let old = current.map_or(0, |v| cost(v.len()));
        let used = inner.usage.get(namespace).copied().unwrap_or(0);
        let after = check_quota(namespace, used, old, cost(value.len()), quota)?;
        inner.entries.insert(id, value.to_vec());
        inner.usage.insert(namespace.to_owned(), after);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conforms() {
        super::super::tests::conformance(&MemoryStorage::new());
        super::super::tests::compare_and_set_conformance(&MemoryStorage::new());
        super::super::tests::names_stay_apart(&MemoryStorage::new());
    }
}
