//! The airssys host runtime.
//!
//! It loads components, validates their interface versions and permission
//! manifests against the contract in [`airssys_contract`], grants the
//! intersection of manifest and host policy, and enforces it deny-by-default
//! on every host call. The wasmtime host is being built (see the project's
//! issues); today this crate exposes the policy decisions that the host will
//! apply.
