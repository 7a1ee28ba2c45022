//! Procedural macros of airssys.
//!
//! The entry points here only chain stages; parsing, checking against the
//! WIT contract and expansion live in plain modules that unit tests reach
//! through `proc-macro2`. The component and host-function attributes are
//! being built (see the project's issues); this crate currently carries the
//! shared plumbing only.
