//! Shared pieces of the interfaces this host does not serve yet
//! (messaging, poll, filesystem, network, process): their guarded
//! functions run the capability check (from `#[airssys::host_fn]`), then
//! answer `other("not supported yet")`; their handles are never created,
//! so a method that would have to return a new handle is a trap.

/// The trap for a method on a handle this host never creates.
pub(crate) fn no_such_handle<T>(resource: &str) -> wasmtime::Result<T> {
    Err(wasmtime::format_err!(
        "no `{resource}` handle exists: this host does not create `{resource}` handles yet"
    ))
}

/// The `other` text of a function this host does not serve yet.
pub(crate) fn not_supported(function: &str) -> String {
    format!("`{function}` is not supported by this host yet; the component may not rely on it")
}
