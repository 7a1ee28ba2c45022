//! A component's effective grant: its manifest (required and optional)
//! intersected with the host policy, minus the policy's deny rules
//! ([`Policy::effective_grants`], in the contract), as a [`LoadError`].
//!
//! Also here, because they judge a policy against a component's grant:
//! where each rule of the grant was written ([`GrantOrigins`], for audit
//! records), and the policy's own allow rules ([`policy_allows`]).

use airssys_contract::capability::{Capability, GrantSet};
use airssys_contract::manifest::Manifest;

use crate::error::LoadError;
use crate::policy::{Policy, RuleOrigin};

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
    Ok(policy.effective_grants(manifest)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{MissingCapability, MissingReason};
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
        // `MissingCapability` is defined (non-exhaustive) in the contract:
        // compared field by field.
        let fields = |m: &MissingCapability| (m.capability.clone(), m.reason.clone());
        assert_eq!(
            missing.iter().map(fields).collect::<Vec<_>>(),
            [
                (cap("kv:write:counter/*"), MissingReason::NotCovered),
                (
                    cap("env:read:HOME"),
                    MissingReason::Denied {
                        rule: cap("env:read"),
                        origin: Some(RuleOrigin {
                            file: None,
                            line: 3
                        }),
                    },
                ),
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
