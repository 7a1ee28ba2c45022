//! `airssys:ext/filesystem`: checked, not served yet (run time part 2).
//! Each factory runs its `fs` capability check, then answers
//! `other("not supported yet")`; no file handle is ever created.

use wasmtime::component::Resource;

use super::bindings::airssys::ext::filesystem::{
    DirEntry, Error, File, Host, HostFile, HostPendingRead, HostPendingWrite, Metadata, PendingRead,
    PendingWrite, Pollable,
};
use super::state::HostState;
use super::unsupported::{no_such_handle, not_supported, refusal_into};

const INTERFACE: &str = "airssys:ext/filesystem";

refusal_into!(Error);

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl HostState {
    fn fs(&self, function: &str, path: &str) -> Error {
        self.unsupported(INTERFACE, function, &[("path", path)]).into()
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

impl HostPendingWrite for HostState {
    fn subscribe(&mut self, _: Resource<PendingWrite>) -> wasmtime::Result<Resource<Pollable>> {
        no_such_handle("pending-write")
    }
    fn get(&mut self, _: Resource<PendingWrite>) -> Outcome<Option<u64>> {
        Ok(Err(Error::Other(not_supported("pending-write"))))
    }
    fn drop(&mut self, _: Resource<PendingWrite>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl HostFile for HostState {
    fn read(&mut self, _: Resource<File>, _offset: u64, _len: u32) -> Outcome<Resource<PendingRead>> {
        Ok(Err(Error::Other(not_supported("file"))))
    }
    fn write(&mut self, _: Resource<File>, _offset: u64, _data: Vec<u8>) -> Outcome<Resource<PendingWrite>> {
        Ok(Err(Error::Other(not_supported("file"))))
    }
    fn set_size(&mut self, _: Resource<File>, _size: u64) -> Outcome<()> {
        Ok(Err(Error::Other(not_supported("file"))))
    }
    fn stat(&mut self, _: Resource<File>) -> Outcome<Metadata> {
        Ok(Err(Error::Other(not_supported("file"))))
    }
    fn rename(&mut self, _: Resource<File>, _to: String) -> Outcome<()> {
        Ok(Err(Error::Other(not_supported("file"))))
    }
    fn drop(&mut self, _: Resource<File>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl Host for HostState {
    fn open_read(&mut self, path: String) -> Outcome<Resource<File>> {
        Ok(Err(self.fs("open-read", &path)))
    }
    fn open_write(&mut self, path: String) -> Outcome<Resource<File>> {
        Ok(Err(self.fs("open-write", &path)))
    }
    fn create(&mut self, path: String) -> Outcome<Resource<File>> {
        Ok(Err(self.fs("create", &path)))
    }
    fn stat(&mut self, path: String) -> Outcome<Metadata> {
        Ok(Err(self.fs("stat", &path)))
    }
    fn list_dir(&mut self, path: String) -> Outcome<Vec<DirEntry>> {
        Ok(Err(self.fs("list-dir", &path)))
    }
    fn create_dir(&mut self, path: String) -> Outcome<()> {
        Ok(Err(self.fs("create-dir", &path)))
    }
    fn remove(&mut self, path: String) -> Outcome<()> {
        Ok(Err(self.fs("remove", &path)))
    }
}
