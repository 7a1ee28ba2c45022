// Shared scaffolding of the `fail/host_fn/` cases, pulled in with
// `include!("support/host_scaffold.rs");` so each case shows only its one
// mistake. Not a case itself: the harness globs `pass/*.rs` and
// `fail/*/*.rs`, which does not reach `fail/host_fn/support/`.
// `wrong_trait.rs` keeps its own copy: its mistake is the name of the bucket
// trait, which it must declare itself.

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
