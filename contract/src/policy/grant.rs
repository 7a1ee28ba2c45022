//! A component's effective grant: its manifest (required and optional)
//! intersected with the host policy, minus the policy's deny rules.
//!
//! Intersection works pattern by pattern: a manifest capability that lies
//! inside a policy grant is granted as the manifest wrote it (the narrower
//! of the two); a policy grant that lies inside a manifest capability is
//! granted as the policy wrote it. Patterns that merely overlap grant
//! nothing (deny by default when unsure). A required capability that no
//! policy grant contains, or that a deny rule contains, refuses the load
//! ([`MissingCapabilities`]).

use std::collections::HashSet;

use crate::capability::{Capability, GrantSet};
use crate::manifest::Manifest;

use super::{Policy, ProcessNotice, RuleOrigin};

/// Required capabilities the policy does not grant: the runtime refuses
/// to load the component (its `LoadError::MissingCapabilities` carries the
/// same fields and shows the same text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "component `{component}` requires capabilities the host policy does not grant:\n  - {}\n{fix}",
    MissingCapability::listed(missing)
)]
#[non_exhaustive]
pub struct MissingCapabilities {
    /// The component's name.
    pub component: String,
    /// Each required capability the policy does not grant, and why.
    pub missing: Vec<MissingCapability>,
    /// How to grant them (the TOML or builder call to add, and where), or
    /// what else to change.
    pub fix: String,
}

/// A required capability the policy does not grant
/// ([`MissingCapabilities`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingCapability {
    /// The capability, as the manifest requires it.
    pub capability: Capability,
    /// Why it is not granted.
    pub reason: MissingReason,
}

/// Why a required capability is not granted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingReason {
    /// No grant of the policy covers it.
    NotCovered,
    /// A deny rule of the policy covers it.
    Denied {
        /// The deny rule.
        rule: Capability,
        /// Where the rule is written, when the policy was read from TOML.
        origin: Option<RuleOrigin>,
    },
}

impl std::fmt::Display for MissingCapability {
    /// `` `kv:write:counter/*`: no policy grant covers it ``, or the deny
    /// rule and where it is written.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let capability = &self.capability;
        match &self.reason {
            MissingReason::NotCovered => write!(f, "`{capability}`: no policy grant covers it"),
            MissingReason::Denied { rule, origin } => {
                write!(
                    f,
                    "`{capability}`: denied by the policy's deny rule `{rule}`"
                )?;
                match origin {
                    Some(origin) => write!(f, " ({origin})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl MissingCapability {
    /// The capabilities of a [`MissingCapabilities`] error as its text
    /// lists them: one per line, after the first `  - `.
    pub fn listed(missing: &[MissingCapability]) -> String {
        missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  - ")
    }
}

impl Policy {
    /// The grant set of `manifest` under this policy: what the runtime
    /// computes once per loaded component.
    ///
    /// # Errors
    ///
    /// [`MissingCapabilities`] naming every required capability the policy
    /// does not grant, and how to grant it.
    pub fn effective_grants(&self, manifest: &Manifest) -> Result<GrantSet, MissingCapabilities> {
        let policy = self;
        let name = manifest.name.as_str();
        let grants: Vec<_> = policy.grants_for(name).collect();
        let denies: Vec<_> = policy.denies_for(name).collect();

        let mut missing = Vec::new();
        for required in &manifest.requires {
            let reason =
                if let Some(deny) = denies.iter().find(|d| required.is_subset_of(&d.capability)) {
                    MissingReason::Denied {
                        rule: deny.capability.clone(),
                        origin: policy.origin(deny),
                    }
                } else if !grants.iter().any(|g| required.is_subset_of(&g.capability)) {
                    MissingReason::NotCovered
                } else {
                    continue;
                };
            missing.push(MissingCapability {
                capability: required.clone(),
                reason,
            });
        }
        if !missing.is_empty() {
            let ungranted: Vec<String> = missing
                .iter()
                .filter(|m| m.reason == MissingReason::NotCovered)
                .map(|m| m.capability.to_string())
                .collect();
            let fix = if ungranted.is_empty() {
                "remove the deny rule, or drop the capability from the component's manifest"
                    .to_owned()
            } else {
                policy.how_to_grant(name, &ungranted)
            };
            return Err(MissingCapabilities {
                component: name.to_owned(),
                missing,
                fix,
            });
        }

        let mut allows: Vec<Capability> = Vec::new();
        let mut seen = HashSet::new();
        for wanted in manifest.capabilities() {
            if grants.iter().any(|g| wanted.is_subset_of(&g.capability)) {
                push_unique(&mut allows, &mut seen, wanted);
                continue;
            }
            for grant in &grants {
                if grant.capability.is_subset_of(wanted) {
                    push_unique(&mut allows, &mut seen, &grant.capability);
                }
            }
        }
        let denies = denies.iter().map(|d| d.capability.clone());
        // The manifest travels with the grant so that a refusal can say
        // whether the manifest or the policy left the request out.
        Ok(GrantSet::new(allows, denies).with_declared(manifest.capabilities().cloned()))
    }

    /// [`Policy::process_notices`] for a component with `manifest`, under
    /// the grant it would get from this policy (what `airssys inspect
    /// --policy` reports without loading it).
    ///
    /// # Errors
    ///
    /// [`MissingCapabilities`] when the policy would refuse the component.
    pub fn process_notices_for(
        &self,
        manifest: &Manifest,
    ) -> Result<Vec<ProcessNotice>, MissingCapabilities> {
        let grants = self.effective_grants(manifest)?;
        Ok(self.process_notices(&manifest.name, &grants))
    }
}

/// Appends `capability` unless `seen` holds it: a hash-set lookup, so the
/// whole intersection stays linear in what it pushes (a `Vec::contains`
/// per item was quadratic in a hostile manifest's size). `std`'s
/// randomly keyed hasher, not Fx: the capabilities come from the
/// manifest, which could otherwise be built to collide.
fn push_unique<'a>(
    list: &mut Vec<Capability>,
    seen: &mut HashSet<&'a Capability>,
    capability: &'a Capability,
) {
    if seen.insert(capability) {
        list.push(capability.clone());
    }
}
