//! `airssys:core/messaging`: checked, not served yet (run time part 2).
//! `publish` and `request` run their `msg` capability check, then answer
//! `other("not supported yet")`.

use airssys_macros::host_impl;
use wasmtime::component::Resource;

use super::bindings::airssys::core::messaging::{
    ComponentName, Error, Host, HostPendingReply, PendingReply, Pollable,
};
use super::state::HostState;
use super::unsupported::{no_such_handle, not_supported};

impl HostPendingReply for HostState {
    fn subscribe(
        &mut self,
        _self_: Resource<PendingReply>,
    ) -> wasmtime::Result<Resource<Pollable>> {
        no_such_handle("pending-reply")
    }

    fn get(
        &mut self,
        _self_: Resource<PendingReply>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(Err(Error::Other(not_supported("pending-reply.get"))))
    }

    fn drop(&mut self, _rep: Resource<PendingReply>) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[host_impl(interface = "airssys:core/messaging", crate = "::airssys_contract")]
impl Host for HostState {
    #[host_fn(capability = "msg:publish")]
    fn publish(&mut self, topic: String, payload: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        let _ = (topic, payload);
        Ok(Err(Error::Other(not_supported("messaging.publish"))))
    }

    #[host_fn(capability = "msg:request")]
    fn request(
        &mut self,
        component: String,
        payload: Vec<u8>,
        timeout_ms: u64,
    ) -> wasmtime::Result<Result<Resource<PendingReply>, Error>> {
        let _ = (component, payload, timeout_ms);
        Ok(Err(Error::Other(not_supported("messaging.request"))))
    }

    fn self_name(&mut self) -> wasmtime::Result<ComponentName> {
        Ok(self.name().to_owned())
    }
}
