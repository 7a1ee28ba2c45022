//! `airssys:ext/process`: checked, not served yet (run time part 2).
//! `spawn` runs its `proc:spawn` capability check, then answers
//! `other("not supported yet")`; no child is ever created.

use wasmtime::component::Resource;

use super::bindings::airssys::ext::process::{
    Child, Error, ExitStatus, Host, HostChild, HostPendingExit, HostPendingRead, KeyValue,
    PendingExit, PendingRead, Pollable, Signal,
};
use super::state::HostState;
use super::unsupported::{no_such_handle, not_supported, refusal_into};

const INTERFACE: &str = "airssys:ext/process";

refusal_into!(Error);

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl HostPendingExit for HostState {
    fn subscribe(&mut self, _: Resource<PendingExit>) -> wasmtime::Result<Resource<Pollable>> {
        no_such_handle("pending-exit")
    }
    fn get(&mut self, _: Resource<PendingExit>) -> Outcome<Option<ExitStatus>> {
        Ok(Err(Error::Other(not_supported("pending-exit"))))
    }
    fn drop(&mut self, _: Resource<PendingExit>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl HostPendingRead for HostState {
    fn subscribe(&mut self, _: Resource<PendingRead>) -> wasmtime::Result<Resource<Pollable>> {
        no_such_handle("pending-read")
    }
    fn get(&mut self, _: Resource<PendingRead>) -> Outcome<Option<Vec<u8>>> {
        Ok(Err(Error::Other(not_supported("pending-read"))))
    }
    fn drop(&mut self, _: Resource<PendingRead>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl HostChild for HostState {
    fn wait(&mut self, _: Resource<Child>) -> Outcome<Resource<PendingExit>> {
        Ok(Err(Error::Other(not_supported("child"))))
    }
    fn send_signal(&mut self, _: Resource<Child>, _signal: Signal) -> Outcome<()> {
        Ok(Err(Error::Other(not_supported("child"))))
    }
    fn read_stdout(&mut self, _: Resource<Child>, _max: u32) -> Outcome<Resource<PendingRead>> {
        Ok(Err(Error::Other(not_supported("child"))))
    }
    fn read_stderr(&mut self, _: Resource<Child>, _max: u32) -> Outcome<Resource<PendingRead>> {
        Ok(Err(Error::Other(not_supported("child"))))
    }
    fn drop(&mut self, _: Resource<Child>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl Host for HostState {
    fn spawn(&mut self, program: String, _args: Vec<String>, _env: Vec<KeyValue>) -> Outcome<Resource<Child>> {
        Ok(Err(self.unsupported(INTERFACE, "spawn", &[("program", &program)]).into()))
    }
}
