//! Two host policies compared: per component, the capabilities it may be
//! granted or is denied, gained and lost.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::capabilities::{CapabilityDiff, diff_capabilities};
use crate::capability::Capability;

/// The grant and deny patterns that apply to one component (or, for
/// [`PolicyRules::defaults`], to every component the policy does not name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableRules {
    /// Patterns the host is willing to grant.
    pub grants: Vec<Capability>,
    /// Patterns the host refuses even when granted.
    pub denies: Vec<Capability>,
}

/// A policy as far as authority goes: its `[defaults]` and, for every
/// component it names, everything that applies to it (`[defaults]` plus
/// its own table). [`Policy::authority`](crate::policy::Policy::authority)
/// builds it from a host policy (as read by the one policy reader,
/// [`Policy::from_toml_str`](crate::policy::Policy::from_toml_str)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRules {
    /// `[defaults]`: what a component the policy does not name gets.
    pub defaults: TableRules,
    /// Per component name: `[defaults]` and `[components.<name>]` together.
    pub components: BTreeMap<String, TableRules>,
}

/// How two policies differ in authority (see [`diff_policies`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyDiff {
    /// `[defaults]`, which every component not named gets.
    pub defaults: TableDiff,
    /// Each component named by either policy whose authority changed, by
    /// name.
    pub components: Vec<ComponentDiff>,
}

/// One component's change between two policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentDiff {
    /// The component's name.
    pub component: String,
    /// Whether OLD names it (`[components.<name>]`); otherwise it got
    /// `[defaults]` only.
    pub in_old: bool,
    /// Whether NEW names it.
    pub in_new: bool,
    /// The change of what applies to it.
    #[serde(flatten)]
    pub rules: TableDiff,
}

/// The grants and deny rules of one table compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableDiff {
    /// Grants: `widened`/`added` are authority gained,
    /// `narrowed`/`removed` authority lost.
    pub grants: CapabilityDiff,
    /// Deny rules: here `widened`/`added` take authority away,
    /// `narrowed`/`removed` give it back.
    pub denies: CapabilityDiff,
}

impl TableDiff {
    fn new(old: &TableRules, new: &TableRules) -> TableDiff {
        TableDiff {
            grants: diff_capabilities(&old.grants, &new.grants),
            denies: diff_capabilities(&old.denies, &new.denies),
        }
    }

    /// Whether the table gives more: a grant widened or added, or a deny
    /// rule narrowed or removed.
    pub fn gains(&self) -> bool {
        self.grants.gains() || self.denies.losses()
    }

    /// Whether the table gives less: a grant narrowed or removed, or a deny
    /// rule widened or added.
    pub fn losses(&self) -> bool {
        self.grants.losses() || self.denies.gains()
    }

    /// Whether anything changed.
    pub fn is_changed(&self) -> bool {
        self.grants.is_changed() || self.denies.is_changed()
    }

    fn write_lines(&self, f: &mut impl fmt::Write) -> fmt::Result {
        let mut grants = String::new();
        self.grants.write_lines(&mut grants, "    ")?;
        if !grants.is_empty() {
            writeln!(f, "  grants:")?;
            f.write_str(&grants)?;
        }
        let mut denies = String::new();
        self.denies.write_lines(&mut denies, "    ")?;
        if !denies.is_empty() {
            writeln!(f, "  denies:")?;
            f.write_str(&denies)?;
        }
        Ok(())
    }
}

/// Compares two policies: `[defaults]`, then every component either one
/// names, each with everything that applies to it. A component named by
/// one policy only is compared with the other's `[defaults]`.
///
/// # Examples
///
/// ```
/// use airssys_contract::authority::{PolicyRules, TableRules, diff_policies};
///
/// let table = |grants: &[&str]| TableRules {
///     grants: grants.iter().map(|c| c.parse().unwrap()).collect(),
///     denies: vec![],
/// };
/// let old = PolicyRules {
///     components: [("counter".to_owned(), table(&["kv:read:counter/*"]))].into(),
///     ..Default::default()
/// };
/// let new = PolicyRules {
///     components: [("counter".to_owned(), table(&["kv:read:counter/*", "kv:write:counter/*"]))]
///         .into(),
///     ..Default::default()
/// };
/// let diff = diff_policies(&old, &new);
/// assert_eq!(diff.components[0].rules.grants.added[0].to_string(), "kv:write:counter/*");
/// assert_eq!(diff.to_string(), "[components.counter]\n  grants:\n    added: kv:write:counter/*\n");
/// ```
pub fn diff_policies(old: &PolicyRules, new: &PolicyRules) -> PolicyDiff {
    let names: BTreeSet<&String> = old.components.keys().chain(new.components.keys()).collect();
    let components = names
        .into_iter()
        .filter_map(|name| {
            let o = old.components.get(name);
            let n = new.components.get(name);
            let rules = TableDiff::new(o.unwrap_or(&old.defaults), n.unwrap_or(&new.defaults));
            rules.is_changed().then(|| ComponentDiff {
                component: name.clone(),
                in_old: o.is_some(),
                in_new: n.is_some(),
                rules,
            })
        })
        .collect();
    PolicyDiff {
        defaults: TableDiff::new(&old.defaults, &new.defaults),
        components,
    }
}

impl PolicyDiff {
    /// Whether some component may be granted more, or is denied less.
    pub fn gains(&self) -> bool {
        self.defaults.gains() || self.components.iter().any(|c| c.rules.gains())
    }

    /// Whether anything changed.
    pub fn is_changed(&self) -> bool {
        self.defaults.is_changed() || !self.components.is_empty()
    }
}

impl fmt::Display for PolicyDiff {
    /// One block per table that changed (`[defaults]` first), each change
    /// on its own line; `no change in authority` when nothing changed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.is_changed() {
            return writeln!(f, "no change in authority");
        }
        if self.defaults.is_changed() {
            writeln!(f, "[defaults] (every component the policy does not name)")?;
            self.defaults.write_lines(f)?;
        }
        for c in &self.components {
            let note = match (c.in_old, c.in_new) {
                (false, true) => " (new table; before: [defaults] only)",
                (true, false) => " (table removed; now: [defaults] only)",
                _ => "",
            };
            writeln!(f, "[components.{}]{note}", c.component)?;
            c.rules.write_lines(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(grants: &[&str], denies: &[&str]) -> TableRules {
        let caps = |l: &[&str]| l.iter().map(|c| c.parse().expect(c)).collect();
        TableRules {
            grants: caps(grants),
            denies: caps(denies),
        }
    }

    #[test]
    fn a_removed_deny_rule_is_a_gain() {
        let old = PolicyRules {
            defaults: table(&["log:write:info"], &["env:read:AWS_*"]),
            components: BTreeMap::new(),
        };
        let new = PolicyRules {
            defaults: table(&["log:write:info"], &[]),
            components: BTreeMap::new(),
        };
        let d = diff_policies(&old, &new);
        assert!(d.gains());
        assert_eq!(
            d.to_string(),
            "[defaults] (every component the policy does not name)\n  denies:\n    removed: \
             env:read:AWS_*\n"
        );
    }

    #[test]
    fn a_component_named_by_one_side_only_is_compared_with_the_defaults() {
        let old = PolicyRules {
            defaults: table(&["log:write:info"], &[]),
            components: BTreeMap::new(),
        };
        let new = PolicyRules {
            defaults: table(&["log:write:info"], &[]),
            components: [(
                "counter".to_owned(),
                table(&["log:write:info", "kv:read:counter/*"], &[]),
            )]
            .into(),
        };
        let d = diff_policies(&old, &new);
        assert!(!d.defaults.is_changed());
        assert_eq!(d.components.len(), 1);
        assert!(!d.components[0].in_old && d.components[0].in_new);
        assert_eq!(d.components[0].rules.grants.added.len(), 1);
        assert!(diff_policies(&new, &new).to_string() == "no change in authority\n");
    }
}
