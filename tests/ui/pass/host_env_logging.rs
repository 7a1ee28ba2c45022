//! Free functions (`Host` traits) of `airssys:core/environment` and
//! `airssys:core/logging`: the interface inferred from the trait's module,
//! trappable results (`wasmtime::Result<Result<T, E>>`), a template without
//! a resource (`log:write`), and an explicit `crate` path.
#![deny(warnings)]

use airssys::contract::capability::GrantSet;
use airssys::contract::guard::GuardContext;

/// Stands in for the `wasmtime` crate.
pub mod wasmtime {
    pub type Result<T> = std::result::Result<T, String>;
}

pub mod types {
    pub struct KeyValue {
        pub key: String,
        pub value: String,
    }
}

pub mod environment {
    pub use super::types::KeyValue;
    #[derive(Debug)]
    pub enum Error {
        Denied(String),
        Other(String),
    }
    pub trait Host {
        fn get_var(
            &mut self,
            name: String,
        ) -> crate::wasmtime::Result<Result<Option<String>, Error>>;
        fn list_vars(&mut self) -> crate::wasmtime::Result<Result<Vec<KeyValue>, Error>>;
    }
}

pub mod logging {
    #[derive(Clone, Copy)]
    pub enum Level {
        Info,
    }
    #[derive(Debug)]
    pub enum Error {
        Denied(String),
        Other(String),
    }
    pub trait Host {
        fn enabled(&mut self, level: Level) -> bool;
        fn log(&mut self, level: Level, target: String, message: String) -> Result<(), Error>;
    }
}

pub struct State {
    grants: GrantSet,
    lines: Vec<String>,
}

impl GuardContext for State {
    fn component(&self) -> &str {
        "app"
    }
    fn grants(&self) -> &GrantSet {
        &self.grants
    }
}

#[airssys::host_impl]
impl environment::Host for State {
    #[airssys::host_fn(capability = "env:read:APP_*")]
    fn get_var(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Option<String>, environment::Error>> {
        Ok(Ok(std::env::var(name).ok()))
    }

    fn list_vars(&mut self) -> wasmtime::Result<Result<Vec<types::KeyValue>, environment::Error>> {
        Ok(Err(environment::Error::Other("not listed".into())))
    }
}

#[airssys::host_impl(
    interface = "airssys:core/logging",
    crate = "::airssys::__private::contract"
)]
impl logging::Host for State {
    fn enabled(&mut self, level: logging::Level) -> bool {
        matches!(level, logging::Level::Info)
    }

    #[airssys::host_fn(capability = "log:write")]
    fn log(
        &mut self,
        _level: logging::Level,
        target: String,
        message: String,
    ) -> Result<(), logging::Error> {
        self.lines.push(format!("{target}: {message}"));
        Ok(())
    }
}

fn main() {
    use environment::Host as _;
    use logging::Host as _;
    let mut state = State {
        grants: GrantSet::new([], []),
        lines: Vec::new(),
    };
    assert!(matches!(
        state.get_var("APP_HOME".into()),
        Ok(Err(environment::Error::Denied(_)))
    ));
    assert!(matches!(
        state.log(logging::Level::Info, "t".into(), "m".into()),
        Err(logging::Error::Denied(_))
    ));
    assert!(state.enabled(logging::Level::Info) && state.lines.is_empty());
    let _ = state.list_vars();
    let kv = types::KeyValue {
        key: String::new(),
        value: String::new(),
    };
    let _ = (kv.key, kv.value);
}
