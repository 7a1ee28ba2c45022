//! The reference the capability DSL is checked against, shared by the
//! property tests (`tests/capability_props.rs`) and the fuzz target
//! `fuzz/fuzz_targets/capability.rs` (through `#[path]`), so the two cannot
//! drift apart.
//!
//! Each check returns `Err` with what went wrong instead of panicking, so a
//! proptest can shrink on it and a fuzz target can print the input.

use airssys_contract::capability::{Capability, GrantSet, Request, Rule, Verdict};

/// A compiled [`GrantSet`] decides `request` as a linear scan of its own
/// allow and deny patterns would: a covering deny wins, then a covering
/// allow, else deny by default; and the rule it names covers the request.
pub(crate) fn check_decision(set: &GrantSet, request: &Request<'_>) -> Result<(), String> {
    let (allows, denies) = (set.allows(), set.denies());
    let denied = denies.iter().any(|c| c.covers(request));
    let allowed = !denied && allows.iter().any(|c| c.covers(request));
    let decision = set.check(request);
    if (decision.verdict == Verdict::Allow) != allowed {
        return Err(format!(
            "`{request}`: the grant set says {:?} by {:?}, a linear scan says {}",
            decision.verdict,
            decision.rule,
            if allowed { "allow" } else { "deny" },
        ));
    }
    let rule_covers = match decision.rule {
        Rule::Allow(i) => allows.get(i).is_some_and(|c| c.covers(request)),
        Rule::Deny(i) => denies.get(i).is_some_and(|c| c.covers(request)),
        Rule::NoGrant => !denied && !allowed,
    };
    if !rule_covers {
        return Err(format!(
            "`{request}`: the deciding rule {:?} does not cover it",
            decision.rule
        ));
    }
    Ok(())
}

/// `a ⊆ b` is sound: whatever `a` covers, `b` covers too. Also checks that
/// the relation is reflexive.
pub(crate) fn check_subset(
    a: &Capability,
    b: &Capability,
    request: &Request<'_>,
) -> Result<(), String> {
    if !a.is_subset_of(a) {
        return Err(format!("`{a}` is not a subset of itself"));
    }
    if a.is_subset_of(b) && a.covers(request) && !b.covers(request) {
        return Err(format!(
            "`{a}` ⊆ `{b}` but only the first covers `{request}`"
        ));
    }
    Ok(())
}

/// A capability's `Display` parses back to the same capability, and
/// displaying that gives the same text.
pub(crate) fn check_display_round_trip(capability: &Capability) -> Result<(), String> {
    let shown = capability.to_string();
    match Capability::parse(&shown) {
        Ok(back) if back == *capability => {
            let again = back.to_string();
            if again == shown {
                Ok(())
            } else {
                Err(format!(
                    "`{shown}` displays as `{again}` after a round trip"
                ))
            }
        }
        Ok(back) => Err(format!(
            "`{shown}` parses to {back:?}, not the original {capability:?}"
        )),
        Err(e) => Err(format!(
            "`{shown}` (a displayed capability) does not parse: {e}"
        )),
    }
}
