//! What the network service keeps for each loaded component: the host
//! policy's own rules that name addresses (a special address needs one,
//! whatever the manifest says), the component's in-flight slots, and the
//! notes the runtime writes when it loads a component whose grant means
//! something else than it did before this version.

use std::net::IpAddr;

use airssys_contract::capability::{Capability, GrantSet, HostPattern, ResourcePattern};

use super::addr::{self, Class, Rules};
use super::interfaces;
use super::task::InFlight;
use crate::policy::{Policy, ResolvedLimits};

/// The network state of one loaded component, shared by its instances.
#[derive(Debug)]
pub(crate) struct NetComponent {
    /// The policy's own `net` allow rules for the component that name
    /// addresses (IP or CIDR), as the operator wrote them.
    named: Vec<Capability>,
    /// Its running operations (`limits.max_net_in_flight`).
    pub(super) in_flight: InFlight,
}

/// A load-time note about a grant whose meaning changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadNote {
    /// The grant reaches less than it did (a warning), rather than more.
    pub(crate) narrows: bool,
    /// What changed and how to get the old meaning back.
    pub(crate) text: String,
}

/// Addresses that are special from this version on, each with the prefix
/// a rule needs to name it, for [`NetComponent::load_notes`].
const NEWLY_SPECIAL: [(&str, u8, &str); 11] = [
    ("224.0.0.0", 4, "multicast 224.0.0.0/4"),
    ("ff00::", 8, "multicast ff00::/8"),
    ("100.64.0.0", 10, "shared address space 100.64.0.0/10"),
    ("192.0.0.0", 24, "IETF protocol assignments 192.0.0.0/24"),
    ("64:ff9b:1::", 48, "NAT64 local use 64:ff9b:1::/48"),
    ("100::", 64, "discard-only 100::/64"),
    ("168.63.129.16", 32, "Azure WireServer 168.63.129.16"),
    ("169.254.170.2", 32, "AWS ECS metadata 169.254.170.2"),
    ("169.254.170.23", 32, "AWS EKS Pod Identity 169.254.170.23"),
    ("fd00:ec2::23", 128, "AWS EKS Pod Identity fd00:ec2::23"),
    ("fe80::a9fe:a9fe", 128, "OpenStack metadata fe80::a9fe:a9fe"),
];

const DECISION: &str = "docs/decisions/containment-network.md";

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// The address block of a host pattern: `None` for names; `*` is both
/// whole families (returned as the IPv4 one and flagged by the caller).
fn block(host: &HostPattern) -> Option<(IpAddr, u8)> {
    match host {
        HostPattern::Ip(ip) => Some((*ip, width(*ip))),
        HostPattern::Cidr(net, len) => Some((*net, *len)),
        _ => None,
    }
}

impl NetComponent {
    /// The network state of component `name` under `policy`
    /// (`annotated`: it carries a manifest; an unannotated component has
    /// no grants, so no policy rule counts for it).
    pub(crate) fn new(
        name: &str,
        policy: &Policy,
        annotated: bool,
        limits: &ResolvedLimits,
    ) -> NetComponent {
        let named = if annotated {
            addr::naming_rules(crate::grant::policy_allows(name, policy))
        } else {
            Vec::new()
        };
        NetComponent {
            named,
            in_flight: InFlight::new(name, limits.max_net_in_flight),
        }
    }

    /// The rules addresses are checked against, under the component's
    /// effective grant.
    pub(super) fn rules<'a>(&'a self, effective: &'a GrantSet) -> Rules<'a> {
        Rules {
            effective,
            named: &self.named,
        }
    }

    /// Whether a rule of the policy itself (same action) contains `grant`
    /// and names addresses at least `prefix` bits narrow.
    fn policy_backs(&self, grant: &Capability, prefix: u8) -> bool {
        self.named
            .iter()
            .any(|rule| grant.is_subset_of(rule) && addr::names_addresses(rule, prefix))
    }

    /// What the runtime says at load time about the component's `net`
    /// grants whose meaning changed in this version: a manifest-narrowed
    /// grant of a special address the policy grants only through a wider
    /// rule; wildcards and wide blocks that no longer reach this host's own
    /// addresses and the newly special ranges; name grants that now reach
    /// public addresses by themselves.
    pub(crate) fn load_notes(&self, effective: &GrantSet) -> Vec<LoadNote> {
        let own: Vec<IpAddr> = interfaces::current()
            .iter()
            .copied()
            .filter(|ip| {
                !ip.is_loopback() && !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
            })
            .filter(|ip| !matches!(ip, IpAddr::V4(v4) if v4.is_link_local()))
            .collect();
        let mut notes = Vec::new();
        for grant in effective.allows() {
            let Some(ResourcePattern::Net(pattern)) = grant.resource() else {
                continue;
            };
            match &pattern.host {
                HostPattern::Name(name) | HostPattern::Suffix(name) => {
                    let name = if matches!(pattern.host, HostPattern::Suffix(_)) {
                        format!("*.{name}")
                    } else {
                        name.clone()
                    };
                    notes.push(LoadNote {
                        narrows: false,
                        text: format!(
                            "grant `{grant}` now reaches the public addresses `{name}` resolves \
                             to by itself, without an address grant; private and special \
                             addresses still need a rule of the host policy naming them (see \
                             {DECISION})"
                        ),
                    });
                }
                host => {
                    if let Some(note) = self.special_note(grant, host) {
                        notes.push(note);
                    }
                    if let Some(note) = newly_special_note(grant, host, &own) {
                        notes.push(note);
                    }
                }
            }
        }
        notes
    }

    /// A grant (from the manifest) naming a special address that no rule
    /// of the policy itself names.
    fn special_note(&self, grant: &Capability, host: &HostPattern) -> Option<LoadNote> {
        let (ip, len) = block(host)?;
        let Class::Special(range) = addr::classify(ip) else {
            return None;
        };
        if len < range.prefix || self.policy_backs(grant, range.prefix) {
            return None;
        }
        Some(LoadNote {
            narrows: true,
            text: format!(
                "grant `{grant}` does not reach {ip}, a special address ({}): the component's \
                 manifest names it, but the host policy grants it only through a wider rule, and \
                 a special address needs a rule of the policy itself that names it by address; \
                 add `{grant}` to the policy's grants to allow it (see {DECISION})",
                range.label
            ),
        })
    }
}

/// A wildcard or address block that covers addresses special from this
/// version on without naming them.
fn newly_special_note(grant: &Capability, host: &HostPattern, own: &[IpAddr]) -> Option<LoadNote> {
    let covers = |ip: IpAddr, ip_len: u8| match host {
        HostPattern::Any => true,
        HostPattern::Cidr(net, len) => *len < ip_len && addr::in_block(ip, *net, *len),
        _ => false,
    };
    let mut reached: Vec<String> = Vec::new();
    let own_covered: Vec<String> = own
        .iter()
        .filter(|ip| covers(**ip, width(**ip)))
        .map(ToString::to_string)
        .collect();
    if !own_covered.is_empty() {
        reached.push(format!(
            "this host's own interface addresses ({})",
            own_covered.join(", ")
        ));
    }
    for (text, len, label) in NEWLY_SPECIAL {
        let Ok(ip) = text.parse::<IpAddr>() else {
            continue;
        };
        if covers(ip, len) {
            reached.push(label.to_owned());
        }
    }
    if reached.is_empty() {
        return None;
    }
    Some(LoadNote {
        narrows: true,
        text: format!(
            "grant `{grant}` no longer reaches {}: they are special addresses now, reachable \
             only through a rule of the host policy that names them by address (see {DECISION})",
            reached.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::policy::ResolvedLimits;

    fn component(policy_grants: &[&str]) -> NetComponent {
        let policy = policy_grants
            .iter()
            .fold(Policy::builder(), |b, g| b.grant("c", g.parse().unwrap()))
            .build();
        NetComponent::new("c", &policy, true, &ResolvedLimits::default())
    }

    fn effective(grants: &[&str]) -> GrantSet {
        GrantSet::new(grants.iter().map(|g| g.parse().unwrap()), [])
    }

    #[test]
    fn a_manifest_narrowed_special_grant_is_reported() {
        let c = component(&["net:http:*:*"]);
        let notes = c.load_notes(&effective(&["net:http:127.0.0.1:*"]));
        let note = notes
            .iter()
            .find(|n| n.text.contains("does not reach 127.0.0.1"));
        let note = note.unwrap_or_else(|| panic!("{notes:?}"));
        assert!(note.narrows);
        assert!(
            note.text
                .contains("add `net:http:127.0.0.1:*` to the policy"),
            "{}",
            note.text
        );
        // The policy's own rule names it: nothing to report about it.
        let c = component(&["net:http:127.0.0.1:*"]);
        let notes = c.load_notes(&effective(&["net:http:127.0.0.1:*"]));
        assert!(
            notes.iter().all(|n| !n.text.contains("does not reach")),
            "{notes:?}"
        );
    }

    #[test]
    fn wildcards_are_told_what_they_no_longer_reach() {
        let c = component(&["net:connect:*:*"]);
        let notes = c.load_notes(&effective(&["net:connect:*:*"]));
        let note = notes
            .iter()
            .find(|n| n.text.contains("no longer reaches"))
            .unwrap_or_else(|| panic!("{notes:?}"));
        assert!(note.text.contains("multicast 224.0.0.0/4"), "{}", note.text);
        assert!(
            note.text.contains("Azure WireServer 168.63.129.16"),
            "{}",
            note.text
        );
        let c = component(&["net:connect:169.254.0.0/16:*"]);
        let notes = c.load_notes(&effective(&["net:connect:169.254.0.0/16:*"]));
        assert!(
            notes
                .iter()
                .any(|n| n.text.contains("AWS ECS metadata 169.254.170.2")),
            "{notes:?}"
        );
        // A block that names the range is not affected.
        let c = component(&["net:connect:224.0.0.0/4:*"]);
        assert!(
            c.load_notes(&effective(&["net:connect:224.0.0.0/4:*"]))
                .is_empty()
        );
    }

    #[test]
    fn name_grants_are_told_they_now_work_alone() {
        let c = component(&["net:http:api.example.com:443"]);
        let notes = c.load_notes(&effective(&["net:http:api.example.com:443"]));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(!notes[0].narrows);
        assert!(
            notes[0].text.contains("`api.example.com` resolves"),
            "{}",
            notes[0].text
        );
    }
}
