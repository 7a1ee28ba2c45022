//! Procedural macros of airssys.
//!
//! The entry points here only chain stages; parsing, checking against the
//! WIT contract and expansion live in plain modules that unit tests reach
//! through `proc-macro2`. Both halves read their arguments with `attr`
//! (darling), report into the one `errors` sink, load the contract through
//! `contract_source` and read capability literals through
//! `capability_literal`.

mod attr;
mod capability_literal;
mod component;
mod contract_source;
mod errors;
mod host;
mod markers;
mod timing;

/// Declares a WebAssembly component and the capabilities it needs.
///
/// Generates the guest bindings of the selected WIT world, a `host` module
/// whose functions are gated by the declared capabilities, a `guest` module
/// with the export traits to implement, and the permission manifest (as
/// `airssys::Component` and as the `airssys:manifest` custom section).
/// See `docs/component-guide.md`.
#[proc_macro_attribute]
pub fn component(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    let out = component::expand(args.into(), item.into());
    timing::stage("component: to proc_macro", || out.into())
}

/// Marks an impl of a host trait generated from the contract
/// (`impl storage::Host for State`, `impl storage::HostBucket for State`)
/// whose methods are checked against the WIT and guarded.
///
/// Arguments: `interface = "airssys:core/storage"` (inferred from the
/// trait's module when unambiguous), `wit = "dir"` (a contract beside the
/// crate; default: the one embedded in airssys), `crate = "path"` (the
/// `airssys-contract` crate in generated code; default
/// `::airssys::__private::contract`). See `docs/host-guide.md`.
#[proc_macro_attribute]
pub fn host_impl(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    host::host_impl(args.into(), item.into()).into()
}

/// Declares the scope a host function serves, e.g.
/// `#[airssys::host_fn(capability = "kv:read:app/**")]`; the method then
/// runs only for requests inside that scope which the calling component
/// was granted. Only valid inside an impl marked `#[airssys::host_impl]`,
/// which checks and consumes it. See `docs/host-guide.md`.
#[proc_macro_attribute]
pub fn host_fn(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    host::host_fn(args.into(), item.into()).into()
}

/// The capability marker traits of `airssys::__private::caps`, one per
/// `domain:action` pair of the contract. Not a public API: the facade
/// invokes it once.
#[doc(hidden)]
#[proc_macro]
pub fn __capability_markers(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let _ = input;
    markers::expand().into()
}
