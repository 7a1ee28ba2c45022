//! `airssys:ext/filesystem`: files and directories beneath the host
//! directories the policy mounts (see [`crate::fs`]).
//!
//! Every path function is guarded by `#[airssys::host_fn]` with its
//! `fs:<action>:{path}` capability (a path with `.`, `..` or empty
//! components is an invalid request and so denied), then resolved beneath
//! the component's mounted directory handles without following symlinks.
//! A `file` handle remembers how it was opened: `open-read` handles cannot
//! write, resize or rename; `open-write` and `create` handles are opened
//! write-only unless `fs:read` allows their path (deny rules included),
//! and then cannot read, nor stat without `fs:stat`. A rename also needs
//! `fs:delete` on the source and acts on the opened file only (see
//! [`crate::fs::rename_opened`]). `list-dir` leaves out entries that a deny
//! rule hides (see [`HostState::hidden_by_deny`]). Reads and writes
//! complete when they are started, so `get` on a `pending-read` /
//! `pending-write` never answers `none`, and `subscribe` gives a pollable
//! that is always ready.
//! Open files are resources of the instance: they close when the
//! component drops them or its instance is dropped.

use std::io::{Read, Seek, SeekFrom, Write};

use airssys_contract::capability::{Action, Domain};
use airssys_contract::guard::{Denial, HostFnGuard};
use airssys_macros::host_impl;
use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, OpenOptionsSyncExt};
use cap_std::fs::{Dir, OpenOptions};
use wasmtime::component::Resource;

use super::bindings::airssys::ext::filesystem::{
    DirEntry, EntryKind, Error, Host, HostFile, HostPendingRead, HostPendingWrite, Metadata,
    Pollable,
};
use super::budget::Hold;
use super::state::HostState;
use crate::error::LimitExceeded;
use crate::fs::{FsError, Place, io_error, open_dir, rename_opened, symlink_denied};

/// Largest read served by one `file.read` (a shorter read is normal; the
/// component asks again).
const MAX_READ: u32 = 1024 * 1024;
/// Most entries one `list-dir` returns.
const MAX_LIST: usize = 100_000;

/// How a file was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// `open-read`: read and stat only.
    Read,
    /// `open-write` or `create` on a path `fs:read` also allows: read,
    /// write, resize, rename, stat.
    ReadWrite,
    /// `open-write` or `create` on a path `fs:read` does not allow (no
    /// grant, or a deny rule): opened write-only; write, resize, rename,
    /// and stat when `fs:stat` allows the path.
    WriteOnly,
}

/// What a handle method needs of the handle.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// Reading the contents.
    Read,
    /// Reading the metadata.
    Stat,
    /// Changing the file; the text names the operation for messages.
    Write(&'static str),
}

/// The checks a write handle's methods make beyond the one made when it
/// was opened, named after the method for the audit log.
static READ_THROUGH_WRITE: HostFnGuard = HostFnGuard::new(
    "airssys:ext/filesystem#[method]file.read",
    "fs:read",
    Domain::Fs,
    Action::Read,
);
static STAT_THROUGH_WRITE: HostFnGuard = HostFnGuard::new(
    "airssys:ext/filesystem#[method]file.stat",
    "fs:stat",
    Domain::Fs,
    Action::Stat,
);
static DELETE_RENAMED: HostFnGuard = HostFnGuard::new(
    "airssys:ext/filesystem#[method]file.rename",
    "fs:delete",
    Domain::Fs,
    Action::Delete,
);

/// An open file: the handle and the virtual path it was opened at.
#[derive(Debug)]
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct File {
    path: String,
    file: cap_std::fs::File,
    access: Access,
}

/// A finished read, waiting for `get`. Its bytes count against the
/// instance's `limits.held_bytes` until taken; the resource itself against
/// `limits.max_pending` until dropped.
#[derive(Debug)]
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct PendingRead {
    result: Option<Result<Vec<u8>, FsError>>,
    hold: Hold,
}

/// A finished write, waiting for `get`; counts against
/// `limits.max_pending` until dropped.
#[derive(Debug)]
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct PendingWrite {
    result: Option<Result<u64, FsError>>,
    _hold: Hold,
}

impl From<FsError> for Error {
    fn from(error: FsError) -> Error {
        match error {
            FsError::Denied(m) => Error::Denied(m),
            FsError::NotFound(m) => Error::NotFound(m),
            FsError::AlreadyExists(m) => Error::AlreadyExists(m),
            FsError::InvalidInput(m) => Error::InvalidInput(m),
            FsError::Other(m) => Error::Other(m),
        }
    }
}

impl From<LimitExceeded> for Error {
    fn from(error: LimitExceeded) -> Error {
        Error::QuotaExceeded(error.to_string())
    }
}

fn answer<T>(result: Result<T, FsError>) -> wasmtime::Result<Result<T, Error>> {
    Ok(result.map_err(Error::from))
}

fn taken(what: &str) -> FsError {
    FsError::InvalidInput(format!("the result of this {what} was already taken"))
}

fn kind(file_type: cap_std::fs::FileType) -> EntryKind {
    if file_type.is_file() {
        EntryKind::File
    } else if file_type.is_dir() {
        EntryKind::Directory
    } else {
        EntryKind::Other
    }
}

fn metadata(m: &cap_std::fs::Metadata) -> Metadata {
    let kind = kind(m.file_type());
    let modified_ms = m.modified().ok().and_then(|t| {
        t.into_std()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_millis()).ok())
    });
    Metadata {
        kind,
        size: if kind == EntryKind::Directory {
            0
        } else {
            m.len()
        },
        modified_ms,
    }
}

impl HostState {
    /// Resolves `path` to its parent directory and final name; a mount
    /// root itself (no final name) is refused with `on_root`.
    fn resolve_leaf(
        &self,
        path: &str,
        on_root: fn(&str) -> FsError,
    ) -> Result<(Dir, String), FsError> {
        let resolved = self.info.mounts.resolve(path)?;
        match resolved.leaf {
            Some(leaf) => Ok((resolved.parent, leaf)),
            None => Err(on_root(path)),
        }
    }

    /// How a write handle to `path` is opened: readable only when
    /// `fs:read` allows `path` (deny rules included). The grants of a
    /// loaded component never change, so this holds for the handle's life.
    fn write_access(&self, path: &str) -> Access {
        if self.is_granted(Domain::Fs, Action::Read, path) {
            Access::ReadWrite
        } else {
            Access::WriteOnly
        }
    }

    /// Opens the file at `path` with `options` (never following a
    /// symlink), refusing anything but a regular file.
    ///
    /// The open itself never waits: a FIFO (or a device) put at the path
    /// between the check below and the open would otherwise hold the
    /// call until its other end appears. So it is opened non-blocking,
    /// checked on the handle, and made blocking again (regular files
    /// read and write as before); see docs/decisions/containment-filesystem.md.
    fn open_file(
        &mut self,
        path: String,
        options: &mut OpenOptions,
        access: Access,
    ) -> wasmtime::Result<Result<Resource<File>, Error>> {
        let opened = self
            .resolve_leaf(&path, |p| {
                FsError::InvalidInput(format!("`{p}` is a directory"))
            })
            .and_then(|(parent, leaf)| {
                // A quick refusal of non-files before opening (a FIFO
                // would block the open); re-checked on the handle below.
                if let Ok(m) = parent.symlink_metadata(&leaf) {
                    if m.file_type().is_symlink() {
                        return Err(symlink_denied(&path));
                    }
                    if !m.is_file() {
                        return Err(FsError::InvalidInput(format!(
                            "`{path}` is not a regular file"
                        )));
                    }
                }
                let file = parent
                    .open_with(&leaf, options.follow(FollowSymlinks::No).nonblock(true))
                    .map_err(|e| open_error(&parent, &leaf, &path, &e))?;
                match file.metadata() {
                    Ok(m) if m.is_file() => blocking(file, &path),
                    Ok(_) => Err(FsError::InvalidInput(format!(
                        "`{path}` is not a regular file"
                    ))),
                    Err(e) => Err(FsError::Other(format!("`{path}`: {e}"))),
                }
            });
        match opened {
            Ok(file) => Ok(Ok(self.table.push(File { path, file, access })?)),
            Err(e) => answer(Err(e)),
        }
    }

    /// The open file behind `handle`, refused when the way it was opened
    /// does not allow `need`.
    fn file_for(
        &mut self,
        handle: &Resource<File>,
        need: Need,
    ) -> wasmtime::Result<Result<&mut File, FsError>> {
        let file = self.table.get(handle)?;
        if let Some(refusal) = self.refusal(file, need) {
            return Ok(Err(refusal));
        }
        Ok(Ok(self.table.get_mut(handle)?))
    }

    /// Why `file` may not serve `need`, or `None` when it may.
    fn refusal(&self, file: &File, need: Need) -> Option<FsError> {
        let path = file.path.as_str();
        match (need, file.access) {
            (Need::Write(what), Access::Read) => Some(FsError::Denied(format!(
                "`{path}` was opened with `open-read`, which does not allow {what}; open it \
                 with `open-write` (capability `fs:write:{path}`)"
            ))),
            // The file is open write-only: reading is refused whatever
            // the guard says, and its denial names the deciding rule.
            (Need::Read, Access::WriteOnly) => {
                let why = READ_THROUGH_WRITE
                    .authorize(self, &[path])
                    .err()
                    .map_or_else(
                        || "`fs:read` did not allow it".to_owned(),
                        Denial::into_message,
                    );
                Some(FsError::Denied(format!(
                    "`{path}` was opened for writing only, because reading it is not allowed: \
                     {why}"
                )))
            }
            (Need::Stat, Access::WriteOnly) => STAT_THROUGH_WRITE
                .authorize(self, &[path])
                .err()
                .map(|denial| {
                    FsError::Denied(format!(
                        "`{path}` was opened for writing only, and its metadata needs `fs:read` \
                         or `fs:stat` on it: {}",
                        denial.into_message()
                    ))
                }),
            _ => None,
        }
    }

    /// Whether `list-dir` leaves out the entry at `path`: a deny rule
    /// covers reading, stat'ing or listing it.
    fn entry_hidden(&self, path: &str) -> bool {
        self.hidden_by_deny(
            Domain::Fs,
            &[Action::Read, Action::Stat, Action::List],
            path,
        )
    }
}

/// Why opening `leaf` failed; a FIFO opened for writing with no reader
/// (`ENXIO` under `O_NONBLOCK`) is refused as what it is.
fn open_error(parent: &Dir, leaf: &str, path: &str, error: &std::io::Error) -> FsError {
    #[cfg(unix)]
    if error.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) {
        return FsError::InvalidInput(format!("`{path}` is not a regular file"));
    }
    io_error(parent, leaf, path, error)
}

/// `file` (a regular file opened non-blocking) with `O_NONBLOCK` cleared,
/// so its reads and writes behave as a plain open's.
fn blocking(file: cap_std::fs::File, path: &str) -> Result<cap_std::fs::File, FsError> {
    #[cfg(unix)]
    {
        use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
        fcntl_getfl(&file)
            .and_then(|flags| fcntl_setfl(&file, flags - OFlags::NONBLOCK))
            .map_err(|e| FsError::Other(format!("`{path}`: cannot clear O_NONBLOCK: {e}")))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(file)
}

fn read_at(file: &mut File, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
    let io = |e: std::io::Error| FsError::Other(format!("reading `{}`: {e}", file.path));
    let mut f = &file.file;
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(u64::from(len)).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

fn write_at(file: &mut File, offset: u64, data: &[u8]) -> Result<u64, FsError> {
    let io = |e: std::io::Error| FsError::Other(format!("writing `{}`: {e}", file.path));
    let mut f = &file.file;
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    f.write_all(data).map_err(io)?;
    Ok(data.len() as u64)
}

impl HostPendingRead for HostState {
    fn subscribe(&mut self, self_: Resource<PendingRead>) -> wasmtime::Result<Resource<Pollable>> {
        // Reads complete when started: `get` never answers `none`.
        self.table.get(&self_)?;
        Ok(self.table.push(Pollable::ready_now())?)
    }
    fn get(
        &mut self,
        self_: Resource<PendingRead>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let pending = self.table.get_mut(&self_)?;
        let result = pending.result.take();
        // Handed to the guest: its memory limit counts the bytes now.
        pending.hold.release_bytes();
        answer(result.unwrap_or_else(|| Err(taken("read"))).map(Some))
    }
    fn drop(&mut self, rep: Resource<PendingRead>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl HostPendingWrite for HostState {
    fn subscribe(&mut self, self_: Resource<PendingWrite>) -> wasmtime::Result<Resource<Pollable>> {
        // Writes complete when started: `get` never answers `none`.
        self.table.get(&self_)?;
        Ok(self.table.push(Pollable::ready_now())?)
    }
    fn get(
        &mut self,
        self_: Resource<PendingWrite>,
    ) -> wasmtime::Result<Result<Option<u64>, Error>> {
        let pending = self.table.get_mut(&self_)?;
        answer(
            pending
                .result
                .take()
                .unwrap_or_else(|| Err(taken("write")))
                .map(Some),
        )
    }
    fn drop(&mut self, rep: Resource<PendingWrite>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

#[host_impl(interface = "airssys:ext/filesystem", crate = "::airssys_contract")]
impl HostFile for HostState {
    fn read(
        &mut self,
        self_: Resource<File>,
        offset: u64,
        len: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        let len = len.min(MAX_READ);
        let mut hold = match self.budget.reserve(u64::from(len)) {
            Ok(hold) => hold,
            Err(limit) => return Ok(Err(limit.into())),
        };
        let result = match self.file_for(&self_, Need::Read)? {
            Ok(file) => read_at(file, offset, len),
            Err(e) => Err(e),
        };
        hold.shrink_to(result.as_ref().map_or(0, |b| b.len() as u64));
        Ok(self
            .push(PendingRead {
                result: Some(result),
                hold,
            })?
            .map_err(Error::from))
    }

    fn write(
        &mut self,
        self_: Resource<File>,
        offset: u64,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<PendingWrite>, Error>> {
        let hold = match self.budget.reserve(0) {
            Ok(hold) => hold,
            Err(limit) => return Ok(Err(limit.into())),
        };
        let file = match self.file_for(&self_, Need::Write("writing"))? {
            Ok(file) => file,
            Err(e) => return answer(Err(e)),
        };
        let result = write_at(file, offset, &data);
        Ok(self
            .push(PendingWrite {
                result: Some(result),
                _hold: hold,
            })?
            .map_err(Error::from))
    }

    fn set_size(
        &mut self,
        self_: Resource<File>,
        size: u64,
    ) -> wasmtime::Result<Result<(), Error>> {
        answer(
            self.file_for(&self_, Need::Write("resizing"))?
                .and_then(|file| {
                    file.file
                        .set_len(size)
                        .map_err(|e| FsError::Other(format!("resizing `{}`: {e}", file.path)))
                }),
        )
    }

    fn stat(&mut self, self_: Resource<File>) -> wasmtime::Result<Result<Metadata, Error>> {
        answer(self.file_for(&self_, Need::Stat)?.and_then(|file| {
            file.file
                .metadata()
                .map(|m| metadata(&m))
                .map_err(|e| FsError::Other(format!("`{}`: {e}", file.path)))
        }))
    }

    #[host_fn(capability = "fs:create")]
    fn rename(&mut self, self_: Resource<File>, to: String) -> wasmtime::Result<Result<(), Error>> {
        let from = match self.file_for(&self_, Need::Write("renaming"))? {
            Ok(file) => file.path.clone(),
            Err(e) => return answer(Err(e)),
        };
        // The source loses its name: that is a delete of `from`.
        if let Err(denial) = DELETE_RENAMED.authorize(self, &[&from]) {
            return answer(Err(FsError::Denied(format!(
                "renaming `{from}` removes it from there, which needs `fs:delete` on it: {}",
                denial.into_message()
            ))));
        }
        let on_root = |p: &str| FsError::InvalidInput(format!("`{p}` is a mounted root"));
        let moved = self
            .resolve_leaf(&from, on_root)
            .and_then(|(from_dir, from_leaf)| {
                let (to_dir, to_leaf) = self.resolve_leaf(&to, on_root)?;
                let opened = &self
                    .table
                    .get(&self_)
                    .map_err(|e| FsError::Other(e.to_string()))?
                    .file;
                rename_opened(
                    opened,
                    Place {
                        dir: &from_dir,
                        name: &from_leaf,
                        path: &from,
                    },
                    Place {
                        dir: &to_dir,
                        name: &to_leaf,
                        path: &to,
                    },
                )
            });
        if moved.is_ok() {
            self.table.get_mut(&self_)?.path = to;
        }
        answer(moved)
    }

    fn drop(&mut self, rep: Resource<File>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

#[host_impl(interface = "airssys:ext/filesystem", crate = "::airssys_contract")]
impl Host for HostState {
    #[host_fn(capability = "fs:read")]
    fn open_read(&mut self, path: String) -> wasmtime::Result<Result<Resource<File>, Error>> {
        self.open_file(path, OpenOptions::new().read(true), Access::Read)
    }

    #[host_fn(capability = "fs:write")]
    fn open_write(&mut self, path: String) -> wasmtime::Result<Result<Resource<File>, Error>> {
        let access = self.write_access(&path);
        self.open_file(
            path,
            OpenOptions::new()
                .read(access == Access::ReadWrite)
                .write(true),
            access,
        )
    }

    #[host_fn(capability = "fs:create")]
    fn create(&mut self, path: String) -> wasmtime::Result<Result<Resource<File>, Error>> {
        let access = self.write_access(&path);
        let created = self
            .resolve_leaf(&path, |p| {
                FsError::AlreadyExists(format!("`{p}` is a mounted root"))
            })
            .and_then(|(parent, leaf)| {
                parent
                    .open_with(
                        &leaf,
                        OpenOptions::new()
                            .read(access == Access::ReadWrite)
                            .write(true)
                            .create_new(true)
                            .follow(FollowSymlinks::No),
                    )
                    .map_err(|e| io_error(&parent, &leaf, &path, &e))
            });
        match created {
            Ok(file) => Ok(Ok(self.table.push(File { path, file, access })?)),
            Err(e) => answer(Err(e)),
        }
    }

    #[host_fn(capability = "fs:stat")]
    fn stat(&mut self, path: String) -> wasmtime::Result<Result<Metadata, Error>> {
        answer(self.info.mounts.resolve(&path).and_then(|r| {
            match &r.leaf {
                Some(leaf) => r
                    .parent
                    .symlink_metadata(leaf)
                    .map(|m| metadata(&m))
                    .map_err(|e| io_error(&r.parent, leaf, &path, &e)),
                None => r
                    .parent
                    .dir_metadata()
                    .map(|m| metadata(&m))
                    .map_err(|e| FsError::Other(format!("`{path}`: {e}"))),
            }
        }))
    }

    #[host_fn(capability = "fs:list")]
    fn list_dir(&mut self, path: String) -> wasmtime::Result<Result<Vec<DirEntry>, Error>> {
        answer(self.info.mounts.resolve(&path).and_then(|r| {
            let dir = match &r.leaf {
                Some(leaf) => open_dir(&r.parent, leaf, &path)?,
                None => r.parent,
            };
            let io = |e: std::io::Error| FsError::Other(format!("listing `{path}`: {e}"));
            let mut entries = Vec::new();
            // The virtual path of each entry, built in one buffer.
            let mut entry_path = path.trim_end_matches('/').to_owned();
            entry_path.push('/');
            let base = entry_path.len();
            for entry in dir.entries().map_err(io)? {
                let entry = entry.map_err(io)?;
                // Names that are not UTF-8 cannot be named in a request.
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                entry_path.truncate(base);
                entry_path.push_str(&name);
                if self.entry_hidden(&entry_path) {
                    continue;
                }
                let kind = entry.file_type().map_or(EntryKind::Other, kind);
                if entries.len() == MAX_LIST {
                    return Err(FsError::Other(format!(
                        "`{path}` holds more than {MAX_LIST} entries"
                    )));
                }
                entries.push(DirEntry { name, kind });
            }
            Ok(entries)
        }))
    }

    #[host_fn(capability = "fs:create")]
    fn create_dir(&mut self, path: String) -> wasmtime::Result<Result<(), Error>> {
        answer(
            self.resolve_leaf(&path, |p| {
                FsError::AlreadyExists(format!("`{p}` is a mounted root"))
            })
            .and_then(|(parent, leaf)| {
                parent
                    .create_dir(&leaf)
                    .map_err(|e| io_error(&parent, &leaf, &path, &e))
            }),
        )
    }

    #[host_fn(capability = "fs:delete")]
    fn remove(&mut self, path: String) -> wasmtime::Result<Result<(), Error>> {
        answer(
            self.resolve_leaf(&path, |p| {
                FsError::Denied(format!("`{p}` is a mounted root and cannot be removed"))
            })
            .and_then(|(parent, leaf)| {
                let m = parent
                    .symlink_metadata(&leaf)
                    .map_err(|e| io_error(&parent, &leaf, &path, &e))?;
                let removed = if m.is_dir() {
                    parent.remove_dir(&leaf)
                } else {
                    // Removes a symlink itself, never its target.
                    parent.remove_file_or_symlink(&leaf)
                };
                removed.map_err(|e| io_error(&parent, &leaf, &path, &e))
            }),
        )
    }
}
