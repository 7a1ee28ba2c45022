//! `airssys:core/storage`: buckets in the component's own namespace of the
//! runtime's [`StorageBackend`](crate::storage::StorageBackend).
//!
//! Every method checks `kv:<action>:<bucket>/<key>` (`kv:list:<bucket>` for
//! `list-keys`) against the caller's grants before touching the backend
//! (the guards come from `#[airssys::host_fn]`); writes are charged
//! against the component's storage quota.
//!
//! Every backend call carries the call's deadline
//! ([`HostState::call_deadline`], `limits.cpu_time_ms`): a backend that
//! waits (for a NATS server, for another writer's commit) gives up by
//! then, and the component gets `other` naming its time limit; the call
//! then ends as its time limit does.
//!
//! A bucket name is one segment (no `/`), so `kv:<action>:<bucket>/<key>`
//! names exactly one entry. `list-keys` leaves out keys that a deny rule
//! hides (`kv:read` or `kv:list` on `<bucket>/<key>`, see
//! [`HostState::hidden_by_deny`]).

use std::time::Instant;

use airssys_contract::capability::{Action, Domain};
use airssys_macros::host_impl;
use wasmtime::component::Resource;

use super::bindings::airssys::core::storage::{Error, Host, HostBucket, KeyPage};
use super::state::HostState;
use crate::storage::{StorageError, validate_name};

/// Keys returned per `list-keys` page.
const PAGE_SIZE: usize = 100;

/// An open bucket: the name it was opened with (the `{self}` of the
/// method templates).
#[derive(Debug)]
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Bucket {
    /// The bucket's name.
    pub name: String,
}

impl From<StorageError> for Error {
    fn from(error: StorageError) -> Error {
        match error {
            StorageError::QuotaExceeded { .. } => Error::QuotaExceeded(error.to_string()),
            StorageError::InvalidInput(message) => Error::InvalidInput(message),
            StorageError::Backend(_) | StorageError::DeadlineReached { .. } => {
                Error::Other(error.to_string())
            }
        }
    }
}

impl HostState {
    /// The name of an open bucket (the guard has already resolved it, so
    /// this fails only for a handle the component does not own, which
    /// wasmtime rules out).
    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<&str> {
        Ok(self.table.get(bucket)?.name.as_str())
    }

    /// The WIT error for `error`; a deadline reached names the
    /// component's time limit.
    fn storage_error(&self, error: StorageError) -> Error {
        match error {
            StorageError::DeadlineReached { waiting_for } => Error::Other(format!(
                "CPU time limit of {} ms reached while waiting for the storage server: \
                 component `{}` may run each call for at most `limits.cpu_time_ms`, and the \
                 wait for {waiting_for} ran into it; raise `limits.cpu_time_ms` in the policy, \
                 or remove the cause of the wait (a slow or unreachable storage server, a busy \
                 disk, many keys hidden by deny rules in the bucket listed)",
                self.info.limits.cpu_time.as_millis(),
                self.name(),
            )),
            other => Error::from(other),
        }
    }

    /// Up to `PAGE_SIZE + 1` keys of `bucket` after `after` that no deny
    /// rule hides, reading on past hidden keys (the extra key tells
    /// whether another page follows). Each call reads the backend from the
    /// caller's cursor, so hidden keys between two pages are skipped again
    /// and never returned, nor given as a cursor.
    ///
    /// Reading on past hidden keys ends at the call's deadline too, also
    /// on a backend that does not wait.
    fn visible_keys(
        &self,
        bucket: &str,
        mut after: Option<String>,
    ) -> Result<Vec<String>, StorageError> {
        let mut keys = Vec::new();
        // `bucket/key`, built in one buffer.
        let mut resource = format!("{bucket}/");
        let base = resource.len();
        let deadline = self.call_deadline();
        let mut read = 0usize;
        loop {
            if read > 0 && Instant::now() >= deadline {
                return Err(StorageError::DeadlineReached {
                    waiting_for: format!(
                        "the keys of bucket `{}` ({read} keys read, {} of them visible: deny \
                         rules hide the rest)",
                        bucket.escape_debug(),
                        keys.len()
                    ),
                });
            }
            let batch = self.services.storage.list_keys_by(
                self.name(),
                bucket,
                after.as_deref(),
                PAGE_SIZE + 1,
                Some(deadline),
            )?;
            read += batch.len();
            let last_batch = batch.len() <= PAGE_SIZE;
            after = batch.last().cloned();
            for key in batch {
                resource.truncate(base);
                resource.push_str(&key);
                if !self.hidden_by_deny(Domain::Kv, &[Action::Read, Action::List], &resource) {
                    keys.push(key);
                }
            }
            if keys.len() > PAGE_SIZE || last_batch {
                return Ok(keys);
            }
        }
    }
}

/// Refuses a bucket name holding `/`: `kv:read:a/b/c` must name one entry,
/// not both key `b/c` of bucket `a` and key `c` of bucket `a/b`.
fn check_bucket_name(name: &str) -> Result<(), StorageError> {
    validate_name("bucket name", name)?;
    if name.contains('/') {
        return Err(StorageError::InvalidInput(format!(
            "the bucket name `{}` contains `/`; a bucket name is one segment, so that \
             `kv:<action>:<bucket>/<key>` names exactly one entry: use another character (such \
             as `.` or `-`), or move the rest of the name into the keys",
            name.escape_debug()
        )));
    }
    Ok(())
}

#[host_impl(interface = "airssys:core/storage", crate = "::airssys_contract")]
impl HostBucket for HostState {
    #[host_fn(capability = "kv:read")]
    fn get(
        &mut self,
        self_: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let bucket = self.bucket(&self_)?;
        let deadline = Some(self.call_deadline());
        Ok(validate_name("key", &key)
            .and_then(|()| {
                self.services
                    .storage
                    .get_by(self.name(), bucket, &key, deadline)
            })
            .map_err(|e| self.storage_error(e)))
    }

    #[host_fn(capability = "kv:write")]
    fn set(
        &mut self,
        self_: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let bucket = self.bucket(&self_)?;
        let quota = Some(self.info.limits.storage_bytes);
        let deadline = Some(self.call_deadline());
        Ok(validate_name("key", &key)
            .and_then(|()| {
                self.services
                    .storage
                    .set_by(self.name(), bucket, &key, &value, quota, deadline)
            })
            .map_err(|e| self.storage_error(e)))
    }

    #[host_fn(capability = "kv:delete")]
    fn delete(
        &mut self,
        self_: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let bucket = self.bucket(&self_)?;
        let deadline = Some(self.call_deadline());
        Ok(validate_name("key", &key)
            .and_then(|()| {
                self.services
                    .storage
                    .delete_by(self.name(), bucket, &key, deadline)
            })
            .map_err(|e| self.storage_error(e)))
    }

    #[host_fn(capability = "kv:read")]
    fn exists(
        &mut self,
        self_: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let bucket = self.bucket(&self_)?;
        let deadline = Some(self.call_deadline());
        Ok(validate_name("key", &key)
            .and_then(|()| {
                self.services
                    .storage
                    .get_by(self.name(), bucket, &key, deadline)
            })
            .map(|value| value.is_some())
            .map_err(|e| self.storage_error(e)))
    }

    #[host_fn(capability = "kv:list")]
    fn list_keys(
        &mut self,
        self_: Resource<Bucket>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyPage, Error>> {
        let bucket = self.bucket(&self_)?;
        // One key more than a page tells whether another page follows.
        let keys = self.visible_keys(bucket, cursor);
        Ok(keys.map_err(|e| self.storage_error(e)).map(|mut keys| {
            let next = if keys.len() > PAGE_SIZE {
                keys.truncate(PAGE_SIZE);
                keys.last().cloned()
            } else {
                None
            };
            KeyPage { keys, next }
        }))
    }

    fn drop(&mut self, rep: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

#[host_impl(interface = "airssys:core/storage", crate = "::airssys_contract")]
impl Host for HostState {
    fn open(&mut self, name: String) -> wasmtime::Result<Result<Resource<Bucket>, Error>> {
        if let Err(error) = check_bucket_name(&name) {
            return Ok(Err(error.into()));
        }
        Ok(Ok(self.table.push(Bucket { name })?))
    }
}
