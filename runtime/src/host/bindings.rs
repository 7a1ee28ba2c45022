//! Host bindings generated from the contract's `airssys:ext/component`
//! world: every imported interface (core and ext) plus the `lifecycle` and
//! `handler` exports.

#![allow(missing_docs, unreachable_pub, unsafe_code, clippy::all)]

wasmtime::component::bindgen!({
    world: "airssys:ext/component",
    path: "../wit",
    imports: { default: trappable },
    with: {
        "airssys:core/storage.bucket": crate::host::storage::Bucket,
    },
});
