//! `airssys:core/poll`: no operation of this host is asynchronous yet, so
//! no pollable is ever created.

use wasmtime::component::Resource;

use super::bindings::airssys::core::poll::{Error, Host, HostPollable, Pollable};
use super::state::HostState;
use super::unsupported::no_such_handle;

impl HostPollable for HostState {
    fn ready(&mut self, _pollable: Resource<Pollable>) -> wasmtime::Result<bool> {
        no_such_handle("pollable")
    }

    fn drop(&mut self, _pollable: Resource<Pollable>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl Host for HostState {
    fn poll(
        &mut self,
        targets: Vec<Resource<Pollable>>,
        _timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<u32>, Error>> {
        if targets.is_empty() {
            return Ok(Err(Error::InvalidInput(
                "`poll` needs at least one pollable".into(),
            )));
        }
        no_such_handle("pollable")
    }
}
