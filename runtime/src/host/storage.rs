//! `airssys:core/storage`: buckets in the component's own namespace of the
//! runtime's [`StorageBackend`](crate::storage::StorageBackend).
//!
//! Every method checks `kv:<action>:<bucket>/<key>` (`kv:list:<bucket>` for
//! `list-keys`) against the caller's grants before touching the backend;
//! writes are charged against the component's storage quota.

use airssys_contract::capability::{Action, Domain};
use airssys_contract::guard::HostFnGuard;
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

static GET: HostFnGuard =
    HostFnGuard::new("airssys:core/storage#[method]bucket.get", "kv:read", Domain::Kv, Action::Read);
static SET: HostFnGuard =
    HostFnGuard::new("airssys:core/storage#[method]bucket.set", "kv:write", Domain::Kv, Action::Write);
static DELETE: HostFnGuard = HostFnGuard::new(
    "airssys:core/storage#[method]bucket.delete",
    "kv:delete",
    Domain::Kv,
    Action::Delete,
);
static EXISTS: HostFnGuard = HostFnGuard::new(
    "airssys:core/storage#[method]bucket.exists",
    "kv:read",
    Domain::Kv,
    Action::Read,
);
static LIST_KEYS: HostFnGuard = HostFnGuard::new(
    "airssys:core/storage#[method]bucket.list-keys",
    "kv:list",
    Domain::Kv,
    Action::List,
);

impl From<StorageError> for Error {
    fn from(error: StorageError) -> Error {
        match error {
            StorageError::QuotaExceeded { .. } => Error::QuotaExceeded(error.to_string()),
            StorageError::InvalidInput(message) => Error::InvalidInput(message),
            StorageError::Backend(_) => Error::Other(error.to_string()),
        }
    }
}

impl HostState {
    /// Guards a keyed bucket method and returns the bucket's name.
    fn authorize_key(
        &self,
        guard: &HostFnGuard,
        bucket: &Resource<Bucket>,
        key: &str,
    ) -> Result<String, Error> {
        let name = guard
            .handle(self, "bucket", bucket.rep())
            .map_err(|d| Error::Denied(d.into_message()))?;
        validate_name("key", key)?;
        guard
            .authorize(self, &[name, "/", key])
            .map_err(|d| Error::Denied(d.into_message()))?;
        Ok(name.to_owned())
    }
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl HostBucket for HostState {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        Ok(self.authorize_key(&GET, &bucket, &key).and_then(|name| {
            Ok(self.services.storage.get(self.name(), &name, &key)?)
        }))
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        Ok(self.authorize_key(&SET, &bucket, &key).and_then(|name| {
            let quota = Some(self.info.limits.storage_bytes);
            Ok(self.services.storage.set(self.name(), &name, &key, &value, quota)?)
        }))
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        Ok(self.authorize_key(&DELETE, &bucket, &key).and_then(|name| {
            Ok(self.services.storage.delete(self.name(), &name, &key)?)
        }))
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        Ok(self.authorize_key(&EXISTS, &bucket, &key).and_then(|name| {
            Ok(self.services.storage.get(self.name(), &name, &key)?.is_some())
        }))
    }

    fn list_keys(&mut self, bucket: Resource<Bucket>, cursor: Option<String>) -> Outcome<KeyPage> {
        let authorized = LIST_KEYS
            .handle(self, "bucket", bucket.rep())
            .and_then(|name| LIST_KEYS.authorize(self, &[name]).map(|()| name.to_owned()))
            .map_err(|d| Error::Denied(d.into_message()));
        Ok(authorized.and_then(|name| {
            // One key more than a page tells whether another page follows.
            let mut keys = self.services.storage.list_keys(
                self.name(),
                &name,
                cursor.as_deref(),
                PAGE_SIZE + 1,
            )?;
            let next = if keys.len() > PAGE_SIZE {
                keys.truncate(PAGE_SIZE);
                keys.last().cloned()
            } else {
                None
            };
            Ok(KeyPage { keys, next })
        }))
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl Host for HostState {
    fn open(&mut self, name: String) -> Outcome<Resource<Bucket>> {
        if let Err(error) = validate_name("bucket name", &name) {
            return Ok(Err(error.into()));
        }
        Ok(Ok(self.table.push(Bucket { name })?))
    }
}
