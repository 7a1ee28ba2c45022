//! A complete storage host: both traits of `airssys:core/storage`, every
//! function guarded where the WIT requires it; compiles under deny(warnings).
#![deny(warnings)]

use airssys::contract::capability::GrantSet;
use airssys::contract::guard::GuardContext;

// The shapes wasmtime `bindgen!` generates for `airssys:core/storage`.
pub struct Resource<T>(u32, std::marker::PhantomData<T>);
impl<T> Resource<T> {
    pub fn rep(&self) -> u32 {
        self.0
    }
}
pub struct Bucket;
pub struct KeyPage {
    pub keys: Vec<String>,
    pub next: Option<String>,
}
pub enum Error {
    Denied(String),
    Other(String),
}
pub mod storage {
    use super::*;
    pub trait Host {
        fn open(&mut self, name: String) -> Result<Resource<Bucket>, Error>;
    }
    pub trait HostBucket {
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

pub struct State(GrantSet);
impl GuardContext for State {
    fn component(&self) -> &str {
        "counter"
    }
    fn grants(&self) -> &GrantSet {
        &self.0
    }
}

#[airssys::host_impl(interface = "airssys:core/storage@1.0.0")]
impl storage::Host for State {
    fn open(&mut self, name: String) -> Result<Resource<Bucket>, Error> {
        Ok(Resource(name.len() as u32, std::marker::PhantomData))
    }
}

#[airssys::host_impl(interface = "airssys:core/storage")]
impl storage::HostBucket for State {
    #[airssys::host_fn(capability = "kv:read:counter/**")]
    fn get(&mut self, self_: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
        let _ = (self_, key);
        Ok(None)
    }

    #[airssys::host_fn(capability = "kv:write:counter/**")]
    fn set(&mut self, _self_: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<(), Error> {
        let _ = (key, value);
        Ok(())
    }

    #[airssys::host_fn(capability = "kv:delete:counter/**")]
    fn delete(&mut self, self_: Resource<Bucket>, key: String) -> Result<bool, Error> {
        let _ = (self_, key);
        Ok(false)
    }

    #[airssys::host_fn(capability = "kv:read:**")]
    fn exists(&mut self, self_: Resource<Bucket>, key: String) -> Result<bool, Error> {
        let _ = (self_, key);
        Ok(false)
    }

    #[airssys::host_fn(capability = "kv:list:counter")]
    fn list_keys(
        &mut self,
        self_: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<KeyPage, Error> {
        let _ = (self_, cursor);
        Ok(KeyPage {
            keys: Vec::new(),
            next: None,
        })
    }

    fn drop(&mut self, rep: Resource<Bucket>) -> Result<(), String> {
        let _ = rep;
        Ok(())
    }
}

fn main() {}
