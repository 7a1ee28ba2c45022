//! `airssys:core/messaging`: checked, not served yet (run time part 2).
//! `publish` and `request` run the `msg` capability check, then answer
//! `other("not supported yet")`.

use wasmtime::component::Resource;

use super::bindings::airssys::core::messaging::{Error, Host, HostPendingReply, PendingReply, Pollable};
use super::state::HostState;
use super::unsupported::{no_such_handle, not_supported, refusal_into};

const INTERFACE: &str = "airssys:core/messaging";

refusal_into!(Error);

impl HostPendingReply for HostState {
    fn subscribe(&mut self, _reply: Resource<PendingReply>) -> wasmtime::Result<Resource<Pollable>> {
        no_such_handle("pending-reply")
    }

    fn get(&mut self, _reply: Resource<PendingReply>) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(Err(Error::Other(not_supported("pending-reply"))))
    }

    fn drop(&mut self, _reply: Resource<PendingReply>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl Host for HostState {
    fn publish(&mut self, topic: String, _payload: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        Ok(Err(self.unsupported(INTERFACE, "publish", &[("topic", &topic)]).into()))
    }

    fn request(
        &mut self,
        component: String,
        _payload: Vec<u8>,
        _timeout_ms: u64,
    ) -> wasmtime::Result<Result<Resource<PendingReply>, Error>> {
        Ok(Err(self
            .unsupported(INTERFACE, "request", &[("component", &component)])
            .into()))
    }

    fn self_name(&mut self) -> wasmtime::Result<String> {
        Ok(self.name().to_owned())
    }
}
