//! `airssys:ext/process`: checked, not served yet (run time part 2).
//! `spawn` runs its `proc:spawn` capability check, then answers
//! `other("not supported yet")`; no child is ever created.

use airssys_macros::host_impl;
use wasmtime::component::Resource;

use super::bindings::airssys::ext::process::{
    Child, Error, ExitStatus, Host, HostChild, HostPendingExit, HostPendingRead, KeyValue,
    PendingExit, PendingRead, Pollable, Signal,
};
use super::state::HostState;
use super::unsupported::{no_such_handle, not_supported};

fn unsupported<T>(function: &str) -> wasmtime::Result<Result<T, Error>> {
    Ok(Err(Error::Other(not_supported(function))))
}

impl HostPendingExit for HostState {
    fn subscribe(&mut self, _self_: Resource<PendingExit>) -> wasmtime::Result<Resource<Pollable>> {
        no_such_handle("pending-exit")
    }
    fn get(
        &mut self,
        _self_: Resource<PendingExit>,
    ) -> wasmtime::Result<Result<Option<ExitStatus>, Error>> {
        unsupported("pending-exit.get")
    }
    fn drop(&mut self, _rep: Resource<PendingExit>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl HostPendingRead for HostState {
    fn subscribe(&mut self, _self_: Resource<PendingRead>) -> wasmtime::Result<Resource<Pollable>> {
        no_such_handle("pending-read")
    }
    fn get(
        &mut self,
        _self_: Resource<PendingRead>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        unsupported("pending-read.get")
    }
    fn drop(&mut self, _rep: Resource<PendingRead>) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[host_impl(interface = "airssys:ext/process", crate = "::airssys_contract")]
impl HostChild for HostState {
    fn wait(
        &mut self,
        _self_: Resource<Child>,
    ) -> wasmtime::Result<Result<Resource<PendingExit>, Error>> {
        unsupported("child.wait")
    }
    #[host_fn(capability = "proc:signal")]
    fn send_signal(
        &mut self,
        self_: Resource<Child>,
        signal: Signal,
    ) -> wasmtime::Result<Result<(), Error>> {
        let _ = (self_, signal);
        unsupported("child.send-signal")
    }
    fn read_stdout(
        &mut self,
        _self_: Resource<Child>,
        _max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        unsupported("child.read-stdout")
    }
    fn read_stderr(
        &mut self,
        _self_: Resource<Child>,
        _max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        unsupported("child.read-stderr")
    }
    fn drop(&mut self, _rep: Resource<Child>) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[host_impl(interface = "airssys:ext/process", crate = "::airssys_contract")]
impl Host for HostState {
    #[host_fn(capability = "proc:spawn")]
    fn spawn(
        &mut self,
        program: String,
        args: Vec<String>,
        env: Vec<KeyValue>,
    ) -> wasmtime::Result<Result<Resource<Child>, Error>> {
        let _ = (program, args, env);
        unsupported("process.spawn")
    }
}
