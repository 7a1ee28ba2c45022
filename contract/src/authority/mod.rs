//! Authority over time: what a new release of a component, or a new host
//! policy, gives or takes compared with the one before.
//!
//! Every comparison is by subset between capability patterns
//! ([`Capability::is_subset_of`](crate::capability::Capability::is_subset_of)),
//! never by their text: `kv:read:counter/*` → `kv:read:**` is a widening,
//! `fs:read:/data/**` → `fs:read:/data/app/*` a narrowing.
//!
//! - [`diff_capabilities`]: two lists of patterns ([`CapabilityDiff`]).
//! - [`diff_manifests`]: two manifests of a component, with findings on
//!   its name and version ([`ManifestDiff`]); `airssys diff`.
//! - [`diff_policies`]: two host policies, per component
//!   ([`PolicyDiff`]); `airssys policy diff`.
//! - [`diff_worlds`] (feature `compat`): the imports and exports of two
//!   builds, through the engine of `airssys wit diff`.
//! - [`propose`]: the narrowest grants covering what a component was
//!   seen doing (`airssys policy propose`).

mod capabilities;
#[cfg(feature = "compat")]
mod interfaces;
mod manifest;
mod policy;
mod propose;
mod ser;

pub use capabilities::{CapabilityDiff, Narrowed, Widened, diff_capabilities};
#[cfg(feature = "compat")]
pub use interfaces::{Direction, InterfaceChange, diff_worlds};
pub use manifest::{ManifestDiff, ReviewFinding, ReviewFindingKind, diff_manifests};
pub use policy::{ComponentDiff, PolicyDiff, PolicyRules, TableDiff, TableRules, diff_policies};
pub use propose::{Observation, Proposal, ProposedRule, Undeclared, WILDCARD_THRESHOLD, propose};
