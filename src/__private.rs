//! Paths used by macro-generated code. Not a public API: names here change
//! without notice.

#[cfg(any(not(target_family = "wasm"), feature = "contract"))]
pub use airssys_contract as contract;

/// The wit-bindgen runtime that generated guest bindings use
/// (`runtime_path = ::airssys::__private::wit_bindgen::rt`).
pub use wit_bindgen;

/// One marker trait per capability `domain:action` of the contract.
///
/// `#[airssys::component]` implements the marker of each pair a component
/// declares (in `requires` or `optional`); a gated host function has the
/// bound `C: caps::<Domain><Action>`, so calling it from a component that
/// did not declare the pair fails to compile at the call site with the
/// trait's message.
pub mod caps {
    // Generated from the contract's domain and action list
    // (`airssys_contract::capability::Domain::ALL` and `Domain::actions`).
    airssys_macros::__capability_markers!();
}
