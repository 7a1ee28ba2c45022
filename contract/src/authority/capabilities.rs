//! Two lists of capability patterns compared by what they cover.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::capability::{Capability, Domain};

/// How the authority of one list of capability patterns (NEW) differs
/// from another (OLD), decided by subset between patterns
/// ([`Capability::is_subset_of`]), never by their text.
///
/// Every pattern of NEW lands in exactly one of `unchanged`, `within`,
/// `widened` or `added`; every pattern of OLD that NEW no longer covers
/// lands in `narrowed` or `removed`.
///
/// The comparison is pattern by pattern: a NEW pattern covered only by the
/// union of several OLD ones (and by none alone) counts as widened or
/// added. It can overstate a change, never hide one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CapabilityDiff {
    /// NEW patterns equal to an OLD one (each covers the other).
    #[serde(serialize_with = "super::ser::caps")]
    pub unchanged: Vec<Capability>,
    /// NEW patterns strictly inside an OLD one that NEW still covers: no
    /// change of authority (a narrower pattern beside a wider one).
    #[serde(serialize_with = "super::ser::caps")]
    pub within: Vec<Capability>,
    /// NEW patterns that cover more than OLD did, each with the OLD
    /// patterns it contains.
    pub widened: Vec<Widened>,
    /// NEW patterns that share nothing known with OLD: new authority.
    #[serde(serialize_with = "super::ser::caps")]
    pub added: Vec<Capability>,
    /// OLD patterns NEW covers only in part, each with the NEW patterns
    /// inside it.
    pub narrowed: Vec<Narrowed>,
    /// OLD patterns of which NEW keeps nothing known.
    #[serde(serialize_with = "super::ser::caps")]
    pub removed: Vec<Capability>,
}

/// A NEW pattern that covers more than OLD did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Widened {
    /// The OLD patterns it strictly contains.
    #[serde(serialize_with = "super::ser::caps")]
    pub from: Vec<Capability>,
    /// The NEW pattern.
    #[serde(serialize_with = "super::ser::cap")]
    pub to: Capability,
}

/// An OLD pattern NEW covers only in part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Narrowed {
    /// The OLD pattern.
    #[serde(serialize_with = "super::ser::cap")]
    pub from: Capability,
    /// The NEW patterns strictly inside it.
    #[serde(serialize_with = "super::ser::caps")]
    pub to: Vec<Capability>,
}

/// Whether `a` and `b` cover the same requests (as far as subset knows).
fn same(a: &Capability, b: &Capability) -> bool {
    a.is_subset_of(b) && b.is_subset_of(a)
}

/// Compares the capability patterns `old` with `new`; see
/// [`CapabilityDiff`].
///
/// # Examples
///
/// ```
/// use airssys_contract::authority::diff_capabilities;
/// use airssys_contract::capability::Capability;
///
/// let caps = |list: &[&str]| -> Vec<Capability> {
///     list.iter().map(|c| c.parse().unwrap()).collect()
/// };
/// let diff = diff_capabilities(
///     &caps(&["kv:read:counter/*", "log:write"]),
///     &caps(&["kv:read:**", "net:connect:api.example.com:443"]),
/// );
/// // `**` holds every key, so it contains `counter/*`: a widening.
/// assert_eq!(diff.widened[0].to.to_string(), "kv:read:**");
/// assert_eq!(diff.added[0].to_string(), "net:connect:api.example.com:443");
/// assert_eq!(diff.removed[0].to_string(), "log:write");
/// ```
pub fn diff_capabilities(old: &[Capability], new: &[Capability]) -> CapabilityDiff {
    let mut diff = CapabilityDiff::default();
    for n in dedup(new) {
        if old.iter().any(|o| same(o, n)) {
            diff.unchanged.push(n.clone());
        } else if old.iter().any(|o| n.is_subset_of(o)) {
            diff.within.push(n.clone());
        } else {
            let from: Vec<Capability> = dedup(old).filter(|o| o.is_subset_of(n)).cloned().collect();
            if from.is_empty() {
                diff.added.push(n.clone());
            } else {
                diff.widened.push(Widened {
                    from,
                    to: n.clone(),
                });
            }
        }
    }
    for o in dedup(old) {
        if new.iter().any(|n| o.is_subset_of(n)) {
            continue;
        }
        let to: Vec<Capability> = dedup(new).filter(|n| n.is_subset_of(o)).cloned().collect();
        if to.is_empty() {
            diff.removed.push(o.clone());
        } else {
            diff.narrowed.push(Narrowed {
                from: o.clone(),
                to,
            });
        }
    }
    diff
}

/// `list` without repeated patterns, in order.
fn dedup(list: &[Capability]) -> impl Iterator<Item = &Capability> {
    let mut seen = BTreeSet::new();
    list.iter().filter(move |c| seen.insert(c.to_string()))
}

impl CapabilityDiff {
    /// Whether NEW covers something OLD did not (`widened` or `added`).
    pub fn gains(&self) -> bool {
        !self.widened.is_empty() || !self.added.is_empty()
    }

    /// Whether OLD covered something NEW does not (`narrowed` or
    /// `removed`).
    pub fn losses(&self) -> bool {
        !self.narrowed.is_empty() || !self.removed.is_empty()
    }

    /// Whether anything changed (gains or losses).
    pub fn is_changed(&self) -> bool {
        self.gains() || self.losses()
    }

    /// Domains NEW reaches that no OLD pattern did, in documentation order.
    pub fn new_domains(&self, old: &[Capability]) -> Vec<Domain> {
        let before: BTreeSet<Domain> = old.iter().map(Capability::domain).collect();
        let after: BTreeSet<Domain> = self
            .added
            .iter()
            .chain(self.widened.iter().map(|w| &w.to))
            .map(Capability::domain)
            .filter(|d| !before.contains(d))
            .collect();
        Domain::ALL
            .into_iter()
            .filter(|d| after.contains(d))
            .collect()
    }

    /// The changes as indented lines (`  widened: a -> b`), or nothing
    /// when nothing changed; `indent` prefixes each line.
    pub fn write_lines(&self, f: &mut impl fmt::Write, indent: &str) -> fmt::Result {
        for w in &self.widened {
            writeln!(f, "{indent}widened: {} -> {}", join(&w.from), w.to)?;
        }
        for c in &self.added {
            writeln!(f, "{indent}added: {c}")?;
        }
        for n in &self.narrowed {
            writeln!(f, "{indent}narrowed: {} -> {}", n.from, join(&n.to))?;
        }
        for c in &self.removed {
            writeln!(f, "{indent}removed: {c}")?;
        }
        Ok(())
    }
}

/// `a, b, c`.
pub(super) fn join(caps: &[Capability]) -> String {
    caps.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<Capability> {
        list.iter().map(|c| c.parse().expect(c)).collect()
    }

    fn texts(list: &[Capability]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn widening_is_found_by_subset_not_text() {
        let d = diff_capabilities(&caps(&["kv:read:counter/*"]), &caps(&["kv:read:*"]));
        // `kv:read:*` is one segment: `counter/x` has two, so `*` does not
        // contain `counter/*`.
        assert!(d.widened.is_empty(), "{d:?}");
        assert_eq!(texts(&d.added), ["kv:read:*"]);
        assert_eq!(texts(&d.removed), ["kv:read:counter/*"]);

        let d = diff_capabilities(&caps(&["kv:read:counter/*"]), &caps(&["kv:read:**"]));
        assert_eq!(texts(&d.widened[0].from), ["kv:read:counter/*"]);
        assert_eq!(d.widened[0].to.to_string(), "kv:read:**");
        assert!(d.removed.is_empty() && d.added.is_empty());

        let d = diff_capabilities(&caps(&["kv:read:counter/*"]), &caps(&["kv:read"]));
        assert_eq!(d.widened.len(), 1);
    }

    #[test]
    fn narrowing_and_equal_patterns() {
        let d = diff_capabilities(
            &caps(&["fs:read:/data/**", "log:write:info"]),
            &caps(&["fs:read:/data/app/*", "log:write:info"]),
        );
        assert_eq!(d.narrowed[0].from.to_string(), "fs:read:/data/**");
        assert_eq!(texts(&d.narrowed[0].to), ["fs:read:/data/app/*"]);
        assert_eq!(texts(&d.unchanged), ["log:write:info"]);
        assert!(!d.gains() && d.losses());

        // A log floor raised is a narrowing; lowered, a widening.
        let d = diff_capabilities(&caps(&["log:write:info"]), &caps(&["log:write:debug"]));
        assert_eq!(d.widened.len(), 1);
        let d = diff_capabilities(&caps(&["log:write:info"]), &caps(&["log:write:warn"]));
        assert_eq!(d.narrowed.len(), 1);
    }

    #[test]
    fn a_narrower_pattern_beside_its_wider_one_changes_nothing() {
        let d = diff_capabilities(
            &caps(&["kv:read:counter/*"]),
            &caps(&["kv:read:counter/*", "kv:read:counter/a"]),
        );
        assert_eq!(texts(&d.within), ["kv:read:counter/a"]);
        assert!(!d.is_changed());
    }

    #[test]
    fn new_domains_are_named() {
        let old = caps(&["kv:read:counter/*"]);
        let d = diff_capabilities(&old, &caps(&["kv:read:counter/*", "net:http:*.a.com:443"]));
        assert_eq!(d.new_domains(&old), [Domain::Net]);
    }
}
