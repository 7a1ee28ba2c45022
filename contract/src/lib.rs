//! `airssys-contract`: the pure logic shared by the airssys macros, runtime
//! and CLI.
//!
//! - [`capability`]: the capability DSL (`domain:action[:resource]`), its
//!   matching and subset rules, and compiled grant sets.
//! - [`manifest`]: a component's typed permission manifest, from
//!   `Component.toml` and to/from the `airssys:manifest` custom section.
//! - [`model`]: the WIT contract model (interfaces, host functions and
//!   the capability template each one requires) and its lint.
//! - [`compat`]: the structural WIT comparison behind `airssys wit diff`
//!   and the runtime's load-time interface check.
//! - [`policy`] (feature `policy`): the host policy (grants, denies,
//!   config, environment, mounts, limits, program rules, digest pins,
//!   signers), its builder and its TOML reader; the runtime re-exports it.
//! - [`authority`] (feature `policy`): what a new release or a new policy
//!   gives or takes (`airssys diff`, `airssys policy diff`), and the
//!   narrowest policy covering what a component was seen doing
//!   (`airssys policy propose`).
//! - [`signature`] (feature `signature`): sign a component's code and
//!   manifest, verify it against trusted keys.
//! - [`guard`]: the run-time guard that `#[airssys::host_fn]` generates
//!   calls into.
//! - [`wit_text`]: WIT source text of resolved types.
//! - [`naming`]: the Rust names bindings generators give WIT identifiers
//!   (`open-bucket` → `open_bucket`, `bucket-entry` → `BucketEntry`).
//!
//! Nothing here depends on wasmtime or syn: data flows from `wit/` through
//! this crate to the macros, the runtime and the CLI.
//!
//! # Features
//!
//! All on by default. A component crate gets this crate through the
//! `airssys` facade with the defaults off: the capability DSL, the guard
//! and the binary manifest, which need no WIT parser and no TOML (in a
//! wasm32 build only with the facade's `contract` feature; the macros use
//! `wit` on the host).
//!
//! | feature | adds |
//! |---|---|
//! | `wit` | [`model`], [`wit_text`] (wit-parser) |
//! | `wasm` | `Manifest::from_wasm` (wasmparser) |
//! | `toml` | `Manifest::from_toml_str`/`from_toml_file`, `Display for Manifest` (toml, serde) |
//! | `compat` | [`compat`] (implies `wit`; serde, serde_json) |
//! | `policy` | [`policy`], [`authority`] (implies `toml` and `signature`; glob) |
//! | `signature` | [`signature`]: ed25519 signatures over a component's code and manifest (implies `wasm`) |

#[cfg(feature = "policy")]
pub mod authority;
pub mod capability;
#[cfg(feature = "compat")]
pub mod compat;
pub mod guard;
pub mod manifest;
#[cfg(feature = "wit")]
pub mod model;
pub mod naming;
#[cfg(feature = "policy")]
pub mod policy;
#[cfg(feature = "signature")]
pub mod signature;
pub mod suggest;
pub mod text;
#[cfg(feature = "wit")]
pub mod wit_text;
