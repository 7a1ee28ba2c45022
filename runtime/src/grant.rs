//! A component's effective grant: its manifest (required and optional)
//! intersected with the host policy, minus the policy's deny rules.
//!
//! Intersection works pattern by pattern: a manifest capability that lies
//! inside a policy grant is granted as the manifest wrote it (the narrower
//! of the two); a policy grant that lies inside a manifest capability is
//! granted as the policy wrote it. Patterns that merely overlap grant
//! nothing (deny by default when unsure). A required capability that no
//! policy grant contains, or that a deny rule contains, refuses the load.
//!
//! Also here, because they judge a policy against a component's grant:
//! where each rule of the grant was written ([`GrantOrigins`], for audit
//! records), and [`Policy::process_notices_for`].

use std::collections::HashSet;

use airssys_contract::capability::{Capability, GrantSet};
use airssys_contract::manifest::Manifest;

use crate::error::{LoadError, MissingCapability, MissingReason};
use crate::policy::{Policy, ProcessNotice, RuleOrigin};

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
            "remove the deny rule, or drop the capability from the component's manifest".to_owned()
        } else {
            policy.how_to_grant(name, &ungranted)
        };
        return Err(LoadError::MissingCapabilities {
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

/// Where each rule of a component's effective grant was written in the
/// policy, by its index in [`GrantSet::allows`] and [`GrantSet::denies`]:
/// what an audit record names as the deciding rule's line. An allow the
/// manifest narrowed is credited to the policy grant containing it.
#[derive(Debug, Default)]
pub(crate) struct GrantOrigins {
    allows: Vec<Option<RuleOrigin>>,
    denies: Vec<Option<RuleOrigin>>,
}

impl GrantOrigins {
    /// The origins of `grants`, the effective grant of `name` under
    /// `policy`.
    pub(crate) fn of(name: &str, grants: &GrantSet, policy: &Policy) -> GrantOrigins {
        let allows = grants
            .allows()
            .iter()
            .map(|allow| {
                policy
                    .grants_for(name)
                    .find(|rule| allow.is_subset_of(&rule.capability))
                    .and_then(|rule| policy.origin(rule))
            })
            .collect();
        let denies = grants
            .denies()
            .iter()
            .map(|deny| {
                policy
                    .denies_for(name)
                    .find(|rule| rule.capability == *deny)
                    .and_then(|rule| policy.origin(rule))
            })
            .collect();
        GrantOrigins { allows, denies }
    }

    /// Where the allow rule at `index` was written.
    pub(crate) fn allow(&self, index: usize) -> Option<&RuleOrigin> {
        self.allows.get(index)?.as_ref()
    }

    /// Where the deny rule at `index` was written.
    pub(crate) fn deny(&self, index: usize) -> Option<&RuleOrigin> {
        self.denies.get(index)?.as_ref()
    }
}

impl Policy {
    /// [`Policy::process_notices`] for a component with `manifest`, under
    /// the grant it would get from this policy (what `airssys inspect
    /// --policy` reports without loading it).
    ///
    /// # Errors
    ///
    /// [`LoadError::MissingCapabilities`] when the policy would refuse the
    /// component.
    pub fn process_notices_for(
        &self,
        manifest: &Manifest,
    ) -> Result<Vec<ProcessNotice>, LoadError> {
        let grants = effective_grants(manifest, self)?;
        Ok(self.process_notices(&manifest.name, &grants))
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
    fn missing_capabilities_keep_each_capability_and_the_deny_rule() {
        let policy = Policy::from_toml_str(
            "[components.counter]\ngrants = [\"kv:read:counter/*\"]\ndenies = [\"env:read\"]\n",
        )
        .expect("policy");
        let m = manifest(&["kv:write:counter/*", "env:read:HOME"], &[]);
        let Err(LoadError::MissingCapabilities { missing, .. }) = effective_grants(&m, &policy)
        else {
            panic!("refused");
        };
        assert_eq!(
            missing,
            [
                MissingCapability {
                    capability: cap("kv:write:counter/*"),
                    reason: MissingReason::NotCovered,
                },
                MissingCapability {
                    capability: cap("env:read:HOME"),
                    reason: MissingReason::Denied {
                        rule: cap("env:read"),
                        origin: Some(RuleOrigin {
                            file: None,
                            line: 3
                        }),
                    },
                },
            ]
        );
    }

    #[test]
    fn origins_name_the_policy_line_of_each_rule() {
        let policy = Policy::from_toml_str(
            "[components.counter]\ngrants = [\"kv:read\"]\ndenies = [\"kv:read:counter/secret\"]\n",
        )
        .expect("policy");
        let m = manifest(&[], &["kv:read:counter/*"]);
        let set = effective_grants(&m, &policy).expect("grants");
        let origins = GrantOrigins::of("counter", &set, &policy);
        // The manifest's narrower pattern, credited to the grant holding it.
        assert_eq!(set.allows(), [cap("kv:read:counter/*")]);
        assert_eq!(origins.allow(0).map(|o| o.line), Some(2));
        assert_eq!(origins.deny(0).map(|o| o.line), Some(3));
        assert_eq!(origins.allow(1), None);
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
