//! airssys: capability-checked WebAssembly components.
//!
//! One WIT contract defines the host services and the capability each host
//! function requires. This facade re-exports the pieces a user needs:
//! [`contract`] (capability DSL, manifests, the contract model) and the
//! attribute macros.

pub use airssys_contract as contract;

#[doc(hidden)]
pub mod __private;
