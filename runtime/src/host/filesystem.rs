//! `airssys:ext/filesystem`: checked, not served yet (run time part 2).
//! Each function runs its `fs` capability check, then answers
//! `other("not supported yet")`; no file handle is ever created.

use airssys_macros::host_impl;
use wasmtime::component::Resource;

use super::bindings::airssys::ext::filesystem::{
    DirEntry, Error, File, Host, HostFile, HostPendingRead, HostPendingWrite, Metadata,
    PendingRead, PendingWrite, Pollable,
};
use super::state::HostState;
use super::unsupported::{no_such_handle, not_supported};

fn unsupported<T>(function: &str) -> wasmtime::Result<Result<T, Error>> {
    Ok(Err(Error::Other(not_supported(function))))
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

impl HostPendingWrite for HostState {
    fn subscribe(
        &mut self,
        _self_: Resource<PendingWrite>,
    ) -> wasmtime::Result<Resource<Pollable>> {
        no_such_handle("pending-write")
    }
    fn get(
        &mut self,
        _self_: Resource<PendingWrite>,
    ) -> wasmtime::Result<Result<Option<u64>, Error>> {
        unsupported("pending-write.get")
    }
    fn drop(&mut self, _rep: Resource<PendingWrite>) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[host_impl(interface = "airssys:ext/filesystem", crate = "::airssys_contract")]
impl HostFile for HostState {
    fn read(
        &mut self,
        _self_: Resource<File>,
        _offset: u64,
        _len: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        unsupported("file.read")
    }
    fn write(
        &mut self,
        _self_: Resource<File>,
        _offset: u64,
        _data: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<PendingWrite>, Error>> {
        unsupported("file.write")
    }
    fn set_size(
        &mut self,
        _self_: Resource<File>,
        _size: u64,
    ) -> wasmtime::Result<Result<(), Error>> {
        unsupported("file.set-size")
    }
    fn stat(&mut self, _self_: Resource<File>) -> wasmtime::Result<Result<Metadata, Error>> {
        unsupported("file.stat")
    }
    #[host_fn(capability = "fs:create")]
    fn rename(&mut self, self_: Resource<File>, to: String) -> wasmtime::Result<Result<(), Error>> {
        let _ = (self_, to);
        unsupported("file.rename")
    }
    fn drop(&mut self, _rep: Resource<File>) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[host_impl(interface = "airssys:ext/filesystem", crate = "::airssys_contract")]
impl Host for HostState {
    #[host_fn(capability = "fs:read")]
    fn open_read(&mut self, path: String) -> wasmtime::Result<Result<Resource<File>, Error>> {
        let _ = path;
        unsupported("filesystem.open-read")
    }
    #[host_fn(capability = "fs:write")]
    fn open_write(&mut self, path: String) -> wasmtime::Result<Result<Resource<File>, Error>> {
        let _ = path;
        unsupported("filesystem.open-write")
    }
    #[host_fn(capability = "fs:create")]
    fn create(&mut self, path: String) -> wasmtime::Result<Result<Resource<File>, Error>> {
        let _ = path;
        unsupported("filesystem.create")
    }
    #[host_fn(capability = "fs:stat")]
    fn stat(&mut self, path: String) -> wasmtime::Result<Result<Metadata, Error>> {
        let _ = path;
        unsupported("filesystem.stat")
    }
    #[host_fn(capability = "fs:list")]
    fn list_dir(&mut self, path: String) -> wasmtime::Result<Result<Vec<DirEntry>, Error>> {
        let _ = path;
        unsupported("filesystem.list-dir")
    }
    #[host_fn(capability = "fs:create")]
    fn create_dir(&mut self, path: String) -> wasmtime::Result<Result<(), Error>> {
        let _ = path;
        unsupported("filesystem.create-dir")
    }
    #[host_fn(capability = "fs:delete")]
    fn remove(&mut self, path: String) -> wasmtime::Result<Result<(), Error>> {
        let _ = path;
        unsupported("filesystem.remove")
    }
}
