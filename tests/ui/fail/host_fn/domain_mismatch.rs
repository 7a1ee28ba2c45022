// One mistake: `get` requires `kv:read`, not `fs:read`.

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

#[airssys::host_impl(interface = "airssys:core/storage")]
impl storage::HostBucket for State {
    #[airssys::host_fn(capability = "fs:read:/data/**")]
    fn get(&mut self, self_: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
        let _ = (self_, key);
        Ok(None)
    }

    #[airssys::host_fn(capability = "kv:write:counter/**")]
    fn set(&mut self, self_: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<(), Error> {
        let _ = (self_, key, value);
        Err(Error::Other(String::new()))
    }
}

fn main() {}
