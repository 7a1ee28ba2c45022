//! Paths used by macro-generated code. Not a public API: names here change
//! without notice.

pub use airssys_contract as contract;
