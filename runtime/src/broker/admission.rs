//! Policy admission of subscriptions: the topics the policy subscribes a
//! component to, each checked against the component's effective grant at
//! load time (the broker then delivers only what both allow).

use airssys_contract::capability::{Capability, GrantSet};

use crate::error::LoadError;
use crate::policy::Policy;

/// Whether `grants` covers every topic `subscription` can match: some
/// allow contains it and no deny overlaps it (overlap judged
/// conservatively: either side containing the other).
pub(crate) fn is_covered(subscription: &Capability, grants: &GrantSet) -> bool {
    grants.allows().iter().any(|a| subscription.is_subset_of(a))
        && !grants
            .denies()
            .iter()
            .any(|d| subscription.is_subset_of(d) || d.is_subset_of(subscription))
}

/// The subscriptions the policy configures for `component`, each checked
/// against its effective grant.
///
/// # Errors
///
/// [`LoadError::Subscription`] naming every subscription that the grant
/// does not cover, and what to add.
pub(crate) fn subscriptions(
    component: &str,
    policy: &Policy,
    grants: &GrantSet,
) -> Result<Vec<Capability>, LoadError> {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut listed = Vec::new();
    for rule in policy.subscriptions_for(component) {
        if is_covered(&rule.capability, grants) {
            accepted.push(rule.capability.clone());
        } else {
            listed.push(format!(
                "  - `{}`{}",
                rule.capability,
                policy.rule_origin(rule)
            ));
            refused.push(rule.capability.clone());
        }
    }
    if refused.is_empty() {
        return Ok(accepted);
    }
    Err(LoadError::Subscription {
        component: component.to_owned(),
        message: format!(
            "component `{component}` is subscribed by the policy to topics its effective grant \
             does not cover:\n{}\nthe component must declare (in `requires` or `optional`) and \
             the policy must grant a `msg:subscribe` capability covering each, or remove the \
             subscription",
            listed.join("\n")
        ),
        refused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(s: &str) -> Capability {
        Capability::parse(s).expect(s)
    }

    #[test]
    fn coverage_respects_wildcards_and_denies() {
        let sub = |p: &str| crate::policy::subscription(p).expect(p);
        let g = GrantSet::new([cap("msg:subscribe:orders.>")], []);
        assert!(is_covered(&sub("orders.*"), &g));
        let narrow = GrantSet::new([cap("msg:subscribe:orders.*")], []);
        assert!(!is_covered(&sub("orders.>"), &narrow));
        assert!(!is_covered(&sub("billing.*"), &g));
    }
}
