//! Host bindings generated from the contract's `airssys:ext/component`
//! world: every imported interface (core and ext) plus the `lifecycle` and
//! `handler` exports.

#![allow(missing_docs, unreachable_pub, unsafe_code, clippy::all)]

wasmtime::component::bindgen!({
    world: "airssys:ext/component",
    // `runtime/wit/` is a copy of the repository's `wit/` (the package carries
    // what it compiles; `tests/wit_copies.rs` keeps the copy equal).
    path: "wit",
    imports: { default: trappable },
    with: {
        "airssys:core/storage.bucket": crate::host::storage::Bucket,
        "airssys:ext/filesystem.file": crate::host::filesystem::File,
        "airssys:ext/filesystem.pending-read": crate::host::filesystem::PendingRead,
        "airssys:ext/filesystem.pending-write": crate::host::filesystem::PendingWrite,
        "airssys:ext/process.child": crate::host::process::Child,
        "airssys:ext/process.pending-exit": crate::host::process::PendingExit,
        "airssys:ext/process.pending-read": crate::host::process::PendingRead,
        "airssys:core/messaging.pending-reply": crate::host::messaging::PendingReplyState,
        "airssys:core/poll.pollable": crate::host::poll::Pollable,
    },
});
