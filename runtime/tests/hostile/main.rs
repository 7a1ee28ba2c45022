//! The hostile-component suite: one probe per containment guarantee
//! (docs/security.md lists each with its test). Every probe treats the
//! component and its manifest as hostile and the policy as trusted, and
//! asserts two things: the attempt ends in a refusal or limit error that
//! names the rule or limit, and the host keeps serving — a well-behaved
//! neighbour component loaded into the same runtime still answers.
//!
//! One module per area, so each area's probes read together.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod neighbour;

mod component_file;
mod filesystem;
mod held;
mod identity;
mod messaging;
mod network;
mod output;
mod pool;
mod process;
mod storage;
mod time;
