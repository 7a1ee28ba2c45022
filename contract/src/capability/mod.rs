//! The capability DSL: `domain:action[:resource]`, parsed once into typed
//! values and matched without touching strings again.

mod domain;

pub use domain::{Action, Domain};
