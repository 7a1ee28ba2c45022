//! The host side of the contract: one file per interface, wired into the
//! linker in [`link`].

pub(crate) mod bindings;
pub(crate) mod budget;
mod capabilities;
mod environment;
pub(crate) mod filesystem;
pub(crate) mod handles;
pub(crate) mod logging;
pub(crate) mod messaging;
mod network;
mod poll;
pub(crate) mod process;
pub(crate) mod state;
pub(crate) mod storage;
mod types;
pub(crate) mod wasi;

pub(crate) use network::{NetComponent, TlsRoots};

use wasmtime::component::{HasSelf, Linker};

use self::state::HostState;

/// Adds WASI (deny-all) and every interface of the contract to `linker`.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasi::link(linker)?;
    bindings::Component::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)
}
