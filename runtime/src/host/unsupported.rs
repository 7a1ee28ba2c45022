//! Shared pieces of the interfaces this host does not serve yet
//! (messaging, poll, filesystem, network, process): their factories run
//! the capability check, then answer `other("not supported yet")`; their
//! handles are never created, so a method call on one is a trap.

/// The trap for a method on a handle this host never creates.
pub(crate) fn no_such_handle<T>(resource: &str) -> wasmtime::Result<T> {
    Err(wasmtime::format_err!(
        "no `{resource}` handle exists: this host does not create `{resource}` handles yet"
    ))
}

/// The `other` answer of a method on a handle this host never creates.
pub(crate) fn not_supported(resource: &str) -> String {
    format!("`{resource}` handles are not supported by this host yet")
}

/// Implements `From<Refusal>` for an interface's error type.
macro_rules! refusal_into {
    ($error:path) => {
        impl From<$crate::host::state::Refusal> for $error {
            fn from(refusal: $crate::host::state::Refusal) -> $error {
                use $error as E;
                match refusal {
                    $crate::host::state::Refusal::Denied(m) => E::Denied(m),
                    $crate::host::state::Refusal::Unsupported(m) => E::Other(m),
                }
            }
        }
    };
}
pub(crate) use refusal_into;
