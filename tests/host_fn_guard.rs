//! Run-time behaviour of the guards `#[airssys::host_fn]` generates, native
//! (no wasm): a dummy host state, host traits shaped as wasmtime `bindgen!`
//! generates them for `airssys:core/storage`, and calls made directly.

#![deny(warnings)]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use airssys::contract::capability::{Capability, GrantSet};
use airssys::contract::guard::{GuardContext, GuardEvent, Outcome};

/// What `bindgen!` generates for `airssys:core/storage` (trimmed to the
/// shapes the guard relies on).
mod storage {
    use std::marker::PhantomData;

    pub(crate) struct Resource<T> {
        rep: u32,
        _kind: PhantomData<fn() -> T>,
    }

    impl<T> Resource<T> {
        pub(crate) fn new_own(rep: u32) -> Self {
            Resource {
                rep,
                _kind: PhantomData,
            }
        }
        pub(crate) fn rep(&self) -> u32 {
            self.rep
        }
    }

    pub(crate) struct Bucket;

    #[derive(Debug, PartialEq)]
    pub(crate) enum Error {
        Denied(String),
        InvalidInput(String),
        QuotaExceeded(String),
        Other(String),
    }

    pub(crate) struct KeyPage {
        pub(crate) keys: Vec<String>,
        pub(crate) next: Option<String>,
    }

    pub(crate) trait Host {
        fn open(&mut self, name: String) -> Result<Resource<Bucket>, Error>;
    }

    pub(crate) trait HostBucket {
        fn get(&mut self, self_: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, Error>;
        fn set(
            &mut self,
            self_: Resource<Bucket>,
            key: String,
            value: Vec<u8>,
        ) -> Result<(), Error>;
        fn delete(&mut self, self_: Resource<Bucket>, key: String) -> Result<bool, Error>;
        fn exists(&mut self, self_: Resource<Bucket>, key: String) -> Result<bool, Error>;
        fn list_keys(
            &mut self,
            self_: Resource<Bucket>,
            cursor: Option<String>,
        ) -> Result<KeyPage, Error>;
        fn drop(&mut self, rep: Resource<Bucket>) -> Result<(), String>;
    }
}

use storage::{Bucket, Error, KeyPage, Resource};

struct State {
    component: String,
    grants: GrantSet,
    buckets: Vec<String>,
    values: BTreeMap<String, Vec<u8>>,
    body_runs: usize,
    audit: std::cell::RefCell<Vec<String>>,
}

impl State {
    fn new(component: &str, allow: &[&str]) -> State {
        State {
            component: component.to_owned(),
            grants: GrantSet::new(allow.iter().map(|c| Capability::parse(c).unwrap()), []),
            buckets: Vec::new(),
            values: BTreeMap::new(),
            body_runs: 0,
            audit: Default::default(),
        }
    }

    fn bucket(&mut self, name: &str) -> u32 {
        storage::Host::open(self, name.to_owned()).unwrap().rep()
    }
}

impl GuardContext for State {
    fn component(&self) -> &str {
        &self.component
    }
    fn grants(&self) -> &GrantSet {
        &self.grants
    }
    fn handle_name(&self, resource: &str, rep: u32) -> Option<&str> {
        (resource == "bucket")
            .then(|| self.buckets.get(rep as usize))
            .flatten()
            .map(String::as_str)
    }
    fn record(&self, event: &GuardEvent<'_>) {
        let verdict = match event.outcome {
            Outcome::Allowed(_) => "allow",
            _ => "deny",
        };
        self.audit.borrow_mut().push(format!(
            "{} {}:{}:{} {verdict}",
            event.function, event.domain, event.action, event.resource
        ));
    }
}

#[airssys::host_impl(interface = "airssys:core/storage")]
impl storage::Host for State {
    fn open(&mut self, name: String) -> Result<Resource<Bucket>, Error> {
        self.buckets.push(name);
        Ok(Resource::new_own(self.buckets.len() as u32 - 1))
    }
}

#[airssys::host_impl(interface = "airssys:core/storage")]
impl storage::HostBucket for State {
    #[airssys::host_fn(capability = "kv:read:counter/**")]
    fn get(&mut self, self_: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.body_runs += 1;
        let bucket = &self.buckets[self_.rep() as usize];
        Ok(self.values.get(&format!("{bucket}/{key}")).cloned())
    }

    #[airssys::host_fn(capability = "kv:write:**")]
    fn set(&mut self, self_: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.body_runs += 1;
        let bucket = self.buckets[self_.rep() as usize].clone();
        self.values.insert(format!("{bucket}/{key}"), value);
        Ok(())
    }

    #[airssys::host_fn(capability = "kv:delete:**")]
    fn delete(&mut self, self_: Resource<Bucket>, key: String) -> Result<bool, Error> {
        self.body_runs += 1;
        let bucket = self.buckets[self_.rep() as usize].clone();
        Ok(self.values.remove(&format!("{bucket}/{key}")).is_some())
    }

    #[airssys::host_fn(capability = "kv:read:**")]
    fn exists(&mut self, self_: Resource<Bucket>, key: String) -> Result<bool, Error> {
        self.body_runs += 1;
        let bucket = &self.buckets[self_.rep() as usize];
        Ok(self.values.contains_key(&format!("{bucket}/{key}")))
    }

    #[airssys::host_fn(capability = "kv:list:**")]
    fn list_keys(
        &mut self,
        _self_: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<KeyPage, Error> {
        self.body_runs += 1;
        let _ = cursor;
        Ok(KeyPage {
            keys: self.values.keys().cloned().collect(),
            next: None,
        })
    }

    fn drop(&mut self, _rep: Resource<Bucket>) -> Result<(), String> {
        Ok(())
    }
}

use storage::HostBucket as _;

#[test]
fn allowed_call_runs_the_body() {
    let mut state = State::new("counter", &["kv:write:counter/*", "kv:read:counter/*"]);
    let b = state.bucket("counter");
    state
        .set(Resource::new_own(b), "hits".into(), b"1".to_vec())
        .unwrap();
    let value = state.get(Resource::new_own(b), "hits".into()).unwrap();
    assert_eq!(value.as_deref(), Some(&b"1"[..]));
    assert_eq!(state.body_runs, 2);
    assert_eq!(
        state.audit.borrow().as_slice(),
        [
            "airssys:core/storage@1.0.0#[method]bucket.set kv:write:counter/hits allow",
            "airssys:core/storage@1.0.0#[method]bucket.get kv:read:counter/hits allow",
        ]
    );
}

#[test]
fn denied_call_returns_denied_naming_the_capability_and_skips_the_body() {
    let mut state = State::new("counter", &["kv:read:counter/*"]);
    let b = state.bucket("counter");
    let error = state
        .set(Resource::new_own(b), "x".into(), b"1".to_vec())
        .unwrap_err();
    assert_eq!(
        error,
        Error::Denied(
            "component `counter` lacks `kv:write:counter/x`; grant it in the host \
             policy, e.g. `kv:write:counter/*`"
                .into()
        )
    );
    assert_eq!(state.body_runs, 0, "the body must not run when denied");
    assert!(state.values.is_empty());
}

#[test]
fn declared_scope_narrower_than_the_grant_denies() {
    // The component may read any bucket, but this host serves reads of
    // `counter/**` only (`get`'s declared scope).
    let mut state = State::new("reader", &["kv:read:**"]);
    let other = state.bucket("other");
    let error = state.get(Resource::new_own(other), "k".into()).unwrap_err();
    let Error::Denied(message) = error else {
        panic!("expected Denied, got {error:?}");
    };
    assert!(
        message.contains("`kv:read:other/k` is outside the scope `kv:read:counter/**`"),
        "{message}"
    );
    assert_eq!(state.body_runs, 0);
    // `exists` declares the wide scope: the same grant allows it.
    assert_eq!(
        state.exists(Resource::new_own(other), "k".into()),
        Ok(false)
    );
    assert_eq!(state.body_runs, 1);
}

#[test]
fn unknown_handle_is_denied() {
    let mut state = State::new("counter", &["kv:read:**"]);
    let error = state.get(Resource::new_own(42), "k".into()).unwrap_err();
    assert!(
        matches!(&error, Error::Denied(m) if m.contains("unknown `bucket` handle (42)")),
        "{error:?}"
    );
    assert_eq!(state.body_runs, 0);
}

#[test]
fn template_without_key_uses_the_bucket_name() {
    let mut state = State::new("counter", &["kv:list:counter"]);
    let counter = state.bucket("counter");
    let other = state.bucket("other");
    let page = state.list_keys(Resource::new_own(counter), None).unwrap();
    assert!(page.keys.is_empty() && page.next.is_none());
    assert!(matches!(
        state.list_keys(Resource::new_own(other), None),
        Err(Error::Denied(_))
    ));
    assert_eq!(state.body_runs, 1);
}

#[test]
fn unused_variants_exist() {
    // Keeps the error enum shaped like the WIT's.
    for e in [
        Error::InvalidInput(String::new()),
        Error::QuotaExceeded(String::new()),
        Error::Other(String::new()),
    ] {
        assert!(!matches!(e, Error::Denied(_)));
    }
    let mut state = State::new("c", &["kv:delete:c/*"]);
    let b = state.bucket("c");
    assert_eq!(state.delete(Resource::new_own(b), "k".into()), Ok(false));
    assert!(storage::HostBucket::drop(&mut state, Resource::new_own(b)).is_ok());
}
