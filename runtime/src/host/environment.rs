//! `airssys:core/environment`: the variables the policy offers the
//! component (never the host's own environment), filtered by its
//! `env:read` grants.

use airssys_contract::capability::{Action, Domain};
use airssys_macros::host_impl;

use super::bindings::airssys::core::environment::{Error, Host, KeyValue};
use super::state::HostState;

#[host_impl(interface = "airssys:core/environment", crate = "::airssys_contract")]
impl Host for HostState {
    #[host_fn(capability = "env:read")]
    fn get_var(&mut self, name: String) -> wasmtime::Result<Result<Option<String>, Error>> {
        Ok(Ok(self.info.env.get(&name).cloned()))
    }

    fn list_vars(&mut self) -> wasmtime::Result<Result<Vec<KeyValue>, Error>> {
        Ok(Ok(self
            .info
            .env
            .iter()
            .filter(|(k, _)| self.is_granted(Domain::Env, Action::Read, k))
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()))
    }
}
