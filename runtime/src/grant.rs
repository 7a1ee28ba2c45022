//! A component's effective grant: its manifest (required and optional)
//! intersected with the host policy, minus the policy's deny rules.
//!
//! Intersection works pattern by pattern: a manifest capability that lies
//! inside a policy grant is granted as the manifest wrote it (the narrower
//! of the two); a policy grant that lies inside a manifest capability is
//! granted as the policy wrote it. Patterns that merely overlap grant
//! nothing (deny by default when unsure). A required capability that no
//! policy grant contains, or that a deny rule contains, refuses the load.

use std::collections::HashSet;

use airssys_contract::capability::{Capability, GrantSet};
use airssys_contract::manifest::Manifest;

use crate::error::LoadError;
use crate::policy::Policy;

/// Computes the grant set of `manifest` under `policy`, once per loaded
/// component.
///
/// # Errors
///
/// [`LoadError::MissingCapabilities`] naming every required capability the
/// policy does not grant, and how to grant it.
pub(crate) fn effective_grants(
    manifest: &Manifest,
    policy: &Policy,
) -> Result<GrantSet, LoadError> {
    let name = manifest.name.as_str();
    let grants: Vec<_> = policy.grants_for(name).collect();
    let denies: Vec<_> = policy.denies_for(name).collect();

    let mut missing = Vec::new();
    let mut reasons = Vec::new();
    for required in &manifest.requires {
        if let Some(deny) = denies.iter().find(|d| required.is_subset_of(&d.capability)) {
            reasons.push(format!(
                "`{required}`: denied by the policy's deny rule `{deny}`{}",
                policy.rule_origin(deny)
            ));
        } else if !grants.iter().any(|g| required.is_subset_of(&g.capability)) {
            reasons.push(format!("`{required}`: no policy grant covers it"));
            missing.push(required.to_string());
        }
    }
    if !reasons.is_empty() {
        let how = if missing.is_empty() {
            "remove the deny rule, or drop the capability from the component's manifest".to_owned()
        } else {
            policy.how_to_grant(name, &missing)
        };
        return Err(LoadError::MissingCapabilities {
            component: name.to_owned(),
            message: format!(
                "component `{name}` requires capabilities the host policy does not grant:\n  - {}\n{how}",
                reasons.join("\n  - ")
            ),
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

/// The host policy's own allow rules for component `name` (`[defaults]`
/// first), as the operator wrote them. The effective grant keeps the
/// manifest's narrower pattern where the manifest asks for less than the
/// policy allows; where only a rule of the policy itself may grant
/// something (a special network address must be named by one), the check
/// reads these instead.
pub(crate) fn policy_allows<'a>(
    name: &str,
    policy: &'a Policy,
) -> impl Iterator<Item = &'a Capability> + 'a {
    policy.grants_for(name).map(|rule| &rule.capability)
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

#[cfg(test)]
mod tests {
    use super::*;
    use airssys_contract::capability::{Request, Verdict};

    fn cap(text: &str) -> Capability {
        Capability::parse(text).expect(text)
    }

    fn manifest(requires: &[&str], optional: &[&str]) -> Manifest {
        Manifest {
            name: "counter".into(),
            version: "0.1.0".into(),
            requires: requires.iter().map(|c| cap(c)).collect(),
            optional: optional.iter().map(|c| cap(c)).collect(),
        }
    }

    fn allowed(set: &GrantSet, request: &str) -> bool {
        set.check(&Request::parse(request).expect(request)).verdict == Verdict::Allow
    }

    #[test]
    fn intersection_keeps_the_narrower_pattern() {
        let policy = Policy::builder()
            .grant("counter", cap("kv:read"))
            .grant("counter", cap("kv:write:counter/a"))
            .grant("counter", cap("net:connect:*.example.com:443"))
            .build();
        let m = manifest(
            &["kv:read:counter/*"],
            &["kv:write:counter/*", "env:read:HOME"],
        );
        let set = effective_grants(&m, &policy).expect("grants");
        assert!(allowed(&set, "kv:read:counter/x"));
        assert!(!allowed(&set, "kv:read:other/x"), "manifest narrows policy");
        assert!(allowed(&set, "kv:write:counter/a"));
        assert!(
            !allowed(&set, "kv:write:counter/b"),
            "policy narrows manifest"
        );
        assert!(!allowed(&set, "env:read:HOME"), "optional, not in policy");
        assert!(
            !allowed(&set, "net:connect:a.example.com:443"),
            "policy only"
        );
    }

    #[test]
    fn missing_required_names_each_and_how_to_grant() {
        let policy = Policy::builder()
            .grant("counter", cap("kv:read:counter/*"))
            .deny("counter", cap("env:read"))
            .build();
        let m = manifest(
            &["kv:read:counter/*", "kv:write:counter/*", "env:read:HOME"],
            &[],
        );
        let err = effective_grants(&m, &policy).expect_err("missing");
        let text = err.to_string();
        assert!(
            text.contains("`kv:write:counter/*`: no policy grant covers it"),
            "{text}"
        );
        assert!(
            text.contains("`env:read:HOME`: denied by the policy's deny rule `env:read`"),
            "{text}"
        );
        assert!(
            text.contains(".grant(\"counter\", \"kv:write:counter/*\""),
            "{text}"
        );
    }

    #[test]
    fn policy_denies_apply() {
        let policy = Policy::builder()
            .grant("counter", cap("kv:read"))
            .deny("counter", cap("kv:read:counter/secret"))
            .build();
        let m = manifest(&[], &["kv:read:counter/*"]);
        let set = effective_grants(&m, &policy).expect("grants");
        assert!(allowed(&set, "kv:read:counter/x"));
        assert!(!allowed(&set, "kv:read:counter/secret"));
    }
}
